//! Several Docker engines (issue 13): which engine each tenant runs on, and what stackgen does
//! differently for a tenant on an engine named by `<T>__DOCKER_CONTEXT`.
//!
//! A tenant without the key runs on the current Docker context, exactly as on a single host. A
//! tenant with it is managed only through that context: every docker and compose command line
//! carries `--context NAME` (built in one place, `Tools::docker_argv`/`compose_argv`, from
//! `Tools::on`), and the host-level work is done through the engine too, never on this
//! machine's disk: its data directories are created by a one-shot container that bind-mounts
//! `BASE_DIR/tenants/<tenant>` on that host ([`prepare_cmd`]), its ports are checked against
//! what the containers of that engine publish ([`busy_on_engine`]), its images must be on that
//! engine or pullable there ([`images`]), its data is backed up and restored through the engine
//! (`docker cp` with a throwaway container, `crate::ops::backup::engine`) and deleted there by a
//! one-shot container ([`purge_cmd`]), and its AppArmor profiles
//! are loaded on that host by the operator (`stackgen apparmor load` prints the commands).
//!
//! Moving a tenant to another engine is explicit (backup, teardown, restore): a context set on
//! a tenant whose containers or data are on another engine is refused ([`check_not_elsewhere`]).

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::error::{ManifestProblem, UsageError};
use crate::manifest::{Manifest, Tenant};
use crate::ops::compose::argv::Select;
use crate::ops::compose::{containers, exec, quote, Cmd, Container, Tools};
use crate::ops::prepare::Action;
use crate::{ops::preflight, platform::model};

use crate::manifest::values::DOCKER_CONTEXT as SETTING;

/// The file in `BASE_DIR/tenants/<tenant>/` naming the engine (its `docker info` ID) whose
/// one-shot container prepared the tenant's data there.
pub const MARKER: &str = ".stackgen-engine";

/// Where the one-shot prepare container sees the tenant's folder.
const MOUNT: &str = "/stackgen-tenant";

/// The engines the manifest's tenants run on, in manifest order: `None` is the current context.
pub fn engines(manifest: &Manifest) -> Vec<Option<&str>> {
    let mut out: Vec<Option<&str>> = Vec::new();
    for t in &manifest.tenants {
        let e = t.docker_context.as_deref();
        if !out.contains(&e) {
            out.push(e);
        }
    }
    out
}

/// The tenants of one engine (`None`: the current context), in manifest order.
pub fn tenants_on<'a>(manifest: &'a Manifest, engine: Option<&str>) -> Vec<&'a Tenant> {
    manifest
        .tenants
        .iter()
        .filter(|t| t.docker_context.as_deref() == engine)
        .collect()
}

/// Whether the tenant is managed through a named context rather than the current one.
pub fn is_remote(tenant: &Tenant) -> bool {
    tenant.docker_context.is_some()
}

/// How messages name an engine: ``context `host-2` `` or `the current context`.
pub fn describe(engine: Option<&str>) -> String {
    match engine {
        Some(c) => format!("context `{c}`"),
        None => "the current context".to_string(),
    }
}

/// A problem located at the tenant's `DOCKER_CONTEXT` line: exit status 2.
fn problem(manifest: &Manifest, tenant: &Tenant, message: String, hint: String) -> UsageError {
    let key = tenant.key(SETTING);
    UsageError::problems(vec![ManifestProblem {
        file: manifest.path.clone(),
        line: manifest.entries.get(&key).map(|e| e.line),
        key: Some(key),
        message,
        hint,
    }])
}

/// `docker context inspect NAME`: the tenant's context exists on this machine (else exit 2,
/// naming the manifest line). Nothing to check for the current context.
pub fn check_known(tools: &Tools, manifest: &Manifest, tenant: &Tenant) -> Result<()> {
    let Some(name) = tenant.docker_context.as_deref() else {
        return Ok(());
    };
    let mut v = tools.on(None).docker_argv();
    v.extend(words(&[
        "context",
        "inspect",
        "--format",
        "{{.Name}}",
        name,
    ]));
    let out = exec::capture(&Cmd::new(v, "docker context inspect"))?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    Err(problem(
        manifest,
        tenant,
        format!(
            "unknown Docker context `{name}` ({})",
            exec::first_line(&stderr).unwrap_or("`docker context inspect` failed")
        ),
        format!("create it (`docker context create {name} --docker host=ssh://USER@HOST`), or correct the name (`docker context ls`)"),
    )
    .into())
}

