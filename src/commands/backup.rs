//! `stackgen backup` and `stackgen restore`: locks, the ownership guard, the conversation and
//! the printed lines. What is captured and how, and how it is put back, live in `crate::ops::backup`.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::SystemTime;

use anyhow::{bail, Result};

use super::run::{guard_project, project, tools_for};
use crate::cli::{BackupArgs, Cli, RestoreArgs};
use crate::error::UsageError;
use crate::manifest::{Manifest, Tenant};
use crate::ops::backup::engine::{Helper, Listing};
use crate::ops::backup::{self, restore, retention, take};
use crate::ops::compose::{Project, Tools};
use crate::ops::teardown::disk;
use crate::ui::menu::ask;

pub fn cmd_backup(cli: &Cli, args: &BackupArgs) -> Result<()> {
    let manifest = Manifest::load(&cli.env_file)?;
    let tenants: Vec<&Tenant> = match &args.tenant {
        Some(name) => manifest.select(std::slice::from_ref(name))?,
        None => manifest.tenants.iter().collect(),
    };
    if args.all && args.to.is_some() && tenants.len() > 1 {
        // One folder per tenant keeps retention per tenant simple and obvious.
        return Err(UsageError::plain(
            "--all with --to: every tenant's archives would share one folder; omit --to (each tenant gets BACKUP_DIR/<tenant>) or back up tenants one by one",
        )
        .into());
    }
    let stamp = backup::stamp::stamp(SystemTime::now());
    let mut failed = Vec::new();
    for t in &tenants {
        let dir = args
            .to
            .clone()
            .unwrap_or_else(|| backup::default_dir(&manifest, t));
        let result = tools_for(&manifest, t, args.dry_run)
            .and_then(|tools| backup_one(cli, &manifest, t, &tools, &dir, &stamp, args));
        // With several tenants one failure is reported and the others still get their backup.
        match result {
            Ok(()) => {}
            Err(e) if tenants.len() > 1 => {
                eprintln!("{}: backup failed: {e:#}", t.name);
                failed.push(t.name.clone());
            }
            Err(e) => return Err(e),
        }
    }
    if !failed.is_empty() {
        bail!(
            "backup failed for {} (see above); the other tenants' backups were written",
            failed.join(", ")
        );
    }
    Ok(())
}

fn backup_one(
    cli: &Cli,
    manifest: &Manifest,
    tenant: &Tenant,
    tools: &Tools,
    dir: &std::path::Path,
    stamp: &str,
    args: &BackupArgs,
) -> Result<()> {
    let _lock = crate::output::lock::tenant_if(cli, &tenant.name, !args.dry_run)?;
    let project = project(cli, tenant);
    let containers = if args.dry_run {
        crate::ops::teardown::docker::containers_of(tools, &tenant.name).unwrap_or_default()
    } else {
        guard_project(cli, tools, tenant)?
    };
    let archive = dir.join(backup::archive_name(&tenant.name, stamp));
    let remote = Remote::read(tools, manifest, tenant)?;
    let plan = take::plan(
        manifest,
        tenant,
        &containers,
        &archive,
        remote.as_ref().map(Remote::listing),
    )?;
    for line in take::describe(&plan) {
        println!("{line}");
    }
    if let Some(context) = &tenant.docker_context {
        println!("  (read through context `{context}`: the data lives on that engine's host)");
    }
    if args.dry_run {
        println!("dry run: nothing was stopped or written");
        return Ok(());
    }
    let helper = remote.as_ref().and_then(Remote::helper);
    let taken = take::run(manifest, tenant, &plan, tools, &project, helper, &mut |l| {
        println!("{l}")
    })?;
    println!(
        "{}: wrote {} ({})",
        tenant.name,
        taken.archive.display(),
        disk::human(taken.bytes)
    );
    if let Some(keep) = args.keep {
        for old in retention::prune(dir, &tenant.name, keep as usize)? {
            println!("{}: deleted the older {}", tenant.name, old.display());
        }
    }
    Ok(())
}

/// Takes a backup of `tenant` into `dir` with the given file name (teardown's `--backup`, and
/// the safety backup of `restore --replace`). Returns the archive's path.
pub(super) fn backup_into(
    cli: &Cli,
    manifest: &Manifest,
    tenant: &Tenant,
    tools: &Tools,
    archive: PathBuf,
    log: &mut dyn FnMut(String),
) -> Result<PathBuf> {
    let containers = crate::ops::teardown::docker::containers_of(tools, &tenant.name)?;
    let remote = Remote::read(tools, manifest, tenant)?;
    let listing = remote.as_ref().map(Remote::listing);
    let plan = take::plan(manifest, tenant, &containers, &archive, listing)?;
    let helper = remote.as_ref().and_then(Remote::helper);
    let taken = take::run(
        manifest,
        tenant,
        &plan,
        tools,
        &project(cli, tenant),
        helper,
        log,
    )?;
    log(format!(
        "wrote {} ({})",
        taken.archive.display(),
        disk::human(taken.bytes)
    ));
    Ok(taken.archive)
}

