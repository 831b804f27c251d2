//! AppArmor: each tenant's profiles (rendered into `stacks/<tenant>/apparmor/<profile>`) and
//! loading them into the host kernel with `apparmor_parser -r -W`.
//!
//! Docker applies `security_opt: apparmor=<profile>` only when the host kernel has AppArmor
//! enabled. Where it is not, Docker silently ignores the option and the container runs
//! unconfined; where it is but the profile is not loaded, Docker refuses to start the container.
//! So nothing here pretends: [`host_state`] says which case applies, and [`load`] refuses to run
//! on a host without AppArmor instead of reporting success. `stackgen up` uses the same API.

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use indexmap::IndexMap;
use minijinja::value::Value as JValue;
use serde::Serialize;

use crate::catalog::ApparmorProfile;
use crate::error::{CommandFailed, Drift};
use crate::manifest::{Manifest, Tenant};
use crate::model::{self, ResolvedService};
use crate::policy;
use crate::render::{self, Display, RenderedFile};
use crate::templates::environment;

/// The kernel's switch: `Y` when AppArmor is enabled (the module may be built in but off).
pub const ENABLED_FILE: &str = "/sys/module/apparmor/parameters/enabled";
/// Loaded profiles, one `name (mode)` per line (readable by root).
pub const LOADED_PROFILES_FILE: &str = "/sys/kernel/security/apparmor/profiles";
/// The loader, from the `apparmor` package.
pub const PARSER: &str = "apparmor_parser";

/// Capabilities every profile denies explicitly, whatever a stack adds (a `deny` beats an
/// allow): kernel modules, raw I/O, raw sockets, tracing, MAC policy, clock, reboot, kernel log.
pub const DENIED_CAPABILITIES: [&str; 9] = [
    "sys_module",
    "sys_rawio",
    "net_raw",
    "sys_ptrace",
    "mac_admin",
    "mac_override",
    "sys_time",
    "sys_boot",
    "syslog",
];

/// Whether the host kernel enforces AppArmor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostApparmor {
    Enabled,
    /// Not enabled, with the reason in words (Docker then ignores `apparmor=`).
    Disabled(String),
}

impl HostApparmor {
    pub fn is_enabled(&self) -> bool {
        matches!(self, HostApparmor::Enabled)
    }

    /// One sentence for the operator, naming the consequence for the services.
    pub fn describe(&self) -> String {
        match self {
            HostApparmor::Enabled => "AppArmor is enabled on this host".to_string(),
            HostApparmor::Disabled(why) => format!(
                "AppArmor is not enabled on this host ({why}); Docker silently ignores \
                 `apparmor=` there, so the services are NOT confined by their profiles"
            ),
        }
    }
}

/// The host's AppArmor state, from [`ENABLED_FILE`].
pub fn host_state() -> HostApparmor {
    host_state_from(Path::new(ENABLED_FILE))
}

/// [`host_state`] with the switch file given (for tests).
pub fn host_state_from(enabled_file: &Path) -> HostApparmor {
    match fs::read_to_string(enabled_file) {
        Ok(s) if s.trim() == "Y" => HostApparmor::Enabled,
        Ok(s) => HostApparmor::Disabled(format!(
            "{} is `{}`: the kernel has AppArmor but it is switched off (boot parameter \
             apparmor=0, or another security module is active)",
            enabled_file.display(),
            s.trim()
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => HostApparmor::Disabled(format!(
            "{} does not exist: the kernel has no AppArmor",
            enabled_file.display()
        )),
        Err(e) => HostApparmor::Disabled(format!("cannot read {}: {e}", enabled_file.display())),
    }
}

/// Whether the kernel has a profile of this name loaded (false when AppArmor is off).
pub fn is_loaded(name: &str) -> Result<bool> {
    let text = match fs::read_to_string(LOADED_PROFILES_FILE) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e).with_context(|| format!("reading {LOADED_PROFILES_FILE}")),
    };
    Ok(text
        .lines()
        .any(|l| l.rsplit_once(" (").map_or(l, |(n, _)| n) == name))
}

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
                        "{} adds {c}, which every AppArmor profile denies (see DENIED_CAPABILITIES in src/apparmor.rs)",
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

