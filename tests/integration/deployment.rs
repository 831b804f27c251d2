//! Deployment identity (issue 10, "another deployment wins"): a tenant that another manifest
//! runs is never changed from this one. With the fake docker (every command, the ownership
//! rules, manifests from before deployment IDs) and on the real engine (two manifests declaring
//! the same tenant name: the second is refused and the first tenant's containers are untouched).

use std::path::Path;

use crate::common::*;

/// The manifest's `STACKGEN_DEPLOYMENT` value.
fn deployment_id(s: &Sandbox) -> String {
    s.read(".env")
        .lines()
        .find_map(|l| l.strip_prefix("STACKGEN_DEPLOYMENT="))
        .expect("the manifest has a deployment ID")
        .to_string()
}

/// The sandbox's files, without the fake docker's own log.
fn tree(s: &Sandbox) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut t = s.snapshot_tree();
    t.retain(|(p, _)| p != Path::new("docker.log"));
    t
}

/// Every command the fake docker saw that would change a container, network or the engine.
fn changing_calls(s: &Sandbox) -> Vec<String> {
    let log = std::fs::read_to_string(s.path("docker.log")).unwrap_or_default();
    log.lines()
        .filter(|l| {
            let compose_act = l.starts_with("compose -p")
                && [
                    " up ", " down", " restart", " exec ", " kill", " rm ", " stop",
                ]
                .iter()
                .any(|a| l.contains(a));
            let docker_act = ["stop ", "rm ", "network rm", "run "]
                .iter()
                .any(|a| l.starts_with(a));
            compose_act || docker_act
        })
        .map(str::to_string)
        .collect()
}

/// The example manifest with BASE_DIR in the sandbox, rendered, the fake docker listing `ps`.
fn example_with_ps(ps: &str) -> (Sandbox, Vec<(String, String)>) {
    let s = Sandbox::with_example();
    s.set_env_line("BASE_DIR", &s.path("base").display().to_string());
    s.run(&["render"]).ok();
    let mut env = fake_docker(&s);
    s.write("ps.jsonl", ps);
    env.push(("FAKE_PS".into(), s.path("ps.jsonl").display().to_string()));
    (s, env)
}

/// One `docker ps` line (see `containers::FORMAT`) of a team-a container.
fn ps_line(deployment: &str, config_files: &str, working_dir: &str) -> String {
    format!(
        r#"{{"id":"c1","name":"team-a-caddy-1","tenant":"team-a","service":"caddy","project":"team-a","compose_service":"caddy","deployment":"{deployment}","config_files":"{config_files}","working_dir":"{working_dir}","image":"caddy:2","state":"running","status":"Up 1 hour (healthy)","ports":""}}"#
    ) + "\n"
}

#[test]
fn every_command_that_changes_a_tenant_refuses_one_another_deployment_runs() {
    let other = "0123456789abcdef";
    let (s, env) = example_with_ps(&ps_line(
        other,
        "/other/checkout/stacks/team-a-stack.yml",
        "/other/checkout",
    ));
    let before = tree(&s);
    let commands: [&[&str]; 9] = [
        &["up", "team-a"],
        &["down", "team-a"],
        &["restart", "team-a"],
        &["reload-proxy", "team-a"],
        &["refresh-tailscale-key", "team-a", "--key", "tskey-auth-new"],
        &["rotate-secrets", "team-a"],
        &["teardown", "team-a", "--yes"],
        &[
            "add-service",
            "team-a",
            "my-app",
            "--image",
            "nginx:1.27",
            "--port",
            "80",
        ],
        &["teardown", "--all", "--yes"],
    ];
    for args in commands {
        let run = s.run_env(args, &env_refs(&env));
        assert_eq!(run.code, 1, "{args:?}\n{}\n{}", run.stdout, run.stderr);
        for want in [
            "tenant `team-a` is run by another deployment",
            "STACKGEN_DEPLOYMENT=example-deployment",
            "container team-a-caddy-1: owned by deployment 0123456789abcdef, started from /other/checkout",
            "nothing was done",
        ] {
            assert!(run.stderr.contains(want), "{args:?}: {want}\n{}", run.stderr);
        }
        assert_eq!(tree(&s), before, "{args:?} changed a file");
        assert!(
            changing_calls(&s).is_empty(),
            "{args:?} touched the engine: {:?}",
            changing_calls(&s)
        );
    }
    // The same containers under this manifest's own ID are its own: `down` goes ahead.
    s.write("ps.jsonl", &ps_line("example-deployment", "", ""));
    s.run_env(&["down", "team-a"], &env_refs(&env)).ok();
    assert!(changing_calls(&s).iter().any(|l| l.contains(" down")));
}