fn words(items: &[&str]) -> Vec<OsString> {
    items.iter().map(OsString::from).collect()
}

/// The engine's ID (`docker info`), which tells two engines apart whatever their contexts are
/// called.
pub fn engine_id(tools: &Tools) -> Result<String> {
    let mut v = tools.docker_argv();
    v.extend(words(&["info", "--format", "{{.ID}}"]));
    Ok(exec::capture_ok(&Cmd::new(v, "docker info"))?
        .trim()
        .to_string())
}

/// Whether the engine's kernel has AppArmor (`docker info` lists it in its security options).
pub fn engine_apparmor(tools: &Tools) -> Result<bool> {
    let mut v = tools.docker_argv();
    v.extend(words(&["info", "--format", "{{json .SecurityOptions}}"]));
    Ok(exec::capture_ok(&Cmd::new(v, "docker info"))?.contains("name=apparmor"))
}

/// Refuses (exit 2) a tenant whose containers run on another engine of the manifest, or whose
/// data on this machine was prepared for another engine: the context was changed on a tenant
/// that lives elsewhere. Moving it is a procedure (docs/operations.md), not an edit. An
/// engine that cannot be reached is skipped with a warning: it must not stop the others.
pub fn check_not_elsewhere(tools: &Tools, manifest: &Manifest, tenant: &Tenant) -> Result<()> {
    let here = tenant.docker_context.as_deref();
    let ours = |c: &Container| match tenant.deployment.as_deref() {
        Some(id) => c.deployment.is_empty() || c.deployment == id,
        None => true,
    };
    // The current context too: a tenant moved off it may be the only one that was there.
    let mut all = engines(manifest);
    if !all.contains(&None) {
        all.insert(0, None);
    }
    for other in all.into_iter().filter(|e| *e != here) {
        let list = match containers::query(&tools.on(other), &Select::Tenant(&tenant.name)) {
            Ok(list) => list,
            Err(e) => {
                eprintln!(
                    "stackgen: warning: {}: could not ask {} whether the tenant still runs there: {e:#}",
                    tenant.name,
                    describe(other)
                );
                continue;
            }
        };
        let names: Vec<&str> = list
            .iter()
            .filter(|c| ours(c))
            .map(|c| c.name.as_str())
            .collect();
        if !names.is_empty() {
            return Err(moved(
                manifest,
                tenant,
                &format!(
                    "tenant `{}` has containers on {} ({}), but the manifest places it on {}",
                    tenant.name,
                    describe(other),
                    names.join(", "),
                    describe(here)
                ),
            ));
        }
    }
    // This machine's disk is the current context's host (as for every single-host tenant).
    let root = PathBuf::from(model::tenant_root(&manifest.platform, tenant));
    if root.join("data").exists() {
        let marker = std::fs::read_to_string(root.join(MARKER)).ok();
        let marker = marker.as_deref().map(str::trim);
        let prepared_elsewhere = match (here, marker) {
            (_, Some(id)) => id != engine_id(tools)?,
            (Some(_), None) => true,
            (None, None) => false,
        };
        if prepared_elsewhere {
            return Err(moved(
                manifest,
                tenant,
                &format!(
                    "the data of tenant `{}` under {} belongs to another engine than {}",
                    tenant.name,
                    root.display(),
                    describe(here)
                ),
            ));
        }
    }
    Ok(())
}

fn moved(manifest: &Manifest, tenant: &Tenant, message: &str) -> anyhow::Error {
    problem(
        manifest,
        tenant,
        message.to_string(),
        format!(
            "moving a tenant to another engine is explicit: restore its previous {key}, then `stackgen backup {t}`, `stackgen teardown {t}`, set the context, `stackgen restore {t}` (docs/operations.md, \"Several Docker engines\")",
            t = tenant.name,
            key = tenant.key(SETTING),
        ),
    )
    .into()
}

/// Whether a running container on the tenant's engine, other than the tenant's own, publishes
/// the host port: the remote host's sockets cannot be probed from here, but what holds a port
/// on a Docker host is almost always one of its containers (whose name `port_holder` gives).
pub fn busy_on_engine(running: &[Container], tenant: &str, port: u16, proto: &str) -> bool {
    running.iter().filter(|c| c.tenant != tenant).any(|c| {
        c.published()
            .iter()
            .any(|p| p.host_port == port && p.protocol == proto)
    })
}

