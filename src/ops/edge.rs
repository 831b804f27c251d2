//! The front doors at run time, one per engine: a door's compose project, the ownership guard
//! before anything changes it, the host-port check before `up`, copying its Caddyfile to its
//! host when that is another engine's, starting it or reloading its routes in place (and
//! connecting a tenant's front network it lacks, without a restart), and its `status` line. What
//! it is (settings, checks, its rendered files) is `crate::render::edge`. Every function takes
//! the door's engine (`None`: the current context) and [`Tools`] already on that engine.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::manifest::{Manifest, Tenant};
use crate::ops::compose::argv::{self, Select};
use crate::ops::compose::{containers, exec, Cmd, Container, Project, Tools};
use crate::ops::preflight::{self, Check, HostPort};

use crate::manifest::edge::door_name;
use crate::render::edge::*;

/// `-p edge-<deployment> --env-file <manifest> -f <stacks>/edge-stack.yml` (on another engine:
/// `edge-<context>-<deployment>` and `edge-<context>-stack.yml`).
pub fn project(
    manifest: &Manifest,
    engine: Option<&str>,
    env_file: &Path,
    stacks_dir: &Path,
) -> Project {
    let shown = |p: &Path| {
        let s = p.display().to_string();
        PathBuf::from(s.strip_prefix("./").map(str::to_string).unwrap_or(s))
    };
    Project {
        name: project_name(manifest, engine),
        env_file: shown(env_file),
        stack: shown(&stacks_dir.join(stack_file(engine))),
    }
}

/// The edge's containers, after proving each one is this deployment's front door: a container
/// in the project that another manifest (or a hand-run compose) made stops the command.
pub fn guard(tools: &Tools, manifest: &Manifest, p: &Project) -> Result<Vec<Container>> {
    let list = containers::query(tools, &Select::Project(&p.name))?;
    let ours = manifest
        .tenants
        .first()
        .and_then(|t| t.deployment.as_deref());
    let foreign: Vec<&str> = list
        .iter()
        .filter(|c| ours.is_none_or(|id| c.deployment != id))
        .map(|c| c.name.as_str())
        .collect();
    if !foreign.is_empty() {
        bail!(
            "compose project `{}` holds container(s) that are not this manifest's front door: {}; nothing was done. \
             Remove them or give this manifest its own {}.",
            p.name,
            foreign.join(", "),
            crate::manifest::deployment_id::KEY
        );
    }
    Ok(list)
}

fn running(list: &[Container]) -> Option<&Container> {
    list.iter()
        .find(|c| c.service_name() == SERVICE && c.is_running())
}

/// The door's host ports are free, or published by the door itself. On another engine's host
/// the sockets are out of reach from here: that engine probes them
/// (`crate::ops::engines::unbindable`, in the door's image), or, when the probe cannot run, a
/// port is busy there when a container of that engine publishes it. `tools` are on the engine.
pub fn ports_check(
    tools: &Tools,
    manifest: &Manifest,
    engine: Option<&str>,
    own: &[Container],
    running_all: &[Container],
) -> Check {
    let edge = manifest.platform.edge_of(engine);
    let probed = match engine {
        None => Ok(Vec::new()),
        Some(_) => {
            let wanted: Vec<HostPort> = host_ports(edge).into_iter().map(|(p, _)| p).collect();
            crate::ops::engines::probe_busy(tools, &door_image(manifest, engine), &wanted, own)
        }
    };
    let held: Vec<(u16, String)> = own
        .iter()
        .filter(|c| c.is_running())
        .flat_map(|c| c.published())
        .map(|p| (p.host_port, p.protocol))
        .collect();
    let mut busy = Vec::new();
    for (p, key) in host_ports(edge) {
        if held
            .iter()
            .any(|(port, proto)| *port == p.port && proto == p.proto.as_str())
        {
            continue;
        }
        let holder = preflight::port_holder(running_all, p.port, p.proto);
        let busy_here = match (engine, &probed) {
            (None, _) => !preflight::bindable(&p),
            (Some(_), Ok(busy)) => holder.is_some() || busy.contains(&p),
            (Some(_), Err(_)) => holder.is_some(),
        };
        if busy_here {
            let who = holder
                .map(|c| format!("container `{c}`"))
                .unwrap_or_else(|| "another process".into());
            let file = manifest.path.display().to_string();
            let file = file.strip_prefix("./").unwrap_or(&file);
            let key = crate::manifest::edge::key_set_by(
                |k| manifest.entries.contains_key(k),
                engine,
                key,
            );
            let source = match manifest.entries.get(&key) {
                Some(e) => format!("{key} in {file}, line {}", e.line),
                None => format!("{key}'s default; {file} does not set it"),
            };
            busy.push(format!(
                "{}:{}/{} ({source}) is in use by {who}",
                p.ip,
                p.port,
                p.proto.as_str()
            ));
        }
    }
    if busy.is_empty() {
        let text = format!(
            "{}:{} and {}:{} (tcp+udp) free or the front door's own",
            edge.bind, edge.http_port, edge.bind, edge.https_port
        );
        let mut check = Check::ok("edge-ports", text);
        crate::ops::engines::unprobed(&mut check, &probed);
        check
    } else {
        Check::fail(
            "edge-ports",
            busy.join("; "),
            match engine {
                None => "stop what holds the port, or set EDGE_HTTP_PORT / EDGE_HTTPS_PORT / EDGE_BIND_ADDRESS in the manifest and run `stackgen render`".to_string(),
                Some(c) => format!(
                    "stop what holds the port on that host, or set {} / {} / {} in the manifest and run `stackgen render`",
                    crate::manifest::edge::key(Some(c), "HTTP_PORT"),
                    crate::manifest::edge::key(Some(c), "HTTPS_PORT"),
                    crate::manifest::edge::key(Some(c), "BIND_ADDRESS"),
                ),
            },
        )
    }
}

