//! `stackgen restore TENANT --from ARCHIVE`: every check first, then the data.
//!
//! Before anything on disk or in the engine changes, [`check`] verifies every checksum (a
//! truncated, tampered or newer archive stops here), the tenant (an archive of another tenant
//! needs `--from-tenant`), the secrets the data was written with (each must be in the manifest),
//! the tenant's state (running, or a non-empty data directory without `--replace`, is refused)
//! and the free space. [`run`] then unpacks into a private staging folder inside the tenant's
//! tree, gives every file the owner its service runs as in *this* tenant, swaps the staging
//! folder in with one rename, and loads the SQL dump into a fresh postgres.
//!
//! For a tenant on another engine the same checks read that engine's listing of the data
//! folder and that host's free space (a one-shot `df` there), and the data goes in with
//! `docker cp` (`super::engine`); with `--replace` the old data is deleted there first, after
//! the safety backup, by the one-shot container `teardown --purge-data` uses.

use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::archive::{self, Member, MemberKind, Verified};
use super::engine::{Helper, Listing};
use super::format::{self, Method};
use crate::error::UsageError;
use crate::manifest::{Manifest, Tenant};
use crate::ops::compose::{argv, exec, Container, Project, Tools};
use crate::ops::teardown::{disk, guard};
use crate::{ops::prepare, platform::model, policy};

/// What the operator asked for.
#[derive(Debug, Clone)]
pub struct Options {
    pub from: PathBuf,
    pub from_tenant: Option<String>,
    pub replace: bool,
}

/// The checked restore: what is in the archive and where it goes.
#[derive(Debug)]
pub struct Checked {
    pub verified: Verified,
    pub tenant_root: PathBuf,
    pub data: PathBuf,
    /// The data directory exists and is not empty (only with `--replace`).
    pub replaces: bool,
    /// Secrets whose value differs from the one the data was written with (names only).
    pub changed_secrets: Vec<String>,
    /// The data goes to another engine's host, through that engine (`super::engine`).
    pub remote: bool,
    file: fs::File,
}

