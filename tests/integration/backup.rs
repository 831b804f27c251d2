//! `stackgen backup` and `stackgen restore` on stopped tenants (a fake `docker` that reports no
//! containers; the real round trip through PostgreSQL and Redis is in e2e_backup.rs): the
//! archive's mode and atomicity, every refusal (tampered, truncated, newer format, a planted
//! link, a running tenant, non-empty data, no space), `--replace`, `--from-tenant` owners, and
//! retention.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::*;

/// Two stopped tenants (`a` and `b`) with BASE_DIR in the sandbox and files in `a`'s data.
struct World {
    s: Sandbox,
    env: Vec<(String, String)>,
}

impl World {
    fn new() -> World {
        let s = Sandbox::new();
        let base = s.path("base").display().to_string();
        s.run(&[
            "init",
            "--non-interactive",
            "--tenant",
            "a",
            "--services",
            "postgres,redis,qdrant",
            "--domain",
            "b.test",
            "--base-dir",
            &base,
        ])
        .ok();
        s.run(&[
            "init",
            "--non-interactive",
            "--tenant",
            "b",
            "--services",
            "postgres,redis,qdrant",
        ])
        .ok();
        s.run(&["render"]).ok();
        let env = fake_docker(&s);
        World { s, env }
    }

    fn run(&self, args: &[&str]) -> Run {
        self.s.run_env(args, &env_refs(&self.env))
    }

    fn data(&self, tenant: &str) -> PathBuf {
        self.s.path(&format!("base/tenants/{tenant}/data"))
    }

    /// Files as the services would have left them: owned by the tenant's UID, one nested, one
    /// link inside the tree, one private.
    fn fill(&self, tenant: &str, uid: u32) {
        let d = self.data(tenant);
        for (rel, text) in [
            ("qdrant/collections/c1/segment.bin", "vectors of a"),
            ("postgres/18/docker/PG_VERSION", "18"),
            ("redis/appendonlydir/appendonly.aof.1.incr.aof", "*1\r\n"),
        ] {
            let p = d.join(rel);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(&p, text).unwrap();
        }
        fs::set_permissions(
            d.join("postgres/18/docker/PG_VERSION"),
            fs::Permissions::from_mode(0o600),
        )
        .unwrap();
        std::os::unix::fs::symlink("segment.bin", d.join("qdrant/collections/c1/latest")).unwrap();
        chown_tree(&d, uid);
    }

    fn archives(&self, dir: &Path) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        v.sort();
        v
    }

    fn backup(&self, tenant: &str, to: &Path) -> PathBuf {
        let run = self
            .run(&["backup", tenant, "--to", to.to_str().unwrap()])
            .ok();
        let line = run
            .stdout
            .lines()
            .find(|l| l.contains(": wrote "))
            .unwrap_or_else(|| panic!("{}", run.stdout));
        let path = line.split(": wrote ").nth(1).unwrap();
        PathBuf::from(path.rsplit_once(" (").unwrap().0)
    }
}

/// `tar -czf to -C dir .`: an archive re-packed by hand, as someone tampering with one would.
fn pack(dir: &Path, to: &Path) {
    host(
        "tar",
        &[
            "-czf",
            to.to_str().unwrap(),
            "-C",
            dir.to_str().unwrap(),
            ".",
        ],
    )
    .ok();
}

fn chown_tree(dir: &Path, uid: u32) {
    let st = Command::new("chown")
        .args(["-hR", &format!("{uid}:{uid}")])
        .arg(dir)
        .status()
        .unwrap();
    assert!(st.success());
}

fn uid_of(s: &Sandbox, tenant: &str) -> u32 {
    let key = format!("{}__UID=", tenant.to_ascii_uppercase());
    s.read(".env")
        .lines()
        .find_map(|l| l.strip_prefix(&key).map(|v| v.parse().unwrap()))
        .unwrap()
}

