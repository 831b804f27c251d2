//! Deployment identity: which manifest owns a tenant's running containers and networks.
//!
//! Two manifests (two checkouts, two operators) may declare the same tenant name; both would
//! drive the same compose project `<tenant>`, and the second `up` would recreate the first one's
//! containers with its own data paths and ports. So every manifest carries a stable random ID,
//! `STACKGEN_DEPLOYMENT` (written by `init`), every container and network it renders is labelled
//! `com.stackgen.deployment=<id>`, and every command that changes a running tenant first proves
//! that everything in the tenant's compose project carries this manifest's ID ([`guard`]).
//!
//! Containers made by a stackgen from before deployment IDs carry no such label. They are
//! accepted only when compose's own `com.docker.compose.project.config_files` label names this
//! checkout's stack file (same absolute path), i.e. they were started from this very stack; the
//! next `up` then recreates them with the label. Anything else is refused, naming what owns it.

use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::Deserialize;

use crate::error::UsageError;
use crate::manifest::Tenant;
use crate::ops::compose::{exec, Cmd, Container, Tools};

use crate::manifest::deployment_id::KEY;
use crate::policy::DEPLOYMENT_LABEL as LABEL;

/// Compose's label: the stack file(s) a container was created from, absolute, comma-joined.
pub const CONFIG_FILES_LABEL: &str = "com.docker.compose.project.config_files";
/// Compose's label: the directory compose ran in (where the other checkout lives).
pub const WORKING_DIR_LABEL: &str = "com.docker.compose.project.working_dir";

/// `docker network ls --format`: the labels the ownership check reads.
pub const NETWORK_FORMAT: &str = concat!(
    r#"{"name":{{json .Name}},"#,
    r#""tenant":{{json (.Label "com.stackgen.tenant")}},"#,
    r#""deployment":{{json (.Label "com.stackgen.deployment")}}}"#
);

/// A network of the tenant's compose project, as the check sees it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct NetworkLabels {
    pub name: String,
    #[serde(default)]
    pub tenant: String,
    #[serde(default)]
    pub deployment: String,
}

/// `docker network ls` of every network in the compose project named like the tenant.
pub fn list_networks(tools: &Tools, tenant: &str) -> Cmd {
    let mut v = tools.docker_argv();
    v.extend([
        "network".into(),
        "ls".into(),
        "--no-trunc".into(),
        "--filter".into(),
        format!("label=com.docker.compose.project={tenant}").into(),
        "--format".into(),
        NETWORK_FORMAT.into(),
    ]);
    Cmd::new(v, "docker network ls")
}

fn parse_networks(stdout: &str) -> Result<Vec<NetworkLabels>> {
    stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str(l)
                .map_err(|e| anyhow::anyhow!("unexpected `docker network ls` output ({e}): {l}"))
        })
        .collect()
}

/// Who owns something found in the tenant's compose project, when it is not this deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Foreign {
    /// `container team-a-redis-1` or `network ai-platform-team-a`.
    pub what: String,
    /// The other deployment's ID; empty when it carries none.
    pub deployment: String,
    /// Where compose ran for it (its checkout), when compose recorded it.
    pub origin: String,
}

/// The stack file's absolute path, as compose records it in `config_files`.
pub fn absolute(stack: &Path) -> PathBuf {
    std::fs::canonicalize(stack).unwrap_or_else(|_| {
        std::env::current_dir()
            .map(|d| d.join(stack))
            .unwrap_or_else(|_| stack.to_path_buf())
    })
}

