//! The Kubernetes target (issue 14): snapshots of the example, the committed manifests, `--check`,
//! strict schema validation with `kubernetes-validate`, the policy on the parsed output of every
//! tenant × vector DB, and secrets that stay out of every file.

use std::path::{Path, PathBuf};
use std::process::Command;

use stackgen::platform::catalog::Catalog;

use crate::common::*;

const TENANTS: [&str; 4] = ["team-a", "team-b", "team-c", "team-d"];

/// The Kubernetes version the manifests are validated against (one `kubernetes-validate` 1.37
/// carries; keep it in step with docs/kubernetes.md).
const KUBE_VERSION: &str = "1.37.0";

fn rendered(s: Sandbox) -> Sandbox {
    s.run(&["render", "--target", "kubernetes"]).ok();
    s
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    collect(dir, &mut files);
    files.retain(|p| p.extension().is_some_and(|e| e == "yaml"));
    files.sort();
    files
}

/// Every object under the sandbox's kubernetes/ folder, with the file it came from.
fn objects(s: &Sandbox) -> Vec<(PathBuf, serde_yaml::Value)> {
    yaml_files(&s.path("stacks/kubernetes"))
        .into_iter()
        .filter(|p| !p.ends_with("kustomization.yaml"))
        .map(|p| {
            let v = serde_yaml::from_str(&std::fs::read_to_string(&p).unwrap())
                .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (p, v)
        })
        .collect()
}

#[test]
fn kubernetes_example_matches_reviewed_snapshots() {
    let s = rendered(Sandbox::with_example());
    let settings = insta_settings();
    settings.bind(|| {
        for t in TENANTS {
            let dir = s.path("stacks/kubernetes").join(t);
            let mut out = String::new();
            for f in yaml_files(&dir) {
                let rel = f
                    .strip_prefix(s.path("stacks"))
                    .unwrap()
                    .display()
                    .to_string();
                out.push_str(&format!("==== {rel} ====\n"));
                out.push_str(&std::fs::read_to_string(&f).unwrap());
            }
            insta::assert_snapshot!(format!("kubernetes_{t}"), out);
        }
    });
}

#[test]
fn committed_kubernetes_manifests_are_rendered_from_the_example_manifest() {
    assert_committed_render_is_current(
        &["--target", "kubernetes"],
        "stackgen --env-file .env.example render --target kubernetes",
    );
}

#[test]
fn kubernetes_check_diffs_drift_and_render_removes_only_stale_manifests() {
    let s = rendered(Sandbox::with_example());
    let first = s.snapshot_tree();
    let again = s.run(&["render", "--target", "kubernetes"]).ok();
    assert!(
        again.stdout.contains("team-a: 0 file(s) written"),
        "{}",
        again.stdout
    );
    assert_eq!(first, s.snapshot_tree(), "a second render changed bytes");
    s.run(&["render", "--target", "kubernetes", "--check"]).ok();

    let svc = "stacks/kubernetes/team-a/service-postgres.yaml";
    s.write(svc, &s.read(svc).replace("port: 5432", "port: 5433"));
    s.write(
        "stacks/kubernetes/team-a/deployment-gone.yaml",
        "kind: Deployment\n",
    );
    s.write(
        "stacks/kubernetes/team-a/NOTES.txt",
        "the operator's own file\n",
    );
    let check = s
        .run(&["render", "--target", "kubernetes", "--check"])
        .code(1);
    assert!(
        check
            .stdout
            .contains("-      port: 5433\n+      port: 5432\n"),
        "{}",
        check.stdout
    );
    assert!(
        check.stdout.contains("stale: ") && check.stdout.contains("deployment-gone.yaml"),
        "{}",
        check.stdout
    );
    // The compose target does not see the Kubernetes folder, and the other way round.
    s.run(&["render", "--check"]).code(1); // compose was never rendered here
    s.run(&["render", "--target", "kubernetes"]).ok();
    assert!(!s
        .path("stacks/kubernetes/team-a/deployment-gone.yaml")
        .exists());
    assert!(s.path("stacks/kubernetes/team-a/NOTES.txt").exists());
    assert!(s.read(svc).contains("port: 5432"));
    s.run(&["render", "--target", "kubernetes", "--check"]).ok();
}