/// The argument vector that loads (or replaces) one profile file and caches the compiled form.
pub fn load_argv(profile_file: &Path) -> Vec<OsString> {
    vec![
        PARSER.into(),
        "-r".into(),
        "-W".into(),
        profile_file.as_os_str().to_owned(),
    ]
}

/// What [`load`] found and did.
#[derive(Debug, Clone)]
pub struct LoadReport {
    pub host: HostApparmor,
    /// One argument vector per profile, in order.
    pub commands: Vec<Vec<OsString>>,
    /// The profile names, in the same order.
    pub profiles: Vec<String>,
    /// False for a dry run.
    pub loaded: bool,
}

/// The host cannot confine anything: `load` refuses rather than pretend (exit status 1).
#[derive(Debug)]
pub struct NotEnabled {
    pub tenant: String,
    pub host: HostApparmor,
}

impl std::fmt::Display for NotEnabled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "cannot load the AppArmor profiles of tenant `{}`: {}. Nothing was loaded.",
            self.tenant,
            self.host.describe()
        )
    }
}

impl std::error::Error for NotEnabled {}

/// Loads the tenant's rendered profiles from `stacks_dir` with `apparmor_parser -r -W`, one
/// profile at a time. The files must match what the manifest renders (else [`Drift`]), so the
/// kernel gets the reviewed files. A dry run checks the same and returns the commands unrun.
pub fn load(
    manifest: &Manifest,
    tenant: &Tenant,
    stacks_dir: &Path,
    dry_run: bool,
) -> Result<LoadReport> {
    let services = model::services(&manifest.platform, tenant);
    let wanted = profiles(tenant, &services);
    let display = Display {
        manifest: String::new(),
        stacks_dir: String::new(),
    };
    let rendered = render::render_tenant(manifest, tenant, &display)?;
    let mut stale = Vec::new();
    for p in &wanted {
        let on_disk = stacks_dir.join(&p.path);
        let expected = rendered.iter().find(|f| f.path == p.path);
        let current = fs::read_to_string(&on_disk).ok();
        if expected.map(|f| &f.content) != current.as_ref() {
            stale.push(on_disk);
        }
    }
    if !stale.is_empty() {
        return Err(Drift { files: stale }.into());
    }
    let host = host_state();
    let commands: Vec<Vec<OsString>> = wanted
        .iter()
        .map(|p| load_argv(&stacks_dir.join(&p.path)))
        .collect();
    let report = LoadReport {
        host: host.clone(),
        commands,
        profiles: wanted.iter().map(|p| p.name.clone()).collect(),
        loaded: false,
    };
    if dry_run {
        return Ok(report);
    }
    if !host.is_enabled() {
        return Err(NotEnabled {
            tenant: tenant.name.clone(),
            host,
        }
        .into());
    }
    let parser = which::which(PARSER)
        .with_context(|| format!("`{PARSER}` is not installed; install the `apparmor` package"))?;
    for argv in &report.commands {
        let status = duct::cmd(&parser, &argv[1..])
            .unchecked()
            .run()
            .with_context(|| format!("running {PARSER}"))?
            .status;
        if !status.success() {
            return Err(CommandFailed {
                what: format!("{PARSER} -r -W {}", Path::new(&argv[3]).display()),
                code: status.code().unwrap_or(1),
            }
            .into());
        }
    }
    Ok(LoadReport {
        loaded: true,
        ..report
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_state_reads_the_kernel_switch() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("enabled");
        assert!(
            matches!(host_state_from(&f), HostApparmor::Disabled(w) if w.contains("no AppArmor"))
        );
        fs::write(&f, "Y\n").unwrap();
        assert_eq!(host_state_from(&f), HostApparmor::Enabled);
        fs::write(&f, "N\n").unwrap();
        let state = host_state_from(&f);
        assert!(matches!(&state, HostApparmor::Disabled(w) if w.contains("switched off")));
        assert!(state.describe().contains("NOT confined"));
    }

    #[test]
    fn load_argv_is_an_argument_vector() {
        let argv = load_argv(Path::new("stacks/t/apparmor/ai-platform-t"));
        assert_eq!(
            argv,
            [
                "apparmor_parser",
                "-r",
                "-W",
                "stacks/t/apparmor/ai-platform-t"
            ]
            .map(OsString::from)
            .to_vec()
        );
    }

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
