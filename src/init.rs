//! `stackgen init`: writes the manifest, or adds tenants (and missing secrets) to an existing one.
//!
//! Only ever appends: every existing line stays byte-for-byte as it was, and no secret is ever
//! regenerated. The result is validated before it is written, so bad flags write nothing.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Result;

use crate::catalog::{Catalog, VECTOR_DBS};
use crate::error::UsageError;
use crate::manifest::parse::{self, Parsed};
use crate::manifest::{self, values, Manifest};
use crate::output::{write_atomic, Durability};
use crate::secrets;

/// What the operator chose, from flags (or, later, a menu).
#[derive(Debug, Clone)]
pub struct InitOptions {
    pub tenants: Vec<String>,
    pub vector_db: String,
    /// Comma-separated catalog names, or `all`.
    pub services: String,
    pub domain: Option<String>,
    pub base_dir: Option<String>,
}

/// The outcome, for the command's report.
#[derive(Debug)]
pub struct InitReport {
    pub created: bool,
    pub added_tenants: Vec<String>,
    pub existing_tenants: Vec<String>,
    pub added_secrets: usize,
}

pub fn run(path: &Path, opts: &InitOptions) -> Result<InitReport> {
    let existing = if path.exists() {
        Some(manifest::read(path)?)
    } else {
        None
    };
    let text = existing.clone().unwrap_or_default();
    let (parsed, problems) = parse::parse(path, &text);
    if !problems.is_empty() {
        return Err(UsageError::problems(problems).into());
    }
    let components = expand_services(&opts.services, &opts.vector_db)?;
    for t in &opts.tenants {
        values::tenant_name(t)
            .map_err(|(m, h)| UsageError::plain(format!("--tenant {t}: {m}\n  fix: {h}")))?;
    }

    let mut out = text.clone();
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    let created = existing.is_none();
    if created {
        out.push_str(&platform_block(opts));
    } else {
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
    let mut added_tenants = Vec::new();
    let mut existing_tenants = Vec::new();
    for name in &opts.tenants {
        if declared.contains(name) || added_tenants.contains(name) {
            existing_tenants.push(name.clone());
            continue;
        }
        out.push_str(&tenant_block(name, opts, &components, &mut alloc));
        added_tenants.push(name.clone());
    }

    // Secrets missing from tenants already declared (e.g. a service was added by hand).
    let mut added_secrets = 0;
    for name in &declared {
        let prefix = values::env_prefix(name);
        let list = parsed
            .entries
            .get(&format!("{prefix}__SERVICES"))
            .map(|e| e.value.clone())
            .unwrap_or_default();
        let vdb = parsed
            .entries
            .get(&format!("{prefix}__VECTOR_DB"))
            .map(|e| e.value.clone())
            .unwrap_or_default();
        let Ok(comps) = expand_services(&list, &vdb) else {
            continue;
        };
        let mut block = String::new();
        for (secret, operator) in needed_secrets(&comps) {
            let key = format!("{prefix}__{secret}");
            if !parsed.entries.contains_key(&key) {
                let value = if operator {
                    String::new()
                } else {
                    secrets::generate()
                };
                let _ = writeln!(block, "{key}={value}");
                added_secrets += 1;
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

    // Validate the whole result before anything touches the disk.
    Manifest::from_text(path, &out)?;
    if out != text || created {
        write_atomic(path, out.as_bytes(), Some(0o600), Durability::Synced)?;
    }
    Ok(InitReport {
        created,
        added_tenants,
        existing_tenants,
        added_secrets,
    })
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
                    .map(|c| c.name.clone()),
            );
        } else if let Some(c) = catalog.component(item) {
            if c.vector_db && c.name != vdb_component {
                return Err(UsageError::plain(format!(
                    "--services: `{item}` is a vector DB but --vector-db is `{vector_db}`\n  fix: choose the vector DB with --vector-db only"
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
         # Reference: README.md, \"Manifest reference\". Add tenants with `stackgen init --tenant NAME`.\n\
         STACKGEN_MANIFEST_VERSION=1\n\
         DOMAIN={}\n\
         BASE_DIR={}\n\
         # acme: public certificates (forward the tenant's ports 80/443); internal: caddy's own CA\n\
         TLS_MODE=acme\n\
         # IMAGE_REGISTRY=mirror.internal:5000\n",
        opts.domain.as_deref().unwrap_or("example.com"),
        opts.base_dir.as_deref().unwrap_or("/srv/ai-platform"),
    )
}

fn tenant_block(
    name: &str,
    opts: &InitOptions,
    components: &[String],
    alloc: &mut Allocator,
) -> String {
    let p = values::env_prefix(name);
    let uid = alloc.next_id(20001);
    let openclaw_uid = alloc.next_id(21001);
    let (start, end) = alloc.next_range();
    let mut b = String::new();
    let _ = writeln!(b, "\n# ---- tenant {name} ----");
    let _ = writeln!(b, "TENANT={name}");
    let _ = writeln!(b, "{p}__VECTOR_DB={}", opts.vector_db);
    let _ = writeln!(b, "{p}__SERVICES={}", components.join(","));
    let _ = writeln!(b, "{p}__UID={uid}\n{p}__GID={uid}");
    if components
        .iter()
        .any(|c| c == "openclaw" || c == "tailscale")
    {
        let _ = writeln!(
            b,
            "{p}__OPENCLAW_UID={openclaw_uid}\n{p}__OPENCLAW_GID={openclaw_uid}"
        );
    }
    let _ = writeln!(b, "{p}__PORT_RANGE={start}-{end}");
    let needed = needed_secrets(components);
    if needed.iter().any(|(_, op)| *op) {
        let _ = writeln!(b, "# operator-supplied: paste the key from the tailnet admin console (may stay empty until `up`)");
        for (s, _) in needed.iter().filter(|(_, op)| *op) {
            let _ = writeln!(b, "{p}__{s}=");
        }
    }
    let _ = writeln!(
        b,
        "# generated secrets: never change N8N_ENCRYPTION_KEY or LITELLM_SALT_KEY once in use"
    );
    for (s, _) in needed.iter().filter(|(_, op)| !*op) {
        let _ = writeln!(b, "{p}__{s}={}", secrets::generate());
    }
    b
}

/// Hands out UIDs and port ranges that no declared tenant uses.
struct Allocator {
    ids: Vec<u32>,
    ranges: Vec<(u32, u32)>,
}

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
                    ranges.push((u32::from(a), u32::from(b)));
                }
            }
        }
        Allocator { ids, ranges }
    }

    fn next_id(&mut self, from: u32) -> u32 {
        let mut n = from;
        while self.ids.contains(&n) {
            n += 1;
        }
        self.ids.push(n);
        n
    }

    fn next_range(&mut self) -> (u32, u32) {
        let mut start = 20000;
        while self
            .ranges
            .iter()
            .any(|(a, b)| start <= *b && *a <= start + 99)
        {
            start += 100;
        }
        self.ranges.push((start, start + 99));
        (start, start + 99)
    }
}
