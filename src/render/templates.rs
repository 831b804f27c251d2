//! The templates embedded in the binary, and the one minijinja environment that renders them.
//!
//! Service templates emit a YAML fragment (image-specific settings); config-file templates emit
//! whole files. Strict undefined behaviour makes a typo in a template an error, not an empty string.

use std::sync::OnceLock;

use minijinja::value::Value;
use minijinja::{Environment, Error, ErrorKind, State, UndefinedBehavior};

/// Every template file, by its path under `templates/` (a test checks this list against the folder).
pub const TEMPLATES: &[(&str, &str)] = &[
    (
        "files/_apparmor-common.j2",
        include_str!("../../templates/files/_apparmor-common.j2"),
    ),
    (
        "files/apparmor-confined.j2",
        include_str!("../../templates/files/apparmor-confined.j2"),
    ),
    (
        "files/apparmor-default.j2",
        include_str!("../../templates/files/apparmor-default.j2"),
    ),
    (
        "files/Caddyfile.j2",
        include_str!("../../templates/files/Caddyfile.j2"),
    ),
    (
        "files/grafana-datasources.yml.j2",
        include_str!("../../templates/files/grafana-datasources.yml.j2"),
    ),
    (
        "files/litellm-config.yaml.j2",
        include_str!("../../templates/files/litellm-config.yaml.j2"),
    ),
    (
        "files/postgres-init.sql.j2",
        include_str!("../../templates/files/postgres-init.sql.j2"),
    ),
    (
        "files/prometheus.yml.j2",
        include_str!("../../templates/files/prometheus.yml.j2"),
    ),
    (
        "files/squid.conf.j2",
        include_str!("../../templates/files/squid.conf.j2"),
    ),
    (
        "files/tailscale-serve.json.j2",
        include_str!("../../templates/files/tailscale-serve.json.j2"),
    ),
    (
        "services/_dify-api-env.yml.j2",
        include_str!("../../templates/services/_dify-api-env.yml.j2"),
    ),
    (
        "services/anythingllm.yml.j2",
        include_str!("../../templates/services/anythingllm.yml.j2"),
    ),
    (
        "services/caddy.yml.j2",
        include_str!("../../templates/services/caddy.yml.j2"),
    ),
    (
        "services/chroma.yml.j2",
        include_str!("../../templates/services/chroma.yml.j2"),
    ),
    (
        "services/custom.yml.j2",
        include_str!("../../templates/services/custom.yml.j2"),
    ),
    (
        "services/dify-api.yml.j2",
        include_str!("../../templates/services/dify-api.yml.j2"),
    ),
    (
        "services/dify-plugin-daemon.yml.j2",
        include_str!("../../templates/services/dify-plugin-daemon.yml.j2"),
    ),
    (
        "services/dify-sandbox.yml.j2",
        include_str!("../../templates/services/dify-sandbox.yml.j2"),
    ),
    (
        "services/dify-ssrf-proxy.yml.j2",
        include_str!("../../templates/services/dify-ssrf-proxy.yml.j2"),
    ),
    (
        "services/dify-web.yml.j2",
        include_str!("../../templates/services/dify-web.yml.j2"),
    ),
    (
        "services/dify-worker-beat.yml.j2",
        include_str!("../../templates/services/dify-worker-beat.yml.j2"),
    ),
    (
        "services/dify-worker.yml.j2",
        include_str!("../../templates/services/dify-worker.yml.j2"),
    ),
    (
        "services/flowise.yml.j2",
        include_str!("../../templates/services/flowise.yml.j2"),
    ),
    (
        "services/grafana.yml.j2",
        include_str!("../../templates/services/grafana.yml.j2"),
    ),
    (
        "services/litellm.yml.j2",
        include_str!("../../templates/services/litellm.yml.j2"),
    ),
    (
        "services/minio.yml.j2",
        include_str!("../../templates/services/minio.yml.j2"),
    ),
    (
        "services/n8n.yml.j2",
        include_str!("../../templates/services/n8n.yml.j2"),
    ),
    (
        "services/ollama.yml.j2",
        include_str!("../../templates/services/ollama.yml.j2"),
    ),
    (
        "services/openclaw.yml.j2",
        include_str!("../../templates/services/openclaw.yml.j2"),
    ),
    (
        "services/openwebui.yml.j2",
        include_str!("../../templates/services/openwebui.yml.j2"),
    ),
    (
        "services/postgres.yml.j2",
        include_str!("../../templates/services/postgres.yml.j2"),
    ),
    (
        "services/prometheus.yml.j2",
        include_str!("../../templates/services/prometheus.yml.j2"),
    ),
    (
        "services/qdrant.yml.j2",
        include_str!("../../templates/services/qdrant.yml.j2"),
    ),
    (
        "services/redis.yml.j2",
        include_str!("../../templates/services/redis.yml.j2"),
    ),
    (
        "services/signal-cli-rest-api.yml.j2",
        include_str!("../../templates/services/signal-cli-rest-api.yml.j2"),
    ),
    (
        "services/tailscale.yml.j2",
        include_str!("../../templates/services/tailscale.yml.j2"),
    ),
    (
        "services/weaviate.yml.j2",
        include_str!("../../templates/services/weaviate.yml.j2"),
    ),
];

