//! `backup --keep N`: after a successful backup, delete the tenant's older archives so that the
//! newest N remain. Only names `<tenant>-<stamp>.tar.gz` that are regular files count: another
//! tenant's archives (`team-a-x-...` is not `team-a`'s), safety backups taken by `restore
//! --replace`, links and anything else in the folder are never deleted.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::stamp::is_stamp;

/// The tenant's archives in `dir`, oldest first.
pub fn archives(dir: &Path, tenant: &str) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let prefix = format!("{tenant}-");
    for entry in fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(stamp) = name
            .strip_prefix(&prefix)
            .and_then(|rest| rest.strip_suffix(".tar.gz"))
        else {
            continue;
        };
        if is_stamp(stamp) && entry.file_type()?.is_file() {
            out.push(entry.path());
        }
    }
    out.sort();
    Ok(out)
}

/// Deletes all but the newest `keep` archives; returns the deleted paths.
pub fn prune(dir: &Path, tenant: &str, keep: usize) -> Result<Vec<PathBuf>> {
    let all = archives(dir, tenant)?;
    let excess = all.len().saturating_sub(keep);
    let mut deleted = Vec::new();
    for path in all.into_iter().take(excess) {
        fs::remove_file(&path).with_context(|| format!("deleting {}", path.display()))?;
        deleted.push(path);
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_and_touches_nothing_else() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        let names = [
            "team-a-20261101T000000Z.tar.gz",
            "team-a-20261102T000000Z.tar.gz",
            "team-a-20261103T000000Z.tar.gz",
            "team-a-x-20261101T000000Z.tar.gz",
            "team-a-20261101T000000Z-before-restore.tar.gz",
            "notes.txt",
        ];
        for n in names {
            fs::write(d.join(n), "x").unwrap();
        }
        std::os::unix::fs::symlink("/etc/hostname", d.join("team-a-20261031T000000Z.tar.gz"))
            .unwrap();
        let deleted = prune(d, "team-a", 2).unwrap();
        assert_eq!(deleted, vec![d.join("team-a-20261101T000000Z.tar.gz")]);
        for n in &names[1..] {
            assert!(d.join(n).exists(), "{n} was deleted");
        }
        assert!(fs::symlink_metadata(d.join("team-a-20261031T000000Z.tar.gz")).is_ok());
        assert_eq!(prune(d, "team-a", 5).unwrap().len(), 0);
    }
}
