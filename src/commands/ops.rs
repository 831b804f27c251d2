//! Operations on a running tenant (the design's script 3, done right): `reload-proxy`,
//! `refresh-tailscale-key`, `rotate-secrets`, and the host check `doctor`.
//!
//! Each one decides everything first (values, files, commands), refuses with the reason when it
//! cannot be done safely, and only then changes the manifest or the containers.

use std::io::Read;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use serde_yaml::Value;

use super::run::{compare, drift_error, guard_project, load_one, perform, project, tools_for};
use super::shown;
use crate::cli::{Cli, DoctorArgs, RefreshTailscaleKeyArgs, ReloadProxyArgs, RotateSecretsArgs};
use crate::error::UsageError;
use crate::manifest::{edit, values, Manifest};
use crate::ops::apparmor::{self, HostApparmor};
use crate::ops::compose::argv::{self, Select};
use crate::ops::compose::{containers, exec, find, Container, Tools};
use crate::ops::preflight::{self, Check};
use crate::output::{self, write_atomic, Durability};
use crate::{ops::rotate, platform::model};

/// Seconds `recreate` waits for the recreated services to be healthy again.
const RECREATE_TIMEOUT: u32 = 300;

fn running(list: &[Container], service: &str) -> bool {
    list.iter()
        .any(|c| c.service_name() == service && c.is_running())
}

/// `stackgen reload-proxy`: write the re-rendered Caddyfile, then `caddy reload` in place.
pub fn cmd_reload_proxy(cli: &Cli, args: &ReloadProxyArgs) -> Result<()> {
    if args.tenant == crate::manifest::edge::NAME
        || args
            .tenant
            .starts_with(&format!("{}-", crate::manifest::edge::NAME))
    {
        let _lock = crate::output::lock::manifest_if(cli, !args.dry_run)?;
        let manifest = Manifest::load(&cli.env_file)?;
        if let Some(engine) = crate::render::edge::door_named(&manifest, &args.tenant) {
            return reload_edge(cli, &manifest, engine.as_deref(), args.dry_run);
        }
    }
    // The tenant's too: the copy of its config files to another engine's host (push_config)
    // must not interleave with an `up` or `prepare` of the same tenant.
    let _locks = crate::output::lock::tenant_and_manifest_if(cli, &args.tenant, !args.dry_run)?;
    let (manifest, i) = load_one(cli, &args.tenant)?;
    let tenant = &manifest.tenants[i];
    if !tenant.has("caddy") {
        return Err(UsageError::plain(format!(
            "tenant `{}` does not run caddy (add it to {})",
            tenant.name,
            tenant.key("SERVICES")
        ))
        .into());
    }
    let (files, cmp) = compare(cli, &manifest, tenant)?;
    let rel = PathBuf::from(&tenant.name).join("caddy").join("Caddyfile");
    let caddyfile = files
        .iter()
        .find(|f| f.path == rel)
        .context("the tenant renders no Caddyfile")?;
    let path = cli.stacks_dir.join(&rel);
    let changed = cmp.changed.iter().any(|(p, _)| *p == path);
    let tools = tools_for(&manifest, tenant, args.dry_run)?;
    if !args.dry_run {
        let list = guard_project(cli, &tools, tenant)?;
        if !running(&list, "caddy") {
            bail!(
                "caddy of tenant `{t}` is not running; nothing was changed (start it with `stackgen up {t}`)",
                t = tenant.name
            );
        }
    }
    match (changed, args.dry_run) {
        (false, _) => println!("{} is up to date", shown(&path)),
        (true, true) => println!("would write {}", shown(&path)),
        (true, false) => {
            // The directory is mounted, not the file: caddy sees the renamed new file at once.
            write_atomic(
                &path,
                caddyfile.content.as_bytes(),
                None,
                Durability::Regenerable,
            )?;
            println!("wrote {}", shown(&path));
        }
    }
    if crate::ops::engines::is_remote(tenant) {
        // That host's caddy reads the copy under BASE_DIR (model::config_source).
        if args.dry_run {
            println!(
                "would copy the config files to {} on the engine's host",
                crate::platform::model::config_source(&manifest.platform, tenant)
            );
        } else {
            let pushed =
                crate::ops::engines::push_config(&tools, &manifest, tenant, &cli.stacks_dir)?;
            println!(
                "{}",
                crate::ops::engines::describe_push(&manifest, tenant, &pushed)
            );
        }
    }
    let others = cmp.changed.len() - usize::from(changed) + cmp.stale.len();
    if others > 0 {
        println!(
            "note: {others} other generated file(s) differ from the manifest; `stackgen up {} --render` applies them",
            tenant.name
        );
    }
    perform(
        &argv::caddy_reload(&tools, &project(cli, tenant)),
        args.dry_run,
    )?;
    if !args.dry_run {
        println!("{}: caddy reloaded its configuration", tenant.name);
    }
    Ok(())
}

