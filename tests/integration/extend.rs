//! `add-service` / `remove-service`: the service joins the stack with the tenant's policy and a
//! caddy route; removing it gives back the manifest and every stack file byte for byte;
//! refusals exit 2 and write nothing; `--purge-data` deletes only the service's directory; on a
//! running tenant only the new container is started or removed.

use crate::common::*;

/// A rendered tenant with open-webui and caddy (chroma as its vector DB), BASE_DIR in the sandbox.
fn rendered(tenant: &str) -> Sandbox {
    let s = Sandbox::new();
    let base = s.path("base").display().to_string();
    s.run(&[
        "init",
        "--non-interactive",
        "--tenant",
        tenant,
        "--vector-db",
        "chroma",
        "--services",
        "openwebui,caddy",
        "--domain",
        "ex.test",
        "--base-dir",
        &base,
    ])
    .ok();
    s.run(&["render"]).ok();
    s
}

const ADD: [&str; 13] = [
    "--image",
    "ghcr.io/acme/my-app:1.4.2",
    "--port",
    "8080",
    "--env",
    "LOG_LEVEL=debug",
    "--env",
    "GREETING=hello $USER, #1",
    "--volume",
    "data:/var/lib/my-app",
    "--route",
    "app",
    "--healthcheck",
];

#[test]
fn add_then_remove_round_trips_the_manifest_and_stacks_byte_for_byte() {
    let t = unique_tenant("ex", "rt");
    let s = rendered(&t);
    let before = s.snapshot_tree();

    let mut args = vec!["add-service", &t, "my-app"];
    args.extend(ADD);
    args.push("wget -q -O /dev/null http://127.0.0.1:8080/health");
    let run = s.run(&args).ok();
    assert!(run.stdout.contains("added my-app"), "{}", run.stdout);
    assert!(run.stdout.contains("not running here"), "{}", run.stdout);

    // The stack: the tenant's user, hardening, AppArmor, labels, networks, data dir, port.
    let stack_text = s.read(&format!("stacks/{t}-stack.yml"));
    let stack: serde_yaml::Value = serde_yaml::from_str(&stack_text).unwrap();
    let svc = &stack["services"]["my-app"];
    let uid = s
        .read(".env")
        .lines()
        .find_map(|l| l.split_once("__UID=").map(|(_, v)| v.to_string()))
        .unwrap();
    assert_eq!(svc["image"], "ghcr.io/acme/my-app:1.4.2");
    assert_eq!(svc["user"], format!("{uid}:{uid}").as_str());
    assert_eq!(svc["cap_drop"][0], "ALL");
    let secopt: Vec<&str> = svc["security_opt"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(secopt.contains(&"no-new-privileges:true"), "{secopt:?}");
    assert!(
        secopt.contains(&format!("apparmor=ai-platform-{t}").as_str()),
        "{secopt:?}"
    );
    assert_eq!(svc["labels"]["com.stackgen.tenant"], t.as_str());
    assert_eq!(svc["labels"]["com.stackgen.service"], "my-app");
    assert_eq!(svc["environment"]["GREETING"], "hello $$USER, #1");
    let base = s.path("base").display().to_string();
    assert_eq!(
        svc["volumes"][0],
        format!("{base}/tenants/{t}/data/my-app/data:/var/lib/my-app").as_str()
    );
    let range_start: u16 = s
        .read(".env")
        .lines()
        .find_map(|l| l.split_once("__PORT_RANGE=").map(|(_, v)| v.to_string()))
        .unwrap()
        .split('-')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        svc["ports"][0],
        format!("127.0.0.1:{}:8080", range_start + 32).as_str()
    );
    assert!(stack_text.contains("wget -q -O /dev/null http://127.0.0.1:8080/health"));
    let caddyfile = s.read(&format!("stacks/{t}/caddy/Caddyfile"));
    assert!(
        caddyfile.contains(&format!("app.{t}.ex.test {{"))
            && caddyfile.contains("reverse_proxy my-app:8080"),
        "{caddyfile}"
    );
    // Consistent: --check is clean, compose and caddy accept the files.
    s.run(&["render", "--check"]).ok();
    let test = "add_then_remove_round_trips_the_manifest_and_stacks_byte_for_byte";
    if let Some(r) = compose_config(
        &s.path(".env"),
        &s.path(&format!("stacks/{t}-stack.yml")),
        test,
    ) {
        r.unwrap();
    }
    if let Some(r) = caddy_adapt(&s.path(&format!("stacks/{t}/caddy/Caddyfile")), test) {
        r.unwrap();
    }

    let run = s.run(&["remove-service", &t, "my-app"]).ok();
    assert!(run.stdout.contains("data kept in"), "{}", run.stdout);
    assert_eq!(
        s.snapshot_tree(),
        before,
        "add + remove must give back the manifest and stacks byte for byte"
    );
}

