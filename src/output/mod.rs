//! Putting rendered files on disk: atomic writes, and `--check` with a unified diff.
//!
//! `<stacks-dir>/<tenant>/` holds only generated files, so a file there that the manifest no
//! longer produces is stale: `render` removes it and `--check` reports it. Only paths stackgen can
//! generate count; any other file there is left alone.
//!
//! `render` is all or nothing: every changed file is first written to a temporary file beside
//! its target (`.stackgen-*`), and only when all of them are complete are they renamed into place.
//! A full disk, a read-only or unwritable directory therefore leaves every existing file as it
//! was, and no temporary file or new directory behind.

pub mod fsafe;
pub mod lock;

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use similar::TextDiff;

use crate::render::RenderedFile;

/// The mode of generated files: no secrets are in them (tested), and services that run as the
/// tenant's UID read them through bind mounts, so they must be readable by everyone.
pub const GENERATED_MODE: u32 = 0o644;

/// How hard `write_atomic` works to survive a power cut, beyond never exposing half a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// fsync before the rename: for the manifest, the one source of truth.
    Synced,
    /// Rename only: for generated files, which `render` recreates from the manifest at any time.
    /// An fsync per file would triple the time to render a thousand tenants.
    Regenerable,
}

/// Writes `content` to `path` through a temporary file in the same directory and a rename, so a
/// reader never sees half a file and a failure leaves the old file in place.
pub fn write_atomic(
    path: &Path,
    content: &[u8],
    mode: Option<u32>,
    durability: Durability,
) -> Result<()> {
    let dir = parent(path);
    // The rename would replace a link with a file; the callers resolve or refuse links first
    // (the manifest's through `fsafe::manifest_target`), so one here was planted meanwhile.
    if fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
        return Err(crate::output::fsafe::link_error(path));
    }
    fs::create_dir_all(dir)
        .map_err(|e| io_failure(&format!("creating directory {}", dir.display()), dir, &e))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".stackgen-")
        .tempfile_in(dir)
        .map_err(|e| {
            io_failure(
                &format!("creating a temporary file in {}", dir.display()),
                dir,
                &e,
            )
        })?;
    tmp.as_file_mut()
        .write_all(content)
        .and_then(|()| match durability {
            Durability::Synced => tmp.as_file().sync_all(),
            Durability::Regenerable => Ok(()),
        })
        .map_err(|e| io_failure(&format!("writing {}", path.display()), dir, &e))?;
    if let Some(mode) = mode {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(fs::Permissions::from_mode(mode))
            .with_context(|| format!("setting the mode of {}", path.display()))?;
    }
    tmp.persist(path)
        .map_err(|e| io_failure(&format!("replacing {}", path.display()), dir, &e.error))?;
    Ok(())
}

