//! `stackgen init` on a terminal: a menu that collects [`InitOptions`] and hands them to
//! `init::plan`, which computes the manifest exactly as `--non-interactive` would. The menu
//! shows the plan's summary and writes (through `init::write`) only after the operator confirms.
//!
//! Nothing is written before that confirmation, so Ctrl-C at any prompt (which `ask` turns into
//! [`crate::error::Interrupted`]) leaves the disk as it was. On an existing manifest the menu
//! adds tenants or changes a tenant's vector DB and services; it never regenerates a secret
//! (`init` only ever appends them).

pub mod ask;
pub mod choices;
pub mod line;
pub mod summary;

use std::io::IsTerminal;
use std::path::Path;

use anyhow::Result;

use crate::error::UsageError;
use crate::manifest::init::{self, InitOptions, InitReport, NewTenant, TenantChange};
use crate::manifest::{self, values, Manifest};
use choices::Choice;

/// Answers given on the command line, offered as the prompts' defaults.
#[derive(Debug, Clone, Default)]
pub struct Defaults {
    pub domain: Option<String>,
    pub base_dir: Option<String>,
    /// `--port-range`: the first new tenant's default instead of the free range found.
    pub port_range: Option<String>,
}

const ADD: &str = "Add a tenant";
const CHANGE: &str = "Change a tenant's vector DB and services";
const REVIEW: &str = "Review the changes and write them";
const QUIT: &str = "Quit without writing";

/// Runs the menu. `Ok(None)`: the operator declined or there was nothing to change.
pub fn run(path: &Path, defaults: &Defaults) -> Result<Option<InitReport>> {
    if !std::io::stdin().is_terminal() {
        return Err(UsageError::plain(
            "init: stdin is not a terminal, so the menu cannot ask anything; pass --non-interactive with --tenant NAME (and --domain, --base-dir, --vector-db, --services as needed; see `stackgen init --help`)",
        )
        .into());
    }
    let existing = if path.exists() {
        Some(manifest::read(path)?)
    } else {
        None
    };
    let mut opts = InitOptions::default();
    match &existing {
        None => {
            println!(
                "No manifest at {} yet: answer a few questions to write one.",
                path.display()
            );
            let domain = defaults.domain.as_deref().unwrap_or("example.com");
            opts.domain = Some(ask::text(
                "Platform domain (each tenant gets <tenant>.<domain>):",
                domain,
                values::domain,
            )?);
            let base = defaults.base_dir.as_deref().unwrap_or("/srv/ai-platform");
            opts.base_dir = Some(ask::text(
                "Base directory for tenant data (BASE_DIR):",
                base,
                values::base_dir,
            )?);
            opts.tls_mode = Some(
                ask::select_choice("TLS certificates (TLS_MODE):", choices::tls_modes(), 0)?.name,
            );
            loop {
                let t = new_tenant(path, None, &opts, defaults)?;
                opts.tenants.push(t);
                if !ask::confirm("Add another tenant?", false)? {
                    break;
                }
            }
        }
        Some(text) => {
            // The menu builds on the declared tenants, so the manifest must be valid first.
            let current = Manifest::from_text(path, text)?;
            let names: Vec<&str> = current.tenants.iter().map(|t| t.name.as_str()).collect();
            println!(
                "{} declares {} tenant(s): {}",
                path.display(),
                names.len(),
                names.join(", ")
            );
            loop {
                match ask::select(
                    "What do you want to do?",
                    vec![ADD, CHANGE, REVIEW, QUIT],
                    0,
                )? {
                    ADD => {
                        let t = new_tenant(path, Some(text), &opts, defaults)?;
                        opts.tenants.push(t);
                    }
                    CHANGE => {
                        let c = change_tenant(&current)?;
                        opts.changes.retain(|x| x.name != c.name);
                        opts.changes.push(c);
                    }
                    REVIEW => break,
                    _ => return Ok(None),
                }
            }
        }
    }

    let plan = init::plan(path, existing.as_deref(), &opts)?;
    if !plan.changes_anything() {
        println!("Nothing to change.");
        return Ok(None);
    }
    print!("{}", summary::render(path, &plan)?);
    if !ask::confirm(&format!("Write {}?", path.display()), true)? {
        return Ok(None);
    }
    init::write(path, &plan)?;
    Ok(Some(plan.report))
}

