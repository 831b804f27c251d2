//! The checks that stand between `teardown --purge-data` and `rm -rf`. They do not trust the
//! manifest validator (which already refuses a `/` or relative `BASE_DIR`): the design's script
//! deleted with a glob built from an unchecked variable, and this is where that cannot happen.
//!
//! A path is deleted only when it is, after resolving every symlink, exactly
//! `BASE_DIR/tenants/<tenant>/data` (or a rendered profile of that tenant); a symlink anywhere
//! below `BASE_DIR` on the way there is refused, since it could point at another tenant or `/`.

use std::fs;
use std::path::{Component, Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::error::UsageError;
use crate::manifest::values;

/// `BASE_DIR` as destructive commands accept it: absolute, not `/`, no `.`/`..`, not empty.
pub fn base_dir(value: &str) -> Result<PathBuf, UsageError> {
    let refuse = |why: &str| {
        Err(UsageError::plain(format!(
            "refusing to delete tenant data: BASE_DIR `{value}` {why}; fix BASE_DIR in the manifest"
        )))
    };
    if value.trim().is_empty() {
        return refuse("is empty");
    }
    let path = Path::new(value);
    if !path.is_absolute() {
        return refuse("is not an absolute path");
    }
    // `Path::components` silently drops inner `.` segments: check the text as written too.
    if value.split('/').any(|c| c == "." || c == "..") {
        return refuse("contains `.` or `..`");
    }
    let mut normal = 0;
    for c in path.components() {
        match c {
            Component::RootDir => {}
            Component::Normal(_) => normal += 1,
            _ => return refuse("contains `.` or `..`"),
        }
    }
    if normal == 0 {
        return refuse("is the root directory");
    }
    Ok(path.to_path_buf())
}

/// A tenant name, checked again: it becomes a path component.
fn check_tenant(tenant: &str) -> Result<(), UsageError> {
    values::tenant_name(tenant)
        .map_err(|(m, h)| UsageError::plain(format!("refusing to touch tenant data: {m} ({h})")))
}

/// `BASE_DIR/tenants/<tenant>`: the only tree a tenant's data lives in.
pub fn tenant_root(base: &Path, tenant: &str) -> Result<PathBuf, UsageError> {
    check_tenant(tenant)?;
    Ok(base.join("tenants").join(tenant))
}

/// Proves that `path` (which must exist) is exactly `BASE_DIR/<relative>` once symlinks are
/// resolved, and that the resolved `BASE_DIR` is not `/`.
fn resolves_to(base: &Path, path: &Path, relative: &Path) -> Result<PathBuf> {
    let real_base =
        fs::canonicalize(base).with_context(|| format!("resolving {}", base.display()))?;
    if real_base.parent().is_none() {
        bail!(
            "refusing to delete {}: BASE_DIR {} resolves to /",
            path.display(),
            base.display()
        );
    }
    let real = fs::canonicalize(path).with_context(|| format!("resolving {}", path.display()))?;
    let expected = real_base.join(relative);
    if real != expected {
        bail!(
            "refusing to delete {}: it resolves to {}, not {} (a symlink below BASE_DIR?)",
            path.display(),
            real.display(),
            expected.display()
        );
    }
    Ok(real)
}

/// The tenant's data directory, checked: `Ok(None)` when it does not exist, else its path,
/// proven to be `BASE_DIR/tenants/<tenant>/data` and a real directory (not a symlink).
pub fn data_dir(base_dir_value: &str, tenant: &str) -> Result<Option<PathBuf>> {
    checked_dir(base_dir_value, tenant, None)
}

/// One service's data directory, `BASE_DIR/tenants/<tenant>/data/<service>`, checked like
/// [`data_dir`] (`remove-service --purge-data` deletes exactly this).
pub fn service_data_dir(
    base_dir_value: &str,
    tenant: &str,
    service: &str,
) -> Result<Option<PathBuf>> {
    // Service names follow the tenant-name rules (custom.rs): one plain path component.
    values::tenant_name(service).map_err(|(m, h)| {
        UsageError::plain(format!("refusing to touch service data: {m} ({h})"))
    })?;
    checked_dir(base_dir_value, tenant, Some(service))
}

fn checked_dir(
    base_dir_value: &str,
    tenant: &str,
    service: Option<&str>,
) -> Result<Option<PathBuf>> {
    let base = base_dir(base_dir_value)?;
    let mut relative = Path::new("tenants").join(tenant).join("data");
    if let Some(s) = service {
        relative.push(s);
    }
    tenant_root(&base, tenant)?;
    let dir = base.join(&relative);
    match fs::symlink_metadata(&dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading {}", dir.display())),
        Ok(m) if !m.is_dir() => bail!(
            "refusing to delete {}: it is not a directory (a symlink?)",
            dir.display()
        ),
        Ok(_) => {}
    }
    resolves_to(&base, &dir, &relative)?;
    Ok(Some(dir))
}

/// Whether `inner` lies inside `outer` once both are resolved (a missing path is resolved
/// through its nearest existing ancestor). Used to refuse a backup directory that the purge
/// would delete.
pub fn is_inside(inner: &Path, outer: &Path) -> bool {
    fn resolve(p: &Path) -> PathBuf {
        let mut missing = Vec::new();
        let mut cur = p.to_path_buf();
        loop {
            if let Ok(real) = fs::canonicalize(&cur) {
                let mut out = real;
                for m in missing.iter().rev() {
                    out.push(m);
                }
                return out;
            }
            match (cur.file_name().map(|n| n.to_os_string()), cur.parent()) {
                (Some(name), Some(parent)) => {
                    missing.push(name);
                    cur = parent.to_path_buf();
                }
                _ => return p.to_path_buf(),
            }
        }
    }
    resolve(inner).starts_with(resolve(outer))
}

/// The tenant's rendered AppArmor profiles: regular files named `ai-platform-<tenant>...` in
/// `<stacks>/<tenant>/apparmor/`. Symlinks and anything else there are left alone.
pub fn profile_files(stacks_dir: &Path, tenant: &str) -> Result<Vec<PathBuf>> {
    check_tenant(tenant)?;
    let dir = stacks_dir.join(tenant).join("apparmor");
    let entries = match fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("listing {}", dir.display())),
    };
    let prefix = format!("ai-platform-{tenant}");
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let is_file = entry.file_type()?.is_file();
        let ours = name == prefix || name.starts_with(&format!("{prefix}-"));
        if is_file && ours {
            out.push(entry.path());
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    #[test]
    fn base_dir_refuses_root_empty_and_relative() {
        for bad in [
            "", "  ", "/", "//", "/.", "/srv/..", "srv/ai", "./x", "/srv/./x",
        ] {
            let err = base_dir(bad).unwrap_err().to_string();
            assert!(err.contains("refusing"), "{bad:?}: {err}");
        }
        assert_eq!(base_dir("/srv/ai").unwrap(), PathBuf::from("/srv/ai"));
        // Even a manifest the validator never saw cannot get past data_dir.
        assert!(data_dir("/", "team-a").is_err());
        assert!(data_dir("", "team-a").is_err());
        assert!(data_dir("/srv/x", "../etc").is_err());
        assert!(data_dir("/srv/x", "").is_err());
    }

    #[test]
    fn data_dir_is_exactly_the_tenants_and_never_through_a_symlink() {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path().join("base");
        let b = base.to_str().unwrap();
        // Missing: nothing to delete.
        assert_eq!(data_dir(b, "team-a").unwrap(), None);
        fs::create_dir_all(base.join("tenants/team-a/data/postgres")).unwrap();
        assert_eq!(
            data_dir(b, "team-a").unwrap(),
            Some(base.join("tenants/team-a/data"))
        );

        // tenants/team-b is a symlink to team-a's tree: refused.
        symlink(base.join("tenants/team-a"), base.join("tenants/team-b")).unwrap();
        let err = data_dir(b, "team-b").unwrap_err().to_string();
        assert!(err.contains("refusing"), "{err}");

        // data itself a symlink to somewhere else: refused.
        let elsewhere = tmp.path().join("precious");
        fs::create_dir_all(&elsewhere).unwrap();
        fs::create_dir_all(base.join("tenants/team-c")).unwrap();
        symlink(&elsewhere, base.join("tenants/team-c/data")).unwrap();
        let err = data_dir(b, "team-c").unwrap_err().to_string();
        assert!(err.contains("not a directory"), "{err}");

        // `tenants` a symlink out of BASE_DIR: refused.
        let base2 = tmp.path().join("base2");
        fs::create_dir_all(&base2).unwrap();
        fs::create_dir_all(tmp.path().join("other/team-a/data")).unwrap();
        symlink(tmp.path().join("other"), base2.join("tenants")).unwrap();
        let err = data_dir(base2.to_str().unwrap(), "team-a")
            .unwrap_err()
            .to_string();
        assert!(err.contains("resolves to"), "{err}");
        assert!(elsewhere.exists() && tmp.path().join("other/team-a/data").exists());
    }

    #[test]
    fn a_service_dir_is_one_plain_component_under_the_tenants_data() {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path().join("base");
        let b = base.to_str().unwrap();
        fs::create_dir_all(base.join("tenants/t/data/my-app")).unwrap();
        assert_eq!(
            service_data_dir(b, "t", "my-app").unwrap(),
            Some(base.join("tenants/t/data/my-app"))
        );
        assert_eq!(service_data_dir(b, "t", "other").unwrap(), None);
        for bad in ["", "..", "a/b", "/etc", "UP"] {
            assert!(service_data_dir(b, "t", bad).is_err(), "{bad:?}");
        }
        assert!(service_data_dir("/", "t", "my-app").is_err());
        symlink(
            base.join("tenants/t/data/my-app"),
            base.join("tenants/t/data/alias"),
        )
        .unwrap();
        assert!(service_data_dir(b, "t", "alias").is_err());
    }

    #[test]
    fn a_backup_inside_the_data_is_detected() {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("tenants/t/data");
        fs::create_dir_all(&data).unwrap();
        assert!(is_inside(&data.join("not-yet/there"), &data));
        assert!(is_inside(&data, &data));
        assert!(!is_inside(&tmp.path().join("backups"), &data));
        symlink(&data, tmp.path().join("sneaky")).unwrap();
        assert!(is_inside(&tmp.path().join("sneaky/b"), &data));
    }

    #[test]
    fn only_the_tenants_regular_profile_files_are_listed() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("team-a/apparmor");
        fs::create_dir_all(&dir).unwrap();
        for f in [
            "ai-platform-team-a",
            "ai-platform-team-a-openclaw",
            "ai-platform-team-ab",
            "README",
        ] {
            fs::write(dir.join(f), "x").unwrap();
        }
        symlink("/etc/passwd", dir.join("ai-platform-team-a-tailscale")).unwrap();
        let names: Vec<String> = profile_files(tmp.path(), "team-a")
            .unwrap()
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["ai-platform-team-a", "ai-platform-team-a-openclaw"]);
        assert!(profile_files(tmp.path(), "nobody").unwrap().is_empty());
    }
}