/// Every path under `dir` with its owner, mode and content (links: their target).
fn tree(dir: &Path) -> Vec<(String, u32, u32, u32, String)> {
    let mut files = Vec::new();
    collect(dir, &mut files);
    let mut out: Vec<_> = files
        .iter()
        .map(|p| {
            let m = fs::symlink_metadata(p).unwrap();
            let content = if m.file_type().is_symlink() {
                format!("-> {}", fs::read_link(p).unwrap().display())
            } else {
                fs::read_to_string(p).unwrap_or_default()
            };
            (
                p.strip_prefix(dir).unwrap().display().to_string(),
                m.uid(),
                m.gid(),
                m.mode() & 0o7777,
                content,
            )
        })
        .collect();
    out.sort();
    out
}

fn needs_root(test: &str) -> bool {
    if is_root() {
        return true;
    }
    assert!(!tools_required(), "{test}: needs root (chown)");
    eprintln!("SKIPPED {test}: needs root to give files to the tenants' UIDs");
    false
}

#[test]
fn a_stopped_tenant_round_trips_with_owners_modes_and_links() {
    let test = "a_stopped_tenant_round_trips_with_owners_modes_and_links";
    if !needs_root(test) {
        return;
    }
    let w = World::new();
    let uid = uid_of(&w.s, "a");
    w.fill("a", uid);
    let before = tree(&w.data("a"));
    let to = w.s.path("backups/a");
    let archive = w.backup("a", &to);

    // 0600 in a 0700 folder, one archive, nothing partial.
    assert_eq!(
        fs::metadata(&archive).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(
        fs::metadata(&to).unwrap().permissions().mode() & 0o777,
        0o700
    );
    assert_eq!(w.archives(&to), vec![archive.clone()]);
    let name = archive.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        name.starts_with("a-") && name.ends_with("Z.tar.gz"),
        "{name}"
    );

    // The description carries settings but no secret value.
    let listing = host(
        "tar",
        &["-xzOf", archive.to_str().unwrap(), "stackgen-backup.json"],
    )
    .ok();
    let meta: serde_json::Value = serde_json::from_str(&listing.stdout).unwrap();
    assert_eq!(meta["tenant"], "a");
    assert_eq!(meta["settings"]["SERVICES"], "postgres,redis,qdrant");
    assert!(meta["secrets"]["POSTGRES_PASSWORD"].is_string());
    for line in w.s.read(".env").lines() {
        if let Some((k, v)) = line.split_once('=') {
            if k.ends_with("_PASSWORD") || k.ends_with("_KEY") {
                assert!(!listing.stdout.contains(v), "{k}'s value is in the archive");
            }
        }
    }

    // Restore refuses a non-empty data folder, then restores into an empty one.
    let run = w
        .run(&["restore", "a", "--from", archive.to_str().unwrap()])
        .code(2);
    assert!(run.stderr.contains("is not empty"), "{}", run.stderr);
    assert_eq!(
        tree(&w.data("a")),
        before,
        "a refused restore changed the data"
    );
    fs::remove_dir_all(w.data("a")).unwrap();
    w.run(&["restore", "a", "--from", archive.to_str().unwrap()])
        .ok();
    let after = tree(&w.data("a"));
    for entry in &before {
        assert!(after.contains(entry), "{entry:?} not restored as it was");
    }
}

