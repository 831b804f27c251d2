//! Running the stacks: `up`, `down`, `restart`, `logs`, `status`, plus the helpers the
//! operations commands share (the tenant's compose project, dry runs, the ownership guard).
//!
//! Every destructive action goes through `docker compose -p <tenant>` and is preceded by
//! [`guard_project`], so it only ever reaches containers that carry the tenant's stackgen label.

use std::path::Path;

use anyhow::{bail, Result};

use super::{display, shown};
use crate::cli::{Cli, ComposeArgs, DownArgs, LogsArgs, RestartArgs, StatusArgs, UpArgs};
use crate::error::{Drift, Outcome, UsageError, EXIT_DEGRADED, EXIT_NOT_RUNNING};
use crate::manifest::{Manifest, Tenant};
use crate::ops::apparmor::{self, HostApparmor};
use crate::ops::compose::argv::{self, Select};
use crate::ops::compose::{containers, exec, Cmd, Container, Project, Tools};
use crate::ops::preflight::{self, Check, PreflightFailed};
use crate::output::{self, Comparison};
use crate::platform::model::{self, ResolvedService};
use crate::policy::TENANT_LABEL;
use crate::render::compose::{self as render};
use crate::render::RenderedFile;
use crate::{ops::deployment, ops::engines, ops::prepare, ops::status};

use super::many;

/// The manifest and the one tenant named on the command line.
pub(super) fn load_one(cli: &Cli, name: &str) -> Result<(Manifest, usize)> {
    let manifest = Manifest::load(&cli.env_file)?;
    manifest.select(&[name.to_string()])?;
    let index = manifest
        .tenants
        .iter()
        .position(|t| t.name == name)
        .expect("select found it");
    Ok((manifest, index))
}

/// `-p <tenant> --env-file <manifest> -f <stacks>/<tenant>-stack.yml`, paths as typed.
pub(super) fn project(cli: &Cli, tenant: &Tenant) -> Project {
    // Without the default's `./`: same files, and the commands read as an operator types them.
    let stack = cli.stacks_dir.join(format!("{}-stack.yml", tenant.name));
    Project {
        name: tenant.name.clone(),
        env_file: shown(&cli.env_file).into(),
        stack: shown(&stack).into(),
    }
}

/// The tools to use: found (with a clear error) for real runs; for a dry run the ones found,
/// else plain `docker compose`, so the printed commands are those a Docker host would run.
pub(super) fn tools(dry_run: bool) -> Result<Tools> {
    if dry_run {
        Ok(Tools::find_or_assume())
    } else {
        Tools::find()
    }
}

/// The tools aimed at the tenant's engine (`<T>__DOCKER_CONTEXT`, see `crate::ops::engines`); for
/// a real run, an unknown context is refused first (exit 2, naming the manifest line).
pub(super) fn tools_for(manifest: &Manifest, tenant: &Tenant, dry_run: bool) -> Result<Tools> {
    let t = tools(dry_run)?.on(tenant.docker_context.as_deref());
    if !dry_run {
        engines::check_known(&t, manifest, tenant)?;
    }
    Ok(t)
}

/// Runs the command, or prints it for a dry run.
pub(super) fn perform(cmd: &Cmd, dry_run: bool) -> Result<()> {
    if dry_run {
        println!("+ {cmd}");
        Ok(())
    } else {
        exec::run(cmd)
    }
}

/// Refuses service names the tenant does not run (exit 2), listing the ones it does.
pub(super) fn check_services(
    tenant: &Tenant,
    services: &[ResolvedService],
    requested: &[String],
) -> Result<(), UsageError> {
    for r in requested {
        if !services.iter().any(|s| &s.name == r) {
            let known: Vec<&str> = services.iter().map(|s| s.name.as_str()).collect();
            return Err(UsageError::plain(format!(
                "tenant `{}` has no service `{r}` (its services: {})",
                tenant.name,
                known.join(", ")
            )));
        }
    }
    Ok(())
}

/// The containers of the tenant's compose project, after proving each one is the tenant's own
/// (carries `com.stackgen.tenant=<tenant>`) and this manifest's (carries its deployment ID, see
/// `crate::ops::deployment`), and that no network of the project is another deployment's. A
/// container that merely shares the project name (someone ran `docker compose -p team-a` by
/// hand), or one another manifest started, stops the command before anything happens.
pub(super) fn guard_project(cli: &Cli, tools: &Tools, tenant: &Tenant) -> Result<Vec<Container>> {
    // Without an ID, this manifest's containers cannot be told from another's: refuse first.
    let ours = deployment::required(tenant, &cli.env_file)?;
    let list = containers::query(tools, &Select::Project(&tenant.name))?;
    let foreign: Vec<&str> = list
        .iter()
        .filter(|c| c.tenant != tenant.name)
        .map(|c| c.name.as_str())
        .collect();
    if !foreign.is_empty() {
        bail!(
            "compose project `{t}` holds container(s) stackgen did not create for tenant `{t}`: {}. \
             stackgen only acts on containers labelled {TENANT_LABEL}={t}; nothing was done. \
             Remove or rename those containers' project first.",
            foreign.join(", "),
            t = tenant.name
        );
    }
    deployment::check(
        tools,
        ours,
        tenant,
        &project(cli, tenant).stack,
        &list,
        false,
    )?;
    Ok(list)
}