/// Every check, reading only. Errors are exit 2 (bad input) unless the engine could not be read.
/// `remote` is the tenant's data folder as its engine lists it (`Some(None)`: not there) for a
/// tenant on another engine, and `free_there` the bytes free on that host
/// (`crate::ops::engines::free_on_host`; `None`: not measured); `None` looks at this machine's
/// disk.
pub fn check(
    manifest: &Manifest,
    tenant: &Tenant,
    opts: &Options,
    containers: &[Container],
    remote: Option<Option<&Listing>>,
    free_there: Option<u64>,
) -> Result<Checked> {
    let mut file = archive::open_nofollow(&opts.from).map_err(|e| {
        UsageError::plain(format!(
            "{:#}: give the path of an archive `stackgen backup` wrote (links are not followed)",
            e
        ))
    })?;
    let verified =
        archive::verify(&opts.from, &mut file).map_err(|e| UsageError::plain(format!("{e:#}")))?;
    let meta = &verified.meta;
    match &opts.from_tenant {
        None if meta.tenant != tenant.name => {
            return Err(UsageError::plain(format!(
                "{} is a backup of tenant `{}`, not `{}`; to restore it into `{}` (its paths and owners are rewritten, nothing of `{}` is touched) pass --from-tenant {}",
                opts.from.display(),
                meta.tenant,
                tenant.name,
                tenant.name,
                meta.tenant,
                meta.tenant
            ))
            .into())
        }
        Some(other) if *other != meta.tenant => {
            return Err(UsageError::plain(format!(
                "--from-tenant {other}: {} is a backup of tenant `{}`",
                opts.from.display(),
                meta.tenant
            ))
            .into())
        }
        _ => {}
    }
    // The data was written with these secrets: without them it cannot be read (n8n's
    // credentials, litellm's keys, ...). Names only: no value is ever printed.
    let mut missing = Vec::new();
    let mut changed_secrets = Vec::new();
    for (key, print) in &meta.secrets {
        match manifest.entries.get(&tenant.key(key)) {
            None => missing.push(tenant.key(key)),
            Some(e) if e.value.is_empty() => missing.push(tenant.key(key)),
            Some(e) if &format::fingerprint(&meta.salt, &e.value) != print => {
                changed_secrets.push(tenant.key(key))
            }
            Some(_) => {}
        }
    }
    if !missing.is_empty() {
        return Err(UsageError::plain(format!(
            "{}: the archive's data was written with {}, which {} does not set; add {} (the value{} in use when the backup was taken) and run the restore again; nothing was restored",
            opts.from.display(),
            missing.join(", "),
            manifest.path.display(),
            if missing.len() == 1 { "it" } else { "them" },
            if missing.len() == 1 { "" } else { "s" }
        ))
        .into());
    }
    let running: Vec<&str> = containers
        .iter()
        .filter(|c| c.is_running())
        .map(|c| c.name.as_str())
        .collect();
    if !running.is_empty() {
        return Err(UsageError::plain(format!(
            "tenant `{}` is running ({}); a restore replaces its data underneath it. Stop it first with `stackgen down {}`; nothing was restored",
            tenant.name,
            running.join(", "),
            tenant.name
        ))
        .into());
    }
    let base = guard::base_dir(&manifest.platform.base_dir)?;
    let tenant_root = guard::tenant_root(&base, &tenant.name)?;
    let data = tenant_root.join("data");
    if let Some(listed) = remote {
        // On another engine's host: its listing says whether the folder holds anything, and a
        // one-shot container there measured its free space.
        let context = tenant.docker_context.as_deref().unwrap_or_default();
        if listed.is_some_and(|l| l.is_link) {
            return Err(UsageError::plain(format!(
                "{} is a symbolic link on the host of context `{context}`: a restore never writes through one; replace it with a real, empty folder; nothing was restored",
                data.display()
            ))
            .into());
        }
        let replaces = listed.is_some_and(|l| !l.top.is_empty());
        if replaces && !opts.replace {
            return Err(UsageError::plain(format!(
                "{} on the host of context `{context}` is not empty: restoring would mix two states of tenant `{}`. Pass --replace to replace it (a safety backup of what is there is taken first, then it is deleted on that host through its engine), or empty it; nothing was restored",
                data.display(),
                tenant.name,
            ))
            .into());
        }
        if let Some(free) = free_there {
            // The replaced data is deleted before the restore writes: its space is free then.
            let freed = if replaces {
                listed.map_or(0, |l| l.bytes)
            } else {
                0
            };
            super::fits(
                verified.restored_bytes(),
                free.saturating_add(freed),
                "the restore",
                &format!(
                    "{} on the host of context `{context}`",
                    tenant_root.display()
                ),
            )?;
        }
        return Ok(Checked {
            verified,
            tenant_root,
            data,
            replaces,
            changed_secrets,
            remote: true,
            file,
        });
    }
    let existing = guard::data_dir(&manifest.platform.base_dir, &tenant.name)?;
    let replaces = match &existing {
        Some(d) => fs::read_dir(d)
            .with_context(|| format!("listing {}", d.display()))?
            .next()
            .is_some(),
        None => false,
    };
    if replaces && !opts.replace {
        return Err(UsageError::plain(format!(
            "{} is not empty: restoring would mix two states of tenant `{}`. Pass --replace to replace it (a safety backup of what is there is taken first), or empty it; nothing was restored",
            data.display(),
            tenant.name
        ))
        .into());
    }
    super::check_space(&tenant_root, verified.restored_bytes(), "the restore")?;
    Ok(Checked {
        verified,
        tenant_root,
        data,
        replaces,
        changed_secrets,
        remote: false,
        file,
    })
}

/// What the restore will do, in words.
pub fn describe(checked: &Checked, tenant: &Tenant, opts: &Options) -> Vec<String> {
    let meta = &checked.verified.meta;
    let mut out = vec![format!(
        "{}: restore {} (tenant {}, taken {} by stackgen {}; {} in {} files, every checksum verified)",
        tenant.name,
        opts.from.display(),
        meta.tenant,
        meta.created,
        meta.stackgen_version,
        disk::human(checked.verified.restored_bytes()),
        meta.files.len()
    )];
    for c in &meta.components {
        let how = match c.method {
            Method::PgDumpall => "SQL dump, loaded into a fresh postgres",
            Method::RedisSave => "redis snapshot, restored as its data",
            _ => "files, owners set for this tenant",
        };
        out.push(format!("  {:<20} {how}", c.name));
    }
    if checked.replaces {
        out.push(format!(
            "  replaces {} (a safety backup of it is taken first)",
            checked.data.display()
        ));
    }
    for key in &checked.changed_secrets {
        out.push(format!(
            "  warning: {key} differs from the value the data was written with; data encrypted with the old value stays unreadable until it is set back"
        ));
    }
    out
}

/// (component, its owner in the archive, its owner here)
type ComponentOwner = (String, (u32, u32), (u32, u32));

