//! Isolation as NetworkPolicies: a namespace-wide default deny (ingress and egress), DNS for
//! every pod, then exactly the edges the compose stack uses, each as an egress rule on the
//! client and an ingress rule on the server:
//!
//! - every health-gated `depends_on` the policy layer decides (the same dependency graph);
//! - every other service a pod is configured to reach: a host name of the tenant's services in
//!   its environment, command or mounted config files (`http://dify-api:5001`,
//!   prometheus' scrape targets), since compose's shared network allowed those without a
//!   `depends_on` (the plugin daemon calls dify-api back, the sandbox uses the SSRF proxy);
//! - the ingress controller's namespace to the routed services, on the routed ports only;
//! - the internet (public addresses only) from pods whose image contract says egress.

use anyhow::Result;
use serde_yaml::{Mapping, Value};

use super::objects::{map, metadata, selector, strings, Object};
use super::workload::{dependencies, Mount};
use super::{ports, Tenancy, Unit};
use crate::platform::catalog::Network;

/// The namespace of the ingress controller, by the label Kubernetes puts on every namespace.
pub const INGRESS_NAMESPACE: &str = "ingress-nginx";

/// Addresses that are never "the internet": private, shared, loopback and link-local ranges
/// (pod and node networks, other tenants, cloud metadata at 169.254.169.254).
const PRIVATE_V4: [&str; 6] = [
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.168.0.0/16",
];
const PRIVATE_V6: [&str; 3] = ["::1/128", "fc00::/7", "fe80::/10"];

/// Whether `text` names `host` as a host: `//host:`, `@host:`, `host:<digit>`, or, for a
/// single value, the whole value.
fn names_host(text: &str, host: &str, whole_value: bool) -> bool {
    if whole_value && text == host {
        return true;
    }
    let word = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    let mut from = 0;
    while let Some(i) = text[from..].find(host) {
        let start = from + i;
        let end = start + host.len();
        from = end;
        let before = text[..start].chars().next_back();
        let after: Vec<char> = text[end..].chars().take(2).collect();
        if before.is_some_and(word) {
            continue;
        }
        let port = after.first() == Some(&':') && after.get(1).is_some_and(char::is_ascii_digit);
        let url = matches!(before, Some('/' | '@'))
            && matches!(after.first(), None | Some(':' | '/' | '"' | '\''));
        if port || url {
            return true;
        }
    }
    false
}

/// Every string a unit's containers are configured with: environment values (one by one),
/// command lines and the config files they mount.
fn configured(t: &Tenancy, u: &Unit) -> (Vec<String>, Vec<String>) {
    let mut values = Vec::new();
    let mut texts = Vec::new();
    for m in &u.members {
        if let Some(env) = m.compose.get("environment").and_then(Value::as_mapping) {
            values.extend(env.values().filter_map(|v| v.as_str().map(str::to_string)));
        }
        for key in ["command", "entrypoint"] {
            if let Some(items) = m.compose.get(key).and_then(Value::as_sequence) {
                texts.extend(items.iter().filter_map(|v| v.as_str().map(str::to_string)));
            }
        }
        for x in &m.mounts {
            if let Mount::Config { dir, file, .. } = x {
                for (path, content) in &t.configs {
                    let hit = match file {
                        Some(f) => *path == format!("{dir}/{f}"),
                        None => path.starts_with(&format!("{dir}/")),
                    };
                    if hit {
                        texts.push(content.clone());
                    }
                }
            }
        }
    }
    (values, texts)
}

/// The pods `u` connects to, in unit order.
pub fn targets<'a>(t: &'a Tenancy, u: &Unit) -> Vec<&'a Unit<'a>> {
    let deps = dependencies(t, u);
    let (values, texts) = configured(t, u);
    t.units
        .iter()
        .filter(|v| v.name != u.name && !ports::of_unit(v).is_empty())
        .filter(|v| {
            deps.iter().any(|d| d.name == v.name)
                || values.iter().any(|s| names_host(s, &v.name, true))
                || texts.iter().any(|s| names_host(s, &v.name, false))
        })
        .collect()
}

/// Whether a unit may reach the internet: its image contract says so (a custom service, which
/// has none, keeps the edge network compose gives it).
fn egress(u: &Unit) -> bool {
    u.members.iter().any(|m| match &m.svc.def.contract {
        Some(c) => c.egress,
        None => m.svc.def.networks.contains(&Network::Edge),
    })
}

fn pods(unit: &str) -> Value {
    map([("podSelector", map([("matchLabels", selector(unit))]))])
}

fn port_list(list: &[u16]) -> Value {
    Value::Sequence(
        list.iter()
            .map(|p| map([("protocol", "TCP".into()), ("port", (*p).into())]))
            .collect(),
    )
}

fn policy(t: &Tenancy, name: &str, pod_selector: Value, types: &[&str], rules: Mapping) -> Object {
    let mut spec = Mapping::new();
    spec.insert("podSelector".into(), pod_selector);
    spec.insert("policyTypes".into(), strings(types));
    spec.extend(rules);
    Object::new(
        "NetworkPolicy",
        name,
        map([
            ("apiVersion", "networking.k8s.io/v1".into()),
            ("kind", "NetworkPolicy".into()),
            ("metadata", metadata(t, name, None)),
            ("spec", Value::Mapping(spec)),
        ]),
    )
}

