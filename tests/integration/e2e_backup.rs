//! The backup round trip on a real engine with the real PostgreSQL and Redis
//! (tests/images/real): rows written through n8n's own database settings, keys written into
//! redis, files in the other services' data folders; then `backup` of the running tenant,
//! `teardown --purge-data`, `restore`, `up`, and every row, key and file is back with its owner.
//! A damaged archive and a restore into a running tenant are refused.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::e2e_catalog::{container, container_env, pg_connections, psql_as};
use super::e2e_run::Deployment;
use crate::common::*;

const SERVICES: [&str; 5] = ["postgres", "redis", "n8n", "qdrant", "caddy"];

fn redis(redis: &str, script: &str) -> Run {
    host("docker", &["exec", redis, "sh", "-c", script])
}

/// Every file under the folders with its owner and content.
fn files(data: &Path, folders: &[&str]) -> Vec<(String, u32, u32, String)> {
    let mut out = Vec::new();
    for f in folders {
        let mut paths = Vec::new();
        collect(&data.join(f), &mut paths);
        for p in paths {
            let m = fs::symlink_metadata(&p).unwrap();
            out.push((
                p.strip_prefix(data).unwrap().display().to_string(),
                m.uid(),
                m.gid(),
                fs::read_to_string(&p).unwrap_or_default(),
            ));
        }
    }
    out.sort();
    out
}

/// Waits up to 90 s for `status` to report every service running and healthy (exit 0).
fn assert_all_healthy(s: &Sandbox, tenant: &str) {
    let mut last = String::new();
    for _ in 0..45 {
        let run = s.run(&["status", tenant]);
        if run.code == 0 {
            return;
        }
        last = run.stdout;
        std::thread::sleep(std::time::Duration::from_secs(2));
    }
    panic!("{tenant} did not come back healthy:\n{last}");
}

#[test]
fn e2e_backup_teardown_restore_up_brings_back_every_row_key_and_file() {
    let test = "e2e_backup_teardown_restore_up_brings_back_every_row_key_and_file";
    if !engine_ready(&SERVICES, test) {
        return;
    }
    let t = unique_tenant("bk", "a");
    let d = Deployment::new(&[(t.as_str(), &SERVICES[..])]);
    let s = &d.s;
    s.run(&["up", &t, "--timeout", "180"]).ok();

    // Rows, through the database settings n8n itself was given.
    let conns = pg_connections("n8n", &container_env(&container(&t, "n8n")));
    let conn = conns.first().expect("n8n has postgres settings");
    let pg = container(&t, "postgres");
    psql_as(
        &pg,
        conn,
        "CREATE TABLE e2e_rows(id int PRIMARY KEY, v text); \
         INSERT INTO e2e_rows SELECT g, 'row ' || g FROM generate_series(1, 500) g;",
    )
    .ok();
    // Keys, with the password the stack gave redis (REDISCLI_AUTH, from the manifest).
    let rd = container(&t, "redis");
    redis(
        &rd,
        "for i in $(seq 1 50); do redis-cli SET e2e:key:$i value-$i >/dev/null || exit 1; done",
    )
    .ok();
    // Files, written as the services' owners into their folders.
    let data = s.path(&format!("base/tenants/{t}/data"));
    for folder in ["qdrant", "n8n"] {
        let dir = data.join(folder).join("e2e");
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("file.txt"), format!("{folder} data")).unwrap();
        let owner = fs::metadata(data.join(folder)).unwrap();
        for p in [&dir, &dir.join("file.txt")] {
            std::os::unix::fs::lchown(p, Some(owner.uid()), Some(owner.gid())).unwrap();
        }
    }
    let before = files(&data, &["qdrant", "n8n"]);

    // The backup of the running tenant: each folder by its own method.
    let backups = s.path("backups");
    let run = s
        .run(&["backup", &t, "--to", backups.to_str().unwrap()])
        .ok();
    for expected in ["pg_dumpall", "redis SAVE", "down for"] {
        assert!(run.stdout.contains(expected), "{expected}: {}", run.stdout);
    }
    let archive: PathBuf = fs::read_dir(&backups)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(".tar.gz"))
        .expect("an archive");
    let dump = host("tar", &["-xzOf", archive.to_str().unwrap(), "postgres.sql"]).ok();
    assert!(dump.stdout.contains("e2e_rows"), "the dump lacks the table");
    assert!(
        !dump.stdout.contains("SCRAM-SHA-256$") && !dump.stdout.contains(&conn.password),
        "the dump carries a password"
    );
    // Every service runs and turns healthy again after its brief stop (a non-root service
    // whose tmpfs came back root-owned 0755 after the restart kept restarting here).
    assert_all_healthy(s, &t);

    // A damaged archive is refused before anything; so is a restore into a running tenant.
    let mut bytes = fs::read(&archive).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    let damaged = s.path("damaged.tar.gz");
    fs::write(&damaged, bytes).unwrap();
    let run = s
        .run(&["restore", &t, "--from", damaged.to_str().unwrap()])
        .code(2);
    assert!(
        run.stderr.contains("nothing was restored"),
        "{}",
        run.stderr
    );
    let run = s
        .run(&["restore", &t, "--from", archive.to_str().unwrap()])
        .code(2);
    assert!(run.stderr.contains("is running"), "{}", run.stderr);

    s.run(&["teardown", &t, "--purge-data", "--yes"]).ok();
    assert!(!data.exists(), "the purge left the data");
    let run = s
        .run(&["restore", &t, "--from", archive.to_str().unwrap()])
        .ok();
    assert!(run.stdout.contains("loaded the SQL dump"), "{}", run.stdout);
    s.run(&["up", &t, "--timeout", "180"]).ok();

    let pg = container(&t, "postgres");
    let count = psql_as(&pg, conn, "SELECT count(*), max(v) FROM e2e_rows").ok();
    assert_eq!(count.stdout.trim(), "500|row 99");
    let rd = container(&t, "redis");
    let keys = redis(&rd, "redis-cli GET e2e:key:50; redis-cli DBSIZE").ok();
    assert_eq!(
        keys.stdout.split_whitespace().collect::<Vec<_>>(),
        ["value-50", "50"]
    );
    assert_eq!(files(&data, &["qdrant", "n8n"]), before);
}