#[test]
fn refusals_exit_2_and_write_nothing() {
    let t = unique_tenant("ex", "no");
    let s = rendered(&t);
    s.run(&[
        "add-service",
        &t,
        "keeper",
        "--image",
        "ghcr.io/x/keeper:1",
        "--port",
        "80",
    ])
    .ok();
    let before = s.snapshot_tree();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["postgres", "--image", "a/b:1", "--port", "80"],
            "catalog",
        ),
        (
            vec!["openwebui", "--image", "a/b:1", "--port", "80"],
            "catalog",
        ),
        (
            vec!["dify-api", "--image", "a/b:1", "--port", "80"],
            "catalog",
        ),
        (
            vec!["keeper", "--image", "a/b:1", "--port", "80"],
            "already has",
        ),
        (
            vec!["x", "--image", "a/b:latest", "--port", "80"],
            "--image",
        ),
        (vec!["x", "--image", "a/b", "--port", "80"], "--image"),
        (vec!["x", "--image", "A/B:1", "--port", "80"], "--image"),
        (vec!["x", "--image", "a/b:1", "--port", "0"], "--port"),
        (vec!["x", "--image", "a/b:1", "--port", "65536"], "--port"),
        (vec!["x", "--image", "a/b:1", "--port", "http"], "--port"),
        (
            vec!["x", "--image", "a/b:1", "--port", "80", "--env", "oops"],
            "--env",
        ),
        (
            vec!["x", "--image", "a/b:1", "--port", "80", "--volume", "d:rel"],
            "--volume",
        ),
        (
            vec![
                "x",
                "--image",
                "a/b:1",
                "--port",
                "80",
                "--route",
                "openwebui",
            ],
            "already taken",
        ),
        (vec!["Bad_Name", "--image", "a/b:1", "--port", "80"], "NAME"),
    ];
    for (extra, want) in cases {
        let mut args = vec!["add-service", t.as_str()];
        args.extend(extra.iter().copied());
        let run = s.run(&args).code(2);
        assert!(run.stderr.contains(want), "{args:?}: {}", run.stderr);
        assert_eq!(s.snapshot_tree(), before, "{args:?} wrote something");
    }
    for name in ["nothing-here", "openwebui"] {
        let run = s.run(&["remove-service", &t, name]).code(2);
        assert!(run.stderr.contains("no custom service"), "{}", run.stderr);
        assert_eq!(s.snapshot_tree(), before);
    }
    let run = s
        .run(&[
            "add-service",
            "nobody",
            "x",
            "--image",
            "a/b:1",
            "--port",
            "80",
        ])
        .code(2);
    assert!(run.stderr.contains("no tenant `nobody`"), "{}", run.stderr);
}

#[test]
fn a_full_port_range_is_refused() {
    let t = unique_tenant("ex", "full");
    let s = rendered(&t);
    let prefix = t.replace('-', "_").to_ascii_uppercase();
    // 33 ports: the 32 the catalog reserves and one for a custom service.
    s.set_env_line(&format!("{prefix}__PORT_RANGE"), "20000-20032");
    s.run(&["render"]).ok();
    s.run(&["add-service", &t, "one", "--image", "a/b:1", "--port", "80"])
        .ok();
    let before = s.snapshot_tree();
    let run = s
        .run(&["add-service", &t, "two", "--image", "a/b:1", "--port", "80"])
        .code(2);
    assert!(run.stderr.contains("no free host port"), "{}", run.stderr);
    assert_eq!(s.snapshot_tree(), before);
}

#[test]
fn purge_data_deletes_only_the_services_directory() {
    let t = unique_tenant("ex", "pd");
    let s = rendered(&t);
    let add = [
        "add-service",
        &t,
        "my-app",
        "--image",
        "a/b:1",
        "--port",
        "80",
    ];
    s.run(&add).ok();
    s.write(&format!("base/tenants/{t}/data/my-app/data/file"), "mine\n");
    s.write(
        &format!("base/tenants/{t}/data/openwebui/keep"),
        "not mine\n",
    );
    s.write(
        &format!("base/tenants/{t}/data/my-app-2/keep"),
        "a neighbour\n",
    );

    // Without --purge-data the data stays.
    s.run(&["remove-service", &t, "my-app"]).ok();
    assert!(s
        .path(&format!("base/tenants/{t}/data/my-app/data/file"))
        .exists());

    s.run(&add).ok();
    let run = s
        .run(&["remove-service", &t, "my-app", "--purge-data"])
        .ok();
    assert!(run.stdout.contains("deleted"), "{}", run.stdout);
    assert!(!s.path(&format!("base/tenants/{t}/data/my-app")).exists());
    assert!(s
        .path(&format!("base/tenants/{t}/data/openwebui/keep"))
        .exists());
    assert!(s
        .path(&format!("base/tenants/{t}/data/my-app-2/keep"))
        .exists());
}

