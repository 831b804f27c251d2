//! Properties of every rendered stack, over random valid manifests (proptest).
//!
//! Each case is a manifest built from the key rules: 1 to 6 tenants, any vector DB, any subset of
//! the catalog (with what it requires; sometimes `all`), custom services with random names,
//! ports, routes, volumes, healthchecks and env values holding `$`, quotes, `#` and unicode, and
//! random platform settings. The real binary renders it, and for every output:
//!
//! - every YAML/JSON file parses; `render --check` (a second render, in a new process) is clean;
//!   the library renders the same bytes as the binary, twice in one process;
//! - no secret value appears in any file;
//! - no two tenants share a network name, host port, data path, project/container name or
//!   AppArmor profile, and every data path lies under `BASE_DIR/tenants/<tenant>/`;
//! - every service has a healthcheck; `depends_on` (and `network_mode: service:X`) names only
//!   existing services and has no cycle;
//! - custom env values and healthchecks reach the stack literally (`$` written `$$`);
//! - every Caddyfile passes `caddy adapt`, every AppArmor profile `apparmor_parser -Q -K`, and
//!   the first stack of every case `docker compose config -q` (64 stacks with the defaults).
//!
//! A second property mutates valid manifests at random (lines deleted, duplicated, swapped,
//! values replaced by arbitrary unicode) and checks that loading never panics and that a
//! manifest the loader accepts always renders.
//!
//! Reproducible: a fixed seed and no failure persistence. `PROPTEST_CASES=N` changes the number
//! of cases, `PROPTEST_RNG_SEED=N` the seed.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;

use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed, TestCaseError, TestRunner};
use serde_yaml::Value;
use stackgen::platform::catalog::{Catalog, VECTOR_DBS};

use crate::common::*;

/// The seed of both properties unless `PROPTEST_RNG_SEED` is set.
const SEED: u64 = 0x57ac_6e20_2506;

fn config(default_cases: u32) -> Config {
    let mut c = Config::default(); // reads PROPTEST_CASES and PROPTEST_RNG_SEED
    if std::env::var_os("PROPTEST_CASES").is_none() {
        c.cases = default_cases;
    }
    if std::env::var_os("PROPTEST_RNG_SEED").is_none() {
        c.rng_seed = RngSeed::Fixed(SEED);
    }
    c.failure_persistence = None;
    // A failing case runs the binary and the validators once per shrink step: keep it bounded.
    c.max_shrink_iters = 256;
    c.max_shrink_time = 120_000;
    c
}

// ---- the random manifest ---------------------------------------------------------------------

#[derive(Debug, Clone)]
struct CustomSpec {
    name: String,
    port: u16,
    /// Offset from the first port past the catalog's 32.
    host_offset: u16,
    route: Option<String>,
    healthcheck: Option<String>,
    volumes: Vec<(String, String)>,
    env: Vec<(String, String)>,
}

#[derive(Debug, Clone)]
struct TenantSpec {
    name: String,
    vdb: &'static str,
    /// One flag per optional component (catalog order, vector DBs left out).
    picked: Vec<bool>,
    all: bool,
    list_vdb: bool,
    own_domain: bool,
    kernel_tailscale: bool,
    models: Option<(&'static str, &'static str)>,
    size: u16,
    gap: u16,
    custom: Vec<CustomSpec>,
}

#[derive(Debug, Clone)]
struct Spec {
    domain: &'static str,
    base_dir: &'static str,
    tls_internal: bool,
    email: bool,
    registry: bool,
    redis_override: bool,
    first_port: u16,
    last_at_top: bool,
    id_base: u32,
    tenants: Vec<TenantSpec>,
}

fn optional_components() -> Vec<&'static str> {
    let catalog = Catalog::get();
    catalog
        .components
        .iter()
        .filter(|c| !c.vector_db)
        .map(|c| c.name.as_str())
        .collect()
}

/// Every subdomain the catalog routes: a custom route must not take one.
fn catalog_routes() -> Vec<String> {
    Catalog::get()
        .services
        .values()
        .flat_map(|s| s.routes.iter().map(|r| r.subdomain.clone()))
        .collect()
}