/// Maps the backed-up tenant's owners onto this tenant's: a component's owner becomes the UID
/// its service runs as here; the tenant's and openclaw's IDs become this tenant's; others (root,
/// an image's own user) stay.
struct Owners {
    by_component: Vec<ComponentOwner>,
    uids: Vec<(u32, u32)>,
    gids: Vec<(u32, u32)>,
}

impl Owners {
    fn new(manifest: &Manifest, tenant: &Tenant, meta: &format::Meta) -> Owners {
        let services = model::services(&manifest.platform, tenant);
        let mut by_component = Vec::new();
        for c in &meta.components {
            let here = services
                .iter()
                .find(|s| {
                    Path::new(&s.data_dir)
                        .file_name()
                        .is_some_and(|n| n == c.name.as_str())
                })
                .map(|s| policy::for_service(tenant, s, &services).data_owner);
            by_component.push((c.name.clone(), c.owner, here.unwrap_or(c.owner)));
        }
        let src = &meta.ids;
        Owners {
            by_component,
            uids: vec![
                (src.uid, tenant.uid),
                (src.openclaw_uid, tenant.openclaw_uid),
            ],
            gids: vec![
                (src.gid, tenant.gid),
                (src.openclaw_gid, tenant.openclaw_gid),
            ],
        }
    }

    fn map(&self, component: &str, uid: u32, gid: u32) -> (u32, u32) {
        if let Some((_, from, to)) = self.by_component.iter().find(|(n, _, _)| n == component) {
            if (uid, gid) == *from {
                return *to;
            }
        }
        let lookup = |list: &[(u32, u32)], id: u32| {
            list.iter().find(|(f, _)| *f == id).map_or(id, |(_, t)| *t)
        };
        (lookup(&self.uids, uid), lookup(&self.gids, gid))
    }
}

/// Restores a checked archive. `safety` takes the safety backup of the data being replaced
/// (called before anything is changed); `log` gets one line per step. `remote` (for a checked
/// archive whose tenant is on another engine) is the helper container on that engine, and
/// `stacks_dir` holds the config files copied to that host.
#[allow(clippy::too_many_arguments)]
pub fn run(
    manifest: &Manifest,
    tenant: &Tenant,
    opts: &Options,
    mut checked: Checked,
    tools: &Tools,
    project: &Project,
    stacks_dir: &Path,
    remote: Option<&Helper>,
    safety: &mut dyn FnMut() -> Result<PathBuf>,
    log: &mut dyn FnMut(String),
) -> Result<()> {
    let meta = checked.verified.meta.clone();
    let has_dump = meta.files.contains_key(format::POSTGRES_DUMP);
    if has_dump && !project.stack.exists() {
        return Err(UsageError::plain(format!(
            "{} is missing (the SQL dump is loaded through docker compose); run `stackgen render {}`; nothing was restored",
            project.stack.display(),
            tenant.name
        ))
        .into());
    }
    if checked.replaces {
        let kept = safety()?;
        log(format!(
            "safety backup of the replaced data: {}",
            kept.display()
        ));
    }
    if checked.remote {
        let helper = remote.context("a restore onto another engine needs its helper container")?;
        // The dump and the snapshot wait in a private folder on this machine, never the data.
        let scratch = tempfile::Builder::new()
            .prefix("stackgen-restore-")
            .tempdir()
            .context("creating a private temporary folder")?;
        let context = tenant.docker_context.as_deref().unwrap_or_default();
        if checked.replaces {
            // The same deletion as `teardown --purge-data` of a remote tenant, after the safety
            // backup above.
            crate::ops::engines::run_purge(&crate::ops::engines::purge_cmd(
                tools, manifest, tenant, None,
            )?)?;
            log(format!(
                "deleted the replaced {} on the host of context `{context}`, through its engine",
                checked.data.display()
            ));
        }
        let dump = unpack_remote(manifest, tenant, opts, &mut checked, helper, scratch.path())?;
        log(format!(
            "restored the data into {} on the host of context `{context}`, through its engine",
            checked.data.display(),
        ));
        // postgres starts below with its init scripts, which it mounts from that host.
        let actions = prepare::plan(manifest, tenant)?;
        crate::ops::engines::prepare_on_host(tools, manifest, tenant, &actions, stacks_dir)?;
        if let Some(dump) = dump {
            load_dump(tools, project, &dump, log)?;
        }
        return Ok(());
    }
    let stamp = super::stamp::stamp(std::time::SystemTime::now());
    let staging = checked.tenant_root.join(format!(".restore-{stamp}"));
    fs::create_dir_all(&checked.tenant_root)
        .with_context(|| format!("creating {}", checked.tenant_root.display()))?;
    fs::DirBuilder::new()
        .mode(0o700)
        .create(&staging)
        .with_context(|| format!("creating {}", staging.display()))?;
    let result = unpack_and_swap(manifest, tenant, opts, &mut checked, &staging, &stamp, log);
    if result.is_err() {
        let _ = fs::remove_dir_all(&staging);
        return result.map(|_| ());
    }
    let dump = result?;
    prepare::apply(manifest, tenant, &prepare::plan(manifest, tenant)?)?;
    if let Some(dump) = dump {
        let loaded = load_dump(tools, project, &dump, log);
        let _ = fs::remove_file(&dump);
        let _ = fs::remove_dir_all(&staging);
        loaded?;
    } else {
        let _ = fs::remove_dir_all(&staging);
    }
    Ok(())
}