/// The directory a file is written in (`.` for a bare file name).
fn parent(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// An I/O failure while writing under `dir`, with what the operator can do about it.
fn io_failure(what: &str, dir: &Path, e: &io::Error) -> anyhow::Error {
    io_failure_with(what, dir, dir, e, None)
}

/// `io_failure` with a line saying what state the failure left the files in; `root` is the
/// directory the operator chose (named in the advice about space and read-only file systems).
fn io_failure_with(
    what: &str,
    dir: &Path,
    root: &Path,
    e: &io::Error,
    outcome: Option<&str>,
) -> anyhow::Error {
    use io::ErrorKind as K;
    let (d, r) = (dir.display(), root.display());
    let fix = match e.kind() {
        K::StorageFull | K::QuotaExceeded => format!(
            "free space on the file system that holds {r} (`df -h {r}`), or write elsewhere with --stacks-dir DIR"
        ),
        K::ReadOnlyFilesystem => format!(
            "{r} is on a read-only file system: remount it read-write, or write elsewhere with --stacks-dir DIR"
        ),
        K::PermissionDenied => format!(
            "run stackgen as a user that may write to {d} (see `ls -ld {d}`), or write elsewhere with --stacks-dir DIR"
        ),
        K::NotADirectory | K::AlreadyExists | K::IsADirectory => format!(
            "something that is not a directory is in the way under {r}: move it away, or write elsewhere with --stacks-dir DIR"
        ),
        _ => "check the path and its file system, then run the command again".to_string(),
    };
    match outcome {
        Some(o) => anyhow::anyhow!("{what}: {e}\n  {o}\n  fix: {fix}"),
        None => anyhow::anyhow!("{what}: {e}\n  fix: {fix}"),
    }
}

/// What differs between the rendered files and the disk, for one tenant.
#[derive(Debug, Default)]
pub struct Comparison {
    pub changed: Vec<(PathBuf, String)>,
    pub stale: Vec<PathBuf>,
    /// Files with the rendered content whose mode keeps the tenant's services from reading them
    /// (earlier versions wrote 0600): `render` makes them 0644; `--check` does not count them.
    pub unreadable: Vec<PathBuf>,
}

impl Comparison {
    pub fn is_clean(&self) -> bool {
        self.changed.is_empty() && self.stale.is_empty()
    }
}

/// Reads a file and its mode; `None` when it does not exist. Never through a link: a link
/// there is refused, so its target (the manifest, say) is never read into a diff.
fn read_existing(path: &Path) -> Result<Option<(Vec<u8>, u32)>> {
    use std::os::unix::fs::PermissionsExt;
    let mut file = match crate::output::fsafe::open_read(path) {
        Ok(Some(f)) => f,
        Ok(None) => return Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(crate::output::fsafe::link_error(path))
        }
        Err(e) if e.kind() == io::ErrorKind::NotADirectory => return Err(file_in_the_way(path)),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let meta = file
        .metadata()
        .with_context(|| format!("reading {}", path.display()))?;
    if meta.is_dir() {
        anyhow::bail!(
            "{} is a directory, where stackgen writes a file\n  fix: move the directory away",
            path.display()
        );
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.read_to_end(&mut bytes)
        .with_context(|| format!("reading {}", path.display()))?;
    Ok(Some((bytes, meta.permissions().mode())))
}

/// The error for a path that cannot be reached because one of its directories is a file.
fn file_in_the_way(path: &Path) -> anyhow::Error {
    let blocker = path
        .ancestors()
        .skip(1)
        .find(|a| a.exists() && !a.is_dir())
        .unwrap_or(path);
    anyhow::anyhow!(
        "{} is a file, where stackgen needs a directory for the generated files\n  fix: move the file away, or write elsewhere with --stacks-dir DIR",
        blocker.display()
    )
}

/// Compares rendered files with `stacks_dir`; `tenant_dir` is the tenant's generated-only folder.
pub fn compare(stacks_dir: &Path, tenant_dir: &Path, files: &[RenderedFile]) -> Result<Comparison> {
    compare_with(stacks_dir, tenant_dir, files, Diffs::Unified)
}

/// Whether `compare_with` computes the diff text of each changed file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Diffs {
    /// A unified diff per changed file, for `--check` and drift reports.
    Unified,
    /// Empty diff texts: `render` only writes the files, and a diff of a thousand tenants' new
    /// files would double the memory and add a third to the time.
    Skip,
}

/// `compare`, with or without the diff texts.
pub fn compare_with(
    stacks_dir: &Path,
    tenant_dir: &Path,
    files: &[RenderedFile],
    diffs: Diffs,
) -> Result<Comparison> {
    let tenant = tenant_dir.to_string_lossy();
    compare_generated(stacks_dir, tenant_dir, files, diffs, &|rel| {
        crate::render::compose::may_generate(&tenant, rel)
    })
}

/// `compare_with` for any render target: `may_generate` says which paths under `tenant_dir`
/// that target writes (only those can be stale).
pub fn compare_generated(
    stacks_dir: &Path,
    tenant_dir: &Path,
    files: &[RenderedFile],
    diffs: Diffs,
    may_generate: &(dyn Fn(&Path) -> bool + Sync),
) -> Result<Comparison> {
    let mut cmp = Comparison::default();
    // The tenant's folder and every folder on the way to a file: no links (fsafe).
    crate::output::fsafe::check_below(stacks_dir, &stacks_dir.join(tenant_dir))?;
    for f in files {
        let path = stacks_dir.join(&f.path);
        crate::output::fsafe::check_below(stacks_dir, &path)?;
        let old = read_existing(&path)?;
        match &old {
            Some((bytes, mode)) if bytes.as_slice() == f.content.as_bytes() => {
                if mode & 0o044 != 0o044 {
                    cmp.unreadable.push(path);
                }
            }
            _ if diffs == Diffs::Skip => cmp.changed.push((path, String::new())),
            _ => {
                let old_text = old
                    .map(|(b, _)| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_default();
                // Redacted: the old side is whatever the file held (a pasted secret, or the
                // manifest itself through a link), and the diff is printed and logged in CI.
                let diff = crate::manifest::redact::text(
                    &TextDiff::from_lines(&old_text, &f.content)
                        .unified_diff()
                        .context_radius(3)
                        .header(
                            &format!("a/{}", path.display()),
                            &format!("b/{}", path.display()),
                        )
                        .to_string(),
                );
                cmp.changed.push((path, diff));
            }
        }
    }
    let wanted: std::collections::HashSet<PathBuf> =
        files.iter().map(|f| stacks_dir.join(&f.path)).collect();
    let root = stacks_dir.join(tenant_dir);
    for path in walk(&root)? {
        // Only a file stackgen could have generated is stale; anything else (a mistyped
        // --stacks-dir, an operator's note) is never reported or removed.
        let generated = path.strip_prefix(&root).is_ok_and(may_generate);
        if generated && !wanted.contains(&path) {
            crate::output::fsafe::check_below(stacks_dir, &path)?;
            cmp.stale.push(path);
        }
    }
    Ok(cmp)
}

/// Writes what changed and removes stale files; returns the paths written. All or nothing: see
/// `apply_all`.
pub fn apply(cmp: &Comparison, files: &[RenderedFile], stacks_dir: &Path) -> Result<Vec<PathBuf>> {
    let mut written = apply_all(&[(cmp, files)], stacks_dir)?;
    Ok(written.pop().unwrap_or_default())
}

/// Writes what changed for several tenants at once and removes their stale files; returns the
/// paths written, per tenant. Every changed file is written to a temporary file first; only when
/// all are complete are they renamed into place. On a failure before that point (full disk,
/// read-only or unwritable directory) nothing on disk has changed: the temporary files and the
/// directories made for them are removed again.
pub fn apply_all(
    items: &[(&Comparison, &[RenderedFile])],
    stacks_dir: &Path,
) -> Result<Vec<Vec<PathBuf>>> {
    // Staging is a few system calls per file: on all cores, as rendering is (twelve thousand
    // files for a thousand tenants).
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(items.len())
        .max(1);
    let chunk = items.len().div_ceil(threads).max(1);
    // Checked again right before writing (the comparison may be older): no link on the way to
    // any file this writes or removes.
    for (cmp, _) in items {
        for path in cmp.changed.iter().map(|(p, _)| p).chain(&cmp.stale) {
            crate::output::fsafe::check_below(stacks_dir, path)?;
        }
    }
    let parts: Vec<Result<Staged, StageError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .map(|part| scope.spawn(move || stage_part(part, stacks_dir)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("staging thread panicked"))
            .collect()
    });
    let mut stage = Stage::default();
    let mut written = Vec::with_capacity(items.len());
    let mut failure = None;
    for part in parts {
        match part {
            Ok((mut s, w)) => {
                stage.absorb(&mut s);
                written.extend(w);
            }
            Err(e) => failure = failure.or(Some(e)),
        }
    }
    if let Some((what, dir, e)) = failure {
        drop(stage); // removes every temporary file and new directory
        let outcome = format!(
            "nothing was changed: every file under {} is as it was",
            stacks_dir.display()
        );
        return Err(io_failure_with(&what, &dir, stacks_dir, &e, Some(&outcome)));
    }
    let total = stage.files.len();
    stage.commit().map_err(|(done, what, dir, e)| {
        let outcome = format!(
            "{done} of {total} changed file(s) had been replaced (each one whole); run the command again once this is fixed"
        );
        io_failure_with(&what, &dir, stacks_dir, &e, Some(&outcome))
    })?;
    for (cmp, _) in items {
        for path in &cmp.unreadable {
            // Through a descriptor opened with O_NOFOLLOW: a link's target keeps its mode.
            crate::output::fsafe::check_below(stacks_dir, path)?;
            crate::output::fsafe::set_mode(path, GENERATED_MODE)
                .with_context(|| format!("making {} readable", path.display()))?;
        }
        for path in &cmp.stale {
            crate::output::fsafe::remove_file(stacks_dir, path)
                .with_context(|| format!("removing stale {}", path.display()))?;
        }
    }
    Ok(written)
}

/// Writes the changed files of some tenants to temporary files; the paths they will replace.
fn stage_part(
    items: &[(&Comparison, &[RenderedFile])],
    stacks_dir: &Path,
) -> Result<Staged, StageError> {
    let mut stage = Stage::default();
    let mut written = Vec::with_capacity(items.len());
    for (cmp, files) in items {
        let mut paths = Vec::with_capacity(cmp.changed.len());
        if !cmp.changed.is_empty() {
            let changed: std::collections::HashSet<&PathBuf> =
                cmp.changed.iter().map(|(p, _)| p).collect();
            for f in files.iter() {
                let path = stacks_dir.join(&f.path);
                if changed.contains(&path) {
                    stage.write(&path, f.content.as_bytes())?;
                    paths.push(path);
                }
            }
        }
        written.push(paths);
    }
    Ok((stage, written))
}

/// Complete temporary files waiting to be renamed over their targets. Dropped without `commit`,
/// it deletes them and the directories it created.
#[derive(Default)]
struct Stage {
    files: Vec<(tempfile::TempPath, PathBuf)>,
    created_dirs: Vec<PathBuf>,
}

type StageError = (String, PathBuf, io::Error);

/// A stage and, per tenant, the paths its files will replace.
type Staged = (Stage, Vec<Vec<PathBuf>>);

impl Stage {
    fn write(&mut self, path: &Path, content: &[u8]) -> Result<(), StageError> {
        use std::os::unix::fs::PermissionsExt;
        let dir = parent(path);
        self.create_dirs(dir)?;
        let fail = |what: String| move |e: io::Error| (what, dir.to_path_buf(), e);
        let mut tmp = tempfile::Builder::new()
            .prefix(".stackgen-")
            .tempfile_in(dir)
            .map_err(fail(format!(
                "creating a temporary file in {}",
                dir.display()
            )))?;
        // Through the inner file: NamedTempFile's own errors name the temporary path, which is
        // deleted again and would only confuse the operator.
        tmp.as_file_mut()
            .write_all(content)
            .and_then(|()| {
                tmp.as_file()
                    .set_permissions(fs::Permissions::from_mode(GENERATED_MODE))
            })
            .map_err(fail(format!("writing {}", path.display())))?;
        // Closes the file (one open descriptor per file would run out with a thousand tenants);
        // the path is still deleted on drop until it is persisted.
        self.files.push((tmp.into_temp_path(), path.to_path_buf()));
        Ok(())
    }

    /// Takes over another stage's files and directories (which then has nothing to clean up).
    fn absorb(&mut self, other: &mut Stage) {
        self.files.append(&mut other.files);
        self.created_dirs.append(&mut other.created_dirs);
    }

    /// `create_dir_all` that remembers what it created, so a failed render can remove it again.
    fn create_dirs(&mut self, dir: &Path) -> Result<(), StageError> {
        // Links below the stacks directory were refused before staging (fsafe::check_below);
        // the stacks directory itself may be one.
        if dir.is_dir() {
            return Ok(());
        }
        if let Some(up) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            self.create_dirs(up)?;
        }
        match fs::create_dir(dir) {
            Ok(()) => {
                self.created_dirs.push(dir.to_path_buf());
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
            Err(e) => Err((
                format!("creating directory {}", dir.display()),
                dir.to_path_buf(),
                e,
            )),
        }
    }

    /// Renames every temporary file over its target. On a failure, returns how many were done.
    fn commit(mut self) -> Result<(), (usize, String, PathBuf, io::Error)> {
        // The files not reached after a failure are deleted when the iterator drops.
        for (done, (tmp, target)) in std::mem::take(&mut self.files).into_iter().enumerate() {
            if let Err(e) = tmp.persist(&target) {
                let dir = parent(&target).to_path_buf();
                return Err((
                    done,
                    format!("replacing {}", target.display()),
                    dir,
                    e.error,
                ));
            }
        }
        self.created_dirs.clear();
        Ok(())
    }
}

impl Drop for Stage {
    fn drop(&mut self) {
        // Temporary files first (TempPath deletes itself), then the directories made for them,
        // deepest first (several threads' stages may have been merged).
        self.files.clear();
        self.created_dirs
            .sort_by_key(|d| std::cmp::Reverse(d.components().count()));
        for dir in &self.created_dirs {
            let _ = fs::remove_dir(dir);
        }
    }
}

fn walk(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
        Err(e) if e.kind() == io::ErrorKind::NotADirectory => return Err(file_in_the_way(dir)),
        Err(e) => return Err(e).with_context(|| format!("listing {}", dir.display())),
    };
    for entry in entries {
        let entry = entry.with_context(|| format!("listing {}", dir.display()))?;
        let path = entry.path();
        let kind = entry
            .file_type()
            .with_context(|| format!("reading {}", path.display()))?;
        if kind.is_dir() {
            out.extend(walk(&path)?);
        } else if !entry
            .file_name()
            .to_string_lossy()
            .starts_with(".stackgen-")
        {
            out.push(path);
        }
    }
    out.sort();
    Ok(out)
}
