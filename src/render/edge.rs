//! The platform's front door ("edge"): one caddy per host (per Docker engine) that publishes 80,
//! 443 and 443/udp, holds the certificates of the hostnames of that engine's tenants, and
//! forwards each tenant's hostnames to that tenant's own caddy only.
//!
//! It is rendered next to the tenants' stacks, from the whole manifest: for the current context,
//! `stacks/edge-stack.yml` (its own compose project, `edge-<deployment>`) and
//! `stacks/edge/Caddyfile`; for a tenant's `<T>__DOCKER_CONTEXT=host-2`, a front door of that
//! engine's own, `stacks/edge-host-2-stack.yml` and `stacks/edge-host-2/Caddyfile`, whose
//! Caddyfile is copied to that host (`BASE_DIR/edge-host-2/etc`) since a bind mount is read
//! on the engine's host. The edge owns one
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

use crate::manifest::edge::{door_name, Settings, NAME};

/// The edge's only compose service.
pub const SERVICE: &str = "caddy";
/// Label on the edge's container and networks (besides the deployment label): what it is.
pub const ROLE_LABEL: &str = "com.stackgen.role";
/// Label on a tenant's front network: the tenant it leads to.
pub const FRONT_OF_LABEL: &str = "com.stackgen.front-of";
/// The port each tenant caddy serves plain HTTP on, for the edge (TLS ends at the edge).
pub const TENANT_PORT: u16 = 80;

/// The tenants the front door of `engine` serves: those that run caddy on that engine (each
/// host's front door routes its own tenants only: a network cannot span two engines).
pub fn tenants<'a>(manifest: &'a Manifest, engine: Option<&str>) -> Vec<&'a Tenant> {
    manifest
        .tenants
        .iter()
        .filter(|t| t.has("caddy") && t.docker_context.as_deref() == engine)
        .collect()
}

/// The engines that have a front door (some tenant there runs caddy), in manifest order.
pub fn doors(manifest: &Manifest) -> Vec<Option<&str>> {
    crate::ops::engines::engines(manifest)
        .into_iter()
        .filter(|e| !tenants(manifest, *e).is_empty())
        .collect()
}

/// The engine whose front door `name` is (`edge`: the current context's; `edge-host-2`: context
/// `host-2`'s), whether or not a tenant of the manifest still runs there: a door left running
/// on an engine its last tenant moved away from must still be reachable by `down`. `None` when
/// the name is a tenant's, or names no valid context.
pub fn door_named(manifest: &Manifest, name: &str) -> Option<Option<String>> {
    if manifest.tenant(name).is_some() {
        return None;
    }
    if name == NAME {
        return Some(None);
    }
    let context = name.strip_prefix(&format!("{NAME}-"))?;
    crate::manifest::values::docker_context(context)
        .ok()
        .map(|()| Some(context.to_string()))
}

/// `edge-<deployment>` (`edge-<context>-<deployment>` on another engine): one front door per
/// deployment and engine (the tests run several on one engine; two contexts that reach the same
/// engine get two projects, and the port check names the first's container).
pub fn project_name(manifest: &Manifest, engine: Option<&str>) -> String {
    let door = match engine {
        None => NAME.to_string(),
        // A compose project name is lowercase letters, digits, `-` and `_`.
        Some(c) => format!(
            "{NAME}-{}",
            c.chars()
                .map(|ch| match ch.to_ascii_lowercase() {
                    l @ ('a'..='z' | '0'..='9' | '_' | '-') => l,
                    _ => '-',
                })
                .collect::<String>()
        ),
    };
    match manifest
        .tenants
        .first()
        .and_then(|t| t.deployment.as_deref())
    {
        Some(id) => format!("{door}-{id}"),
        None => door,
    }
}

/// The image of the door of `engine`: caddy's, as the manifest sets it (the first of its tenants
/// names it); empty when no tenant there runs caddy.
pub fn door_image(manifest: &Manifest, engine: Option<&str>) -> String {
    tenants(manifest, engine)
        .first()
        .map(|t| crate::platform::model::image(&manifest.platform, t, SERVICE))
        .unwrap_or_default()
}

/// The edge's own network (published ports and ACME traffic go through it).
pub fn public_network(manifest: &Manifest, engine: Option<&str>) -> String {
    format!("ai-platform-{}", project_name(manifest, engine))
}

/// `<door>-stack.yml`, relative to the stacks directory.
pub fn stack_file(engine: Option<&str>) -> PathBuf {
    PathBuf::from(format!("{}-stack.yml", door_name(engine)))
}

