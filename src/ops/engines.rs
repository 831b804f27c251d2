//! Several Docker engines (issue 13): which engine each tenant runs on, and what stackgen does
//! differently for a tenant on an engine named by `<T>__DOCKER_CONTEXT`.
//!
//! A tenant without the key runs on the current Docker context, exactly as on a single host. A
//! tenant with it is managed only through that context: every docker and compose command line
//! carries `--context NAME` (built in one place, `Tools::docker_argv`/`compose_argv`, from
//! `Tools::on`), and the host-level work is done through the engine too, never on this
//! machine's disk: its data directories are created by a one-shot container that bind-mounts
//! `BASE_DIR/tenants/<tenant>` on that host ([`prepare_cmd`]), its config files are copied to
//! `BASE_DIR/tenants/<tenant>/config` there, where its stack file mounts them from
//! ([`push_config`], with [`push_dir`], which works for any folder), its ports are checked against
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
    context_unknown(tools, name)?.map_or(Ok(()), |why| {
        Err(problem(
            manifest,
            tenant,
            format!("unknown Docker context `{name}` ({why})"),
            format!("create it (`docker context create {name} --docker host=ssh://USER@HOST`), or correct the name (`docker context ls`)"),
        )
        .into())
    })
}

/// `docker context inspect NAME` for a context no tenant line names (a front door left on an
/// engine its tenants moved away from): exit 2 when this machine does not know it.
pub fn check_context(tools: &Tools, name: &str) -> Result<()> {
    context_unknown(tools, name)?.map_or(Ok(()), |why| {
        Err(UsageError::plain(format!(
            "unknown Docker context `{name}` ({why}); nothing was done. `docker context ls` lists them"
        ))
        .into())
    })
}

/// Why this machine does not know context `name` (`docker context inspect`'s first line), or
/// `None` when it does.
fn context_unknown(tools: &Tools, name: &str) -> Result<Option<String>> {
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
        return Ok(None);
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    Ok(Some(
        exec::first_line(&stderr)
            .unwrap_or("`docker context inspect` failed")
            .to_string(),
    ))
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
/// busy when that host cannot bind it ([`unbindable`], in one of the tenant's images) or, when
/// that probe cannot run, when a container of that engine publishes it ([`busy_on_engine`]);
/// `running` (that engine's running containers) names the holder.
pub fn ports(
    tools: &Tools,
    manifest: &Manifest,
    tenant: &Tenant,
    wanted: &[preflight::HostPort],
    own: &[Container],
    running: &[Container],
) -> preflight::Check {
    let probed = helper_image(manifest, tenant)
        .ok_or_else(|| anyhow::anyhow!("the tenant runs no service"))
        .and_then(|image| probe_busy(tools, &image, wanted, own));
    let holders = |port, proto| preflight::port_holder(running, port, proto);
    let on_engine =
        |p: &preflight::HostPort| busy_on_engine(running, &tenant.name, p.port, p.proto.as_str());
    let mut check = match &probed {
        Ok(busy) => preflight::ports_with(tenant, wanted, own, &holders, &|p| {
            !busy.contains(p) && !on_engine(p)
        }),
        Err(_) => preflight::ports_with(tenant, wanted, own, &holders, &|p| !on_engine(p)),
    };
    unprobed(&mut check, &probed);
    check
}

/// [`unbindable`] for the ports of `wanted` that `own` running containers do not already
/// publish (those are the tenant's or the door's own: bound, and fine).
pub fn probe_busy(
    tools: &Tools,
    image: &str,
    wanted: &[preflight::HostPort],
    own: &[Container],
) -> Result<Vec<preflight::HostPort>> {
    let held = |p: &preflight::HostPort| {
        own.iter().filter(|c| c.is_running()).any(|c| {
            c.published()
                .iter()
                .any(|x| x.host_port == p.port && x.protocol == p.proto.as_str())
        })
    };
    let to_probe: Vec<preflight::HostPort> = wanted.iter().filter(|p| !held(p)).cloned().collect();
    unbindable(tools, image, &to_probe)
}

/// A passed port check of another engine's host becomes a warning when [`probe_busy`] could not
/// run: only that engine's containers were asked, not the host.
pub fn unprobed<T>(check: &mut preflight::Check, probed: &Result<T>) {
    if let (Err(e), preflight::Outcome::Ok(text)) = (probed, &check.outcome) {
        check.outcome = preflight::Outcome::Warn(format!(
            "{text} among that engine's containers only: the probe of that host's ports could not run ({})",
            exec::first_line(&format!("{e:#}")).unwrap_or_default()
        ));
    }
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
    one_shot_running(tools, caps, "/bin/sh")
}

/// [`one_shot_argv`] with another program (its arguments follow the image).
pub fn one_shot_running(tools: &Tools, caps: &[&str], program: &str) -> Vec<OsString> {
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
        program,
    ]));
    v
}