/// `teardown`'s ownership check: of what carries the tenant's label (all teardown ever
/// touches), nothing may be another deployment's. Hand-made containers sharing the project name
/// are left alone by teardown, so they do not stop it.
pub(super) fn guard_labelled(cli: &Cli, tools: &Tools, tenant: &Tenant) -> Result<()> {
    let ours = deployment::required(tenant, &cli.env_file)?;
    let list = containers::query(tools, &Select::Project(&tenant.name))?;
    deployment::check(
        tools,
        ours,
        tenant,
        &project(cli, tenant).stack,
        &list,
        true,
    )
}

/// Preflight's first check for one set of generated files (a tenant's, or the front door's):
/// they match the manifest, `--render` is about to write them, or they drifted and nothing is
/// started (the diff follows).
fn files_check(
    tenant: &Tenant,
    check: &'static str,
    file: &str,
    also: &str,
    cmp: &Comparison,
    render: bool,
    fix: &str,
) -> Result<()> {
    if cmp.is_clean() {
        emit(
            tenant,
            Check::ok(check, format!("{file} matches the manifest")),
        )
    } else if render {
        let n = cmp.changed.len() + cmp.stale.len();
        emit(
            tenant,
            Check::ok(
                check,
                format!("{n} file(s) differ from the manifest; --render writes them"),
            ),
        )
    } else {
        println!(
            "{}",
            Check::fail(
                check,
                format!("{file} or {also} differ from the manifest (diff below)"),
                fix,
            )
        );
        Err(drift_error(
            cmp,
            &tenant.name,
            "nothing was started (pass --render to write them first)",
        ))
    }
}

/// Renders the tenant in memory and compares it with the stacks directory.
pub(super) fn compare(
    cli: &Cli,
    manifest: &Manifest,
    tenant: &Tenant,
) -> Result<(Vec<RenderedFile>, Comparison)> {
    let files = render::render_tenant(manifest, tenant, &display(cli))?;
    let cmp = output::compare(&cli.stacks_dir, Path::new(&tenant.name), &files)?;
    Ok((files, cmp))
}

/// Prints what differs: a unified diff per changed file (a one-line note for a missing one).
pub(super) fn print_drift(cmp: &Comparison) {
    for (path, diff) in &cmp.changed {
        if path.exists() {
            print!("{diff}");
        } else {
            println!("missing: {} (not rendered yet)", path.display());
        }
    }
    for path in &cmp.stale {
        println!(
            "stale: {} is no longer generated by the manifest",
            path.display()
        );
    }
}

/// The drift error for a command that needs the committed files to match the manifest.
pub(super) fn drift_error(cmp: &Comparison, tenant: &str, fix: &str) -> anyhow::Error {
    print_drift(cmp);
    eprintln!(
        "stackgen: {tenant}: the files in the stacks directory differ from what the manifest renders; {fix}"
    );
    Drift {
        files: cmp
            .changed
            .iter()
            .map(|(p, _)| p.clone())
            .chain(cmp.stale.iter().cloned())
            .collect(),
    }
    .into()
}

/// Prints a check; turns a failure into the error that stops `up`.
fn emit(tenant: &Tenant, check: Check) -> Result<()> {
    println!("{check}");
    if check.failed() {
        return Err(PreflightFailed {
            tenant: tenant.name.clone(),
            check: check.name,
        }
        .into());
    }
    Ok(())
}

/// `--dry-run` as a flag for the per-tenant children of a several-tenant run.
fn dry_flag(dry_run: bool) -> Vec<std::ffi::OsString> {
    if dry_run {
        vec!["--dry-run".into()]
    } else {
        Vec::new()
    }
}