pub fn policies(t: &Tenancy) -> Result<Vec<Object>> {
    let all_pods = Value::Mapping(Mapping::new());
    let mut out = vec![policy(
        t,
        "default-deny",
        all_pods.clone(),
        &["Ingress", "Egress"],
        Mapping::new(),
    )];
    let dns = map([
        (
            "to",
            Value::Sequence(vec![map([
                (
                    "namespaceSelector",
                    map([(
                        "matchLabels",
                        map([("kubernetes.io/metadata.name", "kube-system".into())]),
                    )]),
                ),
                (
                    "podSelector",
                    map([("matchLabels", map([("k8s-app", "kube-dns".into())]))]),
                ),
            ])]),
        ),
        (
            "ports",
            Value::Sequence(vec![
                map([("protocol", "UDP".into()), ("port", 53.into())]),
                map([("protocol", "TCP".into()), ("port", 53.into())]),
            ]),
        ),
    ]);
    let mut rules = Mapping::new();
    rules.insert("egress".into(), Value::Sequence(vec![dns]));
    out.push(policy(t, "allow-dns", all_pods, &["Egress"], rules));

    // Who reaches whom, and which ports the ingress controller reaches.
    let edges: Vec<(&Unit, Vec<&Unit>)> = t.units.iter().map(|u| (u, targets(t, u))).collect();
    let mut routed: Vec<(String, Vec<u16>)> = Vec::new();
    for (_, paths) in super::ingress::routes(t) {
        for (_, _, unit, port) in paths {
            match routed.iter_mut().find(|(u, _)| *u == unit) {
                Some((_, ports)) if !ports.contains(&port) => ports.push(port),
                Some(_) => {}
                None => routed.push((unit, vec![port])),
            }
        }
    }

    for u in &t.units {
        let clients: Vec<&str> = edges
            .iter()
            .filter(|(_, to)| to.iter().any(|v| v.name == u.name))
            .map(|(c, _)| c.name.as_str())
            .collect();
        let mut ingress = Vec::new();
        if !clients.is_empty() {
            ingress.push(map([
                (
                    "from",
                    Value::Sequence(clients.iter().map(|c| pods(c)).collect()),
                ),
                ("ports", port_list(&ports::of_unit(u))),
            ]));
        }
        if let Some((_, list)) = routed.iter().find(|(n, _)| *n == u.name) {
            let mut list = list.clone();
            list.sort_unstable();
            ingress.push(map([
                (
                    "from",
                    Value::Sequence(vec![map([(
                        "namespaceSelector",
                        map([(
                            "matchLabels",
                            map([("kubernetes.io/metadata.name", INGRESS_NAMESPACE.into())]),
                        )]),
                    )])]),
                ),
                ("ports", port_list(&list)),
            ]));
        }
        if !ingress.is_empty() {
            let mut rules = Mapping::new();
            rules.insert("ingress".into(), Value::Sequence(ingress));
            out.push(policy(
                t,
                &format!("ingress-{}", u.name),
                selector_of(&u.name),
                &["Ingress"],
                rules,
            ));
        }

        let to = &edges
            .iter()
            .find(|(c, _)| c.name == u.name)
            .expect("every unit")
            .1;
        let mut egress_rules: Vec<Value> = to
            .iter()
            .map(|v| {
                map([
                    ("to", Value::Sequence(vec![pods(&v.name)])),
                    ("ports", port_list(&ports::of_unit(v))),
                ])
            })
            .collect();
        if egress(u) {
            egress_rules.push(map([(
                "to",
                Value::Sequence(vec![
                    map([(
                        "ipBlock",
                        map([
                            ("cidr", "0.0.0.0/0".into()),
                            ("except", strings(&PRIVATE_V4)),
                        ]),
                    )]),
                    map([(
                        "ipBlock",
                        map([("cidr", "::/0".into()), ("except", strings(&PRIVATE_V6))]),
                    )]),
                ]),
            )]));
        }
        if !egress_rules.is_empty() {
            let mut rules = Mapping::new();
            rules.insert("egress".into(), Value::Sequence(egress_rules));
            out.push(policy(
                t,
                &format!("egress-{}", u.name),
                selector_of(&u.name),
                &["Egress"],
                rules,
            ));
        }
    }
    Ok(out)
}

fn selector_of(unit: &str) -> Value {
    map([("matchLabels", selector(unit))])
}

#[cfg(test)]
mod tests {
    use super::names_host;

    #[test]
    fn host_names_are_found_only_as_hosts() {
        assert!(names_host(
            "postgresql://u:$(X)@postgres:5432/db",
            "postgres",
            false
        ));
        assert!(names_host("targets: [\"grafana:3000\"]", "grafana", false));
        assert!(names_host("http://dify-api:5001", "dify-api", false));
        assert!(names_host("redis", "redis", true));
        assert!(!names_host("redis", "redis", false));
        assert!(!names_host("type: qdrant-semantic", "qdrant", false));
        assert!(!names_host("http://dify-api-x:5001", "dify-api", false));
        assert!(!names_host("ollama_chat/llama3", "ollama", false));
        assert!(!names_host("DB_TYPE postgresql", "postgres", true));
    }
}
