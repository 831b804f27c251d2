//! Several tenants at once (`up`, `down`, `restart` with several tenants or `--all`).
//!
//! Each tenant runs as its own `stackgen <command> <tenant>` child process, `--jobs` at a time.
//! A child rather than a thread: every command prints as it goes (`println!`), and a process is
//! the only way to keep one tenant's lines together without rewriting every command; it also
//! gets its own tenant lock and its own exit status, exactly as if the operator had typed it.
//! A child's output is captured and printed in one piece when it finishes; the exit status is
//! the highest of the children's.

use std::ffi::OsString;
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use anyhow::{Context, Result};

use crate::cli::Cli;
use crate::error::{Outcome, UsageError};
use crate::manifest::Manifest;
use crate::ops::compose::exec::status_code;
use crate::platform::model;

/// What the words of `up`/`restart` name: the tenants, then services of the single tenant.
#[derive(Debug, PartialEq, Eq)]
pub struct Targets {
    pub tenants: Vec<String>,
    pub services: Vec<String>,
}

/// Splits `words` into tenants and services: the first word is a tenant, and so is every word
/// after it as long as it names a tenant of the manifest; the rest are services. Services with
/// several tenants, and a word that is both a tenant and a service of the first tenant, are
/// usage errors (exit 2). `--all` takes every tenant of the manifest.
pub fn targets(manifest: &Manifest, words: &[String], all: bool) -> Result<Targets, UsageError> {
    if all {
        return Ok(Targets {
            tenants: manifest.tenants.iter().map(|t| t.name.clone()).collect(),
            services: Vec::new(),
        });
    }
    let Some((first, rest)) = words.split_first() else {
        return Err(UsageError::plain("name a tenant, or pass --all"));
    };
    let first_tenant = manifest.tenant(first).ok_or_else(|| {
        // The manifest's own message for an unknown tenant (with the list of tenants).
        match manifest.select(std::slice::from_ref(first)) {
            Err(e) => e,
            Ok(_) => UsageError::plain(format!("no tenant `{first}`")),
        }
    })?;
    let services = model::services(&manifest.platform, first_tenant);
    let mut tenants = vec![first.clone()];
    let mut i = 0;
    while let Some(w) = rest.get(i) {
        if manifest.tenant(w).is_none() {
            break;
        }
        if services.iter().any(|s| &s.name == w) {
            return Err(UsageError::plain(format!(
                "`{w}` names both a tenant and a service of tenant `{first}`; run one command per tenant"
            )));
        }
        if !tenants.contains(w) {
            tenants.push(w.clone());
        }
        i += 1;
    }
    let services = rest[i..].to_vec();
    if tenants.len() > 1 && !services.is_empty() {
        return Err(UsageError::plain(format!(
            "`{}` is not a tenant of the manifest; services can only be named after a single tenant",
            services[0]
        )));
    }
    Ok(Targets { tenants, services })
}

/// Runs `stackgen [globals] <command> <tenant> <flags>` for each tenant, `jobs` at a time,
/// printing each one's output when it finishes. Fails with the highest exit status.
pub fn fan_out(
    cli: &Cli,
    command: &str,
    tenants: &[String],
    flags: &[OsString],
    jobs: u16,
) -> Result<()> {
    let exe = std::env::current_exe().context("could not find the stackgen executable")?;
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(String, i32)>> = Mutex::new(Vec::new());
    let print = Mutex::new(());
    std::thread::scope(|scope| {
        for _ in 0..usize::from(jobs).clamp(1, tenants.len().max(1)) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(tenant) = tenants.get(i) else { break };
                let out = Command::new(&exe)
                    .arg("--env-file")
                    .arg(&cli.env_file)
                    .arg("--stacks-dir")
                    .arg(&cli.stacks_dir)
                    .arg(command)
                    .arg(tenant)
                    .args(flags)
                    .stdin(Stdio::null())
                    .output();
                let code = {
                    let _held = print.lock().unwrap_or_else(|e| e.into_inner());
                    match out {
                        Ok(out) => {
                            let _ = std::io::stdout().write_all(&out.stdout);
                            let _ = std::io::stdout().flush();
                            let _ = std::io::stderr().write_all(&out.stderr);
                            status_code(out.status)
                        }
                        Err(e) => {
                            eprintln!("stackgen: {tenant}: could not start {}: {e}", exe.display());
                            1
                        }
                    }
                };
                results
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push((tenant.clone(), code));
            });
        }
    });
    let mut results = results.into_inner().unwrap_or_else(|e| e.into_inner());
    // The summary in the manifest's order, whatever order the tenants finished in.
    results.sort_by_key(|(t, _)| tenants.iter().position(|x| x == t));
    let failed: Vec<String> = results
        .iter()
        .filter(|(_, c)| *c != 0)
        .map(|(t, c)| format!("{t} (exit {c})"))
        .collect();
    let worst = results.iter().map(|(_, c)| *c).max().unwrap_or(0);
    if worst == 0 {
        println!("{command}: {} tenant(s) done", results.len());
        return Ok(());
    }
    Err(Outcome {
        code: u8::try_from(worst).unwrap_or(1),
        message: format!(
            "{command}: {} of {} tenant(s) failed: {}",
            failed.len(),
            results.len(),
            failed.join(", ")
        ),
    }
    .into())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn words(w: &[&str]) -> Vec<String> {
        w.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn leading_tenant_names_are_tenants_and_the_rest_services() {
        let text =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/.env.example")).unwrap();
        let m = Manifest::from_text(Path::new(".env"), &text).unwrap();
        let t = targets(&m, &words(&["team-a", "litellm", "caddy"]), false).unwrap();
        assert_eq!(t.tenants, words(&["team-a"]));
        assert_eq!(t.services, words(&["litellm", "caddy"]));
        let t = targets(&m, &words(&["team-a", "team-c", "team-a"]), false).unwrap();
        assert_eq!(t.tenants, words(&["team-a", "team-c"]));
        assert!(t.services.is_empty());
        let t = targets(&m, &[], true).unwrap();
        assert_eq!(t.tenants, words(&["team-a", "team-b", "team-c", "team-d"]));
        let e = targets(&m, &words(&["team-a", "team-b", "caddy"]), false).unwrap_err();
        assert!(e.to_string().contains("single tenant"), "{e}");
        let e = targets(&m, &words(&["nobody"]), false).unwrap_err();
        assert!(e.to_string().contains("no tenant `nobody`"), "{e}");
    }
}
