//! The platform's front door ("edge"): one caddy per host that publishes 80, 443 and 443/udp,
//! holds the certificates of every tenant hostname, and forwards each tenant's hostnames to that
//! tenant's own caddy only.
//!
//! It is rendered next to the tenants' stacks, from the whole manifest: `stacks/edge-stack.yml`
//! (its own compose project, `edge-<deployment>`) and `stacks/edge/Caddyfile`. The edge owns one
//! network per tenant with caddy, `ai-platform-<tenant>-front` (internal, a fixed /27 of
//! `EDGE_SUBNET`), which only the edge and that tenant's caddy join; tenant stacks declare it
//! `external`. So the edge comes up first (`stackgen up` does it), and no network ever joins two
//! tenants. The routes are the manifest's tenants: a tenant that is down keeps its routes and its
//! certificates, and its hostnames answer 502 from the edge until it is up again.
//!
//! This module is the pure part (settings, checks, rendering); what `up`, `status` and `doctor`
//! run is `crate::ops::edge`.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use anyhow::Result;
use serde_yaml::{Mapping, Value};

use crate::manifest::{Manifest, Platform, Tenant, TlsMode};
use crate::ops::preflight::{HostPort, Proto};
use crate::render::{Display, RenderedFile};

use crate::manifest::edge::{Settings, NAME};

/// The edge's only compose service.
pub const SERVICE: &str = "caddy";
/// Label on the edge's container and networks (besides the deployment label): what it is.
pub const ROLE_LABEL: &str = "com.stackgen.role";
/// Label on a tenant's front network: the tenant it leads to.
pub const FRONT_OF_LABEL: &str = "com.stackgen.front-of";
/// The port each tenant caddy serves plain HTTP on, for the edge (TLS ends at the edge).
pub const TENANT_PORT: u16 = 80;

/// The tenants the edge serves: those that run caddy on this host's engine (a tenant on another
/// engine is out of this front door's reach: docs/operations.md, several Docker engines).
pub fn tenants(manifest: &Manifest) -> Vec<&Tenant> {
    manifest
        .tenants
        .iter()
        .filter(|t| t.has("caddy") && !crate::ops::engines::is_remote(t))
        .collect()
}

/// `edge-<deployment>`: one front door per deployment (the tests run several on one engine).
pub fn project_name(manifest: &Manifest) -> String {
    match manifest
        .tenants
        .first()
        .and_then(|t| t.deployment.as_deref())
    {
        Some(id) => format!("{NAME}-{id}"),
        None => NAME.to_string(),
    }
}

/// The edge's own network (published ports and ACME traffic go through it).
pub fn public_network(manifest: &Manifest) -> String {
    format!("ai-platform-{}", project_name(manifest))
}

/// The network only the edge and this tenant's caddy join.
pub fn front_network(tenant: &Tenant) -> String {
    crate::policy::network_name(tenant, "front")
}

/// The name the edge reaches the tenant's caddy by (an alias on the front network only).
pub fn upstream(tenant: &Tenant) -> String {
    format!("{}-caddy", tenant.name)
}

/// The tenant's front network: the /27 of `EDGE_SUBNET` numbered by the first port of its
/// `PORT_RANGE` divided by 32. Port ranges are at least 32 ports and never overlap, so no two
/// tenants get the same block, and a tenant keeps its block as long as it keeps its range. Fixed,
/// so that the tenant caddy trusts forwarded headers from exactly this block (`trusted_proxies`).
pub fn front_subnet(platform: &Platform, tenant: &Tenant) -> String {
    let (a, b) = platform.edge.subnet;
    let base = u32::from(tenant.ports.0 / 32) * 32;
    format!("{a}.{b}.{}.{}/27", base / 256, base % 256)
}

/// The hostnames a tenant serves: `<route>.<tenant domain>` for every routed service.
pub fn hostnames(platform: &Platform, tenant: &Tenant) -> Vec<String> {
    let mut hosts: Vec<String> = crate::platform::model::services(platform, tenant)
        .iter()
        .flat_map(|s| s.def.routes.iter())
        .map(|r| format!("{}.{}", r.subdomain, tenant.domain))
        .collect();
    hosts.dedup();
    hosts
}

fn host_ip(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    }
}

/// The host ports the edge publishes, as compose writes them.
pub fn ports(edge: &Settings) -> Vec<String> {
    let ip = host_ip(edge.bind);
    vec![
        format!("{ip}:{}:80", edge.http_port),
        format!("{ip}:{}:443", edge.https_port),
        format!("{ip}:{}:443/udp", edge.https_port),
    ]
}

