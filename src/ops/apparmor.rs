//! AppArmor on the host: whether the kernel enforces it, and loading a tenant's rendered profiles
//! (`crate::render::apparmor`) into it with `apparmor_parser -r -W`.
//!
//! Docker applies `security_opt: apparmor=<profile>` only when the host kernel has AppArmor
//! enabled. Where it is not, Docker silently ignores the option and the container runs
//! unconfined; where it is but the profile is not loaded, Docker refuses to start the container.
//! So nothing here pretends: [`host_state`] says which case applies, and [`load`] refuses to run
//! on a host without AppArmor instead of reporting success. `stackgen up` uses the same API.

use std::ffi::OsString;
use std::fs;
use std::path::Path;

use anyhow::{Context, Result};

use crate::error::{CommandFailed, Drift};
use crate::manifest::{Manifest, Tenant};
use crate::platform::model;
use crate::render::apparmor::profiles;
use crate::render::compose::{self as render};
use crate::render::Display;

/// The kernel's switch: `Y` when AppArmor is enabled (the module may be built in but off).
pub const ENABLED_FILE: &str = "/sys/module/apparmor/parameters/enabled";
/// Loaded profiles, one `name (mode)` per line (readable by root).
pub const LOADED_PROFILES_FILE: &str = "/sys/kernel/security/apparmor/profiles";
/// The loader, from the `apparmor` package.
pub const PARSER: &str = "apparmor_parser";

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
}
