//! `stackgen status`: the manifest's tenants joined with their containers — per service its
//! state, health, published ports and image — as a table for people or JSON for scripts.
//!
//! Services the manifest declares but Docker does not have are listed as `not created`, so a
//! tenant that is down still shows every service it would run; containers that carry a tenant's
//! label but no longer belong to its manifest entry are listed too (`declared: false`).

use serde::Serialize;

use crate::manifest::{Manifest, Tenant};
use crate::ops::compose::{Container, Health};
use crate::platform::model;

/// One service of one tenant.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceStatus {
    pub service: String,
    /// The container's name; empty when there is none.
    pub container: String,
    /// Docker's state (`running`, `exited`, `restarting`, ...) or `not created`.
    pub state: String,
    pub health: Health,
    /// `127.0.0.1:20010->8080/tcp`, once per binding.
    pub ports: Vec<String>,
    pub image: String,
    /// False for a container of a service the manifest no longer gives the tenant.
    pub declared: bool,
}

/// One tenant.
#[derive(Debug, Clone, Serialize)]
pub struct TenantStatus {
    pub tenant: String,
    /// False for a label seen on containers of a tenant the manifest does not declare, or of a
    /// tenant of the same name that another manifest (deployment) runs.
    pub declared: bool,
    /// The deployment ID its containers carry (`com.stackgen.deployment`), when one does.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub deployment: String,
    /// The Docker context of its engine; set when the manifest's tenants use several engines.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub engine: String,
    /// Why its engine could not be asked (state `unreachable`); empty otherwise.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub error: String,
    /// `running`, `starting`, `degraded`, `not running`, or `unreachable` (its engine).
    pub state: String,
    pub running: usize,
    pub healthy: usize,
    pub services: Vec<ServiceStatus>,
}

#[derive(Serialize)]
struct Report<'a> {
    /// The current engine's front door (`crate::render::edge`), when a tenant listed is behind
    /// it: the first of `edges` there; kept for scripts written before there were several.
    #[serde(skip_serializing_if = "Option::is_none")]
    edge: Option<&'a TenantStatus>,
    /// Every engine's front door with a tenant listed behind it (`edge`, `edge-<context>`).
    #[serde(skip_serializing_if = "<[TenantStatus]>::is_empty")]
    edges: &'a [TenantStatus],
    tenants: &'a [TenantStatus],
}

pub(crate) fn from_container(c: &Container, declared: bool) -> ServiceStatus {
    ServiceStatus {
        service: c.service_name().to_string(),
        container: c.name.clone(),
        state: c.state.clone(),
        health: c.health(),
        ports: c
            .published()
            .iter()
            .map(|p| {
                format!(
                    "{}:{}->{}/{}",
                    p.host_ip, p.host_port, p.container_port, p.protocol
                )
            })
            .collect(),
        image: c.image.clone(),
        declared,
    }
}

pub(crate) fn summarize(
    tenant: String,
    declared: bool,
    services: Vec<ServiceStatus>,
) -> TenantStatus {
    let running = services.iter().filter(|s| s.state == "running").count();
    let healthy = services
        .iter()
        .filter(|s| {
            s.state == "running" && s.health != Health::Unhealthy && s.health != Health::Starting
        })
        .count();
    let wanted = services.iter().filter(|s| s.declared).count();
    let state = if running == 0 {
        "not running"
    } else if services.iter().any(|s| s.health == Health::Unhealthy)
        || services.iter().any(|s| s.declared && s.state != "running")
        || running < wanted
    {
        "degraded"
    } else if services.iter().any(|s| s.health == Health::Starting) {
        "starting"
    } else {
        "running"
    };
    TenantStatus {
        tenant,
        declared,
        deployment: String::new(),
        engine: String::new(),
        error: String::new(),
        state: state.to_string(),
        running,
        healthy,
        services,
    }
}

