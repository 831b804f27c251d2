//! Custom services: images outside the catalog that an operator adds to one tenant
//! (`stackgen add-service`). They live in the manifest as one block of keys per service:
//!
//! ```text
//! # ---- custom service my-app (stackgen add-service) ----
//! ACME__CUSTOM_MY_APP_IMAGE=ghcr.io/me/my-app:1.2
//! ACME__CUSTOM_MY_APP_PORT=8080            internal port
//! ACME__CUSTOM_MY_APP_HOST_PORT=20032      its 127.0.0.1 port, from the tenant's range
//! ACME__CUSTOM_MY_APP_ROUTE=my-app         caddy routes my-app.<tenant domain> (optional)
//! ACME__CUSTOM_MY_APP_HEALTHCHECK='wget -q --spider http://127.0.0.1:8080/'   (optional)
//! ACME__CUSTOM_MY_APP_VOLUMES=data:/data   name:/path, comma-separated (optional)
//! ACME__CUSTOM_MY_APP_ENV_LOG_LEVEL=info   one line per environment variable (optional)
//! ```
//!
//! The `_IMAGE` key declares the service. A custom service gets the same policy as a built-in
//! one (tenant user, no capabilities, AppArmor, labels, networks, data directory, caddy route).

use indexmap::IndexMap;

use crate::manifest::values::{self, Invalid};
use crate::platform::catalog::Catalog;

/// The first ports of every tenant range belong to the catalog's fixed offsets; custom services
/// take theirs from the rest, so adding a catalog service later never collides with one.
pub const RESERVED_PORTS: u16 = 32;

/// Settings a custom service may have, after `<T>__CUSTOM_<NAME>_`.
pub const SETTINGS: [&str; 6] = [
    "IMAGE",
    "PORT",
    "HOST_PORT",
    "ROUTE",
    "HEALTHCHECK",
    "VOLUMES",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomService {
    /// Compose service name, e.g. `my-app`.
    pub name: String,
    pub image: String,
    pub port: u16,
    pub host_port: u16,
    pub route: Option<String>,
    /// A shell command (CMD-SHELL); default: an HTTP probe of the port with wget or curl.
    pub healthcheck: Option<String>,
    /// (name under the service's data dir, path in the container).
    pub volumes: Vec<(String, String)>,
    pub env: IndexMap<String, String>,
}

impl CustomService {
    /// The healthcheck command, explicit or the default HTTP probe.
    pub fn healthcheck_command(&self) -> String {
        self.healthcheck.clone().unwrap_or_else(|| {
            let url = format!("http://127.0.0.1:{}/", self.port);
            format!("wget -q -O /dev/null {url} || curl -fsS -o /dev/null {url}")
        })
    }
}

/// `my-app` → `MY_APP`, the name's part of its keys.
pub fn key_part(name: &str) -> String {
    name.replace('-', "_").to_ascii_uppercase()
}

/// Checks a custom service name: usable as a compose service name and a key part, and not
/// shadowing a catalog service or component.
pub fn check_name(name: &str) -> Result<(), Invalid> {
    values::tenant_name(name).map_err(|_| {
        (
            format!("`{name}` is not a valid service name"),
            "use lower-case letters, digits and single dashes, starting with a letter, at most 30 characters".into(),
        )
    })?;
    // `env` and `host` would make keys ambiguous: CUSTOM_X_ENV_IMAGE could be service x-env's
    // image or service x's variable IMAGE, and CUSTOM_X_HOST_PORT likewise.
    if name.split('-').any(|w| w == "env" || w == "host") {
        return Err((
            format!("`{name}` contains the word `env` or `host`, which would make its manifest keys ambiguous"),
            "choose a name without those words".into(),
        ));
    }
    let catalog = Catalog::get();
    if catalog.services.contains_key(name) || catalog.component(name).is_some() {
        return Err((
            format!("`{name}` is a catalog service"),
            format!("choose another name, or select `{name}` in the tenant's SERVICES"),
        ));
    }
    Ok(())
}

pub fn check_route(route: &str) -> Result<(), Invalid> {
    let ok = !route.is_empty()
        && route.len() <= 63
        && route
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !route.starts_with('-')
        && !route.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err((
            format!("`{route}` is not a subdomain label"),
            "use lower-case letters, digits and dashes".into(),
        ))
    }
}

