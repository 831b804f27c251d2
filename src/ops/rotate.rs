//! `stackgen rotate-secrets`: which secrets may change, who uses them, and the new values.
//!
//! The rules are data (`rotation` in templates/catalog.yml): some secrets must never change
//! because a service encrypts stored data with them; some must first be set inside the running
//! service (postgres keeps the role's password in its database). The services that use a secret
//! are read from the rendered stack file — every use is a `${<TENANT>__<NAME>...}` reference
//! there — so the list of services to recreate cannot drift from what is deployed.

use anyhow::{Context, Result};
use serde_yaml::Value;

use crate::error::UsageError;
use crate::manifest::secrets;
use crate::manifest::Tenant;
use crate::platform::catalog::{Catalog, Rotation, RotationApply};

/// One secret to rotate.
#[derive(Debug, Clone)]
pub struct Item {
    /// `POSTGRES_PASSWORD`
    pub name: String,
    /// `TEAM_A__POSTGRES_PASSWORD`
    pub key: String,
    pub apply: Option<RotationApply>,
    pub note: Option<String>,
    /// The compose services whose definition references the secret.
    pub users: Vec<String>,
    pub new_value: String,
}

/// What `rotate-secrets` will do.
#[derive(Debug, Clone)]
pub struct Plan {
    pub rotate: Vec<Item>,
    /// Secrets left alone, with the reason (only when the operator named none).
    pub skipped: Vec<(String, String)>,
}

impl Plan {
    /// Every service that uses a rotated secret, in stack order, once.
    pub fn users(&self, stack_order: &[String]) -> Vec<String> {
        stack_order
            .iter()
            .filter(|s| self.rotate.iter().any(|i| i.users.contains(s)))
            .cloned()
            .collect()
    }
}

/// The rotation rule of a secret, from the component that declares it.
pub fn rule(name: &str) -> Option<&'static Rotation> {
    Catalog::get()
        .components
        .iter()
        .find_map(|c| c.rotation.get(name))
}

fn is_operator_secret(name: &str) -> bool {
    Catalog::get()
        .components
        .iter()
        .any(|c| c.operator_secrets.iter().any(|s| s == name))
}

/// Decides what to rotate. With no names: every generated secret the tenant has, skipping (and
/// reporting) those that must never change. With names: exactly those, and a usage error —
/// before anything changes — when one is unknown or must never change.
pub fn plan(tenant: &Tenant, stack_yaml: &str, requested: &[String]) -> Result<Plan> {
    let stack: Value = serde_yaml::from_str(stack_yaml).context("reading the stack file")?;
    let prefix = format!("{}__", tenant.prefix);
    let mut names = Vec::new();
    let mut skipped = Vec::new();
    let mut refused = Vec::new();
    if requested.is_empty() {
        for name in tenant.secrets.keys() {
            if is_operator_secret(name) {
                continue;
            }
            match rule(name).and_then(|r| r.never.as_ref()) {
                Some(why) => skipped.push((name.clone(), why.clone())),
                None => names.push(name.clone()),
            }
        }
    } else {
        for raw in requested {
            let name = raw.strip_prefix(&prefix).unwrap_or(raw).to_string();
            if !tenant.secrets.contains_key(&name) {
                let known: Vec<&str> = tenant.secrets.keys().map(String::as_str).collect();
                return Err(UsageError::plain(format!(
                    "tenant `{}` has no secret `{raw}` (its secrets: {})",
                    tenant.name,
                    known.join(", ")
                ))
                .into());
            }
            match rule(&name).and_then(|r| r.never.as_ref()) {
                Some(why) => refused.push(format!("{}{name} must never change: {why}", prefix)),
                None if !names.contains(&name) => names.push(name),
                None => {}
            }
        }
    }
    if !refused.is_empty() {
        return Err(UsageError::plain(format!(
            "refusing to rotate; nothing was changed:\n  {}",
            refused.join("\n  ")
        ))
        .into());
    }
    let rotate = names
        .into_iter()
        .map(|name| {
            let key = format!("{prefix}{name}");
            let r = rule(&name);
            Item {
                users: users(&stack, &key),
                apply: r.and_then(|r| r.apply),
                note: r.and_then(|r| r.note.clone()),
                new_value: secrets::generate(),
                key,
                name,
            }
        })
        .collect();
    Ok(Plan { rotate, skipped })
}

