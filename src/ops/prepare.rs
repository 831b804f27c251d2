//! `stackgen prepare TENANT`: creates the tenant's data directories under
//! `BASE_DIR/tenants/<tenant>/data`, each owned by the UID its service runs as, mode 0750.
//!
//! Docker would otherwise create missing bind-mount sources as root, and non-root services could
//! not write their data. Only paths inside the tenant's own tree are ever created or chowned.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::manifest::{Manifest, Tenant};
use crate::output::fsafe;
use crate::platform::model;
use crate::policy;
use crate::render::compose::{self as render};
use crate::render::Display;

/// One thing to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Action {
    pub path: PathBuf,
    pub is_file: bool,
    pub owner: (u32, u32),
}

/// What `prepare` would create for a tenant, in a stable order.
pub fn plan(manifest: &Manifest, tenant: &Tenant) -> Result<Vec<Action>> {
    let root = PathBuf::from(model::tenant_root(&manifest.platform, tenant));
    let services = model::services(&manifest.platform, tenant);
    let display = Display {
        manifest: String::new(),
        stacks_dir: String::new(),
    };
    let files = render::render_tenant(manifest, tenant, &display)?;
    let stack: serde_yaml::Value = serde_yaml::from_str(&files[0].content)?;
    // A tenant on another engine mounts its config files from there (`model::config_source`):
    // they are copied, not prepared (`crate::ops::engines::push_config`).
    let config = PathBuf::from(model::config_source(&manifest.platform, tenant));
    let mut actions: Vec<Action> = Vec::new();
    for svc in &services {
        let owner = policy::for_service(tenant, svc, &services).data_owner;
        let file_sources: Vec<String> = svc
            .def
            .data_files
            .iter()
            .map(|f| format!("{}/{f}", svc.data_dir))
            .collect();
        let volumes = stack["services"][svc.name.as_str()]["volumes"]
            .as_sequence()
            .cloned()
            .unwrap_or_default();
        let mut push = |path: PathBuf, is_file: bool| {
            if !actions.iter().any(|a| a.path == path) {
                actions.push(Action {
                    path,
                    is_file,
                    owner,
                });
            }
        };
        push(PathBuf::from(&svc.data_dir), false);
        for v in volumes {
            let Some(spec) = v.as_str() else { continue };
            let source = spec.split(':').next().unwrap_or_default();
            if !source.starts_with('/') {
                continue; // config files under the stacks directory
            }
            let path = PathBuf::from(source);
            if path.starts_with(&config) {
                continue;
            }
            if !path.starts_with(&root) {
                bail!(
                    "refusing to prepare {source}: it is outside {}",
                    root.display()
                );
            }
            let is_file = file_sources.iter().any(|f| f == source);
            push(path, is_file);
        }
    }
    Ok(actions)
}

/// Creates what `plan` lists. Parents up to the tenant root are created root-owned 0755 (the
/// daemon, not the container, traverses them); leaves get their service's owner and 0750.
///
/// The tenant's folder and everything in it are reached with `openat` and `O_NOFOLLOW` at every
/// component (`fsafe::prepare_at`): the tenant's containers write inside this tree, so a link in
/// it is refused (exit 2, naming it), and nothing outside the tree is created, chmodded or
/// chowned. `BASE_DIR/tenants` itself may be a link the operator chose.
pub fn apply(manifest: &Manifest, tenant: &Tenant, actions: &[Action]) -> Result<()> {
    let root = PathBuf::from(model::tenant_root(&manifest.platform, tenant));
    let tenants_dir = root.parent().unwrap_or(Path::new("/")).to_path_buf();
    let is_root = effective_uid() == 0;
    for a in actions {
        if !a.path.starts_with(&root) {
            bail!(
                "refusing to touch {}: outside {}",
                a.path.display(),
                root.display()
            );
        }
    }
    if !actions.is_empty() {
        fs::create_dir_all(&tenants_dir)
            .with_context(|| format!("creating {}", tenants_dir.display()))?;
    }
    for a in actions {
        let rel = a.path.strip_prefix(&tenants_dir).expect("checked above");
        let (kind, mode) = if a.is_file {
            (fsafe::Kind::File, 0o640)
        } else {
            (fsafe::Kind::Dir, 0o750)
        };
        match fsafe::prepare_at(&tenants_dir, rel, kind, mode, Some(a.owner)) {
            Ok(()) => {}
            Err(e) => match e.downcast_ref::<fsafe::OwnerError>() {
                Some(o) if !is_root && o.source.kind() == std::io::ErrorKind::PermissionDenied => {
                    bail!(
                        "cannot give {} to {}:{}: only root can (run `sudo stackgen prepare {}`)",
                        o.path.display(),
                        o.uid,
                        o.gid,
                        tenant.name
                    )
                }
                _ => return Err(e),
            },
        }
    }
    Ok(())
}

/// The effective UID, read from /proc so no libc binding is needed.
fn effective_uid() -> u32 {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(u32::MAX)
}
