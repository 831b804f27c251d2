//! The plain objects of a tenant: ConfigMaps for the generated config files, PersistentVolumeClaims for the data directories,
//! Services, and the `kustomization.yaml` that lists every file. Built as YAML values in a
//! fixed key order and written by the project's emitter (`crate::render::yaml`), so bytes are stable.

use anyhow::{bail, Result};
use serde_yaml::{Mapping, Value};

use super::workload::Mount;
use super::{namespace as ns_name, ports, Tenancy, Unit};
use crate::manifest::Tenant;

/// One Kubernetes object, and how it is written.
pub struct Object {
    pub kind: &'static str,
    pub name: String,
    pub body: Value,
    /// ConfigMap data, written as block literals after `body` so a reviewer reads the files as
    /// they are (the emitter would put each on one escaped line).
    pub data: Vec<(String, String)>,
}

impl Object {
    pub fn new(kind: &'static str, name: &str, body: Value) -> Object {
        Object {
            kind,
            name: name.to_string(),
            body,
            data: Vec::new(),
        }
    }

    /// `namespace.yaml`, else `<kind>-<name>.yaml`: one object per file, found by name.
    pub fn file_name(&self) -> String {
        match self.kind {
            "Namespace" => "namespace.yaml".into(),
            k => format!("{}-{}.yaml", k.to_ascii_lowercase(), self.name),
        }
    }

    pub fn to_yaml(&self) -> String {
        let mut out = crate::render::yaml::to_string(&self.body);
        if !self.data.is_empty() {
            out.push_str("data:\n");
            for (key, text) in &self.data {
                out.push_str(&format!(
                    "  {}:{}",
                    crate::render::yaml::to_string(&key.as_str().into()).trim_end(),
                    block(text)
                ));
            }
        }
        out
    }
}