#[test]
fn kustomization_lists_exactly_the_rendered_files() {
    let s = rendered(Sandbox::with_example());
    for t in TENANTS {
        let dir = s.path("stacks/kubernetes").join(t);
        let k: serde_yaml::Value =
            serde_yaml::from_str(&s.read(&format!("stacks/kubernetes/{t}/kustomization.yaml")))
                .unwrap();
        let mut listed: Vec<String> = k["resources"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect();
        assert_eq!(listed[0], "namespace.yaml", "the namespace must come first");
        listed.sort();
        let mut present: Vec<String> = yaml_files(&dir)
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .filter(|n| n != "kustomization.yaml")
            .collect();
        present.sort();
        assert_eq!(listed, present, "{t}");
    }
}

/// The `kubernetes-validate` program: $KUBERNETES_VALIDATE, the venv `scripts/test.sh` makes,
/// or PATH. `None` (skipped, or a failure in CI) when there is none.
fn kubernetes_validate(test: &str) -> Option<PathBuf> {
    let candidates = [
        std::env::var_os("KUBERNETES_VALIDATE").map(PathBuf::from),
        Some(Path::new(ROOT).join("target/kube-venv/bin/kubernetes-validate")),
        Some(PathBuf::from("kubernetes-validate")),
    ];
    for c in candidates.into_iter().flatten() {
        if Command::new(&c)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
        {
            return Some(c);
        }
    }
    assert!(
        !tools_required(),
        "{test}: kubernetes-validate is missing (scripts/test.sh installs it into target/kube-venv)"
    );
    eprintln!("SKIPPED {test}: kubernetes-validate is not installed (scripts/test.sh installs it)");
    None
}

#[test]
fn every_kubernetes_manifest_passes_strict_schema_validation() {
    let test = "kubernetes strict validation";
    let Some(validator) = kubernetes_validate(test) else {
        return;
    };
    for s in [
        rendered(Sandbox::with_example()),
        rendered(Sandbox::with_every_service(
            "DELTA__TAILSCALE_MODE=kernel\n",
        )),
    ] {
        let files: Vec<PathBuf> = objects(&s).into_iter().map(|(p, _)| p).collect();
        assert!(files.len() > 100, "only {} manifests", files.len());
        let out = Command::new(&validator)
            .args(["--strict", "--quiet", "-k", KUBE_VERSION])
            .args(&files)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "kubernetes-validate --strict failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // The check is real: a manifest with an unknown field fails it.
    let s = Sandbox::new();
    s.write(
        "bad.yaml",
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: x\nspec:\n  bogus: 1\n",
    );
    let out = Command::new(&validator)
        .args(["--strict", "--quiet", "-k", KUBE_VERSION])
        .arg(s.path("bad.yaml"))
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "kubernetes-validate accepted an unknown field"
    );
}

/// Every container of a pod spec, init containers included.
fn containers(pod: &serde_yaml::Value) -> Vec<&serde_yaml::Value> {
    ["initContainers", "containers"]
        .iter()
        .flat_map(|k| pod[*k].as_sequence().into_iter().flatten())
        .collect()
}

fn strs(v: &serde_yaml::Value) -> Vec<String> {
    v.as_sequence()
        .into_iter()
        .flatten()
        .filter_map(|x| x.as_str().map(str::to_string))
        .collect()
}

/// The policy on the parsed output of four tenants, one per vector DB, with every service and
/// generated secrets, one of them with kernel-mode tailscale.
#[test]
fn kubernetes_policy_holds_for_every_tenant_and_vector_db() {
    let s = Sandbox::with_every_service("DELTA__TAILSCALE_MODE=kernel\n");
    let s = rendered(s);
    let catalog = Catalog::get();
    let objs = objects(&s);
    // The services that may run as root, from the catalog itself (and kernel-mode tailscale).
    let may_be_root = |tenant: &str, svc: &str| -> bool {
        if tenant == "delta" && svc == "tailscale" {
            return true;
        }
        let def = &catalog.services[svc];
        matches!(
            def.user,
            stackgen::platform::catalog::UserPolicy::Root
                | stackgen::platform::catalog::UserPolicy::SelfDrop
        ) || def
            .contract
            .as_ref()
            .is_some_and(|c| !c.arbitrary_uid && c.image_user.starts_with("0:"))
    };
    let mut namespaces = Vec::new();
    let mut containers_seen = 0;
    let mut needed_levels = Vec::new();
    for tenant in ["alpha", "beta", "gamma", "delta"] {
        let ns = format!("ai-platform-{tenant}");
        let mine: Vec<&serde_yaml::Value> = objs
            .iter()
            .filter(|(_, o)| {
                o["metadata"]["namespace"] == ns.as_str() || o["metadata"]["name"] == ns.as_str()
            })
            .map(|(_, o)| o)
            .collect();
        assert!(mine.len() > 50, "{tenant}: only {} objects", mine.len());
        let namespace = mine
            .iter()
            .find(|o| o["kind"] == "Namespace")
            .expect("a namespace");
        let level = namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"]
            .as_str()
            .unwrap();
        namespaces.push((tenant, level.to_string()));
        let mut needed = 0;
        let deny = mine
            .iter()
            .find(|o| o["kind"] == "NetworkPolicy" && o["metadata"]["name"] == "default-deny")
            .unwrap_or_else(|| panic!("{tenant}: no default-deny NetworkPolicy"));
        assert_eq!(
            deny["spec"]["podSelector"],
            serde_yaml::Value::Mapping(Default::default())
        );
        assert_eq!(strs(&deny["spec"]["policyTypes"]), ["Ingress", "Egress"]);
        assert!(deny["spec"].get("ingress").is_none() && deny["spec"].get("egress").is_none());

        for w in mine
            .iter()
            .filter(|o| o["kind"] == "Deployment" || o["kind"] == "StatefulSet")
        {
            let pod = &w["spec"]["template"]["spec"];
            assert_eq!(
                pod["securityContext"]["seccompProfile"]["type"],
                "RuntimeDefault"
            );
            assert_eq!(pod["automountServiceAccountToken"], false);
            assert!(
                pod["volumes"]
                    .as_sequence()
                    .into_iter()
                    .flatten()
                    .all(|v| v.get("hostPath").is_none())
                    || (tenant == "delta" && w["metadata"]["name"] == "openclaw"),
                "only kernel-mode tailscale mounts a host path"
            );
            // The level this pod needs by the Pod Security Standards' own rules, so the
            // namespace never rejects its own pods and never enforces less than they need.
            let host_path = pod["volumes"]
                .as_sequence()
                .into_iter()
                .flatten()
                .any(|v| v.get("hostPath").is_some());
            let mut pod_level = if host_path { 2 } else { 0 };
            for c in containers(pod) {
                let sc = &c["securityContext"];
                for cap in strs(&sc["capabilities"]["add"]) {
                    let level = match cap.as_str() {
                        "NET_BIND_SERVICE" => 0,
                        "AUDIT_WRITE" | "CHOWN" | "DAC_OVERRIDE" | "FOWNER" | "FSETID" | "KILL"
                        | "MKNOD" | "SETFCAP" | "SETGID" | "SETPCAP" | "SETUID" | "SYS_CHROOT" => 1,
                        _ => 2,
                    };
                    pod_level = pod_level.max(level);
                }
                if sc["runAsNonRoot"] != true {
                    pod_level = pod_level.max(1);
                }
            }
            needed = needed.max(pod_level);
            for c in containers(pod) {
                containers_seen += 1;
                let name = c["name"].as_str().unwrap();
                let sc = &c["securityContext"];
                assert_eq!(sc["allowPrivilegeEscalation"], false, "{tenant}/{name}");
                assert_eq!(
                    strs(&sc["capabilities"]["drop"]),
                    ["ALL"],
                    "{tenant}/{name}"
                );
                assert_eq!(
                    sc["appArmorProfile"]["type"], "Localhost",
                    "{tenant}/{name}"
                );
                assert!(
                    sc["appArmorProfile"]["localhostProfile"]
                        .as_str()
                        .unwrap()
                        .starts_with(&format!("ai-platform-{tenant}")),
                    "{tenant}/{name}"
                );
                let Some(def) = catalog.services.get(name) else {
                    // Init containers: never root, never a capability.
                    assert_eq!(sc["runAsNonRoot"], true, "{tenant}/{name}");
                    assert!(sc["capabilities"].get("add").is_none(), "{tenant}/{name}");
                    continue;
                };
                let mut named: Vec<String> = def.cap_add.iter().map(|c| c.cap.clone()).collect();
                if tenant == "delta" && name == "tailscale" {
                    named.push("NET_ADMIN".into());
                }
                assert_eq!(
                    strs(&sc["capabilities"]["add"]),
                    named,
                    "{tenant}/{name}: capabilities"
                );
                assert_eq!(
                    sc["readOnlyRootFilesystem"], def.read_only,
                    "{tenant}/{name}"
                );
                if sc["runAsNonRoot"] != true {
                    assert!(
                        may_be_root(tenant, name),
                        "{tenant}/{name} runs as root without an exception"
                    );
                    assert!(sc.get("runAsUser").is_none());
                } else {
                    assert!(sc["runAsUser"].as_u64().unwrap() > 0, "{tenant}/{name}");
                    assert!(
                        !may_be_root(tenant, name)
                            || def.user == stackgen::platform::catalog::UserPolicy::Tenant,
                        "{tenant}/{name}"
                    );
                }
            }
        }
        needed_levels.push(needed);
    }
    assert!(containers_seen > 100, "{containers_seen}");
    assert!(needed_levels.len() == 4);
    for ((tenant, enforced), needed) in namespaces.iter().zip(&needed_levels) {
        let needed = ["restricted", "baseline", "privileged"][*needed];
        assert_eq!(
            enforced, needed,
            "{tenant}: enforces {enforced}, its pods need {needed}"
        );
    }
    // Root services force baseline everywhere; kernel-mode tailscale's NET_ADMIN and device,
    // privileged. A namespace never claims more than its pods can meet.
    assert_eq!(
        namespaces,
        [
            ("alpha", "baseline".to_string()),
            ("beta", "baseline".to_string()),
            ("gamma", "baseline".to_string()),
            ("delta", "privileged".to_string())
        ]
    );

    // No secret value in any file.
    let env = s.read(".env");
    let secrets: Vec<&str> = env
        .lines()
        .filter_map(|l| l.split_once('='))
        .filter(|(k, v)| k.contains("__") && v.len() >= 32)
        .map(|(_, v)| v)
        .collect();
    assert!(secrets.len() > 40, "{}", secrets.len());
    let mut files = Vec::new();
    collect(&s.path("stacks/kubernetes"), &mut files);
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        for secret in &secrets {
            assert!(
                !text.contains(secret),
                "{} contains a secret value",
                f.display()
            );
        }
    }
}

