//! One front door per engine (issue 13 with issue 12): a tenant on the current engine and one
//! on the second engine (`sg-host2`, `.ci/start-second-engine.sh`), both behind their own caddy
//! and the real caddy as each engine's front door. Each door is started by `up` of a tenant on
//! its engine, routes that engine's tenants only (the other door has no certificate and no
//! route for them), takes its own ports from `EDGE__<CONTEXT>__*`, reads the Caddyfile that
//! stackgen copied to its own host folder, reloads in place, shows in `status`, and goes down
//! on its own.
//!
//! Needs both engines, curl and the whoami stand-in: required in CI, skipped with a notice
//! elsewhere.

use super::e2e_edge::{add_tenant, curl, whoami_image, WHOAMI};
use super::engines::{docker2, second_engine_ready, CONTEXT};
use crate::common::*;

/// Gives the second engine `image` from the first (`docker save | docker load`), when it lacks it.
fn load_into_second_engine(image: &str) {
    if docker2(&["image", "inspect", image]).code == 0 {
        return;
    }
    let out = host(
        "sh",
        &[
            "-c",
            &format!("docker save {image} | docker --context {CONTEXT} load -q"),
        ],
    );
    assert_eq!(
        out.code, 0,
        "loading {image} into {CONTEXT}: {}",
        out.stderr
    );
}

/// Removes the remote tenant's containers and networks, and the remote door, whatever happened
/// (the local ones: `remove_tenant`).
struct Cleanup<'a> {
    s: &'a Sandbox,
    local: String,
    remote: String,
    deployment: String,
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        let _ = self.s.run(&["down", &self.remote]);
        let _ = self.s.run(&["down", &format!("edge-{CONTEXT}")]);
        for filter in [
            format!("label=com.stackgen.tenant={}", self.remote),
            format!("label=com.stackgen.deployment={}", self.deployment),
        ] {
            let ids = docker2(&["ps", "-aq", "--filter", &filter]).stdout;
            for id in ids.split_whitespace() {
                let _ = docker2(&["rm", "-f", id]);
            }
        }
        let nets = docker2(&[
            "network",
            "ls",
            "-q",
            "--filter",
            &format!("label=com.stackgen.deployment={}", self.deployment),
        ])
        .stdout;
        for n in nets.split_whitespace() {
            let _ = docker2(&["network", "rm", n]);
        }
        for n in [
            format!("ai-platform-{}", self.remote),
            format!("ai-platform-{}-internal", self.remote),
        ] {
            let _ = docker2(&["network", "rm", &n]);
        }
        remove_tenant(self.s, &self.local);
    }
}

/// The running front door of a deployment on one engine (`docker` or `docker --context`).
fn door(remote: bool, deployment: &str) -> Vec<String> {
    let args = [
        "ps",
        "-q",
        "--filter",
        "label=com.stackgen.role=edge",
        "--filter",
        &format!("label=com.stackgen.deployment={deployment}"),
    ];
    let out = if remote {
        docker2(&args)
    } else {
        host("docker", &args)
    };
    out.stdout.split_whitespace().map(str::to_string).collect()
}

