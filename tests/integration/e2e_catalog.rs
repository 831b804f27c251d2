//! The whole catalog on a real Docker engine, once per vector DB: four tenants (qdrant, pgvector,
//! weaviate, chroma), every service, `stackgen up` to healthy. PostgreSQL (+ pgvector), Redis,
//! squid, prometheus, caddy and chroma are the real programs (tests/images/real/); every other service
//! is its contract-built stand-in (tests/images/build.sh), which exits at start when the stack
//! gives it a user, a path or a command its real image would refuse.
//!
//! Then, per tenant: every app's database settings, exactly as compose hands them to the
//! container, connect to the real postgres and name a database that exists; redis refuses a
//! client without the generated password; prometheus loaded the generated scrape config; and the
//! generated files pass the real validators (promtool, squid -k parse, caddy validate, psql).
//! litellm's config is loaded by litellm's own proxy config loader (PyPI `litellm[proxy]` at the
//! pinned image's release, tests/images/real/litellm/).
//!
//! Required in CI (a missing engine fails); skipped with a notice on a developer machine.

use std::collections::BTreeMap;

use crate::common::*;

const DBS: [&str; 4] = ["qdrant", "pgvector", "weaviate", "chroma"];

/// Tenants that are taken down (and whatever carries their label removed) when dropped.
struct Tenants<'a> {
    s: &'a Sandbox,
    names: Vec<String>,
}

impl Drop for Tenants<'_> {
    fn drop(&mut self) {
        for t in &self.names {
            remove_tenant(self.s, t);
        }
    }
}

/// The container of one service of a tenant, by label.
pub(crate) fn container(tenant: &str, service: &str) -> String {
    let out = host(
        "docker",
        &[
            "ps",
            "-q",
            "--filter",
            &format!("label=com.stackgen.tenant={tenant}"),
            "--filter",
            &format!("label=com.stackgen.service={service}"),
        ],
    );
    let id = out.stdout.trim().to_string();
    assert!(!id.is_empty(), "no running {service} container of {tenant}");
    id
}

/// The environment compose gave a container (interpolated, as the app sees it).
pub(crate) fn container_env(id: &str) -> BTreeMap<String, String> {
    let out = host("docker", &["inspect", "-f", "{{json .Config.Env}}", id]).ok();
    let list: Vec<String> = serde_json::from_str(out.stdout.trim()).unwrap();
    list.into_iter()
        .filter_map(|kv| kv.split_once('=').map(|(k, v)| (k.into(), v.into())))
        .collect()
}

/// A postgres connection an app is configured with.
#[derive(Debug, PartialEq)]
pub(crate) struct PgConn {
    pub(crate) source: String,
    pub(crate) host: String,
    pub(crate) port: String,
    pub(crate) user: String,
    pub(crate) password: String,
    pub(crate) database: String,
}

/// `postgres[ql]://user:password@host:port/db` → its parts.
fn parse_url(source: &str, url: &str) -> Option<PgConn> {
    let rest = url
        .strip_prefix("postgresql://")
        .or_else(|| url.strip_prefix("postgres://"))?;
    let (auth, rest) = rest.split_once('@')?;
    let (user, password) = auth.split_once(':')?;
    let (hostport, db) = rest.split_once('/')?;
    let (host, port) = hostport.split_once(':').unwrap_or((hostport, "5432"));
    let db = db.split('?').next().unwrap_or(db);
    Some(PgConn {
        source: source.into(),
        host: host.into(),
        port: port.into(),
        user: user.into(),
        password: password.into(),
        database: db.into(),
    })
}

/// Runs `sql` with psql inside the postgres container, connecting exactly as the app would
/// (its host, port, user, password and database).
pub(crate) fn psql_as(pg: &str, c: &PgConn, sql: &str) -> Run {
    host(
        "docker",
        &[
            "exec",
            "-e",
            &format!("PGPASSWORD={}", c.password),
            pg,
            "psql",
            "-X",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            &c.host,
            "-p",
            &c.port,
            "-U",
            &c.user,
            "-d",
            &c.database,
            "-tAc",
            sql,
        ],
    )
}