#[test]
fn a_restricted_tenant_enforces_restricted() {
    // Without the root services, nothing needs more than the restricted standard.
    let s = Sandbox::new();
    let env = minimal_manifest!()
        .replace(
            "ACME__SERVICES=postgres,redis,openwebui,caddy",
            "ACME__SERVICES=postgres,redis,ollama,n8n,grafana,prometheus,caddy",
        )
        .replace("ACME__OPENWEBUI_SECRET_KEY", "ACME__N8N_ENCRYPTION_KEY")
        + "ACME__GRAFANA_ADMIN_PASSWORD=eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee\nACME__GRAFANA_SECRET_KEY=ffffffffffffffffffffffffffffffff\n";
    s.write(".env", &env);
    s.run(&["render", "--target", "kubernetes"]).ok();
    let ns = s.read("stacks/kubernetes/acme/namespace.yaml");
    assert!(
        ns.contains("pod-security.kubernetes.io/enforce: restricted\n"),
        "{ns}"
    );
    assert!(!ns.contains("pod-security-exceptions"), "{ns}");
}

#[test]
fn service_hosts_in_the_generated_files_are_ports_of_kubernetes_services() {
    // Every `service:port` the environment and config files name is a port of that Service:
    // the ports table (src/render/kubernetes/ports.rs) is what the apps are configured to reach.
    let s = Sandbox::with_every_service("");
    s.run(&["render"]).ok();
    let s = rendered(s);
    let objs = objects(&s);
    let mut checked = 0;
    for tenant in ["alpha", "beta", "gamma", "delta"] {
        let ns = format!("ai-platform-{tenant}");
        let services: Vec<(&str, Vec<u64>)> = objs
            .iter()
            .filter(|(_, o)| o["kind"] == "Service" && o["metadata"]["namespace"] == ns.as_str())
            .map(|(_, o)| {
                (
                    o["metadata"]["name"].as_str().unwrap(),
                    o["spec"]["ports"]
                        .as_sequence()
                        .unwrap()
                        .iter()
                        .map(|p| p["port"].as_u64().unwrap())
                        .collect(),
                )
            })
            .collect();
        let mut texts = vec![s.read(&format!("stacks/{tenant}-stack.yml"))];
        let mut files = Vec::new();
        collect(&s.path(&format!("stacks/{tenant}")), &mut files);
        texts.extend(files.iter().map(|f| std::fs::read_to_string(f).unwrap()));
        for text in texts {
            for (name, ports) in &services {
                let mut rest = text.as_str();
                while let Some(i) = rest.find(&format!("{name}:")) {
                    let before = rest[..i].chars().next_back();
                    let digits: String = rest[i + name.len() + 1..]
                        .chars()
                        .take_while(char::is_ascii_digit)
                        .collect();
                    rest = &rest[i + name.len() + 1..];
                    if before.is_some_and(|c| {
                        c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.'
                    }) || digits.is_empty()
                    {
                        continue;
                    }
                    // Image tags (`postgres:18.6`) are versions, not ports.
                    if rest[digits.len()..].starts_with('.') {
                        continue;
                    }
                    let port: u64 = digits.parse().unwrap();
                    assert!(
                        ports.contains(&port),
                        "{tenant}: {name}:{port} is named, but the Service has {ports:?}"
                    );
                    checked += 1;
                }
            }
        }
    }
    assert!(checked > 50, "{checked}");
}