#[test]
fn an_unlabelled_container_is_ours_only_when_started_from_this_stack_file() {
    // From another checkout, by an older stackgen (no deployment label): refused.
    let (s, env) = example_with_ps(&ps_line("", "/elsewhere/stacks/team-a-stack.yml", ""));
    let run = s.run_env(&["restart", "team-a"], &env_refs(&env)).code(1);
    assert!(
        run.stderr.contains(
            "container team-a-caddy-1: no com.stackgen.deployment label (not started from this checkout's stack), started from /elsewhere/stacks/team-a-stack.yml"
        ),
        "{}",
        run.stderr
    );
    assert!(changing_calls(&s).is_empty());
    // Started from this very stack file by an older stackgen: adopted (the next `up` labels it).
    let here = std::fs::canonicalize(s.path("stacks/team-a-stack.yml")).unwrap();
    s.write("ps.jsonl", &ps_line("", &here.display().to_string(), ""));
    s.run_env(&["restart", "team-a"], &env_refs(&env)).ok();
    assert!(changing_calls(&s).iter().any(|l| l.contains(" restart")));
}

#[test]
fn a_manifest_without_a_deployment_id_is_told_to_run_init_once() {
    let s = Sandbox::with_example();
    let text = s.read(".env");
    let older: String = text
        .lines()
        .filter(|l| !l.starts_with("STACKGEN_DEPLOYMENT="))
        .map(|l| format!("{l}\n"))
        .collect();
    s.write(".env", &older);
    s.set_env_line("BASE_DIR", &s.path("base").display().to_string());
    let older = s.read(".env");
    // Still a valid manifest: render and the rest read it, the stacks simply carry no ID.
    s.run(&["render"]).ok();
    assert!(!s
        .read("stacks/team-a-stack.yml")
        .contains("com.stackgen.deployment"));
    let env = fake_docker(&s);
    for args in [["down", "team-a"], ["restart", "team-a"]] {
        let run = s.run_env(&args, &env_refs(&env)).code(2);
        assert!(
            run.stderr.contains("has no STACKGEN_DEPLOYMENT line")
                && run.stderr.contains("init --non-interactive` once"),
            "{}",
            run.stderr
        );
    }
    assert!(changing_calls(&s).is_empty());
    // `init` appends the ID and changes no other line; render labels every service and network.
    let run = s.run(&["init", "--non-interactive"]).ok();
    assert!(
        run.stdout.contains("added STACKGEN_DEPLOYMENT"),
        "{}",
        run.stdout
    );
    let now = s.read(".env");
    assert!(now.starts_with(&older), "init rewrote a line:\n{now}");
    let id = deployment_id(&s);
    s.run(&["render"]).ok();
    let stack = s.read("stacks/team-a-stack.yml");
    let yaml: serde_yaml::Value = serde_yaml::from_str(&stack).unwrap();
    for (name, svc) in yaml["services"].as_mapping().unwrap() {
        assert_eq!(
            svc["labels"]["com.stackgen.deployment"].as_str(),
            Some(id.as_str()),
            "{name:?}"
        );
    }
    for (name, net) in yaml["networks"].as_mapping().unwrap() {
        if net["external"].as_bool() == Some(true) {
            // The front network: the front door's stack creates (and labels) it.
            continue;
        }
        assert_eq!(
            net["labels"]["com.stackgen.deployment"].as_str(),
            Some(id.as_str()),
            "{name:?}"
        );
    }
    s.run_env(&["down", "team-a"], &env_refs(&env)).ok();
}

/// One manifest of the real-engine test: tenant `tenant` with postgres, redis (qdrant) and
/// caddy, BASE_DIR in its own sandbox, its own free ports, the local test images.
fn manifest_for(tenant: &str) -> Sandbox {
    let s = Sandbox::new();
    let base = s.path("base").display().to_string();
    s.run(&[
        "init",
        "--non-interactive",
        "--tenant",
        tenant,
        "--services",
        "postgres,redis,caddy",
        "--domain",
        "e2e.test",
        "--base-dir",
        &base,
    ])
    .ok();
    let prefix = tenant.replace('-', "_").to_ascii_uppercase();
    let start = free_port_range(40);
    s.set_env_line(
        &format!("{prefix}__PORT_RANGE"),
        &format!("{start}-{}", start + 39),
    );
    s.set_env_line("TLS_MODE", "internal");
    edge_ports(&s);
    let env = s.read(".env");
    s.write(".env", &format!("{env}{}", image_overrides()));
    s.run(&["render"]).ok();
    s
}