/// Asks for one new tenant. UIDs default to the allocator's next free one, counting the
/// tenants already added in this session.
fn new_tenant(
    path: &Path,
    existing: Option<&str>,
    opts: &InitOptions,
    given: &Defaults,
) -> Result<NewTenant> {
    let so_far = init::draft(path, existing, opts)?;
    let taken: Vec<String> = manifest::parse::parse(path, &so_far)
        .0
        .tenants
        .into_iter()
        .map(|e| e.value.trim().to_string())
        .collect();
    let name = ask::tenant_name(taken)?;
    let vector_db =
        ask::select_choice(&format!("Vector DB of {name}:"), choices::vector_dbs(), 0)?.name;
    let catalog = choices::services();
    let defaults = choices::default_services();
    let picked = ask::multi_select(
        &format!("Services of {name}:"),
        catalog.clone(),
        &choices::indices(&catalog, &defaults),
    )?;
    let ids = init::ids_in_use(path, &so_far);
    let uid = ask::id(
        &format!("UID of {name}'s services:"),
        init::suggested_uid(path, &so_far),
        ids.clone(),
    )?;
    let gid = ask::id(&format!("GID of {name}'s services:"), uid, ids)?;
    // `--port-range` is offered to the first new tenant only: a second one would overlap it.
    let default_range = match &given.port_range {
        Some(r) if opts.tenants.is_empty() => r.clone(),
        _ => {
            let (a, b) = init::suggested_port_range(path, &so_far)?;
            format!("{a}-{b}")
        }
    };
    let (p, text) = (path.to_path_buf(), so_far.clone());
    let port_range = ask::text(
        &format!("Host ports of {name} (free on this host now):"),
        &default_range,
        move |v| init::check_port_range(&p, &text, v),
    )?;
    let tailscale_auth_key = if chose(&picked, "openclaw") {
        Some(ask::tailscale_key()?)
    } else {
        None
    };
    Ok(NewTenant {
        name,
        vector_db,
        services: join(&picked),
        uid: Some(uid),
        gid: Some(gid),
        tailscale_auth_key,
        port_range: Some(port_range),
        docker_context: None,
    })
}

/// Asks for a declared tenant's new vector DB and services.
fn change_tenant(current: &Manifest) -> Result<TenantChange> {
    let names: Vec<String> = current.tenants.iter().map(|t| t.name.clone()).collect();
    let name = ask::select("Which tenant?", names, 0)?;
    let t = current.tenant(&name).expect("chosen from the manifest");
    let dbs = choices::vector_dbs();
    let start = dbs.iter().position(|c| c.name == t.vector_db).unwrap_or(0);
    let vector_db = ask::select_choice(&format!("Vector DB of {name}:"), dbs, start)?.name;
    let catalog = choices::services();
    let picked = ask::multi_select(
        &format!("Services of {name}:"),
        catalog.clone(),
        &choices::indices(&catalog, &t.components),
    )?;
    // A key is asked only when none is on file: an existing key line is a secret, and the menu
    // never rewrites one (`refresh-tailscale-key` does that).
    let has_key_line = current.entries.contains_key(&t.key("TAILSCALE_AUTH_KEY"));
    let tailscale_auth_key = if chose(&picked, "openclaw") && !has_key_line {
        Some(ask::tailscale_key()?)
    } else {
        None
    };
    Ok(TenantChange {
        name,
        vector_db,
        services: join(&picked),
        tailscale_auth_key,
    })
}

fn chose(picked: &[Choice], name: &str) -> bool {
    picked.iter().any(|c| c.name == name)
}

fn join(picked: &[Choice]) -> String {
    picked
        .iter()
        .map(|c| c.name.as_str())
        .collect::<Vec<_>>()
        .join(",")
}