/// Joins the tenants with the containers (which may include other tenants' and unlabelled ones;
/// only those labelled for a tenant are used). With `include_undeclared`, labels of tenants the
/// manifest does not declare are reported as extra tenants.
pub fn build(
    manifest: &Manifest,
    tenants: &[&Tenant],
    containers: &[Container],
    include_undeclared: bool,
) -> Vec<TenantStatus> {
    let mut out = Vec::new();
    // A container is this manifest's when it carries this manifest's deployment ID (or none:
    // from before deployment IDs); a tenant of the same name another manifest runs is not.
    // The deployment ID is the manifest's, kept on every tenant.
    let id = manifest.tenants.first().and_then(|t| t.deployment.clone());
    let ours = |c: &Container| match id.as_deref() {
        Some(id) => c.deployment.is_empty() || c.deployment == id,
        None => true,
    };
    for t in tenants {
        let mine: Vec<&Container> = containers
            .iter()
            .filter(|c| c.tenant == t.name && ours(c))
            .collect();
        let mut services = Vec::new();
        for s in model::services(&manifest.platform, t) {
            let found: Vec<&&Container> =
                mine.iter().filter(|c| c.service_name() == s.name).collect();
            if found.is_empty() {
                services.push(ServiceStatus {
                    service: s.name.clone(),
                    container: String::new(),
                    state: "not created".into(),
                    health: Health::None,
                    ports: Vec::new(),
                    image: s.image.clone(),
                    declared: true,
                });
            }
            services.extend(found.iter().map(|c| from_container(c, true)));
        }
        let known: Vec<String> = services.iter().map(|s| s.service.clone()).collect();
        services.extend(
            mine.iter()
                .filter(|c| !known.iter().any(|k| k == c.service_name()))
                .map(|c| from_container(c, false)),
        );
        let mut status = summarize(t.name.clone(), true, services);
        status.deployment = id.clone().unwrap_or_default();
        out.push(status);
    }
    if include_undeclared {
        // Everything else that carries a tenant label: tenants this manifest does not declare,
        // and same-named tenants of other deployments, each kept apart by (tenant, deployment).
        let mut others: Vec<(&str, &str)> = containers
            .iter()
            .filter(|c| !c.tenant.is_empty())
            .filter(|c| manifest.tenant(&c.tenant).is_none() || !ours(c))
            .map(|c| (c.tenant.as_str(), c.deployment.as_str()))
            .collect();
        others.sort_unstable();
        others.dedup();
        for (name, deployment) in others {
            let services = containers
                .iter()
                .filter(|c| c.tenant == name && c.deployment == deployment)
                .map(|c| from_container(c, false))
                .collect();
            let mut status = summarize(name.to_string(), false, services);
            status.deployment = deployment.to_string();
            out.push(status);
        }
    }
    out
}

/// Pretty JSON: `{"edge": {...}, "edges": [...], "tenants": [...]}`.
pub fn json(report: &[TenantStatus], edges: &[TenantStatus]) -> String {
    let edge = edges
        .iter()
        .find(|e| e.tenant == crate::manifest::edge::NAME);
    let mut s = serde_json::to_string_pretty(&Report {
        edge,
        edges,
        tenants: report,
    })
    .expect("status serializes");
    s.push('\n');
    s
}

/// One block per tenant: a heading line, then an aligned row per service.
pub fn table(report: &[TenantStatus]) -> String {
    table_fit(report, None)
}

/// The width of the terminal stdout is, or `None` when stdout is not a terminal (piped output
/// stays whole, so scripts and `grep` see every port). `COLUMNS` is used when the terminal does
/// not say.
pub fn terminal_width() -> Option<usize> {
    use std::io::IsTerminal;
    if !std::io::stdout().is_terminal() {
        return None;
    }
    terminal_size::terminal_size()
        .map(|(w, _)| usize::from(w.0))
        .or_else(|| std::env::var("COLUMNS").ok()?.parse().ok())
        .filter(|w| *w > 0)
}

/// `cell` cut to `width` characters, the last one `…` when something was cut.
fn cut(cell: &str, width: usize) -> String {
    if cell.chars().count() <= width {
        return cell.to_string();
    }
    let mut s: String = cell.chars().take(width.saturating_sub(1)).collect();
    s.push('…');
    s
}

/// Narrows the PORTS and IMAGE columns (4th and 5th) so a row is at most `width` characters:
/// they are the long ones, and SERVICE, STATE and HEALTH are what an operator scans for. Each
/// keeps at least a few characters; on a terminal narrower than that, lines wrap.
fn fit_widths(widths: &mut [usize; 5], width: usize) {
    // "  " indent, then two spaces after each of the first four columns.
    let fixed = 2 + widths[..3].iter().map(|w| w + 2).sum::<usize>() + 2;
    let budget = width.saturating_sub(fixed);
    if widths[3] + widths[4] <= budget {
        return;
    }
    const MIN: usize = 8;
    let (ports, image) = (widths[3], widths[4]);
    // The image gets half the room (more when the ports need less), the ports the rest.
    let image_w = image.min(budget.saturating_sub(ports.min(budget / 2)).max(MIN));
    let ports_w = ports
        .min(budget.saturating_sub(image_w))
        .max(MIN.min(ports));
    widths[3] = ports_w;
    widths[4] = image_w;
}

