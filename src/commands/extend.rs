//! `add-service` and `remove-service`: change the manifest through `crate::manifest::extend`, re-render
//! the tenant (stack and Caddyfile), and, when the tenant is running, start or remove just that
//! one service and reload caddy, leaving every other container as it was.
//!
//! Order: everything that can be refused is checked and rendered in memory before the manifest
//! is written, so a refusal (exit 2) writes nothing.

use anyhow::Result;

use super::run::{compare, guard_project, load_one, project};
use super::shown;
use crate::cli::{AddServiceArgs, Cli, RemoveServiceArgs};
use crate::manifest::extend::{self, AddRequest};
use crate::manifest::{edit, Manifest, Tenant};
use crate::ops::compose::argv::{self, Select};
use crate::ops::compose::{containers, exec, Container, Tools};
use crate::ops::teardown::{disk, docker, guard};
use crate::{ops::prepare, output, platform::model};

/// The tenant's containers when Docker is here and any exist ("the tenant is running");
/// `None` when there is no Docker on this host, which means nothing of it runs here.
fn running(tenant: &Tenant) -> Result<Option<(Tools, Vec<Container>)>> {
    let Ok(tools) = Tools::find() else {
        return Ok(None);
    };
    let tools = tools.on(tenant.docker_context.as_deref());
    let list = containers::query(&tools, &Select::Tenant(&tenant.name))?;
    if list.is_empty() {
        return Ok(None);
    }
    Ok(Some((tools, list)))
}

fn caddy_runs(list: &[Container]) -> bool {
    list.iter()
        .any(|c| c.service_name() == "caddy" && c.is_running())
}

/// Writes the new manifest and the tenant's re-rendered files, and the front door's (a route is
/// a hostname there); returns how many changed. All or nothing: `output::apply_all` restores the
/// stacks when it fails, and then the manifest is put back too, so a failed add/remove leaves
/// both exactly as they were.
fn write_all(cli: &Cli, text: &str, next: &Manifest, tenant: &Tenant) -> Result<usize> {
    let (files, cmp) = compare(cli, next, tenant)?;
    // The front door of the tenant's engine: its routes are the tenant's hostnames.
    let door = crate::render::edge::compare_door(
        next,
        tenant.docker_context.as_deref(),
        &super::display(cli),
        &cli.stacks_dir,
        output::Diffs::Skip,
    )?;
    let original = crate::manifest::read(&cli.env_file)?;
    edit::write(&cli.env_file, text)?;
    let items = [(&cmp, files.as_slice()), (&door.cmp, door.files.as_slice())];
    match output::apply_all(&items, &cli.stacks_dir) {
        Ok(written) => Ok(written.iter().map(Vec::len).sum::<usize>()
            + cmp.stale.len()
            + door.cmp.stale.len()),
        Err(e) => Err(match edit::write(&cli.env_file, &original) {
            Ok(()) => e.context(format!(
                "nothing was changed: {} was put back as it was",
                super::shown(&cli.env_file)
            )),
            Err(back) => e.context(format!(
                "{} holds the new service but its stack files could not be written, and putting the manifest back failed too ({back:#}): remove the service's lines by hand",
                super::shown(&cli.env_file)
            )),
        }),
    }
}

pub fn cmd_add_service(cli: &Cli, args: &AddServiceArgs) -> Result<()> {
    let _locks = crate::output::lock::tenant_and_manifest(cli, &args.tenant)?;
    let (manifest, i) = load_one(cli, &args.tenant)?;
    let tenant = &manifest.tenants[i];
    let req = AddRequest {
        name: args.name.clone(),
        image: args.image.clone(),
        port: args.port.clone(),
        env: args.env.clone(),
        volumes: args.volumes.clone(),
        route: args.route.clone(),
        healthcheck: args.healthcheck.clone(),
    };
    let (svc, text) = extend::add(&manifest, tenant, &req)?;
    let next = Manifest::from_text(&cli.env_file, &text)?;
    let t = next.tenant(&tenant.name).expect("the same tenants");
    // Rendered in memory first: a template error leaves the manifest untouched.
    compare(cli, &next, t)?;
    let live = running(t)?;
    if let Some((tools, _)) = &live {
        guard_project(cli, tools, t)?;
    }
    let changed = write_all(cli, &text, &next, t)?;
    let route = match &svc.route {
        Some(r) => format!(", routed as https://{r}.{}", t.domain),
        None => String::new(),
    };
    println!(
        "{}: added {} ({}, port {} on 127.0.0.1:{}{route}); {} updated, {changed} stack file(s) written",
        t.name,
        svc.name,
        svc.image,
        svc.port,
        svc.host_port,
        shown(&cli.env_file)
    );
    let Some((tools, list)) = live else {
        println!(
            "{t}: not running here; `stackgen up {t}` starts it with {name}",
            t = t.name,
            name = svc.name
        );
        return Ok(());
    };
    // Its data directory, owned by the tenant's UID like a built-in service's (only its own).
    let own = model::data_dir(&next.platform, t, &svc.name);
    let actions: Vec<_> = prepare::plan(&next, t)?
        .into_iter()
        .filter(|a| a.path.starts_with(&own))
        .collect();
    if crate::ops::engines::is_remote(t) {
        // On the engine's host, through the engine; never this machine's disk. Its caddy mounts
        // the Caddyfile, now with the new route, from there too.
        crate::ops::engines::prepare_on_host(&tools, &next, t, &actions, &cli.stacks_dir)?;
    } else {
        prepare::apply(&next, t, &actions)?;
    }
    let p = project(cli, t);
    exec::run(&crate::ops::compose::service::start_one(
        &tools, &p, &svc.name,
    ))?;
    println!(
        "{}: started {} alone; nothing else was restarted",
        t.name, svc.name
    );
    if caddy_runs(&list) {
        exec::run(&argv::caddy_reload(&tools, &p))?;
        println!("{}: caddy reloaded its configuration", t.name);
        reload_edge(cli, &tools, &next, t)?;
    }
    Ok(())
}

