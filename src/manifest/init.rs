//! `stackgen init`: writes the manifest, or adds tenants (and missing secrets) to an existing one.
//!
//! Only ever appends: every existing line stays byte-for-byte as it was, and no secret is ever
//! regenerated. The one exception is a [`TenantChange`] (the menu's "change a tenant"), which
//! rewrites that tenant's `VECTOR_DB` and `SERVICES` lines and nothing else. The result is
//! validated before it is written, so bad flags write nothing. `plan` is pure, so the menu can
//! show the result and write it only after the operator confirms.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Result;

use crate::error::UsageError;
use crate::manifest::parse::{self, Parsed};
use crate::manifest::secrets;
use crate::manifest::{self, edit, values, Manifest};
use crate::platform::catalog::{Catalog, VECTOR_DBS};

/// The services a new tenant gets unless the operator chooses others, in the menu and with
/// `--non-interactive` alike: a private chat platform (open-webui behind caddy, models in ollama
/// through litellm) and the databases those use, plus the tenant's vector DB. None of them needs
/// a value the operator must supply, so a fresh manifest renders and starts as written. dify
/// (seven containers) and openclaw (needs a tailscale auth key) are opt-in; `all` selects them.
pub const DEFAULT_SERVICES: &str = "postgres,redis,ollama,litellm,openwebui,caddy";

/// A tenant to add: from `--tenant` flags (same choices for all) or from the menu (one each).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTenant {
    pub name: String,
    pub vector_db: String,
    /// Comma-separated catalog names, or `all`.
    pub services: String,
    /// The tenant's UID and GID; `None` takes the next free one from 20001.
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    /// The operator's tailscale auth key, when the tenant runs openclaw (empty: set it later).
    pub tailscale_auth_key: Option<String>,
    /// `START-END` from `--port-range` or the menu; `None` takes the first run of 100 ports
    /// from 20000 that no tenant uses and nothing on the host holds (see [`port_free_on_host`]).
    pub port_range: Option<String>,
    /// `<T>__DOCKER_CONTEXT`: the tenant runs on that engine. This host's sockets then say
    /// nothing about its ports, so they are not probed; `up` probes them on that host.
    pub docker_context: Option<String>,
}

impl NewTenant {
    /// A tenant with allocated IDs and no tailscale key, as `--non-interactive` adds them.
    pub fn new(name: &str, vector_db: &str, services: &str) -> Self {
        NewTenant {
            name: name.to_string(),
            vector_db: vector_db.to_string(),
            services: services.to_string(),
            uid: None,
            gid: None,
            tailscale_auth_key: None,
            port_range: None,
            docker_context: None,
        }
    }
}

/// New choices for a declared tenant (the menu's "change a tenant"). Rewrites only its
/// `VECTOR_DB` and `SERVICES` lines, and only when they change; what the new services need
/// (secrets, openclaw's IDs) is appended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantChange {
    pub name: String,
    pub vector_db: String,
    pub services: String,
    /// Written only when the change adds tailscale and the manifest has no key line yet.
    pub tailscale_auth_key: Option<String>,
}

/// What the operator chose, from flags or from the menu.
#[derive(Debug, Clone, Default)]
pub struct InitOptions {
    pub tenants: Vec<NewTenant>,
    pub changes: Vec<TenantChange>,
    pub domain: Option<String>,
    pub base_dir: Option<String>,
    /// `TLS_MODE` of a new manifest (`acme` when `None`); an existing manifest keeps its own.
    pub tls_mode: Option<String>,
}

/// The outcome, for the command's report.
#[derive(Debug, Clone, Default)]
pub struct InitReport {
    pub created: bool,
    pub added_tenants: Vec<String>,
    pub existing_tenants: Vec<String>,
    pub changed_tenants: Vec<String>,
    pub added_secrets: usize,
    /// A `STACKGEN_DEPLOYMENT` line was appended to a manifest that had none.
    pub added_deployment: bool,
    /// Values stackgen cannot generate that are still empty in the written manifest.
    pub to_supply: Vec<ToSupply>,
}

/// A value only the operator can supply (a tailscale auth key), still empty in the manifest:
/// `init` says which key and on which line, never a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToSupply {
    pub tenant: String,
    /// The manifest key, e.g. `TEAM_A__TAILSCALE_AUTH_KEY`.
    pub key: String,
    /// Its line in the manifest (`init` always writes the line, empty).
    pub line: Option<usize>,
    /// The component that needs it, e.g. `tailscale`.
    pub component: String,
}