/// What in the project is not this deployment's (pure: the unit tests drive it). `stack` is
/// this checkout's stack file, absolute.
pub fn foreign(
    ours: &str,
    tenant: &str,
    stack: &Path,
    list: &[Container],
    networks: &[NetworkLabels],
) -> Vec<Foreign> {
    let mut out = Vec::new();
    for c in list {
        let mine = if c.deployment.is_empty() {
            // Made before deployment IDs: ours only if started from this very stack file.
            c.tenant == tenant && c.config_files.split(',').any(|f| Path::new(f) == stack)
        } else {
            c.deployment == ours && c.tenant == tenant
        };
        if !mine {
            let origin = if c.working_dir.is_empty() {
                c.config_files.clone()
            } else {
                c.working_dir.clone()
            };
            out.push(Foreign {
                what: format!("container {}", c.name),
                deployment: c.deployment.clone(),
                origin,
            });
        }
    }
    for n in networks {
        // A network has no compose file label; one from an older stackgen (tenant label, no ID)
        // is compose's to reuse: the containers above decide who runs the tenant.
        let mine = if n.deployment.is_empty() {
            n.tenant == tenant
        } else {
            n.deployment == ours
        };
        if !mine {
            out.push(Foreign {
                what: format!("network {}", n.name),
                deployment: n.deployment.clone(),
                origin: String::new(),
            });
        }
    }
    out
}

/// The refusal for [`foreign`]'s findings: what, whose, and what to do.
pub fn refusal(tenant: &Tenant, ours: &str, found: &[Foreign]) -> String {
    let t = &tenant.name;
    let mut lines = vec![format!(
        "tenant `{t}` is run by another deployment, not by this manifest ({KEY}={ours}); nothing was done:"
    )];
    for f in found {
        let owner = if f.deployment.is_empty() {
            format!("no {LABEL} label (not started from this checkout's stack)")
        } else {
            format!("owned by deployment {}", f.deployment)
        };
        let origin = if f.origin.is_empty() {
            String::new()
        } else {
            format!(", started from {}", f.origin)
        };
        lines.push(format!("  {}: {owner}{origin}", f.what));
    }
    lines.push(format!(
        "  fix: manage tenant `{t}` from the manifest that started it, or give this manifest's tenant another name; \
         to take it over on purpose, stop it there first (`stackgen down {t}` with that manifest)"
    ));
    lines.join("\n")
}

/// The manifest's ID, or the refusal for a manifest that has none yet (exit 2).
pub fn required<'a>(tenant: &'a Tenant, manifest: &Path) -> Result<&'a str, UsageError> {
    tenant.deployment.as_deref().ok_or_else(|| {
        UsageError::plain(format!(
            "{}: has no {KEY} line, so stackgen cannot tell this manifest's containers from another's; nothing was done\n  \
             fix: run `stackgen --env-file {} init --non-interactive` once (it appends a {KEY} line and changes nothing else), then `stackgen render {}`",
            manifest.display(),
            manifest.display(),
            tenant.name
        ))
    })
}

