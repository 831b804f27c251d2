//! Health-gated start order: what a service waits for before it starts.

use super::VECTOR_DB_USE;
use crate::manifest::Tenant;
use crate::platform::model::ResolvedService;

/// The services `svc` waits for (healthy), when the tenant runs them. `vector-db` in the
/// catalog means the tenant's vector DB server (postgres for pgvector). Caddy waits for every
/// service it routes to, so it comes up last.
pub fn depends_on(tenant: &Tenant, svc: &ResolvedService, all: &[ResolvedService]) -> Vec<String> {
    let rendered = |name: &str| all.iter().any(|s| s.name == name);
    let mut out: Vec<String> = svc
        .def
        .uses
        .iter()
        .map(|u| match u.as_str() {
            VECTOR_DB_USE => crate::platform::vectordb::server_service(tenant).to_string(),
            _ => u.clone(),
        })
        .filter(|u| rendered(u))
        .collect();
    if svc.name == "caddy" {
        for s in all.iter().filter(|s| !s.def.routes.is_empty()) {
            out.push(s.name.clone());
        }
        for s in all.iter().filter(|s| !s.def.routes.is_empty()) {
            for r in &s.def.routes {
                out.extend(
                    r.paths
                        .iter()
                        .map(|p| p.service.clone())
                        .filter(|n| rendered(n)),
                );
            }
        }
    }
    let mut seen = Vec::new();
    out.retain(|d| {
        d != &svc.name && !seen.contains(d) && {
            seen.push(d.clone());
            true
        }
    });
    out
}
