//! Generator commands: `init`, `render`, `prepare`.

use std::path::Path;

use anyhow::Result;

use super::{display, shown};
use crate::cli::{Cli, InitArgs, KubeSecretsArgs, PrepareArgs, RenderArgs, Target};
use crate::error::{Drift, UsageError};
use crate::manifest::Manifest;
use crate::render::compose as render;
use crate::{manifest::init, ops::prepare, output, platform::model, policy, ui::menu};

pub fn cmd_init(cli: &Cli, args: &InitArgs) -> Result<()> {
    let _lock = crate::output::lock::manifest(cli)?; // read-modify-write: no lost update
    if !args.non_interactive {
        if !args.tenants.is_empty() {
            return Err(UsageError::plain(
                "init: --tenant needs --non-interactive (without it, the menu asks for the tenants)",
            )
            .into());
        }
        let defaults = menu::Defaults {
            domain: args.domain.clone(),
            base_dir: args.base_dir.clone(),
            port_range: args.port_range.clone(),
        };
        let Some(report) = menu::run(&cli.env_file, &defaults)? else {
            println!("nothing written");
            return Ok(());
        };
        print_init_report(cli, &report);
        return Ok(());
    }
    if args.tenants.is_empty() && !cli.env_file.exists() {
        return Err(UsageError::plain("init: name at least one tenant with --tenant NAME").into());
    }
    let opts = init::InitOptions {
        tenants: args
            .tenants
            .iter()
            .map(|t| init::NewTenant {
                // Given to every tenant: a second one overlaps the first and is refused.
                port_range: args.port_range.clone(),
                docker_context: args.docker_context.clone(),
                ..init::NewTenant::new(t, &args.vector_db, &args.services)
            })
            .collect(),
        changes: Vec::new(),
        domain: args.domain.clone(),
        base_dir: args.base_dir.clone(),
        tls_mode: None,
    };
    let report = init::run(&cli.env_file, &opts)?;
    print_init_report(cli, &report);
    Ok(())
}

fn print_init_report(cli: &Cli, report: &init::InitReport) {
    let path = shown(&cli.env_file);
    // -q still says which values the operator must supply: without them `up` fails.
    if cli.quiet {
        eprint!("{}", init::to_supply_notice(&path, &report.to_supply));
        return;
    }
    if report.created {
        println!("created {path} (mode 0600)");
    }
    for t in &report.added_tenants {
        println!("added tenant {t}");
    }
    for t in &report.changed_tenants {
        println!("changed the vector DB and services of tenant {t}");
    }
    for t in &report.existing_tenants {
        println!("tenant {t} already exists; its lines are unchanged");
    }
    if report.added_deployment {
        println!(
            "added {} (this manifest's deployment ID); `render` puts it on every container and network",
            crate::manifest::deployment_id::KEY
        );
    }
    if report.added_secrets > 0 {
        println!(
            "added {} missing secret(s); existing secrets are unchanged",
            report.added_secrets
        );
    }
    print!("{}", init::to_supply_notice(&path, &report.to_supply));
    println!("next: stackgen --env-file {path} render");
}

pub fn cmd_render(cli: &Cli, args: &RenderArgs) -> Result<()> {
    let _lock = crate::output::lock::manifest_if(cli, !args.check)?;
    let manifest = Manifest::load(&cli.env_file)?;
    let tenants = manifest.select(&args.tenants)?;
    let display = display(cli);
    // Render everything in memory first: a template error must not leave half the tenants written.
    let rendered = render::render_many(&tenants, |t| {
        let diffs = if args.check {
            output::Diffs::Unified
        } else {
            output::Diffs::Skip
        };
        let (files, cmp) = match args.target {
            Target::Compose => {
                let files = render::render_tenant(&manifest, t, &display)?;
                let cmp = output::compare_with(&cli.stacks_dir, Path::new(&t.name), &files, diffs)?;
                (files, cmp)
            }
            Target::Kubernetes => {
                let files = crate::render::kubernetes::render_tenant(&manifest, t, &display)?;
                let dir = crate::render::kubernetes::tenant_dir(t);
                let cmp = output::compare_generated(
                    &cli.stacks_dir,
                    &dir,
                    &files,
                    diffs,
                    &crate::render::kubernetes::may_generate,
                )?;
                (files, cmp)
            }
        };
        Ok((files, cmp))
    })?;
    // The front doors are rendered from the whole manifest, whichever tenants were named: each
    // is one more entry, named `edge` (or `edge-<context>`), beside them (`None`: not a tenant).
    let mut all: Vec<(Option<&crate::manifest::Tenant>, String, _, _)> = tenants
        .iter()
        .zip(rendered)
        .map(|(t, (files, cmp))| (Some(*t), t.name.clone(), files, cmp))
        .collect();
    let diffs = if args.check {
        output::Diffs::Unified
    } else {
        output::Diffs::Skip
    };
    for door in crate::render::edge::compare_all(&manifest, &display, &cli.stacks_dir, diffs)? {
        all.push((None, door.name, door.files, door.cmp));
    }
    if args.check {
        let mut drifted = Vec::new();
        let mut report = Vec::new();
        for (_, name, _, cmp) in &all {
            for (path, diff) in &cmp.changed {
                // -q: the exit status and the stderr line say it; --json: paths only, since a
                // diff body may hold a secret pasted into a generated file.
                if !cli.quiet && !args.json {
                    print!("{}", crate::ui::style::diff(diff));
                }
                drifted.push(path.clone());
            }
            for path in &cmp.stale {
                if !cli.quiet && !args.json {
                    println!(
                        "stale: {} is no longer generated by the manifest",
                        path.display()
                    );
                }
                drifted.push(path.clone());
            }
            let paths = |v: Vec<&std::path::PathBuf>| -> Vec<String> {
                v.iter().map(|p| p.display().to_string()).collect()
            };
            report.push(serde_json::json!({
                "tenant": name,
                "changed": paths(cmp.changed.iter().map(|(p, _)| p).collect()),
                "stale": paths(cmp.stale.iter().collect()),
                "clean": cmp.is_clean(),
            }));
        }
        if args.json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        }
        if drifted.is_empty() {
            if !cli.quiet && !args.json {
                println!("{} tenant(s) up to date", tenants.len());
            }
            return Ok(());
        }
        return Err(Drift { files: drifted }.into());
    }
    // All tenants at once: a full disk or an unwritable directory leaves every file as it was.
    let items: Vec<_> = all
        .iter()
        .map(|(_, _, files, cmp)| (cmp, files.as_slice()))
        .collect();
    let written_all = output::apply_all(&items, &cli.stacks_dir)?;
    if cli.quiet {
        return Ok(());
    }
    for ((t, name, files, cmp), written) in all.iter().zip(written_all) {
        println!(
            "{}: {} file(s) written, {} unchanged, {} stale removed",
            name,
            written.len(),
            files.len() - written.len(),
            cmp.stale.len()
        );
        // Who runs as root and why is a review question, not news on every render: -v.
        if let (true, Some(t)) = (cli.verbose, t) {
            let services = model::services(&manifest.platform, t);
            println!("  {}", policy::summary(t, &services));
        }
    }
    Ok(())
}