/// Unpacks into `staging`, then swaps `staging/data` in for the data directory. Returns the
/// path of the extracted SQL dump, if any.
fn unpack_and_swap(
    manifest: &Manifest,
    tenant: &Tenant,
    opts: &Options,
    checked: &mut Checked,
    staging: &Path,
    stamp: &str,
    log: &mut dyn FnMut(String),
) -> Result<Option<PathBuf>> {
    let meta = checked.verified.meta.clone();
    let owners = Owners::new(manifest, tenant, &meta);
    let staged_data = staging.join("data");
    fs::DirBuilder::new().mode(0o750).create(&staged_data)?;
    let mut dump = None;
    let mut redis_rdb = None;
    let verified = std::mem::replace(
        &mut checked.verified,
        Verified {
            meta: meta.clone(),
            members: Vec::new(),
        },
    );
    archive::for_each_member(&opts.from, &mut checked.file, &verified, &mut |m, body| {
        if m.name == format::POSTGRES_DUMP {
            let to = staging.join("postgres.sql");
            copy_new(body, &to, 0o600)?;
            dump = Some(to);
        } else if m.name == format::REDIS_DUMP {
            let to = staging.join("dump.rdb");
            copy_new(body, &to, 0o600)?;
            redis_rdb = Some(to);
        } else if let Some(rel) = m.name.strip_prefix("data/") {
            let component = rel.split('/').next().unwrap_or_default();
            let (uid, gid) = owners.map(component, m.uid, m.gid);
            place(&staged_data, rel, m, body, uid, gid)?;
        }
        Ok(())
    })?;
    checked.verified = verified;
    if let Some(rdb) = redis_rdb {
        let owner = owners.map(
            "redis",
            meta_owner(&meta, "redis").0,
            meta_owner(&meta, "redis").1,
        );
        redis_from_rdb(&staged_data.join("redis"), &rdb, owner)?;
        fs::remove_file(&rdb)?;
    }
    let staged_count = fs::read_dir(&staged_data)?.count();
    // The swap: the old data directory (empty, or replaced and safety-backed-up) goes aside,
    // the staged one takes its name in one rename, then the old one is deleted.
    let aside = checked.tenant_root.join(format!(".replaced-{stamp}"));
    if fs::symlink_metadata(&checked.data).is_ok() {
        fs::rename(&checked.data, &aside)
            .with_context(|| format!("moving {} aside", checked.data.display()))?;
    }
    if let Err(e) = fs::rename(&staged_data, &checked.data) {
        let _ = fs::rename(&aside, &checked.data);
        return Err(e)
            .with_context(|| format!("moving the restored data to {}", checked.data.display()));
    }
    if fs::symlink_metadata(&aside).is_ok() {
        disk::remove_tree(&aside)?;
    }
    log(format!(
        "restored {} data folder(s) into {}",
        staged_count,
        checked.data.display()
    ));
    Ok(dump)
}

fn meta_owner(meta: &format::Meta, component: &str) -> (u32, u32) {
    meta.components
        .iter()
        .find(|c| c.name == component)
        .map_or((meta.ids.uid, meta.ids.gid), |c| c.owner)
}

/// Writes `body` to a new file (never through a link; the file must not exist).
fn copy_new(body: &mut dyn Read, to: &Path, mode: u32) -> Result<()> {
    let mut file = archive::create_new(to, mode)?;
    io::copy(body, &mut file).with_context(|| format!("writing {}", to.display()))?;
    file.sync_all()?;
    Ok(())
}