/// The tailscale sidecar's CLI socket, as the rendered stack sets it (`TS_SOCKET`).
fn tailscale_socket(stack_yaml: &str) -> String {
    serde_yaml::from_str::<Value>(stack_yaml)
        .ok()
        .and_then(|v| {
            v["services"]["tailscale"]["environment"]["TS_SOCKET"]
                .as_str()
                .map(str::to_string)
        })
        .unwrap_or_else(|| "/tmp/tailscaled.sock".to_string())
}

/// `stackgen refresh-tailscale-key`: log in with the new key, store it, recreate the sidecar.
pub fn cmd_refresh_tailscale_key(cli: &Cli, args: &RefreshTailscaleKeyArgs) -> Result<()> {
    let _locks = crate::output::lock::tenant_and_manifest_if(cli, &args.tenant, !args.dry_run)?;
    let (manifest, i) = load_one(cli, &args.tenant)?;
    let tenant = &manifest.tenants[i];
    if !tenant.has("tailscale") {
        return Err(UsageError::plain(format!(
            "tenant `{}` has no tailscale sidecar",
            tenant.name
        ))
        .into());
    }
    let key = if args.key == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .context("reading the key from stdin")?;
        s.trim().to_string()
    } else {
        args.key.trim().to_string()
    };
    let key_name = tenant.key("TAILSCALE_AUTH_KEY");
    if key.is_empty() {
        return Err(UsageError::plain("--key: the key is empty").into());
    }
    if let Err((message, hint)) = values::secret(&key, true) {
        return Err(UsageError::plain(format!("--key: {message}; {hint}")).into());
    }
    let new_text = edit::set_value(&manifest.text, &key_name, &key)?;
    let line = manifest.entries.get(&key_name).map_or(0, |e| e.line);
    let (files, _) = compare(cli, &manifest, tenant)?;
    let socket = tailscale_socket(&files[0].content);
    let tools = tools_for(&manifest, tenant, args.dry_run)?;
    let project = project(cli, tenant);
    let login = argv::tailscale_login(&tools, &project, &socket, &key);
    let mut sidecar: Vec<String> = vec!["tailscale".into()];
    if tenant.has("openclaw") {
        // openclaw lives in the sidecar's network namespace: it must be recreated with it.
        sidecar.push("openclaw".into());
    }
    let recreate = argv::recreate(&tools, &project, &sidecar, RECREATE_TIMEOUT);

    if args.dry_run {
        println!("when tailscale is running:");
        println!("+ {login}");
        println!(
            "would set {key_name} on line {line} of {} (mode 0600)",
            shown(&cli.env_file)
        );
        println!("when tailscale is running:");
        println!("+ {recreate}");
        return Ok(());
    }
    let list = guard_project(cli, &tools, tenant)?;
    let is_running = running(&list, "tailscale");
    if is_running {
        // Log in first: if the control plane refuses the key, the manifest keeps the old one.
        exec::run(&login).context("the sidecar refused the new key; the manifest is unchanged")?;
    }
    edit::write(&cli.env_file, &new_text)?;
    println!(
        "{}: {key_name} updated on line {line} of {} (mode 0600)",
        tenant.name,
        shown(&cli.env_file)
    );
    if !is_running {
        println!(
            "{}: tailscale is not running; the new key is used at the next `stackgen up {}`",
            tenant.name, tenant.name
        );
        return Ok(());
    }
    // Recreate now so the containers carry the manifest's key and a later `up` has nothing to
    // change; the node's identity stays in its state directory, a bind mount under BASE_DIR.
    exec::run(&recreate)?;
    println!(
        "{}: tailscale re-authenticated and recreated; its state under {} was kept",
        tenant.name,
        model::data_dir(&manifest.platform, tenant, "tailscale")
    );
    Ok(())
}