/// `stackgen up`: one tenant here; several (or `--all`) each in its own child process.
pub fn cmd_up(cli: &Cli, args: &UpArgs) -> Result<()> {
    let manifest = Manifest::load(&cli.env_file)?;
    let t = many::targets(&manifest, &args.words, args.fleet.all)?;
    if t.tenants.len() == 1 && !args.fleet.all {
        return up_one(cli, args, &t.tenants[0], &t.services);
    }
    let mut flags = vec!["--timeout".into(), args.timeout.to_string().into()];
    if args.render {
        flags.push("--render".into());
    }
    flags.extend(dry_flag(args.dry_run));
    many::fan_out(cli, "up", &t.tenants, &flags, args.fleet.jobs)
}

/// `stackgen up TENANT [SERVICE...]`: drift check, preflight, AppArmor, data directories,
/// `compose up --wait`.
fn up_one(cli: &Cli, args: &UpArgs, name: &str, wanted: &[String]) -> Result<()> {
    let _lock = crate::output::lock::tenant_if(cli, name, !args.dry_run)?;
    let manifest_lock = crate::output::lock::manifest_if(cli, args.render && !args.dry_run)?;
    let (manifest, i) = load_one(cli, name)?;
    let tenant = &manifest.tenants[i];
    let services = model::services(&manifest.platform, tenant);
    check_services(tenant, &services, wanted)?;
    let starting = preflight::closure(tenant, &services, wanted);
    let project = project(cli, tenant);
    let dry = args.dry_run;

    println!(
        "{}: preflight{}",
        tenant.name,
        if dry {
            " (dry run: nothing is started or changed)"
        } else {
            ""
        }
    );
    // 1. The committed files are what the manifest renders (or --render will make them so).
    let (files, cmp) = compare(cli, &manifest, tenant)?;
    files_check(
        tenant,
        "stack",
        &shown(&project.stack),
        "its config files",
        &cmp,
        args.render,
        &format!(
            "run `stackgen render {t}` and commit, or `stackgen up {t} --render`",
            t = tenant.name
        ),
    )?;

    // The front door's files too (its engine's), when the tenant is behind it (its caddy joins
    // the door's network).
    let engine = tenant.docker_context.as_deref();
    let door = crate::render::edge::compare_door(
        &manifest,
        if tenant.has("caddy") { engine } else { None },
        &display(cli),
        &cli.stacks_dir,
        output::Diffs::Unified,
    )?;
    let (edge_files, edge_cmp) = if tenant.has("caddy") {
        (door.files, door.cmp)
    } else {
        (Vec::new(), output::Comparison::default())
    };
    let edge_project = crate::ops::edge::project(&manifest, engine, &cli.env_file, &cli.stacks_dir);
    if !edge_files.is_empty() {
        files_check(
            tenant,
            "edge-stack",
            &shown(&edge_project.stack),
            &format!("stacks/{}/", door.name),
            &edge_cmp,
            args.render,
            "run `stackgen render` and commit, or pass --render",
        )?;
    }

    // 2. Docker: engine, compose; 3. secrets; 4. ports; 5. AppArmor.
    let remote = engines::is_remote(tenant);
    let tools = if dry {
        let t = tools_for(&manifest, tenant, true)?;
        println!("{}", Check::skip("engine", "not contacted in a dry run"));
        println!("{}", Check::ok("compose", t.compose.describe()));
        t
    } else {
        let docker = match crate::ops::compose::find::find_docker() {
            Ok(d) => d,
            Err(e) => return emit(tenant, Check::fail("engine", format!("{e:#}"), "")),
        };
        let probe = Tools::fixed(&docker.to_string_lossy()).on(tenant.docker_context.as_deref());
        engines::check_known(&probe, &manifest, tenant)?;
        let mut check = preflight::engine(&probe);
        if let (Some(c), preflight::Outcome::Ok(text)) =
            (&tenant.docker_context, &mut check.outcome)
        {
            text.push_str(&format!(" through context `{c}`"));
        }
        emit(tenant, check)?;
        engines::check_not_elsewhere(&probe, &manifest, tenant)?;
        let (check, found) = preflight::tools();
        emit(tenant, check)?;
        found
            .expect("a passed compose check found the tools")
            .on(tenant.docker_context.as_deref())
    };
    emit(tenant, preflight::secrets(&manifest, tenant, &starting))?;
    // Before the ports: another engine's port probe runs in one of the tenant's images.
    if remote && dry {
        println!("{}", Check::skip("images", "not listed in a dry run"));
    } else if remote {
        emit(tenant, remote_images(&tools, &services, &starting))?;
    }
    if dry {
        println!("{}", Check::skip("ports", "not checked in a dry run"));
    } else {
        let own = guard_project(cli, &tools, tenant)?;
        let wanted = preflight::host_ports(tenant, &services, &starting);
        let running = std::cell::OnceCell::new();
        let all = || -> &Vec<Container> {
            running.get_or_init(|| containers::query(&tools, &Select::Running).unwrap_or_default())
        };
        let holders = |port, proto| preflight::port_holder(all(), port, proto);
        if remote {
            // That host's sockets are out of reach from here: its engine probes them.
            emit(
                tenant,
                engines::ports(&tools, &manifest, tenant, &wanted, &own, all()),
            )?;
        } else {
            emit(tenant, preflight::ports(tenant, &wanted, &own, &holders))?;
        }
        if !edge_files.is_empty() {
            // The front door's ports, when it does not hold them yet: before anything changes.
            let edge = crate::ops::edge::guard(&tools, &manifest, &edge_project)?;
            emit(
                tenant,
                crate::ops::edge::ports_check(&tools, &manifest, engine, &edge, all()),
            )?;
        }
    }
    // A remote host's kernel is out of reach: its operator loads the profiles there.
    let host = if remote {
        HostApparmor::Disabled(String::new())
    } else {
        apparmor::host_state()
    };
    match &host {
        _ if remote && dry => println!(
            "{}",
            Check::skip("apparmor", "the engine is not asked in a dry run")
        ),
        _ if remote => emit(tenant, remote_apparmor(&tools, tenant))?,
        HostApparmor::Enabled => emit(
            tenant,
            Check::ok("apparmor", "enabled: the tenant's profiles are loaded next"),
        )?,
        HostApparmor::Disabled(_) => {
            emit(tenant, Check::warn("apparmor", host.describe()))?;
            eprintln!(
                "stackgen: WARNING: {}: AppArmor is not enabled on this host; the services start WITHOUT their AppArmor profiles",
                tenant.name
            );
        }
    }

    // From here on things change: files, profiles, directories, containers.
    if args.render && !edge_cmp.is_clean() {
        if dry {
            for (p, _) in &edge_cmp.changed {
                println!("would write {}", shown(p));
            }
        } else {
            output::apply(&edge_cmp, &edge_files, &cli.stacks_dir)?;
        }
    }
    if args.render && !cmp.is_clean() {
        if dry {
            for (p, _) in &cmp.changed {
                println!("would write {}", shown(p));
            }
        } else {
            let written = output::apply(&cmp, &files, &cli.stacks_dir)?;
            println!(
                "  wrote {} file(s), removed {} stale",
                written.len(),
                cmp.stale.len()
            );
        }
    }
    if host.is_enabled() {
        match apparmor::load(&manifest, tenant, &cli.stacks_dir, dry) {
            Ok(report) if dry => {
                for argv in &report.commands {
                    println!(
                        "+ {}",
                        Cmd::new(argv.clone(), "apparmor_parser").shell_line()
                    );
                }
            }
            Ok(report) => emit(
                tenant,
                Check::ok("apparmor", format!("loaded {}", report.profiles.join(", "))),
            )?,
            // Docker would refuse to start a container whose profile is not loaded.
            Err(e) => emit(
                tenant,
                Check::fail(
                    "apparmor",
                    format!("loading the profiles failed: {e:#}"),
                    format!("see `stackgen apparmor load {} --dry-run`", tenant.name),
                ),
            )?,
        }
    }
    let actions = prepare::plan(&manifest, tenant)?;
    let root = model::tenant_root(&manifest.platform, tenant);
    if remote {
        // Through the engine, on its host; this machine's disk is never touched for the tenant.
        if dry {
            println!(
                "would prepare {} path(s) under {root} on the engine's host, with a one-shot container there (`stackgen prepare {} --dry-run` shows it)",
                actions.len(),
                tenant.name
            );
            println!(
                "would copy the config files to {} on the engine's host",
                model::config_source(&manifest.platform, tenant)
            );
        } else {
            // The stack mounts its config files from that host (model::config_source).
            match engines::prepare_on_host(&tools, &manifest, tenant, &actions, &cli.stacks_dir) {
                Ok(pushed) => emit(
                    tenant,
                    Check::ok(
                        "data",
                        format!(
                            "{} path(s) ready under {root} on the engine's host; {}",
                            actions.len(),
                            engines::describe_push(&manifest, tenant, &pushed)
                        ),
                    ),
                )?,
                Err(e) => emit(
                    tenant,
                    Check::fail(
                        "data",
                        format!("{e:#}"),
                        format!(
                            "see `stackgen prepare {} --dry-run` for what to create on that host",
                            tenant.name
                        ),
                    ),
                )?,
            }
        }
    } else if dry {
        println!("would prepare {} path(s) under {root}", actions.len());
    } else {
        match prepare::apply(&manifest, tenant, &actions) {
            Ok(()) => emit(
                tenant,
                Check::ok(
                    "data",
                    format!("{} path(s) ready under {root}", actions.len()),
                ),
            )?,
            Err(e) => emit(
                tenant,
                Check::fail(
                    "data",
                    format!("{e:#}"),
                    "run stackgen as root (it creates directories owned by the services' UIDs)",
                ),
            )?,
        }
    }

    drop(manifest_lock); // files written; the wait for health checks must not block renders
    if !edge_files.is_empty() {
        // Before the tenant: its caddy joins the front network the edge creates. One `up` at a
        // time starts or changes the edge (`up --all` runs tenants in parallel); `edge` is no
        // tenant's name, so its lock is the edge's. Taken last, never held while waiting for
        // another lock.
        let _edge_lock = crate::output::lock::tenant_if(cli, &door.name, !dry)?;
        crate::ops::edge::ensure(
            &tools,
            &manifest,
            &cli.stacks_dir,
            &edge_project,
            tenant,
            args.timeout,
            dry,
        )?;
    }
    let up = argv::up(&tools, &project, wanted, args.timeout);
    if dry {
        println!("+ {up}");
        return Ok(());
    }
    // The whole `up` is bounded by --timeout, including the waits for each dependency's health
    // before its dependants start (compose's --wait-timeout covers only the last wait); a few
    // seconds more than compose's own limit, so compose's message wins when it fires first.
    let limit = std::time::Duration::from_secs(u64::from(args.timeout) + 5);
    let result = exec::run_within(&up, limit);
    // The summary also when compose failed: it shows which services did not become healthy.
    match containers::query(&tools, &Select::Tenant(&tenant.name)) {
        Ok(list) => print!(
            "{}",
            status::table(&status::build(&manifest, &[tenant], &list, false))
        ),
        Err(e) => eprintln!("stackgen: could not read the tenant's containers: {e:#}"),
    }
    result
}