/// `data:/data,cache:/var/cache` → pairs.
pub fn parse_volumes(value: &str) -> Result<Vec<(String, String)>, Invalid> {
    let hint = "use NAME:/absolute/path, comma-separated, e.g. data:/data,cache:/var/cache";
    let mut out: Vec<(String, String)> = Vec::new();
    for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (name, path) = item
            .split_once(':')
            .ok_or_else(|| (format!("`{item}` is not NAME:/path"), hint.to_string()))?;
        let name_ok = !name.is_empty()
            && name.chars().all(|c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.')
            })
            && !name.starts_with('.');
        let path_ok = path.starts_with('/')
            && path.len() > 1
            && !path.split('/').any(|c| c == "..")
            && !path
                .chars()
                .any(|c| c.is_control() || matches!(c, ':' | ',' | '$' | '"' | '\''));
        if !name_ok || !path_ok {
            return Err((format!("`{item}` is not a valid volume"), hint.to_string()));
        }
        if out.iter().any(|(n, p)| n == name || p == path) {
            return Err((
                format!("volume `{item}` repeats a name or path"),
                hint.to_string(),
            ));
        }
        out.push((name.to_string(), path.to_string()));
    }
    Ok(out)
}

pub fn parse_port(value: &str) -> Result<u16, Invalid> {
    let hint = "use a port number from 1 to 65535";
    let n: u32 = value
        .trim()
        .parse()
        .map_err(|_| (format!("`{value}` is not a port number"), hint.to_string()))?;
    if n == 0 || n > 65535 {
        return Err((format!("port {n} is outside 1..65535"), hint.to_string()));
    }
    Ok(n as u16)
}

/// An environment variable name, as written after `_ENV_`.
pub fn check_env_name(name: &str) -> Result<(), Invalid> {
    let ok = name.starts_with(|c: char| c.is_ascii_uppercase())
        && name
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(())
    } else {
        Err((
            format!("`{name}` is not an environment variable name"),
            "use upper-case letters, digits and underscores".into(),
        ))
    }
}

/// Values are single-line; `'`-quoted when they hold anything a plain .env value cannot.
fn quote(value: &str) -> Result<String, Invalid> {
    if value.contains('\n') || value.contains('\r') {
        return Err((
            "values must fit on one line".into(),
            "remove the line break".into(),
        ));
    }
    let plain = !value.is_empty()
        && value.chars().all(|c| {
            c.is_ascii_alphanumeric()
                || matches!(c, '-' | '_' | '.' | '/' | ':' | '@' | ',' | '=' | '+')
        });
    if plain {
        Ok(value.to_string())
    } else if value.ends_with('\\') {
        // dotenvy would read `'…\'` as an unterminated value.
        Err((
            "a value ending in a backslash cannot be written to the manifest".into(),
            "remove the trailing `\\`".into(),
        ))
    } else if !value.contains('\'') {
        Ok(format!("'{value}'"))
    } else {
        Err((
            "a value with a single quote cannot be written to the manifest".into(),
            "remove the `'` from the value".into(),
        ))
    }
}

/// The manifest block that declares `svc` for the tenant with key prefix `prefix`. Appending it
/// and later removing it with `remove_block` gives back the manifest byte for byte.
pub fn block(prefix: &str, svc: &CustomService) -> Result<String, Invalid> {
    let k = format!("{prefix}__CUSTOM_{}", key_part(&svc.name));
    let mut b = format!("\n{}\n", header(&svc.name));
    b.push_str(&format!(
        "{k}_IMAGE={}\n{k}_PORT={}\n{k}_HOST_PORT={}\n",
        svc.image, svc.port, svc.host_port
    ));
    if let Some(r) = &svc.route {
        b.push_str(&format!("{k}_ROUTE={r}\n"));
    }
    if let Some(h) = &svc.healthcheck {
        b.push_str(&format!("{k}_HEALTHCHECK={}\n", quote(h)?));
    }
    if !svc.volumes.is_empty() {
        let v: Vec<String> = svc
            .volumes
            .iter()
            .map(|(n, p)| format!("{n}:{p}"))
            .collect();
        b.push_str(&format!("{k}_VOLUMES={}\n", v.join(",")));
    }
    for (name, value) in &svc.env {
        check_env_name(name)?;
        b.push_str(&format!("{k}_ENV_{name}={}\n", quote(value)?));
    }
    Ok(b)
}