/// What `prepare`, `up`, `add-service` and `restore` do for a tenant on another engine, in one
/// place: create `actions` on its engine's host ([`prepare_cmd`], marked with that engine's
/// ID), then copy its config files there ([`push_config`]), which its stack mounts.
pub fn prepare_on_host(
    tools: &Tools,
    manifest: &Manifest,
    tenant: &Tenant,
    actions: &[Action],
    stacks_dir: &Path,
) -> Result<Pushed> {
    let id = engine_id(tools)?;
    run_prepare(&prepare_cmd(tools, manifest, tenant, actions, &id)?)?;
    push_config(tools, manifest, tenant, stacks_dir)
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

/// Refuses (exit 2), before anything changes, a purge whose folder on the engine's host is a
/// symbolic link: `data`, or `data/<service>`. Looked at through the engine with the read-only
/// helper container (nothing runs in it); a missing folder is fine (nothing to delete).
pub fn refuse_linked_data(
    tools: &Tools,
    manifest: &Manifest,
    tenant: &Tenant,
    service: Option<&str>,
) -> Result<()> {
    let Some(helper) = crate::ops::backup::engine::Helper::create(tools, manifest, tenant, false)?
    else {
        return Ok(());
    };
    let root = model::tenant_root(&manifest.platform, tenant);
    let mut rels = vec!["data".to_string()];
    rels.extend(service.map(|s| format!("data/{s}")));
    for rel in rels {
        if helper.list(&rel)?.is_some_and(|l| l.is_link) {
            return Err(UsageError::plain(format!(
                "refusing to delete {root}/{rel} on the host of context `{}`: it is a symbolic link; nothing was changed. Replace it with a real folder there",
                tools.context.as_deref().unwrap_or_default()
            ))
            .into());
        }
    }
    Ok(())
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

/// What [`push_dir`] did on the engine's host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pushed {
    /// How many files were copied.
    pub files: usize,
    /// Entries under the target folder that the copy no longer has, removed (paths relative to
    /// that folder).
    pub removed: Vec<String>,
    /// Why stale entries could not be removed (they stay; the copy itself succeeded).
    pub stale_left: Option<String>,
}

/// Where [`push_dir`]'s helper container sees `host_root` (the backup helper's path).
const PUSH_MOUNT: &str = crate::ops::backup::engine::MOUNT;

/// Copies `files` (paths relative to `local_dir` on this machine) to the folder `into`
/// (relative) under `host_root` (absolute on the engine's host), through the engine only: this
/// machine's disk is read below `local_dir` and nowhere else, and nothing is written to it.
///
/// - `image`: any image on that engine; nothing runs in it for the copy (`docker cp` into a
///   created, never started [`Helper`](crate::ops::backup::engine::Helper) that bind-mounts
///   `host_root`, which the engine creates if missing). `host_root` itself is resolved by the
///   engine like any bind-mount source: it must be a folder stackgen owns there (a tenant's
///   root, `BASE_DIR/edge-<context>`), not one a container can replace.
/// - Every folder from `into` down gets `owner` and mode 0755, every file `owner` and 0644: what
///   `render` gives generated files here (`output::GENERATED_MODE`), so a service running as any
///   UID reads them and none may write them.
/// - The target is first read back (`docker cp` out, which never follows a link): a symbolic
///   link anywhere from `into` down is refused (exit 2, naming it as a path of that host) and
///   nothing is copied. One planted after that check is still not followed: the engine's
///   extraction refuses to put a folder over a non-folder ("cannot overwrite non-directory"),
///   and resolves every name inside the helper's own root, never on that host (tried on a real
///   engine: the link's target stays empty).
/// - Entries there that `files` no longer has (a service removed) are deleted with `rm -rf` in a
///   one-shot container of `image`, before the copy; an image without `rm` leaves them, which
///   [`Pushed::stale_left`] says.
/// - A local file that is missing or is a link: exit 2, nothing copied.
pub fn push_dir(
    tools: &Tools,
    image: &str,
    host_root: &str,
    into: &Path,
    local_dir: &Path,
    files: &[PathBuf],
    owner: (u32, u32),
) -> Result<Pushed> {
    use std::path::Component;
    let plain = |p: &Path| {
        !p.as_os_str().is_empty() && p.components().all(|c| matches!(c, Component::Normal(_)))
    };
    anyhow::ensure!(
        host_root.starts_with('/') && plain(into),
        "push_dir: {host_root} must be absolute and {} a plain relative path",
        into.display()
    );
    let mut contents = Vec::with_capacity(files.len());
    for rel in files {
        anyhow::ensure!(
            plain(rel),
            "push_dir: {} is not a plain relative path",
            rel.display()
        );
        let path = local_dir.join(rel);
        crate::output::fsafe::check_below(local_dir, &path)?;
        let Some(mut f) = crate::output::fsafe::open_read_checked(&path)? else {
            return Err(UsageError::plain(format!(
                "{} is missing; nothing was copied to the engine's host. Run `stackgen render` first",
                path.display()
            ))
            .into());
        };
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut f, &mut bytes)
            .map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
        contents.push((rel.clone(), bytes));
    }
    let tar = push_tar(into, &contents, owner)?;
    let helper = crate::ops::backup::engine::Helper::create_at(tools, host_root, image, true)?
        .expect("a writable helper is always created");
    let on_host = |rel: &str| {
        let p = Path::new(host_root).join(into);
        if rel.is_empty() {
            p.display().to_string()
        } else {
            p.join(rel).display().to_string()
        }
    };
    let existing = helper
        .copy_out(&into.to_string_lossy(), &mut |r| push_listing(r))?
        .unwrap_or_default();
    if let Some((rel, _)) = existing
        .iter()
        .find(|(_, kind)| *kind == tar::EntryType::Symlink)
    {
        return Err(UsageError::plain(format!(
            "refusing to copy files to {} on the host of {}: {} is a symbolic link; nothing was copied. Replace the link with a real directory on that host",
            on_host(""),
            describe(tools.context.as_deref()),
            on_host(rel)
        ))
        .into());
    }
    let stale = push_stale(&existing, &contents);
    let mut pushed = Pushed {
        files: contents.len(),
        ..Pushed::default()
    };
    if !stale.is_empty() {
        let mut v = one_shot_running(tools, &["DAC_OVERRIDE"], "rm");
        v.extend(words(&["--label", "com.stackgen.helper=push", "-v"]));
        v.push(format!("{host_root}:{PUSH_MOUNT}").into());
        v.extend(words(&[image, "-rf", "--"]));
        let base = Path::new(PUSH_MOUNT).join(into);
        v.extend(stale.iter().map(|s| base.join(s).into_os_string()));
        let out = exec::capture(&Cmd::new(v, "remove stale files on the engine's host"))?;
        if out.status.success() {
            pushed.removed = stale;
        } else {
            let stderr = String::from_utf8_lossy(&out.stderr);
            pushed.stale_left = Some(format!(
                "{} stale entr(ies) under {} were not removed ({}): {}",
                stale.len(),
                on_host(""),
                exec::first_line(&stderr).unwrap_or("`rm` failed in the helper image"),
                stale.join(", ")
            ));
        }
    }
    helper.copy_in(&mut |w| Ok(std::io::Write::write_all(w, &tar)?))?;
    Ok(pushed)
}

