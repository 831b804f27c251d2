//! Locks that keep two stackgen processes from interleaving: one for the manifest and the stacks
//! directory, one per tenant for the commands that change its running containers.
//!
//! Both are `flock`s on small files beside the manifest (`<manifest>.lock`,
//! `<manifest>.tenant-<name>.lock`), so they work between any processes on the host and are
//! released by the kernel when a process dies. The holder removes the file when it is done, so
//! no command leaves one behind. A command takes the lock before it reads the
//! manifest and holds it until it has written: the read-modify-write of `init`, `rotate-secrets`
//! or `add-service` can then never lose another's change. A second writer waits a little, then
//! fails with a message naming the lock file (exit 1) having changed nothing.
//!
//! Order, so two commands never wait on each other: a tenant lock first, then the manifest lock.
//! The lock files hold no secret; they are created mode 0600, never through a symbolic link.

use std::fs::{self, File};
use std::io::{self, Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use rustix::fs::FlockOperation;

use crate::cli::Cli;

/// How long a writer waits for the manifest lock: the commands that hold it take seconds.
pub const MANIFEST_WAIT: Duration = Duration::from_secs(10);
/// How long `up`/`down`/`restart`/`teardown` wait for another operation on the same tenant
/// (an `up` waits for health checks, which take a while).
pub const TENANT_WAIT: Duration = Duration::from_secs(60);
/// Overrides both waits, in seconds (tests; a host where a minute is too long or too short).
pub const WAIT_ENV: &str = "STACKGEN_LOCK_WAIT";

/// A held lock; released when dropped (or when the process ends, however it ends). Dropping
/// it also removes the lock file, so no command leaves a file behind beside the manifest.
#[derive(Debug)]
pub struct Lock {
    file: File,
    path: PathBuf,
}

impl Drop for Lock {
    fn drop(&mut self) {
        // Unlink while still holding the lock; a waiter that had opened this file notices that
        // the name is gone (`same_file`) and opens the new one, so two never hold it at once.
        if same_file(&self.file, &self.path) {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// Whether `path` (not followed) is still the file `file` has open.
fn same_file(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), fs::symlink_metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// The lock file for the manifest at `manifest`: beside the file it finally names, so a link
/// and its target share one lock.
pub fn manifest_lock_path(manifest: &Path) -> PathBuf {
    lock_path(manifest, "lock")
}

/// The lock file for one tenant of the manifest at `manifest`.
pub fn tenant_lock_path(manifest: &Path, tenant: &str) -> PathBuf {
    lock_path(manifest, &format!("tenant-{tenant}.lock"))
}

fn lock_path(manifest: &Path, suffix: &str) -> PathBuf {
    let real = fs::canonicalize(manifest).unwrap_or_else(|_| {
        // Not there yet (`init`): beside it, in its resolved directory.
        let dir = manifest
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let dir = fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
        dir.join(manifest.file_name().unwrap_or_default())
    });
    let mut name = real.file_name().unwrap_or_default().to_os_string();
    name.push(".");
    name.push(suffix);
    real.with_file_name(name)
}

/// The manifest lock, for every command that writes the manifest or the stacks directory.
pub fn manifest(cli: &Cli) -> Result<Lock> {
    let path = manifest_lock_path(&cli.env_file);
    acquire(
        &path,
        wait(MANIFEST_WAIT),
        &format!(
            "another stackgen command is changing {} or the stacks directory",
            cli.env_file.display()
        ),
    )
}

/// The lock of one tenant, for commands that change its containers.
pub fn tenant(cli: &Cli, tenant: &str) -> Result<Lock> {
    let path = tenant_lock_path(&cli.env_file, tenant);
    acquire(
        &path,
        wait(TENANT_WAIT),
        &format!("another stackgen command is operating on tenant `{tenant}`"),
    )
}

/// One tenant's lock, then the manifest lock (the documented order).
pub fn tenant_and_manifest(cli: &Cli, name: &str) -> Result<Vec<Lock>> {
    tenants_and_manifest(cli, [name])
}

/// Several tenants' locks (sorted, so two such commands take them in the same order), then the
/// manifest lock.
pub fn tenants_and_manifest<'a>(
    cli: &Cli,
    names: impl IntoIterator<Item = &'a str>,
) -> Result<Vec<Lock>> {
    let mut names: Vec<&str> = names.into_iter().collect();
    names.sort_unstable();
    names.dedup();
    let mut locks = Vec::with_capacity(names.len() + 1);
    for name in names {
        locks.push(tenant(cli, name)?);
    }
    locks.push(manifest(cli)?);
    Ok(locks)
}

/// [`manifest`] when `wanted` (a dry run or `--check` only reads and takes no lock).
pub fn manifest_if(cli: &Cli, wanted: bool) -> Result<Option<Lock>> {
    wanted.then(|| manifest(cli)).transpose()
}

/// [`tenant`] when `wanted`.
pub fn tenant_if(cli: &Cli, name: &str, wanted: bool) -> Result<Option<Lock>> {
    wanted.then(|| tenant(cli, name)).transpose()
}

/// [`tenant_and_manifest`] when `wanted`.
pub fn tenant_and_manifest_if(cli: &Cli, name: &str, wanted: bool) -> Result<Vec<Lock>> {
    tenants_and_manifest_if(cli, &[name], wanted)
}

/// [`tenants_and_manifest`] when `wanted`.
pub fn tenants_and_manifest_if(cli: &Cli, names: &[&str], wanted: bool) -> Result<Vec<Lock>> {
    if wanted {
        tenants_and_manifest(cli, names.iter().copied())
    } else {
        Ok(Vec::new())
    }
}

fn wait(default: Duration) -> Duration {
    std::env::var(WAIT_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map_or(default, Duration::from_secs_f64)
}

/// Opens (creating, mode 0600, never through a link) and locks `path`, polling until `wait`
/// has passed. The holder's PID is written into the file, for the message a waiter prints.
pub fn acquire(path: &Path, wait: Duration, busy: &str) -> Result<Lock> {
    let start = Instant::now();
    let mut told = false;
    loop {
        let mut file = open(path)?;
        match rustix::fs::flock(&file, FlockOperation::NonBlockingLockExclusive) {
            // The holder before us may have removed the file after we opened it: lock again.
            Ok(()) if !same_file(&file, path) => continue,
            Ok(()) => {
                // Best effort: the PID only improves a waiter's message.
                let _ = file
                    .set_len(0)
                    .and_then(|()| file.rewind())
                    .and_then(|()| writeln!(file, "{}", std::process::id()));
                return Ok(Lock {
                    file,
                    path: path.to_path_buf(),
                });
            }
            Err(rustix::io::Errno::WOULDBLOCK) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => {
                return Err(io::Error::from(e))
                    .with_context(|| format!("locking {}", path.display()))
            }
        }
        if start.elapsed() >= wait {
            let holder = holder(&mut file)
                .map(|p| format!(" (process {p})"))
                .unwrap_or_default();
            anyhow::bail!(
                "{busy}{holder}: the lock {} is still held after {} s; nothing was changed\n  fix: wait for that command to finish, then run this one again",
                path.display(),
                wait.as_secs()
            );
        }
        if !told && start.elapsed() >= Duration::from_secs(1) {
            eprintln!("stackgen: waiting for {} ({busy})", path.display());
            told = true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The lock file, opened or created mode 0600, never through a link.
fn open(path: &Path) -> Result<File> {
    let file = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(libc::ELOOP) {
                crate::output::fsafe::link_error(path)
            } else {
                anyhow::Error::new(e).context(format!(
                    "creating the lock file {}\n  fix: stackgen needs to write beside the manifest; run it as a user that may, or move the manifest",
                    path.display()
                ))
            }
        })?;
    let meta = file
        .metadata()
        .with_context(|| format!("reading {}", path.display()))?;
    if !meta.is_file() {
        anyhow::bail!(
            "the lock file {} is not a regular file: move it away",
            path.display()
        );
    }
    Ok(file)
}

/// The PID the holder wrote, if it reads as one.
fn holder(file: &mut File) -> Option<u32> {
    let mut s = String::new();
    file.rewind().ok()?;
    file.take(32).read_to_string(&mut s).ok()?;
    s.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_waits_then_fails_naming_the_lock() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join(".env.lock");
        let held = acquire(&path, Duration::ZERO, "busy").unwrap();
        let start = Instant::now();
        let err = acquire(&path, Duration::from_millis(300), "busy").unwrap_err();
        assert!(start.elapsed() >= Duration::from_millis(300));
        let msg = format!("{err:#}");
        assert!(msg.contains(&path.display().to_string()), "{msg}");
        assert!(
            msg.contains(&format!("process {}", std::process::id())),
            "{msg}"
        );
        drop(held);
        assert!(!path.exists(), "the lock file is removed on release");
        let again = acquire(&path, Duration::ZERO, "busy").unwrap();
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        drop(again);
    }

    #[test]
    fn a_link_and_its_target_share_one_lock_and_a_linked_lock_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let real = tmp.path().join("real.env");
        fs::write(&real, "").unwrap();
        let link = tmp.path().join(".env");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        assert_eq!(manifest_lock_path(&link), manifest_lock_path(&real));
        assert!(manifest_lock_path(&real).ends_with("real.env.lock"));
        let other = tmp.path().join("victim");
        fs::write(&other, "keep").unwrap();
        let lock = tmp.path().join("x.lock");
        std::os::unix::fs::symlink(&other, &lock).unwrap();
        let err = acquire(&lock, Duration::ZERO, "busy").unwrap_err();
        assert!(err.downcast_ref::<crate::error::UsageError>().is_some());
        assert_eq!(fs::read_to_string(&other).unwrap(), "keep");
    }
}
