//! What the menu offers: the four vector DBs and the catalog's selectable services, each with
//! its one-line explanation, and the defaults for a new tenant. Pure data, from the catalog.

use std::fmt;

use crate::manifest::init;
use crate::platform::catalog::{Catalog, VECTOR_DBS};

/// Services a new tenant starts with: the same set as `init --non-interactive` without
/// `--services` ([`init::DEFAULT_SERVICES`]), so the two ways of writing a manifest agree.
pub fn default_services() -> Vec<String> {
    init::DEFAULT_SERVICES
        .split(',')
        .map(str::to_string)
        .collect()
}

/// One line of a choice list: `name — what it is`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    pub name: String,
    pub summary: String,
}

impl fmt::Display for Choice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:<20} {}", self.name, self.summary)
    }
}

/// The choices with each summary cut to fit one row of a `cols`-wide terminal: a wrapped row
/// pushes the list (and the question above it) off a small screen. The list's own marks
/// (`> [x] `) take 6 columns; the last column stays free so no row touches the edge.
pub fn fit(choices: Vec<Choice>, cols: usize) -> Vec<Choice> {
    let room = cols.saturating_sub(6 + 21 + 1);
    choices
        .into_iter()
        .map(|mut c| {
            if c.summary.chars().count() > room {
                let cut: String = c.summary.chars().take(room.saturating_sub(1)).collect();
                c.summary = format!("{}…", cut.trim_end());
            }
            c
        })
        .collect()
}

/// The TLS modes of a new manifest, `acme` first (the default).
pub fn tls_modes() -> Vec<Choice> {
    [
        (
            "acme",
            "public certificates from Let's Encrypt (forward ports 80/443)",
        ),
        ("internal", "caddy's own CA: for a LAN or a test host"),
    ]
    .into_iter()
    .map(|(name, summary)| Choice {
        name: name.into(),
        summary: summary.into(),
    })
    .collect()
}

/// The vector DBs, in the order of `VECTOR_DBS`.
pub fn vector_dbs() -> Vec<Choice> {
    let catalog = Catalog::get();
    VECTOR_DBS
        .iter()
        .map(|name| {
            let summary = match catalog.component(name) {
                Some(c) => c.summary.clone(),
                // pgvector is not a service of its own: it is an image variant of postgres.
                None => "pgvector extension in the tenant's postgres (no extra service)".into(),
            };
            Choice {
                name: name.to_string(),
                summary,
            }
        })
        .collect()
}

/// The services an operator picks from: every catalog component except the vector DBs (chosen
/// on their own) and tailscale (openclaw brings it). Requirements are added after the choice.
pub fn services() -> Vec<Choice> {
    Catalog::get()
        .components
        .iter()
        .filter(|c| !c.vector_db && c.name != "tailscale")
        .map(|c| {
            let summary = match c.name.as_str() {
                "dify" => "Dify LLM app builder: 7 containers (api, workers, web, code sandbox, SSRF proxy, plugin daemon)".to_string(),
                "openclaw" => "OpenClaw AI agent gateway, reachable only on your tailnet via a tailscale sidecar (needs an auth key)".to_string(),
                _ => c.summary.clone(),
            };
            Choice {
                name: c.name.clone(),
                summary,
            }
        })
        .collect()
}

/// Indices into `choices` of the names in `selected`.
pub fn indices(choices: &[Choice], selected: &[String]) -> Vec<usize> {
    choices
        .iter()
        .enumerate()
        .filter(|(_, c)| selected.contains(&c.name))
        .map(|(i, _)| i)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_explained_services_are_in_the_catalog() {
        let names: Vec<String> = services().into_iter().map(|c| c.name).collect();
        let defaults = default_services();
        assert_eq!(defaults.len(), 6);
        for d in &defaults {
            assert!(names.iter().any(|n| n == d), "{d}");
        }
        assert!(!names.iter().any(|n| n == "qdrant" || n == "tailscale"));
        let dify = services().into_iter().find(|c| c.name == "dify").unwrap();
        assert!(dify.summary.contains("7 containers"));
        assert_eq!(vector_dbs().len(), 4);
        assert!(vector_dbs()[1].summary.contains("postgres"));
        // Every default is offered, preselected; openclaw (it needs a key) is not among them.
        assert_eq!(indices(&services(), &defaults).len(), defaults.len());
        assert!(!defaults.iter().any(|d| d == "openclaw" || d == "dify"));
    }

    #[test]
    fn every_row_fits_80_columns() {
        let fitted = fit(services(), 80);
        assert!(
            fitted.iter().any(|c| c.summary.ends_with('…')),
            "nothing was cut"
        );
        for c in fitted.iter().chain(&fit(vector_dbs(), 80)) {
            // `> [x] ` before the row; one column stays free.
            assert!(6 + c.to_string().chars().count() < 80, "{c}");
        }
        // A wide terminal keeps the whole text.
        let dify = fit(services(), 300)
            .into_iter()
            .find(|c| c.name == "dify")
            .unwrap();
        assert!(dify.summary.ends_with("plugin daemon)"));
    }
}