#[test]
fn e2e_each_engine_has_its_own_front_door() {
    let test = "e2e_each_engine_has_its_own_front_door";
    if !engine_ready(&["caddy", "qdrant"], test)
        || !have("curl", &["--version"], test)
        || !second_engine_ready(test, &["stackgen-standin/qdrant:test"])
        || !whoami_image(test)
    {
        return;
    }
    for image in [image_for("caddy"), WHOAMI.to_string()] {
        load_into_second_engine(&image);
    }
    let s = Sandbox::new();
    let (local, remote) = (unique_tenant("ed", "l"), unique_tenant("ed", "r"));
    add_tenant(&s, &local, true);
    add_tenant(&s, &remote, false);
    let deployment = s
        .read(".env")
        .lines()
        .find_map(|l| l.strip_prefix("STACKGEN_DEPLOYMENT=").map(str::to_string))
        .unwrap();
    let _cleanup = Cleanup {
        s: &s,
        local: local.clone(),
        remote: remote.clone(),
        deployment: deployment.clone(),
    };
    // Both doors on this machine's loopback here, so each needs ports of its own; on two real
    // hosts both would keep 80 and 443.
    let https = edge_ports(&s);
    let p2 = free_port_range(2);
    let https2 = p2 + 1;
    let rp = remote.replace('-', "_").to_ascii_uppercase();
    let key = CONTEXT.replace('-', "_").to_ascii_uppercase();
    let env = s.read(".env");
    s.write(
        ".env",
        &format!(
            "{env}{rp}__DOCKER_CONTEXT={CONTEXT}\nEDGE__{key}__HTTP_PORT={p2}\nEDGE__{key}__HTTPS_PORT={https2}\n"
        ),
    );
    s.run(&["render"]).ok();

    // 1. Two doors, each with its own tenant only.
    let here = s.read("stacks/edge-stack.yml");
    let there = s.read(&format!("stacks/edge-{CONTEXT}-stack.yml"));
    assert!(
        here.contains(&format!("ai-platform-{local}-front")),
        "{here}"
    );
    assert!(
        !here.contains(&format!("ai-platform-{remote}-front")),
        "{here}"
    );
    assert!(
        there.contains(&format!("ai-platform-{remote}-front")),
        "{there}"
    );
    assert!(
        !there.contains(&format!("ai-platform-{local}-front")),
        "{there}"
    );
    let base = s.path("base").display().to_string();
    assert!(
        there.contains(&format!("{base}/edge-{CONTEXT}/etc:/etc/caddy:ro")),
        "{there}"
    );

    // 2. `up` of each tenant starts its own engine's door first.
    let run = s.run(&["up", &local, "--timeout", "180"]).ok();
    assert!(run.stdout.contains("front door edge-"), "{}", run.stdout);
    let run = s.run(&["up", &remote, "--timeout", "180"]).ok();
    assert!(
        run.stdout
            .contains(&format!("front door edge-{CONTEXT}-{deployment} started")),
        "{}",
        run.stdout
    );
    let (d1, d2) = (door(false, &deployment), door(true, &deployment));
    assert_eq!(
        (d1.len(), d2.len()),
        (1, 1),
        "one door per engine: {d1:?} {d2:?}"
    );
    // The remote door reads the Caddyfile stackgen copied to its host's folder.
    let mounts = docker2(&[
        "inspect",
        "-f",
        "{{range .Mounts}}{{.Source}}={{.Destination}} {{end}}",
        &d2[0],
    ])
    .ok()
    .stdout;
    assert!(
        mounts.contains(&format!("{base}/edge-{CONTEXT}/etc=/etc/caddy")),
        "{mounts}"
    );
    let copied = docker2(&["exec", &d2[0], "cat", "/etc/caddy/Caddyfile"])
        .ok()
        .stdout;
    assert_eq!(copied, s.read(&format!("stacks/edge-{CONTEXT}/Caddyfile")));

    // 3. Each door serves its own tenant, with a certificate from its own CA, and nothing of
    //    the other engine's tenant.
    let ca = |remote: bool, id: &str| {
        let args = [
            "exec",
            id,
            "cat",
            "/data/caddy/pki/authorities/local/root.crt",
        ];
        let pem = if remote {
            docker2(&args)
        } else {
            host("docker", &args)
        };
        let path = s.path(&format!("ca-{remote}.crt"));
        std::fs::write(&path, pem.ok().stdout).unwrap();
        path.display().to_string()
    };
    let (ca1, ca2) = (ca(false, &d1[0]), ca(true, &d2[0]));
    for (port, cacert, me, other) in [
        (https, &ca1, &local, &remote),
        (https2, &ca2, &remote, &local),
    ] {
        let name = format!("whoami.{me}.edge.test");
        let (code, body) = curl(port, &name, &["--cacert", cacert]);
        assert_eq!(code, "200", "{name} on :{port}: {body}");
        assert!(body.starts_with(&format!("tenant={me} ")), "{body}");
        let theirs = format!("whoami.{other}.edge.test");
        let (code, body) = curl(port, &theirs, &["-k"]);
        assert_ne!(code, "200", "{theirs} through the door of :{port}: {body}");
        assert!(!body.contains("tenant="), "{theirs} on :{port}: {body}");
    }

    // 4. Reload in place, status of both doors, and the remote door goes down on its own once
    //    its tenant is down; the local one keeps serving.
    let door_name = format!("edge-{CONTEXT}");
    let started = docker2(&["inspect", "-f", "{{.State.StartedAt}}", &d2[0]])
        .ok()
        .stdout;
    // `reload-proxy` copies the Caddyfile to that host again before the reload: the copy there
    // (this machine is sg-host2's host too) was changed behind stackgen's back, and comes back.
    let copy = s.path(&format!("base/edge-{CONTEXT}/etc/Caddyfile"));
    std::fs::write(&copy, "# changed by hand\n").unwrap();
    let run = s.run(&["reload-proxy", &door_name]).ok();
    assert!(run.stdout.contains("caddy reloaded"), "{}", run.stdout);
    assert_eq!(
        docker2(&["exec", &d2[0], "cat", "/etc/caddy/Caddyfile"])
            .ok()
            .stdout,
        s.read(&format!("stacks/edge-{CONTEXT}/Caddyfile"))
    );
    assert_eq!(
        docker2(&["inspect", "-f", "{{.State.StartedAt}}", &d2[0]])
            .ok()
            .stdout,
        started
    );
    let st = s.run(&["status", "--json"]);
    let json: serde_json::Value = serde_json::from_str(&st.stdout).unwrap();
    let doors: Vec<(String, String)> = json["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["tenant"].as_str().unwrap().into(),
                e["state"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        doors,
        [
            ("edge".to_string(), "running".to_string()),
            (door_name.clone(), "running".to_string())
        ],
        "{}",
        st.stdout
    );
    let run = s.run(&["down", &door_name]).code(1);
    assert!(
        run.stderr
            .contains(&format!("tenant(s) {remote} still run")),
        "{}",
        run.stderr
    );
    s.run(&["down", &remote]).ok();
    s.run(&["down", &door_name]).ok();
    assert!(door(true, &deployment).is_empty());
    assert_eq!(door(false, &deployment), d1);
    let (code, _) = curl(
        https,
        &format!("whoami.{local}.edge.test"),
        &["--cacert", &ca1],
    );
    assert_eq!(code, "200");
}