/// The folder of the door's Caddyfile, relative to the stacks directory.
pub fn files_dir(engine: Option<&str>) -> PathBuf {
    PathBuf::from(door_name(engine))
}

/// The door's folder on its engine's host: `BASE_DIR/<door>` (certificates in `data`, caddy's
/// own state in `config`, and on another engine the Caddyfile copied in `etc`).
pub fn host_root(platform: &Platform, engine: Option<&str>) -> String {
    format!("{}/{}", platform.base_dir, door_name(engine))
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
    let (a, b) = platform.edge_of(tenant.docker_context.as_deref()).subnet;
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

/// The host ports the edge needs, for the port checks (with the setting of each: `HTTP_PORT`).
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
        p(edge.http_port, Proto::Tcp, "HTTP_PORT"),
        p(edge.https_port, Proto::Tcp, "HTTPS_PORT"),
        p(edge.https_port, Proto::Udp, "HTTPS_PORT"),
    ]
}

/// Every front door's files: for each engine with a tenant that runs caddy, its stack and its
/// Caddyfile.
pub fn render(manifest: &Manifest, display: &Display) -> Vec<RenderedFile> {
    doors(manifest)
        .into_iter()
        .flat_map(|e| render_door(manifest, e, display))
        .collect()
}

/// The files of the front door of `engine`; none when no tenant there runs caddy.
pub fn render_door(
    manifest: &Manifest,
    engine: Option<&str>,
    display: &Display,
) -> Vec<RenderedFile> {
    let served = tenants(manifest, engine);
    if served.is_empty() {
        return Vec::new();
    }
    vec![
        RenderedFile {
            path: stack_file(engine),
            content: stack(manifest, engine, &served, display),
        },
        RenderedFile {
            path: files_dir(engine).join("Caddyfile"),
            content: caddyfile(manifest, &served, display),
        },
    ]
}

/// One front door's files and how the stacks directory differs from them.
pub struct DoorFiles {
    /// `edge`, `edge-host-2`: how commands and messages name it.
    pub name: String,
    pub files: Vec<RenderedFile>,
    pub cmp: crate::output::Comparison,
}

/// The files of the front door of `engine`, compared with the stacks directory: its
/// `<door>-stack.yml` is stale when the engine no longer has a front door.
pub fn compare_door(
    manifest: &Manifest,
    engine: Option<&str>,
    display: &Display,
    stacks_dir: &Path,
    diffs: crate::output::Diffs,
) -> Result<DoorFiles> {
    let files = render_door(manifest, engine, display);
    let cmp = compare_files(stacks_dir, &door_name(engine), &files, diffs)?;
    Ok(DoorFiles {
        name: door_name(engine),
        files,
        cmp,
    })
}

fn compare_files(
    stacks_dir: &Path,
    name: &str,
    files: &[RenderedFile],
    diffs: crate::output::Diffs,
) -> Result<crate::output::Comparison> {
    let mut cmp =
        crate::output::compare_generated(stacks_dir, Path::new(name), files, diffs, &|rel| {
            rel == Path::new("Caddyfile")
        })?;
    let stack = stacks_dir.join(format!("{name}-stack.yml"));
    if files.is_empty() && std::fs::symlink_metadata(&stack).is_ok_and(|m| m.is_file()) {
        cmp.stale.push(stack);
    }
    Ok(cmp)
}

/// Every front door of the manifest compared with the stacks directory, plus those the
/// directory still holds for an engine no tenant names any more (found by their header; a
/// tenant's stack is never taken for one). The entries with nothing to write or remove are
/// left out.
pub fn compare_all(
    manifest: &Manifest,
    display: &Display,
    stacks_dir: &Path,
    diffs: crate::output::Diffs,
) -> Result<Vec<DoorFiles>> {
    let mut out = Vec::new();
    let mut names = Vec::new();
    for engine in crate::ops::engines::engines(manifest) {
        let door = compare_door(manifest, engine, display, stacks_dir, diffs)?;
        names.push(door.name.clone());
        if !door.files.is_empty() || !door.cmp.is_clean() {
            out.push(door);
        }
    }
    // The current context's door may be gone although no tenant is local any more.
    if !names.iter().any(|n| n == NAME) {
        names.push(NAME.into());
        let cmp = compare_files(stacks_dir, NAME, &[], diffs)?;
        if !cmp.is_clean() {
            out.push(DoorFiles {
                name: NAME.into(),
                files: Vec::new(),
                cmp,
            });
        }
    }
    let Ok(entries) = std::fs::read_dir(stacks_dir) else {
        return Ok(out);
    };
    let mut removed: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let file = e.file_name().to_string_lossy().into_owned();
            let name = file.strip_suffix("-stack.yml")?.to_string();
            let is_file = e.file_type().is_ok_and(|t| t.is_file());
            (is_file && name.starts_with(&format!("{NAME}-"))).then_some(name)
        })
        .filter(|n| !names.contains(n) && manifest.tenant(n).is_none())
        .filter(|n| is_door_stack(&stacks_dir.join(format!("{n}-stack.yml"))))
        .collect();
    removed.sort();
    for name in removed {
        let cmp = compare_files(stacks_dir, &name, &[], diffs)?;
        out.push(DoorFiles {
            name,
            files: Vec::new(),
            cmp,
        });
    }
    Ok(out)
}

