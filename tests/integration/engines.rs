//! Tenants on two Docker engines (issue 13): one tenant on the current engine, one on the
//! second engine that `.ci/start-second-engine.sh` runs on this machine as the Docker context
//! `sg-host2`. Both come up; `status` shows both with their engine; the remote one restarts
//! and goes down without touching the local one's containers; a container on the second engine
//! publishing a port of the remote tenant's range stops its `up` in preflight; and a context
//! set on a tenant whose containers run on the other engine, or an unknown one, is refused
//! (exit 2, naming the manifest line).
//!
//! Needs the second engine: required in CI (`STACKGEN_REQUIRE_TOOLS=1`, started by
//! scripts/test.sh as root), skipped with a notice elsewhere.

use super::e2e_run::Deployment;
use crate::common::*;

const CONTEXT: &str = "sg-host2";
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

fn docker2(args: &[&str]) -> Run {
    let mut v = vec!["--context", CONTEXT];
    v.extend_from_slice(args);
    host("docker", &v)
}

/// The second engine answers as `sg-host2` and has the test's images; fails in CI, skips here.
fn second_engine_ready(test: &str) -> bool {
    let missing: Vec<&str> = if docker2(&["info"]).code != 0 {
        vec!["the engine itself"]
    } else {
        REMOTE_IMAGES
            .iter()
            .copied()
            .filter(|i| docker2(&["image", "inspect", i]).code != 0)
            .collect()
    };
    if missing.is_empty() {
        return true;
    }
    let msg = format!(
        "{test}: the second Docker engine (context {CONTEXT}) lacks {}: run .ci/start-second-engine.sh {} as root",
        missing.join(", "),
        REMOTE_IMAGES.join(" ")
    );
    assert!(!tools_required(), "{msg}");
    eprintln!("SKIPPED {msg}");
    false
}

/// Container IDs (with StartedAt) of a tenant on one engine: `docker` or `docker --context`.
fn containers(context: Option<&str>, tenant: &str) -> Vec<(String, String)> {
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
struct Remote(String, String);

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
    if !engine_ready(&["redis", "minio", "qdrant"], test) || !second_engine_ready(test) {
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

    for t in [&local, &remote] {
        let run = s.run(&["up", t, "--timeout", "180"]);
        assert_eq!(run.code, 0, "up {t}\n{}\n{}", run.stdout, run.stderr);
    }
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
}