/// The tar [`push_dir`] extracts at the helper's mount: `into/`, every folder on the way to a
/// file (parents first), then the files, all owned by `owner` (`docker cp -a` keeps it).
fn push_tar(into: &Path, files: &[(PathBuf, Vec<u8>)], owner: (u32, u32)) -> Result<Vec<u8>> {
    let mtime = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut dirs: Vec<PathBuf> = Vec::new();
    for (rel, _) in files {
        for a in rel.ancestors().skip(1) {
            // `into.join("")` would end in a slash: the same folder under another name.
            let d = into.components().chain(a.components()).collect::<PathBuf>();
            if !dirs.contains(&d) {
                dirs.push(d);
            }
        }
    }
    for a in into
        .ancestors()
        .skip(1)
        .filter(|a| !a.as_os_str().is_empty())
    {
        if !dirs.contains(&a.to_path_buf()) {
            dirs.push(a.to_path_buf());
        }
    }
    dirs.sort();
    let header = |kind, mode, size| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_uid(u64::from(owner.0));
        h.set_gid(u64::from(owner.1));
        h.set_mtime(mtime);
        h.set_size(size);
        h
    };
    let mut b = tar::Builder::new(Vec::new());
    for d in &dirs {
        let mut h = header(tar::EntryType::Directory, 0o755, 0);
        b.append_data(&mut h, d, std::io::empty())?;
    }
    for (rel, bytes) in files {
        let mut h = header(
            tar::EntryType::Regular,
            crate::output::GENERATED_MODE,
            bytes.len() as u64,
        );
        b.append_data(&mut h, into.join(rel), bytes.as_slice())?;
    }
    Ok(b.into_inner()?)
}