#[test]
fn damaged_tampered_newer_and_linked_archives_are_refused_and_nothing_changes() {
    let test = "damaged_tampered_newer_and_linked_archives_are_refused_and_nothing_changes";
    if !needs_root(test) {
        return;
    }
    let w = World::new();
    w.fill("a", uid_of(&w.s, "a"));
    let archive = w.backup("a", &w.s.path("backups"));
    fs::remove_dir_all(w.data("a")).unwrap();
    let bytes = fs::read(&archive).unwrap();
    let cases = w.s.path("cases");
    fs::create_dir_all(&cases).unwrap();

    // Truncated.
    let truncated = cases.join("truncated.tar.gz");
    fs::write(&truncated, &bytes[..bytes.len() * 2 / 3]).unwrap();
    // Tampered: a file changed, the description left as it was (re-packed with tar).
    let x = w.s.path("x");
    fs::create_dir_all(&x).unwrap();
    host(
        "tar",
        &["-xzf", archive.to_str().unwrap(), "-C", x.to_str().unwrap()],
    )
    .ok();
    let seg = x.join("data/qdrant/collections/c1/segment.bin");
    fs::write(&seg, "vectors of someone else").unwrap();
    let tampered = cases.join("tampered.tar.gz");
    pack(&x, &tampered);
    // Newer format.
    let meta_path = x.join("stackgen-backup.json");
    let mut meta: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&meta_path).unwrap()).unwrap();
    meta["format"] = 99.into();
    fs::write(&meta_path, meta.to_string()).unwrap();
    fs::write(&seg, "vectors of a").unwrap();
    let newer = cases.join("newer.tar.gz");
    pack(&x, &newer);
    // A link to a real archive.
    let link = cases.join("link.tar.gz");
    std::os::unix::fs::symlink(&archive, &link).unwrap();

    for (case, expected) in [
        (&truncated, "truncated"),
        (&tampered, "does not match its checksum"),
        (&newer, "newer than this stackgen"),
        (&link, "links are not followed"),
    ] {
        let run = w
            .run(&["restore", "a", "--from", case.to_str().unwrap()])
            .code(2);
        assert!(
            run.stderr.contains(expected),
            "{}: {}",
            case.display(),
            run.stderr
        );
        assert!(
            !w.data("a").exists(),
            "{}: a refused restore wrote data",
            case.display()
        );
        let leftovers: Vec<_> = fs::read_dir(w.s.path("base/tenants/a"))
            .map(|d| d.map(|e| e.unwrap().file_name()).collect())
            .unwrap_or_default();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }
}

#[test]
fn replace_keeps_a_safety_backup_and_another_tenants_archive_needs_from_tenant() {
    let test = "replace_keeps_a_safety_backup_and_another_tenants_archive_needs_from_tenant";
    if !needs_root(test) {
        return;
    }
    let w = World::new();
    let (ua, ub) = (uid_of(&w.s, "a"), uid_of(&w.s, "b"));
    assert_ne!(ua, ub);
    w.fill("a", ua);
    let archive = w.backup("a", &w.s.path("backups"));
    let arch = archive.to_str().unwrap();

    // b has data of its own: --from-tenant is required, then --replace, then --yes (no tty).
    fs::create_dir_all(w.data("b").join("qdrant")).unwrap();
    fs::write(w.data("b").join("qdrant/b-was-here"), "b").unwrap();
    // Each refusal names the next flag to add; with all of them the restore runs.
    let restore = |flags: &[&str]| {
        let mut args = vec!["restore", "b", "--from", arch];
        args.extend_from_slice(flags);
        w.run(&args)
    };
    let run = restore(&[]).code(2);
    assert!(run.stderr.contains("--from-tenant a"), "{}", run.stderr);
    let run = restore(&["--from-tenant", "a"]).code(2);
    assert!(run.stderr.contains("--replace"), "{}", run.stderr);
    let run = restore(&["--from-tenant", "a", "--replace"]).code(2);
    assert!(run.stderr.contains("--yes"), "{}", run.stderr);
    assert!(w.data("b").join("qdrant/b-was-here").exists());

    let run = restore(&["--from-tenant", "a", "--replace", "--yes"]).ok();
    assert!(run.stdout.contains("safety backup"), "{}", run.stdout);
    // b's files now: a's content, b's owners; a untouched.
    let seg = w.data("b").join("qdrant/collections/c1/segment.bin");
    assert_eq!(fs::read_to_string(&seg).unwrap(), "vectors of a");
    assert_eq!(fs::metadata(&seg).unwrap().uid(), ub);
    assert!(!w.data("b").join("qdrant/b-was-here").exists());
    assert_eq!(
        fs::metadata(w.data("a").join("qdrant/collections/c1/segment.bin"))
            .unwrap()
            .uid(),
        ua
    );
    // The safety backup holds what was replaced, and restores.
    let safety_dir = w.s.path("base/backups/b");
    let safety = w.archives(&safety_dir);
    assert_eq!(safety.len(), 1, "{safety:?}");
    assert!(safety[0]
        .to_string_lossy()
        .ends_with("-before-restore.tar.gz"));
    let listing = host("tar", &["-tzf", safety[0].to_str().unwrap()]).ok();
    assert!(
        listing.stdout.contains("data/qdrant/b-was-here"),
        "{}",
        listing.stdout
    );
}

