//! Finding the tools: `docker` on PATH (with `which`), then Compose v2 — the `docker compose`
//! plugin first, else a standalone `docker-compose` that reports a 2.x version.
//!
//! The minimum is Compose 2.20: `up --wait-timeout` arrived in 2.17, and 2.20 is the first with
//! `include` and the dependency fixes the generated stacks (health-gated `depends_on`) rely on.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::{bail, Result};

/// The oldest Compose stackgen drives.
pub const MIN_COMPOSE: (u32, u32) = (2, 20);

const INSTALL_HINT: &str = "install Docker's Compose v2 plugin (Debian 13 / Ubuntu: `apt-get install docker-compose`; Docker's own packages: `docker-compose-plugin`)";

/// How Compose is invoked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// `docker compose ...`
    Plugin,
    /// `docker-compose ...` (a v2 binary installed on its own)
    Standalone,
}

/// The Compose CLI found on this machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compose {
    pub program: PathBuf,
    pub flavor: Flavor,
    /// As Compose prints it (`2.26.1-4`); empty when not probed (dry runs without Docker).
    pub version: String,
}

impl Compose {
    /// The words that start every compose command: `docker compose` or `docker-compose`.
    pub fn argv0(&self) -> Vec<OsString> {
        let mut v = vec![self.program.clone().into_os_string()];
        if self.flavor == Flavor::Plugin {
            v.push("compose".into());
        }
        v
    }

    /// How the operator would name it: `docker compose 2.26.1 (plugin)`.
    pub fn describe(&self) -> String {
        let version = if self.version.is_empty() {
            "version unknown".to_string()
        } else {
            self.version.clone()
        };
        match self.flavor {
            Flavor::Plugin => format!("docker compose {version} (plugin)"),
            Flavor::Standalone => format!(
                "docker-compose {version} (standalone, {})",
                self.program.display()
            ),
        }
    }
}

/// `docker` and Compose, both found, and the engine they talk to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tools {
    pub docker: PathBuf,
    pub compose: Compose,
    /// The Docker context of the tenant's engine (`<T>__DOCKER_CONTEXT`, see `crate::ops::engines`);
    /// `None`: the current context, and the command lines are exactly those of a single host.
    pub context: Option<String>,
}

impl Tools {
    /// Fixed tools for tests and snapshots: `docker` and the plugin, no probing.
    pub fn fixed(docker: &str) -> Tools {
        Tools {
            docker: PathBuf::from(docker),
            compose: Compose {
                program: PathBuf::from(docker),
                flavor: Flavor::Plugin,
                version: String::new(),
            },
            context: None,
        }
    }

    /// The same tools aimed at another engine: `Some(name)` is a Docker context.
    pub fn on(&self, context: Option<&str>) -> Tools {
        Tools {
            context: context.map(str::to_string),
            ..self.clone()
        }
    }

    /// The words that start every plain docker command: `docker [--context NAME]`.
    pub fn docker_argv(&self) -> Vec<OsString> {
        let mut v = vec![self.docker.clone().into_os_string()];
        if let Some(c) = &self.context {
            v.extend(["--context".into(), c.into()]);
        }
        v
    }

    /// The words that start every compose command: `docker [--context NAME] compose`, or for a
    /// standalone `docker-compose` (which has no `--context` flag) `env -u DOCKER_HOST
    /// DOCKER_CONTEXT=NAME docker-compose`: compose reads the context from the environment, and
    /// a DOCKER_HOST in the operator's shell would override it.
    pub fn compose_argv(&self) -> Vec<OsString> {
        let Some(c) = &self.context else {
            return self.compose.argv0();
        };
        match self.compose.flavor {
            Flavor::Plugin => {
                let mut v = self.docker_argv();
                v.push("compose".into());
                v
            }
            Flavor::Standalone => {
                let mut v: Vec<OsString> = vec![
                    "env".into(),
                    "-u".into(),
                    "DOCKER_HOST".into(),
                    format!("DOCKER_CONTEXT={c}").into(),
                ];
                v.extend(self.compose.argv0());
                v
            }
        }
    }

    /// Finds `docker` and a Compose v2 of at least [`MIN_COMPOSE`], or says what to install.
    pub fn find() -> Result<Tools> {
        let docker = find_docker()?;
        let compose = find_compose(&docker)?;
        Ok(Tools {
            docker,
            compose,
            context: None,
        })
    }