/// Characters of custom values: what a shell command or a password might hold.
const VALUE_CHARS: &[char] = &[
    'a', 'b', 'Z', '0', '9', ' ', ' ', '$', '$', '{', '}', '"', '\'', '#', '\\', ':', '=', ',',
    '/', '-', '_', '.', '*', '!', '|', '&', ';', '(', ')', '[', ']', '<', '>', '%', '@', '~', '`',
    '?', 'é', 'ü', '☃', '漢', '字', '🚀', '\u{200b}',
];

fn value() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(VALUE_CHARS), 0..24)
        .prop_map(|cs| cs.into_iter().collect())
}

fn custom_spec() -> impl Strategy<Value = CustomSpec> {
    let name = "[a-z][a-z0-9]{0,7}(-[a-z0-9]{1,5}){0,2}"
        .prop_filter("a valid custom service name", |n| {
            stackgen::manifest::custom::check_name(n).is_ok()
        });
    let route = prop::option::of("[a-z][a-z0-9-]{0,8}[a-z0-9]");
    let volumes = prop::collection::vec(
        (
            "[a-z0-9][a-z0-9._-]{0,6}",
            prop::sample::select(vec![
                "/data",
                "/var/lib/app",
                "/srv/my data",
                "/opt/ünï",
                "/x#y",
                "/home/app/.config",
                "/cache/a-b_c.d",
            ]),
        ),
        0..3,
    );
    let env = prop::collection::vec(("[A-Z][A-Z0-9_]{0,10}", value()), 0..4);
    (
        name,
        1u16..=65535,
        0u16..64,
        route,
        prop::option::of(value()),
        volumes,
        env,
    )
        .prop_map(
            |(name, port, host_offset, route, healthcheck, volumes, env)| {
                let mut seen_names = BTreeSet::new();
                let mut seen_paths = BTreeSet::new();
                let volumes = volumes
                    .into_iter()
                    .filter(|(n, p)| seen_names.insert(n.clone()) && seen_paths.insert(*p))
                    .map(|(n, p)| (n, p.to_string()))
                    .collect();
                let mut seen_vars = BTreeSet::new();
                let env = env
                    .into_iter()
                    .filter(|(k, _)| seen_vars.insert(k.clone()))
                    .collect();
                CustomSpec {
                    name,
                    port,
                    host_offset,
                    route,
                    healthcheck,
                    volumes,
                    env,
                }
            },
        )
}

fn tenant_spec() -> impl Strategy<Value = TenantSpec> {
    let n = optional_components().len();
    (
        "[a-z][a-z0-9]{0,9}(-[a-z0-9]{1,6}){0,2}",
        prop::sample::select(VECTOR_DBS.to_vec()),
        prop::collection::vec(any::<bool>(), n),
        prop::bool::weighted(0.15),
        any::<bool>(),
        any::<bool>(),
        prop::bool::weighted(0.3),
        prop::option::of(prop::sample::select(vec![
            ("qwen2.5:0.5b", "all-minilm"),
            ("mistral:7b", "nomic-embed-text"),
            ("library/llama3.2:3b", "mxbai-embed-large:latest"),
        ])),
        32u16..=160,
        0u16..=400,
        prop::collection::vec(custom_spec(), 0..4),
    )
        .prop_map(
            |(name, vdb, picked, all, list_vdb, own_domain, kernel, models, size, gap, custom)| {
                TenantSpec {
                    name,
                    vdb,
                    picked,
                    all,
                    list_vdb,
                    own_domain,
                    kernel_tailscale: kernel,
                    models,
                    size,
                    gap,
                    custom,
                }
            },
        )
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        prop::sample::select(vec!["example.com", "ai.example.org", "x-y.test"]),
        prop::sample::select(vec![
            "/srv/ai",
            "/srv/ai-platform",
            "/data/my platform",
            "/srv/ünïcode",
            "/opt/a_b.c-d",
        ]),
        any::<bool>(),
        any::<bool>(),
        prop::bool::weighted(0.2),
        prop::bool::weighted(0.2),
        prop::sample::select(vec![1u16, 1024, 8000, 20000]),
        prop::bool::weighted(0.2),
        1000u32..60000,
        prop::collection::vec(tenant_spec(), 1..=6),
    )
        .prop_map(
            |(domain, base_dir, tls, email, registry, redis, first, top, id_base, tenants)| Spec {
                domain,
                base_dir,
                tls_internal: tls,
                email,
                registry,
                redis_override: redis,
                first_port: first,
                last_at_top: top,
                id_base,
                tenants,
            },
        )
}