/// Proves that every container (`list`: the tenant's compose project, already queried) and
/// every network of the tenant's compose project belongs to deployment `ours`. `stack` is the
/// tenant's stack file as the operator named it. `labelled_only`: look only at what carries the
/// tenant's stackgen label (teardown, which never touches anything else, leaves the rest alone).
pub fn check(
    tools: &Tools,
    ours: &str,
    tenant: &Tenant,
    stack: &Path,
    list: &[Container],
    labelled_only: bool,
) -> Result<()> {
    let mut nets = parse_networks(&exec::capture_ok(&list_networks(tools, &tenant.name))?)?;
    let mut list = list.to_vec();
    if labelled_only {
        list.retain(|c| c.tenant == tenant.name);
        nets.retain(|n| n.tenant == tenant.name);
    }
    let found = foreign(ours, &tenant.name, &absolute(stack), &list, &nets);
    if !found.is_empty() {
        anyhow::bail!("{}", refusal(tenant, ours, &found));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container(name: &str, tenant: &str, deployment: &str, files: &str) -> Container {
        let json = serde_json::json!({
            "id": name, "name": name, "tenant": tenant, "service": "redis", "project": "team-a",
            "compose_service": "redis", "image": "redis", "state": "running", "status": "Up",
            "ports": "", "deployment": deployment, "config_files": files,
            "working_dir": if files.is_empty() { "" } else { "/other/checkout" },
        });
        serde_json::from_value(json).unwrap()
    }

    fn net(name: &str, tenant: &str, deployment: &str) -> NetworkLabels {
        NetworkLabels {
            name: name.into(),
            tenant: tenant.into(),
            deployment: deployment.into(),
        }
    }

    const STACK: &str = "/srv/ops/stacks/team-a-stack.yml";

    #[test]
    fn own_containers_and_networks_pass() {
        let list = [container(
            "team-a-redis-1",
            "team-a",
            "d1d1d1d1d1d1d1d1",
            "",
        )];
        let nets = [net("ai-platform-team-a", "team-a", "d1d1d1d1d1d1d1d1")];
        assert!(foreign("d1d1d1d1d1d1d1d1", "team-a", Path::new(STACK), &list, &nets).is_empty());
        assert!(foreign("d1d1d1d1d1d1d1d1", "team-a", Path::new(STACK), &[], &[]).is_empty());
    }

    #[test]
    fn another_deployments_container_or_network_is_refused_with_its_id() {
        let list = [container(
            "team-a-redis-1",
            "team-a",
            "e2e2e2e2e2e2e2e2",
            "/other/checkout/stacks/team-a-stack.yml",
        )];
        let found = foreign("d1d1d1d1d1d1d1d1", "team-a", Path::new(STACK), &list, &[]);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].deployment, "e2e2e2e2e2e2e2e2");
        let nets = [net("ai-platform-team-a", "team-a", "e2e2e2e2e2e2e2e2")];
        let found_net = foreign("d1d1d1d1d1d1d1d1", "team-a", Path::new(STACK), &[], &nets);
        assert_eq!(found_net[0].what, "network ai-platform-team-a");
        let mut tenant = crate::manifest::Manifest::from_text(
            Path::new(".env"),
            &crate::manifest::init::plan(
                Path::new(".env"),
                None,
                &crate::manifest::init::InitOptions {
                    tenants: vec![crate::manifest::init::NewTenant::new(
                        "team-a", "qdrant", "redis",
                    )],
                    ..Default::default()
                },
            )
            .unwrap()
            .text,
        )
        .unwrap()
        .tenants
        .remove(0);
        tenant.deployment = Some("d1d1d1d1d1d1d1d1".into());
        let msg = refusal(&tenant, "d1d1d1d1d1d1d1d1", &found);
        assert!(
            msg.contains("owned by deployment e2e2e2e2e2e2e2e2"),
            "{msg}"
        );
        assert!(msg.contains("started from /other/checkout"), "{msg}");
        assert!(msg.contains("nothing was done"), "{msg}");
    }

    #[test]
    fn an_unlabelled_container_passes_only_from_this_stack_file() {
        // An older stackgen's container, started from this checkout: adopted.
        let here = [container("team-a-redis-1", "team-a", "", STACK)];
        assert!(foreign("d1d1d1d1d1d1d1d1", "team-a", Path::new(STACK), &here, &[]).is_empty());
        // From another checkout, or made by hand without any stackgen label: refused.
        let there = [container(
            "team-a-redis-1",
            "team-a",
            "",
            "/elsewhere/stacks/team-a-stack.yml",
        )];
        let found = foreign("d1d1d1d1d1d1d1d1", "team-a", Path::new(STACK), &there, &[]);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].deployment, "");
        let by_hand = [container("team-a-redis-1", "", "", STACK)];
        assert_eq!(
            foreign(
                "d1d1d1d1d1d1d1d1",
                "team-a",
                Path::new(STACK),
                &by_hand,
                &[]
            )
            .len(),
            1
        );
        // A network an older stackgen made for this tenant is compose's to reuse; one without
        // the tenant label is not.
        let old = [net("ai-platform-team-a", "team-a", "")];
        assert!(foreign("d1d1d1d1d1d1d1d1", "team-a", Path::new(STACK), &[], &old).is_empty());
        let alien = [net("ai-platform-team-a", "", "")];
        assert_eq!(
            foreign("d1d1d1d1d1d1d1d1", "team-a", Path::new(STACK), &[], &alien).len(),
            1
        );
    }
}