/// The images of the services that will start are on the tenant's engine, or pulled there now.
fn remote_images(tools: &Tools, services: &[ResolvedService], starting: &[String]) -> Check {
    let mut images: Vec<String> = services
        .iter()
        .filter(|s| starting.contains(&s.name))
        .map(|s| s.image.clone())
        .collect();
    images.dedup();
    match engines::images(tools, &images, false) {
        Ok(pulled) if pulled.is_empty() => Check::ok(
            "images",
            format!("{} image(s) present on the engine", images.len()),
        ),
        Ok(pulled) => Check::ok(
            "images",
            format!("pulled on the engine: {}", pulled.join(", ")),
        ),
        Err(e) => Check::fail(
            "images",
            format!("{e:#}"),
            "load it there (`docker save IMAGE | docker --context NAME load`), or let that host reach a registry (IMAGE_REGISTRY)",
        ),
    }
}

/// AppArmor on the tenant's engine: Docker there refuses to start a container whose profile
/// is not loaded, and only that host's operator can load it.
fn remote_apparmor(tools: &Tools, tenant: &Tenant) -> Check {
    match engines::engine_apparmor(tools) {
        Ok(true) => Check::warn(
            "apparmor",
            format!(
                "enabled on the engine's host: its profiles must be loaded there (`stackgen apparmor load {}` prints the commands)",
                tenant.name
            ),
        ),
        Ok(false) => Check::warn(
            "apparmor",
            "not enabled on the engine's host: the services start WITHOUT their AppArmor profiles",
        ),
        Err(e) => Check::fail("apparmor", format!("{e:#}"), ""),
    }
}

