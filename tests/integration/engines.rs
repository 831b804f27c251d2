//! Tenants on two Docker engines (issue 13): one tenant on the current engine, one on the
//! second engine that `.ci/start-second-engine.sh` runs on this machine as the Docker context
//! `sg-host2`. Both come up; `status` shows both with their engine; the remote one restarts
//! and goes down without touching the local one's containers; a container on the second engine,
//! or any other process on its host, holding a port of the remote tenant's range stops its `up`
//! in preflight; and a context
//! set on a tenant whose containers run on the other engine, or an unknown one, is refused
//! (exit 2, naming the manifest line).
//!
//! Needs the second engine: required in CI (`STACKGEN_REQUIRE_TOOLS=1`, started by
//! scripts/test.sh as root), skipped with a notice elsewhere.

use super::e2e_run::Deployment;
use crate::common::*;

pub(crate) const CONTEXT: &str = "sg-host2";
/// The local tenant: two small stand-ins (qdrant is its vector DB).
const LOCAL: [&str; 2] = ["qdrant", "minio"];
/// The remote tenant: redis (a real image with the tools the one-shot prepare container
/// needs), minio (a loopback port in its range) and qdrant.
const REMOTE: [&str; 3] = ["redis", "qdrant", "minio"];
/// The images the second engine must have (scripts/test.sh loads exactly these).
const REMOTE_IMAGES: [&str; 3] = [
    "stackgen-real/redis:test",
    "stackgen-standin/minio:test",
    "stackgen-standin/qdrant:test",
];

pub(crate) fn docker2(args: &[&str]) -> Run {
    let mut v = vec!["--context", CONTEXT];
    v.extend_from_slice(args);
    host("docker", &v)
}

/// The second engine answers as `sg-host2` and has `images`; fails in CI, skips here.
pub(crate) fn second_engine_ready(test: &str, images: &[&str]) -> bool {
    let problem = if docker2(&["info"]).code != 0 {
        "does not answer".to_string()
    } else {
        let missing: Vec<&str> = images
            .iter()
            .copied()
            .filter(|i| docker2(&["image", "inspect", i]).code != 0)
            .collect();
        if missing.is_empty() {
            return true;
        }
        format!("lacks {}", missing.join(", "))
    };
    let msg = format!(
        "{test}: the second Docker engine (context {CONTEXT}) {problem}: run .ci/start-second-engine.sh {} as root",
        images.join(" ")
    );
    assert!(!tools_required(), "{msg}");
    eprintln!("SKIPPED {msg}");
    false
}

