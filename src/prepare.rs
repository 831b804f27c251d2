//! `stackgen prepare TENANT`: creates the tenant's data directories under
//! `BASE_DIR/tenants/<tenant>/data`, each owned by the UID its service runs as, mode 0750.
//!
//! Docker would otherwise create missing bind-mount sources as root, and non-root services could
//! not write their data. Only paths inside the tenant's own tree are ever created or chowned.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::manifest::{Manifest, Tenant};
use crate::model;
use crate::policy;
use crate::render::{self, Display};

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
pub fn apply(manifest: &Manifest, tenant: &Tenant, actions: &[Action]) -> Result<()> {
    let root = PathBuf::from(model::tenant_root(&manifest.platform, tenant));
    let is_root = effective_uid() == 0;
    for a in actions {
        if !a.path.starts_with(&root) {
            bail!(
                "refusing to touch {}: outside {}",
                a.path.display(),
                root.display()
            );
        }
        if let Some(parent) = a.path.parent() {
            fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        if a.is_file {
            if !a.path.exists() {
                fs::write(&a.path, b"")
                    .with_context(|| format!("creating {}", a.path.display()))?;
            }
            fs::set_permissions(&a.path, fs::Permissions::from_mode(0o640))?;
        } else {
            fs::create_dir_all(&a.path)
                .with_context(|| format!("creating {}", a.path.display()))?;
            fs::set_permissions(&a.path, fs::Permissions::from_mode(0o750))?;
        }
        chown(&a.path, a.owner, is_root)?;
    }
    Ok(())
}

fn chown(path: &Path, (uid, gid): (u32, u32), is_root: bool) -> Result<()> {
    // lchown: never follow a symlink planted inside the tree to somewhere outside it.
    match std::os::unix::fs::lchown(path, Some(uid), Some(gid)) {
        Ok(()) => Ok(()),
        Err(e) if !is_root && e.kind() == std::io::ErrorKind::PermissionDenied => bail!(
            "cannot give {} to {uid}:{gid}: only root can (run `sudo stackgen prepare {}`)",
            path.display(),
            path.iter()
                .rev()
                .nth(2)
                .map(|s| s.to_string_lossy())
                .unwrap_or_default()
        ),
        Err(e) => Err(e).with_context(|| format!("chown {uid}:{gid} {}", path.display())),
    }
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
