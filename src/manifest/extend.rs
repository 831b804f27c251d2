//! `stackgen add-service` / `remove-service` (the design's script 4), as pure functions from
//! one manifest text to the next, on top of `custom.rs` (the block format and its checks).
//!
//! `add` appends exactly one block and `remove` deletes exactly that block, so an add followed
//! by a remove gives the manifest back byte for byte, and with it the rendered stacks. Every
//! refusal is a [`UsageError`] (exit 2) raised before anything is written: a name that clashes
//! with the catalog or an existing service, a bad image reference, a port outside 1..65535, a
//! malformed `--env` or `--volume`, or a tenant whose custom port range is full.

use anyhow::Result;
use indexmap::IndexMap;

use crate::error::UsageError;
use crate::manifest::custom::{self, CustomService};
use crate::manifest::values::{self, Invalid};
use crate::manifest::{Manifest, Tenant};
use crate::platform::model;

/// What the operator asked to add, as typed.
#[derive(Debug, Clone, Default)]
pub struct AddRequest {
    pub name: String,
    pub image: String,
    pub port: String,
    /// `KEY=VALUE`, one per `--env`.
    pub env: Vec<String>,
    /// `NAME:/path`, one per `--volume`.
    pub volumes: Vec<String>,
    pub route: Option<String>,
    pub healthcheck: Option<String>,
}

/// A usage error naming the flag, with the validator's message and hint.
fn flag_error(flag: &str, (message, hint): Invalid) -> UsageError {
    UsageError::plain(format!("{flag}: {message}\n  fix: {hint}"))
}

/// The next free host port for a custom service: the tenant's range after the catalog's
/// reserved ports, skipping those its custom services already use. `None`: the range is full.
pub fn next_free_port(tenant: &Tenant) -> Option<u16> {
    let first = model::first_custom_port(tenant);
    (first..=tenant.ports.1).find(|p| !tenant.custom.iter().any(|c| c.host_port == *p))
}

/// Checks the request against the tenant and returns the service and the new manifest text.
pub fn add(
    manifest: &Manifest,
    tenant: &Tenant,
    req: &AddRequest,
) -> Result<(CustomService, String), UsageError> {
    let name = req.name.trim();
    custom::check_name(name).map_err(|e| flag_error("NAME", e))?;
    if tenant.custom.iter().any(|c| c.name == name) {
        return Err(UsageError::plain(format!(
            "tenant `{}` already has a custom service `{name}`\n  fix: choose another name, or `stackgen remove-service {} {name}` first",
            tenant.name, tenant.name
        )));
    }
    values::image(req.image.trim()).map_err(|e| flag_error("--image", e))?;
    let port = custom::parse_port(&req.port).map_err(|e| flag_error("--port", e))?;
    let mut env = IndexMap::new();
    for item in &req.env {
        let (key, value) = item.split_once('=').ok_or_else(|| {
            flag_error(
                "--env",
                (
                    format!("`{item}` is not KEY=VALUE"),
                    "write --env KEY=VALUE, one per variable".into(),
                ),
            )
        })?;
        custom::check_env_name(key).map_err(|e| flag_error("--env", e))?;
        if env.insert(key.to_string(), value.to_string()).is_some() {
            return Err(flag_error(
                "--env",
                (
                    format!("`{key}` is given twice"),
                    "give each variable once".into(),
                ),
            ));
        }
    }
    let volumes =
        custom::parse_volumes(&req.volumes.join(",")).map_err(|e| flag_error("--volume", e))?;
    let route = match &req.route {
        Some(r) => {
            custom::check_route(r.trim()).map_err(|e| flag_error("--route", e))?;
            Some(r.trim().to_string())
        }
        None => None,
    };
    let healthcheck = req
        .healthcheck
        .as_ref()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty());
    let host_port = next_free_port(tenant).ok_or_else(|| {
        UsageError::plain(format!(
            "tenant `{}` has no free host port left: its custom services use every port from {} to {}\n  fix: remove a custom service, or widen {} (ports before {} belong to the catalog)",
            tenant.name,
            model::first_custom_port(tenant),
            tenant.ports.1,
            tenant.key("PORT_RANGE"),
            model::first_custom_port(tenant)
        ))
    })?;
    let svc = CustomService {
        name: name.to_string(),
        image: req.image.trim().to_string(),
        port,
        host_port,
        route,
        healthcheck,
        volumes,
        env,
    };
    let block =
        custom::block(&tenant.prefix, &svc).map_err(|e| flag_error("--env or --healthcheck", e))?;
    let mut text = manifest.text.clone();
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(&block);
    // The whole manifest, as `render` will read it: route clashes and the like are caught here.
    Manifest::from_text(&manifest.path, &text)?;
    Ok((svc, text))
}