/// Container IDs (with StartedAt) of a tenant on one engine: `docker` or `docker --context`.
pub(crate) fn containers(context: Option<&str>, tenant: &str) -> Vec<(String, String)> {
    let mut args: Vec<&str> = context.map(|c| vec!["--context", c]).unwrap_or_default();
    let filter = format!("label=com.stackgen.tenant={tenant}");
    args.extend(["ps", "-aq", "--no-trunc", "--filter", &filter]);
    let ids = host("docker", &args).ok().stdout;
    let mut out: Vec<(String, String)> = ids
        .split_whitespace()
        .map(|id| {
            let mut a: Vec<&str> = context.map(|c| vec!["--context", c]).unwrap_or_default();
            a.extend(["inspect", "-f", "{{.State.StartedAt}}", id]);
            (
                id.to_string(),
                host("docker", &a).ok().stdout.trim().to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

/// Removes what the test left on the second engine: containers by the tenant's label (and the
/// test's own port holder), then the tenant's networks.
pub(crate) struct Remote(pub(crate) String, pub(crate) String);

impl Drop for Remote {
    fn drop(&mut self) {
        let _ = docker2(&["rm", "-f", &self.1]);
        for (id, _) in containers(Some(CONTEXT), &self.0) {
            let _ = docker2(&["rm", "-f", &id]);
        }
        for net in [
            format!("ai-platform-{}", self.0),
            format!("ai-platform-{}-internal", self.0),
        ] {
            let _ = docker2(&["network", "rm", &net]);
        }
    }
}

#[test]
fn e2e_two_engines() {
    let test = "e2e_two_engines";
    if !engine_ready(&["redis", "minio", "qdrant"], test)
        || !second_engine_ready(test, &REMOTE_IMAGES)
    {
        return;
    }
    let local = unique_tenant("eng", "l");
    let remote = unique_tenant("eng", "r");
    let holder = format!("{remote}-port-holder");
    let _cleanup = Remote(remote.clone(), holder.clone());
    let d = Deployment::new(&[(&local, &LOCAL), (&remote, &REMOTE)]);
    let s = &d.s;
    let rp = remote.replace('-', "_").to_ascii_uppercase();
    let lp = local.replace('-', "_").to_ascii_uppercase();
    let manifest = s.read(".env");
    s.write(
        ".env",
        &format!("{manifest}{rp}__DOCKER_CONTEXT={CONTEXT}\n"),
    );
    s.run(&["render"]).ok();
    // The committed stack says where it deploys, and how with plain compose.
    let stack = s.read(&format!("stacks/{remote}-stack.yml"));
    assert!(
        stack.contains(&format!("#   docker --context {CONTEXT} compose --env-file .env -f stacks/{remote}-stack.yml up -d")),
        "{stack}"
    );

    let run = s.run(&["up", &local, "--timeout", "180"]);
    assert_eq!(run.code, 0, "up {local}\n{}\n{}", run.stdout, run.stderr);
    let run = s.run(&["up", &remote, "--timeout", "180"]);
    assert_eq!(run.code, 0, "up {remote}\n{}\n{}", run.stdout, run.stderr);
    // Preflight asked the second engine, and the data was prepared through it.
    for line in [
        "is reachable through context `sg-host2`",
        "ok    images     3 image(s) present on the engine",
        "path(s) ready under",
    ] {
        assert!(run.stdout.contains(line), "{line}\n{}", run.stdout);
    }
    let root = s.path(&format!("base/tenants/{remote}"));
    let engine2 = docker2(&["info", "-f", "{{.ID}}"]).ok().stdout;
    assert_eq!(
        std::fs::read_to_string(root.join(".stackgen-engine")).unwrap(),
        engine2,
        "the marker names the engine that prepared the data"
    );
    {
        use std::os::unix::fs::MetadataExt;
        let redis = std::fs::metadata(root.join("data/redis")).unwrap();
        assert_eq!(redis.mode() & 0o7777, 0o750);
        assert_ne!(redis.uid(), 0, "owned by the service's UID, not root");
    }
    // logs and compose reach the remote tenant's project.
    let ps = s.run(&["compose", &remote, "--", "ps", "-q"]).ok();
    assert_eq!(ps.stdout.lines().count(), 3, "{}", ps.stdout);
    s.run(&["logs", &remote, "redis", "-n", "1"]).ok();
    let run = s.run(&["up", &remote, "--dry-run"]).ok();
    assert!(
        run.stdout
            .contains(&format!("docker --context {CONTEXT} compose -p {remote} ")),
        "{}",
        run.stdout
    );
    // Each tenant's containers are on its own engine only.
    let local_before = containers(None, &local);
    assert_eq!(local_before.len(), 2, "{local_before:?}");
    assert!(containers(Some(CONTEXT), &local).is_empty());
    let remote_before = containers(Some(CONTEXT), &remote);
    assert_eq!(remote_before.len(), 3, "{remote_before:?}");
    assert!(containers(None, &remote).is_empty());

    // status: both, running, each with its engine.
    let run = s.run(&["status", "--json"]);
    let json: serde_json::Value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", run.stdout, run.stderr));
    let of = |t: &str| {
        json["tenants"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["tenant"] == t)
            .unwrap_or_else(|| panic!("{t} in {json}"))
            .clone()
    };
    assert_eq!(of(&remote)["engine"], CONTEXT, "{json}");
    assert_eq!(of(&remote)["state"], "running", "{json}");
    assert_eq!(of(&local)["state"], "running", "{json}");
    assert!(
        of(&local)["engine"].as_str().is_some_and(|e| e != CONTEXT),
        "{json}"
    );
    let table = s.run(&["status", &local, &remote]).stdout;
    assert!(
        table.contains(&format!(
            "{remote}: running (3 of 3 running, 3 healthy) — engine {CONTEXT}"
        )),
        "{table}"
    );

    // restart and down of the remote tenant: its containers change, the local one's do not.
    s.run(&["restart", &remote]).ok();
    let remote_after = containers(Some(CONTEXT), &remote);
    assert_eq!(remote_after.len(), 3);
    assert_ne!(remote_after, remote_before, "restarted: new StartedAt");
    assert_eq!(containers(None, &local), local_before);
    s.run(&["down", &remote]).ok();
    assert!(containers(Some(CONTEXT), &remote).is_empty());
    assert_eq!(containers(None, &local), local_before);

    // A container on the second engine holds the remote tenant's minio port: preflight names
    // it (only that engine knows it), and nothing of the tenant starts.
    let start: u16 = s
        .read(".env")
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{rp}__PORT_RANGE=")))
        .and_then(|r| r.split('-').next()?.parse().ok())
        .expect("port range");
    let publish = format!("127.0.0.1:{}:80", start + 19);
    docker2(&[
        "run",
        "-d",
        "--name",
        &holder,
        "-p",
        &publish,
        "--entrypoint",
        "sleep",
        "stackgen-real/redis:test",
        "600",
    ])
    .ok();
    assert_eq!(
        docker2(&["inspect", "-f", "{{.State.Running}}", &holder])
            .ok()
            .stdout
            .trim(),
        "true"
    );
    let run = s.run(&["up", &remote, "--timeout", "60"]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout
            .contains(&format!("is in use by container `{holder}`")),
        "{}",
        run.stdout
    );
    assert!(
        run.stderr.contains("preflight check `ports` failed"),
        "{}",
        run.stderr
    );
    assert!(containers(Some(CONTEXT), &remote).is_empty());
    let _ = docker2(&["rm", "-f", &holder]);

    // A process that is no container holds the port on that engine's host (this machine is
    // sg-host2's host too): the engine's own probe finds it, and nothing of the tenant starts.
    let listener = std::net::TcpListener::bind(("127.0.0.1", start + 19)).unwrap();
    let run = s.run(&["up", &remote, "--timeout", "60"]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains(&format!(
            "127.0.0.1:{}/tcp (for minio) is in use by another process",
            start + 19
        )),
        "{}",
        run.stdout
    );
    assert!(containers(Some(CONTEXT), &remote).is_empty());
    drop(listener);
    let probes = docker2(&[
        "ps",
        "-aq",
        "--filter",
        "label=com.stackgen.helper=port-probe",
    ]);
    assert_eq!(probes.ok().stdout.trim(), "", "no probe container left");

    // Moving is explicit: the local tenant's containers run on the current engine, so placing
    // it on sg-host2 is refused, and so is a context this machine does not know. Exit 2, the
    // manifest line named, nothing written.
    let good = s.read(".env");
    for (context, says) in [
        (CONTEXT, "has containers on the current context"),
        ("sg-nope", "unknown Docker context `sg-nope`"),
    ] {
        s.write(".env", &format!("{good}{lp}__DOCKER_CONTEXT={context}\n"));
        let line = s.read(".env").lines().count();
        let stack_file = format!("stacks/{local}-stack.yml");
        let before = s.read(&stack_file);
        let run = s.run(&["up", &local, "--render"]).code(2);
        assert!(
            run.stderr
                .contains(&format!(".env:{line}: {lp}__DOCKER_CONTEXT: ")),
            "{}",
            run.stderr
        );
        assert!(run.stderr.contains(says), "{}", run.stderr);
        assert_eq!(before, s.read(&stack_file), "nothing written");
    }
    s.write(".env", &good);
    assert_eq!(containers(None, &local), local_before);

    // Its data too: once the local tenant is down, its data directory here (prepared by this
    // machine, no engine marker) still ties it to the current engine.
    s.run(&["down", &local]).ok();
    s.write(".env", &format!("{good}{lp}__DOCKER_CONTEXT={CONTEXT}\n"));
    let run = s.run(&["prepare", &local]).code(2);
    assert!(
        run.stderr
            .contains(&format!("the data of tenant `{local}`")),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("stackgen backup"), "{}", run.stderr);
    assert!(!s
        .path(&format!("base/tenants/{local}/.stackgen-engine"))
        .exists());
    s.write(".env", &good);

    // The one-shot prepare container refuses a link in the remote tenant's tree (exit 2), and
    // creates nothing where it points.
    let data = root.join("data");
    std::fs::rename(&data, root.join("data.real")).unwrap();
    let elsewhere = s.path("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &data).unwrap();
    let run = s.run(&["prepare", &remote]).code(2);
    assert!(
        run.stderr.contains(&format!(
            "refusing to prepare {} on this engine's host: it is a symbolic link",
            data.display()
        )),
        "{}",
        run.stderr
    );
    assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);
}

/// The config files of a tenant on the second engine come from its folder on that engine's
/// host, copied there by `up`: postgres (the real one, not root) mounts its init scripts from
/// `BASE_DIR/tenants/<t>/config` (docker inspect), the file it sees is the rendered one, root's,
/// 0644, and it ran it (n8n's database exists; n8n itself is not started). A file the render no
/// longer has is removed there by the next `prepare`; a symbolic link at the config folder is
/// refused (exit 2) and nothing is copied where it points.
#[test]
fn e2e_remote_config_files_come_from_the_engines_host() {
    let test = "e2e_remote_config_files_come_from_the_engines_host";
    let images = [
        "stackgen-real/postgres:test",
        "stackgen-standin/qdrant:test",
    ];
    if !engine_ready(&["postgres", "qdrant"], test) || !second_engine_ready(test, &images) {
        return;
    }
    let t = unique_tenant("cfg", "r");
    let _cleanup = Remote(t.clone(), format!("{t}-none"));
    let d = Deployment::new(&[(&t, &["postgres", "qdrant", "n8n"])]);
    let s = &d.s;
    let prefix = t.replace('-', "_").to_ascii_uppercase();
    let manifest = s.read(".env");
    s.write(
        ".env",
        &format!("{manifest}{prefix}__DOCKER_CONTEXT={CONTEXT}\n"),
    );
    s.run(&["render"]).ok();
    let config = s.path(&format!("base/tenants/{t}/config"));
    let run = s.run(&["up", &t, "postgres", "qdrant", "--timeout", "180"]);
    assert_eq!(run.code, 0, "up {t}\n{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains(&format!(
            "config file(s) copied to {} on the engine's host",
            config.display()
        )),
        "{}",
        run.stdout
    );

    let pg = docker2(&[
        "ps",
        "-q",
        "--filter",
        &format!("label=com.stackgen.tenant={t}"),
        "--filter",
        "label=com.docker.compose.service=postgres",
    ])
    .ok()
    .stdout
    .trim()
    .to_string();
    assert!(!pg.is_empty(), "postgres runs on {CONTEXT}");
    let mounts = docker2(&[
        "inspect",
        "-f",
        "{{range .Mounts}}{{.Source}} {{.Destination}}\n{{end}}",
        &pg,
    ])
    .ok()
    .stdout;
    let init = config.join("postgres/initdb");
    assert!(
        mounts.contains(&format!("{} /docker-entrypoint-initdb.d\n", init.display())),
        "{mounts}"
    );
    let sql = "10-stackgen.sql";
    let rendered = s.read(&format!("stacks/{t}/postgres/initdb/{sql}"));
    assert!(rendered.contains("CREATE DATABASE n8n;"), "{rendered}");
    let inside = docker2(&[
        "exec",
        &pg,
        "cat",
        &format!("/docker-entrypoint-initdb.d/{sql}"),
    ])
    .ok()
    .stdout;
    assert_eq!(inside, rendered);
    let stat = docker2(&[
        "exec",
        &pg,
        "stat",
        "-c",
        "%u:%g %a",
        "/docker-entrypoint-initdb.d",
        &format!("/docker-entrypoint-initdb.d/{sql}"),
    ])
    .ok()
    .stdout;
    assert_eq!(stat, "0:0 755\n0:0 644\n");
    let user = docker2(&["exec", &pg, "id", "-u"]).ok().stdout;
    assert_ne!(user.trim(), "0", "postgres reads it as its own user");
    let db = docker2(&[
        "exec",
        &pg,
        "psql",
        "-X",
        "-U",
        "stackgen",
        "-d",
        "postgres",
        "-tAc",
        "SELECT datname FROM pg_database WHERE datname = 'n8n'",
    ])
    .ok()
    .stdout;
    assert_eq!(db.trim(), "n8n", "postgres ran the copied init script");
    s.run(&["down", &t]).ok();

    // A file the render no longer has: removed there by the next prepare.
    let old = init.join("99-old.sql");
    std::fs::write(&old, "SELECT 1;").unwrap();
    let run = s.run(&["prepare", &t]).ok();
    assert!(run.stdout.contains(", 1 stale removed"), "{}", run.stdout);
    assert!(!old.exists());

    // A link at the config folder: refused, exit 2, nothing copied where it points.
    std::fs::rename(&config, config.with_file_name("config.real")).unwrap();
    let elsewhere = s.path("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &config).unwrap();
    let run = s.run(&["prepare", &t]).code(2);
    assert!(
        run.stderr.contains(&format!(
            "{} is a symbolic link; nothing was copied",
            config.display()
        )),
        "{}",
        run.stderr
    );
    let run = s.run(&["up", &t, "postgres", "qdrant", "--timeout", "60"]);
    assert_ne!(run.code, 0, "{}", run.stdout);
    assert!(run.stdout.contains("is a symbolic link"), "{}", run.stdout);
    assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);
    assert!(containers(Some(CONTEXT), &t).is_empty(), "nothing started");
}

/// A fake `docker` that knows the contexts in `FAKE_CONTEXTS` (plus `default`), cannot reach
/// those in `FAKE_DEAD`, and logs every call, `--context NAME` included, to `docker.log`. Its
/// `create` and `cp` play a helper container whose `/stackgen-tenant` is `FAKE_REMOTE_HOST`.
const FAKE_MULTI_DOCKER: &str = r#"#!/bin/sh
PATH=/usr/local/bin:/usr/bin:/bin
# One line per call (a script argument's newlines become spaces).
printf '%s\n' "$(printf '%s' "$*" | tr '\n' ' ')" >> "$FAKE_DOCKER_LOG"
ctx=default
if [ "$1" = --context ]; then ctx=$2; shift 2; fi
for d in $FAKE_DEAD; do
  if [ "$d" = "$ctx" ] && [ "$1" != context ]; then
    echo "Cannot connect to the Docker daemon at ssh://ops@$ctx. Is the docker daemon running?" >&2
    exit 1
  fi
done
case "$1" in
  context)
    case "$2" in
      show) echo default ;;
      inspect)
        for c in default $FAKE_CONTEXTS; do
          [ "$c" = "$5" ] && { echo "$c"; exit 0; }
        done
        echo "context \"$5\": context not found: open /root/.docker/contexts/meta/x/meta.json: no such file or directory" >&2
        exit 1 ;;
    esac ;;
  version) echo "20.10.24" ;;
  compose) [ "$2" = version ] && echo 2.26.1 ;;
  create)
    # The helper container: FAKE_REMOTE_HOST is the tenant's folder on that engine's host.
    for a in "$@"; do
      case "$a" in *,readonly) [ -d "$FAKE_REMOTE_HOST" ] || {
        echo "Error response from daemon: invalid mount config for type \"bind\": bind source path does not exist: x" >&2; exit 1; } ;;
      esac
    done
    echo helper-1 ;;
  run)
    # The free-space probe: FAKE_DF_KIB is what that host has free.
    case "$*" in
      *port-probe*) [ -z "$FAKE_NO_SHELL" ] || {
        echo "docker: Error response from daemon: failed to create shim: OCI runtime create failed: exec: \"/bin/sh\": stat /bin/sh: no such file or directory: unknown." >&2; exit 127; } ;;
      *"df -Pk"*) [ -z "$FAKE_DF_KIB" ] ||
        printf 'Filesystem 1024-blocks Used Available Capacity Mounted on\n/dev/x 100 90 %s 90%% /stackgen-tenant\n' "$FAKE_DF_KIB" ;;
      *"rm -rf -- "*)
        # The purge container: its script, run with FAKE_REMOTE_HOST as the mounted folder.
        [ -d "$FAKE_REMOTE_HOST" ] || {
          echo "docker: Error response from daemon: invalid mount config for type \"bind\": bind source path does not exist: x" >&2; exit 125; }
        for a in "$@"; do script=$a; done
        printf '%s\n' "$script" | sed "s|^cd /stackgen-tenant\$|cd '$FAKE_REMOTE_HOST'|" | sh
        exit $? ;;
    esac ;;
  cp)
    if [ "$2" = -a ]; then mkdir -p "$FAKE_REMOTE_HOST"; exec tar -C "$FAKE_REMOTE_HOST" -xf -; fi
    rel=${2#*:/stackgen-tenant/}
    if [ ! -e "$FAKE_REMOTE_HOST/$rel" ]; then
      echo "Error response from daemon: Could not find the file /stackgen-tenant/$rel in container helper-1" >&2; exit 1
    fi
    exec tar -C "$FAKE_REMOTE_HOST/$(dirname "$rel")" --numeric-owner -cf - "$(basename "$rel")" ;;
esac
exit 0
"#;

/// The example manifest with team-b on the context `host-2`, rendered, and a fake docker.
fn two_engine_sandbox() -> (Sandbox, Vec<(String, String)>) {
    let s = Sandbox::with_example();
    let text = s.read(".env");
    s.write(".env", &format!("{text}TEAM_B__DOCKER_CONTEXT=host-2\n"));
    s.run(&["render"]).ok();
    s.write_executable("fakebin/docker", FAKE_MULTI_DOCKER);
    let env = vec![
        ("PATH".to_string(), s.path("fakebin").display().to_string()),
        (
            "FAKE_DOCKER_LOG".to_string(),
            s.path("docker.log").display().to_string(),
        ),
        ("FAKE_CONTEXTS".to_string(), "host-2".to_string()),
    ];
    (s, env)
}

fn log_lines(s: &Sandbox) -> Vec<String> {
    std::fs::read_to_string(s.path("docker.log"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Every docker and compose call for the tenant on host-2 carries `--context host-2`; the
/// tenant on the current context gets exactly the command lines of a single host.
#[test]
fn every_command_of_a_remote_tenant_carries_its_context() {
    let (s, env) = two_engine_sandbox();
    let env = env_refs(&env);
    for args in [
        &["down", "team-b"][..],
        &["logs", "team-b", "caddy", "-n", "5"],
        &["compose", "team-b", "--", "ps"],
        &["teardown", "team-b", "--yes"],
    ] {
        s.run_env(args, &env).ok();
    }
    let remote = log_lines(&s);
    let engine_calls: Vec<&String> = remote
        .iter()
        .filter(|l| !l.starts_with("compose version") && !l.starts_with("context inspect"))
        .collect();
    assert!(engine_calls.len() >= 6, "{remote:#?}");
    for l in &engine_calls {
        assert!(l.starts_with("--context host-2 "), "{l}");
    }
    for want in [
        "--context host-2 compose -p team-b --env-file .env -f stacks/team-b-stack.yml down --remove-orphans",
        "--context host-2 compose -p team-b --env-file .env -f stacks/team-b-stack.yml logs --tail 5 caddy",
        "--context host-2 compose -p team-b --env-file .env -f stacks/team-b-stack.yml ps",
    ] {
        assert!(remote.iter().any(|l| l == want), "{want}\n{remote:#?}");
    }
    std::fs::remove_file(s.path("docker.log")).unwrap();
    s.run_env(&["down", "team-a"], &env).ok();
    let local = log_lines(&s);
    assert!(!local.is_empty());
    assert!(local.iter().all(|l| !l.contains("--context")), "{local:#?}");
    // The dry run prints the same lines.
    let run = s.run_env(&["restart", "team-b", "--dry-run"], &env).ok();
    assert!(
        run.stdout
            .contains("docker --context host-2 compose -p team-b --env-file .env"),
        "{}",
        run.stdout
    );
}

/// A context this machine does not know: exit 2 naming the line, and no compose command runs.
#[test]
fn an_unknown_context_is_refused_with_its_line() {
    let (s, env) = two_engine_sandbox();
    let mut env = env;
    env.retain(|(k, _)| k != "FAKE_CONTEXTS");
    let env = env_refs(&env);
    let line = s.read(".env").lines().count();
    for args in [
        &["down", "team-b"][..],
        &["up", "team-b"],
        &["logs", "team-b"],
    ] {
        let run = s.run_env(args, &env).code(2);
        assert!(
            run.stderr.contains(&format!(
                ".env:{line}: TEAM_B__DOCKER_CONTEXT: unknown Docker context `host-2`"
            )),
            "{args:?}: {}",
            run.stderr
        );
        assert!(
            run.stderr.contains("docker context create host-2"),
            "{}",
            run.stderr
        );
    }
    assert!(
        log_lines(&s).iter().all(|l| !l.contains("compose -p")),
        "{:#?}",
        log_lines(&s)
    );
}

/// `status` asks each engine once; an engine that does not answer makes only its tenants
/// `unreachable`, with the reason, and every other tenant is reported as usual.
#[test]
fn status_reports_an_unreachable_engine_per_tenant() {
    let (s, env) = two_engine_sandbox();
    let mut env = env;
    env.push(("FAKE_DEAD".into(), "host-2".into()));
    let env = env_refs(&env);
    let run = s.run_env(&["status", "--json"], &env);
    let json: serde_json::Value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", run.stdout, run.stderr));
    let tenants = json["tenants"].as_array().unwrap();
    let names: Vec<&str> = tenants
        .iter()
        .map(|t| t["tenant"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["team-a", "team-b", "team-c", "team-d"], "{json}");
    for t in tenants {
        if t["tenant"] == "team-b" {
            assert_eq!(t["state"], "unreachable");
            assert_eq!(t["engine"], "host-2");
            assert!(
                t["error"].as_str().unwrap().contains("Cannot connect"),
                "{t}"
            );
        } else {
            assert_eq!(t["state"], "not running", "{t}");
            assert_eq!(t["engine"], "default", "{t}");
        }
    }
    // Not running (4) is worse than unreachable (3), and both are reported.
    assert_eq!(run.code, 4, "{}", run.stderr);
    let run = s.run_env(&["status", "team-b"], &env).code(3);
    assert!(
        run.stdout
            .contains("team-b: unreachable — engine host-2: cannot ask context `host-2`"),
        "{}",
        run.stdout
    );
}

/// The stack file says where it deploys; prepare and apparmor load say what runs on that host;
/// `teardown --purge-data` looks for the data on that host through its engine (none there
/// here) and never at this machine's disk: nothing changes here.
#[test]
fn host_level_work_of_a_remote_tenant_never_uses_the_local_disk() {
    let (s, env) = two_engine_sandbox();
    let env = env_refs(&env);
    let stack = s.read("stacks/team-b-stack.yml");
    assert!(
        stack.contains(
            "# Deploys to the Docker engine of context `host-2` (TEAM_B__DOCKER_CONTEXT)"
        ),
        "{stack}"
    );
    assert!(
        stack.contains(
            "#   docker --context host-2 compose --env-file .env -f stacks/team-b-stack.yml up -d"
        ),
        "{stack}"
    );
    assert!(!s.read("stacks/team-a-stack.yml").contains("--context"));

    let run = s.run_env(&["prepare", "team-b", "--dry-run"], &env).ok();
    assert!(
        run.stdout
            .contains("docker --context host-2 run --rm --network none --user 0:0 --cap-drop ALL"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("-v /srv/ai-platform/tenants/team-b:/stackgen-tenant"),
        "{}",
        run.stdout
    );

    let run = s.run_env(&["apparmor", "load", "team-b"], &env).ok();
    assert!(
        run.stdout
            .contains("runs on the engine of Docker context `host-2`"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("apparmor_parser -r -W /srv/ai-platform/tenants/team-b/config/apparmor/ai-platform-team-b\n"),
        "{}",
        run.stdout
    );

    // (docker.log is the fake's own log of the tool lookup.)
    let tree = || {
        let mut t = s.snapshot_tree();
        t.retain(|(p, _)| !p.ends_with("docker.log"));
        t
    };
    let before = tree();
    let run = s
        .run_env(&["teardown", "team-b", "--purge-data", "--yes"], &env)
        .ok();
    assert!(
        run.stdout.contains("no data directory to delete"),
        "{}",
        run.stdout
    );
    assert!(before == tree(), "nothing changed");
    assert!(!std::path::Path::new("/srv/ai-platform/tenants/team-b").exists());
    let log = log_lines(&s);
    assert!(
        log.iter().any(|l| l.starts_with("--context host-2 create ")
            && l.contains("src=/srv/ai-platform/tenants/team-b,dst=/stackgen-tenant,readonly")),
        "{log:#?}"
    );
}

/// `remove-service --purge-data` of a remote tenant deletes only that service's folder, on
/// its engine's host, by the one-shot container (which mounts only the tenant's folder).
#[test]
fn remove_service_purges_a_remote_tenants_folder_through_its_engine() {
    let (s, env) = two_engine_sandbox();
    let host2 = s.path("host-2/tenants/team-b");
    std::fs::create_dir_all(host2.join("data/my-app/d")).unwrap();
    std::fs::create_dir_all(host2.join("data/my-app-2")).unwrap();
    let mut env = env;
    env.push(("FAKE_REMOTE_HOST".to_string(), host2.display().to_string()));
    let env = env_refs(&env);
    s.run_env(
        &[
            "add-service",
            "team-b",
            "my-app",
            "--image",
            "a/b:1",
            "--port",
            "80",
        ],
        &env,
    )
    .ok();
    std::fs::remove_file(s.path("docker.log")).unwrap();
    let run = s
        .run_env(
            &["remove-service", "team-b", "my-app", "--purge-data"],
            &env,
        )
        .ok();
    assert!(
        run.stdout.contains(
            "deleted /srv/ai-platform/tenants/team-b/data/my-app on the host of context `host-2`, through its engine"
        ),
        "{}",
        run.stdout
    );
    let log = log_lines(&s);
    let purges: Vec<&String> = log.iter().filter(|l| l.contains("rm -rf --")).collect();
    assert_eq!(purges.len(), 1, "{log:#?}");
    let p = purges[0];
    assert!(
        p.starts_with("--context host-2 run --rm --network none"),
        "{p}"
    );
    assert!(
        p.contains("--mount type=bind,src=/srv/ai-platform/tenants/team-b,dst=/stackgen-tenant "),
        "{p}"
    );
    assert_eq!(p.matches("--mount").count(), 1, "{p}");
    assert!(
        p.contains("[ ! -L data/my-app ] ||") && p.contains("rm -rf -- data/my-app "),
        "{p}"
    );
    assert!(!host2.join("data/my-app").exists() && host2.join("data/my-app-2").exists());
    assert!(!std::path::Path::new("/srv/ai-platform/tenants/team-b").exists());
}

/// Port ranges are per engine: two tenants may share one on different engines, not on one.
/// A context name docker would not accept is a manifest error with its line.
#[test]
fn port_ranges_are_unique_per_engine_and_context_names_are_checked() {
    let s = Sandbox::with_example();
    let text = s.read(".env").replace(
        "TEAM_B__PORT_RANGE=20100-20199",
        "TEAM_B__PORT_RANGE=20000-20099",
    );
    s.write(".env", &text);
    let run = s.run(&["render"]).code(2);
    assert!(
        run.stderr
            .contains("overlaps 20000-20099 of tenant `team-a`"),
        "{}",
        run.stderr
    );
    s.write(".env", &format!("{text}TEAM_B__DOCKER_CONTEXT=host-2\n"));
    s.run(&["render"]).ok();
    // team-a and team-b on the same named engine overlap again.
    s.write(
        ".env",
        &format!("{text}TEAM_B__DOCKER_CONTEXT=host-2\nTEAM_A__DOCKER_CONTEXT=host-2\n"),
    );
    s.run(&["render"]).code(2);
    s.write(".env", &format!("{text}TEAM_B__DOCKER_CONTEXT=host/2\n"));
    let line = s.read(".env").lines().count();
    let run = s.run(&["render"]).code(2);
    assert!(
        run.stderr.contains(&format!(
            ".env:{line}: TEAM_B__DOCKER_CONTEXT: `host/2` is not a Docker context name"
        )),
        "{}",
        run.stderr
    );
}

/// `doctor` checks each other engine the manifest names, and the remote tenant's ports there;
/// an engine that does not answer fails its own check and the others are still checked.
#[test]
fn doctor_checks_every_engine() {
    let (s, env) = two_engine_sandbox();
    let checks = |env: &[(String, String)]| {
        let run = s.run_env(&["doctor", "--json"], &env_refs(env));
        let json: serde_json::Value = serde_json::from_str(&run.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}\n{}", run.stdout, run.stderr));
        let list: Vec<(String, String, String)> = json
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["check"].as_str().unwrap().to_string(),
                    c["status"].as_str().unwrap().to_string(),
                    c["detail"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        list
    };
    let list = checks(&env);
    assert!(
        list.iter().any(|(c, st, d)| c == "engine"
            && st == "ok"
            && d.starts_with("context host-2: Docker Engine 20.10.24 is reachable")),
        "{list:#?}"
    );
    assert!(
        list.iter()
            .any(|(c, _, d)| c == "ports" && d.starts_with("team-b: ")),
        "{list:#?}"
    );
    // Free space twice: this machine's BASE_DIR, and host-2's, measured through its engine.
    let disks: Vec<&String> = list
        .iter()
        .filter(|(c, _, _)| c == "disk")
        .map(|(_, _, d)| d)
        .collect();
    assert_eq!(disks.len(), 2, "{list:#?}");
    assert!(
        disks[0].contains("on the host of context `host-2`"),
        "{list:#?}"
    );
    // An image without a shell cannot run the probe of host-2's ports: the check says it asked
    // that engine's containers only (WARN), it does not pass silently.
    let mut no_shell = env.clone();
    no_shell.push(("FAKE_NO_SHELL".into(), "1".into()));
    let list = checks(&no_shell);
    assert!(
        list.iter().any(|(c, st, d)| c == "ports"
            && st == "warn"
            && d.starts_with("team-b: ")
            && d.contains(
                "among that engine's containers only: the probe of that host's ports could not run"
            )),
        "{list:#?}"
    );
    let mut dead = env.clone();
    dead.push(("FAKE_DEAD".into(), "host-2".into()));
    let list = checks(&dead);
    assert!(
        list.iter().any(|(c, st, d)| c == "engine"
            && st == "fail"
            && d.starts_with("context host-2: the Docker engine is not reachable")),
        "{list:#?}"
    );
    let ports: Vec<&str> = list
        .iter()
        .filter(|(c, _, _)| c == "ports")
        .map(|(_, _, d)| d.split(':').next().unwrap())
        .collect();
    assert_eq!(ports, ["team-a", "team-c", "team-d"], "{list:#?}");
}

/// `prepare` of a tenant on another engine copies its generated files to its folder there,
/// through the engine only (the fake docker plays host-2, whose disk is a folder of the
/// sandbox): every file of `stacks/team-b/` with its bytes, files 0644 and folders 0755 owned by
/// root, as `render` leaves them here. A file the render no longer has is removed there (`rm`
/// in a one-shot container); a symbolic link at the config folder is refused (exit 2) and
/// nothing is copied where it points.
#[test]
fn prepare_copies_a_remote_tenants_config_files_through_its_engine() {
    use std::os::unix::fs::MetadataExt;
    let (s, env) = two_engine_sandbox();
    let host2 = s.path("host-2/tenants/team-b");
    let mut env = env;
    env.push(("FAKE_REMOTE_HOST".to_string(), host2.display().to_string()));
    let env = env_refs(&env);
    let run = s.run_env(&["prepare", "team-b", "--dry-run"], &env).ok();
    assert!(
        run.stdout.contains(
            "then copy 5 file(s) from stacks/team-b to /srv/ai-platform/tenants/team-b/config there"
        ),
        "{}",
        run.stdout
    );
    let run = s
        .run_env(&["reload-proxy", "team-b", "--dry-run"], &env)
        .ok();
    assert!(
        run.stdout.contains(
            "would copy the config files to /srv/ai-platform/tenants/team-b/config on the engine's host"
        ),
        "{}",
        run.stdout
    );
    assert!(!host2.exists(), "a dry run copies nothing");

    let run = s.run_env(&["prepare", "team-b"], &env).ok();
    assert!(
        run.stdout.contains(
            "5 config file(s) copied to /srv/ai-platform/tenants/team-b/config on the engine's host"
        ),
        "{}",
        run.stdout
    );
    let local = s.path("stacks/team-b");
    let mut copied = 0;
    for e in walk_files(&local) {
        let rel = e.strip_prefix(&local).unwrap();
        let there = host2.join("config").join(rel);
        assert_eq!(
            std::fs::read(&there).unwrap(),
            std::fs::read(&e).unwrap(),
            "{rel:?}"
        );
        // (The fake extracts with tar, which keeps the owners in the stream only as root.)
        let root = |uid: u32| if is_root() { uid } else { 0 };
        let m = std::fs::metadata(&there).unwrap();
        assert_eq!(
            (m.mode() & 0o7777, root(m.uid()), root(m.gid())),
            (0o644, 0, 0),
            "{rel:?}"
        );
        let d = std::fs::metadata(there.parent().unwrap()).unwrap();
        assert_eq!((d.mode() & 0o7777, root(d.uid())), (0o755, 0), "{rel:?}");
        copied += 1;
    }
    assert_eq!(copied, 5);
    let log = log_lines(&s);
    for want in [
        "--context host-2 create --network none --cap-drop ALL",
        "-v /srv/ai-platform/tenants/team-b:/stackgen-tenant",
        "--context host-2 cp helper-1:/stackgen-tenant/config -",
        "--context host-2 cp -a - helper-1:/stackgen-tenant",
        "--context host-2 rm -f helper-1",
    ] {
        assert!(log.iter().any(|l| l.contains(want)), "{want}\n{log:#?}");
    }
    assert!(
        log.iter().all(|l| !l.contains("--entrypoint rm")),
        "nothing stale yet"
    );
    assert!(!std::path::Path::new("/srv/ai-platform/tenants/team-b").exists());

    // A file the render no longer has: removed on that host before the copy.
    std::fs::write(host2.join("config/caddy/old.conf"), "old").unwrap();
    std::fs::remove_file(s.path("docker.log")).unwrap();
    let run = s.run_env(&["prepare", "team-b"], &env).ok();
    assert!(run.stdout.contains(", 1 stale removed"), "{}", run.stdout);
    let log = log_lines(&s);
    assert!(
        log.iter().any(|l| l
            .contains("--entrypoint rm --label com.stackgen.helper=push -v /srv/ai-platform/tenants/team-b:/stackgen-tenant")
            && l.ends_with(" -rf -- /stackgen-tenant/config/caddy/old.conf")),
        "{log:#?}"
    );

    // A link at the config folder: refused, exit 2, nothing copied where it points.
    std::fs::rename(host2.join("config"), host2.join("config.real")).unwrap();
    let elsewhere = s.path("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, host2.join("config")).unwrap();
    std::fs::remove_file(s.path("docker.log")).unwrap();
    let run = s.run_env(&["prepare", "team-b"], &env).code(2);
    assert!(
        run.stderr.contains("refusing to copy files to /srv/ai-platform/tenants/team-b/config on the host of context `host-2`: /srv/ai-platform/tenants/team-b/config is a symbolic link; nothing was copied"),
        "{}",
        run.stderr
    );
    assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);
    assert!(
        log_lines(&s).iter().all(|l| !l.contains("cp -a")),
        "{:#?}",
        log_lines(&s)
    );
}

fn walk_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk_files(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// A tenant on another engine is backed up and restored through that engine only: the fake
/// docker plays host-2, whose disk is a folder of the sandbox, while the tenant's path on this
/// machine does not exist. The archive holds what is on host-2; the restore puts it back there
/// (`docker cp -a`), then prepares through the engine; a non-empty folder there is refused
/// without `--replace`, and replaced with it (safety backup, deletion there, copy, in that
/// order); too little free space there is refused; `teardown --backup` and `--purge-data` work
/// for the tenant too (the purge mounts only its folder, refuses a link, asks as usual). Every
/// docker call carries `--context host-2`.
#[test]
fn backup_and_restore_of_a_remote_tenant_go_through_its_engine_only() {
    let (s, env) = two_engine_sandbox();
    assert!(!std::path::Path::new("/srv/ai-platform/tenants/team-b").exists());
    let host2 = s.path("host-2/tenants/team-b");
    let seg = host2.join("data/qdrant/c/seg.bin");
    std::fs::create_dir_all(seg.parent().unwrap()).unwrap();
    std::fs::write(&seg, "on host-2").unwrap();
    std::os::unix::fs::symlink("seg.bin", host2.join("data/qdrant/c/latest")).unwrap();
    let mut env = env;
    env.push(("FAKE_REMOTE_HOST".to_string(), host2.display().to_string()));
    let env = env_refs(&env);
    // Backups (the safety backup of `restore --replace` too) stay on this machine, here.
    let text = s.read(".env");
    s.write(
        ".env",
        &format!("{text}BACKUP_DIR={}\n", s.path("backups").display()),
    );

    let run = s
        .run_env(
            &["backup", "team-b", "--to", s.path("bk").to_str().unwrap()],
            &env,
        )
        .ok();
    assert!(
        run.stdout.contains("read through context `host-2`"),
        "{}",
        run.stdout
    );
    let archive = std::fs::read_dir(s.path("bk"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .next()
        .unwrap();
    let a = archive.to_str().unwrap();
    let content = host("tar", &["-xzOf", a, "data/qdrant/c/seg.bin"])
        .ok()
        .stdout;
    assert_eq!(content, "on host-2");
    let listing = host("tar", &["-tvzf", a]).ok().stdout;
    assert!(
        listing.contains("data/qdrant/c/latest -> seg.bin"),
        "{listing}"
    );
    let log = log_lines(&s);
    for want in [
        "--context host-2 create --network none --cap-drop ALL",
        "--mount type=bind,src=/srv/ai-platform/tenants/team-b,dst=/stackgen-tenant,readonly",
        // The listing script first; this fake prints nothing, so docker cp's stream is used.
        "--context host-2 run --rm --network none --user 0:0 --cap-drop ALL --cap-add DAC_READ_SEARCH",
        "--context host-2 cp helper-1:/stackgen-tenant/data -",
        "--context host-2 cp helper-1:/stackgen-tenant/data/qdrant -",
        "--context host-2 rm -f helper-1",
    ] {
        assert!(log.iter().any(|l| l.contains(want)), "{want}\n{log:#?}");
    }
    let engine_calls = log
        .iter()
        .filter(|l| !l.starts_with("compose version") && !l.starts_with("context inspect"));
    for l in engine_calls {
        assert!(l.starts_with("--context host-2 "), "{l}");
    }

    // Its data on host-2 is not empty: refused without --replace, and --replace asks first.
    let run = s.run_env(&["restore", "team-b", "--from", a], &env).code(2);
    assert!(run.stderr.contains("is not empty"), "{}", run.stderr);
    assert!(run.stderr.contains("Pass --replace"), "{}", run.stderr);
    assert!(run.stderr.contains("host-2"), "{}", run.stderr);
    let run = s
        .run_env(&["restore", "team-b", "--from", a, "--replace"], &env)
        .code(2);
    assert!(run.stderr.contains("Pass --yes"), "{}", run.stderr);
    // With --yes: the safety backup (read through the engine), then the deletion there by the
    // one-shot container, then the copy in; in that order, each through host-2.
    std::fs::remove_file(s.path("docker.log")).unwrap();
    let run = s
        .run_env(
            &["restore", "team-b", "--from", a, "--replace", "--yes"],
            &env,
        )
        .ok();
    assert!(run.stdout.contains("safety backup"), "{}", run.stdout);
    assert_eq!(
        std::fs::read_dir(s.path("backups/team-b")).unwrap().count(),
        1
    );
    let log = log_lines(&s);
    let at = |want: &str| {
        log.iter()
            .position(|l| l.contains(want))
            .unwrap_or_else(|| panic!("{want}\n{log:#?}"))
    };
    let purge = "--context host-2 run --rm --network none --user 0:0 --cap-drop ALL --cap-add DAC_OVERRIDE --cap-add FOWNER --security-opt no-new-privileges --entrypoint /bin/sh --mount type=bind,src=/srv/ai-platform/tenants/team-b,dst=/stackgen-tenant ";
    assert!(at("cp helper-1:/stackgen-tenant/data/qdrant -") < at(purge));
    assert!(at(purge) < at("cp -a - helper-1:/stackgen-tenant"));
    assert!(
        log[at(purge)].contains("rm -rf -- data"),
        "{}",
        log[at(purge)]
    );
    std::fs::remove_dir_all(host2.join("data")).unwrap();
    // No room on host-2 (df there says 0 KiB free): refused before anything is written.
    let mut full = env.clone();
    full.push(("FAKE_DF_KIB", "0"));
    let run = s
        .run_env(&["restore", "team-b", "--from", a], &full)
        .code(2);
    assert!(
        run.stderr.contains(
            "the restore needs up to 9 B but only 0 B is free at /srv/ai-platform/tenants/team-b on the host of context `host-2`; nothing was written"
        ),
        "{}",
        run.stderr
    );
    assert!(!host2.join("data").exists());
    std::fs::remove_file(s.path("docker.log")).unwrap();
    let run = s.run_env(&["restore", "team-b", "--from", a], &env).ok();
    assert!(run.stdout.contains("through its engine"), "{}", run.stdout);
    assert_eq!(std::fs::read_to_string(&seg).unwrap(), "on host-2");
    assert_eq!(
        std::fs::read_link(host2.join("data/qdrant/c/latest")).unwrap(),
        std::path::Path::new("seg.bin")
    );
    let log = log_lines(&s);
    for want in [
        "--context host-2 cp -a - helper-1:/stackgen-tenant",
        "--context host-2 run --rm --network none",
    ] {
        assert!(log.iter().any(|l| l.contains(want)), "{want}\n{log:#?}");
    }
    assert!(!std::path::Path::new("/srv/ai-platform/tenants/team-b").exists());

    // teardown --backup of the remote tenant takes the same archive.
    let run = s
        .run_env(
            &[
                "teardown",
                "team-b",
                "--backup",
                s.path("td").to_str().unwrap(),
                "--yes",
            ],
            &env,
        )
        .ok();
    assert!(run.stdout.contains("wrote "), "{}", run.stdout);
    assert_eq!(std::fs::read_dir(s.path("td")).unwrap().count(), 1);

    // teardown --purge-data: the dry run prints the one-shot container, which mounts only the
    // tenant's folder on host-2; a real run backs up first, then runs exactly that container.
    let run = s
        .run_env(&["teardown", "team-b", "--purge-data", "--dry-run"], &env)
        .ok();
    assert!(
        run.stdout
            .contains("DELETED with --purge-data on the host of context `host-2`"),
        "{}",
        run.stdout
    );
    let shown = run
        .stdout
        .lines()
        .find(|l| l.starts_with("+ ") && l.contains(" --context host-2 run "))
        .unwrap_or_else(|| panic!("{}", run.stdout));
    assert!(shown.contains(&purge[17..]), "{shown}");
    assert!(
        run.stdout.contains(
            "# delete /srv/ai-platform/tenants/team-b/data (9 B) on the host of context `host-2`"
        ),
        "{}",
        run.stdout
    );
    // As for a local tenant: without --yes and without a terminal to ask on, refused.
    let run = s
        .run_env(&["teardown", "team-b", "--purge-data"], &env)
        .code(2);
    assert!(run.stderr.contains("Pass --yes"), "{}", run.stderr);
    assert!(seg.exists(), "deleted without an answer");
    std::fs::remove_file(s.path("docker.log")).unwrap();
    let run = s
        .run_env(
            &[
                "teardown",
                "team-b",
                "--purge-data",
                "--backup",
                s.path("td2").to_str().unwrap(),
                "--yes",
            ],
            &env,
        )
        .ok();
    assert!(
        run.stdout.contains(
            "deleted /srv/ai-platform/tenants/team-b/data on the host of context `host-2`, through its engine"
        ),
        "{}",
        run.stdout
    );
    assert_eq!(std::fs::read_dir(s.path("td2")).unwrap().count(), 1);
    assert!(!host2.join("data").exists() && host2.exists());
    let log = log_lines(&s);
    let runs: Vec<&String> = log.iter().filter(|l| l.contains(" run ")).collect();
    let purges: Vec<&&String> = runs.iter().filter(|l| l.contains("DAC_OVERRIDE")).collect();
    assert_eq!(purges.len(), 1, "{log:#?}");
    assert_eq!(purges[0].matches("--mount").count(), 1, "{}", purges[0]);
    assert!(!purges[0].contains(" -v "), "{}", purges[0]);
    let backup_at = log
        .iter()
        .position(|l| l.contains("cp helper-1:/stackgen-tenant/data/qdrant -"))
        .unwrap();
    let purge_at = log.iter().position(|l| l == *purges[0]).unwrap();
    assert!(backup_at < purge_at, "{log:#?}");
    assert!(!std::path::Path::new("/srv/ai-platform/tenants/team-b").exists());

    // A link as the data folder on host-2: refused (exit 2), nothing deleted.
    std::fs::create_dir_all(s.path("precious")).unwrap();
    std::os::unix::fs::symlink(s.path("precious"), host2.join("data")).unwrap();
    let run = s
        .run_env(&["teardown", "team-b", "--purge-data", "--yes"], &env)
        .code(2);
    assert!(
        run.stderr
            .contains("on the host of context `host-2`: it is a symbolic link"),
        "{}",
        run.stderr
    );
    assert!(s.path("precious").exists());
}

/// The front door of another engine is driven through that engine, like its tenants:
/// `reload-proxy edge-host-2` copies its Caddyfile there and reloads it with `--context`; after
/// the last tenant left that engine (its door's files are gone with the next `render`), `down
/// edge-host-2` still reaches the running door by its project name; a door of a context this
/// machine does not know is refused (exit 2) before anything runs.
#[test]
fn another_engines_front_door_goes_through_that_engine() {
    let (s, env) = two_engine_sandbox();
    let env = env_refs(&env);
    let run = s
        .run_env(&["reload-proxy", "edge-host-2", "--dry-run"], &env)
        .ok();
    assert!(
        run.stdout.contains(
            "docker --context host-2 compose -p edge-host-2-example-deployment --env-file .env -f stacks/edge-host-2-stack.yml exec -T caddy caddy reload"
        ),
        "{}",
        run.stdout
    );
    // team-b back on the current engine: host-2 keeps no tenant, its door's files are stale.
    let text = s
        .read(".env")
        .replace("TEAM_B__DOCKER_CONTEXT=host-2\n", "");
    s.write(".env", &text);
    s.run(&["render"]).ok();
    assert!(!s.path("stacks/edge-host-2-stack.yml").exists());
    std::fs::remove_file(s.path("docker.log")).ok();
    let run = s.run_env(&["down", "edge-host-2"], &env).ok();
    assert!(
        run.stdout
            .contains("edge-host-2: the front door's container and networks removed"),
        "{}",
        run.stdout
    );
    let log = log_lines(&s);
    assert!(
        log.iter().any(|l| l
            == "--context host-2 compose -p edge-host-2-example-deployment down --remove-orphans"),
        "{log:#?}"
    );
    let run = s.run_env(&["down", "edge-nowhere"], &env).code(2);
    assert!(
        run.stderr.contains("unknown Docker context `nowhere`"),
        "{}",
        run.stderr
    );
}