/// The port check of a tenant on another engine: [`preflight::ports_with`] where a port is
/// busy when [`busy_on_engine`] says so, and `running` (that engine's running containers) names
/// the holder.
pub fn ports(
    tenant: &Tenant,
    wanted: &[preflight::HostPort],
    own: &[Container],
    running: &[Container],
) -> preflight::Check {
    let holders = |port, proto| preflight::port_holder(running, port, proto);
    let free =
        |p: &preflight::HostPort| !busy_on_engine(running, &tenant.name, p.port, p.proto.as_str());
    preflight::ports_with(tenant, wanted, own, &holders, &free)
}

/// The images missing on the tenant's engine, after trying to pull each there; an error names
/// the first that is neither there nor pullable.
pub fn images(tools: &Tools, wanted: &[String], dry_run: bool) -> Result<Vec<String>> {
    let mut v = tools.docker_argv();
    v.extend(words(&[
        "image",
        "ls",
        "--digests",
        "--format",
        "{{.Repository}}:{{.Tag}} {{.Repository}}@{{.Digest}}",
    ]));
    let listed = exec::capture_ok(&Cmd::new(v, "docker image ls"))?;
    let present: Vec<&str> = listed.split_whitespace().collect();
    let mut missing = Vec::new();
    for image in wanted {
        // `docker image ls` writes Docker Hub images without `docker.io/library/`.
        let short = image
            .strip_prefix("docker.io/library/")
            .or_else(|| image.strip_prefix("docker.io/"))
            .unwrap_or(image);
        if present.contains(&image.as_str()) || present.contains(&short) || missing.contains(image)
        {
            continue;
        }
        missing.push(image.clone());
    }
    if dry_run {
        return Ok(missing);
    }
    for image in &missing {
        let mut v = tools.docker_argv();
        v.extend(words(&["pull", "--quiet", image]));
        exec::capture_ok(&Cmd::new(v, format!("docker pull {image}"))).map_err(|e| {
            e.context(format!(
                "{image} is not on the engine and cannot be pulled there"
            ))
        })?;
    }
    Ok(missing)
}

/// The image the one-shot prepare container runs: one the tenant's stack already needs (so it
/// is on that engine), preferring those known to have `sh`, `mkdir`, `chown` and `chmod`.
pub fn helper_image(manifest: &Manifest, tenant: &Tenant) -> Option<String> {
    let services = model::services(&manifest.platform, tenant);
    ["postgres", "redis", "caddy", "prometheus"]
        .iter()
        .find_map(|n| services.iter().find(|s| s.name == *n))
        .or_else(|| services.first())
        .map(|s| s.image.clone())
}

