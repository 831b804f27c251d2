//! Backup and restore of a tenant on another engine (issue 13's move), on the real second
//! engine (`.ci/start-second-engine.sh`, context `sg-host2`) with the real PostgreSQL and Redis:
//!
//! 1. the documented move from the current engine to sg-host2: `backup` here, `teardown
//!    --purge-data`, the context line, `render`, `restore` (through sg-host2), `up` there, and
//!    every row, key and file is back with its owner;
//! 2. a backup of the tenant running on sg-host2 (pg_dumpall, redis SAVE, qdrant stopped and
//!    copied through `docker cp`), more rows and a stale file after it, `down`, a restore into
//!    its non-empty data refused without `--replace`, `restore --replace --yes` (a safety
//!    backup, the old data deleted through the engine, the archive restored), `up`, exactly the
//!    backed-up state again;
//! 3. `teardown --backup DIR --purge-data --yes` of the remote tenant writes its archive, then
//!    deletes its data folder on sg-host2 (seen through that engine) and nothing beside it; a
//!    data folder that is a symbolic link there is refused (exit 2, its target untouched).
//!
//! Needs the second engine with the images below: required in CI (`STACKGEN_REQUIRE_TOOLS=1`,
//! scripts/test.sh loads them), skipped with a notice elsewhere.

use std::path::{Path, PathBuf};

use super::e2e_run::Deployment;
use super::engines::{containers, docker2, second_engine_ready, Remote, CONTEXT};
use crate::common::*;

const SERVICES: [&str; 3] = ["postgres", "redis", "qdrant"];
const IMAGES: [&str; 3] = [
    "stackgen-real/postgres:test",
    "stackgen-real/redis:test",
    "stackgen-standin/qdrant:test",
];

/// `docker [--context sg-host2] ...`
fn docker_on(remote: bool, args: &[&str]) -> Run {
    if remote {
        docker2(args)
    } else {
        host("docker", args)
    }
}

/// The container of one service of the tenant on one engine.
fn container_of(remote: bool, tenant: &str, service: &str) -> String {
    let t = format!("label=com.stackgen.tenant={tenant}");
    let s = format!("label=com.docker.compose.service={service}");
    let id = docker_on(remote, &["ps", "-q", "--filter", &t, "--filter", &s])
        .ok()
        .stdout
        .trim()
        .to_string();
    assert!(!id.is_empty(), "no running {service} of {tenant}");
    id
}

fn psql(remote: bool, tenant: &str, sql: &str) -> String {
    let pg = container_of(remote, tenant, "postgres");
    let args = [
        "exec",
        &pg,
        "psql",
        "-X",
        "-v",
        "ON_ERROR_STOP=1",
        "-U",
        "stackgen",
        "-d",
        "postgres",
        "-tAc",
        sql,
    ];
    docker_on(remote, &args).ok().stdout.trim().to_string()
}

fn redis(remote: bool, tenant: &str, script: &str) -> String {
    let rd = container_of(remote, tenant, "redis");
    docker_on(remote, &["exec", &rd, "sh", "-c", script])
        .ok()
        .stdout
}

/// The files under the tenant's `data/qdrant/e2e` with owner, mode and content (links: their
/// target), as the engine's host has them: read through a throwaway container on sg-host2.
fn files_on_host2(root: &Path) -> String {
    sh_on_host2(
        root,
        false,
        "cd /t/data/qdrant/e2e && for f in * ; do stat -c '%n %u:%g %a' \"$f\"; if [ -L \"$f\" ]; then readlink \"$f\"; else cat \"$f\"; fi; done",
    )
}

/// Runs `script` in a throwaway container on sg-host2 with `dir` of that host at `/t`
/// (read-only unless `writable`): the tests see and change that host's disk as its engine does.
/// In the postgres image, whose coreutils `chown --reference` needs (redis's has BusyBox).
fn sh_on_host2(dir: &Path, writable: bool, script: &str) -> String {
    let mount = format!("{}:/t{}", dir.display(), if writable { "" } else { ":ro" });
    docker2(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        &mount,
        "--entrypoint",
        "sh",
        "stackgen-real/postgres:test",
        "-c",
        script,
    ])
    .ok()
    .stdout
}

/// The only archive in `dir`.
fn archive_in(dir: &Path) -> PathBuf {
    let list: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".tar.gz"))
        .collect();
    assert_eq!(list.len(), 1, "{list:?}");
    list[0].clone()
}

/// Rows, keys and files as the tenant has them on its engine.
fn state(remote: bool, s: &Sandbox, t: &str) -> (String, String, String) {
    let rows = psql(remote, t, "SELECT count(*), max(v) FROM e2e_rows");
    let keys = redis(remote, t, "redis-cli GET e2e:key:40; redis-cli DBSIZE");
    let files = files_on_host2(&s.path(&format!("base/tenants/{t}")));
    (rows, keys, files)
}

