//! Backup and restore of a tenant on another engine (issue 13's move), on the real second
//! engine (`.ci/start-second-engine.sh`, context `sg-host2`) with the real PostgreSQL and Redis:
//!
//! 1. the documented move from the current engine to sg-host2: `backup` here, `teardown
//!    --purge-data`, the context line, `render`, `restore` (through sg-host2), `up` there, and
//!    every row, key and file is back with its owner;
//! 2. a backup of the tenant running on sg-host2 (pg_dumpall, redis SAVE, qdrant stopped and
//!    copied through `docker cp`), `down`, a restore into its non-empty data refused, the data
//!    deleted through the engine, `restore`, `up`, everything back again;
//! 3. `teardown --backup` of the remote tenant writes its archive.
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
    let mount = format!("{}:/t:ro", root.display());
    docker2(&[
        "run", "--rm", "--network", "none", "-v", &mount, "--entrypoint", "sh",
        "stackgen-real/redis:test", "-c",
        "cd /t/data/qdrant/e2e && for f in * ; do stat -c '%n %u:%g %a' \"$f\"; if [ -L \"$f\" ]; then readlink \"$f\"; else cat \"$f\"; fi; done",
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

fn helpers_left() -> String {
    docker2(&["ps", "-aq", "--filter", "label=com.stackgen.helper=backup"])
        .ok()
        .stdout
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
    assert_eq!(helpers_left(), "", "the helper containers are removed");

    // The move back onto the same engine: stopped, its data there not empty: refused.
    s.run(&["down", &t]).ok();
    let run = s
        .run(&["restore", &t, "--from", archive.to_str().unwrap()])
        .code(2);
    assert!(run.stderr.contains("is not empty"), "{}", run.stderr);
    // Deleted on that host through its engine (the command the refusal suggests).
    let mount = format!("{}:/t", root.display());
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
        "rm -rf /t/data",
    ])
    .ok();
    assert!(!root.join("data").exists());
    s.run(&["restore", &t, "--from", archive.to_str().unwrap()])
        .ok();
    s.run(&["up", &t, "--timeout", "180"]).ok();
    assert_eq!(state(true, s, &t), expected, "after a restore on {CONTEXT}");

    // 3. teardown --backup of the remote tenant.
    let third = s.path("backups-3");
    s.run(&["teardown", &t, "--backup", third.to_str().unwrap(), "--yes"])
        .ok();
    let listing = host("tar", &["-tzf", archive_in(&third).to_str().unwrap()])
        .ok()
        .stdout;
    assert!(listing.contains("data/qdrant/e2e/a.txt"), "{listing}");
    assert!(containers(Some(CONTEXT), &t).is_empty());
    assert_eq!(helpers_left(), "");
}
