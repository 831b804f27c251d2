//! Reading containers back from `docker ps`: one JSON object per line, built by a Go template
//! that picks exactly the fields stackgen uses (labels by name, not docker's comma-joined list).
//!
//! One `docker ps` call answers `status` for every tenant at once, which is why this reads the
//! engine directly instead of running `docker compose ps` once per tenant.

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::argv::{self, Select};
use super::{exec, Tools};

/// The `docker ps --format` template: one JSON object per container.
pub const FORMAT: &str = concat!(
    r#"{"id":{{json .ID}},"name":{{json .Names}},"#,
    r#""tenant":{{json (.Label "com.stackgen.tenant")}},"#,
    r#""service":{{json (.Label "com.stackgen.service")}},"#,
    r#""project":{{json (.Label "com.docker.compose.project")}},"#,
    r#""compose_service":{{json (.Label "com.docker.compose.service")}},"#,
    r#""deployment":{{json (.Label "com.stackgen.deployment")}},"#,
    r#""config_files":{{json (.Label "com.docker.compose.project.config_files")}},"#,
    r#""working_dir":{{json (.Label "com.docker.compose.project.working_dir")}},"#,
    r#""image":{{json .Image}},"state":{{json .State}},"status":{{json .Status}},"#,
    r#""ports":{{json .Ports}}}"#
);

/// One container as `docker ps` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Container {
    pub id: String,
    pub name: String,
    /// `com.stackgen.tenant`; empty on containers stackgen did not create.
    #[serde(default)]
    pub tenant: String,
    #[serde(default)]
    pub service: String,
    #[serde(default)]
    pub project: String,
    #[serde(default)]
    pub compose_service: String,
    /// `com.stackgen.deployment`: the manifest that owns it (see `crate::ops::deployment`).
    #[serde(default)]
    pub deployment: String,
    /// Compose's `config_files` and `working_dir` labels: where it was started from.
    #[serde(default)]
    pub config_files: String,
    #[serde(default)]
    pub working_dir: String,
    pub image: String,
    /// `running`, `exited`, `restarting`, `created`, `paused`, `dead`.
    pub state: String,
    /// Docker's human status, e.g. `Up 3 minutes (healthy)`.
    pub status: String,
    /// Docker's port list, e.g. `127.0.0.1:20010->8080/tcp, 0.0.0.0:20000->80/tcp`.
    #[serde(default)]
    pub ports: String,
}

/// A container's health, from its healthcheck.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    Healthy,
    Unhealthy,
    Starting,
    /// No healthcheck, or the container is not running.
    None,
}

impl Health {
    /// The word `status` prints.
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Healthy => "healthy",
            Health::Unhealthy => "unhealthy",
            Health::Starting => "starting",
            Health::None => "-",
        }
    }
}

/// One published port of a container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Published {
    pub host_ip: String,
    pub host_port: u16,
    pub container_port: u16,
    pub protocol: String,
}

impl Container {
    /// Docker's state is `running` (restarting and paused are not).
    pub fn is_running(&self) -> bool {
        self.state == "running"
    }

    /// Docker puts the health in the status text: `Up 2 minutes (healthy)`.
    pub fn health(&self) -> Health {
        if !self.is_running() {
            Health::None
        } else if self.status.contains("(healthy)") {
            Health::Healthy
        } else if self.status.contains("(unhealthy)") {
            Health::Unhealthy
        } else if self.status.contains("(health: starting)") {
            Health::Starting
        } else {
            Health::None
        }
    }

    /// The service name: stackgen's label, else compose's.
    pub fn service_name(&self) -> &str {
        if self.service.is_empty() {
            &self.compose_service
        } else {
            &self.service
        }
    }

    /// Published ports, IPv4 and IPv6 listings of the same binding counted once.
    pub fn published(&self) -> Vec<Published> {
        let mut out: Vec<Published> = Vec::new();
        for p in parse_ports(&self.ports) {
            let dup = out.iter().any(|q| {
                q.host_port == p.host_port
                    && q.protocol == p.protocol
                    && q.container_port == p.container_port
            });
            if !dup {
                out.push(p);
            }
        }
        out
    }
}