/// Whether a `*-stack.yml` is a front door's, by the first line stackgen writes in it.
fn is_door_stack(path: &Path) -> bool {
    use std::io::BufRead;
    std::fs::File::open(path).is_ok_and(|f| {
        let mut first = String::new();
        std::io::BufReader::new(f).read_line(&mut first).is_ok()
            && first.starts_with("# Generated by stackgen from ")
            && first.contains("the platform's front door")
    })
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

fn stack(
    manifest: &Manifest,
    engine: Option<&str>,
    served: &[&Tenant],
    display: &Display,
) -> String {
    let platform = &manifest.platform;
    let settings = platform.edge_of(engine);
    let image = door_image(manifest, engine);
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
    let root = host_root(platform, engine);
    // A bind mount is read on the engine's host: another engine's gets its Caddyfile copied
    // there (`crate::ops::edge::ensure`), the current one's reads the stacks directory.
    let caddyfile = match engine {
        None => format!("./{NAME}"),
        Some(_) => format!("{root}/etc"),
    };
    svc.insert(
        "volumes".into(),
        strings(&[
            format!("{caddyfile}:/etc/caddy:ro"),
            format!("{root}/data:/data"),
            format!("{root}/config:/config"),
        ]),
    );
    let mut nets = vec!["public".to_string()];
    nets.extend(served.iter().map(|t| t.name.clone()));
    svc.insert("networks".into(), strings(&nets));
    svc.insert("ports".into(), strings(&ports(settings)));
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
    public.insert("name".into(), public_network(manifest, engine).into());
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
    doc.insert("name".into(), project_name(manifest, engine).into());
    doc.insert("services".into(), Value::Mapping(services));
    doc.insert("networks".into(), Value::Mapping(networks));
    let stack = format!("{}/{}", display.stacks_dir, stack_file(engine).display());
    let door = door_name(engine);
    let (docker, copy) = match engine {
        None => (String::new(), String::new()),
        Some(c) => (
            format!("--context {c} "),
            format!(
                "# This front door runs on the engine of Docker context `{c}` and serves its tenants only;\n\
                 # the Caddyfile is read on that host: first copy {dir}/Caddyfile to {root}/etc/\n\
                 # there (`stackgen up` and `stackgen reload-proxy {door}` do).\n",
                dir = format_args!("{}/{}", display.stacks_dir, files_dir(engine).display()),
                root = host_root(platform, engine),
            ),
        ),
    };
    format!(
        "# Generated by stackgen from {m}: the platform's front door; do not edit by hand.\n\
         # One caddy on the host's ports 80 and 443 for every tenant hostname; each tenant's hostnames\n\
         # go to that tenant's caddy only, over a network only the two of them join.\n\
         {copy}\
         #\n\
         # Deploy without stackgen, from the directory holding {m}, before the tenants' stacks (they\n\
         # join the networks it creates):\n\
         #   docker {docker}compose --env-file {m} -f {stack} up -d\n\
         # After a change: the same command, or `stackgen reload-proxy {door}` to reload in place.\n\n{}",
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

    #[test]
    fn each_engine_has_its_own_front_door_for_its_own_tenants() {
        let m = manifest(
            "B__DOCKER_CONTEXT=host-2\nEDGE_BIND_ADDRESS=127.0.0.1\nEDGE__HOST_2__BIND_ADDRESS=127.0.0.2\nEDGE__HOST_2__HTTPS_PORT=8443\n",
        )
        .unwrap();
        assert_eq!(doors(&m), vec![None, Some("host-2")]);
        assert_eq!(door_named(&m, "edge-host-2"), Some(Some("host-2".into())));
        assert_eq!(door_named(&m, "edge"), Some(None));
        // A door whose engine no tenant names any more: still reachable (for `down`).
        assert_eq!(door_named(&m, "edge-host-3"), Some(Some("host-3".into())));
        assert_eq!(door_named(&m, "a"), None);
        assert_eq!(door_named(&m, "edge-"), None);
        let d = Display {
            manifest: ".env".into(),
            stacks_dir: "stacks".into(),
        };
        let files = render(&m, &d);
        let paths: Vec<String> = files.iter().map(|f| f.path.display().to_string()).collect();
        assert_eq!(
            paths,
            [
                "edge-stack.yml",
                "edge/Caddyfile",
                "edge-host-2-stack.yml",
                "edge-host-2/Caddyfile"
            ]
        );
        // The current engine's door: tenant a only, on its own address and the default ports.
        assert!(files[0].content.contains("name: ai-platform-a-front"));
        assert!(!files[0].content.contains("ai-platform-b-front"));
        assert!(
            files[0].content.contains("\"127.0.0.1:443:443\""),
            "{}",
            files[0].content
        );
        assert!(files[1].content.contains("a-caddy") && !files[1].content.contains("b-caddy"));
        // host-2's: tenant b only, its own address and HTTPS port, its Caddyfile from its host.
        let remote = &files[2].content;
        assert!(remote.contains("name: ai-platform-b-front"), "{remote}");
        assert!(!remote.contains("ai-platform-a-front"), "{remote}");
        assert!(remote.contains("\"127.0.0.2:8443:443/udp\""), "{remote}");
        assert!(remote.contains("\"127.0.0.2:80:80\""), "{remote}");
        assert!(
            remote.contains("/srv/ai/edge-host-2/etc:/etc/caddy:ro"),
            "{remote}"
        );
        assert!(
            remote.contains("name: edge-host-2-0123456789abcdef"),
            "{remote}"
        );
        assert!(
            remote.contains("docker --context host-2 compose --env-file .env -f stacks/edge-host-2-stack.yml up -d"),
            "{remote}"
        );
        // Compose project names: lowercase, `-` for what a project name cannot hold.
        assert_eq!(
            project_name(&m, Some("Host.2+x")),
            "edge-host-2-x-0123456789abcdef"
        );
    }

    #[test]
    fn per_engine_keys_are_checked() {
        let err = |extra: &str| manifest(extra).unwrap_err().to_string();
        let m = err("B__DOCKER_CONTEXT=host-2\nEDGE__HOST_3__HTTPS_PORT=8443\n");
        assert!(
            m.contains("EDGE__HOST_3__HTTPS_PORT") && m.contains("`host-2` (HOST_2)"),
            "{m}"
        );
        let m = err("B__DOCKER_CONTEXT=host-2\nEDGE__HOST_2__HTTPS_PROT=8443\n");
        assert!(m.contains("did you mean `EDGE__HOST_2__HTTPS_PORT`"), "{m}");
        let m = err("B__DOCKER_CONTEXT=host-2\nEDGE__HOST_2__BIND_ADDRESS=host\n");
        assert!(
            m.contains("EDGE__HOST_2__BIND_ADDRESS") && m.contains("not an IP"),
            "{m}"
        );
        // An edge port inside the range of a tenant on the same engine only.
        let m = err("B__DOCKER_CONTEXT=host-2\nEDGE__HOST_2__HTTPS_PORT=20150\n");
        assert!(
            m.contains("EDGE__HOST_2__HTTPS_PORT") && m.contains("tenant `b`'s B__PORT_RANGE"),
            "{m}"
        );
        assert!(manifest("B__DOCKER_CONTEXT=host-2\nEDGE__HOST_2__HTTPS_PORT=20050\n").is_ok());
        // Two contexts with the same key form, and a tenant named like a front door.
        let m = err("A__DOCKER_CONTEXT=host-2\nB__DOCKER_CONTEXT=host.2\n");
        assert!(m.contains("same key form `HOST_2`"), "{m}");
        let m = err(
            "B__DOCKER_CONTEXT=host-2\nTENANT=edge-host-2\nEDGE_HOST_2__VECTOR_DB=pgvector\nEDGE_HOST_2__SERVICES=postgres\n\
             EDGE_HOST_2__UID=20003\nEDGE_HOST_2__GID=20003\nEDGE_HOST_2__PORT_RANGE=20200-20299\n\
             EDGE_HOST_2__POSTGRES_PASSWORD=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n",
        );
        assert!(
            m.contains("B__DOCKER_CONTEXT") && m.contains("the name of tenant `edge-host-2`"),
            "{m}"
        );
    }
}
