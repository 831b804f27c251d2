//! What the menu offers: the four vector DBs and the catalog's selectable services, each with
//! its one-line explanation, and the defaults for a new tenant. Pure data, from the catalog.

use std::fmt;

use crate::catalog::{Catalog, VECTOR_DBS};
use crate::init;

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
}