/// The host ports the edge needs, for the port checks (with the key that sets each).
pub fn host_ports(edge: &Settings) -> Vec<(HostPort, &'static str)> {
    let p = |port, proto, key| {
        (
            HostPort {
                ip: edge.bind,
                port,
                proto,
                service: format!("{NAME} {}", proto.as_str()),
            },
            key,
        )
    };
    vec![
        p(edge.http_port, Proto::Tcp, "EDGE_HTTP_PORT"),
        p(edge.https_port, Proto::Tcp, "EDGE_HTTPS_PORT"),
        p(edge.https_port, Proto::Udp, "EDGE_HTTPS_PORT"),
    ]
}

/// The edge's files: its stack and its Caddyfile; none when no tenant runs caddy.
pub fn render(manifest: &Manifest, display: &Display) -> Vec<RenderedFile> {
    let served = tenants(manifest);
    if served.is_empty() {
        return Vec::new();
    }
    vec![
        RenderedFile {
            path: PathBuf::from(format!("{NAME}-stack.yml")),
            content: stack(manifest, &served, display),
        },
        RenderedFile {
            path: Path::new(NAME).join("Caddyfile"),
            content: caddyfile(manifest, &served, display),
        },
    ]
}

/// The edge's files compared with the stacks directory (`output::compare_with` on `stacks/edge/`),
/// plus `stacks/edge-stack.yml` as stale when the manifest no longer has a front door (no tenant
/// runs caddy).
pub fn compare(
    stacks_dir: &Path,
    files: &[RenderedFile],
    diffs: crate::output::Diffs,
) -> Result<crate::output::Comparison> {
    let mut cmp = crate::output::compare_with(stacks_dir, Path::new(NAME), files, diffs)?;
    let stack = stacks_dir.join(format!("{NAME}-stack.yml"));
    if files.is_empty() && std::fs::symlink_metadata(&stack).is_ok_and(|m| m.is_file()) {
        cmp.stale.push(stack);
    }
    Ok(cmp)
}

fn strings(items: &[String]) -> Value {
    Value::Sequence(items.iter().map(|s| Value::from(s.as_str())).collect())
}

fn labels(manifest: &Manifest, extra: (&str, &str)) -> Value {
    let mut l = Mapping::new();
    l.insert(extra.0.into(), extra.1.into());
    if let Some(id) = manifest
        .tenants
        .first()
        .and_then(|t| t.deployment.as_deref())
    {
        l.insert(crate::policy::DEPLOYMENT_LABEL.into(), id.into());
    }
    Value::Mapping(l)
}