/// What a rendered stack must show of the manifest's custom services.
#[derive(Debug, Default)]
struct Expected {
    tenants: Vec<String>,
    secrets: Vec<String>,
    /// tenant → its custom services.
    custom: HashMap<String, Vec<ExpectedCustom>>,
}

/// A custom service as its stack must show it: (name, env, healthcheck, "127.0.0.1:host:port").
type ExpectedCustom = (String, Vec<(String, String)>, Option<String>, String);

/// A value as a manifest line holds it: single quotes when possible (everything literal; but
/// `\'` would escape the closing quote, for dotenvy as for compose), else double quotes (no `$`
/// allowed there), else single quotes without the `'` and trailing `\`.
fn quoted(v: &str) -> (String, String) {
    if !v.contains('\'') && !v.ends_with('\\') {
        (format!("'{v}'"), v.to_string())
    } else if !v.contains('$') {
        let escaped = v.replace('\\', "\\\\").replace('"', "\\\"");
        (format!("\"{escaped}\""), v.to_string())
    } else {
        let kept = v.replace('\'', "").trim_end_matches('\\').to_string();
        (format!("'{kept}'"), kept)
    }
}

/// Deterministic secret values: letters, digits and `-_.~`, unique per tenant and name.
fn secret(tenant: usize, name: &str, salt: u32) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ u64::from(salt);
    for b in name.bytes().chain([tenant as u8]) {
        h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
    }
    let h2 = h.rotate_left(29).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    format!("S{tenant}x{h:016x}.{h2:016x}~q")
}