/// `stackgen down`: containers and networks go, data stays. Several tenants run concurrently.
pub fn cmd_down(cli: &Cli, args: &DownArgs) -> Result<()> {
    let manifest = Manifest::load(&cli.env_file)?;
    if let (false, [one]) = (args.fleet.all, args.tenants.as_slice()) {
        if manifest.tenant(one).is_none() {
            if let Some(engine) = crate::render::edge::door_named(&manifest, one) {
                return down_edge(cli, &manifest, engine.as_deref(), args.dry_run);
            }
        }
    }
    let names = if args.fleet.all {
        manifest.tenants.iter().map(|t| t.name.clone()).collect()
    } else {
        let mut names: Vec<String> = Vec::new();
        for t in manifest.select(&args.tenants)? {
            if !names.contains(&t.name) {
                names.push(t.name.clone());
            }
        }
        names
    };
    if names.len() == 1 && !args.fleet.all {
        return down_one(cli, &names[0], args.dry_run);
    }
    many::fan_out(
        cli,
        "down",
        &names,
        &dry_flag(args.dry_run),
        args.fleet.jobs,
    )
}

fn down_one(cli: &Cli, name: &str, dry_run: bool) -> Result<()> {
    let _lock = crate::output::lock::tenant_if(cli, name, !dry_run)?;
    let (manifest, i) = load_one(cli, name)?;
    let tenant = &manifest.tenants[i];
    let tools = tools_for(&manifest, tenant, dry_run)?;
    if !dry_run {
        guard_project(cli, &tools, tenant)?;
    }
    perform(&argv::down(&tools, &project(cli, tenant)), dry_run)?;
    if !dry_run {
        println!(
            "{}: containers and networks removed; data under {} is kept",
            tenant.name,
            model::tenant_root(&manifest.platform, tenant)
        );
    }
    Ok(())
}

