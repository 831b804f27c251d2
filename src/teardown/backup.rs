//! `teardown --backup DIR`: where the postgres dump and the data archive go, and writing them so
//! that a file in DIR is always complete (temporary name, then rename) and private (mode 0600:
//! a dump holds password hashes and the tenant's data).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};

use crate::compose::{exec, Cmd};
use crate::error::CommandFailed;

/// The backup's file names for one tenant and one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    pub dump: PathBuf,
    pub archive: PathBuf,
}

pub fn names(dir: &Path, tenant: &str, stamp: &str) -> Names {
    Names {
        dump: dir.join(format!("{tenant}-{stamp}-postgres.sql")),
        archive: dir.join(format!("{tenant}-{stamp}-data.tar.gz")),
    }
}

/// `20261128T154110Z`: UTC, sortable, no characters a file system or a shell minds.
pub fn stamp(now: SystemTime) -> String {
    let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Creates the backup directory (mode 0700 when stackgen creates it).
pub fn make_dir(dir: &Path) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
        .with_context(|| format!("setting the mode of {}", dir.display()))
}

fn partial(to: &Path) -> PathBuf {
    let mut name = to.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    to.with_file_name(name)
}

/// Runs `cmd` with its stdout going to `to` (through a `.partial` file, renamed on success).
/// Returns the bytes written; an empty dump is an error, not a backup.
pub fn run_to_file(cmd: &Cmd, to: &Path) -> Result<u64> {
    let tmp = partial(to);
    let file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)
        .with_context(|| format!("creating {}", tmp.display()))?;
    fs::set_permissions(&tmp, fs::Permissions::from_mode(0o600))?;
    let (program, args) = cmd.argv.split_first().expect("a command has a program");
    // compose exec interpolates the stack too: the shell must not override the manifest.
    let out = exec::without_manifest_keys(duct::cmd(program, args), &cmd.argv)
        .stdout_file(file)
        .stderr_capture()
        .stdin_null()
        .unchecked()
        .run()
        .with_context(|| format!("could not start `{}`", program.to_string_lossy()));
    let out = match out {
        Ok(o) => o,
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
    };
    if !out.status.success() {
        let _ = fs::remove_file(&tmp);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let err = anyhow::Error::new(CommandFailed {
            what: cmd.purpose.clone(),
            code: exec::status_code(out.status),
        });
        return Err(match exec::first_line(&stderr) {
            Some(line) => err.context(line.to_string()),
            None => err,
        });
    }
    let bytes = fs::metadata(&tmp)?.len();
    if bytes == 0 {
        let _ = fs::remove_file(&tmp);
        anyhow::bail!("{} wrote nothing; no backup was made", cmd.purpose);
    }
    fs::rename(&tmp, to).with_context(|| format!("renaming to {}", to.display()))?;
    Ok(bytes)
}

/// Runs `make` (a command that writes the file named `partial(to)`), then renames it into place.
pub fn run_archive(make: &Cmd, to: &Path) -> Result<u64> {
    let tmp = partial(to);
    let result = exec::capture_ok(make);
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    fs::set_permissions(&tmp, fs::Permissions::from_mode(0o600))
        .with_context(|| format!("setting the mode of {}", tmp.display()))?;
    let bytes = fs::metadata(&tmp)?.len();
    fs::rename(&tmp, to).with_context(|| format!("renaming to {}", to.display()))?;
    Ok(bytes)
}

/// Where an archive is written while it is incomplete.
pub fn partial_path(to: &Path) -> PathBuf {
    partial(to)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_are_utc_and_sortable() {
        assert_eq!(stamp(UNIX_EPOCH), "19700101T000000Z");
        let t = UNIX_EPOCH + std::time::Duration::from_secs(1_795_966_270);
        assert_eq!(stamp(t), "20261129T153110Z");
        let leap = UNIX_EPOCH + std::time::Duration::from_secs(951_782_400);
        assert_eq!(stamp(leap), "20000229T000000Z");
        let n = names(Path::new("/b"), "team-a", "X");
        assert_eq!(n.dump, PathBuf::from("/b/team-a-X-postgres.sql"));
        assert_eq!(n.archive, PathBuf::from("/b/team-a-X-data.tar.gz"));
    }

    #[test]
    fn a_failed_or_empty_command_leaves_no_file() {
        let tmp = tempfile::tempdir().unwrap();
        let to = tmp.path().join("d.sql");
        let sh =
            |script: &str| Cmd::new(vec!["sh".into(), "-c".into(), script.into()], "test dump");
        assert!(run_to_file(&sh("echo partial; exit 3"), &to).is_err());
        assert!(!to.exists() && !partial(&to).exists());
        assert!(run_to_file(&sh("true"), &to).is_err());
        assert!(!to.exists());
        assert_eq!(run_to_file(&sh("echo 'SELECT 1;'"), &to).unwrap(), 10);
        assert_eq!(fs::read_to_string(&to).unwrap(), "SELECT 1;\n");
        let mode = fs::metadata(&to).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
}