/// Every entry of a `docker cp HELPER:PATH -` stream, relative to `PATH` (`""` is `PATH`
/// itself), with its type.
fn push_listing(stream: &mut dyn std::io::Read) -> Result<Vec<(String, tar::EntryType)>> {
    let mut out = Vec::new();
    let mut archive = tar::Archive::new(stream);
    for entry in archive.entries()? {
        let entry = entry?;
        let path = entry.path()?.into_owned();
        let rel: PathBuf = path.components().skip(1).collect();
        out.push((
            rel.to_string_lossy().into_owned(),
            entry.header().entry_type(),
        ));
    }
    Ok(out)
}

/// What [`push_dir`] removes before its copy: the topmost entries that are neither a wanted
/// file (as a file) nor a folder on the way to one (as a folder).
fn push_stale(existing: &[(String, tar::EntryType)], files: &[(PathBuf, Vec<u8>)]) -> Vec<String> {
    let wanted_file = |p: &str| files.iter().any(|(f, _)| f == Path::new(p));
    let wanted_dir = |p: &str| {
        p.is_empty()
            || files
                .iter()
                .any(|(f, _)| f.ancestors().skip(1).any(|a| a == Path::new(p)))
    };
    let mut stale: Vec<String> = Vec::new();
    for (p, kind) in existing {
        let ok = if kind.is_dir() {
            wanted_dir(p)
        } else {
            kind.is_file() && wanted_file(p)
        };
        let under_stale = stale.iter().any(|s| Path::new(p).starts_with(s));
        if !ok && !under_stale {
            stale.push(p.clone());
        }
    }
    stale
}