pub fn cmd_restore(cli: &Cli, args: &RestoreArgs) -> Result<()> {
    let manifest = Manifest::load(&cli.env_file)?;
    let tenant = manifest.select(std::slice::from_ref(&args.tenant))?[0];
    let _lock = crate::output::lock::tenant_if(cli, &tenant.name, !args.dry_run)?;
    let tools = tools_for(&manifest, tenant, args.dry_run)?;
    if crate::ops::engines::is_remote(tenant) && !args.dry_run {
        // Not onto an engine while the tenant still runs (or its data sits) on another.
        crate::ops::engines::check_not_elsewhere(&tools, &manifest, tenant)?;
    }
    let containers = if args.dry_run {
        crate::ops::teardown::docker::containers_of(&tools, &tenant.name).unwrap_or_default()
    } else {
        guard_project(cli, &tools, tenant)?
    };
    let opts = restore::Options {
        from: args.from.clone(),
        from_tenant: args.from_tenant.clone(),
        replace: args.replace,
    };
    if args.dry_run {
        // The listing below reads through the engine: an unknown context is bad input first.
        crate::ops::engines::check_known(&tools, &manifest, tenant)?;
    }
    let remote = Remote::read(&tools, &manifest, tenant)?;
    let listing = remote.as_ref().map(Remote::listing);
    let free_there = match &tenant.docker_context {
        // A dry run starts no container that runs a program (the listing's runs none).
        Some(_) if args.dry_run => None,
        Some(context) => {
            let free = crate::ops::engines::free_on_host(&tools, &manifest, tenant)?;
            if free.is_none() {
                eprintln!(
                    "stackgen: warning: {}: could not measure the free space on the host of context `{context}` (df in {}); it is not checked",
                    tenant.name,
                    crate::ops::engines::helper_image(&manifest, tenant).unwrap_or_default()
                );
            }
            free
        }
        None => None,
    };
    let checked = restore::check(&manifest, tenant, &opts, &containers, listing, free_there)?;
    for line in restore::describe(&checked, tenant, &opts) {
        println!("{line}");
    }
    if args.dry_run {
        println!("dry run: nothing was changed");
        return Ok(());
    }
    if checked.replaces {
        confirm_replace(tenant, args)?;
    }
    let project: Project = project(cli, tenant);
    // The read-only helper has done its work; the restore writes through a writable one.
    drop(remote);
    let writer = match &tenant.docker_context {
        Some(_) => Helper::create(&tools, &manifest, tenant, true)?,
        None => None,
    };
    let safety_dir = backup::default_dir(&manifest, tenant);
    let stamp = backup::stamp::stamp(SystemTime::now());
    let mut safety = || {
        let to = safety_dir.join(format!("{}-{stamp}-before-restore.tar.gz", tenant.name));
        backup_into(cli, &manifest, tenant, &tools, to, &mut |l| println!("{l}"))
    };
    restore::run(
        &manifest,
        tenant,
        &opts,
        checked,
        &tools,
        &project,
        &cli.stacks_dir,
        writer.as_ref(),
        &mut safety,
        &mut |l| println!("{l}"),
    )?;
    println!(
        "{}: restored; start it with `stackgen up {}`",
        tenant.name, tenant.name
    );
    Ok(())
}

/// A tenant on another engine: the read-only helper container there and what it lists of the
/// data folder (`crate::ops::backup::engine`). `None` for a tenant on the current engine.
struct Remote {
    helper: Option<Helper>,
    listing: Option<Listing>,
}

impl Remote {
    fn read(tools: &Tools, manifest: &Manifest, tenant: &Tenant) -> Result<Option<Remote>> {
        if !crate::ops::engines::is_remote(tenant) {
            return Ok(None);
        }
        let helper = Helper::create(tools, manifest, tenant, false)?;
        let listing = match &helper {
            Some(h) => crate::ops::backup::engine::list_data(tools, manifest, tenant, h)?,
            None => None,
        };
        Ok(Some(Remote { helper, listing }))
    }

    fn listing(&self) -> Option<&Listing> {
        self.listing.as_ref()
    }

    fn helper(&self) -> Option<&Helper> {
        self.helper.as_ref()
    }
}

/// `--replace` deletes the current data (after a safety backup): `--yes`, or a question on a
/// terminal; without either it is refused.
fn confirm_replace(tenant: &Tenant, args: &RestoreArgs) -> Result<()> {
    if args.yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        return Err(UsageError::plain(
            "restore --replace: stdin is not a terminal, so it cannot ask before replacing the data; nothing was changed. Pass --yes to confirm in a script",
        )
        .into());
    }
    if !ask::confirm(
        &format!(
            "Replace the data of {} (a safety backup is taken first)?",
            tenant.name
        ),
        false,
    )? {
        bail!("aborted: nothing was changed");
    }
    Ok(())
}
