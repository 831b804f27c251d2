//! Secrets on Kubernetes: one Secret per tenant namespace, `stackgen-secrets`, holding the
//! tenant's manifest secrets by their name without the tenant prefix (`POSTGRES_PASSWORD`).
//!
//! The compose stack refers to a secret as `${TEAM_A__POSTGRES_PASSWORD:?...}` inside a value;
//! here an environment value that is exactly one secret becomes a `secretKeyRef`, and a value
//! that embeds one (`postgresql://stackgen:${...}@postgres:5432/n8n`) reads it through a
//! helper variable `STACKGEN_SECRET_<NAME>` that Kubernetes expands as `$(NAME)`. No value is
//! ever written to a manifest; `stackgen kube-secrets TENANT` prints the Secret for
//! `kubectl apply -f -`.

use anyhow::{bail, Result};
use serde_yaml::{Mapping, Value};

use super::objects::{map, metadata_for};
use crate::manifest::Tenant;

/// The name of the tenant's Secret.
pub const SECRET_NAME: &str = "stackgen-secrets";

/// The prefix of the helper variables that carry an embedded secret.
const HELPER: &str = "STACKGEN_SECRET_";

/// A piece of a compose string: literal text, or a reference to one of the tenant's secrets.
#[derive(Debug, PartialEq)]
enum Piece {
    Text(String),
    Secret(String),
}

/// Splits a compose value: `$$` is a literal `$`, `${KEY...}` a reference to a manifest key.
fn pieces(tenant: &Tenant, s: &str) -> Result<Vec<Piece>> {
    let mut out = Vec::new();
    let mut text = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        text.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(r) = after.strip_prefix('$') {
            text.push('$');
            rest = r;
        } else if let Some(r) = after.strip_prefix('{') {
            let Some(end) = r.find('}') else {
                bail!(
                    "unterminated `${{` in a generated value of tenant {}",
                    tenant.name
                );
            };
            let key = r[..end].split([':', '-', '?']).next().unwrap_or_default();
            let Some(name) = key.strip_prefix(&format!("{}__", tenant.prefix)) else {
                bail!(
                    "generated value refers to `{key}`, which is not a secret of tenant {}",
                    tenant.name
                );
            };
            if !text.is_empty() {
                out.push(Piece::Text(std::mem::take(&mut text)));
            }
            out.push(Piece::Secret(name.to_string()));
            rest = &r[end + 1..];
        } else {
            // Compose keeps a lone `$` before anything else as it is.
            text.push('$');
            rest = after;
        }
    }
    text.push_str(rest);
    if !text.is_empty() {
        out.push(Piece::Text(text));
    }
    Ok(out)
}

/// Turns compose strings into Kubernetes ones, remembering which helper variables they need.
pub struct Translator<'a> {
    tenant: &'a Tenant,
    helpers: Vec<String>,
}

impl<'a> Translator<'a> {
    pub fn new(tenant: &'a Tenant) -> Self {
        Translator {
            tenant,
            helpers: Vec::new(),
        }
    }

    /// A value Kubernetes expands (`env[].value`, `command`, `args`): every literal `$` is
    /// written `$$`, and an embedded secret is `$(STACKGEN_SECRET_<NAME>)`.
    pub fn expanded(&mut self, s: &str) -> Result<String> {
        let mut out = String::new();
        for p in pieces(self.tenant, s)? {
            match p {
                Piece::Text(t) => out.push_str(&t.replace('$', "$$")),
                Piece::Secret(name) => {
                    let var = format!("{HELPER}{name}");
                    out.push_str(&format!("$({var})"));
                    if !self.helpers.contains(&name) {
                        self.helpers.push(name);
                    }
                }
            }
        }
        Ok(out)
    }

    /// A value nothing expands (a probe's exec command): compose's `$$` becomes `$`; a secret
    /// there would be a value in the manifest, so it is refused.
    pub fn literal(&self, s: &str) -> Result<String> {
        let mut out = String::new();
        for p in pieces(self.tenant, s)? {
            match p {
                Piece::Text(t) => out.push_str(&t),
                Piece::Secret(name) => bail!(
                    "a probe of tenant {} would embed the secret {name}",
                    self.tenant.name
                ),
            }
        }
        Ok(out)
    }

