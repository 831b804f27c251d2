//! Backups that restore: `stackgen backup` takes one archive of a tenant's data (running or
//! stopped), `stackgen restore` puts it back, and `teardown --backup` uses the same code.
//!
//! - [`take`]: how each data directory is captured consistently (pg_dumpall, redis SAVE, a brief
//!   stop for the others) and written into one archive.
//! - [`restore`]: verify every checksum, refuse what would lose data, unpack with each service's
//!   owner, load the SQL into a fresh postgres.
//! - [`archive`]: the file itself (tar + gzip, checksums, atomic and link-safe writing);
//!   [`format`]: its description, `stackgen-backup.json`; [`retention`]: `--keep N`;
//!   [`stamp`]: the UTC timestamps in the names.
//! - [`engine`]: the same for a tenant on another engine, through that engine only (`docker cp`
//!   with a throwaway container there), never this machine's disk.

pub mod archive;
pub mod engine;
pub mod format;
pub mod restore;
pub mod retention;
pub mod stamp;
pub mod take;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::error::UsageError;
use crate::manifest::{Manifest, Tenant};

/// `BACKUP_DIR/<tenant>` when the manifest sets `BACKUP_DIR`, else `BASE_DIR/backups/<tenant>`:
/// outside `BASE_DIR/tenants/<tenant>`, so a purge of the tenant never deletes its backups.
pub fn default_dir(manifest: &Manifest, tenant: &Tenant) -> PathBuf {
    let root = manifest
        .platform
        .backup_dir
        .clone()
        .unwrap_or_else(|| format!("{}/backups", manifest.platform.base_dir));
    Path::new(&root).join(&tenant.name)
}

/// `<tenant>-<stamp>.tar.gz`: the names retention counts.
pub fn archive_name(tenant: &str, stamp: &str) -> String {
    format!("{tenant}-{stamp}.tar.gz")
}

/// Creates the backup directory with mode 0700 (parents as needed). An existing one must be a
/// real directory, not a link: archives hold the tenant's data and are never written through one.
pub fn make_dir(dir: &Path) -> Result<()> {
    match fs::symlink_metadata(dir) {
        Ok(m) if m.is_dir() => return Ok(()),
        Ok(_) => bail!(UsageError::plain(format!(
            "{} is not a directory (a link?): backups are never written through a link; choose another directory",
            dir.display()
        ))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("reading {}", dir.display())),
    }
    if let Some(parent) = dir.parent() {
        fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    fs::create_dir(dir).with_context(|| format!("creating {}", dir.display()))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
        .with_context(|| format!("setting the mode of {}", dir.display()))
}

/// Bytes free for an unprivileged writer where `path` (or its nearest existing parent) lives.
pub fn free_bytes(path: &Path) -> Option<u64> {
    let mut probe = path.to_path_buf();
    while fs::symlink_metadata(&probe).is_err() {
        if !probe.pop() {
            return None;
        }
    }
    let st = rustix::fs::statvfs(&probe).ok()?;
    Some(st.f_bavail.saturating_mul(st.f_frsize))
}

/// Refuses up front (exit 2, nothing written) when `needed` bytes do not fit at `path`.
pub fn check_space(path: &Path, needed: u64, what: &str) -> Result<()> {
    if let Some(free) = free_bytes(path) {
        fits(needed, free, what, &path.display().to_string())?;
    }
    Ok(())
}

/// The space check itself, for this machine's disk ([`check_space`]) and for another engine's
/// host (`crate::ops::engines::free_on_host`, `place` naming that host): exit 2 when `needed`
/// bytes are more than `free`.
pub fn fits(needed: u64, free: u64, what: &str, place: &str) -> Result<(), UsageError> {
    if needed > free {
        return Err(UsageError::plain(format!(
            "{what} needs up to {} but only {} is free at {place}; nothing was written. Free some space or choose another place",
            crate::ops::teardown::disk::human(needed),
            crate::ops::teardown::disk::human(free),
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn space_is_refused_only_when_short() {
        assert!(super::fits(100, 100, "the restore", "x").is_ok());
        let err = super::fits(
            3 << 30,
            1 << 20,
            "the restore",
            "/srv/t on the host of context `h2`",
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            err,
            "the restore needs up to 3.0 GiB but only 1.0 MiB is free at /srv/t on the host of context `h2`; nothing was written. Free some space or choose another place"
        );
    }
}