/// A YAML block literal of `text` at indent 4, or a JSON-quoted string when the text has
/// characters a block literal cannot carry.
fn block(text: &str) -> String {
    let printable = text
        .chars()
        .all(|c| c == '\n' || c == '\t' || !c.is_control());
    // A line that starts with a tab would need an indentation indicator some readers reject.
    let lines_ok = !text.is_empty()
        && text
            .lines()
            .all(|l| l.trim_end() == l && !l.starts_with('\t'));
    if !printable || !lines_ok || text.starts_with([' ', '\n']) {
        return format!(
            " {}\n",
            serde_json::to_string(text).expect("strings serialize")
        );
    }
    // Chomping: `|` keeps one final newline, `|-` none, `|+` all of them.
    let chomp = match text.strip_suffix('\n') {
        None => "-",
        Some(rest) if rest.ends_with('\n') => "+",
        Some(_) => "",
    };
    let mut out = format!(" |{chomp}\n");
    for line in text.lines() {
        if line.is_empty() {
            out.push('\n');
        } else {
            out.push_str("    ");
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// A mapping from pairs, in the given order.
pub fn map<const N: usize>(pairs: [(&str, Value); N]) -> Value {
    let mut m = Mapping::new();
    for (k, v) in pairs {
        m.insert(k.into(), v);
    }
    Value::Mapping(m)
}

pub fn strings<S: AsRef<str>>(items: &[S]) -> Value {
    Value::Sequence(items.iter().map(|s| s.as_ref().into()).collect())
}

/// The labels of every object of a tenant (`app.kubernetes.io/*`, the recommended set), plus
/// the unit's name when the object belongs to one; that one label is also the pod selector.
pub fn labels(t: &Tenancy, unit: Option<&str>) -> Value {
    labels_for(t.tenant, unit)
}

fn labels_for(tenant: &Tenant, unit: Option<&str>) -> Value {
    let mut m = Mapping::new();
    if let Some(u) = unit {
        m.insert(NAME_LABEL.into(), u.into());
    }
    m.insert(
        "app.kubernetes.io/part-of".into(),
        tenant.name.clone().into(),
    );
    m.insert("app.kubernetes.io/managed-by".into(), "stackgen".into());
    Value::Mapping(m)
}

/// The label that selects a unit's pods.
pub const NAME_LABEL: &str = "app.kubernetes.io/name";

pub fn selector(unit: &str) -> Value {
    map([(NAME_LABEL, unit.into())])
}

pub fn metadata(t: &Tenancy, name: &str, unit: Option<&str>) -> Value {
    map([
        ("name", name.into()),
        ("namespace", ns_name(t.tenant).into()),
        ("labels", labels(t, unit)),
    ])
}

/// The metadata of an object outside any unit, from the tenant alone (the Secret).
pub fn metadata_for(tenant: &Tenant, name: &str) -> Value {
    map([
        ("name", name.into()),
        ("namespace", ns_name(tenant).into()),
        ("labels", labels_for(tenant, None)),
    ])
}

/// One ConfigMap per generated config folder that a workload mounts (`postgres/initdb`,
/// `prometheus`, ...). The Caddyfile has none: the Ingress replaces caddy.
pub fn config_maps(t: &Tenancy) -> Result<Vec<Object>> {
    let mut seen: Vec<(String, String)> = Vec::new();
    for u in &t.units {
        for m in &u.members {
            for x in &m.mounts {
                if let Mount::Config { map, dir, .. } = x {
                    if !seen.iter().any(|(n, _)| n == map) {
                        seen.push((map.clone(), dir.clone()));
                    }
                }
            }
        }
    }
    let mut out = Vec::new();
    for (name, dir) in seen {
        let mut data: Vec<(String, String)> = t
            .configs
            .iter()
            .filter_map(|(path, content)| {
                let rest = path.strip_prefix(&format!("{dir}/"))?;
                (!rest.contains('/')).then(|| (rest.to_string(), content.clone()))
            })
            .collect();
        if data.is_empty() {
            bail!(
                "{}: no generated file under {dir} for ConfigMap {name}",
                t.tenant.name
            );
        }
        data.sort();
        let mut o = Object::new(
            "ConfigMap",
            &name,
            map([
                ("apiVersion", "v1".into()),
                ("kind", "ConfigMap".into()),
                ("metadata", metadata(t, &name, None)),
            ]),
        );
        o.data = data;
        out.push(o);
    }
    Ok(out)
}

/// The size each claim asks for. Compose has no sizes (a host directory grows freely); these
/// are starting points to patch with kustomize (docs/kubernetes.md).
fn claim_size(component: &str) -> &'static str {
    match component {
        "ollama" => "100Gi",
        "minio" | "postgres" | "qdrant" | "weaviate" | "chroma" | "prometheus" => "20Gi",
        _ => "5Gi",
    }
}

/// One PersistentVolumeClaim per data directory (`BASE_DIR/tenants/<t>/data/<component>` in
/// compose); a service's sub-folders are `subPath` mounts of its claim.
pub fn volume_claims(t: &Tenancy) -> Vec<Object> {
    let mut seen: Vec<(String, String)> = Vec::new();
    for u in &t.units {
        for m in &u.members {
            for x in &m.mounts {
                if let Mount::Data { claim, .. } = x {
                    if !seen.iter().any(|(c, _)| c == claim) {
                        seen.push((claim.clone(), m.svc.component.clone()));
                    }
                }
            }
        }
    }
    seen.into_iter()
        .map(|(claim, component)| {
            let mut spec = Mapping::new();
            spec.insert("accessModes".into(), strings(&["ReadWriteOnce"]));
            if let Some(class) = &t.manifest.platform.kube_storage_class {
                spec.insert("storageClassName".into(), class.clone().into());
            }
            spec.insert(
                "resources".into(),
                map([(
                    "requests",
                    map([("storage", claim_size(&component).into())]),
                )]),
            );
            Object::new(
                "PersistentVolumeClaim",
                &claim,
                map([
                    ("apiVersion", "v1".into()),
                    ("kind", "PersistentVolumeClaim".into()),
                    ("metadata", metadata(t, &claim, None)),
                    ("spec", Value::Mapping(spec)),
                ]),
            )
        })
        .collect()
}

/// The Service of a unit that listens: named like the compose service, so every host name in
/// the generated environment and config files (`postgres:5432`) resolves unchanged. One port
/// entry per listening port.
pub fn service(t: &Tenancy, u: &Unit) -> Option<Object> {
    let listening = ports::of_unit(u);
    if listening.is_empty() {
        return None;
    }
    let port_list: Vec<Value> = listening
        .iter()
        .map(|p| {
            map([
                ("name", ports::name(*p).into()),
                ("port", (*p).into()),
                ("targetPort", (*p).into()),
                ("protocol", "TCP".into()),
            ])
        })
        .collect();
    Some(Object::new(
        "Service",
        &u.name,
        map([
            ("apiVersion", "v1".into()),
            ("kind", "Service".into()),
            ("metadata", metadata(t, &u.name, Some(&u.name))),
            (
                "spec",
                map([
                    ("type", "ClusterIP".into()),
                    ("selector", selector(&u.name)),
                    ("ports", Value::Sequence(port_list)),
                ]),
            ),
        ]),
    ))
}

/// `kustomization.yaml`: every file, in the order written (the namespace first).
pub fn kustomization(files: &[String]) -> String {
    crate::render::yaml::to_string(&map([
        ("apiVersion", "kustomize.config.k8s.io/v1beta1".into()),
        ("kind", "Kustomization".into()),
        ("resources", strings(files)),
    ]))
}

#[cfg(test)]
mod tests {
    use super::block;

    #[test]
    fn block_literals_keep_the_text_exactly() {
        for text in [
            "a\n\nb\n",
            "a\nb",
            "a\n\n\n",
            "x: 1\n  y: \"z\"\n",
            "\tTAB\n",
        ] {
            let doc = format!("k:{}", block(text));
            let back: serde_yaml::Value = serde_yaml::from_str(&doc).unwrap();
            assert_eq!(back["k"].as_str(), Some(text), "{doc}");
        }
        // Leading spaces or trailing blanks go quoted instead of in a literal.
        for text in ["  lead\n", "trail  \n", "\u{7}bell", "\tTAB\n"] {
            let out = block(text);
            assert!(out.starts_with(" \""), "{out}");
            let back: serde_yaml::Value = serde_yaml::from_str(&format!("k:{out}")).unwrap();
            assert_eq!(back["k"].as_str(), Some(text));
        }
    }
}