    /// The compose `environment` mapping as a container's `env` list, in the same order.
    pub fn env(&mut self, compose: Option<&Mapping>) -> Result<Vec<Value>> {
        let mut out = Vec::new();
        for (k, v) in compose.into_iter().flatten() {
            let key = k.as_str().unwrap_or_default().to_string();
            let value = match v {
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                other => crate::render::yaml::to_string(other).trim_end().to_string(),
            };
            let parts = pieces(self.tenant, &value)?;
            if let [Piece::Secret(name)] = parts.as_slice() {
                out.push(map([("name", key.into()), ("valueFrom", secret_ref(name))]));
            } else {
                out.push(map([
                    ("name", key.into()),
                    ("value", self.expanded(&value)?.into()),
                ]));
            }
        }
        Ok(out)
    }

    /// The helper variables the translated strings need; they go first in `env`, because
    /// Kubernetes expands `$(NAME)` only from variables defined before.
    pub fn helpers(&self) -> Vec<Value> {
        self.helpers
            .iter()
            .map(|name| {
                map([
                    ("name", format!("{HELPER}{name}").into()),
                    ("valueFrom", secret_ref(name)),
                ])
            })
            .collect()
    }
}

fn secret_ref(name: &str) -> Value {
    map([(
        "secretKeyRef",
        map([("name", SECRET_NAME.into()), ("key", name.into())]),
    )])
}

/// The tenant's Secret with every manifest secret as `stringData`, for `stackgen kube-secrets`.
/// Printed, never written by stackgen.
pub fn secret_yaml(tenant: &Tenant) -> String {
    let mut data = Mapping::new();
    for (name, value) in &tenant.secrets {
        data.insert(name.clone().into(), value.clone().into());
    }
    crate::render::yaml::to_string(&map([
        ("apiVersion", "v1".into()),
        ("kind", "Secret".into()),
        ("metadata", metadata_for(tenant, SECRET_NAME)),
        ("type", "Opaque".into()),
        ("stringData", Value::Mapping(data)),
    ]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant() -> Tenant {
        let text = "DOMAIN=example.com\nBASE_DIR=/srv/x\nTENANT=team-a\nTEAM_A__SERVICES=redis\nTEAM_A__UID=20001\nTEAM_A__GID=20001\nTEAM_A__PORT_RANGE=20000-20099\nTEAM_A__REDIS_PASSWORD=abcdefghijklmnopqrstuvwxyz\nTEAM_A__VECTOR_DB=chroma\n";
        crate::manifest::Manifest::from_text(std::path::Path::new(".env"), text)
            .unwrap()
            .tenants
            .remove(0)
    }

    #[test]
    fn whole_and_embedded_secrets_become_references() {
        let t = tenant();
        let mut tr = Translator::new(&t);
        let mut env = Mapping::new();
        env.insert("A".into(), "${TEAM_A__REDIS_PASSWORD:?set it}".into());
        env.insert(
            "B".into(),
            "redis://:${TEAM_A__REDIS_PASSWORD:?set it}@redis:6379/1".into(),
        );
        env.insert("C".into(), "cost $$5 $(x)".into());
        let out = crate::render::yaml::to_string(&Value::Sequence(tr.env(Some(&env)).unwrap()));
        assert!(
            out.contains("secretKeyRef:\n      name: stackgen-secrets\n      key: REDIS_PASSWORD"),
            "{out}"
        );
        assert!(
            out.contains("redis://:$(STACKGEN_SECRET_REDIS_PASSWORD)@redis:6379/1"),
            "{out}"
        );
        // A literal `$` is doubled, so Kubernetes never expands it.
        assert!(out.contains("cost $$5 $$(x)"), "{out}");
        assert_eq!(tr.helpers().len(), 1);
        assert!(!out.contains("abcdefghijklmnop"));
    }

    #[test]
    fn a_foreign_key_or_a_secret_in_a_probe_is_refused() {
        let t = tenant();
        let mut tr = Translator::new(&t);
        assert!(tr.expanded("${OTHER__X:?no}").is_err());
        assert!(tr.literal("${TEAM_A__REDIS_PASSWORD:?no}").is_err());
        assert_eq!(tr.literal("echo $$HOME").unwrap(), "echo $HOME");
    }

    #[test]
    fn the_secret_holds_every_manifest_secret() {
        let t = tenant();
        let y: Value = serde_yaml::from_str(&secret_yaml(&t)).unwrap();
        assert_eq!(y["metadata"]["namespace"], "ai-platform-team-a");
        assert_eq!(
            y["stringData"]["REDIS_PASSWORD"],
            "abcdefghijklmnopqrstuvwxyz"
        );
    }
}
