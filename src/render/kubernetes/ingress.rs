//! The Ingress (networking.k8s.io/v1) that replaces the tenant's caddy: the same host names
//! (`<subdomain>.<tenant domain>`) and path routes as the Caddyfile, served by the cluster's
//! ingress controller, which also terminates TLS. Ingress rather than Gateway API routes: every
//! controller implements it, and the strict schema check in CI covers it (Gateway API kinds
//! are CRDs that the validator does not carry). docs/kubernetes.md says more.

use serde_yaml::Value;

use super::objects::{map, metadata, strings, Object};
use super::Tenancy;

/// The Secret the Ingress names for its certificate (cert-manager or the operator makes it).
pub const TLS_SECRET: &str = "stackgen-tls";

/// One path of a host: the path, its `pathType`, the unit (Service) and the port it goes to.
pub type RoutePath = (String, &'static str, String, u16);

/// Every routed host of the tenant with its paths, in catalog order; the path routes of a host
/// come before its catch-all.
pub fn routes(t: &Tenancy) -> Vec<(String, Vec<RoutePath>)> {
    let mut out = Vec::new();
    for u in &t.units {
        for m in &u.members {
            for r in &m.svc.def.routes {
                let mut paths = Vec::new();
                for p in &r.paths {
                    let Some(target) = t.unit_of(&p.service) else {
                        continue;
                    };
                    for matcher in &p.matchers {
                        // Caddy's `/api/*` is everything under /api: a Prefix path.
                        let (path, kind) = match matcher.strip_suffix("/*") {
                            Some(prefix) => (prefix.to_string(), "Prefix"),
                            None => (matcher.clone(), "Exact"),
                        };
                        paths.push((path, kind, target.name.clone(), p.port));
                    }
                }
                paths.push(("/".to_string(), "Prefix", u.name.clone(), r.port));
                out.push((format!("{}.{}", r.subdomain, t.tenant.domain), paths));
            }
        }
    }
    out
}

pub fn ingress(t: &Tenancy) -> Option<Object> {
    let routes = routes(t);
    if routes.is_empty() {
        return None;
    }
    let hosts: Vec<&str> = routes.iter().map(|(h, _)| h.as_str()).collect();
    let rules: Vec<Value> = routes
        .iter()
        .map(|(host, paths)| {
            let paths: Vec<Value> = paths
                .iter()
                .map(|(path, kind, unit, port)| {
                    map([
                        ("path", path.as_str().into()),
                        ("pathType", (*kind).into()),
                        (
                            "backend",
                            map([(
                                "service",
                                map([
                                    ("name", unit.as_str().into()),
                                    ("port", map([("number", (*port).into())])),
                                ]),
                            )]),
                        ),
                    ])
                })
                .collect();
            map([
                ("host", host.as_str().into()),
                ("http", map([("paths", Value::Sequence(paths))])),
            ])
        })
        .collect();
    Some(Object::new(
        "Ingress",
        "web",
        map([
            ("apiVersion", "networking.k8s.io/v1".into()),
            ("kind", "Ingress".into()),
            ("metadata", metadata(t, "web", None)),
            (
                "spec",
                map([
                    (
                        "tls",
                        Value::Sequence(vec![map([
                            ("hosts", strings(&hosts)),
                            ("secretName", TLS_SECRET.into()),
                        ])]),
                    ),
                    ("rules", Value::Sequence(rules)),
                ]),
            ),
        ]),
    ))
}