/// `stackgen rotate-secrets`: new values, applied in place where needed, users recreated.
pub fn cmd_rotate_secrets(cli: &Cli, args: &RotateSecretsArgs) -> Result<()> {
    let _locks = crate::output::lock::tenant_and_manifest_if(cli, &args.tenant, !args.dry_run)?;
    let (manifest, i) = load_one(cli, &args.tenant)?;
    let tenant = &manifest.tenants[i];
    let (files, cmp) = compare(cli, &manifest, tenant)?;
    if !cmp.is_clean() {
        // Recreating services would also deploy whatever else changed; do one thing at a time.
        return Err(drift_error(
            &cmp,
            &tenant.name,
            &format!(
                "nothing was rotated; run `stackgen up {} --render` first",
                tenant.name
            ),
        ));
    }
    let stack = &files[0].content;
    let plan = rotate::plan(tenant, stack, &args.names)?;
    for (name, why) in &plan.skipped {
        println!("skip   {}: {why}", tenant.key(name));
    }
    if plan.rotate.is_empty() {
        println!("{}: nothing to rotate", tenant.name);
        return Ok(());
    }
    let tools = tools_for(&manifest, tenant, args.dry_run)?;
    let project = project(cli, tenant);
    let list = if args.dry_run {
        Vec::new()
    } else {
        guard_project(cli, &tools, tenant)?
    };
    let stack_order: Vec<String> = model::services(&manifest.platform, tenant)
        .into_iter()
        .map(|s| s.name)
        .collect();

    // Everything is decided before anything changes.
    let mut steps = Vec::new();
    for item in &plan.rotate {
        if let Some(apply) = item.apply {
            let service = rotate::apply_service(apply);
            if !args.dry_run && !running(&list, service) {
                bail!(
                    "{key} can only be rotated while {service} runs (it keeps its own copy): start it with `stackgen up {t} {service}`; nothing was changed",
                    key = item.key,
                    t = tenant.name
                );
            }
            steps.push(match apply {
                crate::platform::catalog::RotationApply::PostgresAlterRole => {
                    argv::postgres_set_password(
                        &tools,
                        &project,
                        &postgres_user(stack),
                        &item.new_value,
                    )
                }
                crate::platform::catalog::RotationApply::GrafanaAdminPassword => {
                    argv::grafana_set_admin_password(&tools, &project, &item.new_value)
                }
            });
        }
    }
    let mut new_text = manifest.text.clone();
    for item in &plan.rotate {
        new_text = edit::set_value(&new_text, &item.key, &item.new_value)?;
    }
    let users = plan.users(&stack_order);
    let to_recreate: Vec<String> = if args.dry_run {
        users.clone()
    } else {
        users
            .iter()
            .filter(|s| running(&list, s))
            .cloned()
            .collect()
    };
    let recreate = argv::recreate(&tools, &project, &to_recreate, RECREATE_TIMEOUT);

    for item in &plan.rotate {
        println!(
            "rotate {} (used by {})",
            item.key,
            if item.users.is_empty() {
                "no service".to_string()
            } else {
                item.users.join(", ")
            }
        );
    }
    if args.dry_run {
        for s in &steps {
            println!("+ {s}");
        }
        println!(
            "would write {} new value(s) to {} (mode 0600)",
            plan.rotate.len(),
            shown(&cli.env_file)
        );
        if !to_recreate.is_empty() {
            println!("+ {recreate}   # only the services that are running");
        }
        return Ok(());
    }
    for s in &steps {
        exec::run(s).with_context(|| format!("{}; the manifest is unchanged", s.purpose))?;
    }
    edit::write(&cli.env_file, &new_text).with_context(|| {
        if steps.is_empty() {
            "nothing was changed".to_string()
        } else {
            "the new values were already applied inside the services but could not be saved; run rotate-secrets again for the same names".to_string()
        }
    })?;
    println!(
        "{}: {} new value(s) written to {}",
        tenant.name,
        plan.rotate.len(),
        shown(&cli.env_file)
    );
    for item in plan.rotate.iter().filter(|i| i.note.is_some()) {
        println!(
            "note   {}: {}",
            item.key,
            item.note.as_deref().unwrap_or_default()
        );
    }
    if to_recreate.is_empty() {
        println!(
            "{}: no service that uses them is running; they get the new values at the next `stackgen up`",
            tenant.name
        );
        return Ok(());
    }
    exec::run(&recreate)?;
    println!("{}: recreated {}", tenant.name, to_recreate.join(", "));
    Ok(())
}