/// Every postgres connection in an app's environment: URLs, and HOST/PORT/USER/PASSWORD/DB
/// groups under the prefixes the catalog's apps use (n8n, flowise, dify, grafana, pgvector).
pub(crate) fn pg_connections(service: &str, env: &BTreeMap<String, String>) -> Vec<PgConn> {
    let mut out = Vec::new();
    for (k, v) in env {
        if v.starts_with("postgres://") || v.starts_with("postgresql://") {
            out.push(parse_url(&format!("{service} {k}"), v).unwrap_or_else(|| panic!("{k}")));
        }
    }
    for prefix in [
        "DB_POSTGRESDB_",
        "DATABASE_",
        "DB_",
        "GF_DATABASE_",
        "PGVECTOR_",
    ] {
        let get = |names: &[&str]| {
            names
                .iter()
                .find_map(|n| env.get(&format!("{prefix}{n}")))
                .cloned()
        };
        let Some(host) = get(&["HOST"]) else { continue };
        if !host.starts_with("postgres") {
            continue;
        }
        let (host, port) = match host.split_once(':') {
            Some((h, p)) => (h.to_string(), p.to_string()),
            None => (
                host.clone(),
                get(&["PORT"]).unwrap_or_else(|| "5432".into()),
            ),
        };
        out.push(PgConn {
            source: format!("{service} {prefix}*"),
            host,
            port,
            user: get(&["USER", "USERNAME"]).unwrap_or_else(|| panic!("{service} {prefix}USER")),
            password: get(&["PASSWORD"]).unwrap_or_else(|| panic!("{service} {prefix}PASSWORD")),
            database: get(&["DATABASE", "NAME", "DB"])
                .unwrap_or_else(|| panic!("{service} {prefix}DATABASE")),
        });
    }
    out
}

/// Runs a validator of tests/images/real/validate.sh on a generated file (SQL as the stack's
/// postgres user, on its database).
fn validate(kind: &str, file: &std::path::Path) {
    let out = Run::from(
        std::process::Command::new("bash")
            .arg(format!("{ROOT}/tests/images/real/validate.sh"))
            .args([kind, file.to_str().unwrap()])
            .env("POSTGRES_USER", "stackgen")
            .env("POSTGRES_DB", "stackgen")
            .output()
            .unwrap(),
    );
    assert_eq!(
        out.code,
        0,
        "{kind} rejects {}:\n{}\n{}",
        file.display(),
        out.stdout,
        out.stderr
    );
}