fn manifest(spec: &Spec) -> (String, Expected) {
    let catalog = Catalog::get();
    let optional = optional_components();
    let taken_routes = catalog_routes();
    let mut exp = Expected::default();
    let mut m = String::from(
        "# generated by tests/integration/properties.rs\nSTACKGEN_MANIFEST_VERSION=1\n",
    );
    m.push_str(&format!("DOMAIN={}\n", spec.domain));
    m.push_str(&format!("BASE_DIR='{}'\n", spec.base_dir));
    m.push_str(&format!(
        "TLS_MODE={}\n",
        if spec.tls_internal {
            "internal"
        } else {
            "acme"
        }
    ));
    if spec.email {
        m.push_str("ACME_EMAIL=ops+ai@example.com\n");
    }
    if spec.registry {
        m.push_str("IMAGE_REGISTRY=mirror.internal:5000/ai\n");
    }
    if spec.redis_override {
        m.push_str("REDIS_IMAGE=redis:7.4.1-alpine\n");
    }
    let mut names: BTreeSet<String> = BTreeSet::new();
    let mut next_port = u32::from(spec.first_port);
    let mut ranges: Vec<(u32, u32)> = Vec::new();
    let count = spec.tenants.len();
    for (i, t) in spec.tenants.iter().enumerate() {
        // Unique names (and so unique key prefixes and default domains).
        let mut name = t.name.clone();
        if !names.insert(name.clone()) {
            name = format!("{}-{i}", t.name);
            names.insert(name.clone());
        }
        let p = name.replace('-', "_").to_ascii_uppercase();
        // Components: the picked ones, their requirements, the vector DB.
        let vdb_component = if t.vdb == "pgvector" {
            "postgres"
        } else {
            t.vdb
        };
        let mut chosen: Vec<&str> = optional
            .iter()
            .zip(&t.picked)
            .filter(|(_, on)| **on)
            .map(|(c, _)| *c)
            .collect();
        if t.all {
            chosen = optional.clone();
        }
        // Components that cannot use this vector DB (dify with chroma) are left out, as `all`
        // does; naming one is a tested bad-input case of its own.
        chosen.retain(|c| {
            !catalog
                .component(c)
                .unwrap()
                .incompatible_vector_dbs
                .contains_key(t.vdb)
        });
        loop {
            let mut added = false;
            for c in chosen.clone() {
                for r in &catalog.component(c).unwrap().requires {
                    if !chosen.contains(&r.as_str()) {
                        chosen.push(optional.iter().find(|o| **o == r).unwrap());
                        added = true;
                    }
                }
            }
            if !added {
                break;
            }
        }
        let mut listed: Vec<&str> = chosen.clone();
        if t.all {
            listed = vec!["all"];
        } else if (t.list_vdb || listed.is_empty()) && !listed.contains(&vdb_component) {
            listed.push(vdb_component);
        }
        if !chosen.contains(&vdb_component) {
            chosen.push(vdb_component);
        }
        let has = |c: &str| chosen.contains(&c);
        // Port range: after the previous one, or at the very top for the last tenant.
        let mut start = next_port + u32::from(t.gap);
        if spec.last_at_top && i + 1 == count && start + 200 < 65535 {
            start = 65536 - u32::from(t.size);
        }
        let end = start + u32::from(t.size) - 1;
        next_port = end + 1;
        ranges.push((start, end));
        let uid = spec.id_base + 2 * i as u32;
        m.push_str(&format!(
            "\n# ---- tenant {name} ----\nTENANT={name}\n{p}__VECTOR_DB={}\n{p}__SERVICES={}\n\
             {p}__UID={uid}\n{p}__GID={uid}\n{p}__PORT_RANGE={start}-{end}\n",
            t.vdb,
            listed.join(",")
        ));
        if has("openclaw") || has("tailscale") {
            m.push_str(&format!(
                "{p}__OPENCLAW_UID={}\n{p}__OPENCLAW_GID={}\n",
                uid + 1,
                uid + 1
            ));
            if t.kernel_tailscale {
                m.push_str(&format!("{p}__TAILSCALE_MODE=kernel\n"));
            }
        }
        if t.own_domain {
            m.push_str(&format!("{p}__DOMAIN={name}.tenants.example.net\n"));
        }
        if let Some((chat, embed)) = t.models {
            m.push_str(&format!(
                "{p}__OLLAMA_MODEL={chat}\n{p}__EMBEDDING_MODEL={embed}\n"
            ));
        }
        for c in &chosen {
            let comp = catalog.component(c).unwrap();
            for s in &comp.secrets {
                let v = secret(i, s, spec.id_base);
                m.push_str(&format!("{p}__{s}={v}\n"));
                exp.secrets.push(v);
            }
            for s in &comp.operator_secrets {
                let v = format!("tskey-auth-{}", secret(i, s, spec.id_base));
                m.push_str(&format!("{p}__{s}={v}\n"));
                exp.secrets.push(v);
            }
        }
        // Custom services: unique names, routes and host ports.
        let mut custom_names = BTreeSet::new();
        let mut routes: BTreeSet<String> = BTreeSet::new();
        let mut host_ports = BTreeSet::new();
        let free = u32::from(t.size) - 32;
        let mut customs = Vec::new();
        for c in &t.custom {
            // A 32-port range has no room past the catalog's ports.
            if host_ports.len() as u32 >= free || !custom_names.insert(c.name.clone()) {
                continue;
            }
            let mut offset = u32::from(c.host_offset) % free;
            while !host_ports.insert(offset) {
                offset = (offset + 1) % free;
            }
            let host = start + 32 + offset;
            let k = format!(
                "{p}__CUSTOM_{}",
                c.name.replace('-', "_").to_ascii_uppercase()
            );
            m.push_str(&format!(
                "# ---- custom service {} ----\n{k}_IMAGE=ghcr.io/example/{}:1.0\n{k}_PORT={}\n{k}_HOST_PORT={host}\n",
                c.name, c.name, c.port
            ));
            if let Some(r) = &c.route {
                if !taken_routes.contains(r) && routes.insert(r.clone()) {
                    m.push_str(&format!("{k}_ROUTE={r}\n"));
                }
            }
            let mut healthcheck = None;
            if let Some(h) = &c.healthcheck {
                let (line, v) = quoted(h);
                m.push_str(&format!("{k}_HEALTHCHECK={line}\n"));
                let v = v.trim().to_string();
                healthcheck = (!v.is_empty()).then_some(v);
            }
            if !c.volumes.is_empty() {
                let v: Vec<String> = c.volumes.iter().map(|(n, p)| format!("{n}:{p}")).collect();
                m.push_str(&format!("{k}_VOLUMES='{}'\n", v.join(",")));
            }
            let mut env = Vec::new();
            for (var, value) in &c.env {
                let (line, v) = quoted(value);
                m.push_str(&format!("{k}_ENV_{var}={line}\n"));
                env.push((var.clone(), v));
            }
            customs.push((
                c.name.clone(),
                env,
                healthcheck,
                format!("127.0.0.1:{host}:{}", c.port),
            ));
        }
        exp.custom.insert(name.clone(), customs);
        exp.tenants.push(name);
    }
    // The front door's ports: the defaults (80, 443) unless a range holds one, then the first
    // two ports from 80 up that no range holds.
    let free = |p: u32| !ranges.iter().any(|(a, b)| (*a..=*b).contains(&p));
    if !free(80) || !free(443) {
        let mut ports = (80u32..65536).filter(|p| free(*p));
        let (http, https) = (ports.next().unwrap(), ports.next().unwrap());
        m.push_str(&format!("EDGE_HTTP_PORT={http}\nEDGE_HTTPS_PORT={https}\n"));
    }
    (m, exp)
}