/// The postgres role the stack creates (`POSTGRES_USER` in the rendered stack).
fn postgres_user(stack_yaml: &str) -> String {
    serde_yaml::from_str::<Value>(stack_yaml)
        .ok()
        .and_then(|v| {
            v["services"]["postgres"]["environment"]["POSTGRES_USER"]
                .as_str()
                .map(str::to_string)
        })
        .unwrap_or_else(|| "postgres".to_string())
}

/// `stackgen doctor`: every host check, one line each; exit 1 when one failed.
/// The manifest holds every secret: it must be readable by its owner only.
fn manifest_mode(path: &std::path::Path) -> Check {
    use std::os::unix::fs::PermissionsExt;
    match std::fs::metadata(path) {
        Ok(meta) if meta.permissions().mode() & 0o077 != 0 => Check::warn(
            "secrets",
            format!(
                "{} is mode {:04o}: other users of this host can read every secret in it; fix: chmod 600 {}",
                shown(path),
                meta.permissions().mode() & 0o7777,
                shown(path)
            ),
        ),
        Ok(_) => Check::ok("secrets", format!("{} is readable by its owner only", shown(path))),
        Err(e) => Check::skip("secrets", format!("{}: {e}", shown(path))),
    }
}

/// Whether the stacks directory still matches what the manifest renders (what `up` refuses on).
fn stacks_drift(cli: &Cli, m: &Manifest) -> Check {
    let mut drifted = Vec::new();
    for t in &m.tenants {
        match compare(cli, m, t) {
            Ok((_, cmp)) if cmp.is_clean() => {}
            Ok(_) => drifted.push(t.name.clone()),
            Err(e) => return Check::warn("stacks", format!("{e:#}")),
        }
    }
    match crate::render::edge::compare_all(
        m,
        &super::display(cli),
        &cli.stacks_dir,
        output::Diffs::Skip,
    ) {
        Ok(doors) => drifted.extend(
            doors
                .into_iter()
                .filter(|d| !d.cmp.is_clean())
                .map(|d| d.name),
        ),
        Err(e) => return Check::warn("stacks", format!("{e:#}")),
    }
    if drifted.is_empty() {
        Check::ok(
            "stacks",
            format!("{} matches the manifest", shown(&cli.stacks_dir)),
        )
    } else {
        Check::warn(
            "stacks",
            format!(
                "{} differs from the manifest for {} (`up` refuses them); `stackgen render --check` shows the diff, `stackgen render` writes it",
                shown(&cli.stacks_dir),
                drifted.join(", ")
            ),
        )
    }
}