/// The manifest without the service's block.
pub fn remove(manifest: &Manifest, tenant: &Tenant, name: &str) -> Result<String, UsageError> {
    let Some(text) = custom::remove_block(&manifest.text, &tenant.prefix, name) else {
        let known: Vec<&str> = tenant.custom.iter().map(|c| c.name.as_str()).collect();
        let hint = if custom::check_name(name).is_err() && tenant.has(name) {
            format!(
                "`{name}` is a catalog service: change {} (`stackgen init` on a terminal)",
                tenant.key("SERVICES")
            )
        } else if known.is_empty() {
            "the tenant has no custom services".to_string()
        } else {
            format!("its custom services: {}", known.join(", "))
        };
        return Err(UsageError::plain(format!(
            "tenant `{}` has no custom service `{name}`\n  fix: {hint}",
            tenant.name
        )));
    };
    Manifest::from_text(&manifest.path, &text)?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::manifest::init::{self, InitOptions, NewTenant};

    fn manifest(range: Option<&str>) -> Manifest {
        let opts = InitOptions {
            tenants: vec![NewTenant::new("acme", "chroma", "openwebui,caddy")],
            ..InitOptions::default()
        };
        let mut text = init::plan(Path::new(".env"), None, &opts).unwrap().text;
        if let Some(r) = range {
            text = crate::manifest::edit::set_value(&text, "ACME__PORT_RANGE", r).unwrap();
        }
        Manifest::from_text(Path::new(".env"), &text).unwrap()
    }

    fn req(name: &str) -> AddRequest {
        AddRequest {
            name: name.into(),
            image: "ghcr.io/me/app:1.0".into(),
            port: "8080".into(),
            ..AddRequest::default()
        }
    }

    #[test]
    fn add_then_remove_is_the_identity() {
        let m = manifest(None);
        let mut r = req("my-app");
        r.env = vec!["GREETING=hello world".into(), "EMPTY=".into()];
        r.volumes = vec!["data:/data".into()];
        r.route = Some("app".into());
        let (svc, text) = add(&m, &m.tenants[0], &r).unwrap();
        assert_eq!(svc.host_port, 20032);
        assert!(text.starts_with(&m.text));
        let added = Manifest::from_text(&m.path, &text).unwrap();
        let back = remove(&added, &added.tenants[0], "my-app").unwrap();
        assert_eq!(back, m.text);
    }

    #[test]
    fn refusals_name_the_flag() {
        let m = manifest(None);
        let t = &m.tenants[0];
        let err = |r: AddRequest| add(&m, t, &r).unwrap_err().to_string();
        assert!(err(req("postgres")).contains("catalog"));
        assert!(err(req("dify-api")).contains("catalog"));
        assert!(err(req("Bad_Name")).starts_with("NAME:"));
        for image in ["", "UPPER/case:1", "app", "app:latest", "a b:1"] {
            let mut r = req("x");
            r.image = image.into();
            assert!(err(r).starts_with("--image:"), "{image:?}");
        }
        for port in ["0", "65536", "-1", "http", ""] {
            let mut r = req("x");
            r.port = port.into();
            assert!(err(r).starts_with("--port:"), "{port:?}");
        }
        let mut r = req("x");
        r.env = vec!["NOEQUALS".into()];
        assert!(err(r).starts_with("--env:"));
        let mut r = req("x");
        r.env = vec!["lower=1".into()];
        assert!(err(r).starts_with("--env:"));
        let mut r = req("x");
        r.volumes = vec!["data:relative".into()];
        assert!(err(r).starts_with("--volume:"));
        let mut r = req("x");
        r.route = Some("openwebui".into());
        assert!(err(r).contains("already taken"), "route clash");
        let e = remove(&m, t, "openwebui").unwrap_err().to_string();
        assert!(e.contains("catalog service"), "{e}");
    }

    #[test]
    fn a_full_range_is_refused_and_a_second_name_is_not_reused() {
        // 33 ports: 32 reserved for the catalog, one for a custom service.
        let m = manifest(Some("20000-20032"));
        let (_, text) = add(&m, &m.tenants[0], &req("one")).unwrap();
        let m2 = Manifest::from_text(&m.path, &text).unwrap();
        let e = add(&m2, &m2.tenants[0], &req("two"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("no free host port"), "{e}");
        let e = add(&m2, &m2.tenants[0], &req("one"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("already has"), "{e}");
    }
}
