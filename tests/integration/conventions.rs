//! Issue 11 item 8, the conventions of the ecosystem: completions, a man page, -q/-v, colour
//! (NO_COLOR, --color) and --json on `doctor` and `render --check`.

use crate::common::*;

const ESC: char = '\u{1b}';

/// The example, rendered, with BASE_DIR in the sandbox and a fake docker on PATH.
fn prepared() -> (Sandbox, Vec<(String, String)>) {
    let s = Sandbox::with_example();
    s.set_env_line("BASE_DIR", &s.path("base").display().to_string());
    edge_ports(&s);
    s.run(&["render"]).ok();
    let env = fake_docker(&s);
    (s, env)
}

/// The sandbox with one generated file edited by hand, so `render --check` finds drift.
fn drifted() -> Sandbox {
    let s = Sandbox::with_example();
    s.run(&["render"]).ok();
    let caddyfile = s.path("stacks/team-a/caddy/Caddyfile");
    let mut text = std::fs::read_to_string(&caddyfile).unwrap();
    text.push_str("# edited by hand\n");
    std::fs::write(&caddyfile, text).unwrap();
    s
}

#[test]
fn completions_and_man_are_printed() {
    let s = Sandbox::new();
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let run = s.run(&["completions", shell]).ok();
        assert!(run.stdout.contains("stackgen"), "{shell}: {}", run.stdout);
        // A subcommand name: the script completes the verbs, not only the program.
        assert!(run.stdout.contains("rotate-secrets"), "{shell}");
    }
    s.run(&["completions", "tcsh"]).code(2);
    let run = s.run(&["man"]).ok();
    assert!(run.stdout.starts_with(".TH "), "{}", &run.stdout[..80]);
    assert!(run.stdout.contains(".SH NAME"), "{}", run.stdout);
    assert!(run.stdout.contains("render"), "{}", run.stdout);
}

#[test]
fn quiet_render_prints_nothing_and_verbose_adds_the_policy_summary() {
    let s = Sandbox::with_example();
    let run = s.run(&["render", "-q"]).ok();
    assert_eq!(run.stdout, "", "{}", run.stdout);
    assert!(s.path("stacks/team-a-stack.yml").exists());
    // Global: accepted before the subcommand too; the clean check is silent as well.
    let run = s.run(&["--quiet", "render", "--check"]).ok();
    assert_eq!(run.stdout, "");

    let run = s.run(&["render"]).ok();
    // One line per tenant, and one for the front door.
    assert_eq!(run.stdout.lines().count(), 5, "{}", run.stdout);
    assert!(!run.stdout.contains("tenant's own UID"), "{}", run.stdout);
    let run = s.run(&["render", "-v"]).ok();
    assert!(
        run.stdout
            .contains("  team-a: 13 of 23 services run as the tenant's own UID"),
        "{}",
        run.stdout
    );

    // Errors still reach stderr under -q, with the usual status.
    s.set_env_line("DOMAIN", "Not A Domain");
    let run = s.run(&["render", "-q"]).code(2);
    assert!(run.stderr.contains("DOMAIN"), "{}", run.stderr);
    s.run(&["render", "-q", "-v"]).code(2);
}

#[test]
fn quiet_prepare_and_init_drop_their_informational_lines() {
    let (s, _) = prepared();
    let run = s.run(&["prepare", "team-a", "-q"]).ok();
    assert_eq!(run.stdout, "", "{}", run.stdout);
    let run = s.run(&["prepare", "team-a"]).ok();
    assert!(run.stdout.contains("path(s) ready"), "{}", run.stdout);

    let s = Sandbox::new();
    let run = s
        .run(&["init", "--non-interactive", "--tenant", "acme", "-q"])
        .ok();
    assert_eq!(run.stdout, "", "{}", run.stdout);
    assert!(s.path(".env").exists());
}