pub fn cmd_doctor(cli: &Cli, args: &DoctorArgs) -> Result<()> {
    let mut checks = Vec::new();
    let manifest = match Manifest::load(&cli.env_file) {
        Ok(m) => {
            let names: Vec<&str> = m.tenants.iter().map(|t| t.name.as_str()).collect();
            checks.push(Check::ok(
                "manifest",
                format!(
                    "{} is valid: {} tenant(s): {}",
                    shown(&cli.env_file),
                    names.len(),
                    names.join(", ")
                ),
            ));
            Some(m)
        }
        Err(e) => {
            let first = e.to_string();
            checks.push(Check::fail(
                "manifest",
                first.lines().next().unwrap_or_default().to_string(),
                format!(
                    "run `stackgen render` for the full list of problems in {}",
                    shown(&cli.env_file)
                ),
            ));
            None
        }
    };
    print_last(&checks, cli, args.json);
    checks.push(manifest_mode(&cli.env_file));
    print_last(&checks, cli, args.json);
    if let Some(m) = &manifest {
        checks.push(stacks_drift(cli, m));
        print_last(&checks, cli, args.json);
    }

    let docker = find::find_docker();
    let engine_ok = match &docker {
        Ok(d) => {
            let c = preflight::engine(&Tools::fixed(&d.to_string_lossy()));
            let ok = !c.failed();
            checks.push(c);
            ok
        }
        Err(e) => {
            checks.push(Check::fail("engine", format!("{e:#}"), ""));
            false
        }
    };
    print_last(&checks, cli, args.json);
    let tools = match &docker {
        Ok(d) => match find::find_compose(d) {
            Ok(compose) => {
                checks.push(Check::ok("compose", compose.describe()));
                Some(Tools {
                    docker: d.clone(),
                    compose,
                    context: None,
                })
            }
            Err(e) => {
                checks.push(Check::fail("compose", format!("{e:#}"), ""));
                None
            }
        },
        Err(_) => {
            checks.push(Check::skip("compose", "no docker CLI"));
            None
        }
    };
    print_last(&checks, cli, args.json);

    let host = apparmor::host_state();
    checks.push(match (&host, &manifest) {
        (HostApparmor::Disabled(_), _) => Check::warn("apparmor", host.describe()),
        (HostApparmor::Enabled, Some(m)) => {
            let mut missing = Vec::new();
            // This kernel's: a tenant on another engine has its profiles loaded on that host.
            for t in m
                .tenants
                .iter()
                .filter(|t| !crate::ops::engines::is_remote(t))
            {
                for p in crate::render::apparmor::profiles(t, &model::services(&m.platform, t)) {
                    if !apparmor::is_loaded(&p.name).unwrap_or(false) {
                        missing.push(p.name);
                    }
                }
            }
            if missing.is_empty() {
                Check::ok("apparmor", "enabled; every tenant's profiles are loaded")
            } else {
                Check::warn(
                    "apparmor",
                    format!(
                        "enabled; not loaded yet (`stackgen up` loads them): {}",
                        missing.join(", ")
                    ),
                )
            }
        }
        (HostApparmor::Enabled, None) => Check::ok("apparmor", "enabled"),
    });
    print_last(&checks, cli, args.json);
    checks.push(preflight::validator(
        "caddy",
        &["version"],
        "Caddyfiles are not validated before a reload",
    ));
    print_last(&checks, cli, args.json);
    checks.push(preflight::validator(
        "apparmor_parser",
        &["--version"],
        "AppArmor profiles cannot be checked or loaded",
    ));
    print_last(&checks, cli, args.json);

    match (&manifest, &tools, engine_ok) {
        (Some(m), Some(base), true) => {
            for engine in crate::ops::engines::engines(m) {
                let t = &base.on(engine);
                if let Some(context) = engine {
                    // Each other engine the manifest places tenants on: known and reachable.
                    let first = crate::ops::engines::tenants_on(m, engine)[0];
                    let mut c = match crate::ops::engines::check_known(t, m, first) {
                        Ok(()) => preflight::engine(t),
                        Err(e) => Check::fail("engine", format!("{e:#}"), ""),
                    };
                    prefix_tenant(&mut c, &format!("context {context}"));
                    let reachable = !c.failed();
                    checks.push(c);
                    print_last(&checks, cli, args.json);
                    if !reachable {
                        continue;
                    }
                }
                let own = containers::query(t, &Select::AllTenants)?;
                let running_all = containers::query(t, &Select::Running).unwrap_or_default();
                for tenant in crate::ops::engines::tenants_on(m, engine) {
                    let services = model::services(&m.platform, tenant);
                    let names: Vec<String> = services.iter().map(|s| s.name.clone()).collect();
                    let wanted = preflight::host_ports(tenant, &services, &names);
                    let mine: Vec<Container> = own
                        .iter()
                        .filter(|c| c.tenant == tenant.name)
                        .cloned()
                        .collect();
                    let holders = |port, proto| preflight::port_holder(&running_all, port, proto);
                    let mut c = if engine.is_some() {
                        crate::ops::engines::ports(t, m, tenant, &wanted, &mine, &running_all)
                    } else {
                        preflight::ports(tenant, &wanted, &mine, &holders)
                    };
                    prefix_tenant(&mut c, &tenant.name);
                    checks.push(c);
                    print_last(&checks, cli, args.json);
                }
                // This engine's front door: it routes this engine's tenants only.
                if !crate::render::edge::tenants(m, engine).is_empty() {
                    let p = crate::ops::edge::project(m, engine, &cli.env_file, &cli.stacks_dir);
                    let edge = containers::query(t, &Select::Project(&p.name))?;
                    checks.push(crate::ops::edge::ports_check(
                        t,
                        m,
                        engine,
                        &edge,
                        &running_all,
                    ));
                    print_last(&checks, cli, args.json);
                    let s = crate::ops::edge::status(m, engine, &edge);
                    checks.push(if s.state == "running" {
                        Check::ok("edge", format!("front door {} running and healthy", p.name))
                    } else {
                        Check::warn(
                            "edge",
                            format!(
                                "front door {} is {} (`stackgen up TENANT` starts it)",
                                p.name, s.state
                            ),
                        )
                    });
                    print_last(&checks, cli, args.json);
                }
                // Another engine's host: its free space, measured through that engine.
                if let Some(c) = engine {
                    let first = crate::ops::engines::tenants_on(m, engine)[0];
                    let place = format!("{} on the host of context `{c}`", m.platform.base_dir);
                    checks.push(match crate::ops::engines::free_on_host(t, m, first) {
                        Ok(Some(free)) => preflight::disk_verdict(free, &place),
                        Ok(None) => Check::warn(
                            "disk",
                            format!("free space under {place} could not be measured (no `df` in the tenant's images, or no folder there yet)"),
                        ),
                        Err(e) => Check::warn("disk", format!("{place}: {e:#}")),
                    });
                    print_last(&checks, cli, args.json);
                }
            }
        }
        _ => {
            checks.push(Check::skip(
                "ports",
                "needs a valid manifest and a reachable engine",
            ));
            print_last(&checks, cli, args.json);
        }
    }
    if let Some(m) = &manifest {
        checks.push(preflight::disk(&m.platform.base_dir));
        print_last(&checks, cli, args.json);
    }

    if args.json {
        let list: Vec<serde_json::Value> = checks.iter().map(check_json).collect();
        println!("{}", serde_json::to_string_pretty(&list)?);
    }
    let failed = checks.iter().filter(|c| c.failed()).count();
    if failed > 0 {
        bail!("doctor: {failed} check(s) failed");
    }
    if !args.json && !cli.quiet {
        println!("doctor: no check failed");
    }
    Ok(())
}