/// [`table`], with the PORTS and IMAGE columns cut (marked `…`) to fit `width` when given.
pub fn table_fit(report: &[TenantStatus], width: Option<usize>) -> String {
    let mut out = String::new();
    let mut apart = false;
    for (i, t) in report.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        if !t.declared && !apart && i > 0 {
            // This manifest's tenants first; whatever else runs on the engine after a rule.
            out.push_str("-- not this manifest's: other deployments, or tenants it no longer declares --\n\n");
            apart = true;
        }
        let total = if t.declared {
            t.services.iter().filter(|s| s.declared).count()
        } else {
            t.services.len()
        };
        let mut note = match (t.declared, t.deployment.is_empty()) {
            (true, _) => String::new(),
            (false, true) => " — not declared in the manifest".to_string(),
            (false, false) => format!(" — deployment {}, not this manifest's", t.deployment),
        };
        if !t.engine.is_empty() {
            note.push_str(&format!(" — engine {}", t.engine));
        }
        if !t.error.is_empty() {
            out.push_str(&format!("{}: {}{note}: {}\n", t.tenant, t.state, t.error));
            continue;
        }
        out.push_str(&format!(
            "{}: {} ({} of {} running, {} healthy){note}\n",
            t.tenant, t.state, t.running, total, t.healthy
        ));
        let rows: Vec<[String; 5]> = t
            .services
            .iter()
            .map(|s| {
                [
                    if s.declared {
                        s.service.clone()
                    } else {
                        format!("{} (not in manifest)", s.service)
                    },
                    s.state.clone(),
                    s.health.as_str().to_string(),
                    if s.ports.is_empty() {
                        "-".to_string()
                    } else {
                        s.ports.join(", ")
                    },
                    s.image.clone(),
                ]
            })
            .collect();
        let header = ["SERVICE", "STATE", "HEALTH", "PORTS", "IMAGE"].map(str::to_string);
        let mut widths = [0usize; 5];
        for row in std::iter::once(&header).chain(rows.iter()) {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        if let Some(width) = width {
            fit_widths(&mut widths, width);
        }
        for row in std::iter::once(&header).chain(rows.iter()) {
            let mut line = String::from("  ");
            for (k, (cell, w)) in row.iter().zip(widths).enumerate() {
                let cell = if k >= 3 { cut(cell, w) } else { cell.clone() };
                if k == 4 {
                    line.push_str(&cell);
                } else {
                    line.push_str(&format!("{cell:<w$}  "));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn container(tenant: &str, service: &str, state: &str, status: &str, ports: &str) -> Container {
        Container {
            id: format!("{tenant}-{service}"),
            name: format!("{tenant}-{service}-1"),
            tenant: tenant.into(),
            service: service.into(),
            project: tenant.into(),
            compose_service: service.into(),
            deployment: String::new(),
            config_files: String::new(),
            working_dir: String::new(),
            image: format!("img/{service}:1"),
            state: state.into(),
            status: status.into(),
            ports: ports.into(),
        }
    }

    /// Another manifest's tenant of the same name, and tenants this manifest does not declare,
    /// are shown apart after a rule, never mixed into this manifest's tenants.
    #[test]
    fn other_deployments_are_shown_apart() {
        let text =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/.env.example")).unwrap();
        let m = Manifest::from_text(Path::new(".env"), &text).unwrap();
        let own_id = m.tenants[0].deployment.clone().unwrap();
        let tenants = m.select(&["team-b".into()]).unwrap();
        let mut ours = container("team-b", "postgres", "running", "Up 1 minute (healthy)", "");
        ours.deployment = own_id.clone();
        let mut theirs = container("team-b", "redis", "running", "Up 1 minute (healthy)", "");
        theirs.deployment = "0123456789abcdef".into();
        let gone = container("gone", "redis", "running", "Up 1 minute", "");
        let report = build(&m, &tenants, &[ours, theirs, gone], true);
        assert_eq!(report.len(), 3);
        assert!(report[0].declared && report[0].deployment == own_id);
        let redis = report[0]
            .services
            .iter()
            .find(|s| s.service == "redis")
            .unwrap();
        assert_eq!(
            redis.state, "not created",
            "another deployment's redis is not ours"
        );
        let apart: Vec<(&str, &str)> = report[1..]
            .iter()
            .map(|t| (t.tenant.as_str(), t.deployment.as_str()))
            .collect();
        assert_eq!(apart, [("gone", ""), ("team-b", "0123456789abcdef")]);
        let text = table(&report);
        let rule = text.find("-- not this manifest's").unwrap();
        assert!(text.find("team-b: ").unwrap() < rule, "{text}");
        assert!(
            text.contains("team-b: running (1 of 1 running, 1 healthy) — deployment 0123456789abcdef, not this manifest's"),
            "{text}"
        );
    }

    #[test]
    fn tenants_are_joined_with_their_containers() {
        let text =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/.env.example")).unwrap();
        let m = Manifest::from_text(Path::new(".env"), &text).unwrap();
        let tenants = m.select(&["team-b".into(), "team-c".into()]).unwrap();
        let containers = vec![
            container("team-b", "postgres", "running", "Up 1 minute (healthy)", ""),
            container(
                "team-b",
                "caddy",
                "running",
                "Up 1 minute (health: starting)",
                "0.0.0.0:20100->80/tcp, :::20100->80/tcp",
            ),
            container(
                "team-b",
                "old-thing",
                "exited",
                "Exited (0) 1 minute ago",
                "",
            ),
            container("gone", "redis", "running", "Up 1 minute", ""),
            container("", "redis", "running", "Up 1 minute", ""),
        ];
        let report = build(&m, &tenants, &containers, true);
        assert_eq!(report.len(), 3);
        let b = &report[0];
        assert_eq!(b.state, "degraded", "most of team-b is not created");
        assert_eq!(b.running, 2);
        let caddy = b.services.iter().find(|s| s.service == "caddy").unwrap();
        assert_eq!(caddy.ports, vec!["0.0.0.0:20100->80/tcp"]);
        assert_eq!(caddy.health, Health::Starting);
        let redis = b.services.iter().find(|s| s.service == "redis").unwrap();
        assert_eq!(redis.state, "not created");
        assert!(b
            .services
            .iter()
            .any(|s| s.service == "old-thing" && !s.declared));
        assert_eq!(report[1].tenant, "team-c");
        assert_eq!(report[1].state, "not running");
        assert_eq!(
            (report[2].tenant.as_str(), report[2].declared),
            ("gone", false)
        );

        let table = table(&report);
        assert!(table.contains("team-b: degraded (2 of "), "{table}");
        assert!(table.contains("old-thing (not in manifest)"), "{table}");
        assert!(table.contains("gone: running"), "{table}");
        let json: serde_json::Value = serde_json::from_str(&json(&report, &[])).unwrap();
        assert_eq!(json["tenants"][0]["services"][0]["service"], "postgres");
        assert_eq!(json["tenants"][0]["services"][0]["health"], "healthy");
    }

    #[test]
    fn the_table_fits_a_narrow_terminal_and_is_whole_otherwise() {
        let text =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/.env.example")).unwrap();
        let m = Manifest::from_text(Path::new(".env"), &text).unwrap();
        let tenants = m.select(&["team-b".into()]).unwrap();
        let ports = "127.0.0.1:20100->80/tcp, 127.0.0.1:20101->443/tcp, 127.0.0.1:20102->443/udp";
        let containers = vec![container(
            "team-b",
            "caddy",
            "running",
            "Up 1 minute",
            ports,
        )];
        let report = build(&m, &tenants, &containers, false);
        let whole = table_fit(&report, None);
        assert_eq!(whole, table(&report));
        assert!(whole.contains("127.0.0.1:20102->443/udp"), "{whole}");
        assert!(whole.lines().any(|l| l.chars().count() > 80), "{whole}");
        let narrow = table_fit(&report, Some(80));
        for line in narrow.lines().skip(1) {
            assert!(
                line.chars().count() <= 80,
                "{} chars: {line}",
                line.chars().count()
            );
        }
        assert!(narrow.contains('…'), "{narrow}");
        // The columns an operator scans for are never cut.
        assert!(narrow.contains("  caddy "), "{narrow}");
        assert!(narrow.contains(" running "), "{narrow}");
        // Wide enough: nothing changes.
        assert_eq!(table_fit(&report, Some(1000)), whole);
    }
}
