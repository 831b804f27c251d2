//! `render --check`: exit 0 when the disk matches, 1 with a unified diff when it does not.

use crate::common::*;

#[test]
fn check_is_clean_after_render_and_writes_nothing() {
    let s = Sandbox::with_example();
    let run = s.run(&["render", "--check"]).code(1);
    assert!(
        run.stdout.contains("+++ b/"),
        "missing files show as a diff: {}",
        run.stdout
    );
    assert!(!s.path("stacks").exists(), "--check must not write");
    s.run(&["render"]).ok();
    let run = s.run(&["render", "--check"]).ok();
    assert!(run.stdout.contains("4 tenant(s) up to date"));
}

#[test]
fn check_reports_an_edited_file_with_a_diff() {
    let s = Sandbox::with_example();
    s.run(&["render"]).ok();
    let path = "stacks/team-b-stack.yml";
    let edited = s
        .read(path)
        .replace("restart: unless-stopped", "restart: always");
    s.write(path, &edited);
    let before = s.snapshot_tree();
    let run = s.run(&["render", "--check"]).code(1);
    assert!(
        run.stdout.contains("-    restart: always")
            && run.stdout.contains("+    restart: unless-stopped"),
        "{}",
        run.stdout
    );
    assert!(run.stderr.contains("differ from what the manifest renders"));
    assert_eq!(before, s.snapshot_tree(), "--check must not write");
}

#[test]
fn check_reports_and_render_removes_stale_generated_files() {
    let s = Sandbox::with_example();
    s.run(&["render"]).ok();
    // team-c has no litellm: a litellm config there is a generated file the manifest no longer
    // produces. An arbitrary file is not stackgen's and is left alone.
    s.write("stacks/team-c/litellm/config.yaml", "x");
    s.write("stacks/team-c/notes/operator.txt", "mine");
    let run = s.run(&["render", "--check", "team-c"]).code(1);
    assert!(
        run.stdout.contains("stale:") && run.stdout.contains("litellm/config.yaml"),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("operator.txt"), "{}", run.stdout);
    s.run(&["render", "team-c"]).ok();
    assert!(!s.path("stacks/team-c/litellm/config.yaml").exists());
    assert_eq!(s.read("stacks/team-c/notes/operator.txt"), "mine");
    s.run(&["render", "--check"]).ok();
}

#[test]
fn manifest_change_is_drift() {
    let s = Sandbox::with_example();
    s.run(&["render"]).ok();
    let env = s.read(".env").replace(
        "TEAM_C__PORT_RANGE=20200-20299",
        "TEAM_C__PORT_RANGE=30200-30299",
    );
    s.write(".env", &env);
    let run = s.run(&["render", "--check"]).code(1);
    assert!(
        run.stdout.contains("+      - \"127.0.0.1:30210:8080\""),
        "{}",
        run.stdout
    );
}

#[test]
fn check_covers_the_front_door() {
    let s = Sandbox::with_example();
    s.run(&["render"]).ok();
    // A hand edit of the edge's Caddyfile is drift, shown as a diff; `render` puts it back.
    let path = "stacks/edge/Caddyfile";
    s.write(
        path,
        &s.read(path).replace(
            "reverse_proxy team-b-caddy:80",
            "reverse_proxy team-a-caddy:80",
        ),
    );
    let run = s.run(&["render", "--check"]).code(1);
    assert!(
        run.stdout.contains("-\treverse_proxy team-a-caddy:80")
            && run.stdout.contains("+\treverse_proxy team-b-caddy:80"),
        "{}",
        run.stdout
    );
    // So is a change of an EDGE_* key (the stack), and a tenant's new port range (its network).
    s.run(&["render"]).ok();
    let env = s.read(".env").replace(
        "TLS_MODE=internal",
        "TLS_MODE=internal\nEDGE_HTTPS_PORT=8443",
    );
    s.write(".env", &env);
    let run = s.run(&["render", "--check", "--json"]).code(1);
    let report: Vec<serde_json::Value> = serde_json::from_str(&run.stdout).unwrap();
    let edge = report.iter().find(|t| t["tenant"] == "edge").unwrap();
    assert_eq!(
        edge["changed"][0], "./stacks/edge-stack.yml",
        "{}",
        run.stdout
    );
    assert!(report
        .iter()
        .filter(|t| t["tenant"] != "edge")
        .all(|t| t["clean"] == true));
    // Without a tenant that runs caddy there is no front door: its files are stale, and
    // `render` removes them (an operator's own file there is left alone).
    s.run(&["render"]).ok();
    s.write("stacks/edge/notes.txt", "mine");
    s.run(&["render", "--check"]).ok();
    let env = s.read(".env");
    let no_caddy: String = env
        .lines()
        .map(|l| match l.split_once("__SERVICES=") {
            Some((k, v)) => format!("{k}__SERVICES={}\n", v.replace(",caddy", "")),
            None => format!("{l}\n"),
        })
        .collect();
    s.write(".env", &no_caddy);
    let run = s.run(&["render", "--check"]).code(1);
    assert!(
        run.stdout.contains("stale: ./stacks/edge/Caddyfile")
            && run.stdout.contains("stale: ./stacks/edge-stack.yml"),
        "{}",
        run.stdout
    );
    s.run(&["render"]).ok();
    assert!(!s.path("stacks/edge-stack.yml").exists() && !s.path("stacks/edge/Caddyfile").exists());
    assert_eq!(s.read("stacks/edge/notes.txt"), "mine");
    s.run(&["render", "--check"]).ok();
}