#[test]
fn e2e_full_catalog_is_healthy_for_every_vector_db() {
    let test = "e2e_full_catalog_is_healthy_for_every_vector_db";
    let all = host(BIN, &["catalog", "--json"]).ok();
    let catalog: serde_json::Value = serde_json::from_str(&all.stdout).unwrap();
    let services: Vec<&str> = catalog
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["service"].as_str().unwrap())
        .filter(|s| !s.starts_with("dify-worker"))
        .collect();
    if !engine_ready(&services, test) {
        return;
    }
    let s = Sandbox::new();
    let base = s.path("base").display().to_string();
    let mut tenants = Tenants {
        s: &s,
        names: Vec::new(),
    };
    for (i, db) in DBS.iter().enumerate() {
        let t = unique_tenant("cat", db);
        let mut args = vec![
            "init",
            "--non-interactive",
            "--tenant",
            &t,
            "--vector-db",
            db,
            "--services",
            "all",
        ];
        if i == 0 {
            args.extend(["--domain", "e2e.test", "--base-dir", &base]);
        }
        s.run(&args).ok();
        let prefix = t.replace('-', "_").to_ascii_uppercase();
        let start = free_port_range(40);
        s.set_env_line(
            &format!("{prefix}__PORT_RANGE"),
            &format!("{start}-{}", start + 39),
        );
        s.set_env_line(&format!("{prefix}__TAILSCALE_AUTH_KEY"), "tskey-auth-e2e");
        tenants.names.push(t);
    }
    s.set_env_line("TLS_MODE", "internal");
    edge_ports(&s);
    let env = s.read(".env");
    s.write(".env", &format!("{env}{}", image_overrides()));
    s.run(&["render"]).ok();

    // Up, all four at once (each waits for its own health).
    let runs: Vec<(String, Run)> = std::thread::scope(|scope| {
        let handles: Vec<_> = tenants
            .names
            .iter()
            .map(|t| {
                let s = &s;
                scope.spawn(move || (t.clone(), s.run(&["up", t, "--timeout", "400"])))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (t, run) in &runs {
        assert_eq!(run.code, 0, "up {t} failed\n{}\n{}", run.stdout, run.stderr);
    }

    for (t, db) in tenants.names.iter().zip(DBS) {
        let stack: serde_yaml::Value =
            serde_yaml::from_str(&s.read(&format!("stacks/{t}-stack.yml"))).unwrap();
        let names: Vec<String> = stack["services"]
            .as_mapping()
            .unwrap()
            .keys()
            .map(|k| k.as_str().unwrap().to_string())
            .collect();
        let expected = if db == "chroma" { 16 } else { 23 } - usize::from(db == "pgvector");
        assert_eq!(names.len(), expected, "{t}: {names:?}");

        // Every service running and healthy (the ones without a healthcheck do not exist).
        for name in &names {
            let id = container(t, name);
            let health = host(
                "docker",
                &["inspect", "-f", "{{.State.Health.Status}}", &id],
            )
            .ok();
            assert_eq!(health.stdout.trim(), "healthy", "{t}/{name}");
        }

        // Every app's postgres settings connect, as the app would, to a database that exists.
        let pg = container(t, "postgres");
        let mut checked = 0;
        for name in &names {
            let env = container_env(&container(t, name));
            for c in pg_connections(name, &env) {
                assert_eq!(c.host, "postgres", "{t}: {c:?}");
                let q = psql_as(&pg, &c, "select current_database()");
                assert_eq!(
                    (q.code, q.stdout.trim()),
                    (0, c.database.as_str()),
                    "{t}: {} does not connect: {}",
                    c.source,
                    q.stderr
                );
                checked += 1;
            }
        }
        assert!(checked >= 5, "{t}: only {checked} database settings found");
        if db == "pgvector" {
            let ext = host(
                "docker",
                &[
                    "exec",
                    &pg,
                    "psql",
                    "-h",
                    "/var/run/postgresql",
                    "-U",
                    "stackgen",
                    "-d",
                    "openwebui",
                    "-tAc",
                    "select extname from pg_extension where extname = 'vector'",
                ],
            )
            .ok();
            assert_eq!(ext.stdout.trim(), "vector", "{t}: pgvector not created");
        }

        // redis: the generated password is required.
        let redis = container(t, "redis");
        let anon = host(
            "docker",
            &[
                "exec",
                &redis,
                "sh",
                "-c",
                "unset REDISCLI_AUTH; redis-cli ping",
            ],
        );
        assert!(
            format!("{}{}", anon.stdout, anon.stderr).contains("NOAUTH"),
            "{t}: redis answered without a password: {anon:?}"
        );
        let authed = host("docker", &["exec", &redis, "redis-cli", "ping"]).ok();
        assert_eq!(authed.stdout.trim(), "PONG", "{t}");

        // prometheus runs the generated scrape config and reaches every target (the stand-ins
        // serve a valid /metrics), and grafana got the provisioned prometheus datasource.
        let prom = container(t, "prometheus");
        let mut jobs = vec!["prometheus", "grafana", "n8n"];
        if db == "weaviate" {
            jobs.push("weaviate");
        }
        let start = std::time::Instant::now();
        loop {
            let targets = host(
                "docker",
                &[
                    "exec",
                    &prom,
                    "wget",
                    "-qO-",
                    "http://127.0.0.1:9090/api/v1/targets",
                ],
            )
            .ok();
            let json: serde_json::Value = serde_json::from_str(&targets.stdout).unwrap();
            let up: Vec<&str> = json["data"]["activeTargets"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|t| t["health"] == "up")
                .filter_map(|t| t["labels"]["job"].as_str())
                .collect();
            if jobs.iter().all(|j| up.contains(j)) {
                break;
            }
            assert!(
                start.elapsed() < std::time::Duration::from_secs(120),
                "{t}: prometheus targets not all up ({jobs:?}): {}",
                targets.stdout
            );
            std::thread::sleep(std::time::Duration::from_secs(3));
        }
        let ds = host(
            "docker",
            &[
                "exec",
                &container(t, "grafana"),
                "cat",
                "/etc/grafana/provisioning/datasources/prometheus.yml",
            ],
        )
        .ok();
        assert!(
            ds.stdout.contains("url: http://prometheus:9090"),
            "{t}: {}",
            ds.stdout
        );

        // The generated files pass the real programs that read them.
        let dir = s.path(&format!("stacks/{t}"));
        validate("prometheus", &dir.join("prometheus/prometheus.yml"));
        validate("caddy", &dir.join("caddy/Caddyfile"));
        validate("sql", &dir.join("postgres/initdb/10-stackgen.sql"));
        if db != "chroma" {
            validate("squid", &dir.join("dify-ssrf-proxy/squid.conf"));
        }
        validate("litellm", &dir.join("litellm/config.yaml"));
    }
    // The front door's Caddyfile, with every tenant's hostnames.
    validate("caddy", &s.path("stacks/edge/Caddyfile"));
}

/// The litellm check can fail: each broken config in tests/images/real/litellm/selftest/ is
/// rejected with the loader's own error, and the committed example configs pass.
#[test]
fn litellm_loader_rejects_broken_configs_and_accepts_the_examples() {
    let test = "litellm_loader_rejects_broken_configs_and_accepts_the_examples";
    if !engine_ready(&["postgres"], test) {
        return;
    }
    let have = host(
        "docker",
        &["image", "inspect", "stackgen-real/litellm:test"],
    );
    if have.code != 0 {
        let msg = format!(
            "{test}: stackgen-real/litellm:test missing (tests/images/real/build.sh litellm)"
        );
        assert!(!tools_required(), "{msg}");
        eprintln!("SKIPPED {msg}");
        return;
    }
    let out = host(
        "bash",
        &[&format!("{ROOT}/tests/images/real/litellm/selftest/run.sh")],
    );
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("rejects"), "{}", out.stdout);
}

/// The stand-ins fail the way the real images fail: n8n without its cache tmpfs, anythingllm
/// as a foreign UID, openclaw without --allow-unconfigured, a program the image does not have.
/// A stand-in that cannot fail proves nothing.
#[test]
fn standins_fail_where_the_real_image_fails() {
    let test = "standins_fail_where_the_real_image_fails";
    if !engine_ready(&["n8n", "anythingllm", "openclaw", "qdrant"], test) {
        return;
    }
    let data = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        data.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    let d = data.path().display().to_string();
    let run = |args: &[&str]| {
        let mut all = vec!["run", "--rm", "--cap-drop", "ALL"];
        all.extend_from_slice(args);
        host("docker", &all)
    };
    // n8n: its static cache under $N8N_USER_FOLDER/.cache on a read-only root.
    let n8n = run(&[
        "--user",
        "2001:2001",
        "--read-only",
        "--tmpfs",
        "/tmp",
        "-e",
        "N8N_USER_FOLDER=/home/node",
        "-v",
        &format!("{d}:/home/node/.n8n"),
        &image_for("n8n"),
    ]);
    assert_eq!(n8n.code, 1, "{n8n:?}");
    assert!(
        n8n.stderr.contains("/home/node/.cache/n8n/public"),
        "{n8n:?}"
    );
    assert!(n8n.stderr.contains("Read-only file system"), "{n8n:?}");
    // anythingllm: prisma generate into /app, owned by 1000.
    let allm = run(&[
        "--user",
        "2001:2001",
        "-e",
        "STORAGE_DIR=/app/server/storage",
        &image_for("anythingllm"),
    ]);
    assert_eq!(allm.code, 1, "{allm:?}");
    assert!(allm.stderr.contains("Permission denied"), "{allm:?}");
    // openclaw: refuses to start unconfigured.
    let oc = run(&[
        "-e",
        "HOME=/tmp",
        &image_for("openclaw"),
        "node",
        "dist/index.js",
        "gateway",
    ]);
    assert_eq!(oc.code, 1, "{oc:?}");
    assert!(oc.stderr.contains("--allow-unconfigured"), "{oc:?}");
    // A program the image does not have: qdrant has no curl.
    let id = host("docker", &["run", "-d", "--rm", &image_for("qdrant")]).ok();
    let cid = id.stdout.trim().to_string();
    let curl = host(
        "docker",
        &["exec", &cid, "curl", "-fsS", "http://127.0.0.1:8000/"],
    );
    let _ = host("docker", &["rm", "-f", &cid]);
    assert_ne!(curl.code, 0, "qdrant's image has no curl: {curl:?}");
}
