//! The everyday verbs without an engine (a fake `docker` logs every call): `logs` flags and
//! services reach compose, `stackgen compose TENANT -- ...` runs compose on the tenant's project
//! with the ownership checks and passes its status through, `restart` of a tenant that is not
//! running exits 4, and several tenants at once run concurrently within `--jobs`, each tenant's
//! output in one piece, with the highest status.

use crate::common::*;

/// The example manifest (4 tenants), rendered, with a fake docker; `compose ... down` is slowed
/// by a wrapper that records when each tenant's `down` starts and ends (for concurrency), and
/// fails with 7 for the tenant named by `FAKE_FAIL_TENANT`.
fn prepared() -> (Sandbox, Vec<(String, String)>) {
    let s = Sandbox::with_example();
    s.set_env_line("BASE_DIR", &s.path("base").display().to_string());
    edge_ports(&s);
    s.run(&["render"]).ok();
    let mut env = fake_docker(&s);
    let inner = s.path("fakebin/docker");
    std::fs::rename(&inner, s.path("fakebin/docker-inner")).unwrap();
    s.write_executable(
        "fakebin/docker",
        r#"#!/bin/sh
PATH=/usr/local/bin:/usr/bin:/bin
inner="$(dirname "$0")/docker-inner"
case "$*" in
  *" down --remove-orphans"*)
    echo "start $3" >> "$FAKE_TIMELINE"
    sleep 1
    echo "end $3" >> "$FAKE_TIMELINE"
    [ "$3" = "$FAKE_FAIL_TENANT" ] && { "$inner" "$@"; exit 7; } ;;
esac
exec "$inner" "$@"
"#,
    );
    env.push((
        "FAKE_TIMELINE".into(),
        s.path("timeline.log").display().to_string(),
    ));
    (s, env)
}

fn with(env: &[(String, String)], extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut v = env.to_vec();
    v.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    v
}

fn docker_log(s: &Sandbox) -> String {
    std::fs::read_to_string(s.path("docker.log")).unwrap_or_default()
}

const PROJECT_A: &str = "compose -p team-a --env-file .env -f stacks/team-a-stack.yml";

#[test]
fn logs_flags_and_several_services_reach_compose() {
    let (s, env) = prepared();
    s.run_env(
        &[
            "logs",
            "team-a",
            "postgres",
            "redis",
            "--tail",
            "50",
            "--since",
            "10m",
            "--timestamps",
            "-f",
        ],
        &env_refs(&env),
    )
    .ok();
    let want = format!("{PROJECT_A} logs -f --tail 50 --since 10m --timestamps postgres redis");
    assert!(
        docker_log(&s).lines().any(|l| l == want),
        "{want}\nnot in:\n{}",
        docker_log(&s)
    );
    s.run_env(&["logs", "team-a", "-n", "all"], &env_refs(&env))
        .ok();
    assert!(docker_log(&s)
        .lines()
        .any(|l| l == format!("{PROJECT_A} logs --tail all")));

    // A bad --tail or an unknown service is bad input: exit 2, compose never asked.
    std::fs::remove_file(s.path("docker.log")).unwrap();
    let run = s
        .run_env(&["logs", "team-a", "--tail", "ten"], &env_refs(&env))
        .code(2);
    assert!(run.stderr.contains("--tail ten"), "{}", run.stderr);
    s.run_env(&["logs", "team-a", "postgres", "nosuch"], &env_refs(&env))
        .code(2);
    assert!(
        !docker_log(&s).contains(" logs"),
        "compose ran: {}",
        docker_log(&s)
    );
}

#[test]
fn compose_runs_on_the_tenants_project_and_passes_the_status_through() {
    let (s, env) = prepared();
    s.run_env(
        &["compose", "team-a", "--", "exec", "postgres", "true"],
        &env_refs(&env),
    )
    .ok();
    s.run_env(&["compose", "team-a", "--", "ps", "-a"], &env_refs(&env))
        .ok();
    let log = docker_log(&s);
    for want in [
        format!("{PROJECT_A} exec postgres true"),
        format!("{PROJECT_A} ps -a"),
    ] {
        assert!(log.lines().any(|l| l == want), "{want}\nnot in:\n{log}");
    }
    // The ownership check ran first (the tenant's compose project was listed).
    assert!(
        log.contains("label=com.docker.compose.project=team-a"),
        "{log}"
    );

    let run = s
        .run_env(
            &["compose", "team-a", "--", "pull"],
            &env_refs(&with(&env, &[("FAKE_COMPOSE_RC", "5")])),
        )
        .code(5);
    assert!(run
        .stderr
        .contains("docker compose pull failed with exit status 5"));

    // Nothing to pass, or no `--`: bad input.
    s.run_env(&["compose", "team-a"], &env_refs(&env)).code(2);
    s.run_env(&["compose", "team-a", "ps"], &env_refs(&env))
        .code(2);

    // A container of the project stackgen did not create stops it before compose runs.
    s.write(
        "ps.jsonl",
        r#"{"id":"abc","name":"team-a-web-1","tenant":"","service":"","project":"team-a","compose_service":"web","image":"nginx:1","state":"running","status":"Up 1 hour","ports":""}
"#,
    );
    std::fs::remove_file(s.path("docker.log")).unwrap();
    let env = with(
        &env,
        &[("FAKE_PS", &s.path("ps.jsonl").display().to_string())],
    );
    let run = s
        .run_env(&["compose", "team-a", "--", "down"], &env_refs(&env))
        .code(1);
    assert!(
        run.stderr.contains("stackgen did not create"),
        "{}",
        run.stderr
    );
    assert!(!docker_log(&s).contains(" down"), "{}", docker_log(&s));
}