/// Copies the tenant's generated files (config files and AppArmor profiles, as rendered into
/// `<stacks-dir>/<tenant>/`) to `BASE_DIR/tenants/<tenant>/config` on its engine's host, where
/// its stack file mounts them from (`model::config_source`): [`push_dir`] with the files the
/// manifest renders for it, read from the stacks directory (what the committed stack file goes
/// with), root-owned as on a single host.
pub fn push_config(
    tools: &Tools,
    manifest: &Manifest,
    tenant: &Tenant,
    stacks_dir: &Path,
) -> Result<Pushed> {
    let (image, files) = config_files(manifest, tenant)?;
    let local = stacks_dir.join(&tenant.name);
    crate::output::fsafe::check_below(stacks_dir, &local)?;
    push_dir(
        tools,
        &image,
        &model::tenant_root(&manifest.platform, tenant),
        Path::new(model::CONFIG_DIR),
        &local,
        &files,
        (0, 0),
    )
}

/// The image [`push_config`] uses and the files it copies (relative to the tenant's folder).
pub fn config_files(manifest: &Manifest, tenant: &Tenant) -> Result<(String, Vec<PathBuf>)> {
    let image = helper_image(manifest, tenant)
        .ok_or_else(|| anyhow::anyhow!("tenant `{}` runs no service", tenant.name))?;
    let display = crate::render::Display {
        manifest: String::new(),
        stacks_dir: String::new(),
    };
    let rendered = crate::render::compose::render_tenant(manifest, tenant, &display)?;
    let files = rendered
        .iter()
        .skip(1) // the stack file, beside the folder
        .filter_map(|f| {
            f.path
                .strip_prefix(&tenant.name)
                .ok()
                .map(Path::to_path_buf)
        })
        .collect();
    Ok((image, files))
}

/// One line for `up` and `prepare`: what [`push_config`] did (and what it left).
pub fn describe_push(manifest: &Manifest, tenant: &Tenant, pushed: &Pushed) -> String {
    let mut s = format!(
        "{} config file(s) copied to {} on the engine's host",
        pushed.files,
        model::config_source(&manifest.platform, tenant)
    );
    if !pushed.removed.is_empty() {
        s.push_str(&format!(", {} stale removed", pushed.removed.len()));
    }
    if let Some(left) = &pushed.stale_left {
        s.push_str(&format!("; {left}"));
    }
    s
}

/// The ports among `wanted` that cannot be bound on the engine's host, whatever holds them (a
/// container of that engine, or any other process there): a throwaway container on that engine
/// publishes them all and runs `true` (`image` must be there and have `/bin/sh`). Publishing is
/// done by the engine on its own host before the program starts, and one port it cannot bind
/// fails the start naming that port; that port is set aside and the rest tried again, so the
/// probe costs one start per busy port plus one.
pub fn unbindable(
    tools: &Tools,
    image: &str,
    wanted: &[preflight::HostPort],
) -> Result<Vec<preflight::HostPort>> {
    let mut left: Vec<&preflight::HostPort> = wanted.iter().collect();
    let mut busy = Vec::new();
    while !left.is_empty() {
        let name = format!(
            "stackgen-port-probe-{}",
            crate::ops::backup::archive::hex(&rand::random::<[u8; 6]>())
        );
        let mut v = tools.docker_argv();
        v.extend(words(&[
            "run",
            "--rm",
            "--name",
            &name,
            "--label",
            "com.stackgen.helper=port-probe",
            "--user",
            "65534:65534",
            "--cap-drop",
            "ALL",
            "--security-opt",
            "no-new-privileges",
            "--entrypoint",
            "/bin/sh",
        ]));
        for (i, p) in left.iter().enumerate() {
            v.push("-p".into());
            let ip = match p.ip {
                std::net::IpAddr::V6(v6) => format!("[{v6}]"),
                v4 => v4.to_string(),
            };
            // Any container port will do: nothing listens, only the host side is bound.
            v.push(format!("{ip}:{}:{}/{}", p.port, 10000 + i, p.proto.as_str()).into());
        }
        v.extend(words(&[image, "-c", "true"]));
        let out = exec::capture(&Cmd::new(v, "probe the ports on the engine's host"))?;
        if out.status.success() {
            break;
        }
        let mut rm = tools.docker_argv();
        rm.extend(words(&["rm", "-f", &name]));
        let _ = exec::capture(&Cmd::new(rm, "remove the port probe"));
        let stderr = String::from_utf8_lossy(&out.stderr);
        let Some(i) = left
            .iter()
            .position(|p| names_port(&stderr, p.port, p.proto))
        else {
            anyhow::bail!(
                "the port probe on {} failed: {}",
                describe(tools.context.as_deref()),
                exec::first_line(&stderr).unwrap_or("docker run failed")
            );
        };
        busy.push(left.remove(i).clone());
    }
    Ok(busy)
}