/// The services of a parsed stack whose definition references `${KEY}` or `${KEY:...}`.
pub fn users(stack: &Value, key: &str) -> Vec<String> {
    let plain = format!("${{{key}}}");
    let with_default = format!("${{{key}:");
    let Some(services) = stack.get("services").and_then(Value::as_mapping) else {
        return Vec::new();
    };
    services
        .iter()
        .filter(|(_, def)| {
            let text = serde_yaml::to_string(def).unwrap_or_default();
            text.contains(&plain) || text.contains(&with_default)
        })
        .filter_map(|(name, _)| name.as_str().map(str::to_string))
        .collect()
}

/// The compose service an in-service step runs in.
pub fn apply_service(apply: RotationApply) -> &'static str {
    match apply {
        RotationApply::PostgresAlterRole => "postgres",
        RotationApply::GrafanaAdminPassword => "grafana",
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::manifest::Manifest;
    use crate::render::compose::{self as render};
    use crate::render::Display;

    fn example() -> (Manifest, String) {
        let text =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/.env.example")).unwrap();
        let m = Manifest::from_text(Path::new(".env"), &text).unwrap();
        let t = m.tenant("team-a").unwrap();
        let display = Display {
            manifest: ".env".into(),
            stacks_dir: "stacks".into(),
        };
        let stack = render::render_tenant(&m, t, &display).unwrap()[0]
            .content
            .clone();
        (m, stack)
    }

    #[test]
    fn every_rotation_rule_names_a_secret_of_its_component() {
        for c in &Catalog::get().components {
            for (name, r) in &c.rotation {
                assert!(
                    c.secrets.contains(name) || c.operator_secrets.contains(name),
                    "{}: rotation rule for unknown secret {name}",
                    c.name
                );
                assert!(
                    !(r.never.is_some() && r.apply.is_some()),
                    "{name}: never and apply exclude each other"
                );
            }
        }
    }

    #[test]
    fn users_come_from_the_stack_file() {
        let (m, stack) = example();
        let t = m.tenant("team-a").unwrap();
        let p = plan(t, &stack, &["POSTGRES_PASSWORD".into()]).unwrap();
        let item = &p.rotate[0];
        assert_eq!(item.apply, Some(RotationApply::PostgresAlterRole));
        for s in [
            "postgres",
            "n8n",
            "litellm",
            "openwebui",
            "dify-api",
            "grafana",
        ] {
            assert!(
                item.users.contains(&s.to_string()),
                "{s} uses postgres: {:?}",
                item.users
            );
        }
        assert!(!item.users.contains(&"redis".to_string()));
        assert_ne!(item.new_value, t.secrets["POSTGRES_PASSWORD"]);
        assert_eq!(item.new_value.len(), 40);
    }

    #[test]
    fn secrets_that_must_never_change_are_refused_or_skipped() {
        let (m, stack) = example();
        let t = m.tenant("team-a").unwrap();
        let err = plan(
            t,
            &stack,
            &[
                "REDIS_PASSWORD".into(),
                "TEAM_A__N8N_ENCRYPTION_KEY".into(),
                "LITELLM_SALT_KEY".into(),
            ],
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("TEAM_A__N8N_ENCRYPTION_KEY must never change: n8n encrypts"),
            "{err}"
        );
        assert!(
            err.contains("TEAM_A__LITELLM_SALT_KEY must never change"),
            "{err}"
        );
        let err = plan(t, &stack, &["NOPE".into()]).unwrap_err().to_string();
        assert!(err.contains("has no secret `NOPE`"), "{err}");
        let err = plan(t, &stack, &["TAILSCALE_AUTH_KEY".into()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("refresh-tailscale-key"), "{err}");

        let all = plan(t, &stack, &[]).unwrap();
        let skipped: Vec<&str> = all.skipped.iter().map(|(n, _)| n.as_str()).collect();
        for s in [
            "N8N_ENCRYPTION_KEY",
            "FLOWISE_SECRETKEY",
            "ANYTHINGLLM_SIG_KEY",
            "ANYTHINGLLM_SIG_SALT",
            "LITELLM_SALT_KEY",
            "DIFY_SECRET_KEY",
            "GRAFANA_SECRET_KEY",
        ] {
            assert!(skipped.contains(&s), "{s} skipped: {skipped:?}");
        }
        assert!(all
            .rotate
            .iter()
            .all(|i| !skipped.contains(&i.name.as_str())));
        assert!(all.rotate.iter().all(|i| i.name != "TAILSCALE_AUTH_KEY"));
        assert!(all.rotate.iter().any(|i| i.name == "REDIS_PASSWORD"));
    }
}