/// Creates one member under `root`. Every parent must already be a real directory created by
/// this restore (the archive lists directories before their contents): a member that would be
/// reached through a link is refused.
fn place(
    root: &Path,
    rel: &str,
    m: &Member,
    body: &mut dyn Read,
    uid: u32,
    gid: u32,
) -> Result<()> {
    let to = root.join(rel);
    if let Some(parent) = Path::new(rel).parent() {
        let mut cur = root.to_path_buf();
        for part in parent.components() {
            cur.push(part);
            let meta = fs::symlink_metadata(&cur)
                .with_context(|| format!("{rel}: its folder is not in the archive"))?;
            if !meta.is_dir() {
                bail!("{rel}: reached through a link or a file; refused, nothing was restored");
            }
        }
    }
    match &m.kind {
        MemberKind::Dir => {
            fs::DirBuilder::new()
                .mode(0o700)
                .create(&to)
                .with_context(|| format!("creating {}", to.display()))?;
            fs::set_permissions(&to, fs::Permissions::from_mode(m.mode & 0o7777))?;
        }
        MemberKind::File(_) => {
            copy_new(body, &to, 0o600)?;
            fs::set_permissions(&to, fs::Permissions::from_mode(m.mode & 0o7777))?;
            let mtime = std::time::UNIX_EPOCH + std::time::Duration::from_secs(m.mtime);
            let f = fs::OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&to)?;
            f.set_modified(mtime)?;
        }
        MemberKind::Link(target) => {
            std::os::unix::fs::symlink(target, &to)
                .with_context(|| format!("creating the link {}", to.display()))?;
        }
    }
    std::os::unix::fs::lchown(&to, Some(uid), Some(gid))
        .with_context(|| format!("giving {} to {uid}:{gid}", to.display()))?;
    Ok(())
}

/// redis runs with `appendonly yes`: on a start without an append-only file it ignores
/// `dump.rdb` and begins empty. So the snapshot becomes the base of a multi-part AOF (redis 7+):
/// `appendonlydir/` with the RDB as the base file, an empty incremental file, and the manifest
/// naming both (docs/upstream-notes.md, redis). The files under the redis folder, each mode
/// 0640 with the folders 0750, the content `None` being the snapshot; a local and a remote
/// restore both write exactly this.
const REDIS_AOF_DIR: &str = "appendonlydir";
const REDIS_LAYOUT: [(&str, Option<&[u8]>); 4] = [
    ("appendonlydir/appendonly.aof.1.base.rdb", None),
    ("appendonlydir/appendonly.aof.1.incr.aof", Some(b"")),
    (
        "appendonlydir/appendonly.aof.manifest",
        Some(b"file appendonly.aof.1.base.rdb seq 1 type b\nfile appendonly.aof.1.incr.aof seq 1 type i\n"),
    ),
    ("dump.rdb", None),
];

fn redis_from_rdb(dir: &Path, rdb: &Path, owner: (u32, u32)) -> Result<()> {
    if fs::symlink_metadata(dir).is_err() {
        fs::DirBuilder::new().mode(0o750).create(dir)?;
        std::os::unix::fs::lchown(dir, Some(owner.0), Some(owner.1))?;
    }
    let aof = dir.join(REDIS_AOF_DIR);
    if fs::symlink_metadata(&aof).is_ok() {
        disk::remove_tree(&aof)?;
    }
    fs::DirBuilder::new().mode(0o750).create(&aof)?;
    for (name, text) in REDIS_LAYOUT {
        let to = dir.join(name);
        if name == "dump.rdb" && fs::symlink_metadata(&to).is_ok() {
            fs::remove_file(&to)?;
        }
        match text {
            None => copy_new(&mut archive::open_nofollow(rdb)?, &to, 0o640)?,
            Some(text) => copy_new(&mut &text[..], &to, 0o640)?,
        }
        std::os::unix::fs::lchown(&to, Some(owner.0), Some(owner.1))?;
    }
    std::os::unix::fs::lchown(&aof, Some(owner.0), Some(owner.1))?;
    Ok(())
}

/// The header of one member of the tar a remote restore sends: owner already mapped.
fn header(
    kind: tar::EntryType,
    mode: u32,
    owner: (u32, u32),
    mtime: u64,
    size: u64,
) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode & 0o7777);
    h.set_uid(u64::from(owner.0));
    h.set_gid(u64::from(owner.1));
    h.set_mtime(mtime);
    h.set_size(size);
    h
}

