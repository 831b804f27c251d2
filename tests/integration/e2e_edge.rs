//! The front door end to end (issue 12), on a real engine with the real caddy (Debian's package,
//! `stackgen-real/caddy:test`) as the edge and as both tenants' caddies, `TLS_MODE=internal`:
//! `up` starts the edge; a tenant added later joins it with a reload, not a restart; each
//! tenant's hostname reaches that tenant's service only, with a certificate for it from the edge's
//! CA; a forged Host or SNI never crosses to the other tenant; the app sees https and the
//! client's address, not headers the client forged; `down` of one tenant leaves the other served.
//!
//! Each tenant runs a tiny stand-in web service (tests/images/edge-whoami, built here under its
//! own tag) that answers with its tenant and the request it got. Required in CI; skipped with a
//! notice on a developer machine.

use std::path::Path;

use crate::common::*;

pub(crate) const WHOAMI: &str = "stackgen-edge-test/whoami:test";

/// Builds the whoami stand-in (offline, from the local real caddy image); false when it cannot.
pub(crate) fn whoami_image(test: &str) -> bool {
    let out = host(
        "docker",
        &[
            "build",
            "-q",
            "--network",
            "none",
            "-t",
            WHOAMI,
            &format!("{ROOT}/tests/images/edge-whoami"),
        ],
    );
    if out.code != 0 {
        let msg = format!("{test}: building {WHOAMI} failed:\n{}", out.stderr);
        assert!(!tools_required(), "{msg}");
        eprintln!("SKIPPED {msg}");
        return false;
    }
    true
}

/// Takes the tenants (and then the front door) down, whatever happened.
struct Cleanup<'a>(&'a Sandbox, Vec<String>);

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        for t in &self.1 {
            remove_tenant(self.0, t);
        }
    }
}

/// Declares a tenant with caddy, its vector DB (qdrant) and the whoami service routed as
/// `whoami.<tenant>.edge.test`, on free ports; then renders.
pub(crate) fn add_tenant(s: &Sandbox, tenant: &str, first: bool) {
    let base = s.path("base").display().to_string();
    let mut args = vec![
        "init",
        "--non-interactive",
        "--tenant",
        tenant,
        "--services",
        "caddy",
    ];
    if first {
        args.extend(["--domain", "edge.test", "--base-dir", &base]);
    }
    s.run(&args).ok();
    let prefix = tenant.replace('-', "_").to_ascii_uppercase();
    let start = free_port_range(40);
    s.set_env_line(
        &format!("{prefix}__PORT_RANGE"),
        &format!("{start}-{}", start + 39),
    );
    if first {
        s.set_env_line("TLS_MODE", "internal");
        let env = s.read(".env");
        s.write(
            ".env",
            &format!(
                "{env}CADDY_IMAGE={}\nQDRANT_IMAGE={}\n",
                image_for("caddy"),
                image_for("qdrant")
            ),
        );
    }
    s.run(&[
        "add-service",
        tenant,
        "whoami",
        "--image",
        WHOAMI,
        "--port",
        "8080",
        "--env",
        &format!("WHO_TENANT={tenant}"),
        "--route",
        "whoami",
    ])
    .ok();
    s.run(&["render"]).ok();
}

/// `curl` to `https://<host>:<port>/` through the edge on 127.0.0.1 (`--resolve`: SNI and Host
/// are `host`, unless `host_header` forges the Host); returns (HTTP code, body).
pub(crate) fn curl(port: u16, host_name: &str, extra: &[&str]) -> (String, String) {
    let resolve = format!("{host_name}:{port}:127.0.0.1");
    let url = format!("https://{host_name}:{port}/");
    let mut args = vec![
        "-s",
        "--max-time",
        "10",
        "-w",
        "\n%{http_code}",
        "--resolve",
        &resolve,
    ];
    args.extend(extra);
    args.push(&url);
    let out = host("curl", &args);
    let (body, code) = out
        .stdout
        .rsplit_once('\n')
        .map(|(b, c)| (b.to_string(), c.to_string()))
        .unwrap_or_default();
    (code, body)
}

fn inspect(id: &str, format: &str) -> String {
    host("docker", &["inspect", "--format", format, id])
        .stdout
        .trim()
        .to_string()
}