/// The networks a container is attached to (`docker inspect`).
fn attached(tools: &Tools, id: &str) -> Result<Vec<String>> {
    let mut v = tools.docker_argv();
    v.extend([
        "inspect".into(),
        "--format".into(),
        "{{json .NetworkSettings.Networks}}".into(),
        id.into(),
    ]);
    let cmd = Cmd::new(v, "docker inspect");
    let out = exec::capture_ok(&cmd)?;
    let map: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(out.trim()).context("reading `docker inspect` networks")?;
    Ok(map.keys().cloned().collect())
}

/// `caddy reload` in the edge container: the routes change in place, connections stay.
pub fn reload_cmd(tools: &Tools, p: &Project) -> Cmd {
    argv::caddy_reload(tools, p)
}

/// What `up TENANT` does for the front door of the tenant's engine, before the tenant's own
/// `compose up` (whose caddy joins the tenant's front network, which the door creates): on
/// another engine, copy the Caddyfile to that host; start the door when it is not running;
/// otherwise create the networks it lacks, attach it to the tenant's, and reload its routes
/// without a restart. `dry` prints the commands instead.
pub fn ensure(
    tools: &Tools,
    manifest: &Manifest,
    stacks_dir: &Path,
    p: &Project,
    tenant: &Tenant,
    timeout: u32,
    dry: bool,
) -> Result<()> {
    let engine = tenant.docker_context.as_deref();
    let up = argv::up(tools, p, &[], timeout);
    if dry {
        if engine.is_some() {
            println!(
                "+ copy {} to {}/etc on the engine's host",
                stacks_dir
                    .join(files_dir(engine))
                    .join("Caddyfile")
                    .display(),
                host_root(&manifest.platform, engine)
            );
        }
        println!("+ {up}   # when the front door is not running; else:");
        println!("+ {}", reload_cmd(tools, p));
        return Ok(());
    }
    let list = guard(tools, manifest, p)?;
    push_caddyfile(tools, manifest, engine, stacks_dir)?;
    let Some(edge) = running(&list) else {
        // Its ports were checked with the tenant's (`edge-ports`), before anything changed.
        // Bounded like the tenant's own `up` (see commands::run::up_one).
        exec::run_within(&up, std::time::Duration::from_secs(u64::from(timeout) + 5))?;
        println!(
            "{}",
            Check::ok("edge", format!("front door {} started", p.name))
        );
        return Ok(());
    };
    // `--no-recreate`: creates the networks of tenants added since it started, and leaves the
    // running container (and every other tenant's connections) alone.
    let mut v = argv::project(tools, p);
    v.extend(["up", "-d", "--no-recreate"].map(Into::into));
    exec::run(&Cmd::new(v, "docker compose up --no-recreate"))?;
    let net = front_network(tenant);
    if !attached(tools, &edge.id)?.contains(&net) {
        let mut v = tools.docker_argv();
        v.extend([
            "network".into(),
            "connect".into(),
            net.clone().into(),
            edge.id.clone().into(),
        ]);
        exec::run(&Cmd::new(v, "docker network connect"))?;
    }
    exec::run(&reload_cmd(tools, p))?;
    println!(
        "{}",
        Check::ok(
            "edge",
            format!("front door {} running; routes reloaded", p.name)
        )
    );
    Ok(())
}

/// Copies the door's Caddyfile to its folder on another engine's host (`BASE_DIR/<door>/etc`,
/// which its stack mounts): a bind mount is read on the engine's host, not on this machine. The
/// same copy as a remote tenant's config files (`crate::ops::engines::push_dir`).
/// Nothing to do for the current context's door, which mounts the stacks directory.
pub fn push_caddyfile(
    tools: &Tools,
    manifest: &Manifest,
    engine: Option<&str>,
    stacks_dir: &Path,
) -> Result<()> {
    if engine.is_none() {
        return Ok(());
    }
    if tenants(manifest, engine).is_empty() {
        return Ok(());
    }
    let image = door_image(manifest, engine);
    // Root-owned like the door itself; links on that host's side are refused (push_dir).
    crate::ops::engines::push_dir(
        tools,
        &image,
        &host_root(&manifest.platform, engine),
        Path::new("etc"),
        &stacks_dir.join(files_dir(engine)),
        &[PathBuf::from("Caddyfile")],
        (0, 0),
    )
    .map(|_| ())
}

/// A door as a `status` block, named like the door (`edge`, `edge-host-2`).
pub fn status(
    manifest: &Manifest,
    engine: Option<&str>,
    list: &[Container],
) -> crate::ops::status::TenantStatus {
    let mut services: Vec<crate::ops::status::ServiceStatus> = list
        .iter()
        .filter(|c| c.service_name() == SERVICE)
        .map(|c| crate::ops::status::from_container(c, true))
        .collect();
    if services.is_empty() {
        services.push(crate::ops::status::ServiceStatus {
            service: SERVICE.into(),
            container: String::new(),
            state: "not created".into(),
            health: crate::ops::compose::Health::None,
            ports: Vec::new(),
            image: door_image(manifest, engine),
            declared: true,
        });
    }
    let mut s = crate::ops::status::summarize(door_name(engine), true, services);
    s.deployment = manifest
        .tenants
        .first()
        .and_then(|t| t.deployment.clone())
        .unwrap_or_default();
    s
}