fn header(name: &str) -> String {
    format!("# ---- custom service {name} (stackgen add-service) ----")
}

/// Removes the block of custom service `name` (its header comment, the blank line before it and
/// every one of its keys). Returns `None` when the manifest has no such service.
pub fn remove_block(text: &str, prefix: &str, name: &str) -> Option<String> {
    let key_prefix = format!("{prefix}__CUSTOM_{}_", key_part(name));
    let header = header(name);
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let is_ours = |l: &str| {
        let t = l.trim();
        let t = t.strip_prefix("export ").unwrap_or(t);
        t == header
            || t.strip_prefix(&key_prefix).is_some_and(|rest| {
                SETTINGS.iter().any(|s| rest.starts_with(&format!("{s}=")))
                    || rest.starts_with("ENV_")
            })
    };
    let image_key = format!("{key_prefix}IMAGE=");
    if !lines.iter().any(|l| l.trim().starts_with(&image_key)) {
        return None;
    }
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < lines.len() {
        let l = lines[i];
        // The blank line that `block` puts before the header goes with it.
        if l.trim().is_empty() && lines.get(i + 1).is_some_and(|n| n.trim() == header) {
            i += 1;
            continue;
        }
        if !is_ours(l) {
            out.push_str(l);
        }
        i += 1;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc() -> CustomService {
        let mut env = IndexMap::new();
        env.insert("LOG_LEVEL".into(), "info".into());
        env.insert("GREETING".into(), "hello $USER #1".into());
        CustomService {
            name: "my-app".into(),
            image: "ghcr.io/me/my-app:1.2".into(),
            port: 8080,
            host_port: 20032,
            route: Some("app".into()),
            healthcheck: Some("wget -q --spider http://127.0.0.1:8080/".into()),
            volumes: vec![("data".into(), "/data".into())],
            env,
        }
    }

    #[test]
    fn block_round_trips_through_remove() {
        let base = "DOMAIN=x\n# keep me\nTENANT=acme\n";
        let with = format!("{base}{}", block("ACME", &svc()).unwrap());
        assert!(
            with.contains("ACME__CUSTOM_MY_APP_ENV_GREETING='hello $USER #1'\n"),
            "{with}"
        );
        assert!(with.contains(
            "ACME__CUSTOM_MY_APP_HEALTHCHECK='wget -q --spider http://127.0.0.1:8080/'\n"
        ));
        assert_eq!(remove_block(&with, "ACME", "my-app").unwrap(), base);
        assert_eq!(remove_block(base, "ACME", "my-app"), None);
    }

    #[test]
    fn names_volumes_ports() {
        assert!(check_name("my-app").is_ok());
        assert!(
            check_name("postgres").is_err()
                && check_name("dify").is_err()
                && check_name("dify-api").is_err()
        );
        assert!(check_name("My_App").is_err() && check_name("../x").is_err());
        assert_eq!(
            parse_volumes("data:/data, cache:/var/cache").unwrap().len(),
            2
        );
        for bad in ["data", "data:rel", "../x:/a", "a:/x/../y", "a:/a,a:/b"] {
            assert!(parse_volumes(bad).is_err(), "{bad}");
        }
        assert!(
            parse_port("0").is_err() && parse_port("65536").is_err() && parse_port("x").is_err()
        );
        assert_eq!(parse_port("65535").unwrap(), 65535);
    }
}
