//! AppArmor profiles as files: which profiles a tenant's services use, and rendering each into
//! `stacks/<tenant>/apparmor/<profile>` from the facts of the assembled stack entries (so the
//! profile and the stack file cannot disagree). Loading them into a kernel is
//! `crate::ops::apparmor`'s job.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use indexmap::IndexMap;
use minijinja::value::Value as JValue;
use serde::Serialize;

use crate::manifest::Tenant;
use crate::platform::catalog::ApparmorProfile;
use crate::platform::model::ResolvedService;
use crate::policy;
use crate::render::templates::environment;
use crate::render::RenderedFile;

use crate::policy::DENIED_CAPABILITIES;

/// One profile a tenant uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    pub kind: ApparmorProfile,
    /// `ai-platform-<tenant>[-openclaw|-tailscale]`, as in `security_opt`.
    pub name: String,
    /// `<tenant>/apparmor/<name>`, relative to the stacks directory.
    pub path: PathBuf,
}

const KINDS: [ApparmorProfile; 3] = [
    ApparmorProfile::Default,
    ApparmorProfile::Openclaw,
    ApparmorProfile::Tailscale,
];

/// The profiles the tenant's services use (only those), in a fixed order.
pub fn profiles(tenant: &Tenant, services: &[ResolvedService]) -> Vec<Profile> {
    KINDS
        .into_iter()
        .filter(|k| services.iter().any(|s| s.def.apparmor == *k))
        .map(|kind| {
            let name = policy::apparmor_profile(tenant, kind);
            Profile {
                kind,
                path: PathBuf::from(&tenant.name).join("apparmor").join(&name),
                name,
            }
        })
        .collect()
}

/// What rendering a profile needs to know about one service, taken from its assembled stack
/// entry so the profile and the stack file cannot disagree.
#[derive(Debug, Clone)]
pub struct ServiceFacts {
    pub name: String,
    pub kind: ApparmorProfile,
    /// Compose `cap_add` (upper case, as in the stack file).
    pub cap_add: Vec<String>,
    /// Compose `tmpfs` entries (`/path:options`).
    pub tmpfs: Vec<String>,
    /// Compose short-syntax `volumes` (`source:target[:ro]`).
    pub volumes: Vec<String>,
    /// Compose `devices` (`host:container`).
    pub devices: Vec<String>,
}

#[derive(Serialize)]
struct Cap {
    name: String,
    services: Vec<String>,
}

/// Renders the profiles for the services in `facts`; `ctx` is the tenant's template context.
pub fn render_profiles(
    tenant: &Tenant,
    facts: &[ServiceFacts],
    ctx: &IndexMap<&'static str, JValue>,
) -> Result<Vec<RenderedFile>> {
    let env = environment();
    let mut files = Vec::new();
    for kind in KINDS {
        let mine: Vec<&ServiceFacts> = facts.iter().filter(|f| f.kind == kind).collect();
        if mine.is_empty() {
            continue;
        }
        let name = policy::apparmor_profile(tenant, kind);
        let mut caps: Vec<Cap> = Vec::new();
        let mut writable: Vec<String> = Vec::new();
        let mut devices: Vec<String> = Vec::new();
        for f in &mine {
            for c in &f.cap_add {
                let cap = c.to_ascii_lowercase();
                if DENIED_CAPABILITIES.contains(&cap.as_str()) {
                    bail!(
                        "{} adds {c}, which every AppArmor profile denies (see DENIED_CAPABILITIES in src/policy/mod.rs)",
                        f.name
                    );
                }
                match caps.iter_mut().find(|k| k.name == cap) {
                    Some(k) => k.services.push(f.name.clone()),
                    None => caps.push(Cap {
                        name: cap,
                        services: vec![f.name.clone()],
                    }),
                }
            }
            // The ordinary profile allows file access as docker-default does (`file,`), so
            // only the confined ones list writable paths and devices.
            if kind == ApparmorProfile::Default {
                continue;
            }
            let targets = f.tmpfs.iter().map(|t| t.split(':').next().unwrap_or(t));
            let rw_volumes = f.volumes.iter().filter_map(|v| {
                let mut parts = v.split(':');
                let (_, target, mode) = (parts.next(), parts.next()?, parts.next());
                (!mode.is_some_and(|m| m.split(',').any(|o| o == "ro"))).then_some(target)
            });
            for path in targets.chain(rw_volumes) {
                push_unique(&mut writable, glob_for(&f.name, path)?);
            }
            for d in &f.devices {
                let target = d.split(':').nth(1).unwrap_or(d);
                push_unique(&mut devices, glob_for(&f.name, target)?);
            }
        }
        let (template, purpose) = match kind {
            ApparmorProfile::Default => (
                "files/apparmor-default.j2",
                "its ordinary services (all but openclaw and its tailscale sidecar)",
            ),
            ApparmorProfile::Openclaw => (
                "files/apparmor-confined.j2",
                "openclaw, the agent gateway, reachable only on the tailnet",
            ),
            ApparmorProfile::Tailscale => (
                "files/apparmor-confined.j2",
                "the tailscale sidecar that owns openclaw's network namespace",
            ),
        };
        let mut pctx = ctx.clone();
        pctx.insert("name", JValue::from(name.clone()));
        pctx.insert("purpose", JValue::from(purpose));
        let services: Vec<&str> = mine.iter().map(|f| f.name.as_str()).collect();
        pctx.insert("services", JValue::from_serialize(&services));
        pctx.insert("capabilities", JValue::from_serialize(&caps));
        pctx.insert("writable", JValue::from_serialize(&writable));
        pctx.insert("devices", JValue::from_serialize(&devices));
        pctx.insert(
            "denied_capabilities",
            JValue::from_serialize(DENIED_CAPABILITIES),
        );
        let content = env
            .get_template(template)
            .and_then(|t| t.render(&pctx))
            .with_context(|| format!("rendering {template} for tenant {}", tenant.name))?;
        files.push(RenderedFile {
            path: PathBuf::from(&tenant.name).join("apparmor").join(&name),
            content,
        });
    }
    Ok(files)
}

fn push_unique(list: &mut Vec<String>, item: String) {
    if !list.contains(&item) {
        list.push(item);
    }
}

/// A container path as an AppArmor path. Only plain characters are accepted, so no template
/// can smuggle glob syntax into a profile. Under `/var/run` both spellings are allowed: in
/// most images `/var/run` is a symlink to `/run`, and AppArmor sees the resolved path.
fn glob_for(service: &str, path: &str) -> Result<String> {
    let plain = path.starts_with('/')
        && path.len() > 1
        && path
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-".contains(c));
    if !plain || path.contains("..") {
        bail!("{service}: container path `{path}` cannot be written into an AppArmor profile");
    }
    let path = path.trim_end_matches('/');
    Ok(match path.strip_prefix("/var/run/") {
        Some(rest) => format!("/{{,var/}}run/{rest}"),
        None => path.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_paths_become_plain_globs() {
        assert_eq!(glob_for("s", "/tmp").unwrap(), "/tmp");
        assert_eq!(glob_for("s", "/var/lib/x/").unwrap(), "/var/lib/x");
        assert_eq!(
            glob_for("s", "/var/run/tailscale").unwrap(),
            "/{,var/}run/tailscale"
        );
        for bad in ["/", "tmp", "/a b", "/a/*", "/a/{b,c}", "/a/../b", "/a!b"] {
            assert!(glob_for("s", bad).is_err(), "{bad}");
        }
    }
}
