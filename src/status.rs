//! `stackgen status`: the manifest's tenants joined with their containers — per service its
//! state, health, published ports and image — as a table for people or JSON for scripts.
//!
//! Services the manifest declares but Docker does not have are listed as `not created`, so a
//! tenant that is down still shows every service it would run; containers that carry a tenant's
//! label but no longer belong to its manifest entry are listed too (`declared: false`).

use serde::Serialize;

use crate::compose::{Container, Health};
use crate::manifest::{Manifest, Tenant};
use crate::model;

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
    /// False for a label seen on containers of a tenant the manifest does not declare.
    pub declared: bool,
    /// `running`, `starting`, `degraded` or `not running`.
    pub state: String,
    pub running: usize,
    pub healthy: usize,
    pub services: Vec<ServiceStatus>,
}

#[derive(Serialize)]
struct Report<'a> {
    tenants: &'a [TenantStatus],
}

fn from_container(c: &Container, declared: bool) -> ServiceStatus {
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

fn summarize(tenant: String, declared: bool, services: Vec<ServiceStatus>) -> TenantStatus {
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
    for t in tenants {
        let mine: Vec<&Container> = containers.iter().filter(|c| c.tenant == t.name).collect();
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
        out.push(summarize(t.name.clone(), true, services));
    }
    if include_undeclared {
        let mut others: Vec<&str> = containers
            .iter()
            .map(|c| c.tenant.as_str())
            .filter(|t| !t.is_empty() && manifest.tenant(t).is_none())
            .collect();
        others.dedup();
        for name in others {
            let services = containers
                .iter()
                .filter(|c| c.tenant == name)
                .map(|c| from_container(c, false))
                .collect();
            out.push(summarize(name.to_string(), false, services));
        }
    }
    out
}

/// Pretty JSON: `{"tenants": [...]}`.
pub fn json(report: &[TenantStatus]) -> String {
    let mut s =
        serde_json::to_string_pretty(&Report { tenants: report }).expect("status serializes");
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
    for (i, t) in report.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let total = if t.declared {
            t.services.iter().filter(|s| s.declared).count()
        } else {
            t.services.len()
        };
        let note = if t.declared {
            String::new()
        } else {
            " — not declared in the manifest".to_string()
        };
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
        let json: serde_json::Value = serde_json::from_str(&json(&report)).unwrap();
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
