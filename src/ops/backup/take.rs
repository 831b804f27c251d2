//! Taking a backup of one tenant: [`plan`] decides, per data directory, how to capture it
//! consistently (from the running containers and each image's contract), [`run`] does it.
//!
//! - postgres, running: `pg_dumpall --no-role-passwords` inside the container (a file copy of a
//!   live data directory is not consistent; without role passwords the dump holds no secret, and
//!   a restore keeps the passwords the manifest sets).
//! - redis, running: `SAVE`, then its `dump.rdb` (redis writes it to a temporary file and renames
//!   it, so the file read is a complete snapshot).
//! - any other directory whose services run: `docker compose stop` those services, copy, `start`
//!   them again, and say how long they were down. The vector DBs' own snapshot APIs are not used:
//!   the stop covers every service the same way, and is what the tests can prove.
//! - a directory nothing runs on: copied as it is (postgres and redis included).

use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};

use super::archive::{self, Writer};
use super::engine::{Helper, Listing};
use super::format::{self, Component, Ids, Meta, Method, Service};
use crate::manifest::{Manifest, Tenant};
use crate::ops::compose::{argv, exec, Cmd, Container, Project, Tools};
use crate::ops::teardown::{disk, guard};
use crate::{platform::model, policy};

/// One data directory (`data/<name>`) and how it is captured.
#[derive(Debug, Clone)]
pub struct Item {
    pub name: String,
    pub path: PathBuf,
    pub method: Method,
    pub owner: (u32, u32),
    /// For [`Method::StopCopyStart`]: the running services that use the directory.
    pub services: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Plan {
    pub tenant: String,
    pub archive: PathBuf,
    pub dir: PathBuf,
    pub items: Vec<Item>,
    pub services: Vec<Service>,
    /// Bytes of the data directory (an upper bound for the archive, which is compressed).
    pub estimate: u64,
    /// Whether the stack file must exist (something is done through compose).
    pub uses_compose: bool,
}

/// Decides what to capture and how. `running` is the tenant's containers (empty when stopped).
/// `remote` is the data folder as the tenant's engine lists it (`Some(None)`: none there) for a
/// tenant on another engine; `None` reads this machine's disk.
pub fn plan(
    manifest: &Manifest,
    tenant: &Tenant,
    running: &[Container],
    archive: &Path,
    remote: Option<Option<&Listing>>,
) -> Result<Plan> {
    let data = match remote {
        None => guard::data_dir(&manifest.platform.base_dir, &tenant.name)?,
        Some(_) => None,
    };
    let services = model::services(&manifest.platform, tenant);
    let is_running = |svc: &str| {
        running
            .iter()
            .any(|c| c.service_name() == svc && c.is_running())
    };
    // The data folder's name is the component's; its owner the first service's data owner.
    let mut owners: Vec<(String, (u32, u32), Vec<String>)> = Vec::new();
    for svc in &services {
        let folder = Path::new(&svc.data_dir)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let owner = policy::for_service(tenant, svc, &services).data_owner;
        match owners.iter_mut().find(|(n, _, _)| *n == folder) {
            Some((_, _, svcs)) => svcs.push(svc.name.clone()),
            None => owners.push((folder, owner, vec![svc.name.clone()])),
        }
    }
    let mut items = Vec::new();
    let mut names: Vec<String> = Vec::new();
    if let Some(d) = &data {
        for entry in fs::read_dir(d).with_context(|| format!("listing {}", d.display()))? {
            names.push(entry?.file_name().to_string_lossy().into_owned());
        }
    }
    let listed = remote.flatten();
    if let Some(l) = listed {
        if l.is_link {
            bail!(crate::error::UsageError::plain(format!(
                "{}/data is a symbolic link on the host of {}: backups never follow one; replace it with the real folder; nothing was written",
                model::tenant_root(&manifest.platform, tenant),
                crate::ops::engines::describe(tenant.docker_context.as_deref())
            )));
        }
        names.extend(l.top.iter().map(|(n, _)| n.clone()));
    }
    if is_running("postgres") && !names.iter().any(|n| n == "postgres") {
        names.push("postgres".into());
    }
    names.sort();
    for name in names {
        let path = data
            .as_ref()
            .map(|d| d.join(&name))
            .unwrap_or_else(|| PathBuf::from(&name));
        let known = owners.iter().find(|(n, _, _)| *n == name);
        let owner = match (known, listed) {
            (Some((_, o, _)), _) => *o,
            (None, Some(l)) => l
                .top
                .iter()
                .find(|(n, _)| *n == name)
                .map_or((0, 0), |(_, o)| *o),
            (None, None) => fs::symlink_metadata(&path).map_or((0, 0), |m| (m.uid(), m.gid())),
        };
        let up: Vec<String> = known
            .map(|(_, _, svcs)| svcs.iter().filter(|s| is_running(s)).cloned().collect())
            .unwrap_or_default();
        let method = match name.as_str() {
            "postgres" if is_running("postgres") => Method::PgDumpall,
            "redis" if is_running("redis") => Method::RedisSave,
            _ if !up.is_empty() => Method::StopCopyStart,
            _ => Method::Files,
        };
        let services = if method == Method::StopCopyStart {
            up
        } else {
            Vec::new()
        };
        items.push(Item {
            name,
            path,
            method,
            owner,
            services,
        });
    }
    let estimate = match (&data, listed) {
        (Some(d), _) => disk::size(d)?,
        (None, Some(l)) => l.bytes,
        (None, None) => 0,
    };
    Ok(Plan {
        tenant: tenant.name.clone(),
        dir: archive.parent().unwrap_or(Path::new(".")).to_path_buf(),
        archive: archive.to_path_buf(),
        uses_compose: items.iter().any(|i| i.method != Method::Files),
        items,
        services: services
            .iter()
            .map(|s| Service {
                name: s.name.clone(),
                image: s.image.clone(),
            })
            .collect(),
        estimate,
    })
}

/// The plan in words, one line per directory (for `--dry-run` and before a real run).
pub fn describe(plan: &Plan) -> Vec<String> {
    let mut out = vec![format!(
        "{}: backup into {} (data: {})",
        plan.tenant,
        plan.archive.display(),
        disk::human(plan.estimate)
    )];
    for i in &plan.items {
        let extra = if i.services.is_empty() {
            String::new()
        } else {
            format!(" ({} down while copied)", i.services.join(", "))
        };
        out.push(format!("  {:<20} {}{extra}", i.name, i.method.describe()));
    }
    if plan.items.is_empty() {
        out.push("  no data directory: the archive holds only its description".into());
    }
    out
}

/// What a finished backup wrote.
#[derive(Debug, Clone)]
pub struct Taken {
    pub archive: PathBuf,
    pub bytes: u64,
    pub components: Vec<Component>,
}

/// Takes the backup: checks space, writes the archive (atomically), returns what it holds.
/// `log` gets one line per directory. Services stopped for a copy are started again even when
/// the copy fails. With `remote` (a tenant on another engine) every file is read through that
/// engine (`docker cp` from the helper container), never from this machine's disk.
#[allow(clippy::too_many_arguments)]
pub fn run(
    manifest: &Manifest,
    tenant: &Tenant,
    plan: &Plan,
    tools: &Tools,
    project: &Project,
    remote: Option<&Helper>,
    log: &mut dyn FnMut(String),
) -> Result<Taken> {
    if plan.uses_compose && !project.stack.exists() {
        bail!(crate::error::UsageError::plain(format!(
            "{} is missing (the backup runs through docker compose); run `stackgen render {}`; nothing was written",
            project.stack.display(),
            tenant.name
        )));
    }
    if crate::ops::engines::is_remote(tenant)
        && remote.is_none()
        && plan.items.iter().any(|i| i.method != Method::PgDumpall)
    {
        // Never the local disk for a tenant whose data is on another host.
        bail!("the data of tenant `{}` is on another engine's host and no helper container reads it there; nothing was written", tenant.name);
    }
    super::make_dir(&plan.dir)?;
    super::check_space(&plan.dir, plan.estimate, "the backup")?;
    let now = SystemTime::now();
    let created_unix = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let mut writer = Writer::create(&plan.archive)?;
    let mut components = Vec::new();
    for item in &plan.items {
        let started = Instant::now();
        let mut component = Component {
            name: item.name.clone(),
            method: item.method.clone(),
            owner: item.owner,
            stopped: Vec::new(),
            down_ms: None,
        };
        match item.method {
            Method::PgDumpall => dump_postgres(tools, project, &plan.archive, &mut writer)?,
            Method::RedisSave => {
                exec::capture_ok(&argv::exec(
                    tools,
                    project,
                    "redis",
                    &["redis-cli", "SAVE"],
                    "redis-cli SAVE",
                ))?;
                match remote {
                    Some(h) => {
                        let rel = format!("data/{}/dump.rdb", item.name);
                        h.copy_out(&rel, &mut |r| writer.add_stream(format::REDIS_DUMP, r))?
                            .with_context(|| format!("redis wrote no {rel} on that host"))?;
                    }
                    None => {
                        let rdb = item.path.join("dump.rdb");
                        let file = archive::open_nofollow(&rdb)?;
                        let meta = file.metadata()?;
                        writer.add_file(format::REDIS_DUMP, &meta, file)?;
                    }
                }
            }
            Method::StopCopyStart => {
                let names: Vec<OsString> = item.services.iter().map(Into::into).collect();
                let mut stop = vec![OsString::from("stop")];
                stop.extend(names.iter().cloned());
                exec::capture_ok(&argv::passthrough(tools, project, &stop))?;
                let copied = copy_folder(&mut writer, item, remote);
                let mut start = vec![OsString::from("start")];
                start.extend(names);
                let started_again = exec::capture_ok(&argv::passthrough(tools, project, &start));
                let down = started.elapsed().as_millis() as u64;
                copied?;
                started_again.with_context(|| {
                    format!(
                        "{} could not be started again after the copy; run `stackgen up {}`",
                        item.services.join(", "),
                        tenant.name
                    )
                })?;
                component.stopped = item.services.clone();
                component.down_ms = Some(down);
            }
            Method::Files => copy_folder(&mut writer, item, remote)?,
        }
        log(match component.down_ms {
            Some(ms) => format!(
                "  {}: {}; {} down for {:.1} s",
                item.name,
                item.method.describe(),
                item.services.join(", "),
                ms as f64 / 1000.0
            ),
            None => format!("  {}: {}", item.name, item.method.describe()),
        });
        components.push(component);
    }
    let salt = archive::hex(&rand::random::<[u8; 16]>());
    let (settings, secrets) = format::tenant_keys(manifest, tenant, &salt);
    let meta = Meta {
        kind: format::KIND.into(),
        format: format::FORMAT,
        tenant: tenant.name.clone(),
        deployment: tenant.deployment.clone(),
        stackgen_version: env!("CARGO_PKG_VERSION").into(),
        created: super::stamp::stamp(now),
        created_unix,
        ids: Ids::of(tenant),
        services: plan.services.clone(),
        components: components.clone(),
        settings,
        secrets,
        salt,
        files: Default::default(),
    };
    let bytes = writer.finish(meta)?;
    Ok(Taken {
        archive: plan.archive.clone(),
        bytes,
        components,
    })
}

/// Copies one data folder into the archive as `data/<name>/...`: from this machine's disk, or
/// through the tenant's engine.
fn copy_folder(writer: &mut Writer, item: &Item, remote: Option<&Helper>) -> Result<()> {
    let prefix = format!("data/{}", item.name);
    match remote {
        None => writer.add_tree(&prefix, &item.path),
        Some(h) => {
            // The folder's path under the tenant's root is its name in the archive.
            h.copy_out(&prefix, &mut |r| writer.add_stream(&prefix, r))?
                .with_context(|| format!("{prefix} is gone from that host"))?;
            Ok(())
        }
    }
}

/// `pg_dumpall` inside the running postgres, to a private temporary file beside the archive,
/// then into the archive as `postgres.sql`. The temporary file is removed either way.
fn dump_postgres(
    tools: &Tools,
    project: &Project,
    archive: &Path,
    writer: &mut Writer,
) -> Result<()> {
    let mut name = archive.file_name().unwrap_or_default().to_os_string();
    name.push(".postgres.sql.partial");
    let tmp = archive.with_file_name(name);
    if fs::symlink_metadata(&tmp).is_ok_and(|m| m.is_file()) {
        fs::remove_file(&tmp)?;
    }
    let file = archive::create_new(&tmp, 0o600)?;
    let result = (|| {
        let cmd = dump_command(tools, project);
        exec::run_to_file(&cmd, file)?;
        let size = fs::metadata(&tmp)?.len();
        if size == 0 {
            bail!("pg_dumpall wrote nothing; no backup was made");
        }
        writer.add_produced(format::POSTGRES_DUMP, &tmp)
    })();
    let _ = fs::remove_file(&tmp);
    result
}

/// `compose exec -T postgres pg_dumpall -U stackgen --no-role-passwords` (the role is the one
/// templates/services/postgres creates).
pub fn dump_command(tools: &Tools, project: &Project) -> Cmd {
    argv::exec(
        tools,
        project,
        "postgres",
        &["pg_dumpall", "-U", "stackgen", "--no-role-passwords"],
        "pg_dumpall",
    )
}