/// `stackgen down edge` (`edge-<context>`): the front door of that engine, once no tenant
/// behind it runs (their caddies hold its networks). Its certificates stay under BASE_DIR/<door>.
fn down_edge(cli: &Cli, manifest: &Manifest, engine: Option<&str>, dry_run: bool) -> Result<()> {
    let _door_lock =
        crate::output::lock::tenant_if(cli, &crate::manifest::edge::door_name(engine), !dry_run)?;
    let tools = tools(dry_run)?.on(engine);
    if let (Some(c), false) = (engine, dry_run) {
        crate::ops::engines::check_context(&tools, c)?;
    }
    let p = crate::ops::edge::project(manifest, engine, &cli.env_file, &cli.stacks_dir);
    if !dry_run {
        crate::ops::edge::guard(&tools, manifest, &p)?;
        let running: Vec<String> = containers::query(&tools, &Select::AllTenants)?
            .iter()
            .filter(|c| c.is_running() && c.service_name() == "caddy")
            .filter_map(|c| manifest.tenant(&c.tenant))
            .filter(|t| t.docker_context.as_deref() == engine)
            .map(|t| t.name.clone())
            .collect();
        if !running.is_empty() {
            bail!(
                "tenant(s) {} still run behind the front door; nothing was done (`stackgen down {}` first)",
                running.join(", "),
                running.join(" ")
            );
        }
    }
    // A door whose engine no tenant names any more has no stack file left (`render` removed
    // it): compose finds its containers by the project name alone.
    let down = if std::fs::symlink_metadata(&p.stack).is_ok() {
        argv::down(&tools, &p)
    } else {
        argv::down_project(&tools, &p.name)
    };
    perform(&down, dry_run)?;
    if !dry_run {
        println!(
            "{}: the front door's container and networks removed; its certificates under {} are kept",
            crate::manifest::edge::door_name(engine),
            crate::render::edge::host_root(&manifest.platform, engine)
        );
    }
    Ok(())
}

/// `stackgen restart`: one tenant here; several (or `--all`) each in its own child process.
pub fn cmd_restart(cli: &Cli, args: &RestartArgs) -> Result<()> {
    let manifest = Manifest::load(&cli.env_file)?;
    let t = many::targets(&manifest, &args.words, args.fleet.all)?;
    if t.tenants.len() == 1 && !args.fleet.all {
        return restart_one(cli, &t.tenants[0], &t.services, args.dry_run);
    }
    many::fan_out(
        cli,
        "restart",
        &t.tenants,
        &dry_flag(args.dry_run),
        args.fleet.jobs,
    )
}

/// The named services (or all) restart in place; a tenant that is not running is refused
/// (exit 4): `docker compose restart` would do nothing and succeed.
fn restart_one(cli: &Cli, name: &str, services: &[String], dry_run: bool) -> Result<()> {
    let _lock = crate::output::lock::tenant_if(cli, name, !dry_run)?;
    let (manifest, i) = load_one(cli, name)?;
    let tenant = &manifest.tenants[i];
    check_services(
        tenant,
        &model::services(&manifest.platform, tenant),
        services,
    )?;
    let tools = tools_for(&manifest, tenant, dry_run)?;
    if !dry_run {
        let own = guard_project(cli, &tools, tenant)?;
        not_running(tenant, &own, services)?;
    }
    perform(
        &argv::restart(&tools, &project(cli, tenant), services),
        dry_run,
    )?;
    if !dry_run {
        let what = if services.is_empty() {
            "every service".to_string()
        } else {
            services.join(", ")
        };
        println!("{}: restarted {what}", tenant.name);
    }
    Ok(())
}