/// Whether docker's message says it could not bind this host port: `listen tcp4
/// 127.0.0.1:20100: bind: address already in use` (another process) or `Bind for
/// 127.0.0.1:20100 failed: port is already allocated` (a container of that engine).
pub fn names_port(message: &str, port: u16, proto: preflight::Proto) -> bool {
    let at = format!(":{port}");
    let ends_port = |s: &str| {
        s.find(&at).is_some_and(|i| {
            !s[i + at.len()..]
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_digit())
        })
    };
    message.lines().any(|l| {
        let listen = l
            .split(&format!("listen {}", proto.as_str()))
            .nth(1)
            .is_some_and(|rest| ends_port(rest.split(": bind").next().unwrap_or(rest)));
        let bind = l
            .split("Bind for ")
            .nth(1)
            .is_some_and(|rest| ends_port(rest.split(" failed").next().unwrap_or(rest)));
        listen || bind
    })
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
    fn a_remote_tenant_mounts_its_config_files_from_its_host() {
        let m = manifest("TEAM_B__DOCKER_CONTEXT=host-2\n");
        let t = m.tenant("team-b").unwrap();
        let root = model::tenant_root(&m.platform, t);
        assert_eq!(
            model::config_source(&m.platform, t),
            format!("{root}/config")
        );
        assert_eq!(
            model::config_source(&m.platform, m.tenant("team-a").unwrap()),
            "./team-a"
        );
        // Copied, not prepared: no planned path is under the config folder.
        let actions = crate::ops::prepare::plan(&m, t).unwrap();
        assert!(!actions.is_empty());
        assert!(actions
            .iter()
            .all(|a| !a.path.starts_with(format!("{root}/config"))));
        // The copy is the tenant's folder under the stacks directory, without the stack file.
        let (_, files) = config_files(&m, t).unwrap();
        assert!(
            files.contains(&PathBuf::from("caddy/Caddyfile")),
            "{files:?}"
        );
        assert!(files
            .iter()
            .all(|f| f.is_relative() && !f.starts_with("team-b")));
        assert!(!files
            .iter()
            .any(|f| f.to_string_lossy().ends_with("-stack.yml")));
    }

    #[test]
    fn the_pushed_tar_has_every_folder_and_the_generated_modes() {
        let files = vec![
            (PathBuf::from("caddy/Caddyfile"), b"a".to_vec()),
            (PathBuf::from("postgres/initdb/10.sql"), b"bc".to_vec()),
        ];
        let tar = push_tar(Path::new("config"), &files, (0, 0)).unwrap();
        let mut a = tar::Archive::new(&tar[..]);
        let got: Vec<(String, u32, u64, bool)> = a
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let h = e.header();
                (
                    e.path().unwrap().display().to_string(),
                    h.mode().unwrap(),
                    h.uid().unwrap(),
                    h.entry_type().is_dir(),
                )
            })
            .collect();
        let want = [
            ("config", 0o755, true),
            ("config/caddy", 0o755, true),
            ("config/postgres", 0o755, true),
            ("config/postgres/initdb", 0o755, true),
            ("config/caddy/Caddyfile", 0o644, false),
            ("config/postgres/initdb/10.sql", 0o644, false),
        ];
        assert_eq!(got.len(), want.len(), "{got:?}");
        for ((path, mode, uid, dir), (wp, wm, wd)) in got.iter().zip(want) {
            assert_eq!((path.trim_end_matches('/'), *mode, *dir), (wp, wm, wd));
            assert_eq!(*uid, 0);
        }
        // Parents of `into` too (a deeper target), never an absolute or `..` name.
        let tar = push_tar(Path::new("edge/config"), &files[..1], (5, 6)).unwrap();
        let names: Vec<String> = tar::Archive::new(&tar[..])
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert_eq!(
            names,
            [
                "edge",
                "edge/config",
                "edge/config/caddy",
                "edge/config/caddy/Caddyfile"
            ]
        );
    }

    #[test]
    fn what_the_copy_no_longer_has_is_stale() {
        use tar::EntryType::{Directory as D, Regular as F, Symlink as L};
        let files = vec![
            (PathBuf::from("caddy/Caddyfile"), Vec::new()),
            (PathBuf::from("litellm/config.yaml"), Vec::new()),
        ];
        let existing: Vec<(String, tar::EntryType)> = [
            ("", D),
            ("caddy", D),
            ("caddy/Caddyfile", F),
            ("caddy/old.conf", F),
            ("grafana", D),
            ("grafana/datasources", D),
            ("grafana/datasources/p.yml", F),
            ("litellm", D),
            ("litellm/config.yaml", D), // a folder where the file goes
            ("litellm/config.yaml/x", F),
            ("x", L),
        ]
        .iter()
        .map(|(p, k)| (p.to_string(), *k))
        .collect();
        assert_eq!(
            push_stale(&existing, &files),
            ["caddy/old.conf", "grafana", "litellm/config.yaml", "x"]
        );
        assert!(push_stale(&existing[..3], &files).is_empty());
        // A listing names entries relative to the folder read.
        let stream = crate::ops::backup::engine::tests::stream(&[
            ("config/", D, 0, ""),
            ("config/caddy/", D, 0, ""),
            ("config/caddy/Caddyfile", F, 0, "x"),
            ("config/caddy/l", L, 0, "/etc"),
        ]);
        let got = push_listing(&mut &stream[..]).unwrap();
        let names: Vec<&str> = got.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(names, ["", "caddy", "caddy/Caddyfile", "caddy/l"]);
        assert_eq!(got[3].1, L);
    }

    #[test]
    fn the_probe_reads_which_port_docker_could_not_bind() {
        use preflight::Proto;
        let other = "docker: Error response from daemon: driver failed programming external connectivity on endpoint x (be72): Error starting userland proxy: listen tcp4 127.0.0.1:47811: bind: address already in use";
        assert!(names_port(other, 47811, Proto::Tcp));
        assert!(!names_port(other, 4781, Proto::Tcp));
        assert!(!names_port(other, 47811, Proto::Udp));
        let udp =
            "Error starting userland proxy: listen udp4 0.0.0.0:443: bind: address already in use";
        assert!(names_port(udp, 443, Proto::Udp) && !names_port(udp, 443, Proto::Tcp));
        let container = "driver failed programming external connectivity on endpoint y: Bind for 127.0.0.1:20100 failed: port is already allocated";
        assert!(names_port(container, 20100, Proto::Tcp));
        assert!(!names_port(container, 2010, Proto::Tcp));
        assert!(!names_port(
            "Unable to find image 'x:1' locally",
            1,
            Proto::Tcp
        ));
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