fn stack(manifest: &Manifest, served: &[&Tenant], display: &Display) -> String {
    let platform = &manifest.platform;
    let image = crate::platform::model::image(platform, served[0], SERVICE);
    let mut svc = Mapping::new();
    svc.insert("image".into(), image.into());
    // Root, but with no capability beyond binding 80/443: the edge holds only certificates, in
    // directories Docker creates (root-owned) on the first `up`, so plain compose works.
    svc.insert("user".into(), "0:0".into());
    svc.insert("restart".into(), "unless-stopped".into());
    svc.insert("read_only".into(), true.into());
    svc.insert("tmpfs".into(), strings(&["/tmp:rw,nosuid,nodev".into()]));
    svc.insert("cap_drop".into(), strings(&["ALL".into()]));
    svc.insert("cap_add".into(), strings(&["NET_BIND_SERVICE".into()]));
    svc.insert(
        "security_opt".into(),
        strings(&["no-new-privileges:true".into()]),
    );
    let mut env = Mapping::new();
    env.insert("XDG_DATA_HOME".into(), "/data".into());
    env.insert("XDG_CONFIG_HOME".into(), "/config".into());
    svc.insert("environment".into(), Value::Mapping(env));
    let root = format!("{}/{NAME}", platform.base_dir);
    svc.insert(
        "volumes".into(),
        strings(&[
            format!("./{NAME}:/etc/caddy:ro"),
            format!("{root}/data:/data"),
            format!("{root}/config:/config"),
        ]),
    );
    let mut nets = vec!["public".to_string()];
    nets.extend(served.iter().map(|t| t.name.clone()));
    svc.insert("networks".into(), strings(&nets));
    svc.insert("ports".into(), strings(&ports(&platform.edge)));
    let mut hc = Mapping::new();
    hc.insert(
        "test".into(),
        strings(&[
            "CMD".into(),
            "wget".into(),
            "-q".into(),
            "--spider".into(),
            "http://127.0.0.1:2019/config/".into(),
        ]),
    );
    for (k, v) in [
        ("interval", "10s"),
        ("timeout", "5s"),
        ("retries", "6"),
        ("start_period", "10s"),
    ] {
        let v = v.parse::<u64>().map_or(Value::from(v), Value::from);
        hc.insert(k.into(), v);
    }
    svc.insert("healthcheck".into(), Value::Mapping(hc));
    svc.insert("labels".into(), labels(manifest, (ROLE_LABEL, NAME)));
    svc.insert(
        "x-stackgen-exceptions".into(),
        strings(&[
            "user 0:0: the front door only holds certificates, in directories Docker creates root-owned on the first up; it keeps no capability but NET_BIND_SERVICE".into(),
            "ports on EDGE_BIND_ADDRESS: the one service of the platform that is reachable from outside the host".into(),
        ]),
    );
    let mut services = Mapping::new();
    services.insert(SERVICE.into(), Value::Mapping(svc));

    let mut networks = Mapping::new();
    let mut public = Mapping::new();
    public.insert("name".into(), public_network(manifest).into());
    public.insert("labels".into(), labels(manifest, (ROLE_LABEL, NAME)));
    networks.insert("public".into(), Value::Mapping(public));
    for t in served {
        let mut n = Mapping::new();
        n.insert("name".into(), front_network(t).into());
        // Nothing on it needs a way out: the edge reaches the internet through `public`.
        n.insert("internal".into(), true.into());
        let mut pool = Mapping::new();
        pool.insert("subnet".into(), front_subnet(platform, t).into());
        let mut ipam = Mapping::new();
        ipam.insert("config".into(), Value::Sequence(vec![Value::Mapping(pool)]));
        n.insert("ipam".into(), Value::Mapping(ipam));
        n.insert("labels".into(), labels(manifest, (FRONT_OF_LABEL, &t.name)));
        networks.insert(t.name.clone().into(), Value::Mapping(n));
    }
    let mut doc = Mapping::new();
    doc.insert("name".into(), project_name(manifest).into());
    doc.insert("services".into(), Value::Mapping(services));
    doc.insert("networks".into(), Value::Mapping(networks));
    let stack = format!("{}/{NAME}-stack.yml", display.stacks_dir);
    format!(
        "# Generated by stackgen from {m}: the platform's front door; do not edit by hand.\n\
         # One caddy on the host's ports 80 and 443 for every tenant hostname; each tenant's hostnames\n\
         # go to that tenant's caddy only, over a network only the two of them join.\n\
         #\n\
         # Deploy without stackgen, from the directory holding {m}, before the tenants' stacks (they\n\
         # join the networks it creates):\n\
         #   docker compose --env-file {m} -f {stack} up -d\n\
         # After a change: the same command, or `stackgen reload-proxy {NAME}` to reload in place.\n\n{}",
        crate::render::yaml::to_string(&Value::Mapping(doc)),
        m = display.manifest,
    )
}

fn caddyfile(manifest: &Manifest, served: &[&Tenant], display: &Display) -> String {
    let platform = &manifest.platform;
    let mut out = format!(
        "# Generated by stackgen from {}: the platform's front door; do not edit.\n\
         # Certificates for every tenant hostname; each site block goes to one tenant's caddy, on the\n\
         # network only the two of them share. A tenant that is down answers 502 here.\n\
         {{\n\
         \tadmin localhost:2019\n",
        display.manifest
    );
    if let Some(email) = &platform.acme_email {
        out.push_str(&format!("\temail {email}\n"));
    }
    // The TLS server name must be the Host: a connection opened for a hostname of tenant A
    // cannot carry a request for tenant B (421 Misdirected Request).
    out.push_str("\tservers {\n\t\tstrict_sni_host on\n\t}\n}\n");
    for t in served {
        let hosts = hostnames(platform, t);
        if hosts.is_empty() {
            continue;
        }
        out.push_str(&format!("# tenant {}\n{} {{\n", t.name, hosts.join(", ")));
        if platform.tls == TlsMode::Internal {
            out.push_str("\ttls internal\n");
        }
        out.push_str(&format!(
            "\treverse_proxy {}:{TENANT_PORT}\n}}\n",
            upstream(t)
        ));
    }
    out
}