/// The manifest text `init` would write, computed without touching the disk.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The manifest as read (`None`: there is none yet).
    pub original: Option<String>,
    /// The manifest to write, already validated.
    pub text: String,
    pub report: InitReport,
}

impl Plan {
    /// Whether writing would change the file (always true for a new manifest).
    pub fn changes_anything(&self) -> bool {
        self.original.as_deref() != Some(self.text.as_str())
    }
}

/// Reads the manifest at `path` (if any), plans, and writes the result.
pub fn run(path: &Path, opts: &InitOptions) -> Result<InitReport> {
    let existing = if path.exists() {
        Some(manifest::read(path)?)
    } else {
        None
    };
    let plan = plan(path, existing.as_deref(), opts)?;
    write(path, &plan)?;
    Ok(plan.report)
}

/// Writes a plan, unless the manifest changed on disk since it was read (then nothing is
/// written: the plan was made, and possibly confirmed, against the old text).
pub fn write(path: &Path, plan: &Plan) -> Result<()> {
    if !plan.changes_anything() {
        return Ok(());
    }
    let now = if path.exists() {
        Some(manifest::read(path)?)
    } else {
        None
    };
    if now != plan.original {
        return Err(UsageError::plain(format!(
            "{} changed on disk while stackgen was planning; nothing was written: run the command again",
            path.display()
        ))
        .into());
    }
    // Atomic, synced, mode 0600, and the file keeps its owner (a `sudo stackgen init` must not
    // leave the operator's manifest owned by root).
    edit::write(path, &plan.text)
}

/// Computes the new manifest from `existing` (the file's text, `None` when there is none).
/// Only appends, except for the `VECTOR_DB`/`SERVICES` lines a [`TenantChange`] rewrites; no
/// secret is ever regenerated. The result is validated as a whole.
pub fn plan(path: &Path, existing: Option<&str>, opts: &InitOptions) -> Result<Plan> {
    let (text, mut report) = build(path, existing, opts)?;
    // Validate the whole result before anything touches the disk.
    let manifest = Manifest::from_text(path, &text)?;
    report.to_supply = to_supply(&manifest);
    Ok(Plan {
        original: existing.map(str::to_string),
        text,
        report,
    })
}

/// Every operator-supplied value (see [`ToSupply`]) that a tenant's services need and the
/// manifest leaves empty. `up` refuses to start those services until it is set.
pub fn to_supply(manifest: &Manifest) -> Vec<ToSupply> {
    let catalog = Catalog::get();
    let mut out = Vec::new();
    for t in &manifest.tenants {
        for c in t.components.iter().filter_map(|c| catalog.component(c)) {
            for s in &c.operator_secrets {
                if t.secrets.get(s).is_some_and(|v| !v.trim().is_empty()) {
                    continue;
                }
                let key = t.key(s);
                out.push(ToSupply {
                    tenant: t.name.clone(),
                    line: manifest.entries.get(&key).map(|e| e.line),
                    key,
                    component: c.name.clone(),
                });
            }
        }
    }
    out
}

/// What `init` prints about [`ToSupply`] values: one line each with the key and `file:line`,
/// and how to set it. Empty when nothing is missing. Never holds a value (they are empty).
pub fn to_supply_notice(file: &str, items: &[ToSupply]) -> String {
    if items.is_empty() {
        return String::new();
    }
    let mut out = String::from(
        "still to supply (stackgen cannot generate these; `up` refuses to start what needs them while they are empty):\n",
    );
    for i in items {
        let at = match i.line {
            Some(l) => format!("{file}:{l}"),
            None => file.to_string(),
        };
        let how = if i.key.ends_with("__TAILSCALE_AUTH_KEY") {
            format!(
                "an auth key from your tailnet's admin console (or `stackgen refresh-tailscale-key {} --key -`)",
                i.tenant
            )
        } else {
            format!("{} needs it", i.component)
        };
        let _ = writeln!(out, "  {} at {at}: {how}", i.key);
    }
    out
}

/// The text `plan` would produce, not validated as a whole: the menu's view of the tenants it
/// has collected so far (which may still be none), to suggest the next free UID.
pub fn draft(path: &Path, existing: Option<&str>, opts: &InitOptions) -> Result<String> {
    Ok(build(path, existing, opts)?.0)
}