/// Prints the tenant's Kubernetes Secret: the one place secret values leave the manifest, so
/// only into a pipe or a file the operator chose, never onto a terminal (or a screen share).
pub fn cmd_kube_secrets(cli: &Cli, args: &KubeSecretsArgs) -> Result<()> {
    use std::io::{IsTerminal, Write};
    let manifest = Manifest::load(&cli.env_file)?;
    let tenant = manifest.select(std::slice::from_ref(&args.tenant))?[0];
    if std::io::stdout().is_terminal() {
        return Err(UsageError::plain(format!(
            "kube-secrets: refusing to print {}'s secrets on a terminal\n  fix: pipe them: stackgen kube-secrets {} | kubectl apply -f -",
            tenant.name, tenant.name
        ))
        .into());
    }
    // The namespace first, exactly as rendered, so this apply works on an empty cluster.
    let namespace = crate::render::kubernetes::namespace_yaml(&manifest, tenant, &display(cli))?;
    let secret = crate::render::kubernetes::secrets::secret_yaml(tenant);
    let mut out = std::io::stdout().lock();
    out.write_all(format!("{namespace}---\n{secret}").as_bytes())?;
    out.flush()?;
    Ok(())
}

pub fn cmd_prepare(cli: &Cli, args: &PrepareArgs) -> Result<()> {
    let _lock = crate::output::lock::tenant_if(cli, &args.tenant, !args.dry_run)?;
    let manifest = Manifest::load(&cli.env_file)?;
    let tenant = manifest.select(std::slice::from_ref(&args.tenant))?[0];
    let actions = prepare::plan(&manifest, tenant)?;
    // -q keeps the dry-run listing (it is what was asked for) and drops the rest.
    for a in actions.iter().filter(|_| !cli.quiet || args.dry_run) {
        let kind = if a.is_file { "file" } else { "dir " };
        println!(
            "{kind} {} owner {}:{} mode {}",
            a.path.display(),
            a.owner.0,
            a.owner.1,
            if a.is_file { "0640" } else { "0750" }
        );
    }
    if let Some(context) = &tenant.docker_context {
        // The data lives on that engine's host: a one-shot container there creates it.
        let tools = crate::ops::compose::Tools::find_or_assume().on(Some(context));
        if args.dry_run {
            let cmd =
                crate::ops::engines::prepare_cmd(&tools, &manifest, tenant, &actions, "ENGINE-ID")?;
            println!("on the host of Docker context `{context}`, through its engine:\n{cmd}");
            let (_, files) = crate::ops::engines::config_files(&manifest, tenant)?;
            println!(
                "then copy {} file(s) from {} to {} there (docker cp into a helper container)",
                files.len(),
                shown(&cli.stacks_dir.join(&tenant.name)),
                model::config_source(&manifest.platform, tenant)
            );
            println!("dry run: nothing created");
            return Ok(());
        }
        let tools = crate::ops::compose::Tools::find()?.on(Some(context));
        crate::ops::engines::check_known(&tools, &manifest, tenant)?;
        crate::ops::engines::check_not_elsewhere(&tools, &manifest, tenant)?;
        let pushed = crate::ops::engines::prepare_on_host(
            &tools,
            &manifest,
            tenant,
            &actions,
            &cli.stacks_dir,
        )?;
        if !cli.quiet {
            println!(
                "{}: {} path(s) ready on the host of Docker context `{context}`; {}",
                tenant.name,
                actions.len(),
                crate::ops::engines::describe_push(&manifest, tenant, &pushed)
            );
        }
        return Ok(());
    }
    if args.dry_run {
        println!("dry run: nothing created");
        return Ok(());
    }
    prepare::apply(&manifest, tenant, &actions)?;
    if !cli.quiet {
        println!("{}: {} path(s) ready", tenant.name, actions.len());
    }
    Ok(())
}
