//! Sizes of what a purge would delete, in words an operator reads, and the deletion itself.
//!
//! Sizes are apparent sizes (file lengths), counted without following symlinks, so a link to a
//! big tree elsewhere neither inflates the figure nor gets walked into.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// One path to delete and how many bytes it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Measured {
    pub path: PathBuf,
    pub bytes: u64,
}

/// Total bytes under `path` (the path itself when it is a file); symlinks count as themselves.
pub fn size(path: &Path) -> Result<u64> {
    let meta = fs::symlink_metadata(path).with_context(|| format!("reading {}", path.display()))?;
    if !meta.is_dir() {
        return Ok(meta.len());
    }
    let mut total = 0;
    for entry in fs::read_dir(path).with_context(|| format!("listing {}", path.display()))? {
        total += size(&entry?.path())?;
    }
    Ok(total)
}

/// Each entry directly under `dir` with its size, sorted by path (one line per service).
pub fn entries(dir: &Path) -> Result<Vec<Measured>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let path = entry?.path();
        let bytes = size(&path)?;
        out.push(Measured { path, bytes });
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// `0 B`, `512 B`, `4.0 KiB`, `12.3 MiB`, `1.5 GiB`.
pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// Deletes a directory tree. `remove_dir_all` unlinks symlinks inside it without following them.
pub fn remove_tree(dir: &Path) -> Result<()> {
    fs::remove_dir_all(dir).with_context(|| format!("deleting {}", dir.display()))
}

/// Removes `dir` only if it is empty (a tenant root left with nothing in it).
pub fn remove_if_empty(dir: &Path) {
    let _ = fs::remove_dir(dir);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_summed_without_following_links() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path().join("data");
        fs::create_dir_all(d.join("postgres/base")).unwrap();
        fs::write(d.join("postgres/base/1"), vec![0u8; 3000]).unwrap();
        fs::write(d.join("postgres/pg_hba.conf"), vec![0u8; 96]).unwrap();
        fs::create_dir_all(d.join("redis")).unwrap();
        let big = tmp.path().join("big");
        fs::write(&big, vec![0u8; 100_000]).unwrap();
        std::os::unix::fs::symlink(&big, d.join("redis/link")).unwrap();
        let e = entries(&d).unwrap();
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].bytes, 3096);
        assert!(e[1].bytes < 1000, "the link was followed: {}", e[1].bytes);
        remove_tree(&d).unwrap();
        assert!(!d.exists() && big.exists());
    }

    #[test]
    fn human_sizes() {
        assert_eq!(human(0), "0 B");
        assert_eq!(human(1023), "1023 B");
        assert_eq!(human(4096), "4.0 KiB");
        assert_eq!(human(12_900_000), "12.3 MiB");
        assert_eq!(human(3 << 30), "3.0 GiB");
    }
}