#[test]
fn kube_secrets_prints_the_namespace_and_the_secret_and_writes_nothing() {
    let s = Sandbox::with_example();
    let before = s.snapshot_tree();
    let run = s.run(&["kube-secrets", "team-b"]).ok();
    assert_eq!(before, s.snapshot_tree(), "kube-secrets wrote a file");
    let docs: Vec<serde_yaml::Value> = run
        .stdout
        .split("---\n")
        .map(|d| serde_yaml::from_str(d).unwrap())
        .collect();
    assert_eq!(docs[0]["kind"], "Namespace");
    assert_eq!(docs[1]["kind"], "Secret");
    assert_eq!(docs[1]["metadata"]["name"], "stackgen-secrets");
    assert_eq!(docs[1]["metadata"]["namespace"], "ai-platform-team-b");
    assert_eq!(
        docs[1]["stringData"]["POSTGRES_PASSWORD"],
        "example-postgres-password-not-a-secret"
    );
    // The namespace is byte for byte the rendered one, so either apply order agrees.
    let r = rendered(Sandbox::with_example());
    let ns = r.read("stacks/kubernetes/team-b/namespace.yaml");
    assert!(ns.ends_with(run.stdout.split("---\n").next().unwrap()));
    // Every key a workload refers to is in the Secret.
    for (_, o) in objects(&r)
        .iter()
        .filter(|(p, _)| p.to_string_lossy().contains("/team-b/"))
    {
        let text = serde_yaml::to_string(o).unwrap();
        for line in text.lines().filter(|l| l.trim_start().starts_with("key: ")) {
            let key = line.trim_start().trim_start_matches("key: ");
            assert!(
                docs[1]["stringData"].get(key).is_some(),
                "{key} is not in the Secret"
            );
        }
    }
    s.run(&["kube-secrets", "nobody"]).code(2);
}