/// `reload-proxy edge` (`edge-<context>`): write the front door's files when the manifest
/// changed them, copy its Caddyfile to its host when that is another engine's, then `caddy
/// reload` in the running door (a tenant removed from the manifest loses its routes).
fn reload_edge(cli: &Cli, manifest: &Manifest, engine: Option<&str>, dry_run: bool) -> Result<()> {
    let door = crate::render::edge::compare_door(
        manifest,
        engine,
        &super::display(cli),
        &cli.stacks_dir,
        output::Diffs::Unified,
    )?;
    // One writer of a door at a time (`up` of its tenants takes the same lock).
    let _door_lock = crate::output::lock::tenant_if(cli, &door.name, !dry_run)?;
    let (files, cmp) = (door.files, door.cmp);
    if files.is_empty() {
        return Err(UsageError::plain(format!(
            "no tenant on {} runs caddy: it has no front door",
            crate::ops::engines::describe(engine)
        ))
        .into());
    }
    let p = crate::ops::edge::project(manifest, engine, &cli.env_file, &cli.stacks_dir);
    let tools = super::run::tools(dry_run)?.on(engine);
    if !dry_run {
        let list = crate::ops::edge::guard(&tools, manifest, &p)?;
        if !list.iter().any(|c| c.is_running()) {
            bail!(
                "the front door {} is not running; nothing was changed (`stackgen up TENANT` starts it)",
                p.name
            );
        }
    }
    if !cmp.is_clean() {
        // Only the Caddyfile can change in place; a new network needs `up` (or compose up).
        let stack_changed = cmp
            .changed
            .iter()
            .any(|(path, _)| path.ends_with(crate::render::edge::stack_file(engine)));
        if dry_run {
            for (path, _) in &cmp.changed {
                println!("would write {}", shown(path));
            }
        } else {
            output::apply(&cmp, &files, &cli.stacks_dir)?;
            for (path, _) in &cmp.changed {
                println!("wrote {}", shown(path));
            }
        }
        if stack_changed {
            println!("note: the edge's networks changed; `stackgen up TENANT` (or compose up -d on {}) applies them", shown(&p.stack));
        }
    }
    if !dry_run {
        crate::ops::edge::push_caddyfile(&tools, manifest, engine, &cli.stacks_dir)?;
    }
    perform(&crate::ops::edge::reload_cmd(&tools, &p), dry_run)?;
    if !dry_run {
        println!("{}: caddy reloaded its configuration", door.name);
    }
    Ok(())
}

