//! The commands teardown runs, as argument vectors (pure; `--dry-run` prints them and a unit
//! test pins them). Every selection is by two labels at once, which Docker ANDs: the tenant's
//! stackgen label and its compose project. A container or network carrying only one of them
//! (made by hand, or by another tool reusing the project name) is never listed, so never touched.

use std::ffi::OsString;
use std::path::Path;

use anyhow::{Context, Result};
use serde::Deserialize;

use crate::ops::compose::containers::{self, FORMAT};
use crate::ops::compose::{exec, Cmd, Container, Tools};
use crate::policy::TENANT_LABEL;

/// Compose's own project label.
pub const PROJECT_LABEL: &str = "com.docker.compose.project";

/// How long `docker stop` waits for a clean shutdown (postgres flushes its WAL) before SIGKILL.
pub const STOP_TIMEOUT_SECS: u32 = 30;

/// `docker network ls --format`: one JSON object per network, labels read by name.
pub const NETWORK_FORMAT: &str = concat!(
    r#"{"id":{{json .ID}},"name":{{json .Name}},"#,
    r#""tenant":{{json (.Label "com.stackgen.tenant")}},"#,
    r#""project":{{json (.Label "com.docker.compose.project")}}}"#
);

/// One network as `docker network ls` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Network {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub tenant: String,
    #[serde(default)]
    pub project: String,
}

fn docker(tools: &Tools, words: &[&str]) -> Vec<OsString> {
    let mut v = tools.docker_argv();
    v.extend(words.iter().map(OsString::from));
    v
}

fn both_labels(tenant: &str) -> [String; 4] {
    [
        "--filter".into(),
        format!("label={TENANT_LABEL}={tenant}"),
        "--filter".into(),
        format!("label={PROJECT_LABEL}={tenant}"),
    ]
}

/// `docker ps --all` of the containers with both labels.
pub fn list_containers(tools: &Tools, tenant: &str) -> Cmd {
    let mut v = docker(tools, &["ps", "--all", "--no-trunc"]);
    v.extend(both_labels(tenant).iter().map(OsString::from));
    v.extend(["--format", FORMAT].map(OsString::from));
    Cmd::new(v, "docker ps")
}

/// `docker network ls` of the networks with both labels.
pub fn list_networks(tools: &Tools, tenant: &str) -> Cmd {
    let mut v = docker(tools, &["network", "ls", "--no-trunc"]);
    v.extend(both_labels(tenant).iter().map(OsString::from));
    v.extend(["--format", NETWORK_FORMAT].map(OsString::from));
    Cmd::new(v, "docker network ls")
}

/// `docker stop --time N ID...`: a clean shutdown before anything is archived or removed.
pub fn stop(tools: &Tools, containers: &[Container]) -> Cmd {
    let t = STOP_TIMEOUT_SECS.to_string();
    let mut v = docker(tools, &["stop", "--time", &t]);
    v.extend(containers.iter().map(|c| OsString::from(&c.id)));
    Cmd::new(v, "docker stop")
}

/// `docker rm [-v] ID...`. `-v` (with `--purge-data` only) also removes the containers'
/// anonymous volumes; named volumes are never removed by `docker rm`.
pub fn remove(tools: &Tools, containers: &[Container], anonymous_volumes: bool) -> Cmd {
    let mut v = docker(tools, &["rm"]);
    if anonymous_volumes {
        v.push("-v".into());
    }
    v.extend(containers.iter().map(|c| OsString::from(&c.id)));
    Cmd::new(v, "docker rm")
}

/// `docker network rm ID...`
pub fn remove_networks(tools: &Tools, networks: &[Network]) -> Cmd {
    let mut v = docker(tools, &["network", "rm"]);
    v.extend(networks.iter().map(|n| OsString::from(&n.id)));
    Cmd::new(v, "docker network rm")
}

/// `apparmor_parser -R FILE`: removes a loaded profile from the kernel.
pub fn unload_profile(file: &Path) -> Cmd {
    let v = vec![
        OsString::from(crate::ops::apparmor::PARSER),
        "-R".into(),
        file.as_os_str().to_owned(),
    ];
    Cmd::new(v, "apparmor_parser -R")
}

/// The tenant's containers, re-checked after the filter: both labels must name the tenant.
pub fn containers_of(tools: &Tools, tenant: &str) -> Result<Vec<Container>> {
    let out = exec::capture_ok(&list_containers(tools, tenant))?;
    let mut list = containers::parse(&out)?;
    list.retain(|c| c.tenant == tenant && c.project == tenant);
    list.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(list)
}

/// The tenant's networks, re-checked after the filter like the containers.
pub fn networks_of(tools: &Tools, tenant: &str) -> Result<Vec<Network>> {
    let out = exec::capture_ok(&list_networks(tools, tenant))?;
    let mut list = parse_networks(&out)?;
    list.retain(|n| n.tenant == tenant && n.project == tenant);
    list.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(list)
}

pub fn parse_networks(stdout: &str) -> Result<Vec<Network>> {
    stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str(l)
                .with_context(|| format!("unexpected `docker network ls` output: {l}"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn container(id: &str) -> Container {
        serde_json::from_str(&format!(
            r#"{{"id":"{id}","name":"n","image":"i","state":"running","status":"Up"}}"#
        ))
        .unwrap()
    }

    #[test]
    fn argument_vectors() {
        let t = Tools::fixed("docker");
        let cs = [container("c1"), container("c2")];
        let net = Network {
            id: "n1".into(),
            name: "ai-platform-team-a".into(),
            tenant: "team-a".into(),
            project: "team-a".into(),
        };
        let line = |c: Cmd| c.shell_line();
        let ps = line(list_containers(&t, "team-a"));
        assert!(ps.starts_with(
            "docker ps --all --no-trunc --filter label=com.stackgen.tenant=team-a --filter label=com.docker.compose.project=team-a --format "
        ), "{ps}");
        let nets = line(list_networks(&t, "team-a"));
        assert!(nets.starts_with(
            "docker network ls --no-trunc --filter label=com.stackgen.tenant=team-a --filter label=com.docker.compose.project=team-a --format "
        ), "{nets}");
        assert_eq!(line(stop(&t, &cs)), "docker stop --time 30 c1 c2");
        assert_eq!(line(remove(&t, &cs, false)), "docker rm c1 c2");
        assert_eq!(line(remove(&t, &cs, true)), "docker rm -v c1 c2");
        assert_eq!(line(remove_networks(&t, &[net])), "docker network rm n1");
        assert_eq!(
            line(unload_profile(&PathBuf::from(
                "stacks/team-a/apparmor/ai-platform-team-a"
            ))),
            "apparmor_parser -R stacks/team-a/apparmor/ai-platform-team-a"
        );
    }

    #[test]
    fn networks_parse() {
        let out = r#"{"id":"abc","name":"ai-platform-t","tenant":"t","project":"t"}
{"id":"def","name":"other","tenant":"","project":"t"}
"#;
        let n = parse_networks(out).unwrap();
        assert_eq!(n.len(), 2);
        assert_eq!(n[1].tenant, "");
        assert!(parse_networks("garbage").is_err());
    }
}