/// Parses docker's port list. Entries without `->` (exposed, not published) are skipped; a
/// range (`8000-8001->8000-8001/tcp`) becomes one entry per port.
pub fn parse_ports(text: &str) -> Vec<Published> {
    let mut out = Vec::new();
    for entry in text.split(", ").map(str::trim).filter(|e| !e.is_empty()) {
        let Some((host, inner)) = entry.split_once("->") else {
            continue;
        };
        let (inner_ports, protocol) = inner.split_once('/').unwrap_or((inner, "tcp"));
        let Some((ip, host_ports)) = host.rsplit_once(':') else {
            continue;
        };
        let range = |s: &str| -> Option<(u16, u16)> {
            match s.split_once('-') {
                Some((a, b)) => Some((a.parse().ok()?, b.parse().ok()?)),
                None => s.parse().ok().map(|p| (p, p)),
            }
        };
        let (Some((h0, h1)), Some((c0, _))) = (range(host_ports), range(inner_ports)) else {
            continue;
        };
        for (i, hp) in (h0..=h1).enumerate() {
            out.push(Published {
                host_ip: ip.to_string(),
                host_port: hp,
                container_port: c0 + i as u16,
                protocol: protocol.to_string(),
            });
        }
    }
    out
}

/// Parses `docker ps --format FORMAT` output.
pub fn parse(stdout: &str) -> Result<Vec<Container>> {
    stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str::<Container>(l)
                .with_context(|| format!("unexpected `docker ps` output: {l}"))
        })
        .collect()
}

/// Runs `docker ps` for the selection and parses it, sorted by tenant, service, name.
pub fn query(tools: &Tools, select: &Select<'_>) -> Result<Vec<Container>> {
    let out = exec::capture_ok(&argv::containers(tools, select))?;
    let mut list = parse(&out)?;
    list.sort_by(|a, b| {
        (&a.tenant, a.service_name(), &a.name).cmp(&(&b.tenant, b.service_name(), &b.name))
    });
    Ok(list)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_parsed_and_deduplicated() {
        let c = Container {
            id: "x".into(),
            name: "team-a-caddy-1".into(),
            tenant: "team-a".into(),
            service: "caddy".into(),
            project: "team-a".into(),
            compose_service: "caddy".into(),
            deployment: String::new(),
            config_files: String::new(),
            working_dir: String::new(),
            image: "caddy:2".into(),
            state: "running".into(),
            status: "Up 2 minutes (healthy)".into(),
            ports: "0.0.0.0:20000->80/tcp, :::20000->80/tcp, 0.0.0.0:20001->443/tcp, \
                    0.0.0.0:20001->443/udp, 2019/tcp"
                .into(),
        };
        let p = c.published();
        assert_eq!(p.len(), 3, "{p:?}");
        assert_eq!(p[0].host_port, 20000);
        assert_eq!(p[2].protocol, "udp");
        assert_eq!(c.health(), Health::Healthy);
        let ranged = parse_ports("127.0.0.1:8000-8001->9000-9001/tcp");
        assert_eq!(ranged.len(), 2);
        assert_eq!(
            (ranged[1].host_port, ranged[1].container_port),
            (8001, 9001)
        );
    }

    #[test]
    fn health_comes_from_the_status_text() {
        let mut c: Container = serde_json::from_str(
            r#"{"id":"1","name":"n","tenant":"","service":"","project":"","compose_service":"redis","image":"i","state":"running","status":"Up 1 second (health: starting)","ports":""}"#,
        )
        .unwrap();
        assert_eq!(c.health(), Health::Starting);
        assert_eq!(c.service_name(), "redis");
        c.status = "Up 1 minute (unhealthy)".into();
        assert_eq!(c.health(), Health::Unhealthy);
        c.state = "exited".into();
        assert_eq!(c.health(), Health::None);
    }
}
