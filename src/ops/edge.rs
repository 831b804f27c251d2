//! The front door at run time: its compose project, the ownership guard before anything changes
//! it, the host-port check before `up`, starting it or reloading its routes in place (and
//! connecting a tenant's front network it lacks, without a restart), and its `status` line. What
//! it is (settings, checks, its rendered files) is `crate::render::edge`.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::manifest::{Manifest, Tenant};
use crate::ops::compose::argv::{self, Select};
use crate::ops::compose::{containers, exec, Cmd, Container, Project, Tools};
use crate::ops::preflight::{self, Check};

use crate::manifest::edge::NAME;
use crate::render::edge::*;

/// `-p edge-<deployment> --env-file <manifest> -f <stacks>/edge-stack.yml`.
pub fn project(manifest: &Manifest, env_file: &Path, stacks_dir: &Path) -> Project {
    let shown = |p: &Path| {
        let s = p.display().to_string();
        PathBuf::from(s.strip_prefix("./").map(str::to_string).unwrap_or(s))
    };
    Project {
        name: project_name(manifest),
        env_file: shown(env_file),
        stack: shown(&stacks_dir.join(format!("{NAME}-stack.yml"))),
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

/// The edge's host ports are free, or published by the edge itself.
pub fn ports_check(manifest: &Manifest, own: &[Container], running_all: &[Container]) -> Check {
    let edge = &manifest.platform.edge;
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
        if !preflight::bindable(&p) {
            let who = preflight::port_holder(running_all, p.port, p.proto)
                .map(|c| format!("container `{c}`"))
                .unwrap_or_else(|| "another process".into());
            let file = manifest.path.display().to_string();
            let file = file.strip_prefix("./").unwrap_or(&file);
            let source = match manifest.entries.get(key) {
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
        Check::ok(
            "edge-ports",
            format!(
                "{}:{} and {}:{} (tcp+udp) free or the front door's own",
                edge.bind, edge.http_port, edge.bind, edge.https_port
            ),
        )
    } else {
        Check::fail(
            "edge-ports",
            busy.join("; "),
            "stop what holds the port, or set EDGE_HTTP_PORT / EDGE_HTTPS_PORT / EDGE_BIND_ADDRESS in the manifest and run `stackgen render`",
        )
    }
}

/// The networks a container is attached to (`docker inspect`).
fn attached(tools: &Tools, id: &str) -> Result<Vec<String>> {
    let cmd = Cmd::new(
        vec![
            tools.docker.clone().into_os_string(),
            "inspect".into(),
            "--format".into(),
            "{{json .NetworkSettings.Networks}}".into(),
            id.into(),
        ],
        "docker inspect",
    );
    let out = exec::capture_ok(&cmd)?;
    let map: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(out.trim()).context("reading `docker inspect` networks")?;
    Ok(map.keys().cloned().collect())
}

/// `caddy reload` in the edge container: the routes change in place, connections stay.
pub fn reload_cmd(tools: &Tools, p: &Project) -> Cmd {
    argv::caddy_reload(tools, p)
}

/// What `up TENANT` does for the front door, before the tenant's own `compose up` (whose caddy
/// joins the tenant's front network, which the edge creates): start the edge when it is not
/// running; otherwise create the networks it lacks, attach it to the tenant's, and reload its
/// routes without a restart. `dry` prints the commands instead.
pub fn ensure(
    tools: &Tools,
    manifest: &Manifest,
    p: &Project,
    tenant: &Tenant,
    timeout: u32,
    dry: bool,
) -> Result<()> {
    let up = argv::up(tools, p, &[], timeout);
    if dry {
        println!("+ {up}   # when the front door is not running; else:");
        println!("+ {}", reload_cmd(tools, p));
        return Ok(());
    }
    let list = guard(tools, manifest, p)?;
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
        exec::run(&Cmd::new(
            vec![
                tools.docker.clone().into_os_string(),
                "network".into(),
                "connect".into(),
                net.clone().into(),
                edge.id.clone().into(),
            ],
            "docker network connect",
        ))?;
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

/// The edge as a `status` block.
pub fn status(manifest: &Manifest, list: &[Container]) -> crate::ops::status::TenantStatus {
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
            image: tenants(manifest)
                .first()
                .map(|t| crate::platform::model::image(&manifest.platform, t, SERVICE))
                .unwrap_or_default(),
            declared: true,
        });
    }
    let mut s = crate::ops::status::summarize(NAME.to_string(), true, services);
    s.deployment = manifest
        .tenants
        .first()
        .and_then(|t| t.deployment.clone())
        .unwrap_or_default();
    s
}