/// What `rendered` runs (open-webui needs postgres; chroma is the vector DB).
const RUNNING: [&str; 4] = ["postgres", "chroma", "openwebui", "caddy"];

#[test]
fn on_a_running_tenant_only_the_new_service_starts_and_stops() {
    let test = "on_a_running_tenant_only_the_new_service_starts_and_stops";
    if !engine_ready(&RUNNING, test) {
        return;
    }
    let t = unique_tenant("ex", "live");
    let s = rendered(&t);
    let prefix = t.replace('-', "_").to_ascii_uppercase();
    let start = free_port_range(40);
    s.set_env_line(
        &format!("{prefix}__PORT_RANGE"),
        &format!("{start}-{}", start + 39),
    );
    s.set_env_line("TLS_MODE", "internal");
    edge_ports(&s);
    let mut env = s.read(".env");
    for svc in RUNNING {
        let key = format!("{}_IMAGE", svc.to_ascii_uppercase());
        env.push_str(&format!("{key}={}\n", image_for(svc)));
    }
    s.write(".env", &env);
    s.run(&["render"]).ok();
    // Data directories owned by the tenant's UID (caddy cannot write root-owned ones).
    s.run(&["prepare", &t]).ok();
    // Dropped in reverse order: the tenant first, then the front door plain compose started.
    let _edge = EdgeDown(&s);
    let _down = Down(t.clone());
    plain_compose_up(&s, &t);
    let started = |service: &str| -> String {
        host(
            "docker",
            &[
                "inspect",
                "-f",
                "{{.State.StartedAt}}",
                &format!("{t}-{service}-1"),
            ],
        )
        .ok()
        .stdout
    };
    let before: Vec<String> = RUNNING.map(started).to_vec();

    // The weaviate stand-in serves HTTP on 8080, has wget for the default healthcheck, runs as
    // any UID and writes $PERSISTENCE_DATA_PATH at start: given a volume there, it starts.
    let image = image_for("weaviate");
    let run = s
        .run(&[
            "add-service",
            &t,
            "my-app",
            "--image",
            &image,
            "--port",
            "8080",
            "--env",
            "PERSISTENCE_DATA_PATH=/data",
            "--volume",
            "data:/data",
            "--route",
            "app",
        ])
        .ok();
    assert!(
        run.stdout.contains("started my-app alone"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("caddy reloaded"), "{}", run.stdout);
    let state = host(
        "docker",
        &[
            "inspect",
            "-f",
            "{{.State.Running}}",
            &format!("{t}-my-app-1"),
        ],
    );
    assert_eq!(state.stdout.trim(), "true", "{}", state.stderr);
    let after: Vec<String> = RUNNING.map(started).to_vec();
    assert_eq!(before, after, "another container was restarted");
    let live = host(
        "docker",
        &[
            "exec",
            &format!("{t}-caddy-1"),
            "cat",
            "/etc/caddy/Caddyfile",
        ],
    )
    .ok();
    assert!(
        live.stdout.contains(&format!("app.{t}.ex.test")),
        "{}",
        live.stdout
    );

    // What add-service tells the operator to run next works (it used to panic, exit 101). Only
    // caddy may be recreated: its depends_on now names my-app, which changes its compose config.
    let up = s.run(&["up", &t, "--timeout", "120"]);
    assert_eq!(
        up.code, 0,
        "up after add-service\n{}\n{}",
        up.stdout, up.stderr
    );
    let after: Vec<String> = RUNNING.map(started).to_vec();
    assert_eq!(
        before[..3],
        after[..3],
        "up after add-service restarted a backend"
    );
    let before: Vec<String> = after;

    let run = s.run(&["remove-service", &t, "my-app"]).ok();
    assert!(run.stdout.contains("stopped and removed"), "{}", run.stdout);
    let gone = host("docker", &["inspect", &format!("{t}-my-app-1")]);
    assert_ne!(gone.code, 0, "the container is still there");
    let after: Vec<String> = RUNNING.map(started).to_vec();
    assert_eq!(before, after, "another container was restarted");
}

/// Removes the test tenant's containers and networks, selected by its compose project.
struct Down(String);

/// Removes the sandbox's front door (after its tenant: see `remove_edge`).
struct EdgeDown<'a>(&'a Sandbox);

impl Drop for EdgeDown<'_> {
    fn drop(&mut self) {
        remove_edge(self.0);
    }
}

impl Drop for Down {
    fn drop(&mut self) {
        let label = format!("label=com.docker.compose.project={}", self.0);
        let ids = host("docker", &["ps", "-aq", "--filter", &label]);
        for id in ids.stdout.split_whitespace() {
            let _ = host("docker", &["rm", "-f", id]);
        }
        let nets = host("docker", &["network", "ls", "-q", "--filter", &label]);
        for n in nets.stdout.split_whitespace() {
            let _ = host("docker", &["network", "rm", n]);
        }
    }
}
