//! `stackgen teardown TENANT|--all`: shows what goes, asks (or takes `--yes`), then runs the
//! library's steps. The confirmation lives here because it is a conversation with the operator;
//! what is selected and in which order it is removed lives in `crate::ops::teardown`.

use std::io::IsTerminal;
use std::path::Path;
use std::time::SystemTime;

use anyhow::{bail, Result};

use super::run::{guard_labelled, project, tools};
use super::shown;
use crate::cli::{Cli, TeardownArgs};
use crate::error::UsageError;
use crate::manifest::{Manifest, Tenant};
use crate::ops::teardown::{self, disk, docker::PROJECT_LABEL, Options, Plan};
use crate::policy::TENANT_LABEL;
use crate::ui::menu::ask;

pub fn cmd_teardown(cli: &Cli, args: &TeardownArgs) -> Result<()> {
    let manifest = Manifest::load(&cli.env_file)?;
    let tenants: Vec<&Tenant> = match (&args.tenant, args.all) {
        (Some(name), _) => manifest.select(std::slice::from_ref(name))?,
        (None, _) => manifest.tenants.iter().collect(),
    };
    let names: Vec<&str> = tenants.iter().map(|t| t.name.as_str()).collect();
    let _locks = crate::output::lock::tenants_and_manifest_if(cli, &names, !args.dry_run)?;
    let base = tools(args.dry_run)?;
    // Each tenant through its own engine. A remote tenant's data is read (`--backup`) and
    // deleted (`--purge-data`) on its engine's host, through that engine (`crate::ops::teardown`).
    let tools_of = |t: &Tenant| base.on(t.docker_context.as_deref());
    for t in &tenants {
        // Also in a dry run: its plan lists the data through that engine.
        crate::ops::engines::check_known(&tools_of(t), &manifest, t)?;
    }
    let opts = Options {
        purge_data: args.purge_data,
        backup: args.backup.clone(),
    };
    if !args.dry_run {
        // Every tenant first: a tenant another manifest runs stops the whole command before
        // anything of any tenant is stopped or deleted (its data directory may be shared).
        for t in &tenants {
            guard_labelled(cli, &tools_of(t), t)?;
        }
    }
    let stamp = crate::ops::backup::stamp::stamp(SystemTime::now());
    // As the operator typed it (no `./`): these paths are printed.
    let stacks_dir = std::path::PathBuf::from(shown(&cli.stacks_dir));
    let mut work = Vec::new();
    for t in &tenants {
        let tools = tools_of(t);
        let plan = teardown::plan(&manifest, t, &stacks_dir, project(cli, t), &tools, &opts)?;
        let steps = teardown::steps(&plan, &tools, &opts, &stamp);
        print_plan(&plan, &opts);
        work.push((plan, steps));
    }
    if args.dry_run {
        for (_, steps) in &work {
            for s in steps {
                println!("{s}");
            }
        }
        println!("dry run: nothing was stopped, removed or deleted");
        return Ok(());
    }
    if work.iter().all(|(_, steps)| steps.is_empty()) {
        println!("nothing to tear down");
        return Ok(());
    }
    confirm(&work.iter().map(|(p, _)| p).collect::<Vec<_>>(), args)?;
    for (plan, steps) in &work {
        let t = tenants
            .iter()
            .find(|t| t.name == plan.tenant)
            .expect("planned from these tenants");
        let mut backup = |to: &Path, log: &mut dyn FnMut(String)| {
            super::backup::backup_into(cli, &manifest, t, &tools_of(t), to.to_path_buf(), log)
                .map(|_| ())
        };
        teardown::execute(steps, &mut backup, &mut |line| println!("{line}"))?;
        let kept = match (&plan.data, args.purge_data) {
            (Some(d), false) => format!("; data kept in {}", d.display()),
            _ => String::new(),
        };
        println!(
            "{}: {} container(s) and {} network(s) removed{kept}",
            plan.tenant,
            plan.containers.len(),
            plan.networks.len()
        );
    }
    if args.purge_data {
        println!(
            "note: the manifest still declares {}; its generated files under the stacks directory are kept (they are not data, and `render --check` stays clean): to retire the tenant, delete its lines and its generated files in one commit",
            work.iter()
                .map(|(p, _)| p.tenant.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(())
}

fn print_plan(plan: &Plan, opts: &Options) {
    let t = &plan.tenant;
    println!("{t}: only what carries {TENANT_LABEL}={t} and {PROJECT_LABEL}={t}");
    let names: Vec<String> = plan
        .containers
        .iter()
        .map(|c| format!("{} ({})", c.name, c.state))
        .collect();
    println!("  containers ({}): {}", names.len(), list(&names));
    let nets: Vec<String> = plan.networks.iter().map(|n| n.name.clone()).collect();
    println!("  networks ({}): {}", nets.len(), list(&nets));
    if opts.purge_data {
        if let Some(h) = &plan.on_host {
            println!(
                "  DELETED with --purge-data on the host of context `{}`, through its engine ({} in all):",
                h.context,
                disk::human(plan.purge_bytes())
            );
            for e in &plan.data_entries {
                println!("    {:>10}  {}", "", e.path.display());
            }
            if plan.data_entries.is_empty() {
                println!(
                    "    {:>10}  {}/data (empty)",
                    "",
                    plan.tenant_root.display()
                );
            }
            println!("  AppArmor profiles loaded on that host stay loaded: unload them there (`apparmor_parser -R FILE`)");
        } else if plan.deletes_anything() {
            println!(
                "  DELETED with --purge-data ({} in all):",
                disk::human(plan.purge_bytes())
            );
            for e in &plan.data_entries {
                println!("    {:>10}  {}", disk::human(e.bytes), e.path.display());
            }
            if let (Some(d), true) = (&plan.data, plan.data_entries.is_empty()) {
                println!("    {:>10}  {} (empty)", disk::human(0), d.display());
            }
        } else {
            println!("  no data directory to delete");
        }
        for p in &plan.loaded_profiles {
            println!(
                "  AppArmor profile unloaded from the kernel: {}",
                p.display()
            );
        }
    } else if let Some(d) = &plan.data {
        println!("  data kept: {}", d.display());
    } else {
        println!(
            "  data kept: {}/data (not touched without --purge-data)",
            plan.tenant_root.display()
        );
    }
    if let Some(dir) = &opts.backup {
        println!(
            "  backup first, as `stackgen backup {} --to {}`",
            plan.tenant,
            dir.display()
        );
    }
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "none".into()
    } else {
        items.join(", ")
    }
}

/// `--yes`, or a conversation on a terminal: the tenant's name typed before data is deleted,
/// a yes/no before containers are removed. Without a terminal and without `--yes`: refused.
fn confirm(plans: &[&Plan], args: &TeardownArgs) -> Result<()> {
    if args.yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        return Err(UsageError::plain(
            "teardown: stdin is not a terminal, so it cannot ask for confirmation; nothing was done. Pass --yes to confirm in a script",
        )
        .into());
    }
    if args.purge_data {
        for p in plans.iter().filter(|p| p.deletes_anything()) {
            let message = format!(
                "Type the tenant name `{}` to delete its data ({}):",
                p.tenant,
                disk::human(p.purge_bytes())
            );
            if !ask::typed(&message, &p.tenant)? {
                bail!(
                    "aborted: that is not `{}`; nothing was stopped, removed or deleted",
                    p.tenant
                );
            }
        }
        return Ok(());
    }
    let names: Vec<&str> = plans.iter().map(|p| p.tenant.as_str()).collect();
    if !ask::confirm(
        &format!(
            "Remove these containers and networks of {}? (the data is kept)",
            names.join(", ")
        ),
        false,
    )? {
        bail!("aborted: nothing was stopped or removed");
    }
    Ok(())
}