// ---- running it -------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::edge::{bind_address, port, subnet};

    fn manifest(extra: &str) -> Result<Manifest, crate::error::UsageError> {
        let text = format!(
            "STACKGEN_MANIFEST_VERSION=1\nSTACKGEN_DEPLOYMENT=0123456789abcdef\nDOMAIN=example.com\nBASE_DIR=/srv/ai\nTLS_MODE=internal\n\
             TENANT=a\nA__VECTOR_DB=pgvector\nA__SERVICES=postgres,openwebui,caddy\nA__UID=20001\nA__GID=20001\nA__PORT_RANGE=20000-20099\n\
             A__POSTGRES_PASSWORD=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\nA__OPENWEBUI_SECRET_KEY=bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\n\
             TENANT=b\nB__VECTOR_DB=pgvector\nB__SERVICES=postgres,caddy\nB__UID=20002\nB__GID=20002\nB__PORT_RANGE=20100-20199\n\
             B__POSTGRES_PASSWORD=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n{extra}"
        );
        Manifest::from_text(Path::new(".env"), &text)
    }

    #[test]
    fn front_subnets_are_distinct_per_port_range() {
        let m = manifest("").unwrap();
        let a = front_subnet(&m.platform, &m.tenants[0]);
        let b = front_subnet(&m.platform, &m.tenants[1]);
        assert_eq!(a, "10.213.78.32/27"); // 20000/32 = 625, 625*32 = 20000 = 78*256 + 32
        assert_eq!(b, "10.213.78.128/27");
        // Any two ranges of at least 32 ports that do not overlap get different blocks.
        let block = |start: u16| u32::from(start / 32);
        for s in (1024u16..65000).step_by(97) {
            assert_ne!(block(s), block(s + 32), "{s}");
        }
    }

    #[test]
    fn settings_parse_and_refuse() {
        assert_eq!(port("8443"), Ok(8443));
        assert!(port("0").is_err() && port("70000").is_err() && port("x").is_err());
        assert_eq!(subnet("10.9.0.0/16"), Ok((10, 9)));
        for bad in ["10.9.0.0/24", "10.9.1.0/16", "10.9.0.0", "::/16"] {
            assert!(subnet(bad).is_err(), "{bad}");
        }
        assert!(bind_address("127.0.0.1").is_ok() && bind_address("::").is_ok());
        assert!(bind_address("localhost").is_err());
        let m = manifest("EDGE_HTTPS_PORT=20050\n").unwrap_err().to_string();
        assert!(
            m.contains("EDGE_HTTPS_PORT") && m.contains("inside tenant `a`'s A__PORT_RANGE"),
            "{m}"
        );
        let m = manifest("EDGE_HTTP_PORT=8443\nEDGE_HTTPS_PORT=8443\n")
            .unwrap_err()
            .to_string();
        assert!(
            m.contains("EDGE_HTTPS_PORT") && m.contains("same port"),
            "{m}"
        );
    }

    #[test]
    fn nested_or_equal_domains_are_refused() {
        for (extra, inner) in [
            ("B__DOMAIN=x.a.example.com\n", "x.a.example.com"),
            ("A__DOMAIN=example.com\n", "b.example.com"),
        ] {
            let m = manifest(extra).unwrap_err().to_string();
            assert!(m.contains(&format!("domain `{inner}`")), "{m}");
            assert!(m.contains("could not tell"), "{m}");
        }
        // A sibling that merely ends with the same letters is fine.
        assert!(manifest("B__DOMAIN=xa.example.com\n").is_ok());
    }

    #[test]
    fn caddyfile_routes_each_tenant_to_its_own_caddy_only() {
        let m = manifest("ACME_EMAIL=ops@example.com\n").unwrap();
        let d = Display {
            manifest: ".env".into(),
            stacks_dir: "stacks".into(),
        };
        let files = render(&m, &d);
        let caddy = &files[1].content;
        assert!(caddy.contains("email ops@example.com"), "{caddy}");
        assert!(caddy.contains("strict_sni_host on"), "{caddy}");
        assert!(
            caddy.contains(
                "openwebui.a.example.com {\n\ttls internal\n\treverse_proxy a-caddy:80\n}"
            ),
            "{caddy}"
        );
        // Tenant b routes nothing (no web service): no site block, but its network exists.
        assert!(!caddy.contains("b-caddy"), "{caddy}");
        let stack = &files[0].content;
        assert!(stack.contains("name: ai-platform-b-front"), "{stack}");
        assert!(stack.contains("\"0.0.0.0:443:443/udp\""), "{stack}");
        assert!(
            stack.contains("com.stackgen.deployment: \"0123456789abcdef\""),
            "{stack}"
        );
    }
}