/// The one-shot container that prepares the tenant's data on its engine's host: it bind-mounts
/// `BASE_DIR/tenants/<tenant>` there and creates what `prepare::plan` lists with the same
/// owners and modes as `prepare::apply`, refusing a symbolic link on any path it creates
/// (inside the container a link could only point into the container anyway). It writes the
/// engine's ID to [`MARKER`]. No network, only the capabilities chown and chmod need.
pub fn prepare_cmd(
    tools: &Tools,
    manifest: &Manifest,
    tenant: &Tenant,
    actions: &[Action],
    engine_id: &str,
) -> Result<Cmd> {
    let root = PathBuf::from(model::tenant_root(&manifest.platform, tenant));
    let image = helper_image(manifest, tenant)
        .ok_or_else(|| anyhow::anyhow!("tenant `{}` runs no service", tenant.name))?;
    let mut script = String::from("set -eu\numask 022\n");
    script.push_str(
        "refuse() { echo \"stackgen: refusing to prepare $1 on this engine's host: it is a symbolic link\" >&2; exit 3; }\n",
    );
    let mut checked: Vec<PathBuf> = Vec::new();
    for a in actions {
        let rel = a.path.strip_prefix(&root).map_err(|_| {
            anyhow::anyhow!(
                "refusing to touch {}: outside {}",
                a.path.display(),
                root.display()
            )
        })?;
        let inside = Path::new(MOUNT).join(rel);
        // Parents first; the message names the path as it is on that host.
        let mut prefixes: Vec<&Path> = rel
            .ancestors()
            .filter(|p| !p.as_os_str().is_empty())
            .collect();
        prefixes.reverse();
        for prefix in prefixes {
            let p = Path::new(MOUNT).join(prefix);
            if !checked.contains(&p) {
                script.push_str(&format!(
                    "[ ! -L {} ] || refuse {}\n",
                    quote(&p.to_string_lossy()),
                    quote(&root.join(prefix).to_string_lossy())
                ));
                checked.push(p);
            }
        }
        let q = quote(&inside.to_string_lossy());
        let (own, mode) = (
            format!("{}:{}", a.owner.0, a.owner.1),
            if a.is_file { "0640" } else { "0750" },
        );
        if a.is_file {
            script.push_str(&format!(
                "mkdir -p \"$(dirname {q})\"\n[ -e {q} ] || : > {q}\n"
            ));
        } else {
            script.push_str(&format!("mkdir -p {q}\n"));
        }
        script.push_str(&format!("chown {own} {q}\nchmod {mode} {q}\n"));
    }
    script.push_str(&format!(
        "printf '%s\\n' {} > {}/{MARKER}\n",
        quote(engine_id),
        MOUNT
    ));
    let mut v = one_shot_argv(tools, &["CHOWN", "DAC_OVERRIDE", "FOWNER"]);
    v.push("-v".into());
    v.push(format!("{}:{MOUNT}", root.display()).into());
    v.extend(words(&[&image, "-c", &script]));
    Ok(Cmd::new(
        v,
        "prepare the data directories on the engine's host",
    ))
}

/// The start of every one-shot container stackgen runs on a tenant's engine (the prepare
/// container, backup's listing): removed when done, no network, root with only `caps`, no new
/// privileges, `/bin/sh` as its program (its `-c` script follows the image).
pub fn one_shot_argv(tools: &Tools, caps: &[&str]) -> Vec<OsString> {
    let mut v = tools.docker_argv();
    v.extend(words(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--user",
        "0:0",
        "--cap-drop",
        "ALL",
    ]));
    for cap in caps {
        v.extend(words(&["--cap-add", cap]));
    }
    v.extend(words(&[
        "--security-opt",
        "no-new-privileges",
        "--entrypoint",
        "/bin/sh",
    ]));
    v
}

/// Runs [`prepare_cmd`]'s container. A symbolic link it refused is bad ground, as on a single
/// host: exit 2 with the container's message; any other failure keeps docker's status.
pub fn run_prepare(cmd: &Cmd) -> Result<()> {
    let out = exec::capture(cmd)?;
    if out.status.success() {
        return Ok(());
    }
    Err(one_shot_failed(cmd, &out))
}

/// The error of a one-shot container that failed: its own refusal (exit 3, `stackgen:
/// refusing ...`) is bad ground, exit 2; anything else keeps docker's status.
fn one_shot_failed(cmd: &Cmd, out: &std::process::Output) -> anyhow::Error {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let first = exec::first_line(&stderr).unwrap_or("the container failed");
    if out.status.code() == Some(3) && first.starts_with("stackgen: refusing") {
        return UsageError::plain(format!(
            "{}; nothing outside the tenant's folder was touched. Replace the link with a real directory on that host",
            first.trim_start_matches("stackgen: ")
        ))
        .into();
    }
    anyhow::Error::new(crate::error::CommandFailed {
        what: cmd.purpose.clone(),
        code: exec::status_code(out.status),
    })
    .context(first.to_string())
}