#[test]
fn storage_class_comes_from_the_manifest_and_a_bad_one_is_refused() {
    let s = Sandbox::with_example();
    let env = s.read(".env");
    s.write(".env", &format!("{env}KUBE_STORAGE_CLASS=Fast_SSD\n"));
    let before = s.snapshot_tree();
    let run = s.run(&["render", "--target", "kubernetes"]).code(2);
    assert!(
        run.stderr.contains("KUBE_STORAGE_CLASS") && run.stderr.contains("storage class"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(&format!(
            ".env:{}: KUBE_STORAGE_CLASS",
            env.lines().count() + 1
        )),
        "{}",
        run.stderr
    );
    assert_eq!(before, s.snapshot_tree(), "a refused render wrote files");

    s.write(".env", &format!("{env}KUBE_STORAGE_CLASS=fast-ssd\n"));
    s.run(&["render", "--target", "kubernetes"]).ok();
    let claim = s.read("stacks/kubernetes/team-a/persistentvolumeclaim-data-postgres.yaml");
    assert!(claim.contains("  storageClassName: fast-ssd\n"), "{claim}");
    // Without the key, the cluster's default class: no storageClassName at all.
    let r = rendered(Sandbox::with_example());
    assert!(!r
        .read("stacks/kubernetes/team-a/persistentvolumeclaim-data-postgres.yaml")
        .contains("storageClassName"));
}

#[test]
fn a_custom_service_keeps_its_literal_values_and_reaches_what_it_names() {
    let s = Sandbox::with_example();
    s.run(&[
        "add-service",
        "team-b",
        "my-app",
        "--image",
        "ghcr.io/me/app:1.2",
        "--port",
        "8080",
        "--env",
        "GREETING=cost $5 $(x)",
        "--env",
        "DB=postgres:5432",
        "--volume",
        "data:/var/lib/app",
        "--route",
        "app",
    ])
    .ok();
    s.run(&["render", "--target", "kubernetes"]).ok();
    let dir = "stacks/kubernetes/team-b";
    let w: serde_yaml::Value =
        serde_yaml::from_str(&s.read(&format!("{dir}/statefulset-my-app.yaml"))).unwrap();
    let c = &w["spec"]["template"]["spec"]["containers"][0];
    // `$$` is Kubernetes' escape: the container sees `cost $5 $(x)`, as compose gives it.
    assert_eq!(c["env"][0]["value"], "cost $$5 $$(x)");
    assert_eq!(c["volumeMounts"][1]["subPath"], "data");
    let egress = s.read(&format!("{dir}/networkpolicy-egress-my-app.yaml"));
    assert!(
        egress.contains("app.kubernetes.io/name: postgres"),
        "{egress}"
    );
    let ingress = s.read(&format!("{dir}/ingress-web.yaml"));
    assert!(
        ingress.contains("host: app.team-b.example.com"),
        "{ingress}"
    );
    let to_app = s.read(&format!("{dir}/networkpolicy-ingress-my-app.yaml"));
    assert!(
        to_app.contains("kubernetes.io/metadata.name: ingress-nginx"),
        "{to_app}"
    );
}

#[test]
fn kube_secrets_refuses_a_terminal() {
    // `script` runs the command on a pseudo-terminal (util-linux, in every Debian).
    if !have("script", &["--version"], "kube-secrets on a terminal") {
        return;
    }
    let s = Sandbox::with_example();
    let out = Command::new("script")
        .args(["-qec", &format!("{BIN} kube-secrets team-a"), "/dev/null"])
        .current_dir(s.dir.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.contains("refusing to print team-a's secrets on a terminal"),
        "{text}"
    );
    assert!(!text.contains("example-postgres-password"), "{text}");
}