#[test]
fn colour_follows_color_and_no_color() {
    let s = drifted();
    let run = s.run(&["render", "--check", "--color", "always"]).code(1);
    assert!(
        run.stdout.contains(&format!("{ESC}[32m+# edited"))
            || run.stdout.contains(&format!("{ESC}[31m-# edited")),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains(&format!("{ESC}[36m@@")),
        "{}",
        run.stdout
    );
    // Piped (the tests' stdout is a pipe): auto means none; NO_COLOR and never too.
    let run = s.run(&["render", "--check"]).code(1);
    assert!(!run.stdout.contains(ESC), "{}", run.stdout);
    let run = s
        .run_env(
            &["render", "--check", "--color", "auto"],
            &[("NO_COLOR", "1")],
        )
        .code(1);
    assert!(!run.stdout.contains(ESC), "{}", run.stdout);
    let run = s.run(&["render", "--check", "--color", "never"]).code(1);
    assert!(!run.stdout.contains(ESC), "{}", run.stdout);

    let (s, env) = prepared();
    let run = s.run_env(&["doctor", "--color", "always"], &env_refs(&env));
    assert!(
        run.stdout
            .contains(&format!("{ESC}[32mok   {ESC}[0m manifest")),
        "{}",
        run.stdout
    );
    let mut env_nc = env.clone();
    env_nc.push(("NO_COLOR".into(), "1".into()));
    let run = s.run_env(&["doctor", "--color", "auto"], &env_refs(&env_nc));
    assert!(!run.stdout.contains(ESC), "{}", run.stdout);
    assert!(run.stdout.contains("ok    manifest"), "{}", run.stdout);
}

#[test]
fn doctor_json_is_an_array_of_checks_and_keeps_the_exit_status() {
    let (s, env) = prepared();
    let mut down = env.clone();
    down.push(("FAKE_ENGINE_DOWN".into(), "1".into()));
    let run = s.run_env(&["doctor", "--json"], &env_refs(&down)).code(1);
    let checks: Vec<serde_json::Value> = serde_json::from_str(&run.stdout).unwrap();
    assert!(checks.len() >= 8, "{}", run.stdout);
    for c in &checks {
        let status = c["status"].as_str().unwrap();
        assert!(["ok", "warn", "fail", "skip"].contains(&status), "{c}");
        assert!(c["check"].is_string() && c["detail"].is_string(), "{c}");
    }
    let engine = checks.iter().find(|c| c["check"] == "engine").unwrap();
    assert_eq!(engine["status"], "fail", "{engine}");
    assert!(
        engine["fix"].as_str().is_some_and(|f| f.contains("docker")),
        "{engine}"
    );
    let manifest = checks.iter().find(|c| c["check"] == "manifest").unwrap();
    assert_eq!(manifest["status"], "ok");
    assert!(manifest["fix"].is_null());
    assert!(
        run.stderr.contains("doctor: 1 check(s) failed"),
        "{}",
        run.stderr
    );

    // With the engine up the status follows the array (a port may be held by a test running
    // alongside, so either outcome is possible; they must agree).
    let run = s.run_env(&["doctor", "--json"], &env_refs(&env));
    let checks: Vec<serde_json::Value> = serde_json::from_str(&run.stdout).unwrap();
    let any_failed = checks.iter().any(|c| c["status"] == "fail");
    assert_eq!(run.code, i32::from(any_failed), "{}", run.stdout);
    assert!(!checks
        .iter()
        .any(|c| c["check"] == "engine" && c["status"] != "ok"));
}

#[test]
fn render_check_json_lists_files_never_a_diff() {
    let s = Sandbox::with_example();
    s.run(&["render"]).ok();
    let run = s.run(&["render", "--check", "--json"]).ok();
    let tenants: Vec<serde_json::Value> = serde_json::from_str(&run.stdout).unwrap();
    // Four tenants and the front door.
    assert_eq!(tenants.len(), 5);
    assert_eq!(tenants[4]["tenant"], "edge", "{}", run.stdout);
    assert!(tenants.iter().all(|t| t["clean"] == true), "{}", run.stdout);

    let s = drifted();
    std::fs::write(s.path("stacks/team-b/caddy/old.conf"), "").ok();
    let run = s.run(&["render", "--check", "--json"]).code(1);
    let tenants: Vec<serde_json::Value> = serde_json::from_str(&run.stdout).unwrap();
    let a = tenants.iter().find(|t| t["tenant"] == "team-a").unwrap();
    assert_eq!(a["clean"], false);
    let changed = a["changed"].as_array().unwrap();
    assert_eq!(changed.len(), 1, "{a}");
    assert!(changed[0]
        .as_str()
        .unwrap()
        .ends_with("team-a/caddy/Caddyfile"));
    assert!(a["stale"].as_array().unwrap().is_empty());
    assert!(!run.stdout.contains("edited by hand"), "{}", run.stdout);
    assert!(!run.stdout.contains("@@"), "{}", run.stdout);
    s.run(&["render", "--json"]).code(2);
}