/// The one-shot container that deletes the tenant's data on its engine's host:
/// `BASE_DIR/tenants/<tenant>/data`, or with `service` only `data/<service>` (`teardown
/// --purge-data`, `remove-service --purge-data`, `restore --replace`). It bind-mounts only the
/// tenant's folder (`--mount`, so a missing folder is an error instead of being created), runs
/// [`purge_script`] in an image the tenant already needs, with no network and only the
/// capabilities a root `rm -rf` of files the services own needs. [`run_purge`] runs it.
pub fn purge_cmd(
    tools: &Tools,
    manifest: &Manifest,
    tenant: &Tenant,
    service: Option<&str>,
) -> Result<Cmd> {
    use crate::ops::teardown::guard;
    // The same checks as a local purge: BASE_DIR absolute and not `/`, plain names.
    let root = guard::tenant_root(&guard::base_dir(&manifest.platform.base_dir)?, &tenant.name)?;
    let rel = match service {
        None => "data".to_string(),
        Some(s) => {
            crate::manifest::values::tenant_name(s).map_err(|(m, h)| {
                UsageError::plain(format!("refusing to touch service data: {m} ({h})"))
            })?;
            format!("data/{s}")
        }
    };
    let image = helper_image(manifest, tenant)
        .ok_or_else(|| anyhow::anyhow!("tenant `{}` runs no service", tenant.name))?;
    let mut v = one_shot_argv(tools, &["DAC_OVERRIDE", "FOWNER"]);
    v.push("--mount".into());
    v.push(format!("type=bind,src={},dst={MOUNT}", root.display()).into());
    let script = purge_script(MOUNT, &root.to_string_lossy(), &rel);
    v.extend(words(&[&image, "-c", &script]));
    Ok(Cmd::new(v, "delete the data on the engine's host"))
}

/// The script of [`purge_cmd`]: `rel` under `mount` is deleted only when it is a real directory,
/// and neither it nor `data` is a symbolic link (inside the container a link resolves in the
/// container's own root, so it could not reach that host's other folders; it is refused all
/// the same, as `prepare_cmd` and a local purge refuse one). Messages name `shown_root`, the
/// folder as it is on that host. Refusals exit 3 with `stackgen: refusing` ([`run_prepare`]
/// makes them exit 2).
pub fn purge_script(mount: &str, shown_root: &str, rel: &str) -> String {
    let mut s = String::from("set -eu\n");
    s.push_str("refuse() { echo \"stackgen: refusing to delete $1 on this engine's host: $2\" >&2; exit 3; }\n");
    s.push_str(&format!("cd {}\n", quote(mount)));
    let mut prefix = String::new();
    for part in rel.split('/') {
        if !prefix.is_empty() {
            prefix.push('/');
        }
        prefix.push_str(part);
        s.push_str(&format!(
            "[ ! -L {p} ] || refuse {shown} 'it is a symbolic link'\n",
            p = quote(&prefix),
            shown = quote(&format!("{shown_root}/{prefix}"))
        ));
    }
    let (r, shown) = (quote(rel), quote(&format!("{shown_root}/{rel}")));
    s.push_str(&format!("[ -e {r} ] || exit 0\n"));
    s.push_str(&format!(
        "[ -d {r} ] || refuse {shown} 'it is not a directory'\n"
    ));
    s.push_str(&format!("rm -rf -- {r}\necho {PURGED}\n"));
    s
}

/// What [`purge_script`] prints once it has deleted the folder.
const PURGED: &str = "stackgen-purged";

/// Runs [`purge_cmd`]'s container: `Ok(true)` when it deleted the folder, `Ok(false)` when
/// there was none on that host (not even the tenant's folder). A refusal is exit 2, as
/// [`run_prepare`]'s.
pub fn run_purge(cmd: &Cmd) -> Result<bool> {
    let out = exec::capture(cmd)?;
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .any(|l| l == PURGED));
    }
    if String::from_utf8_lossy(&out.stderr).contains("bind source path does not exist") {
        return Ok(false);
    }
    Err(one_shot_failed(cmd, &out))
}

/// The one-shot container that measures the free space where `path` lives on the engine's host:
/// `df -Pk` of it, mounted read-only (no capability, no network).
pub fn df_cmd(tools: &Tools, path: &str, image: &str) -> Cmd {
    let mut v = one_shot_argv(tools, &[]);
    v.push("--mount".into());
    v.push(format!("type=bind,src={path},dst={MOUNT},readonly").into());
    v.extend(words(&[image, "-c", &format!("df -Pk {MOUNT}")]));
    Cmd::new(v, "measure the free space on the engine's host")
}

/// The bytes available in `df -Pk` output (its last line's fourth column, in KiB); `None` when
/// the output is not df's.
pub fn parse_df(out: &str) -> Option<u64> {
    let mut lines = out.lines().filter(|l| !l.trim().is_empty());
    if !lines.next()?.starts_with("Filesystem") {
        return None;
    }
    let kib: u64 = lines.next_back()?.split_whitespace().nth(3)?.parse().ok()?;
    Some(kib.saturating_mul(1024))
}