/// stackgen's helper containers on sg-host2 that mount this tenant's folder (other tests may
/// run their own meanwhile).
fn helpers_left(root: &Path) -> String {
    let ids = docker2(&["ps", "-aq", "--filter", "label=com.stackgen.helper=backup"])
        .ok()
        .stdout;
    let mut ours = String::new();
    for id in ids.split_whitespace() {
        // One that ended meanwhile is gone: not left.
        let mounts = docker2(&["inspect", "-f", "{{range .Mounts}}{{.Source}} {{end}}", id]);
        if mounts.code == 0 && mounts.stdout.contains(&format!("{} ", root.display())) {
            ours.push_str(&format!("{id}\n"));
        }
    }
    ours
}

#[test]
fn e2e_engines_move_a_tenant_with_backup_and_restore() {
    let test = "e2e_engines_move_a_tenant_with_backup_and_restore";
    if !engine_ready(&SERVICES, test) || !second_engine_ready(test, &IMAGES) {
        return;
    }
    let t = unique_tenant("mv", "a");
    let _cleanup = Remote(t.clone(), format!("{t}-none"));
    let d = Deployment::new(&[(t.as_str(), &SERVICES[..])]);
    let s = &d.s;
    let prefix = t.replace('-', "_").to_ascii_uppercase();
    let root = s.path(&format!("base/tenants/{t}"));

    // On the current engine: rows, keys, and files (one private, one link) as qdrant's owner.
    s.run(&["up", &t, "--timeout", "180"]).ok();
    psql(
        false,
        &t,
        "CREATE TABLE e2e_rows(id int PRIMARY KEY, v text); \
         INSERT INTO e2e_rows SELECT g, 'row ' || g FROM generate_series(1, 300) g;",
    );
    redis(
        false,
        &t,
        "for i in $(seq 1 40); do redis-cli SET e2e:key:$i value-$i >/dev/null || exit 1; done",
    );
    let e2e = root.join("data/qdrant/e2e");
    std::fs::create_dir(&e2e).unwrap();
    std::fs::write(e2e.join("a.txt"), "qdrant data").unwrap();
    std::fs::write(e2e.join("private.bin"), "secret-ish").unwrap();
    std::os::unix::fs::symlink("a.txt", e2e.join("latest")).unwrap();
    {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        std::fs::set_permissions(
            e2e.join("private.bin"),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();
        let owner = std::fs::metadata(root.join("data/qdrant")).unwrap();
        for p in ["", "a.txt", "private.bin", "latest"] {
            std::os::unix::fs::lchown(e2e.join(p), Some(owner.uid()), Some(owner.gid())).unwrap();
        }
    }
    let expected = state(false, s, &t);
    assert_eq!(expected.0, "300|row 99");
    assert_eq!(
        expected.1.split_whitespace().collect::<Vec<_>>(),
        ["value-40", "40"]
    );
    assert!(expected.2.contains("private.bin"), "{}", expected.2);
    assert!(expected.2.contains(" 600\nsecret-ish"), "{}", expected.2);

    // 1. The move, as docs/operations.md says: backup here, purge, context, render, restore.
    let first = s.path("backups-1");
    s.run(&["backup", &t, "--to", first.to_str().unwrap()]).ok();
    let archive = archive_in(&first);
    s.run(&["teardown", &t, "--purge-data", "--yes"]).ok();
    assert!(!root.join("data").exists());
    let manifest = s.read(".env");
    s.write(
        ".env",
        &format!("{manifest}{prefix}__DOCKER_CONTEXT={CONTEXT}\n"),
    );
    s.run(&["render"]).ok();
    let run = s
        .run(&["restore", &t, "--from", archive.to_str().unwrap()])
        .ok();
    for line in [
        &format!("on the host of context `{CONTEXT}`, through its engine"),
        "loaded the SQL dump",
    ] {
        assert!(run.stdout.contains(line), "{line}\n{}", run.stdout);
    }
    // That host's free space was measured there (df in a one-shot container).
    assert!(!run.stderr.contains("could not measure"), "{}", run.stderr);
    let engine2 = docker2(&["info", "-f", "{{.ID}}"]).ok().stdout;
    assert_eq!(
        std::fs::read_to_string(root.join(".stackgen-engine")).unwrap(),
        engine2,
        "the remote prepare ran after the data went in"
    );
    s.run(&["up", &t, "--timeout", "180"]).ok();
    assert!(containers(None, &t).is_empty(), "nothing left here");
    assert_eq!(containers(Some(CONTEXT), &t).len(), 3);
    assert_eq!(state(true, s, &t), expected, "after the move to {CONTEXT}");

    // 2. A backup of the running remote tenant, through its engine.
    let second = s.path("backups-2");
    let run = s
        .run(&["backup", &t, "--to", second.to_str().unwrap()])
        .ok();
    for line in [
        "pg_dumpall",
        "redis SAVE",
        "qdrant down for",
        &format!("read through context `{CONTEXT}`"),
    ] {
        assert!(run.stdout.contains(line), "{line}\n{}", run.stdout);
    }
    let archive = archive_in(&second);
    let listing = host("tar", &["-tvzf", archive.to_str().unwrap()])
        .ok()
        .stdout;
    for member in [
        "data/qdrant/e2e/a.txt",
        "data/qdrant/e2e/latest -> a.txt",
        "redis/dump.rdb",
        "postgres.sql",
    ] {
        assert!(listing.contains(member), "{member}\n{listing}");
    }
    assert!(!listing.contains("data/postgres/"), "{listing}");
    assert_eq!(helpers_left(&root), "", "the helper containers are removed");

    // Changed after the backup: rows, and a file owned by qdrant's user.
    psql(
        true,
        &t,
        "INSERT INTO e2e_rows SELECT g, 'late ' || g FROM generate_series(301, 310) g;",
    );
    sh_on_host2(
        &root,
        true,
        "echo stale > /t/data/qdrant/e2e/stale.txt && chown --reference=/t/data/qdrant /t/data/qdrant/e2e/stale.txt",
    );
    assert_ne!(state(true, s, &t), expected);

    // Stopped, its data there not empty: refused without --replace.
    s.run(&["down", &t]).ok();
    let run = s
        .run(&["restore", &t, "--from", archive.to_str().unwrap()])
        .code(2);
    assert!(run.stderr.contains("is not empty"), "{}", run.stderr);
    assert!(run.stderr.contains("Pass --replace"), "{}", run.stderr);
    // --replace: a safety backup of what is there, the old data deleted on that host, restored.
    let run = s
        .run(&[
            "restore",
            &t,
            "--from",
            archive.to_str().unwrap(),
            "--replace",
            "--yes",
        ])
        .ok();
    for line in [
        "safety backup of the replaced data:",
        &format!(
            "deleted the replaced {}/data on the host of context `{CONTEXT}`",
            root.display()
        ),
        "loaded the SQL dump",
    ] {
        assert!(run.stdout.contains(line), "{line}\n{}", run.stdout);
    }
    assert!(!run.stderr.contains("could not measure"), "{}", run.stderr);
    let safety = archive_in(&s.path(&format!("base/backups/{t}")));
    let listing = host("tar", &["-tzf", safety.to_str().unwrap()]).ok().stdout;
    assert!(listing.contains("data/qdrant/e2e/stale.txt"), "{listing}");
    s.run(&["up", &t, "--timeout", "180"]).ok();
    assert_eq!(
        state(true, s, &t),
        expected,
        "after restore --replace on {CONTEXT}"
    );

    // 3. teardown --backup --purge-data of the remote tenant: the archive first, then its data
    // folder on sg-host2 goes, and nothing beside it (a file in the tenant's folder, the
    // neighbouring folder of another tenant).
    std::fs::write(root.join("keep.txt"), "kept").unwrap();
    let neighbour = s.path(&format!("base/tenants/{t}x/data"));
    std::fs::create_dir_all(&neighbour).unwrap();
    std::fs::write(neighbour.join("n.txt"), "n").unwrap();
    let third = s.path("backups-3");
    let run = s
        .run(&[
            "teardown",
            &t,
            "--backup",
            third.to_str().unwrap(),
            "--purge-data",
            "--yes",
        ])
        .ok();
    assert!(
        run.stdout.contains(&format!(
            "deleted {}/data on the host of context `{CONTEXT}`, through its engine",
            root.display()
        )),
        "{}",
        run.stdout
    );
    let listing = host("tar", &["-tzf", archive_in(&third).to_str().unwrap()])
        .ok()
        .stdout;
    assert!(listing.contains("data/qdrant/e2e/a.txt"), "{listing}");
    assert!(containers(Some(CONTEXT), &t).is_empty());
    // As sg-host2 sees its disk.
    let ls = |path: &Path| sh_on_host2(path, false, "ls -A /t");
    // Only `data` went: the engine marker, the copy of the config files and what else the
    // operator keeps there stay, as the tenant's folder does on a single host.
    assert_eq!(ls(&root), ".stackgen-engine\nconfig\nkeep.txt\n");
    assert_eq!(ls(&neighbour), "n.txt\n");

    // A data folder that is a link on that host: refused, its target untouched.
    std::os::unix::fs::symlink(neighbour.as_path(), root.join("data")).unwrap();
    let run = s.run(&["teardown", &t, "--purge-data", "--yes"]).code(2);
    assert!(
        run.stderr.contains(&format!(
            "refusing to delete {}/data on the host of context `{CONTEXT}`: it is a symbolic link",
            root.display()
        )),
        "{}",
        run.stderr
    );
    assert_eq!(ls(&neighbour), "n.txt\n");
    assert_eq!(helpers_left(&root), "");
}
