//! The one rule for the file system: below a root stackgen owns (the stacks directory,
//! `BASE_DIR/tenants`), nothing is reached through a symbolic link.
//!
//! stackgen runs as root on hosts several people operate, and the trees it writes are shared:
//! the stacks directory is a git checkout (git commits symlinks), and a tenant's data directory
//! is written by the tenant's own containers. A link planted in either would otherwise make
//! root write, chmod, chown, delete or print files anywhere on the host. So:
//!
//! - every component strictly below the root is checked with `symlink_metadata` (or opened with
//!   `O_NOFOLLOW` through `openat`, for the data trees that containers can change while stackgen
//!   runs), and a link is refused as bad input (exit 2) naming the path, never its target;
//! - new files are created with `O_EXCL` (a temporary file, then a rename, which replaces the
//!   name and never follows it), modes and owners are changed through a descriptor opened with
//!   `O_NOFOLLOW` (`fchmod`, `fchown`), and files are read with `O_NOFOLLOW`.
//!
//! The root itself may be a link (an operator's `stacks -> /srv/stacks` is their choice), and so
//! may the manifest: [`manifest_target`] resolves it so that writes go to the file it names and
//! the link stays a link.

use std::ffi::OsStr;
use std::fs::{self, File};
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result};
use rustix::fs::{AtFlags, Mode, OFlags};
use rustix::io::Errno;

use crate::error::UsageError;

/// The refusal for a link where stackgen writes: bad input (exit 2), naming the link only.
pub fn link_error(path: &Path) -> anyhow::Error {
    UsageError::plain(format!(
        "{} is a symbolic link; stackgen never follows links in the trees it writes (nothing was changed)\n  fix: replace it with a real {} (or remove it), then run the command again",
        path.display(),
        if path.extension().is_some() { "file" } else { "file or directory" }
    ))
    .into()
}

/// Whether an I/O error is the kernel's answer to `O_NOFOLLOW` on a link.
fn is_link_errno(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::ELOOP)
}

/// Refuses when any existing component of `path` strictly below `root` is a symbolic link.
/// Components that do not exist end the walk (nothing below them can be a link). `path` must be
/// `root` or lie under it (lexically).
pub fn check_below(root: &Path, path: &Path) -> Result<()> {
    let rel = path.strip_prefix(root).with_context(|| {
        format!(
            "internal error: {} is not under {}",
            path.display(),
            root.display()
        )
    })?;
    let mut cur = root.to_path_buf();
    for c in rel.components() {
        let Component::Normal(name) = c else {
            anyhow::bail!(
                "refusing {}: `.` or `..` below {}",
                path.display(),
                root.display()
            );
        };
        cur.push(name);
        match fs::symlink_metadata(&cur) {
            Ok(m) if m.file_type().is_symlink() => return Err(link_error(&cur)),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            // A file where a directory is expected: the caller's own error explains it better.
            Err(e) if e.kind() == io::ErrorKind::NotADirectory => return Ok(()),
            Err(e) => return Err(e).with_context(|| format!("reading {}", cur.display())),
        }
    }
    Ok(())
}