/// Bytes free on the tenant's engine's host where its folder is (or, before it exists there,
/// where `BASE_DIR` is): `Ok(None)` when neither can be measured (neither exists there yet, or
/// the image has no `df`); the caller says so and goes on, as a local check does.
pub fn free_on_host(tools: &Tools, manifest: &Manifest, tenant: &Tenant) -> Result<Option<u64>> {
    let Some(image) = helper_image(manifest, tenant) else {
        return Ok(None);
    };
    let root = model::tenant_root(&manifest.platform, tenant);
    for path in [root.as_str(), manifest.platform.base_dir.as_str()] {
        let out = exec::capture(&df_cmd(tools, path, &image))?;
        if out.status.success() {
            return Ok(parse_df(&String::from_utf8_lossy(&out.stdout)));
        }
        if !String::from_utf8_lossy(&out.stderr).contains("bind source path does not exist") {
            return Ok(None);
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(extra: &str) -> Manifest {
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/.env.example"))
            .unwrap()
            + extra;
        Manifest::from_text(Path::new(".env"), &text).unwrap()
    }

    #[test]
    fn engines_group_the_tenants() {
        let m = manifest("TEAM_B__DOCKER_CONTEXT=host-2\n");
        assert_eq!(engines(&m), vec![None, Some("host-2")]);
        let remote: Vec<&str> = tenants_on(&m, Some("host-2"))
            .iter()
            .map(|t| t.name.as_str())
            .collect();
        assert_eq!(remote, ["team-b"]);
        assert!(tenants_on(&m, None).iter().all(|t| !is_remote(t)));
    }

    #[test]
    fn the_prepare_container_stays_in_the_tenant_tree() {
        let m = manifest("TEAM_B__DOCKER_CONTEXT=host-2\n");
        let t = m.tenant("team-b").unwrap();
        let actions = crate::ops::prepare::plan(&m, t).unwrap();
        let tools = Tools::fixed("docker").on(Some("host-2"));
        let cmd = prepare_cmd(&tools, &m, t, &actions, "ENGINE:ID").unwrap();
        let line = cmd.shell_line();
        assert!(
            line.starts_with("docker --context host-2 run --rm --network none"),
            "{line}"
        );
        let root = model::tenant_root(&m.platform, t);
        assert!(line.contains(&format!("-v {root}:{MOUNT} ")), "{line}");
        let script = cmd.argv.last().unwrap().to_string_lossy().into_owned();
        // Every path the container touches is under its mount, and each is checked for links.
        for l in script.lines().filter(|l| l.starts_with("chown ")) {
            assert!(l.contains(&format!(" {MOUNT}/data/")), "{l}");
        }
        assert!(
            script.contains(&format!("[ ! -L {MOUNT}/data ] || refuse {root}/data\n")),
            "{script}"
        );
        assert_eq!(
            script.matches("chown ").count(),
            actions.len(),
            "one owner per planned path"
        );
        assert!(
            script.ends_with(&format!("> {MOUNT}/{MARKER}\n")),
            "{script}"
        );
        let outside = Action {
            path: "/etc/passwd".into(),
            is_file: true,
            owner: (1, 1),
        };
        assert!(prepare_cmd(&tools, &m, t, &[outside], "x").is_err());
    }

    #[test]
    fn a_port_is_busy_only_when_another_container_publishes_it() {
        let c: Container = serde_json::from_str(
            r#"{"id":"1","name":"web","tenant":"","service":"","project":"","compose_service":"","image":"i","state":"running","status":"Up","ports":"0.0.0.0:20100->80/tcp"}"#,
        )
        .unwrap();
        let running = [c];
        assert!(busy_on_engine(&running, "team-b", 20100, "tcp"));
        assert!(!busy_on_engine(&running, "team-b", 20100, "udp"));
        assert!(!busy_on_engine(&running, "team-b", 20101, "tcp"));
        let mut own = running[0].clone();
        own.tenant = "team-b".into();
        assert!(!busy_on_engine(&[own], "team-b", 20100, "tcp"));
    }

    #[test]
    fn the_purge_container_mounts_only_the_tenant_folder() {
        let m = manifest("TEAM_B__DOCKER_CONTEXT=host-2\n");
        let t = m.tenant("team-b").unwrap();
        let tools = Tools::fixed("docker").on(Some("host-2"));
        let root = model::tenant_root(&m.platform, t);
        let line = purge_cmd(&tools, &m, t, None).unwrap().shell_line();
        assert!(
            line.starts_with("docker --context host-2 run --rm --network none --user 0:0 --cap-drop ALL --cap-add DAC_OVERRIDE --cap-add FOWNER"),
            "{line}"
        );
        assert!(
            line.contains(&format!(" --mount type=bind,src={root},dst={MOUNT} ")),
            "{line}"
        );
        assert_eq!(line.matches("--mount").count(), 1, "{line}");
        assert!(!line.contains(" -v "), "{line}");
        let svc = purge_cmd(&tools, &m, t, Some("my-app")).unwrap();
        let script = svc.argv.last().unwrap().to_string_lossy().into_owned();
        assert!(script.contains("rm -rf -- data/my-app\n"), "{script}");
        assert!(purge_cmd(&tools, &m, t, Some("../x")).is_err());
    }

    /// The purge script itself, run by this machine's `sh` on a folder standing for the mount:
    /// it deletes the data folder and nothing beside it (and says so), and refuses a link as
    /// `data` or as the service's folder (exit 3, the target untouched).
    #[test]
    fn the_purge_script_deletes_only_the_real_data_folder() {
        let run = |mount: &Path, rel: &str| {
            std::process::Command::new("sh")
                .arg("-c")
                .arg(purge_script(
                    &mount.to_string_lossy(),
                    "/srv/x/tenants/t",
                    rel,
                ))
                .output()
                .unwrap()
        };
        let tmp = tempfile::tempdir().unwrap();
        let t = tmp.path().join("t");
        std::fs::create_dir_all(t.join("data/postgres/base")).unwrap();
        std::fs::write(t.join("data/postgres/base/1"), "rows").unwrap();
        std::fs::write(t.join(MARKER), "id").unwrap();
        let precious = tmp.path().join("precious");
        std::fs::create_dir_all(&precious).unwrap();
        std::os::unix::fs::symlink(&precious, t.join("data/link")).unwrap();
        let out = run(&t, "data");
        assert!(out.status.success(), "{out:?}");
        assert_eq!(String::from_utf8_lossy(&out.stdout), format!("{PURGED}\n"));
        assert!(!t.join("data").exists() && t.join(MARKER).exists() && precious.exists());
        // Nothing there: nothing to do, nothing said.
        let out = run(&t, "data");
        assert!(out.status.success() && out.stdout.is_empty(), "{out:?}");

        std::os::unix::fs::symlink(&precious, t.join("data")).unwrap();
        let out = run(&t, "data");
        assert_eq!(out.status.code(), Some(3));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.starts_with("stackgen: refusing to delete /srv/x/tenants/t/data on this engine's host: it is a symbolic link"),
            "{err}"
        );
        std::fs::remove_file(t.join("data")).unwrap();
        std::fs::create_dir(t.join("data")).unwrap();
        std::os::unix::fs::symlink(&precious, t.join("data/my-app")).unwrap();
        assert_eq!(run(&t, "data/my-app").status.code(), Some(3));
        std::fs::write(t.join("data/file"), "x").unwrap();
        assert_eq!(run(&t, "data/file").status.code(), Some(3));
        assert!(precious.exists() && t.join("data/file").exists());
    }

    #[test]
    fn df_output_gives_the_available_bytes() {
        let out = "Filesystem     1024-blocks      Used Available Capacity Mounted on\n/dev/sda1        102400000  51200000  40960   56% /stackgen-tenant\n";
        assert_eq!(parse_df(out), Some(40960 * 1024));
        for bad in [
            "",
            "sh: df: not found\n",
            "Filesystem 1024-blocks\n/dev/x 1 2\n",
        ] {
            assert_eq!(parse_df(bad), None, "{bad:?}");
        }
        let tools = Tools::fixed("docker").on(Some("host-2"));
        let line = df_cmd(&tools, "/srv/x/tenants/t", "img:1").shell_line();
        assert!(
            line.ends_with(&format!(
                "--cap-drop ALL --security-opt no-new-privileges --entrypoint /bin/sh --mount type=bind,src=/srv/x/tenants/t,dst={MOUNT},readonly img:1 -c 'df -Pk {MOUNT}'"
            )),
            "{line}"
        );
    }
}