/// Refuses a restart that would do nothing: no container of the tenant runs, or a named
/// service has no container at all (compose restarts existing containers only, and says nothing).
fn not_running(tenant: &Tenant, own: &[Container], services: &[String]) -> Result<()> {
    let missing: Vec<&str> = services
        .iter()
        .filter(|s| !own.iter().any(|c| c.service_name() == s.as_str()))
        .map(String::as_str)
        .collect();
    let reason = if !own.iter().any(|c| c.state == "running") {
        "no container of it is running".to_string()
    } else if !missing.is_empty() {
        format!("no container of {} exists", missing.join(", "))
    } else {
        return Ok(());
    };
    Err(Outcome {
        code: EXIT_NOT_RUNNING,
        message: format!(
            "{t}: not running ({reason}); nothing was restarted. Start it with `stackgen up {t}`",
            t = tenant.name
        ),
    }
    .into())
}

/// `stackgen logs`: compose's logs of the named services (or all), with compose's own filters.
pub fn cmd_logs(cli: &Cli, args: &LogsArgs) -> Result<()> {
    let (manifest, i) = load_one(cli, &args.tenant)?;
    let tenant = &manifest.tenants[i];
    check_services(
        tenant,
        &model::services(&manifest.platform, tenant),
        &args.services,
    )?;
    if let Some(n) = &args.tail {
        if n != "all" && n.parse::<u64>().is_err() {
            return Err(UsageError::plain(format!(
                "--tail {n}: expected a number of lines or `all`"
            ))
            .into());
        }
    }
    let options = argv::LogOptions {
        follow: args.follow,
        tail: args.tail.clone(),
        since: args.since.clone(),
        timestamps: args.timestamps,
    };
    let tools = tools_for(&manifest, tenant, args.dry_run)?;
    perform(
        &argv::logs(&tools, &project(cli, tenant), &options, &args.services),
        args.dry_run,
    )
}

/// `stackgen compose TENANT -- ARGS...`: any compose command on the tenant's project, after the
/// ownership checks of the other run commands; compose's exit status is stackgen's.
pub fn cmd_compose(cli: &Cli, args: &ComposeArgs) -> Result<()> {
    let (manifest, i) = load_one(cli, &args.tenant)?;
    let tenant = &manifest.tenants[i];
    let tools = tools_for(&manifest, tenant, args.dry_run)?;
    if !args.dry_run {
        guard_project(cli, &tools, tenant)?;
    }
    perform(
        &argv::passthrough(&tools, &project(cli, tenant), &args.args),
        args.dry_run,
    )
}

/// The exit status `status` reports for the declared tenants it shows (the worst one).
pub fn status_code(report: &[status::TenantStatus]) -> Option<(u8, String)> {
    let mut worst: Option<(u8, String)> = None;
    for t in report.iter().filter(|t| t.declared) {
        let code = match t.state.as_str() {
            "running" => continue,
            "not running" => EXIT_NOT_RUNNING,
            _ => EXIT_DEGRADED,
        };
        let line = format!("{}: {}", t.tenant, t.state);
        worst = match worst {
            Some((c, mut msg)) => {
                msg.push_str(&format!(", {line}"));
                Some((c.max(code), msg))
            }
            None => Some((code, line)),
        };
    }
    worst
}

/// `status` when the tenants run on several engines: one `docker ps` per engine, each tenant
/// shown with its engine; an engine that cannot be asked makes its tenants `unreachable`, and
/// the others are reported as usual.
fn status_by_engine(
    manifest: &Manifest,
    tenants: &[&Tenant],
    docker: &Tools,
    select: &Select<'_>,
    include_undeclared: bool,
) -> Vec<status::TenantStatus> {
    let current = current_context(docker);
    let mut report = Vec::new();
    for engine in engines::engines(manifest) {
        let mine: Vec<&Tenant> = tenants
            .iter()
            .copied()
            .filter(|t| t.docker_context.as_deref() == engine)
            .collect();
        if mine.is_empty() && !include_undeclared {
            continue;
        }
        let name = engine.unwrap_or(&current).to_string();
        let tools = docker.on(engine);
        let first = manifest
            .tenants
            .iter()
            .find(|t| t.docker_context.as_deref() == engine)
            .expect("every engine is some tenant's");
        let known = engines::check_known(&tools, manifest, first);
        match known.and_then(|()| containers::query(&tools, select)) {
            Ok(list) => {
                for mut t in status::build(manifest, &mine, &list, include_undeclared) {
                    t.engine = name.clone();
                    report.push(t);
                }
            }
            Err(e) => {
                let why = format!("{e:#}");
                let why = why.lines().next().unwrap_or_default().to_string();
                for t in mine {
                    let mut s = status::build(manifest, &[t], &[], false).remove(0);
                    s.state = "unreachable".into();
                    s.engine = name.clone();
                    s.error = format!("cannot ask {}: {why}", engines::describe(engine));
                    report.push(s);
                }
            }
        }
    }
    // This manifest's tenants first, in manifest order; what else runs on the engines after.
    report.sort_by_key(|t| {
        (
            !t.declared,
            manifest.tenants.iter().position(|m| m.name == t.tenant),
        )
    });
    report
}

