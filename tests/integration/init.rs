//! `stackgen init --non-interactive`: writes a valid manifest, only ever appends, never
//! regenerates a secret.

use std::os::unix::fs::PermissionsExt;

use crate::common::*;

#[test]
fn creates_a_private_manifest_with_every_secret_the_services_need() {
    let s = Sandbox::new();
    s.run(&[
        "init",
        "--non-interactive",
        "--tenant",
        "acme",
        "--services",
        "all",
        "--domain",
        "example.org",
        "--base-dir",
        "/srv/x",
    ])
    .ok();
    let mode = std::fs::metadata(s.path(".env"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    let env = s.read(".env");
    assert!(env.contains("\nTENANT=acme\n"));
    assert!(env.contains("\nDOMAIN=example.org\n") && env.contains("\nBASE_DIR=/srv/x\n"));
    // The first free run of 100 from 20000 (which one depends on what this host holds).
    let (a, b) = port_range(&env, "ACME");
    assert!(a >= 20000 && b - a == 99 && a % 100 == 0, "{a}-{b}");
    let secrets: Vec<&str> = env
        .lines()
        .filter(|l| {
            l.starts_with("ACME__")
                && (l.contains("PASSWORD=") || l.contains("_KEY=") || l.contains("SECRET"))
        })
        .filter(|l| !l.starts_with("ACME__TAILSCALE_AUTH_KEY="))
        .collect();
    assert!(secrets.len() >= 20, "{secrets:#?}");
    for l in secrets {
        let v = l.split_once('=').unwrap().1;
        assert!(
            v.len() >= 32 && v.chars().all(|c| c.is_ascii_alphanumeric()),
            "{l}"
        );
    }
    // The operator's tailscale key is a placeholder, never generated.
    assert!(env.contains("\nACME__TAILSCALE_AUTH_KEY=\n"));
    s.run(&["render"]).ok();
}

#[test]
fn adding_a_tenant_keeps_every_existing_line_byte_for_byte() {
    let s = Sandbox::new();
    s.run(&["init", "--non-interactive", "--tenant", "acme"])
        .ok();
    let before = s.read(".env");
    s.run(&[
        "init",
        "--non-interactive",
        "--tenant",
        "globex",
        "--vector-db",
        "chroma",
        "--services",
        "openwebui,caddy",
    ])
    .ok();
    let after = s.read(".env");
    assert!(after.starts_with(&before), "existing lines changed");
    let added = &after[before.len()..];
    assert!(added.contains("TENANT=globex\n"));
    let (acme, globex) = (port_range(&after, "ACME"), port_range(&after, "GLOBEX"));
    assert!(
        globex.0 > acme.1 || globex.1 < acme.0,
        "{acme:?} {globex:?}"
    );
    assert!(added.contains("GLOBEX__UID=20002"), "{added}");
    // Re-running for an existing tenant changes nothing at all.
    let run = s
        .run(&["init", "--non-interactive", "--tenant", "acme"])
        .ok();
    assert!(run.stdout.contains("tenant acme already exists"));
    assert_eq!(s.read(".env"), after);
}

#[test]
fn missing_secrets_are_added_and_existing_ones_never_regenerated() {
    let s = Sandbox::new();
    s.run(&[
        "init",
        "--non-interactive",
        "--tenant",
        "acme",
        "--services",
        "openwebui",
    ])
    .ok();
    let env = s.read(".env");
    let pg = env
        .lines()
        .find(|l| l.starts_with("ACME__POSTGRES_PASSWORD="))
        .unwrap()
        .to_string();
    // The operator adds n8n by hand; its secret is missing, so render refuses and init fills it.
    let edited = env.replace("ACME__SERVICES=postgres,", "ACME__SERVICES=postgres,n8n,");
    s.write(".env", &edited);
    let run = s.run(&["render"]).code(2);
    assert!(
        run.stderr.contains("ACME__N8N_ENCRYPTION_KEY") && run.stderr.contains("stackgen init"),
        "{}",
        run.stderr
    );
    s.run(&["init", "--non-interactive"]).ok();
    let after = s.read(".env");
    assert!(after.starts_with(&edited));
    assert!(after.contains(&pg));
    assert_eq!(after.matches("ACME__N8N_ENCRYPTION_KEY=").count(), 1);
    s.run(&["render"]).ok();
}

#[test]
fn requirements_are_added_and_bad_choices_write_nothing() {
    let s = Sandbox::new();
    s.run(&[
        "init",
        "--non-interactive",
        "--tenant",
        "acme",
        "--services",
        "n8n,openclaw",
    ])
    .ok();
    let env = s.read(".env");
    let line = env
        .lines()
        .find(|l| l.starts_with("ACME__SERVICES="))
        .unwrap();
    assert_eq!(
        line,
        "ACME__SERVICES=postgres,qdrant,n8n,openclaw,tailscale"
    );

    let s = Sandbox::new();
    let run = s
        .run(&[
            "init",
            "--non-interactive",
            "--tenant",
            "acme",
            "--services",
            "n8m",
        ])
        .code(2);
    assert!(
        run.stderr.contains("unknown service `n8m`") && run.stderr.contains("did you mean `n8n`?"),
        "{}",
        run.stderr
    );
    assert!(s.snapshot_tree().is_empty(), "nothing may be written");
    let run = s
        .run(&["init", "--non-interactive", "--tenant", "Bad/Name"])
        .code(2);
    assert!(run.stderr.contains("not a valid tenant name"));
    let run = s
        .run(&[
            "init",
            "--non-interactive",
            "--tenant",
            "acme",
            "--domain",
            "not a domain",
        ])
        .code(2);
    assert!(run.stderr.contains("DOMAIN"), "{}", run.stderr);
    assert!(s.snapshot_tree().is_empty(), "nothing may be written");
}

/// A tenant's `PORT_RANGE` in the manifest text.
fn port_range(env: &str, prefix: &str) -> (u32, u32) {
    let key = format!("{prefix}__PORT_RANGE=");
    let v = env
        .lines()
        .find_map(|l| l.strip_prefix(&key))
        .unwrap_or_else(|| panic!("no {key} in:\n{env}"));
    let (a, b) = v.split_once('-').unwrap();
    (a.parse().unwrap(), b.parse().unwrap())
}

#[test]
fn init_picks_a_range_no_process_on_the_host_holds() {
    // Held for the whole test (if something else already holds it, it is busy all the same).
    let _tcp = std::net::TcpListener::bind(("0.0.0.0", 20005));
    assert!(std::net::TcpListener::bind(("0.0.0.0", 20005)).is_err());
    let s = Sandbox::new();
    s.run(&["init", "--non-interactive", "--tenant", "acme"])
        .ok();
    let (a, b) = port_range(&s.read(".env"), "ACME");
    assert!(
        !(a..=b).contains(&20005),
        "{a}-{b} holds the busy port 20005"
    );
    assert_eq!(b - a, 99);
    // A second tenant gets another free run, apart from the first.
    s.run(&["init", "--non-interactive", "--tenant", "globex"])
        .ok();
    let (c, d) = port_range(&s.read(".env"), "GLOBEX");
    assert!((c > b || d < a) && !(c..=d).contains(&20005), "{c}-{d}");
    s.run(&["render"]).ok();
}

#[test]
fn a_chosen_port_range_that_overlaps_or_is_busy_is_refused_and_nothing_written() {
    let base = free_port_range(100);
    let range = |a: u16, len: u16| format!("{a}-{}", a + len - 1);
    // A fresh directory: a range that is not a range creates nothing.
    let s = Sandbox::new();
    let run = s
        .run(&[
            "init",
            "--non-interactive",
            "--tenant",
            "acme",
            "--port-range",
            "40000-40010",
        ])
        .code(2);
    assert!(
        run.stderr
            .contains("--port-range 40000-40010 (tenant acme)"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("fewer than 32 ports"), "{}", run.stderr);
    assert!(s.snapshot_tree().is_empty());

    // A chosen free range is written as given (32 ports is the manifest's minimum).
    s.run(&[
        "init",
        "--non-interactive",
        "--tenant",
        "acme",
        "--port-range",
        &range(base, 32),
    ])
    .ok();
    assert_eq!(
        port_range(&s.read(".env"), "ACME"),
        (u32::from(base), u32::from(base) + 31)
    );
    let before = s.snapshot_tree();

    // Overlapping a tenant.
    let run = s
        .run(&[
            "init",
            "--non-interactive",
            "--tenant",
            "globex",
            "--port-range",
            &range(base + 16, 32),
        ])
        .code(2);
    assert!(
        run.stderr
            .contains(&format!("overlaps {} of ACME__PORT_RANGE", range(base, 32))),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("fix:"), "{}", run.stderr);
    assert_eq!(s.snapshot_tree(), before);

    // Busy on the host: a TCP listener and a UDP socket the test holds.
    let _tcp = std::net::TcpListener::bind(("0.0.0.0", base + 40)).unwrap();
    let _udp = std::net::UdpSocket::bind(("0.0.0.0", base + 50)).unwrap();
    let run = s
        .run(&[
            "init",
            "--non-interactive",
            "--tenant",
            "globex",
            "--port-range",
            &range(base + 32, 68),
        ])
        .code(2);
    assert!(
        run.stderr.contains("2 port(s) already in use on this host"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains(&format!("{}, {}", base + 40, base + 50)),
        "{}",
        run.stderr
    );
    assert_eq!(s.snapshot_tree(), before);

    // Two tenants cannot share one chosen range.
    let other = Sandbox::new();
    let run = other
        .run(&[
            "init",
            "--non-interactive",
            "--tenant",
            "a",
            "--tenant",
            "b",
            "--port-range",
            &range(base + 60, 32),
        ])
        .code(2);
    assert!(run.stderr.contains("new tenant `a`"), "{}", run.stderr);
    assert!(other.snapshot_tree().is_empty());
}

/// `init --docker-context`: the new tenant's line places it on that engine, the render says so,
/// and a name Docker would refuse is refused before anything is written (exit 2).
#[test]
fn init_places_a_new_tenant_on_another_engine() {
    let s = Sandbox::new();
    s.run(&["init", "--non-interactive", "--tenant", "here"])
        .ok();
    let before = s.read(".env");
    let run = s
        .run(&[
            "init",
            "--non-interactive",
            "--tenant",
            "there",
            "--docker-context",
            "bad context",
        ])
        .code(2);
    assert!(
        run.stderr.contains("--docker-context bad context"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("not a Docker context name"),
        "{}",
        run.stderr
    );
    assert_eq!(s.read(".env"), before, "nothing written");
    s.run(&[
        "init",
        "--non-interactive",
        "--tenant",
        "there",
        "--docker-context",
        "host-2",
    ])
    .ok();
    let env = s.read(".env");
    assert!(env.contains("\nTHERE__DOCKER_CONTEXT=host-2\n"), "{env}");
    assert!(!env.contains("\nHERE__DOCKER_CONTEXT"), "{env}");
    // Its range overlaps no other tenant's, on any engine.
    let (a, b) = port_range(&env, "HERE");
    let (c, d) = port_range(&env, "THERE");
    assert!(b < c || d < a, "{a}-{b} and {c}-{d}");
    s.run(&["render"]).ok();
    let stack = s.read("stacks/there-stack.yml");
    assert!(
        stack.contains(
            "docker --context host-2 compose --env-file .env -f stacks/there-stack.yml up -d"
        ),
        "{stack}"
    );
    // This host's sockets say nothing about that engine's: a port held here does not stop a
    // range for it, while the same range for a tenant of this host is refused.
    let start = free_port_range(40);
    let range = format!("{start}-{}", start + 39);
    let _held = std::net::TcpListener::bind(("0.0.0.0", start + 5)).unwrap();
    let run = s
        .run(&[
            "init",
            "--non-interactive",
            "--tenant",
            "local-too",
            "--port-range",
            &range,
        ])
        .code(2);
    assert!(
        run.stderr.contains("already in use on this host"),
        "{}",
        run.stderr
    );
    s.run(&[
        "init",
        "--non-interactive",
        "--tenant",
        "remote-too",
        "--port-range",
        &range,
        "--docker-context",
        "host-2",
    ])
    .ok();
    assert!(s
        .read(".env")
        .contains(&format!("\nREMOTE_TOO__PORT_RANGE={range}\n")));
    // Without --non-interactive the flag is refused by the parser (the menu does not ask).
    let run = s.run(&["init", "--docker-context", "host-2"]).code(2);
    assert!(run.stderr.contains("--non-interactive"), "{}", run.stderr);
}
