//! The front door's settings in the manifest (`EDGE_*`), and the checks that need every tenant:
//! no two tenants' domains the same or one inside the other, no front-door port in a tenant's
//! range. What the front door is and how it runs: `crate::render::edge`, `crate::ops::edge`.

use std::net::IpAddr;

use super::values::Invalid;
use super::Tenant;

/// The reserved word: `stacks/edge-stack.yml`, `stacks/edge/`, `reload-proxy edge`. No tenant
/// may be called this (its stack file would be the edge's).
pub const NAME: &str = "edge";
/// The manifest's `EDGE_*` keys, all optional.
pub const KEYS: [&str; 4] = [
    "EDGE_HTTP_PORT",
    "EDGE_HTTPS_PORT",
    "EDGE_BIND_ADDRESS",
    "EDGE_SUBNET",
];

/// What the `EDGE_*` keys set, without `EDGE_`: the names a per-engine key ends with.
pub const SETTINGS: [&str; 4] = ["HTTP_PORT", "HTTPS_PORT", "BIND_ADDRESS", "SUBNET"];

/// The start of a per-engine key, `EDGE__<CONTEXT>__<SETTING>`: each engine of the manifest has
/// its own front door (its own host, so its own address and ports), and the `EDGE_*` keys are
/// the defaults of all of them. `EDGE` cannot be a tenant's key prefix (`edge` is reserved).
pub const ENGINE_PREFIX: &str = "EDGE__";

/// `host-2` → `HOST_2`: a Docker context's name as it appears in a per-engine key.
pub fn context_key(context: &str) -> String {
    context
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// The key that sets `setting` (`HTTPS_PORT`) for the front door of `engine`: `EDGE_HTTPS_PORT`
/// for the current context, `EDGE__HOST_2__HTTPS_PORT` for context `host-2`.
pub fn key(engine: Option<&str>, setting: &str) -> String {
    match engine {
        None => format!("EDGE_{setting}"),
        Some(c) => format!("{ENGINE_PREFIX}{}__{setting}", context_key(c)),
    }
}

/// The settings of the front door of `engine` (`None`: the current context): its entry in
/// `per_engine`, else `defaults` (`Platform::edge_of`, and the manifest's checks before the
/// platform is built).
pub fn settings_of<'a>(
    defaults: &'a Settings,
    per_engine: &'a [(String, Settings)],
    engine: Option<&str>,
) -> &'a Settings {
    engine
        .and_then(|c| per_engine.iter().find(|(e, _)| e == c))
        .map_or(defaults, |(_, s)| s)
}

/// The key that sets `setting` of `engine`'s front door in a manifest that `has` these keys:
/// the engine's own `EDGE__<CONTEXT>__` key when set, else the `EDGE_*` key it inherits.
pub fn key_set_by(has: impl Fn(&str) -> bool, engine: Option<&str>, setting: &str) -> String {
    let own = key(engine, setting);
    if engine.is_none() || has(&own) {
        own
    } else {
        key(None, setting)
    }
}

/// The front door of an engine: `edge` for the current context (`stacks/edge-stack.yml`),
/// `edge-<context>` for another one (`stacks/edge-host-2-stack.yml`).
pub fn door_name(engine: Option<&str>) -> String {
    match engine {
        None => NAME.to_string(),
        Some(c) => format!("{NAME}-{c}"),
    }
}

/// Where the front door listens, and the address block its per-tenant networks come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub http_port: u16,
    pub https_port: u16,
    pub bind: IpAddr,
    /// The first two octets of the `/16` that holds every tenant's front network.
    pub subnet: (u8, u8),
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            http_port: 80,
            https_port: 443,
            bind: IpAddr::from([0, 0, 0, 0]),
            subnet: (10, 213),
        }
    }
}

/// `EDGE_HTTP_PORT` / `EDGE_HTTPS_PORT`.
pub fn port(value: &str) -> Result<u16, Invalid> {
    match value.parse::<u16>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err((
            format!("`{value}` is not a port number (1-65535)"),
            "use 80 and 443 on a public host (ACME needs them), or free high ports for a test"
                .into(),
        )),
    }
}

/// `EDGE_BIND_ADDRESS`: an IPv4 or IPv6 address of the host (0.0.0.0: every interface).
pub fn bind_address(value: &str) -> Result<IpAddr, Invalid> {
    value.parse().map_err(|_| {
        (
            format!("`{value}` is not an IP address"),
            "use 0.0.0.0 (every interface), or one address of the host such as 203.0.113.7".into(),
        )
    })
}

/// `EDGE_SUBNET`: an IPv4 `/16` such as `10.213.0.0/16`.
pub fn subnet(value: &str) -> Result<(u8, u8), Invalid> {
    let hint = "use an IPv4 /16 that no other network of the host uses, e.g. 10.213.0.0/16";
    let bad = || {
        (
            format!("`{value}` is not an IPv4 /16 (A.B.0.0/16)"),
            hint.into(),
        )
    };
    let (addr, bits) = value.split_once('/').ok_or_else(bad)?;
    let ip: std::net::Ipv4Addr = addr.parse().map_err(|_| bad())?;
    let [a, b, c, d] = ip.octets();
    if bits != "16" || c != 0 || d != 0 {
        return Err(bad());
    }
    Ok((a, b))
}

/// Why two tenants' domains cannot both be served by one front door: the same domain, or one
/// inside the other (then a hostname of one could be a hostname of the other, and the edge
/// could not tell whose it is).
pub fn domain_clash(a: &Tenant, b: &Tenant) -> Option<Invalid> {
    // `x` ends with `.y`; without allocating: it runs for every pair of tenants.
    let inside = |x: &str, y: &str| {
        !y.is_empty()
            && x.len() > y.len()
            && x.ends_with(y)
            && x.as_bytes()[x.len() - y.len() - 1] == b'.'
    };
    let (inner, outer) = if inside(&a.domain, &b.domain) {
        (a, b)
    } else if inside(&b.domain, &a.domain) {
        (b, a)
    } else {
        return None;
    };
    Some((
        format!(
            "domain `{}` of tenant `{}` is inside domain `{}` of tenant `{}`: the front door could not tell their hostnames apart",
            inner.domain, inner.name, outer.domain, outer.name
        ),
        "give each tenant a domain that is neither the same as nor below another tenant's, e.g. team-a.example.com and team-b.example.com".into(),
    ))
}

/// The edge's host ports that fall in a tenant's `PORT_RANGE` (its loopback ports come from it),
/// each with the key that set it (`keys`: the HTTP port's, the HTTPS port's). Only a tenant on
/// the same engine can clash: the caller passes the settings of the tenant's own front door.
pub fn port_clashes(edge: &Settings, keys: [String; 2], tenant: &Tenant) -> Vec<(String, Invalid)> {
    let [http, https] = keys;
    [(http, edge.http_port), (https, edge.https_port)]
        .into_iter()
        .filter(|(_, p)| (tenant.ports.0..=tenant.ports.1).contains(p))
        .map(|(key, p)| {
            (
                key,
                (
                    format!(
                        "port {p} is inside tenant `{}`'s {} {}-{}",
                        tenant.name,
                        tenant.key("PORT_RANGE"),
                        tenant.ports.0,
                        tenant.ports.1
                    ),
                    "give the front door and every tenant ports of their own".into(),
                ),
            )
        })
        .collect()
}