/// The front door of the tenant's engine learns a new or removed hostname in place, when it
/// runs (`tools` are on that engine).
fn reload_edge(cli: &Cli, tools: &Tools, next: &Manifest, t: &Tenant) -> Result<()> {
    let engine = t.docker_context.as_deref();
    let _door_lock =
        crate::output::lock::tenant_if(cli, &crate::manifest::edge::door_name(engine), true)?;
    let p = crate::ops::edge::project(next, engine, &cli.env_file, &cli.stacks_dir);
    let list = crate::ops::edge::guard(tools, next, &p)?;
    if list.iter().any(|c| c.is_running()) {
        crate::ops::edge::push_caddyfile(tools, next, engine, &cli.stacks_dir)?;
        exec::run(&crate::ops::edge::reload_cmd(tools, &p))?;
        println!(
            "{}: caddy reloaded its configuration",
            crate::manifest::edge::door_name(engine)
        );
    }
    Ok(())
}

pub fn cmd_remove_service(cli: &Cli, args: &RemoveServiceArgs) -> Result<()> {
    let _locks = crate::output::lock::tenant_and_manifest(cli, &args.tenant)?;
    let (manifest, i) = load_one(cli, &args.tenant)?;
    let tenant = &manifest.tenants[i];
    let text = extend::remove(&manifest, tenant, &args.name)?;
    let next = Manifest::from_text(&cli.env_file, &text)?;
    let t = next.tenant(&tenant.name).expect("the same tenants");
    compare(cli, &next, t)?;
    // Checked before anything changes, so a refused purge also leaves the service in place. A
    // remote tenant's folder is on its engine's host: looked at there through the engine (a
    // link refused now, as the one-shot container that deletes it would refuse it later), never
    // on this machine's disk.
    let remote = crate::ops::engines::is_remote(t);
    let data = if args.purge_data && !remote {
        guard::service_data_dir(&manifest.platform.base_dir, &t.name, &args.name)?
    } else {
        None
    };
    let purge_on_host = if args.purge_data && remote {
        let tools = super::run::tools_for(&next, t, false)?;
        crate::ops::engines::refuse_linked_data(&tools, &next, t, Some(&args.name))?;
        Some(crate::ops::engines::purge_cmd(
            &tools,
            &next,
            t,
            Some(&args.name),
        )?)
    } else {
        None
    };
    let live = running(t)?;
    if let Some((tools, _)) = &live {
        // The whole project must be this manifest's before any of it is stopped.
        guard_project(cli, tools, t)?;
        // Only this service's container: selected by the tenant, project and service labels.
        let own = crate::ops::compose::service::containers_of_service(tools, &t.name, &args.name)?;
        if !own.is_empty() {
            exec::capture_ok(&docker::stop(tools, &own))?;
            exec::capture_ok(&docker::remove(tools, &own, false))?;
            let names: Vec<&str> = own.iter().map(|c| c.name.as_str()).collect();
            println!("{}: stopped and removed {}", t.name, names.join(", "));
        }
    }
    let changed = write_all(cli, &text, &next, t)?;
    println!(
        "{}: removed {} from {}; {changed} stack file(s) written",
        t.name,
        args.name,
        shown(&cli.env_file)
    );
    if let Some((tools, list)) = &live {
        if caddy_runs(list) {
            if crate::ops::engines::is_remote(t) {
                // The Caddyfile without the route, where that host's caddy reads it.
                crate::ops::engines::push_config(tools, &next, t, &cli.stacks_dir)?;
            }
            exec::run(&argv::caddy_reload(tools, &project(cli, t)))?;
            println!("{}: caddy reloaded its configuration", t.name);
            reload_edge(cli, tools, &next, t)?;
        }
    }
    match (args.purge_data, data, purge_on_host) {
        (true, _, Some(cmd)) => {
            let dir = model::data_dir(&next.platform, t, &args.name);
            let context = t.docker_context.as_deref().unwrap_or_default();
            match crate::ops::engines::run_purge(&cmd)? {
                true => {
                    println!("deleted {dir} on the host of context `{context}`, through its engine")
                }
                false => println!(
                    "{}: no data directory to delete on the host of context `{context}`",
                    args.name
                ),
            }
        }
        (true, Some(dir), None) => {
            let bytes = disk::size(&dir)?;
            disk::remove_tree(&dir)?;
            println!("deleted {} ({})", dir.display(), disk::human(bytes));
        }
        (true, None, None) => println!("{}: no data directory to delete", args.name),
        (false, _, _) => println!(
            "data kept in {} (delete it with --purge-data)",
            model::data_dir(&next.platform, t, &args.name)
        ),
    }
    Ok(())
}