// ---- checks ----------------------------------------------------------------------------------

/// The validators this machine has (each asked once; in CI a missing one fails the test).
struct Tools {
    caddy: bool,
    apparmor: bool,
    compose: bool,
}

/// Counts of what the validators checked, to prove they ran.
#[derive(Default, Debug)]
struct Checked {
    caddyfiles: usize,
    profiles: usize,
    compose: usize,
    stacks: usize,
    /// Seconds spent running stackgen, and each validator.
    stackgen_s: f64,
    caddy_s: f64,
    apparmor_s: f64,
    compose_s: f64,
}

fn fail(msg: impl Into<String>) -> TestCaseError {
    TestCaseError::fail(msg.into())
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    collect(dir, &mut out);
    out.sort();
    out
}

fn run_tool(cmd: &mut Command) -> Result<(), String> {
    let out = cmd.output().map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// Host port and protocol of a compose `ports` entry such as `127.0.0.1:20010:8080/udp`.
fn host_port(entry: &str) -> (String, String) {
    let (spec, proto) = entry.split_once('/').unwrap_or((entry, "tcp"));
    let parts: Vec<&str> = spec.split(':').collect();
    (parts[parts.len() - 2].to_string(), proto.to_string())
}

fn check_case(
    text: &str,
    exp: &Expected,
    tools: &Tools,
    checked: &mut Checked,
    base_dir: &str,
) -> Result<(), TestCaseError> {
    let s = Sandbox::new();
    s.write(".env", text);
    let clock = std::time::Instant::now();
    let run = s.run(&["render"]);
    if run.code != 0 {
        return Err(fail(format!(
            "render failed ({}):\n{}",
            run.code, run.stderr
        )));
    }
    let stacks = s.path("stacks");
    let files = files_under(&stacks);
    let contents: Vec<(PathBuf, String)> = files
        .iter()
        .map(|f| (f.clone(), std::fs::read_to_string(f).unwrap()))
        .collect();

    // Parses: every YAML and JSON file.
    for (f, c) in &contents {
        let name = f.to_string_lossy();
        if name.ends_with(".yml") || name.ends_with(".yaml") {
            serde_yaml::from_str::<Value>(c)
                .map_err(|e| fail(format!("{name} is not YAML: {e}")))?;
        } else if name.ends_with(".json") {
            serde_json::from_str::<serde_json::Value>(c)
                .map_err(|e| fail(format!("{name} is not JSON: {e}")))?;
        }
    }

    // Deterministic: --check is clean, and the library renders the same bytes as the binary,
    // twice.
    // `--check` renders again in a new process and compares byte for byte with the disk.
    let check = s.run(&["render", "--check"]);
    prop_assert_eq!(
        check.code,
        0,
        "render --check after render: {}",
        check.stdout
    );
    checked.stackgen_s += clock.elapsed().as_secs_f64();
    let m = stackgen::manifest::Manifest::from_text(Path::new(".env"), text)
        .map_err(|e| fail(format!("the library rejects the manifest: {e}")))?;
    let display = stackgen::render::Display {
        manifest: ".env".into(),
        stacks_dir: "stacks".into(),
    };
    for t in &m.tenants {
        let one = stackgen::render::compose::render_tenant(&m, t, &display)
            .map_err(|e| fail(format!("{e:#}")))?;
        let two = stackgen::render::compose::render_tenant(&m, t, &display)
            .map_err(|e| fail(format!("{e:#}")))?;
        prop_assert!(one == two, "{}: two in-process renders differ", t.name);
        for f in &one {
            let on_disk = std::fs::read_to_string(stacks.join(&f.path)).unwrap_or_default();
            prop_assert!(
                on_disk == f.content,
                "{} differs from the library's render",
                f.path.display()
            );
        }
    }

    // The front door too (there is one when a tenant runs caddy).
    let edge = stackgen::render::edge::render(&m, &display);
    prop_assert_eq!(
        edge.is_empty(),
        !m.tenants.iter().any(|t| t.has("caddy")),
        "a front door exactly when a tenant runs caddy"
    );
    for f in &edge {
        let on_disk = std::fs::read_to_string(stacks.join(&f.path)).unwrap_or_default();
        prop_assert!(
            on_disk == f.content,
            "{} differs from the library's render",
            f.path.display()
        );
    }
    let edge_caddyfile = stacks.join("edge/Caddyfile");
    if tools.caddy && edge_caddyfile.exists() {
        run_tool(
            Command::new("caddy")
                .args(["adapt", "--adapter", "caddyfile", "--config"])
                .arg(&edge_caddyfile),
        )
        .map_err(|e| {
            fail(format!(
                "the front door's Caddyfile fails caddy adapt:\n{e}"
            ))
        })?;
        checked.caddyfiles += 1;
    }

    // No secret value in any file.
    for (f, c) in &contents {
        for secret in &exp.secrets {
            prop_assert!(
                !c.contains(secret.as_str()),
                "{} contains the secret {secret}",
                f.display()
            );
        }
    }

    // Per stack: health, dependencies, custom values; across stacks: isolation.
    let mut owners: BTreeMap<(String, String), String> = BTreeMap::new();
    let mut claim = |kind: &str, what: String, tenant: &str| -> Result<(), TestCaseError> {
        if let Some(other) = owners.insert((kind.to_string(), what.clone()), tenant.to_string()) {
            if other != tenant {
                return Err(fail(format!(
                    "tenants {other} and {tenant} share the {kind} {what}"
                )));
            }
        }
        Ok(())
    };
    for (ti, t) in exp.tenants.iter().enumerate() {
        let path = stacks.join(format!("{t}-stack.yml"));
        let doc: Value = serde_yaml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        checked.stacks += 1;
        let project = doc["name"].as_str().unwrap_or_default();
        prop_assert_eq!(project, t.as_str());
        claim("project name", project.to_string(), t)?;
        let services = doc["services"]
            .as_mapping()
            .ok_or_else(|| fail(format!("{t}: no services")))?;
        let names: BTreeSet<&str> = services.keys().filter_map(Value::as_str).collect();
        for (_, net) in doc["networks"].as_mapping().into_iter().flatten() {
            claim(
                "network",
                net["name"].as_str().unwrap_or_default().to_string(),
                t,
            )?;
        }
        let mut edges: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        let mut local_ports = BTreeSet::new();
        let data_root = format!("{base_dir}/tenants/{t}/");
        for (name, svc) in services {
            let name = name.as_str().unwrap();
            let test = &svc["healthcheck"]["test"];
            prop_assert!(
                test.as_sequence()
                    .is_some_and(|s| !s.is_empty() && s[0] != "NONE"),
                "{}/{}: no healthcheck",
                t,
                name
            );
            let mut deps: Vec<String> = svc["depends_on"]
                .as_mapping()
                .map(|d| {
                    d.keys()
                        .filter_map(|k| k.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            if let Some(mode) = svc["network_mode"].as_str() {
                if let Some(other) = mode.strip_prefix("service:") {
                    deps.push(other.to_string());
                }
            }
            for d in &deps {
                prop_assert!(
                    names.contains(d.as_str()),
                    "{}/{} depends on missing {}",
                    t,
                    name,
                    d
                );
            }
            edges.insert(name, deps);
            if let Some(c) = svc["container_name"].as_str() {
                claim("container name", c.to_string(), t)?;
            }
            for opt in svc["security_opt"].as_sequence().into_iter().flatten() {
                if let Some(profile) = opt.as_str().and_then(|o| o.strip_prefix("apparmor=")) {
                    claim("AppArmor profile", profile.to_string(), t)?;
                }
            }
            for p in svc["ports"].as_sequence().into_iter().flatten() {
                let hp = host_port(p.as_str().unwrap());
                prop_assert!(
                    local_ports.insert(hp.clone()),
                    "{}: host port {:?} published twice",
                    t,
                    hp
                );
                claim("host port", format!("{}/{}", hp.0, hp.1), t)?;
            }
            for v in svc["volumes"].as_sequence().into_iter().flatten() {
                let v = v.as_str().unwrap();
                if v.starts_with('/') {
                    let src = v.split(':').next().unwrap();
                    prop_assert!(
                        src.starts_with(&data_root),
                        "{}/{}: data path {} is outside {}",
                        t,
                        name,
                        src,
                        data_root
                    );
                    claim("data path", src.to_string(), t)?;
                }
            }
        }
        // No cycle: repeatedly remove services whose dependencies are all removed.
        let mut left = edges.clone();
        while !left.is_empty() {
            let ready: Vec<&str> = left
                .iter()
                .filter(|(_, deps)| deps.iter().all(|d| !left.contains_key(d.as_str())))
                .map(|(n, _)| *n)
                .collect();
            prop_assert!(
                !ready.is_empty(),
                "{}: dependency cycle among {:?}",
                t,
                left.keys().collect::<Vec<_>>()
            );
            for r in ready {
                left.remove(r);
            }
        }
        // Custom services carry the manifest's values literally.
        for (name, env, healthcheck, port) in &exp.custom[t] {
            let svc = &services[name.as_str()];
            for (var, v) in env {
                let got = svc["environment"][var.as_str()].as_str();
                let want = v.replace('$', "$$");
                prop_assert_eq!(got, Some(want.as_str()), "{}/{} env {}", t, name, var);
            }
            if let Some(h) = healthcheck {
                let want = h.replace('$', "$$");
                prop_assert_eq!(
                    svc["healthcheck"]["test"][1].as_str(),
                    Some(want.as_str()),
                    "{}/{} healthcheck",
                    t,
                    name
                );
            }
            let ports: Vec<&str> = svc["ports"]
                .as_sequence()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            prop_assert!(
                ports.contains(&port.as_str()),
                "{}/{}: ports {:?} lack {}",
                t,
                name,
                ports,
                port
            );
        }

        // The real tools.
        let dir = stacks.join(t);
        for f in files_under(&dir) {
            let clock = std::time::Instant::now();
            if tools.caddy && f.ends_with("caddy/Caddyfile") {
                run_tool(
                    Command::new("caddy")
                        .args(["adapt", "--adapter", "caddyfile", "--config"])
                        .arg(&f),
                )
                .map_err(|e| fail(format!("{} fails caddy adapt:\n{e}", f.display())))?;
                checked.caddyfiles += 1;
                checked.caddy_s += clock.elapsed().as_secs_f64();
            }
            if tools.apparmor && f.parent().is_some_and(|p| p.ends_with("apparmor")) {
                run_tool(Command::new("apparmor_parser").args(["-Q", "-K"]).arg(&f)).map_err(
                    |e| {
                        fail(format!(
                            "{} fails apparmor_parser -Q -K:\n{e}\n{}",
                            f.display(),
                            std::fs::read_to_string(&f).unwrap_or_default()
                        ))
                    },
                )?;
                checked.profiles += 1;
                checked.apparmor_s += clock.elapsed().as_secs_f64();
            }
        }
        // docker compose config -q on a sample: the first stack of every case.
        if tools.compose && ti == 0 {
            let clock = std::time::Instant::now();
            let result = compose_config(&s.path(".env"), &path, "properties");
            checked.compose_s += clock.elapsed().as_secs_f64();
            match result {
                Some(Err(e)) => {
                    return Err(fail(format!(
                        "{} fails docker compose config -q:\n{e}",
                        path.display()
                    )))
                }
                Some(Ok(())) => checked.compose += 1,
                None => {}
            }
        }
    }
    Ok(())
}

#[test]
fn every_rendered_stack_parses_is_deterministic_isolated_healthy_and_valid() {
    let test = "every_rendered_stack_parses_is_deterministic_isolated_healthy_and_valid";
    let tools = Tools {
        caddy: have("caddy", &["version"], test),
        apparmor: have("apparmor_parser", &["--version"], test),
        compose: compose_command().is_some() || {
            assert!(!tools_required(), "{test}: docker compose v2 is missing");
            eprintln!("SKIPPED {test} (compose part): docker compose v2 is not installed");
            false
        },
    };
    let cfg = config(64);
    let cases = cfg.cases;
    let mut runner = TestRunner::new(cfg);
    let checked = std::cell::RefCell::new(Checked::default());
    let result = runner.run(&spec(), |spec| {
        let (text, exp) = manifest(&spec);
        check_case(
            &text,
            &exp,
            &tools,
            &mut checked.borrow_mut(),
            spec.base_dir,
        )
        .map_err(|e| fail(format!("{e}\n---- manifest ----\n{text}")))
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    let checked = checked.into_inner();
    eprintln!("{test}: {cases} cases, {checked:?}");
    assert!(checked.stacks >= cases as usize);
    if tools.caddy {
        assert!(checked.caddyfiles > 0, "no Caddyfile was checked");
    }
    if tools.apparmor {
        assert!(
            checked.profiles >= checked.stacks,
            "not every tenant had its AppArmor profile checked"
        );
    }
    if tools.compose && cases >= 64 {
        assert!(
            checked.compose >= 50,
            "only {} stacks passed through docker compose config",
            checked.compose
        );
    }
}

// ---- mutated manifests -----------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Mutation {
    Delete(usize),
    Duplicate(usize),
    Swap(usize, usize),
    Value(usize, String),
    Insert(usize, String),
    Truncate(usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let idx = any::<usize>();
    prop_oneof![
        idx.prop_map(Mutation::Delete),
        idx.prop_map(Mutation::Duplicate),
        (idx, any::<usize>()).prop_map(|(a, b)| Mutation::Swap(a, b)),
        (idx, any::<String>()).prop_map(|(i, v)| Mutation::Value(i, v)),
        (idx, value()).prop_map(|(i, v)| Mutation::Value(i, v)),
        (idx, any::<String>()).prop_map(|(i, l)| Mutation::Insert(i, l)),
        (idx, any::<usize>()).prop_map(|(i, n)| Mutation::Truncate(i, n)),
    ]
}

fn mutate(text: &str, mutations: &[Mutation]) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    for m in mutations {
        let n = lines.len().max(1);
        match m {
            Mutation::Delete(i) if !lines.is_empty() => {
                lines.remove(i % n);
            }
            Mutation::Duplicate(i) if !lines.is_empty() => {
                let l = lines[i % n].clone();
                lines.insert(i % n, l);
            }
            Mutation::Swap(a, b) if !lines.is_empty() => lines.swap(a % n, b % n),
            Mutation::Value(i, v) if !lines.is_empty() => {
                let l = &mut lines[i % n];
                if let Some((k, _)) = l.split_once('=') {
                    *l = format!("{k}={v}");
                }
            }
            Mutation::Insert(i, l) => lines.insert(i % (lines.len() + 1), l.clone()),
            Mutation::Truncate(i, at) if !lines.is_empty() => {
                let l = &mut lines[i % n];
                let cut = l
                    .char_indices()
                    .map(|(b, _)| b)
                    .nth(at % (l.chars().count() + 1));
                l.truncate(cut.unwrap_or(l.len()));
            }
            _ => {}
        }
    }
    lines.join("\n") + "\n"
}

#[test]
fn mutated_manifests_never_panic_and_accepted_ones_render() {
    let mut runner = TestRunner::new(config(256));
    let strategy = (spec(), prop::collection::vec(mutation(), 1..6));
    let result = runner.run(&strategy, |(spec, mutations)| {
        let (text, _) = manifest(&spec);
        let text = mutate(&text, &mutations);
        let loaded = std::panic::catch_unwind(|| {
            stackgen::manifest::Manifest::from_text(Path::new(".env"), &text)
        })
        .map_err(|_| fail(format!("loading panicked on:\n{text}")))?;
        let Ok(m) = loaded else {
            return Ok(()); // rejected with located problems: fine
        };
        let display = stackgen::render::Display {
            manifest: ".env".into(),
            stacks_dir: "stacks".into(),
        };
        for t in &m.tenants {
            let files = stackgen::render::compose::render_tenant(&m, t, &display)
                .map_err(|e| fail(format!("accepted manifest does not render: {e:#}\n{text}")))?;
            let stack = &files[0].content;
            serde_yaml::from_str::<Value>(stack)
                .map_err(|e| fail(format!("{}: not YAML: {e}\n{text}", t.name)))?;
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}
