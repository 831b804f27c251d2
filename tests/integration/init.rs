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
    assert!(env.contains("ACME__PORT_RANGE=20000-20099"));
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
    assert!(added.contains("TENANT=globex\n") && added.contains("GLOBEX__PORT_RANGE=20100-20199"));
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
