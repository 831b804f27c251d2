//! The ports each service listens on, for its Service and its NetworkPolicies.
//!
//! The catalog names the ports compose publishes (`loopback`, `routes`); services reached only
//! on the tenant's internal network have no such entry, so their ports are listed here, each
//! the one the generated environment and config files connect to (a test checks every
//! `service:port` those files name against this list).

use super::Unit;
use crate::platform::model::ResolvedService;

/// Ports of services that compose never publishes.
const INTERNAL: [(&str, &[u16]); 12] = [
    ("postgres", &[5432]),
    ("redis", &[6379]),
    ("qdrant", &[6333]),
    // 50051: weaviate's gRPC API, which its v4 python clients use (the environment names it);
    // 2112: its metrics, which the tenant's prometheus scrapes.
    ("weaviate", &[2112, 8080, 50051]),
    ("chroma", &[8000]),
    ("ollama", &[11434]),
    ("dify-api", &[5001]),
    ("dify-sandbox", &[8194]),
    ("dify-ssrf-proxy", &[3128]),
    ("dify-plugin-daemon", &[5002]),
    ("prometheus", &[9090]),
    ("minio", &[9000]),
];

/// The ports one service listens on, ascending.
pub fn of(svc: &ResolvedService) -> Vec<u16> {
    let def = &svc.def;
    let mut out: Vec<u16> = def.loopback.iter().map(|p| p.port).collect();
    out.extend(def.routes.iter().map(|r| r.port));
    if let Some((_, ports)) = INTERNAL.iter().find(|(n, _)| *n == svc.name) {
        out.extend(ports.iter());
    }
    if let Some(c) = &svc.custom {
        out.push(c.port);
    }
    // caddy's published ports are the ingress controller's job on Kubernetes.
    if svc.name == super::REPLACED_BY_INGRESS {
        out.clear();
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// The ports a pod listens on: its services' together.
pub fn of_unit(u: &Unit) -> Vec<u16> {
    let mut out: Vec<u16> = u.members.iter().flat_map(|m| of(m.svc)).collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// A port's name in Services and containers (at most 15 characters, a DNS label).
pub fn name(port: u16) -> String {
    format!("tcp-{port}")
}