fn build(path: &Path, existing: Option<&str>, opts: &InitOptions) -> Result<(String, InitReport)> {
    let text = existing.unwrap_or_default().to_string();
    let (parsed, problems) = parse::parse(path, &text);
    if !problems.is_empty() {
        return Err(UsageError::problems(problems).into());
    }
    for t in &opts.tenants {
        values::tenant_name(&t.name)
            .map_err(|(m, h)| UsageError::plain(format!("tenant {}: {m}\n  fix: {h}", t.name)))?;
    }
    // Checked before they become manifest lines, so the message names the option, not a line
    // of a file that was never written.
    for (what, value, check) in [
        (
            "DOMAIN (--domain)",
            &opts.domain,
            values::domain as fn(&str) -> Result<(), values::Invalid>,
        ),
        ("BASE_DIR (--base-dir)", &opts.base_dir, values::base_dir),
        ("TLS_MODE", &opts.tls_mode, tls_mode),
    ] {
        if let Some(v) = value {
            check(v).map_err(|(m, h)| {
                let (m, h) = (parse::readable(&m), parse::readable(&h));
                UsageError::plain(format!("{what}: {m}\n  fix: {h}"))
            })?;
        }
    }

    let mut out = text.clone();
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    let created = existing.is_none();
    let mut added_deployment = false;
    if created {
        out.push_str(&platform_block(opts));
    } else {
        // A manifest from before deployment IDs gets one, appended like any missing key; an
        // existing ID is never replaced (it is what the running containers carry).
        if !parsed
            .entries
            .contains_key(crate::manifest::deployment_id::KEY)
        {
            let _ = writeln!(out, "{}", deployment_lines());
            added_deployment = true;
        }
        // Platform keys an older manifest may lack are appended, never rewritten.
        for (key, value) in [
            (
                "DOMAIN",
                opts.domain.clone().unwrap_or_else(|| "example.com".into()),
            ),
            (
                "BASE_DIR",
                opts.base_dir
                    .clone()
                    .unwrap_or_else(|| "/srv/ai-platform".into()),
            ),
        ] {
            if !parsed.entries.contains_key(key) {
                let _ = writeln!(out, "{key}={value}");
            }
        }
    }

    let declared: Vec<String> = parsed
        .tenants
        .iter()
        .map(|e| e.value.trim().to_string())
        .collect();
    let mut alloc = Allocator::from(&parsed);
    let mut report = InitReport {
        created,
        added_deployment,
        ..InitReport::default()
    };

    // Changed choices of declared tenants: the one case where an existing line is rewritten.
    for change in &opts.changes {
        if !declared.contains(&change.name) {
            return Err(UsageError::plain(format!(
                "{}: no tenant `{}` is declared",
                path.display(),
                change.name
            ))
            .into());
        }
        if apply_change(&mut out, &parsed, change, &mut alloc)? {
            report.changed_tenants.push(change.name.clone());
        }
    }

    for t in &opts.tenants {
        if declared.contains(&t.name) || report.added_tenants.contains(&t.name) {
            report.existing_tenants.push(t.name.clone());
            continue;
        }
        let components = expand_services(&t.services, &t.vector_db)?;
        out.push_str(&tenant_block(t, &components, &mut alloc)?);
        report.added_tenants.push(t.name.clone());
    }

    // Secrets missing from tenants already declared (a service added by hand or by a change),
    // read from the text as changed above.
    let (current, _) = parse::parse(path, &out);
    for name in &declared {
        let prefix = values::env_prefix(name);
        let value_of = |setting: &str| {
            current
                .entries
                .get(&format!("{prefix}__{setting}"))
                .map(|e| e.value.clone())
                .unwrap_or_default()
        };
        let vector_db = value_of("VECTOR_DB");
        let Ok(comps) = expand_services(
            &without_other_vector_dbs(&value_of("SERVICES"), &vector_db),
            &vector_db,
        ) else {
            continue;
        };
        let key_for = opts
            .changes
            .iter()
            .find(|c| &c.name == name)
            .and_then(|c| c.tailscale_auth_key.clone());
        let mut block = String::new();
        for (secret, operator) in needed_secrets(&comps) {
            let key = format!("{prefix}__{secret}");
            if !current.entries.contains_key(&key) {
                let value = match (operator, secret.as_str()) {
                    (true, "TAILSCALE_AUTH_KEY") => key_for.clone().unwrap_or_default(),
                    (true, _) => String::new(),
                    (false, _) => secrets::generate(),
                };
                let _ = writeln!(block, "{key}={value}");
                report.added_secrets += 1;
            }
        }
        if !block.is_empty() {
            let _ = writeln!(
                out,
                "\n# ---- secrets added for tenant {name} by stackgen init ----"
            );
            out.push_str(&block);
        }
    }

    Ok((out, report))
}