#[test]
fn keep_prunes_older_archives_and_dry_run_writes_nothing() {
    let test = "keep_prunes_older_archives_and_dry_run_writes_nothing";
    if !needs_root(test) {
        return;
    }
    let w = World::new();
    w.fill("a", uid_of(&w.s, "a"));
    let to = w.s.path("backups");
    let run = w
        .run(&["backup", "a", "--to", to.to_str().unwrap(), "--dry-run"])
        .ok();
    assert!(run.stdout.contains("qdrant"), "{}", run.stdout);
    assert!(!to.exists(), "a dry run created the folder");
    // Older archives by name (their stamps sort before today's).
    fs::create_dir_all(&to).unwrap();
    for old in ["a-20200101T000000Z.tar.gz", "a-20200102T000000Z.tar.gz"] {
        fs::write(to.join(old), "old").unwrap();
    }
    fs::write(to.join("b-20200101T000000Z.tar.gz"), "other tenant").unwrap();
    let run = w
        .run(&["backup", "a", "--to", to.to_str().unwrap(), "--keep", "2"])
        .ok();
    assert!(run.stdout.contains("deleted the older"), "{}", run.stdout);
    let names: Vec<String> = w
        .archives(&to)
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 3, "{names:?}");
    assert_eq!(names[0], "a-20200102T000000Z.tar.gz");
    assert!(names.contains(&"b-20200101T000000Z.tar.gz".to_string()));
}

#[test]
fn backup_refuses_a_linked_folder_and_a_full_disk_leaves_nothing() {
    let test = "backup_refuses_a_linked_folder_and_a_full_disk_leaves_nothing";
    if !needs_root(test) {
        return;
    }
    let w = World::new();
    w.fill("a", uid_of(&w.s, "a"));
    fs::write(
        w.data("a").join("qdrant/big.bin"),
        vec![7u8; 3 * 1024 * 1024],
    )
    .unwrap();
    // A planted link as the backup folder: refused, its target untouched.
    let elsewhere = w.s.path("elsewhere");
    fs::create_dir_all(&elsewhere).unwrap();
    let linked = w.s.path("linked");
    std::os::unix::fs::symlink(&elsewhere, &linked).unwrap();
    let run = w
        .run(&["backup", "a", "--to", linked.to_str().unwrap()])
        .code(2);
    assert!(
        run.stderr.contains("never written through a link"),
        "{}",
        run.stderr
    );
    assert_eq!(fs::read_dir(&elsewhere).unwrap().count(), 0);

    // A 1 MiB file system cannot hold 3 MiB: refused up front, nothing left behind.
    let small = w.s.path("small");
    fs::create_dir_all(&small).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
        .arg(&small)
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        assert!(!tools_required(), "{test}: cannot mount a tmpfs");
        eprintln!("SKIPPED {test} (full disk part): cannot mount a tmpfs");
        return;
    }
    let run = w.run(&["backup", "a", "--to", small.to_str().unwrap()]);
    let entries = fs::read_dir(&small).unwrap().count();
    let _ = Command::new("umount").arg(&small).status();
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("only"), "{}", run.stderr);
    assert_eq!(entries, 0, "a refused backup left files");
}