/// Builds the tar of the restored `data/` folder: every `data/` member of the archive with the
/// owner [`Owners`] maps it to (as [`place`] gives it locally), then redis's layout from its
/// snapshot. A member whose folder is not one this tar created before it (a link in the way)
/// is refused, as [`place`] refuses it. The SQL dump and the snapshot go to `scratch` on this
/// machine; returns the dump's path.
fn remote_tar(
    manifest: &Manifest,
    tenant: &Tenant,
    opts: &Options,
    checked: &mut Checked,
    scratch: &Path,
    out: &mut dyn std::io::Write,
) -> Result<Option<PathBuf>> {
    let meta = checked.verified.meta.clone();
    let owners = Owners::new(manifest, tenant, &meta);
    // Every `data/` member's folder must be one the archive lists as a folder before it (never
    // a link, never a file), as `place` requires locally: checked on the verified list before
    // a byte is sent.
    let mut dirs: std::collections::HashSet<String> = std::collections::HashSet::new();
    dirs.insert("data".into());
    for m in &checked.verified.members {
        if !m.name.starts_with("data/") {
            continue;
        }
        let parent = m.name.rsplit_once('/').map_or("", |(p, _)| p);
        if !dirs.contains(parent) {
            bail!(UsageError::plain(format!(
                "{}: {}: reached through a link or a file; refused, nothing was restored",
                opts.from.display(),
                m.name.trim_start_matches("data/")
            )));
        }
        if m.kind == MemberKind::Dir {
            dirs.insert(m.name.clone());
        }
    }
    let mut tar = tar::Builder::new(out);
    let mut root = header(
        tar::EntryType::Directory,
        0o750,
        (0, 0),
        meta.created_unix,
        0,
    );
    tar.append_data(&mut root, "data", io::empty())?;
    let (mut dump, mut rdb) = (None, None);
    archive::for_each_member(
        &opts.from,
        &mut checked.file,
        &checked.verified,
        &mut |m, body| {
            if m.name == format::POSTGRES_DUMP || m.name == format::REDIS_DUMP {
                let to = scratch.join(if m.name == format::POSTGRES_DUMP {
                    "postgres.sql"
                } else {
                    "dump.rdb"
                });
                copy_new(body, &to, 0o600)?;
                if m.name == format::POSTGRES_DUMP {
                    dump = Some(to);
                } else {
                    rdb = Some(to);
                }
                return Ok(());
            }
            let Some(rel) = m.name.strip_prefix("data/") else {
                return Ok(());
            };
            let component = rel.split('/').next().unwrap_or_default();
            let owner = owners.map(component, m.uid, m.gid);
            match &m.kind {
                MemberKind::Dir => {
                    let mut h = header(tar::EntryType::Directory, m.mode, owner, m.mtime, 0);
                    tar.append_data(&mut h, &m.name, io::empty())?;
                }
                MemberKind::File(sum) => {
                    let mut h = header(tar::EntryType::Regular, m.mode, owner, m.mtime, sum.size);
                    tar.append_data(&mut h, &m.name, body)?;
                }
                MemberKind::Link(target) => {
                    let mut h = header(tar::EntryType::Symlink, 0o777, owner, m.mtime, 0);
                    tar.append_link(&mut h, &m.name, target)?;
                }
            }
            Ok(())
        },
    )?;
    if let Some(rdb) = &rdb {
        let (uid, gid) = meta_owner(&meta, "redis");
        let owner = owners.map("redis", uid, gid);
        let t = meta.created_unix;
        for dir in [
            "data/redis".to_string(),
            format!("data/redis/{REDIS_AOF_DIR}"),
        ] {
            if dirs.insert(dir.clone()) {
                let mut h = header(tar::EntryType::Directory, 0o750, owner, t, 0);
                tar.append_data(&mut h, &dir, io::empty())?;
            }
        }
        for (name, text) in REDIS_LAYOUT {
            let path = format!("data/redis/{name}");
            match text {
                None => {
                    let file = archive::open_nofollow(rdb)?;
                    let size = file.metadata()?.len();
                    let mut h = header(tar::EntryType::Regular, 0o640, owner, t, size);
                    tar.append_data(&mut h, &path, file)?;
                }
                Some(text) => {
                    let mut h = header(tar::EntryType::Regular, 0o640, owner, t, text.len() as u64);
                    tar.append_data(&mut h, &path, text)?;
                }
            }
        }
    }
    tar.finish()?;
    Ok(dump)
}