/// Prints the check just made, as it is made (a slow engine query shows what came before it).
/// With --json nothing is printed until the end; with -q only WARN and FAIL lines.
fn print_last(checks: &[Check], cli: &Cli, json: bool) {
    use crate::ops::preflight::Outcome;
    if let Some(c) = checks.last() {
        let worth_reading = matches!(c.outcome, Outcome::Warn(_) | Outcome::Fail { .. });
        if !json && (!cli.quiet || worth_reading) {
            println!("{c}");
        }
    }
}

/// One check as `doctor --json` prints it: `fix` is null unless the check failed with a hint.
fn check_json(c: &Check) -> serde_json::Value {
    use crate::ops::preflight::Outcome;
    let (status, detail, fix) = match &c.outcome {
        Outcome::Ok(d) => ("ok", d, None),
        Outcome::Warn(d) => ("warn", d, None),
        Outcome::Skip(d) => ("skip", d, None),
        Outcome::Fail { reason, hint } => ("fail", reason, Some(hint).filter(|h| !h.is_empty())),
    };
    serde_json::json!({ "check": c.name, "status": status, "detail": detail, "fix": fix })
}

fn prefix_tenant(check: &mut Check, tenant: &str) {
    use crate::ops::preflight::Outcome;
    match &mut check.outcome {
        Outcome::Ok(t) | Outcome::Warn(t) | Outcome::Skip(t) => *t = format!("{tenant}: {t}"),
        Outcome::Fail { reason, .. } => *reason = format!("{tenant}: {reason}"),
    }
}
