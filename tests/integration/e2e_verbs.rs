//! The everyday verbs on a real Docker engine, with two small tenants (postgres, redis, qdrant,
//! caddy on the local test images): `status` exit codes for not running (4), running (0) and
//! degraded (3); `restart` of a tenant that is not running (4); `up --all` and `down --all`
//! bringing both tenants up and down; `stackgen compose TENANT -- ps` and `-- exec`, with
//! compose's exit status passed through.

use super::e2e_run::{Deployment, SMALL};
use crate::common::*;

#[test]
fn e2e_exit_codes_compose_passthrough_and_all_tenants() {
    let test = "e2e_exit_codes_compose_passthrough_and_all_tenants";
    if !engine_ready(&SMALL, test) {
        return;
    }
    let a = unique_tenant("verbs", "a");
    let b = unique_tenant("verbs", "b");
    let d = Deployment::new(&[(&a, &SMALL), (&b, &SMALL)]);
    let s = &d.s;

    // Nothing runs yet: status says not running (4), restart refuses (4) and says why.
    let run = s.run(&["status", &a]).code(4);
    assert!(
        run.stdout.contains(&format!("{a}: not running")),
        "{}",
        run.stdout
    );
    let run = s.run(&["restart", &a]).code(4);
    assert!(!run.stdout.contains("restarted"), "{}", run.stdout);
    assert!(run.stderr.contains("not running"), "{}", run.stderr);

    // Both tenants at once; each one's output in one piece, both healthy.
    let run = s.run(&["up", "--all", "--timeout", "180", "--jobs", "2"]);
    assert_eq!(run.code, 0, "up --all\n{}\n{}", run.stdout, run.stderr);
    for t in [&a, &b] {
        assert!(
            run.stdout
                .contains(&format!("{t}: running (4 of 4 running, 4 healthy)")),
            "{}",
            run.stdout
        );
    }
    let first_b = run.stdout.find(&format!("{b}: preflight")).unwrap();
    let first_a = run.stdout.find(&format!("{a}: preflight")).unwrap();
    let (early, late) = if first_a < first_b {
        (&a, &b)
    } else {
        (&b, &a)
    };
    let late_at = run.stdout.find(&format!("{late}: preflight")).unwrap();
    assert!(
        !run.stdout[late_at..].contains(&format!("{early}: ")),
        "{early}'s output is split by {late}'s:\n{}",
        run.stdout
    );
    s.run(&["status", &a, &b]).ok();
    s.run(&["status", "--all", "--json"]).ok();

    // The escape hatch: compose's own commands on the tenant's project.
    let run = s
        .run(&["compose", &a, "--", "ps", "--format", "{{.Service}}"])
        .ok();
    for svc in SMALL {
        assert!(
            run.stdout.lines().any(|l| l == svc),
            "{svc}: {}",
            run.stdout
        );
    }
    s.run(&["compose", &a, "--", "exec", "postgres", "true"])
        .ok();
    s.run(&[
        "compose", &a, "--", "exec", "-T", "postgres", "sh", "-c", "exit 3",
    ])
    .code(3);
    s.run(&["restart", &a, "redis"]).ok();

    // One service stopped: degraded (3), and only that tenant.
    s.run(&["compose", &a, "--", "stop", "redis"]).ok();
    let run = s.run(&["status", &a, &b]).code(3);
    assert!(
        run.stderr.contains(&format!("{a}: degraded")),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains(&format!("{b}:")), "{}", run.stderr);

    // Both down at once; then not running (4).
    let run = s.run(&["down", "--all"]).ok();
    assert!(
        run.stdout.contains("down: 2 tenant(s) done"),
        "{}",
        run.stdout
    );
    s.run(&["status", "--all"]).code(4);
}