/// Rewrites the tenant's `VECTOR_DB` and `SERVICES` lines where the choice differs (compared
/// after expansion, so `all` stays `all` when it still means the same), and appends openclaw's
/// IDs when the tenant gains openclaw. Returns whether anything changed.
fn apply_change(
    out: &mut String,
    parsed: &Parsed,
    change: &TenantChange,
    alloc: &mut Allocator,
) -> Result<bool> {
    let prefix = values::env_prefix(&change.name);
    let key = |s: &str| format!("{prefix}__{s}");
    let old = |s: &str| {
        parsed
            .entries
            .get(&key(s))
            .map(|e| e.value.trim().to_string())
            .unwrap_or_default()
    };
    let wanted = expand_services(&change.services, &change.vector_db)?;
    let before = expand_services(&old("SERVICES"), &old("VECTOR_DB")).ok();
    let mut changed = false;
    if old("VECTOR_DB") != change.vector_db {
        *out = edit::set_value(out, &key("VECTOR_DB"), &change.vector_db)?;
        changed = true;
    }
    if before.as_ref() != Some(&wanted) {
        *out = edit::set_value(out, &key("SERVICES"), &wanted.join(","))?;
        changed = true;
    }
    if needs_openclaw_ids(&wanted) && !parsed.entries.contains_key(&key("OPENCLAW_UID")) {
        let id = alloc.next_id(21001);
        let _ = writeln!(
            out,
            "\n# ---- openclaw's own user for tenant {} (stackgen init) ----\n{}={id}\n{}={id}",
            change.name,
            key("OPENCLAW_UID"),
            key("OPENCLAW_GID")
        );
    }
    Ok(changed)
}

fn needs_openclaw_ids(components: &[String]) -> bool {
    components
        .iter()
        .any(|c| c == "openclaw" || c == "tailscale")
}

/// The UID the next tenant added to `text` would get: the default the menu offers.
pub fn suggested_uid(path: &Path, text: &str) -> u32 {
    let (parsed, _) = parse::parse(path, text);
    Allocator::from(&parsed).next_id(20001)
}

/// Every UID and GID the manifest text already gives a tenant (or its openclaw).
pub fn ids_in_use(path: &Path, text: &str) -> Vec<u32> {
    let (parsed, _) = parse::parse(path, text);
    Allocator::from(&parsed).ids
}