/// Sends the restored data to the tenant's engine's host: the data folder there is absent or
/// empty (checked), and the tar is extracted into it with its owners (`docker cp -a`).
fn unpack_remote(
    manifest: &Manifest,
    tenant: &Tenant,
    opts: &Options,
    checked: &mut Checked,
    helper: &Helper,
    scratch: &Path,
) -> Result<Option<PathBuf>> {
    let mut dump = None;
    helper
        .copy_in(&mut |out| {
            dump = remote_tar(manifest, tenant, opts, checked, scratch, out)?;
            Ok(())
        })
        .with_context(|| {
            format!(
                "{} on the host of context `{}` may hold part of the archive now: empty it there before the next restore",
                checked.data.display(),
                tenant.docker_context.as_deref().unwrap_or_default()
            )
        })?;
    Ok(dump)
}

/// Errors a dump produces in a fresh postgres that are expected: the role the image creates
/// and the databases the init SQL creates already exist; their contents still load.
fn is_expected_error(line: &str) -> bool {
    let Some(msg) = line.split("ERROR:").nth(1) else {
        return true;
    };
    let msg = msg.trim();
    (msg.starts_with("role \"") || msg.starts_with("database \""))
        && msg.ends_with("already exists")
}

/// Starts postgres alone (fresh: initdb and the init SQL run), feeds it the dump through
/// `psql`, and stops it again. Any error other than the expected ones fails the restore.
fn load_dump(
    tools: &Tools,
    project: &Project,
    dump: &Path,
    log: &mut dyn FnMut(String),
) -> Result<()> {
    exec::capture_ok(&argv::up(tools, project, &["postgres".to_string()], 180))?;
    let cmd = argv::exec(
        tools,
        project,
        "postgres",
        &["psql", "-X", "-q", "-U", "stackgen", "-d", "postgres"],
        "psql",
    );
    let out = exec::capture_errors_from(&cmd, dump)?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let unexpected: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("ERROR:") || l.contains("FATAL:"))
        .filter(|l| !is_expected_error(l))
        .collect();
    let stopped = exec::capture_ok(&argv::down(tools, project));
    if !out.status.success() || !unexpected.is_empty() {
        bail!(
            "loading the SQL dump into postgres failed: {}; the files are restored, the database is not. Fix the cause and run the restore again with --replace",
            unexpected
                .first()
                .copied()
                .or_else(|| exec::first_line(&stderr))
                .unwrap_or("psql failed")
        );
    }
    stopped?;
    log("loaded the SQL dump into a fresh postgres (roles keep the manifest's passwords)".into());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::backup::archive::Writer;
    use crate::ops::backup::engine::tests::stream;
    use crate::ops::backup::format::Component;

    fn example() -> Manifest {
        let text = fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/.env.example"))
            .unwrap()
            + "TEAM_A__DOCKER_CONTEXT=host-2\n";
        Manifest::from_text(Path::new(".env"), &text).unwrap()
    }

    /// An archive of tenant team-a taken where its UID was 5000: qdrant's folder from `qdrant`,
    /// a redis snapshot and a SQL dump.
    fn archive_of(dir: &Path, qdrant: &[u8]) -> PathBuf {
        let to = dir.join("team-a.tar.gz");
        let mut w = Writer::create(&to).unwrap();
        w.add_stream("data/qdrant", qdrant).unwrap();
        let rdb = stream(&[("dump.rdb", tar::EntryType::Regular, 999, "REDIS0011")]);
        w.add_stream(format::REDIS_DUMP, &rdb[..]).unwrap();
        let sql = stream(&[("x", tar::EntryType::Regular, 0, "SELECT 1;")]);
        w.add_stream(format::POSTGRES_DUMP, &sql[..]).unwrap();
        let mut meta = crate::ops::backup::archive::tests::meta("team-a");
        let component = |name: &str, method| Component {
            name: name.into(),
            method,
            owner: (5000, 5000),
            stopped: Vec::new(),
            down_ms: None,
        };
        meta.components = vec![
            component("qdrant", Method::Files),
            component("redis", Method::RedisSave),
        ];
        w.finish(meta).unwrap();
        to
    }

    /// The tar a remote restore sends for an archive whose qdrant folder is `qdrant` (a
    /// `docker cp` stream), and the SQL dump it set aside. The folder holds both.
    type Sent = (tempfile::TempDir, Vec<u8>, Option<PathBuf>);
    fn remote_tar_of(qdrant: &[(&str, tar::EntryType, u32, &str)]) -> Result<Sent> {
        let tmp = tempfile::tempdir().unwrap();
        let archive = archive_of(tmp.path(), &stream(qdrant));
        let m = example();
        let t = m.tenant("team-a").unwrap();
        let opts = Options {
            from: archive,
            from_tenant: None,
            replace: false,
        };
        let mut checked = check(&m, t, &opts, &[], Some(None), None)?;
        assert!(checked.remote && !checked.replaces);
        let mut out = Vec::new();
        let dump = remote_tar(&m, t, &opts, &mut checked, tmp.path(), &mut out)?;
        Ok((tmp, out, dump))
    }

    #[test]
    fn a_remote_restore_sends_the_data_with_this_tenants_owners_and_redis_layout() {
        use tar::EntryType::{Directory, Regular, Symlink};
        let (_tmp, bytes, dump) = remote_tar_of(&[
            ("qdrant/", Directory, 5000, ""),
            ("qdrant/seg.bin", Regular, 5000, "vectors"),
            ("qdrant/latest", Symlink, 5000, "seg.bin"),
            ("qdrant/root-owned", Regular, 0, "r"),
        ])
        .unwrap();
        assert_eq!(fs::read_to_string(dump.unwrap()).unwrap(), "SELECT 1;");
        let mut sent = Vec::new();
        let mut ar = tar::Archive::new(&bytes[..]);
        for e in ar.entries().unwrap() {
            let mut e = e.unwrap();
            let h = e.header().clone();
            let mut body = String::new();
            e.read_to_string(&mut body).unwrap();
            let name = e.path().unwrap().display().to_string();
            sent.push((name, h.uid().unwrap(), h.mode().unwrap(), body));
        }
        let names: Vec<&str> = sent.iter().map(|s| s.0.as_str()).collect();
        assert_eq!(
            names,
            [
                "data",
                "data/qdrant",
                "data/qdrant/seg.bin",
                "data/qdrant/latest",
                "data/qdrant/root-owned",
                "data/redis",
                "data/redis/appendonlydir",
                "data/redis/appendonlydir/appendonly.aof.1.base.rdb",
                "data/redis/appendonlydir/appendonly.aof.1.incr.aof",
                "data/redis/appendonlydir/appendonly.aof.manifest",
                "data/redis/dump.rdb",
            ]
        );
        let of = |n: &str| sent.iter().find(|s| s.0 == n).unwrap().clone();
        // The backed-up tenant's UID (5000) becomes this one's (team-a: 20001); root stays.
        assert_eq!(of("data/qdrant/seg.bin").1, 20001);
        assert_eq!(of("data/qdrant/seg.bin").3, "vectors");
        assert_eq!(of("data/qdrant/root-owned").1, 0);
        assert_eq!(of("data"), ("data".into(), 0, 0o750, String::new()));
        // The snapshot twice (AOF base and dump.rdb), with redis's owner here, 0640.
        let base = of("data/redis/appendonlydir/appendonly.aof.1.base.rdb");
        assert_eq!((base.2, base.3.as_str()), (0o640, "REDIS0011"));
        assert_eq!(of("data/redis/dump.rdb").3, "REDIS0011");
        assert!(of("data/redis/appendonlydir/appendonly.aof.manifest")
            .3
            .contains("appendonly.aof.1.base.rdb seq 1 type b"));
        let redis_owner = of("data/redis").1;
        assert!(sent
            .iter()
            .filter(|s| s.0.starts_with("data/redis"))
            .all(|s| s.1 == redis_owner));
    }

    #[test]
    fn a_remote_restore_refuses_a_member_reached_through_a_link() {
        use tar::EntryType::{Directory, Regular, Symlink};
        let Err(err) = remote_tar_of(&[
            ("qdrant/", Directory, 5000, ""),
            ("qdrant/l", Symlink, 5000, "/stackgen-tenant"),
            ("qdrant/l/x", Regular, 5000, "planted"),
        ]) else {
            panic!("a member behind a link was sent");
        };
        assert!(
            format!("{err:#}").contains("qdrant/l/x: reached through a link"),
            "{err:#}"
        );
    }

    #[test]
    fn only_already_existing_roles_and_databases_are_expected() {
        assert!(is_expected_error(
            "psql:<stdin>:14: ERROR:  role \"stackgen\" already exists"
        ));
        assert!(is_expected_error(
            "psql:<stdin>:40: ERROR:  database \"n8n\" already exists"
        ));
        assert!(!is_expected_error(
            "psql:<stdin>:90: ERROR:  relation \"t\" already exists"
        ));
        assert!(!is_expected_error(
            "psql:<stdin>:91: ERROR:  syntax error at or near \"x\""
        ));
    }
}