/// The current context by its name (`docker context show`), so every tenant's and front door's
/// engine is named the same way.
fn current_context(docker: &Tools) -> String {
    let mut show = docker.docker_argv();
    show.extend(["context".into(), "show".into()]);
    exec::capture_ok(&Cmd::new(show, "docker context show"))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "current".into())
}

/// `stackgen status`: one `docker ps` for every tenant, as a table or JSON; the exit status
/// says whether every tenant shown runs and is healthy (0), is degraded (3) or not running (4).
pub fn cmd_status(cli: &Cli, args: &StatusArgs) -> Result<()> {
    let manifest = Manifest::load(&cli.env_file)?;
    let tenants = manifest.select(&args.tenants)?;
    // `docker ps` is enough here: compose is not needed to read labels, and one call covers
    // every tenant.
    let docker = if args.dry_run {
        Tools::find_or_assume()
    } else {
        Tools::fixed(&crate::ops::compose::find::find_docker()?.to_string_lossy())
    };
    let select = match args.tenants.as_slice() {
        [one] => Select::Tenant(one),
        _ => Select::AllTenants,
    };
    if args.dry_run {
        for engine in engines::engines(&manifest) {
            println!("+ {}", argv::containers(&docker.on(engine), &select));
        }
        return Ok(());
    }
    let report = if engines::engines(&manifest) == [None] {
        let list = containers::query(&docker, &select)?;
        status::build(&manifest, &tenants, &list, args.tenants.is_empty())
    } else {
        status_by_engine(
            &manifest,
            &tenants,
            &docker,
            &select,
            args.tenants.is_empty(),
        )
    };
    // The front door of each engine with a tenant shown behind it; they do not change the
    // exit status. An engine that cannot be asked has its tenants reported `unreachable`.
    let mut edges = Vec::new();
    let several = engines::engines(&manifest) != [None];
    let current = if several {
        current_context(&docker)
    } else {
        String::new()
    };
    for engine in crate::render::edge::doors(&manifest) {
        if !tenants
            .iter()
            .any(|t| t.has("caddy") && t.docker_context.as_deref() == engine)
        {
            continue;
        }
        let p = crate::ops::edge::project(&manifest, engine, &cli.env_file, &cli.stacks_dir);
        // Another engine that does not answer already shows as `unreachable` on its tenants.
        let own = match containers::query(&docker.on(engine), &Select::Project(&p.name)) {
            Ok(own) => own,
            Err(_) if engine.is_some() => continue,
            Err(e) => return Err(e),
        };
        let mut s = crate::ops::edge::status(&manifest, engine, &own);
        if several {
            s.engine = engine.unwrap_or(&current).to_string();
        }
        edges.push(s);
    }
    if args.json {
        print!("{}", status::json(&report, &edges));
    } else {
        if !edges.is_empty() {
            println!("{}", status::table_fit(&edges, status::terminal_width()));
        }
        print!("{}", status::table_fit(&report, status::terminal_width()));
    }
    match status_code(&report) {
        None => Ok(()),
        Some((code, message)) => Err(Outcome { code, message }.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::status::TenantStatus;

    fn tenant(name: &str, state: &str, declared: bool) -> TenantStatus {
        TenantStatus {
            tenant: name.into(),
            declared,
            deployment: String::new(),
            engine: String::new(),
            error: String::new(),
            state: state.into(),
            running: 0,
            healthy: 0,
            services: Vec::new(),
        }
    }

    #[test]
    fn status_exits_with_the_worst_declared_tenants_code() {
        assert_eq!(status_code(&[tenant("a", "running", true)]), None);
        let (code, msg) =
            status_code(&[tenant("a", "running", true), tenant("b", "starting", true)]).unwrap();
        assert_eq!((code, msg.as_str()), (EXIT_DEGRADED, "b: starting"));
        let (code, msg) = status_code(&[
            tenant("a", "not running", true),
            tenant("b", "degraded", true),
        ])
        .unwrap();
        assert_eq!(code, EXIT_NOT_RUNNING);
        assert_eq!(msg, "a: not running, b: degraded");
        // Another manifest's tenant, shown apart, does not decide this manifest's status.
        assert_eq!(status_code(&[tenant("x", "degraded", false)]), None);
        // The codes do not collide with drift/failure (1) or bad input (2).
        assert!(![0, 1, 2].contains(&EXIT_DEGRADED) && ![0, 1, 2].contains(&EXIT_NOT_RUNNING));
        assert_ne!(EXIT_DEGRADED, EXIT_NOT_RUNNING);
    }
}