/// (id, StartedAt) of every container that carries deployment `id`.
fn containers_of_deployment(id: &str) -> Vec<(String, String)> {
    let out = host(
        "docker",
        &[
            "ps",
            "-aq",
            "--no-trunc",
            "--filter",
            &format!("label=com.stackgen.deployment={id}"),
        ],
    )
    .ok();
    let mut list: Vec<(String, String)> = out
        .stdout
        .split_whitespace()
        .map(|c| {
            let started = host("docker", &["inspect", "-f", "{{.State.StartedAt}}", c])
                .ok()
                .stdout
                .trim()
                .to_string();
            (c.to_string(), started)
        })
        .collect();
    list.sort();
    list
}

/// Removes what either manifest may have left, selected by deployment label only.
struct Cleanup(Vec<String>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        for id in &self.0 {
            let label = format!("label=com.stackgen.deployment={id}");
            let ids = host("docker", &["ps", "-aq", "--filter", &label]);
            for c in ids.stdout.split_whitespace() {
                let _ = host("docker", &["rm", "-f", c]);
            }
            let nets = host("docker", &["network", "ls", "-q", "--filter", &label]);
            for n in nets.stdout.split_whitespace() {
                let _ = host("docker", &["network", "rm", n]);
            }
        }
    }
}

#[test]
fn e2e_a_second_manifest_with_the_same_tenant_name_cannot_touch_the_first() {
    let test = "e2e_a_second_manifest_with_the_same_tenant_name_cannot_touch_the_first";
    if !engine_ready(&["postgres", "redis", "qdrant", "caddy"], test) {
        return;
    }
    let t = unique_tenant("e2e", "ident");
    let first = manifest_for(&t);
    let second = manifest_for(&t);
    let (id1, id2) = (deployment_id(&first), deployment_id(&second));
    assert_ne!(id1, id2, "init generates a new ID per manifest");
    let _cleanup = Cleanup(vec![id1.clone(), id2.clone()]);

    let run = first.run(&["up", &t, "--timeout", "180"]);
    assert_eq!(run.code, 0, "up failed\n{}\n{}", run.stdout, run.stderr);
    let running = containers_of_deployment(&id1);
    assert_eq!(
        running.len(),
        5,
        "postgres, redis, qdrant, caddy and the front door: {running:?}"
    );
    // The networks carry the deployment too.
    let nets = host(
        "docker",
        &[
            "network",
            "ls",
            "-q",
            "--filter",
            &format!("label=com.stackgen.deployment={id1}"),
        ],
    )
    .ok();
    assert_eq!(
        nets.stdout.split_whitespace().count(),
        4,
        "edge and internal, the front door's own and the tenant's front network"
    );

    for args in [
        vec!["up", t.as_str(), "--timeout", "60"],
        vec!["down", t.as_str()],
        vec!["restart", t.as_str()],
        vec!["reload-proxy", t.as_str()],
        vec!["teardown", t.as_str(), "--yes", "--purge-data"],
    ] {
        let run = second.run(&args);
        assert_eq!(run.code, 1, "{args:?}\n{}\n{}", run.stdout, run.stderr);
        assert!(
            run.stderr.contains(&format!("owned by deployment {id1}"))
                && run.stderr.contains(&first.dir.path().display().to_string()),
            "{args:?}: the message names the owner and where it was started\n{}",
            run.stderr
        );
        assert_eq!(
            containers_of_deployment(&id1),
            running,
            "{args:?} changed the first deployment's containers"
        );
    }
    assert!(containers_of_deployment(&id2).is_empty());
    assert!(
        first.path("base").join("tenants").join(&t).exists(),
        "the first deployment's data is still there"
    );

    // Its own manifest still manages it (the front door goes after its last tenant).
    first.run(&["down", &t]).ok();
    first.run(&["down", "edge"]).ok();
    assert!(containers_of_deployment(&id1).is_empty());
}