#[test]
fn all_backs_up_every_tenant_into_its_own_folder_and_a_missing_secret_refuses_the_restore() {
    let test =
        "all_backs_up_every_tenant_into_its_own_folder_and_a_missing_secret_refuses_the_restore";
    if !needs_root(test) {
        return;
    }
    let w = World::new();
    w.fill("a", uid_of(&w.s, "a"));
    let run = w.run(&["backup", "--all"]).ok();
    assert_eq!(run.stdout.matches(": wrote ").count(), 2, "{}", run.stdout);
    for t in ["a", "b"] {
        let dir = w.s.path(&format!("base/backups/{t}"));
        assert_eq!(w.archives(&dir).len(), 1, "{t}");
        assert_eq!(
            fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
            0o700
        );
    }
    let run = w
        .run(&["backup", "--all", "--to", w.s.path("x").to_str().unwrap()])
        .code(2);
    assert!(run.stderr.contains("--all with --to"), "{}", run.stderr);

    // A tenant on pgvector has no QDRANT_API_KEY: a's data (written with one) is refused.
    w.s.run(&[
        "init",
        "--non-interactive",
        "--tenant",
        "c",
        "--services",
        "postgres,redis",
        "--vector-db",
        "pgvector",
    ])
    .ok();
    let archive = &w.archives(&w.s.path("base/backups/a"))[0];
    let run = w
        .run(&[
            "restore",
            "c",
            "--from",
            archive.to_str().unwrap(),
            "--from-tenant",
            "a",
        ])
        .code(2);
    assert!(
        run.stderr.contains("C__QDRANT_API_KEY") && run.stderr.contains("nothing was restored"),
        "{}",
        run.stderr
    );
    assert!(!w.data("c").exists());
}

/// The operator's chain: `add-service` gives a tenant a service outside the catalog, whose data
/// folder the backup must carry like any other and the restore give back to the service's user.
#[test]
fn a_service_added_with_add_service_is_backed_up_and_restored_with_its_owner() {
    let test = "a_service_added_with_add_service_is_backed_up_and_restored_with_its_owner";
    if !needs_root(test) {
        return;
    }
    let w = World::new();
    let uid = uid_of(&w.s, "a");
    w.run(&[
        "add-service",
        "a",
        "my-app",
        "--image",
        "ghcr.io/acme/my-app:1.2.3",
        "--port",
        "8080",
        "--volume",
        "state:/var/lib/my-app",
    ])
    .ok();
    w.fill("a", uid);
    let file = w.data("a").join("my-app/state/notes.txt");
    fs::create_dir_all(file.parent().unwrap()).unwrap();
    fs::write(&file, "kept by my-app").unwrap();
    chown_tree(&w.data("a").join("my-app"), uid);
    let before = tree(&w.data("a"));

    let archive = w.backup("a", &w.s.path("backups"));
    let meta = host(
        "tar",
        &["-xzOf", archive.to_str().unwrap(), "stackgen-backup.json"],
    )
    .ok();
    let meta: serde_json::Value = serde_json::from_str(&meta.stdout).unwrap();
    let folders: Vec<&str> = meta["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert!(folders.contains(&"my-app"), "{folders:?}");
    assert!(meta["services"]
        .to_string()
        .contains("ghcr.io/acme/my-app:1.2.3"));

    fs::remove_dir_all(w.data("a")).unwrap();
    w.run(&["restore", "a", "--from", archive.to_str().unwrap()])
        .ok();
    let after = tree(&w.data("a"));
    for entry in &before {
        assert!(after.contains(entry), "{entry:?} not restored as it was");
    }
    assert_eq!(fs::read_to_string(&file).unwrap(), "kept by my-app");
}
