//! Putting rendered files on disk: atomic writes, and `--check` with a unified diff.
//!
//! `<stacks-dir>/<tenant>/` holds only generated files, so a file there that the manifest no
//! longer produces is stale: `render` removes it and `--check` reports it.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use similar::TextDiff;

use crate::render::RenderedFile;

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
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(dir).with_context(|| format!("creating directory {}", dir.display()))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".stackgen-")
        .tempfile_in(dir)
        .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
    tmp.write_all(content)
        .and_then(|()| match durability {
            Durability::Synced => tmp.as_file().sync_all(),
            Durability::Regenerable => Ok(()),
        })
        .with_context(|| format!("writing {}", path.display()))?;
    if let Some(mode) = mode {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(tmp.path(), fs::Permissions::from_mode(mode))
            .with_context(|| format!("setting the mode of {}", path.display()))?;
    }
    tmp.persist(path)
        .map_err(|e| e.error)
        .with_context(|| format!("replacing {}", path.display()))?;
    Ok(())
}

/// What differs between the rendered files and the disk, for one tenant.
#[derive(Debug, Default)]
pub struct Comparison {
    pub changed: Vec<(PathBuf, String)>,
    pub stale: Vec<PathBuf>,
}

impl Comparison {
    pub fn is_clean(&self) -> bool {
        self.changed.is_empty() && self.stale.is_empty()
    }
}

/// Compares rendered files with `stacks_dir`; `tenant_dir` is the tenant's generated-only folder.
pub fn compare(stacks_dir: &Path, tenant_dir: &Path, files: &[RenderedFile]) -> Result<Comparison> {
    let mut cmp = Comparison::default();
    for f in files {
        let path = stacks_dir.join(&f.path);
        let old = match fs::read(&path) {
            Ok(bytes) => Some(String::from_utf8_lossy(&bytes).into_owned()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        if old.as_deref() != Some(f.content.as_str()) {
            let old_text = old.unwrap_or_default();
            let diff = TextDiff::from_lines(&old_text, &f.content)
                .unified_diff()
                .context_radius(3)
                .header(
                    &format!("a/{}", path.display()),
                    &format!("b/{}", path.display()),
                )
                .to_string();
            cmp.changed.push((path, diff));
        }
    }
    let wanted: Vec<PathBuf> = files.iter().map(|f| stacks_dir.join(&f.path)).collect();
    for path in walk(&stacks_dir.join(tenant_dir))? {
        if !wanted.contains(&path) {
            cmp.stale.push(path);
        }
    }
    Ok(cmp)
}

/// Writes what changed and removes stale files; returns the paths written.
pub fn apply(cmp: &Comparison, files: &[RenderedFile], stacks_dir: &Path) -> Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    for f in files {
        let path = stacks_dir.join(&f.path);
        if cmp.changed.iter().any(|(p, _)| *p == path) {
            write_atomic(&path, f.content.as_bytes(), None, Durability::Regenerable)?;
            written.push(path);
        }
    }
    for path in &cmp.stale {
        fs::remove_file(path).with_context(|| format!("removing stale {}", path.display()))?;
    }
    Ok(written)
}

fn walk(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e).with_context(|| format!("listing {}", dir.display())),
    };
    for entry in entries {
        let entry = entry?;
        let path = entry.path();
        if entry.file_type()?.is_dir() {
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