fn edge_container(deployment: &str) -> String {
    let out = host(
        "docker",
        &[
            "ps",
            "-q",
            "--no-trunc",
            "--filter",
            "label=com.stackgen.role=edge",
            "--filter",
            &format!("label=com.stackgen.deployment={deployment}"),
        ],
    );
    let ids: Vec<&str> = out.stdout.split_whitespace().collect();
    assert_eq!(ids.len(), 1, "one running front door: {}", out.stdout);
    ids[0].to_string()
}

#[test]
fn e2e_front_door_routes_each_hostname_to_its_own_tenant_only() {
    let test = "e2e_front_door_routes_each_hostname_to_its_own_tenant_only";
    if !engine_ready(&["caddy", "qdrant"], test)
        || !have("curl", &["--version"], test)
        || !whoami_image(test)
    {
        return;
    }
    let s = Sandbox::new();
    let (a, b) = (unique_tenant("eg", "a"), unique_tenant("eg", "b"));
    let _cleanup = Cleanup(&s, vec![a.clone(), b.clone()]);
    add_tenant(&s, &a, true);
    let https = edge_ports(&s);
    s.run(&["render"]).ok();
    let deployment = s
        .read(".env")
        .lines()
        .find_map(|l| l.strip_prefix("STACKGEN_DEPLOYMENT=").map(str::to_string))
        .unwrap();

    // 1. The first `up` starts the front door, then the tenant behind it.
    let run = s.run(&["up", &a, "--timeout", "180"]).ok();
    assert!(
        run.stdout.contains("ok    edge       front door edge-"),
        "{}",
        run.stdout
    );
    let edge = edge_container(&deployment);
    let started = inspect(&edge, "{{.State.StartedAt}}");

    // 2. A tenant added to the manifest later: the edge gets its network and new routes in
    //    place (compose creates the network, docker connects it, caddy reloads): no restart.
    add_tenant(&s, &b, false);
    let run = s.run(&["up", &b, "--timeout", "180"]).ok();
    assert!(run.stdout.contains("routes reloaded"), "{}", run.stdout);
    assert_eq!(edge_container(&deployment), edge, "same edge container");
    assert_eq!(
        inspect(&edge, "{{.State.StartedAt}}"),
        started,
        "not restarted"
    );

    // 3. Each hostname reaches its own tenant's service, with a certificate for that hostname
    //    from the edge's CA (curl verifies chain and name: no -k), and the app sees https and
    //    the client's address even when the client forges the forwarded headers.
    let ca = s.path("edge-root.crt");
    let root = host(
        "docker",
        &[
            "exec",
            &edge,
            "cat",
            "/data/caddy/pki/authorities/local/root.crt",
        ],
    )
    .ok();
    std::fs::write(&ca, root.stdout).unwrap();
    let cacert = ca.display().to_string();
    for (me, other) in [(&a, &b), (&b, &a)] {
        let name = format!("whoami.{me}.edge.test");
        let (code, body) = curl(
            https,
            &name,
            &[
                "--cacert",
                &cacert,
                "-H",
                "X-Forwarded-For: 203.0.113.66",
                "-H",
                "X-Forwarded-Proto: gopher",
            ],
        );
        assert_eq!(code, "200", "{name}: {body}");
        assert!(
            body.starts_with(&format!(
                "tenant={me} service=whoami host={name} proto=https xff="
            )),
            "{name}: {body}"
        );
        assert!(!body.contains(&format!("tenant={other}")), "{body}");
        assert!(
            !body.contains("203.0.113.66"),
            "a forged X-Forwarded-For: {body}"
        );
        // The client's address first, then the front door's on the tenant's front network.
        let xff: Vec<&str> = body.rsplit("xff=").next().unwrap().split(", ").collect();
        assert_eq!(xff.len(), 2, "{body}");
        let front_subnet = inspect(
            &format!("ai-platform-{me}-front"),
            "{{(index .IPAM.Config 0).Subnet}}",
        );
        let prefix = front_subnet.rsplit_once('.').unwrap().0;
        assert!(xff[1].starts_with(prefix), "{body} / {front_subnet}");
    }

    // 4. Forged Host or SNI: a connection opened for one tenant's hostname never carries a
    //    request to the other's (421 from the edge), nor does an unknown hostname get through.
    let (name_a, name_b) = (
        format!("whoami.{a}.edge.test"),
        format!("whoami.{b}.edge.test"),
    );
    for (sni, forged) in [
        (&name_a, name_b.as_str()),
        (&name_b, name_a.as_str()),
        (&name_a, "whoami.nobody.edge.test"),
    ] {
        let (code, body) = curl(https, sni, &["-k", "-H", &format!("Host: {forged}")]);
        assert_eq!(code, "421", "SNI {sni}, Host {forged}: {body}");
        assert!(
            !body.contains("tenant="),
            "SNI {sni}, Host {forged}: {body}"
        );
    }
    // And a tenant's own caddy (here through its loopback port) serves only its hostnames.
    let a_caddy_port = host(
        "docker",
        &[
            "ps",
            "--filter",
            &format!("label=com.stackgen.tenant={a}"),
            "--filter",
            "label=com.stackgen.service=caddy",
            "--format",
            "{{.Ports}}",
        ],
    )
    .stdout;
    let port = a_caddy_port
        .split("127.0.0.1:")
        .nth(1)
        .and_then(|p| p.split("->").next())
        .unwrap_or_else(|| panic!("caddy of {a} on loopback: {a_caddy_port}"))
        .to_string();
    let out = host(
        "curl",
        &[
            "-s",
            "-H",
            &format!("Host: {name_b}"),
            &format!("http://127.0.0.1:{port}/"),
        ],
    );
    assert!(
        out.stdout
            .contains(&format!("not a hostname of tenant {a}")),
        "{}",
        out.stdout
    );

    // 5. Isolation on the engine: each front network holds exactly the edge and that tenant's
    //    caddy; no tenant container publishes beyond loopback.
    for t in [&a, &b] {
        let names = inspect(
            &format!("ai-platform-{t}-front"),
            "{{range .Containers}}{{.Name}} {{end}}",
        );
        let mut names: Vec<&str> = names.split_whitespace().collect();
        names.sort();
        assert_eq!(names.len(), 2, "{t}: {names:?}");
        assert!(
            names.contains(&format!("{t}-caddy-1").as_str()),
            "{t}: {names:?}"
        );
        assert!(
            names.iter().any(|n| n.starts_with("edge-")),
            "{t}: {names:?}"
        );
        for own in [
            format!("ai-platform-{t}"),
            format!("ai-platform-{t}-internal"),
        ] {
            let on = inspect(&own, "{{range .Containers}}{{.Name}} {{end}}");
            assert!(!on.contains("edge-"), "the edge is on {own}: {on}");
        }
        let ports = host(
            "docker",
            &[
                "ps",
                "--filter",
                &format!("label=com.stackgen.tenant={t}"),
                "--format",
                "{{.Ports}}",
            ],
        )
        .stdout;
        for p in ports
            .split([',', '\n'])
            .map(str::trim)
            .filter(|p| p.contains("->"))
        {
            assert!(p.starts_with("127.0.0.1:"), "{t} publishes {p}");
        }
    }

    // 6. status shows the front door; `down` of one tenant: its hostname answers 502 from the
    //    edge, the other tenant is still served, and the edge was not restarted.
    let st = s.run(&["status", &a, "--json"]).ok();
    let json: serde_json::Value = serde_json::from_str(&st.stdout).unwrap();
    assert_eq!(json["edge"]["state"], "running", "{}", st.stdout);
    s.run(&["down", &a]).ok();
    let (code, _) = curl(https, &name_a, &["-k"]);
    assert_eq!(code, "502");
    let (code, body) = curl(https, &name_b, &["-k"]);
    assert_eq!(code, "200", "{body}");
    assert!(body.starts_with(&format!("tenant={b} ")), "{body}");
    assert_eq!(inspect(&edge, "{{.State.StartedAt}}"), started);
    // The front door goes down only after the last tenant behind it.
    let run = s.run(&["down", "edge"]).code(1);
    assert!(
        run.stderr.contains(&format!("tenant(s) {b} still run")),
        "{}",
        run.stderr
    );
    assert!(Path::new(&ca).exists());
}