/// Opens an existing file for reading without following a link in its last component;
/// `Ok(None)` when it does not exist. A FIFO does not block the open.
pub fn open_read(path: &Path) -> io::Result<Option<File>> {
    match fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
    {
        Ok(f) => Ok(Some(f)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// `open_read` with a link turned into [`link_error`].
pub fn open_read_checked(path: &Path) -> Result<Option<File>> {
    match open_read(path) {
        Err(e) if is_link_errno(&e) => Err(link_error(path)),
        other => other.with_context(|| format!("reading {}", path.display())),
    }
}

/// Sets the mode of `path` through a descriptor opened with `O_NOFOLLOW` (`fchmod`), so a link
/// never passes the change on to its target.
pub fn set_mode(path: &Path, mode: u32) -> Result<()> {
    let file = match open_read(path) {
        Ok(Some(f)) => f,
        Ok(None) => {
            return Err(io::Error::from(io::ErrorKind::NotFound))
                .with_context(|| format!("changing the mode of {}", path.display()))
        }
        Err(e) if is_link_errno(&e) => return Err(link_error(path)),
        Err(e) => return Err(e).with_context(|| format!("opening {}", path.display())),
    };
    file.set_permissions(fs::Permissions::from_mode(mode))
        .with_context(|| format!("changing the mode of {}", path.display()))
}

/// Removes the file `path` under `root` after checking that no component below `root` is a
/// link. `unlink` itself never follows the last component (a link there is removed, not its
/// target).
pub fn remove_file(root: &Path, path: &Path) -> Result<()> {
    if let Some(parent) = path.parent() {
        check_below(root, parent)?;
    }
    fs::remove_file(path).with_context(|| format!("removing {}", path.display()))
}

/// What `prepare_at` makes of the last component.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File,
}

/// Opens `rel` under the directory `dir` (one `openat` per component, each with `O_NOFOLLOW`),
/// creating missing directories with mode 0755. `shown` is `dir`'s path, for messages.
fn open_dirs(dir: OwnedFd, shown: &Path, rel: &Path) -> Result<(OwnedFd, PathBuf)> {
    let mut fd = dir;
    let mut at = shown.to_path_buf();
    for c in rel.components() {
        let Component::Normal(name) = c else {
            anyhow::bail!(
                "refusing {}: not a plain path below {}",
                rel.display(),
                shown.display()
            );
        };
        at.push(name);
        fd = open_dir_at(&fd, name, &at, true)?;
    }
    Ok((fd, at))
}

/// One directory component, opened without following a link; created when `create`.
fn open_dir_at(parent: &OwnedFd, name: &OsStr, shown: &Path, create: bool) -> Result<OwnedFd> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    for _ in 0..2 {
        match rustix::fs::openat(parent, name, flags, Mode::empty()) {
            Ok(fd) => return Ok(fd),
            Err(Errno::NOENT) if create => {
                match rustix::fs::mkdirat(parent, name, Mode::from_raw_mode(0o755)) {
                    Ok(()) | Err(Errno::EXIST) => continue,
                    Err(e) => {
                        return Err(io::Error::from(e))
                            .with_context(|| format!("creating {}", shown.display()))
                    }
                }
            }
            Err(e @ (Errno::LOOP | Errno::NOTDIR)) => {
                // Which one: a link (refused as such) or a file in the way.
                return match rustix::fs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW) {
                    Ok(st) if (st.st_mode & libc::S_IFMT) == libc::S_IFLNK => {
                        Err(link_error(shown))
                    }
                    _ => Err(io::Error::from(e)).with_context(|| {
                        format!("{} is not a directory: move it away", shown.display())
                    }),
                };
            }
            Err(e) => {
                return Err(io::Error::from(e))
                    .with_context(|| format!("opening {}", shown.display()))
            }
        }
    }
    anyhow::bail!(
        "{} keeps changing while stackgen creates it",
        shown.display()
    )
}

/// Makes `root/rel` exist as a directory or a (possibly empty) regular file, with `mode` and,
/// when given, `owner`, reaching it through `openat` with `O_NOFOLLOW` at every component below
/// `root`: a link anywhere there is refused and its target is never created, chmodded or
/// chowned. Missing parent directories are created with mode 0755 and the caller's owner.
/// `root` itself is opened normally (it may be a link the operator chose).
pub fn prepare_at(
    root: &Path,
    rel: &Path,
    kind: Kind,
    mode: u32,
    owner: Option<(u32, u32)>,
) -> Result<()> {
    let root_fd = rustix::fs::open(
        root,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(io::Error::from)
    .with_context(|| format!("opening {}", root.display()))?;
    let (parent_rel, name) = match (rel.parent(), rel.file_name()) {
        (Some(p), Some(n)) => (p, n),
        _ => anyhow::bail!("refusing to prepare {}: no file name", rel.display()),
    };
    let (parent, parent_shown) = open_dirs(root_fd, root, parent_rel)?;
    let shown = parent_shown.join(name);
    let fd = match kind {
        Kind::Dir => open_dir_at(&parent, name, &shown, true)?,
        Kind::File => {
            let flags = OFlags::RDONLY
                | OFlags::CREATE
                | OFlags::NOFOLLOW
                | OFlags::NONBLOCK
                | OFlags::CLOEXEC
                | OFlags::NOCTTY;
            match rustix::fs::openat(&parent, name, flags, Mode::from_raw_mode(mode)) {
                Ok(fd) => fd,
                Err(Errno::LOOP) => return Err(link_error(&shown)),
                Err(e) => {
                    return Err(io::Error::from(e))
                        .with_context(|| format!("creating {}", shown.display()))
                }
            }
        }
    };
    let file = File::from(fd);
    let meta = file
        .metadata()
        .with_context(|| format!("reading {}", shown.display()))?;
    if kind == Kind::File && !meta.is_file() {
        anyhow::bail!(
            "{} is not a regular file, where the tenant's service needs one: move it away",
            shown.display()
        );
    }
    file.set_permissions(fs::Permissions::from_mode(mode))
        .with_context(|| format!("changing the mode of {}", shown.display()))?;
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::fchown(&file, Some(uid), Some(gid)).map_err(|e| OwnerError {
            path: shown.clone(),
            uid,
            gid,
            source: e,
        })?;
    }
    Ok(())
}