/// The shared environment, built once.
pub fn environment() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.set_keep_trailing_newline(true);
        // Output is YAML, JSON, SQL or a Caddyfile: never HTML-escape.
        env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
        for (name, source) in TEMPLATES {
            env.add_template(name, source)
                .expect("embedded templates parse (tested)");
        }
        env.add_filter("q", compose_quote);
        env.add_filter("json", json_quote);
        env.add_function("secret", secret);
        env.add_function("pg_url", pg_url);
        env.add_function("redis_url", redis_url);
        env
    })
}

/// A JSON string (valid YAML) with `$` escaped for compose interpolation.
fn compose_quote(value: Value) -> Result<String, Error> {
    let s = value.to_string();
    let json = serde_json::to_string(&s)
        .map_err(|e| Error::new(ErrorKind::InvalidOperation, e.to_string()))?;
    Ok(json.replace('$', "$$"))
}

/// A JSON value (valid YAML), for files compose does not interpolate.
fn json_quote(value: Value) -> Result<String, Error> {
    serde_json::to_string(&value)
        .map_err(|e| Error::new(ErrorKind::InvalidOperation, e.to_string()))
}

fn lookup_str(state: &State, path: &[&str]) -> Result<String, Error> {
    let mut v = state.lookup(path[0]).ok_or_else(|| {
        Error::new(
            ErrorKind::UndefinedError,
            format!("`{}` is not in the context", path[0]),
        )
    })?;
    for p in &path[1..] {
        v = v.get_attr(p)?;
    }
    Ok(v.to_string())
}

/// `secret('NAME')`: a `${<TENANT>__NAME:?…}` reference; only secrets of selected components.
fn secret(state: &State, name: &str) -> Result<String, Error> {
    let allowed = state.lookup("allowed_secrets").ok_or_else(|| {
        Error::new(
            ErrorKind::UndefinedError,
            "allowed_secrets is not in the context",
        )
    })?;
    let known = allowed.try_iter()?.any(|v| v.as_str() == Some(name));
    if !known {
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            format!("template uses secret `{name}`, which no selected component declares in the catalog"),
        ));
    }
    let prefix = lookup_str(state, &["t", "prefix"])?;
    Ok(crate::platform::refs::reference(&format!(
        "{prefix}__{name}"
    )))
}

fn pg_url(state: &State, database: &str) -> Result<String, Error> {
    let password = secret(state, "POSTGRES_PASSWORD")?;
    Ok(format!(
        "postgresql://stackgen:{password}@postgres:5432/{database}"
    ))
}

fn redis_url(state: &State, db: u32) -> Result<String, Error> {
    let password = secret(state, "REDIS_PASSWORD")?;
    Ok(format!("redis://:{password}@redis:6379/{db}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_file_is_embedded() {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/templates");
        let mut on_disk = Vec::new();
        for dir in ["services", "files"] {
            for e in std::fs::read_dir(format!("{root}/{dir}")).unwrap() {
                let name = e.unwrap().file_name().into_string().unwrap();
                on_disk.push(format!("{dir}/{name}"));
            }
        }
        on_disk.sort();
        let mut embedded: Vec<String> = TEMPLATES.iter().map(|(n, _)| n.to_string()).collect();
        embedded.sort();
        assert_eq!(on_disk, embedded, "update TEMPLATES in src/templates.rs");
        let _ = environment();
    }

    #[test]
    fn quote_escapes_dollar() {
        assert_eq!(
            compose_quote(Value::from("a$b \"c\"")).unwrap(),
            r#""a$$b \"c\"""#
        );
    }
}