/// The SERVICES list without the vector DBs VECTOR_DB no longer names: the manifest reads them
/// that way (switching the vector DB is one edit), so the secrets init adds follow suit.
fn without_other_vector_dbs(list: &str, vector_db: &str) -> String {
    let catalog = Catalog::get();
    let own = if vector_db == "pgvector" {
        "postgres"
    } else {
        vector_db
    };
    list.split(',')
        .map(str::trim)
        .filter(|item| {
            catalog
                .component(item)
                .is_none_or(|c| !c.vector_db || c.name == own)
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// `all` or a comma list → components in catalog order, with requirements and the vector DB.
pub fn expand_services(list: &str, vector_db: &str) -> Result<Vec<String>, UsageError> {
    let catalog = Catalog::get();
    if !VECTOR_DBS.contains(&vector_db) {
        return Err(UsageError::plain(format!(
            "--vector-db {vector_db}: unknown vector DB\n  fix: use one of {}",
            VECTOR_DBS.join(", ")
        )));
    }
    let vdb_component = if vector_db == "pgvector" {
        "postgres"
    } else {
        vector_db
    };
    let mut chosen: Vec<String> = Vec::new();
    for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        if item == "all" {
            chosen.extend(
                catalog
                    .components
                    .iter()
                    .filter(|c| !c.vector_db || c.name == vdb_component)
                    // `all` means everything that works with this vector DB.
                    .filter(|c| !c.incompatible_vector_dbs.contains_key(vector_db))
                    .map(|c| c.name.clone()),
            );
        } else if let Some(c) = catalog.component(item) {
            if c.vector_db && c.name != vdb_component {
                return Err(UsageError::plain(format!(
                    "--services: `{item}` is a vector DB but --vector-db is `{vector_db}`\n  fix: choose the vector DB with --vector-db only"
                )));
            }
            if let Some(why) = c.incompatible_vector_dbs.get(vector_db) {
                return Err(UsageError::plain(format!(
                    "--services: `{item}` cannot use --vector-db {vector_db}: {why}\n  fix: choose another vector DB for this tenant, or leave `{item}` out"
                )));
            }
            chosen.push(item.to_string());
        } else {
            let known: Vec<&str> = catalog.component_names().collect();
            let hint = match values::closest(item, known.iter().copied()) {
                Some(k) => format!("did you mean `{k}`?"),
                None => format!("known: {}", known.join(", ")),
            };
            return Err(UsageError::plain(format!(
                "--services: unknown service `{item}`\n  fix: {hint}"
            )));
        }
    }
    chosen.push(vdb_component.to_string());
    // Add what the chosen components require, transitively.
    let mut i = 0;
    while i < chosen.len() {
        if let Some(c) = catalog.component(&chosen[i]) {
            for r in &c.requires {
                if !chosen.contains(r) {
                    chosen.push(r.clone());
                }
            }
        }
        i += 1;
    }
    Ok(catalog
        .component_names()
        .filter(|c| chosen.iter().any(|x| x == c))
        .map(str::to_string)
        .collect())
}

/// (secret name, operator-supplied) for the given components.
fn needed_secrets(components: &[String]) -> Vec<(String, bool)> {
    let catalog = Catalog::get();
    components
        .iter()
        .filter_map(|c| catalog.component(c))
        .flat_map(|c| {
            c.secrets
                .iter()
                .map(|s| (s.clone(), false))
                .chain(c.operator_secrets.iter().map(|s| (s.clone(), true)))
        })
        .collect()
}

fn platform_block(opts: &InitOptions) -> String {
    format!(
        "# stackgen manifest: the single source of truth for every tenant's stack.\n\
         # It holds every tenant's secrets: keep it private (mode 0600) and out of version control.\n\
         # Reference: docs/manifest.md. Add tenants with `stackgen init --tenant NAME`.\n\
         STACKGEN_MANIFEST_VERSION=1\n\
         {}\n\
         DOMAIN={}\n\
         BASE_DIR={}\n\
         # acme: public certificates for every tenant hostname, by the front door on ports 80/443\n\
         # (EDGE_HTTP_PORT, EDGE_HTTPS_PORT; docs/manifest.md); internal: caddy's own CA\n\
         TLS_MODE={}\n\
         # IMAGE_REGISTRY=mirror.internal:5000\n",
        deployment_lines(),
        opts.domain.as_deref().unwrap_or("example.com"),
        opts.base_dir.as_deref().unwrap_or("/srv/ai-platform"),
        opts.tls_mode.as_deref().unwrap_or("acme"),
    )
}

/// A new deployment ID with the comment that says what it is for (no trailing newline).
fn deployment_lines() -> String {
    format!(
        "# this manifest's deployment ID: every container and network it starts carries it, and\n\
         # stackgen refuses to change a tenant that another manifest started. Never change it.\n\
         {}={}",
        crate::manifest::deployment_id::KEY,
        crate::manifest::deployment_id::generate()
    )
}

fn tenant_block(t: &NewTenant, components: &[String], alloc: &mut Allocator) -> Result<String> {
    let name = &t.name;
    let p = values::env_prefix(name);
    let uid = match t.uid {
        Some(id) => alloc.reserve(id),
        None => alloc.next_id(20001),
    };
    let gid = alloc.reserve(t.gid.unwrap_or(uid));
    if let Some(c) = &t.docker_context {
        values::docker_context(c).map_err(|(m, h)| {
            UsageError::plain(format!(
                "--docker-context {c} (tenant {name}): {m}\n  fix: {h}"
            ))
        })?;
    }
    // A tenant on another engine: this host's sockets say nothing about that host's ports. Its
    // range still overlaps no tenant's, which is stricter than needed (per engine) and valid.
    let probe = alloc.probe;
    if t.docker_context.is_some() {
        alloc.probe = |_| true;
    }
    let range = match &t.port_range {
        Some(v) => alloc.claim_range(v, name).map_err(|(m, h)| {
            UsageError::plain(format!("--port-range {v} (tenant {name}): {m}\n  fix: {h}")).into()
        }),
        None => alloc.next_range(name),
    };
    alloc.probe = probe;
    let (start, end) = range?;
    let mut b = String::new();
    let _ = writeln!(b, "\n# ---- tenant {name} ----");
    let _ = writeln!(b, "TENANT={name}");
    let _ = writeln!(b, "{p}__VECTOR_DB={}", t.vector_db);
    let _ = writeln!(b, "{p}__SERVICES={}", components.join(","));
    let _ = writeln!(b, "{p}__UID={uid}\n{p}__GID={gid}");
    if needs_openclaw_ids(components) {
        let openclaw_uid = alloc.next_id(21001);
        let _ = writeln!(
            b,
            "{p}__OPENCLAW_UID={openclaw_uid}\n{p}__OPENCLAW_GID={openclaw_uid}"
        );
    }
    let _ = writeln!(b, "{p}__PORT_RANGE={start}-{end}");
    if let Some(c) = &t.docker_context {
        let _ = writeln!(b, "{p}__{}={c}", values::DOCKER_CONTEXT);
    }
    let needed = needed_secrets(components);
    if needed.iter().any(|(_, op)| *op) {
        let _ = writeln!(b, "# operator-supplied: paste the key from the tailnet admin console (may stay empty until `up`)");
        for (s, _) in needed.iter().filter(|(_, op)| *op) {
            let value = match s.as_str() {
                "TAILSCALE_AUTH_KEY" => t.tailscale_auth_key.as_deref().unwrap_or_default(),
                _ => "",
            };
            let _ = writeln!(b, "{p}__{s}={value}");
        }
    }
    let _ = writeln!(
        b,
        "# generated secrets: never change N8N_ENCRYPTION_KEY or LITELLM_SALT_KEY once in use"
    );
    for (s, _) in needed.iter().filter(|(_, op)| !*op) {
        let _ = writeln!(b, "{p}__{s}={}", secrets::generate());
    }
    Ok(b)
}

/// `TLS_MODE`'s two values, checked before the line is written.
fn tls_mode(v: &str) -> Result<(), values::Invalid> {
    match v {
        "acme" | "internal" => Ok(()),
        _ => Err((
            format!("`{v}` is not a TLS mode"),
            "use acme (public certificates) or internal (caddy's own CA)".into(),
        )),
    }
}

/// Whether nothing on this host holds `port` right now: it binds on 0.0.0.0 for TCP and for
/// UDP (the tenant's ports are published on every address, both protocols). The probe sockets
/// close at once. A port that is busy only later is still `up`'s preflight to catch.
pub fn port_free_on_host(port: u16) -> bool {
    use std::net::{TcpListener, UdpSocket};
    TcpListener::bind(("0.0.0.0", port)).is_ok() && UdpSocket::bind(("0.0.0.0", port)).is_ok()
}

/// The range the next tenant added to `text` would get: the menu's default.
pub fn suggested_port_range(path: &Path, text: &str) -> Result<(u32, u32)> {
    let (parsed, _) = parse::parse(path, text);
    Allocator::from(&parsed).next_range("")
}

/// Checks a range the operator typed against the tenants in `text` and the host, as `init`
/// will: the menu's validator, so a refused range is asked again instead of failing the plan.
pub fn check_port_range(path: &Path, text: &str, value: &str) -> Result<(), values::Invalid> {
    let (parsed, _) = parse::parse(path, text);
    Allocator::from(&parsed).claim_range(value, "").map(|_| ())
}

/// Hands out UIDs and port ranges that no declared tenant uses (and ranges the host has free).
struct Allocator {
    ids: Vec<u32>,
    /// (start, end, the key that holds it), to name the owner in an overlap error.
    ranges: Vec<(u32, u32, String)>,
    /// Whether a port is free on the host: [`port_free_on_host`]; a fake in unit tests.
    probe: fn(u16) -> bool,
}

/// Every new tenant's range is this long; the manifest accepts any range of 32 or more.
const RANGE_LEN: u32 = 100;
/// Where the search for a free range starts (below it are well-known and common service ports).
const RANGE_FROM: u32 = 20000;

impl Allocator {
    fn from(parsed: &Parsed) -> Self {
        let mut ids = Vec::new();
        let mut ranges = Vec::new();
        for (key, e) in &parsed.entries {
            if key.contains("__") && (key.ends_with("_UID") || key.ends_with("_GID")) {
                if let Ok(n) = e.value.trim().parse() {
                    ids.push(n);
                }
            }
            if key.ends_with("__PORT_RANGE") {
                if let Ok((a, b)) = values::port_range(e.value.trim()) {
                    ranges.push((u32::from(a), u32::from(b), key.clone()));
                }
            }
        }
        Allocator {
            ids,
            ranges,
            // Unit tests plan manifests on whatever host runs them: the same ranges everywhere.
            // The integration tests (tests/integration/init.rs) probe the real host.
            probe: if cfg!(test) {
                |_| true
            } else {
                port_free_on_host
            },
        }
    }

    /// Records an ID chosen by the operator, so later allocations skip it.
    fn reserve(&mut self, id: u32) -> u32 {
        self.ids.push(id);
        id
    }

    fn next_id(&mut self, from: u32) -> u32 {
        let mut n = from;
        while self.ids.contains(&n) {
            n += 1;
        }
        self.ids.push(n);
        n
    }

    fn overlapping(&self, start: u32, end: u32) -> Option<&(u32, u32, String)> {
        self.ranges
            .iter()
            .find(|(a, b, _)| start <= *b && *a <= end)
    }

    /// The first aligned run of 100 ports from 20000 that overlaps no tenant and whose every
    /// port is free on the host (one busy port skips the whole run).
    fn next_range(&mut self, owner: &str) -> Result<(u32, u32)> {
        let mut start = RANGE_FROM;
        while start + RANGE_LEN - 1 <= u32::from(u16::MAX) {
            let end = start + RANGE_LEN - 1;
            if self.overlapping(start, end).is_none()
                && (start..=end).all(|p| (self.probe)(p as u16))
            {
                self.ranges
                    .push((start, end, format!("new tenant `{owner}`")));
                return Ok((start, end));
            }
            start += RANGE_LEN;
        }
        Err(UsageError::plain(format!(
            "no run of {RANGE_LEN} ports from {RANGE_FROM} to 65535 is free on this host and unused by the manifest's tenants\n  fix: free some ports, or pass --port-range START-END (32 ports or more)"
        ))
        .into())
    }

    /// A range the operator chose: valid as a `PORT_RANGE`, overlapping no tenant, and free
    /// on the host port by port.
    fn claim_range(&mut self, value: &str, owner: &str) -> Result<(u32, u32), values::Invalid> {
        let (a, b) = values::port_range(value.trim())?;
        let (a, b) = (u32::from(a), u32::from(b));
        if let Some((x, y, key)) = self.overlapping(a, b) {
            return Err((
                format!("overlaps {x}-{y} of {key}"),
                "choose a range no tenant uses, or leave it out and init picks a free one".into(),
            ));
        }
        let busy: Vec<String> = (a..=b)
            .filter(|p| !(self.probe)(*p as u16))
            .map(|p| p.to_string())
            .collect();
        if !busy.is_empty() {
            let shown = busy.iter().take(5).cloned().collect::<Vec<_>>().join(", ");
            let more = if busy.len() > 5 { ", ..." } else { "" };
            return Err((
                format!(
                    "{} port(s) already in use on this host (TCP or UDP): {shown}{more}",
                    busy.len()
                ),
                "choose a free range (`ss -tulpn` shows what holds them), or leave it out and init picks a free one".into(),
            ));
        }
        self.ranges.push((a, b, format!("new tenant `{owner}`")));
        Ok((a, b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn planned(services: &str) -> Plan {
        let opts = InitOptions {
            tenants: vec![NewTenant::new("team-a", "qdrant", services)],
            ..InitOptions::default()
        };
        plan(Path::new(".env"), None, &opts).unwrap()
    }

    #[test]
    fn ranges_skip_tenants_and_busy_host_ports_and_chosen_ones_are_checked() {
        fn busy_20005_and_20150(p: u16) -> bool {
            p != 20005 && p != 20150
        }
        let text = "TENANT=a\nA__PORT_RANGE=20200-20299\n";
        let (parsed, _) = parse::parse(Path::new(".env"), text);
        let mut alloc = Allocator {
            probe: busy_20005_and_20150,
            ..Allocator::from(&parsed)
        };
        // 20000-20099 holds 20005, 20100-20199 holds 20150, 20200-20299 is the tenant's.
        assert_eq!(alloc.next_range("b").unwrap(), (20300, 20399));
        assert_eq!(alloc.next_range("c").unwrap(), (20400, 20499));
        let (m, _) = alloc.claim_range("20250-20349", "d").unwrap_err();
        assert!(m.contains("overlaps 20200-20299 of A__PORT_RANGE"), "{m}");
        let (m, _) = alloc.claim_range("20450-20549", "d").unwrap_err();
        assert!(m.contains("new tenant `c`"), "{m}");
        let (m, h) = alloc.claim_range("20000-20199", "d").unwrap_err();
        assert!(
            m.contains("2 port(s) already in use") && m.contains("20005, 20150"),
            "{m}"
        );
        assert!(h.contains("leave it out"), "{h}");
        // The manifest's own rule: 32 ports or more.
        let (m, _) = alloc.claim_range("30000-30010", "d").unwrap_err();
        assert!(m.contains("fewer than 32"), "{m}");
        assert_eq!(
            alloc.claim_range("30000-30031", "d").unwrap(),
            (30000, 30031)
        );
    }

    #[test]
    fn a_bad_chosen_range_or_tls_mode_plans_nothing() {
        let opts = |range: &str, tls: &str| InitOptions {
            tenants: vec![NewTenant {
                port_range: Some(range.into()),
                ..NewTenant::new("team-a", "qdrant", DEFAULT_SERVICES)
            }],
            tls_mode: Some(tls.into()),
            ..InitOptions::default()
        };
        let err = plan(Path::new(".env"), None, &opts("1-10", "acme")).unwrap_err();
        assert!(
            err.to_string()
                .contains("--port-range 1-10 (tenant team-a)"),
            "{err}"
        );
        let err = plan(Path::new(".env"), None, &opts("40000-40099", "self")).unwrap_err();
        assert!(
            err.to_string().contains("`self` is not a TLS mode"),
            "{err}"
        );
    }

    #[test]
    fn a_deployment_id_is_written_once_and_appended_to_an_older_manifest() {
        let new = planned(DEFAULT_SERVICES);
        let id_line = |text: &str| {
            text.lines()
                .filter(|l| l.starts_with("STACKGEN_DEPLOYMENT="))
                .map(str::to_string)
                .collect::<Vec<_>>()
        };
        assert_eq!(id_line(&new.text).len(), 1, "{}", new.text);
        // An older manifest (no ID): appended after every existing line, which stay as they were.
        let older: String = new
            .text
            .lines()
            .filter(|l| !l.starts_with("STACKGEN_DEPLOYMENT="))
            .map(|l| format!("{l}\n"))
            .collect();
        let plan = plan(Path::new(".env"), Some(&older), &InitOptions::default()).unwrap();
        assert!(plan.report.added_deployment);
        assert!(plan.text.starts_with(&older), "{}", plan.text);
        assert_eq!(id_line(&plan.text).len(), 1);
        let m = Manifest::from_text(Path::new(".env"), &plan.text).unwrap();
        assert!(m.tenants[0].deployment.is_some());
        // An ID already there is never replaced: nothing to write.
        let again =
            super::plan(Path::new(".env"), Some(&plan.text), &InitOptions::default()).unwrap();
        assert!(!again.changes_anything());
        assert!(!again.report.added_deployment);
    }

    #[test]
    fn the_default_services_need_nothing_from_the_operator() {
        let components = expand_services(DEFAULT_SERVICES, "qdrant").unwrap();
        for want in [
            "postgres",
            "redis",
            "qdrant",
            "ollama",
            "litellm",
            "openwebui",
            "caddy",
        ] {
            assert!(components.iter().any(|c| c == want), "{want}");
        }
        assert!(needed_secrets(&components).iter().all(|(_, op)| !op));
        let plan = planned(DEFAULT_SERVICES);
        assert!(plan.report.to_supply.is_empty());
        assert!(!plan.text.contains("TAILSCALE_AUTH_KEY"));
        assert_eq!(to_supply_notice(".env", &plan.report.to_supply), "");
    }

    #[test]
    fn an_empty_operator_value_is_named_with_its_line_and_never_a_value() {
        let plan = planned("openclaw");
        let items = &plan.report.to_supply;
        assert_eq!(items.len(), 1, "{items:?}");
        let line = plan
            .text
            .lines()
            .position(|l| l == "TEAM_A__TAILSCALE_AUTH_KEY=")
            .unwrap()
            + 1;
        assert_eq!(items[0].key, "TEAM_A__TAILSCALE_AUTH_KEY");
        assert_eq!(items[0].line, Some(line));
        let notice = to_supply_notice(".env", items);
        assert!(notice.contains(&format!("TEAM_A__TAILSCALE_AUTH_KEY at .env:{line}")));
        assert!(notice.contains("refresh-tailscale-key team-a"));
        // A key the operator typed (the menu) is supplied: nothing to say, and never echoed.
        let opts = InitOptions {
            tenants: vec![NewTenant {
                tailscale_auth_key: Some("tskey-auth-typed".into()),
                ..NewTenant::new("team-a", "qdrant", "openclaw")
            }],
            ..InitOptions::default()
        };
        let typed = super::plan(Path::new(".env"), None, &opts).unwrap();
        assert!(typed.report.to_supply.is_empty());
        assert!(!to_supply_notice(".env", &typed.report.to_supply).contains("tskey"));
        // Nor does the notice ever hold a generated secret.
        let plan = planned("all");
        let notice = to_supply_notice(".env", &plan.report.to_supply);
        assert!(notice.contains("TEAM_A__TAILSCALE_AUTH_KEY at .env:"));
        for (_, value) in plan.text.lines().filter_map(|l| l.split_once('=')) {
            assert!(value.len() < 40 || !notice.contains(value), "{value}");
        }
    }
}