    /// For `--dry-run`: the real tools when they are there, else plain `docker compose`, so the
    /// printed commands are still the ones that would run on a machine with Docker.
    pub fn find_or_assume() -> Tools {
        Tools::find().unwrap_or_else(|_| Tools::fixed("docker"))
    }
}

/// `docker` on PATH, or an error that says what to install.
pub fn find_docker() -> Result<PathBuf> {
    match which::which("docker") {
        Ok(p) => Ok(p),
        Err(_) => bail!(
            "`docker` is not on PATH: install the Docker engine and CLI (Debian: `apt-get install docker.io`)"
        ),
    }
}

/// The plugin if `docker compose version` answers with 2.x, else a standalone v2 `docker-compose`.
pub fn find_compose(docker: &Path) -> Result<Compose> {
    let mut seen = Vec::new();
    if let Some(v) = probe_version(docker, &["compose", "version", "--short"]) {
        if let Some(c) = accept(docker, Flavor::Plugin, &v, &mut seen) {
            return Ok(c);
        }
    }
    if let Ok(standalone) = which::which("docker-compose") {
        if let Some(v) = probe_version(&standalone, &["version", "--short"]) {
            if let Some(c) = accept(&standalone, Flavor::Standalone, &v, &mut seen) {
                return Ok(c);
            }
        }
    }
    let (min_major, min_minor) = MIN_COMPOSE;
    if seen.is_empty() {
        bail!("Docker Compose v2 was not found (neither `docker compose` nor `docker-compose`): {INSTALL_HINT}");
    }
    bail!(
        "found only {}; stackgen needs Compose {min_major}.{min_minor} or newer: {INSTALL_HINT}",
        seen.join(" and ")
    )
}

fn accept(
    program: &Path,
    flavor: Flavor,
    version: &str,
    seen: &mut Vec<String>,
) -> Option<Compose> {
    let c = Compose {
        program: program.to_path_buf(),
        flavor,
        version: version.to_string(),
    };
    if parse_version(version).is_some_and(|v| v >= MIN_COMPOSE) {
        Some(c)
    } else {
        seen.push(c.describe());
        None
    }
}

fn probe_version(program: &Path, args: &[&str]) -> Option<String> {
    let out = super::exec::probe(program, args)?;
    if !out.status.success() {
        return None;
    }
    let v = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (!v.is_empty()).then_some(v)
}

/// `2.26.1-4`, `v2.27.0`, `2.20` → (major, minor); anything else → None.
pub fn parse_version(v: &str) -> Option<(u32, u32)> {
    let v = v.trim().trim_start_matches('v');
    let mut parts = v.split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_and_compare() {
        assert_eq!(parse_version("2.26.1-4"), Some((2, 26)));
        assert_eq!(parse_version("v2.27.0"), Some((2, 27)));
        assert_eq!(parse_version("1.29.2"), Some((1, 29)));
        assert_eq!(parse_version("garbage"), None);
        assert!(parse_version("2.19.9").unwrap() < MIN_COMPOSE);
        assert!(parse_version("2.20.0").unwrap() >= MIN_COMPOSE);
        assert!(parse_version("5.0.0").unwrap() >= MIN_COMPOSE);
    }

    #[test]
    fn plugin_and_standalone_start_differently() {
        let mut c = Tools::fixed("docker").compose;
        assert_eq!(c.argv0(), vec![OsString::from("docker"), "compose".into()]);
        c.flavor = Flavor::Standalone;
        c.program = "/usr/bin/docker-compose".into();
        assert_eq!(c.argv0(), vec![OsString::from("/usr/bin/docker-compose")]);
    }

    #[test]
    fn a_context_reaches_every_command_line() {
        let local = Tools::fixed("docker");
        assert_eq!(local.docker_argv(), vec![OsString::from("docker")]);
        let remote = local.on(Some("host-2"));
        let words = |v: Vec<OsString>| {
            v.iter()
                .map(|w| w.to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join(" ")
        };
        assert_eq!(words(remote.docker_argv()), "docker --context host-2");
        assert_eq!(
            words(remote.compose_argv()),
            "docker --context host-2 compose"
        );
        let mut standalone = remote.clone();
        standalone.compose.flavor = Flavor::Standalone;
        standalone.compose.program = "/usr/bin/docker-compose".into();
        assert_eq!(
            words(standalone.compose_argv()),
            "env -u DOCKER_HOST DOCKER_CONTEXT=host-2 /usr/bin/docker-compose"
        );
        assert_eq!(words(remote.on(None).compose_argv()), "docker compose");
    }
}