/// A failed `fchown`: the caller words the advice (only root can give files away).
#[derive(Debug)]
pub struct OwnerError {
    pub path: PathBuf,
    pub uid: u32,
    pub gid: u32,
    pub source: io::Error,
}

impl std::fmt::Display for OwnerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "chown {}:{} {}: {}",
            self.uid,
            self.gid,
            self.path.display(),
            self.source
        )
    }
}

impl std::error::Error for OwnerError {}

/// The file a write to the manifest at `path` goes to: `path` itself, or, when it is a link,
/// the file the link finally names (so the write replaces that file and the link stays).
pub fn manifest_target(path: &Path) -> Result<PathBuf> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => fs::canonicalize(path).with_context(|| {
            format!(
                "{} is a symbolic link that leads to no file; point it at the manifest or replace it with the file",
                path.display()
            )
        }),
        _ => Ok(path.to_path_buf()),
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    fn is_usage(e: &anyhow::Error) -> bool {
        e.downcast_ref::<UsageError>().is_some()
    }

    #[test]
    fn check_below_refuses_a_link_at_any_depth_but_not_the_root() {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tmp.path().join("outside");
        fs::create_dir_all(&outside).unwrap();
        let real = tmp.path().join("real");
        fs::create_dir_all(real.join("t/a")).unwrap();
        let root = tmp.path().join("root");
        symlink(&real, &root).unwrap();
        // The root may be a link; a missing tail is fine.
        check_below(&root, &root.join("t/a/b/c")).unwrap();
        symlink(&outside, real.join("t/link")).unwrap();
        let e = check_below(&root, &root.join("t/link/x")).unwrap_err();
        assert!(is_usage(&e), "{e:#}");
        let msg = format!("{e:#}");
        assert!(msg.contains("t/link is a symbolic link"), "{msg}");
        assert!(!msg.contains("outside"), "the target was named: {msg}");
    }

    #[test]
    fn set_mode_never_reaches_a_link_target() {
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("target");
        fs::write(&target, "x").unwrap();
        fs::set_permissions(&target, fs::Permissions::from_mode(0o600)).unwrap();
        let link = tmp.path().join("link");
        symlink(&target, &link).unwrap();
        assert!(is_usage(&set_mode(&link, 0o644).unwrap_err()));
        let mode = fs::metadata(&target).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(is_usage(&open_read_checked(&link).unwrap_err()));
    }

    #[test]
    fn prepare_at_refuses_links_and_creates_nothing_outside() {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tmp.path().join("outside");
        fs::create_dir_all(&outside).unwrap();
        fs::set_permissions(&outside, fs::Permissions::from_mode(0o700)).unwrap();
        let root = tmp.path().join("root");
        fs::create_dir_all(root.join("data")).unwrap();
        symlink(&outside, root.join("data/pg")).unwrap();
        let e = prepare_at(&root, Path::new("data/pg/sub"), Kind::Dir, 0o750, None).unwrap_err();
        assert!(is_usage(&e), "{e:#}");
        let e = prepare_at(&root, Path::new("data/pg"), Kind::Dir, 0o750, None).unwrap_err();
        assert!(is_usage(&e), "{e:#}");
        let file = outside.join("f");
        fs::write(&file, "").unwrap();
        symlink(&file, root.join("data/f")).unwrap();
        let e = prepare_at(&root, Path::new("data/f"), Kind::File, 0o640, None).unwrap_err();
        assert!(is_usage(&e), "{e:#}");
        assert_eq!(fs::read_dir(&outside).unwrap().count(), 1);
        assert_eq!(
            fs::metadata(&outside).unwrap().permissions().mode() & 0o777,
            0o700
        );
        // The ordinary case still works: parents made, leaf made with its mode.
        prepare_at(&root, Path::new("data/x/y"), Kind::Dir, 0o750, None).unwrap();
        prepare_at(&root, Path::new("data/x/y/f.conf"), Kind::File, 0o640, None).unwrap();
        let m = fs::symlink_metadata(root.join("data/x/y")).unwrap();
        assert!(m.is_dir() && m.permissions().mode() & 0o777 == 0o750);
        let m = fs::symlink_metadata(root.join("data/x/y/f.conf")).unwrap();
        assert!(m.is_file() && m.permissions().mode() & 0o777 == 0o640);
    }

    #[test]
    fn the_manifest_link_resolves_to_its_target() {
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("real.env");
        fs::write(&target, "A=1\n").unwrap();
        let link = tmp.path().join(".env");
        symlink(&target, &link).unwrap();
        assert_eq!(
            manifest_target(&link).unwrap(),
            fs::canonicalize(&target).unwrap()
        );
        assert_eq!(manifest_target(&target).unwrap(), target);
    }
}