#[test]
fn restart_of_a_tenant_that_is_not_running_exits_4_and_restarts_nothing() {
    let (s, env) = prepared();
    let run = s.run_env(&["restart", "team-a"], &env_refs(&env)).code(4);
    assert!(!run.stdout.contains("restarted"), "{}", run.stdout);
    assert!(
        run.stderr
            .contains("team-a: not running (no container of it is running); nothing was restarted"),
        "{}",
        run.stderr
    );
    assert!(!docker_log(&s).contains(" restart"), "{}", docker_log(&s));
}

/// The largest number of tenants whose `down` ran at the same time, from the wrapper's timeline.
fn max_overlap(s: &Sandbox) -> (usize, usize) {
    let timeline = s.read("timeline.log");
    let (mut now, mut max, mut started) = (0usize, 0usize, 0usize);
    for l in timeline.lines() {
        if l.starts_with("start ") {
            now += 1;
            started += 1;
            max = max.max(now);
        } else {
            now -= 1;
        }
    }
    (max, started)
}

#[test]
fn down_all_runs_the_tenants_concurrently_within_jobs() {
    let (s, env) = prepared();
    let run = s
        .run_env(&["down", "--all", "--jobs", "2"], &env_refs(&env))
        .ok();
    for t in ["team-a", "team-b", "team-c", "team-d"] {
        assert!(
            run.stdout
                .contains(&format!("{t}: containers and networks removed")),
            "{}",
            run.stdout
        );
    }
    assert!(
        run.stdout.contains("down: 4 tenant(s) done"),
        "{}",
        run.stdout
    );
    assert_eq!(max_overlap(&s), (2, 4), "{}", s.read("timeline.log"));

    std::fs::remove_file(s.path("timeline.log")).unwrap();
    s.run_env(&["down", "team-a", "team-c", "-j", "1"], &env_refs(&env))
        .ok();
    assert_eq!(max_overlap(&s), (1, 2), "{}", s.read("timeline.log"));
}

#[test]
fn several_tenants_exit_with_the_worst_status_and_the_others_still_run() {
    let (s, env) = prepared();
    let env = with(&env, &[("FAKE_FAIL_TENANT", "team-b")]);
    let run = s
        .run_env(&["down", "team-a", "team-b", "team-c"], &env_refs(&env))
        .code(7);
    assert!(
        run.stdout
            .contains("team-a: containers and networks removed")
            && run
                .stdout
                .contains("team-c: containers and networks removed"),
        "{}",
        run.stdout
    );
    assert!(
        run.stderr
            .contains("down: 1 of 3 tenant(s) failed: team-b (exit 7)"),
        "{}",
        run.stderr
    );
    // An unknown tenant is refused before any tenant is touched.
    std::fs::remove_file(s.path("timeline.log")).unwrap();
    s.run_env(&["down", "team-a", "nobody"], &env_refs(&env))
        .code(2);
    assert!(!s.path("timeline.log").exists());
    // Services only after a single tenant.
    let run = s
        .run_env(&["up", "team-a", "team-b", "caddy"], &env_refs(&env))
        .code(2);
    assert!(run.stderr.contains("single tenant"), "{}", run.stderr);
}

#[test]
fn up_all_keeps_each_tenants_output_in_one_piece() {
    let (s, env) = prepared();
    let run = s
        .run_env(&["up", "--all", "--dry-run"], &env_refs(&env))
        .ok();
    // The tenant each line belongs to, in order; each tenant must appear as one run of lines.
    let tenants = ["team-a", "team-b", "team-c", "team-d"];
    let mut order: Vec<&str> = Vec::new();
    for line in run.stdout.lines() {
        if let Some(t) = tenants
            .iter()
            .find(|t| line.starts_with(&format!("{t}:")) || line.contains(&format!("-p {t} ")))
        {
            if order.last() != Some(t) {
                order.push(t);
            }
        }
    }
    let mut sorted = order.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(
        order.len(),
        4,
        "each tenant once, in one piece: {order:?}\n{}",
        run.stdout
    );
    assert_eq!(sorted.len(), 4, "{order:?}");
    for t in tenants {
        assert!(
            run.stdout.lines().any(|l| l.starts_with("+ ")
                && l.contains(&format!("-p {t} "))
                && l.contains(" up -d --wait")),
            "{t}: {}",
            run.stdout
        );
    }
}
