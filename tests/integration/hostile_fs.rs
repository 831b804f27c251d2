//! Issue 10, "Symlinks are followed out of the tree" and "Updates are lost": real symlinks planted
//! in the stacks directory, the data tree and the manifest's place, and real `stackgen` processes
//! racing each other (not threads: the locks are between processes).

use std::collections::BTreeMap;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::common::{have, Sandbox, BIN};

/// A sandbox whose manifest (`.env`, made by `init`) has tenants `names`, with `BASE_DIR` inside
/// the sandbox.
fn sandbox_with(names: &[&str]) -> Sandbox {
    let s = Sandbox::new();
    let base = s.path("data");
    for n in names {
        s.run(&[
            "init",
            "--non-interactive",
            "--tenant",
            n,
            "--domain",
            "example.com",
            "--base-dir",
            base.to_str().unwrap(),
        ])
        .ok();
    }
    s
}

/// Every value in the manifest long enough to be a secret: none may ever be printed.
fn secrets(manifest: &str) -> Vec<String> {
    manifest
        .lines()
        .filter_map(|l| l.split_once('='))
        .filter(|(k, v)| {
            let k = k.trim();
            (k.ends_with("PASSWORD") || k.ends_with("_KEY")) && v.trim().len() >= 16
        })
        .map(|(_, v)| v.trim().to_string())
        .collect()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn run_in(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args).current_dir(dir).env_remove("RUST_BACKTRACE");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run stackgen")
}

fn spawn_in(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Child {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .current_dir(dir)
        .env_remove("RUST_BACKTRACE")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn().expect("spawn stackgen")
}

/// Every file under `dir` (not following links) with its bytes, mode and owner.
fn tree(dir: &Path) -> BTreeMap<PathBuf, (Vec<u8>, u32, u32)> {
    let mut out = BTreeMap::new();
    fn walk(dir: &Path, out: &mut BTreeMap<PathBuf, (Vec<u8>, u32, u32)>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            let m = std::fs::symlink_metadata(&p).unwrap();
            let bytes = if m.is_file() {
                std::fs::read(&p).unwrap()
            } else {
                Vec::new()
            };
            out.insert(p.clone(), (bytes, m.mode(), m.uid()));
            if m.is_dir() {
                walk(&p, out);
            }
        }
    }
    let m = std::fs::symlink_metadata(dir).unwrap();
    out.insert(dir.to_path_buf(), (Vec::new(), m.mode(), m.uid()));
    walk(dir, &mut out);
    out
}

/// An outside directory holding a file at a path stackgen generates for some tenant (and so
/// would remove as "stale") and one it writes for every tenant.
fn outside_dir(s: &Sandbox) -> PathBuf {
    let outside = s.path("outside");
    std::fs::create_dir_all(outside.join("prometheus")).unwrap();
    std::fs::create_dir_all(outside.join("caddy")).unwrap();
    std::fs::write(outside.join("prometheus/prometheus.yml"), "precious\n").unwrap();
    std::fs::write(outside.join("caddy/Caddyfile"), "precious\n").unwrap();
    outside
}

#[test]
fn a_tenant_folder_that_is_a_link_is_refused_and_its_target_untouched() {
    let s = sandbox_with(&["t1"]);
    let outside = outside_dir(&s);
    std::fs::create_dir_all(s.path("stacks")).unwrap();
    symlink(&outside, s.path("stacks/t1")).unwrap();
    let before = tree(&outside);
    for args in [
        &["render"][..],
        &["render", "t1"],
        &["up", "t1", "--render", "--dry-run"],
    ] {
        let out = s.run(args).code(2);
        let all = format!("{}{}", out.stdout, out.stderr);
        assert!(
            all.contains("stacks/t1 is a symbolic link"),
            "{args:?}: {all}"
        );
        assert!(!all.contains("outside"), "{args:?} named the target: {all}");
        assert_eq!(tree(&outside), before, "{args:?} changed the link's target");
    }
}

#[test]
fn a_linked_file_in_stacks_is_never_diffed_so_no_secret_is_printed() {
    let s = sandbox_with(&["t1"]);
    s.run(&["render"]).ok();
    let manifest = s.read(".env");
    let secrets = secrets(&manifest);
    assert!(secrets.len() >= 4, "{secrets:?}");
    // A committed link to the manifest, where a generated file belongs; and the stack file too.
    for file in ["stacks/t1/caddy/Caddyfile", "stacks/t1-stack.yml"] {
        let saved = s.read(file);
        std::fs::remove_file(s.path(file)).unwrap();
        symlink(s.path(".env"), s.path(file)).unwrap();
        for args in [
            &["render", "--check"][..],
            &["up", "t1", "--dry-run"],
            &["rotate-secrets", "t1", "--dry-run"],
        ] {
            let out = s.run(args).code(2);
            let all = format!("{}{}", out.stdout, out.stderr);
            for secret in &secrets {
                assert!(
                    !all.contains(secret.as_str()),
                    "{args:?} printed a secret: {all}"
                );
            }
            assert!(
                all.contains(&format!("{file} is a symbolic link")),
                "{args:?}: {all}"
            );
        }
        assert_eq!(s.read(".env"), manifest);
        assert!(std::fs::symlink_metadata(s.path(file))
            .unwrap()
            .file_type()
            .is_symlink());
        std::fs::remove_file(s.path(file)).unwrap();
        s.write(file, &saved);
    }
}

#[test]
fn render_never_changes_the_mode_of_a_link_target() {
    let s = sandbox_with(&["t1"]);
    s.run(&["render"]).ok();
    // The target has exactly the rendered content, so only the mode would differ (the case
    // where old code "made it readable" through the link).
    let file = "stacks/t1/caddy/Caddyfile";
    let target = s.path("elsewhere");
    std::fs::write(&target, s.read(file)).unwrap();
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::remove_file(s.path(file)).unwrap();
    symlink(&target, s.path(file)).unwrap();
    let out = s.run(&["render"]).code(2);
    assert!(
        out.stderr.contains(&format!("{file} is a symbolic link")),
        "{}",
        out.stderr
    );
    let mode = std::fs::metadata(&target).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "render changed the mode of the link's target");
    assert!(std::fs::symlink_metadata(s.path(file))
        .unwrap()
        .file_type()
        .is_symlink());
}

#[test]
fn prepare_refuses_links_in_the_data_tree_and_touches_nothing_outside() {
    let s = sandbox_with(&["t1"]);
    let outside = s.path("outside");
    let data = s.path("data/tenants/t1/data");
    // The first path prepare handles is postgres's data directory (its plan is in service
    // order); every level is tried: the tenant folder, `data`, a service's directory.
    let first = {
        let out = s.run(&["prepare", "t1", "--dry-run"]).ok();
        let line = out.stdout.lines().next().unwrap().to_string();
        PathBuf::from(line.split_whitespace().nth(1).unwrap())
    };
    assert!(first.starts_with(&data), "{first:?}");
    for link in [s.path("data/tenants/t1"), data.clone(), first.clone()] {
        let _ = std::fs::remove_dir_all(s.path("data"));
        let _ = std::fs::remove_dir_all(&outside);
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(outside.join("keep"), "x").unwrap();
        std::fs::set_permissions(&outside, std::fs::Permissions::from_mode(0o700)).unwrap();
        std::fs::create_dir_all(link.parent().unwrap()).unwrap();
        symlink(&outside, &link).unwrap();
        let before = tree(&outside);
        let out = s.run(&["prepare", "t1"]).code(2);
        let shown = link.display().to_string();
        assert!(
            out.stderr.contains(&format!("{shown} is a symbolic link")),
            "{shown}: {}",
            out.stderr
        );
        assert!(!out.stderr.contains("outside"), "{}", out.stderr);
        assert_eq!(tree(&outside), before, "prepare changed {shown}'s target");
    }
    // Without links it works (as root it also gives the directories to the tenant's UID).
    let _ = std::fs::remove_dir_all(s.path("data"));
    let out = s.run(&["prepare", "t1"]);
    if out.code == 0 {
        let m = std::fs::symlink_metadata(&first).unwrap();
        assert!(m.is_dir() && m.mode() & 0o777 == 0o750);
    } else {
        assert!(out.stderr.contains("only root can"), "{}", out.stderr);
    }
}

#[test]
fn a_manifest_that_is_a_link_stays_a_link_and_its_target_gets_the_change() {
    let s = sandbox_with(&["t1"]);
    std::fs::create_dir_all(s.path("conf")).unwrap();
    std::fs::rename(s.path(".env"), s.path("conf/real.env")).unwrap();
    symlink("conf/real.env", s.path(".env")).unwrap();
    let is_link = || {
        std::fs::symlink_metadata(s.path(".env"))
            .unwrap()
            .file_type()
            .is_symlink()
    };
    s.run(&["init", "--non-interactive", "--tenant", "t2"]).ok();
    assert!(is_link(), "init replaced the link with a file");
    let real = s.read("conf/real.env");
    assert!(real.contains("T2__UID="), "{real}");
    let mode = std::fs::metadata(s.path("conf/real.env")).unwrap().mode() & 0o777;
    assert_eq!(mode, 0o600);
    // No temporary or lock file is left beside the link or the target.
    for dir in [s.path(""), s.path("conf")] {
        let extra: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".stackgen-") || n.ends_with(".lock"))
            .collect();
        assert!(extra.is_empty(), "{extra:?}");
    }
    if !have("docker", &["--version"], "manifest_link_rotate") {
        return;
    }
    s.run(&["render"]).ok();
    let old = value(&real, "T1__REDIS_PASSWORD");
    s.run(&["rotate-secrets", "t1", "REDIS_PASSWORD"]).ok();
    assert!(is_link(), "rotate-secrets replaced the link with a file");
    let new = value(&s.read("conf/real.env"), "T1__REDIS_PASSWORD");
    assert_ne!(old, new, "the target did not get the rotated value");
}

fn value(manifest: &str, key: &str) -> String {
    manifest
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key} in the manifest"))
        .to_string()
}

/// The lock message a loser prints (exit 1); anything else is a failure of the test.
fn lost_the_lock(out: &Output) -> bool {
    out.status.code() == Some(1) && text(out).contains("is still held after")
}

#[test]
fn concurrent_inits_lose_no_tenant() {
    let s = Sandbox::new();
    let base = s.path("data");
    // 8 tenants, each added by two processes at once, starting with no manifest at all.
    let mut children = Vec::new();
    for round in 0..2 {
        for i in 1..=8 {
            let t = format!("t{i}");
            children.push((
                t.clone(),
                round,
                spawn_in(
                    s.dir.path(),
                    &[
                        "init",
                        "--non-interactive",
                        "--tenant",
                        &t,
                        "--domain",
                        "example.com",
                        "--base-dir",
                        base.to_str().unwrap(),
                    ],
                    &[],
                ),
            ));
        }
    }
    let mut winners = std::collections::BTreeSet::new();
    for (t, _, child) in children {
        let out = child.wait_with_output().unwrap();
        if out.status.success() {
            winners.insert(t);
        } else {
            assert!(lost_the_lock(&out), "{t}: {}", text(&out));
        }
    }
    let manifest = s.read(".env");
    for t in &winners {
        assert!(
            manifest.contains(&format!("\nTENANT={t}\n")),
            "{t}'s init exited 0 but {t} is not in the manifest:\n{manifest}"
        );
    }
    assert_eq!(winners.len(), 8, "some tenant was never added");
    // And the result is one valid manifest.
    s.run(&["render", "--check"]).code(1);
}

#[test]
fn concurrent_rotations_lose_no_value() {
    if !have(
        "docker",
        &["--version"],
        "concurrent_rotations_lose_no_value",
    ) {
        return;
    }
    let s = sandbox_with(&["t1", "t2"]);
    s.run(&["render"]).ok();
    for round in 0..3 {
        let before = s.read(".env");
        let jobs = [
            ("t1", "REDIS_PASSWORD", "T1__REDIS_PASSWORD"),
            ("t1", "QDRANT_API_KEY", "T1__QDRANT_API_KEY"),
            ("t2", "REDIS_PASSWORD", "T2__REDIS_PASSWORD"),
        ];
        let children: Vec<_> = jobs
            .iter()
            .map(|(t, name, _)| spawn_in(s.dir.path(), &["rotate-secrets", t, name], &[]))
            .collect();
        let outs: Vec<Output> = children
            .into_iter()
            .map(|c| c.wait_with_output().unwrap())
            .collect();
        let after = s.read(".env");
        for ((_, _, key), out) in jobs.iter().zip(&outs) {
            let changed = value(&before, key) != value(&after, key);
            if out.status.success() {
                assert!(
                    changed,
                    "round {round}: rotating {key} exited 0 but the manifest lost it: {}",
                    text(out)
                );
            } else {
                assert!(lost_the_lock(out), "round {round}, {key}: {}", text(out));
                assert!(!changed, "round {round}: {key} failed but changed");
            }
        }
    }
}

#[test]
fn concurrent_renders_both_succeed() {
    let s = Sandbox::new();
    let names: Vec<String> = (1..=12).map(|i| format!("t{i}")).collect();
    // Few services, so that many generated paths are stale when planted.
    let mut args = vec![
        "init",
        "--non-interactive",
        "--domain",
        "example.com",
        "--services",
        "postgres,redis,openwebui",
    ];
    for n in &names {
        args.extend(["--tenant", n.as_str()]);
    }
    s.run(&args).ok();
    for round in 0..8 {
        // Stale files for every render to remove: the ones that lose the race used to fail on
        // a file another had removed.
        for t in &names {
            for f in [
                "prometheus/prometheus.yml",
                "grafana/datasources/prometheus.yml",
                "tailscale/serve.json",
                "caddy/Caddyfile",
            ] {
                s.write(&format!("stacks/{t}/{f}"), "stale\n");
            }
        }
        let children: Vec<_> = (0..4)
            .map(|_| spawn_in(s.dir.path(), &["render"], &[]))
            .collect();
        for child in children {
            let out = child.wait_with_output().unwrap();
            assert!(out.status.success(), "round {round}: {}", text(&out));
        }
        s.run(&["render", "--check"]).ok();
    }
}

#[test]
fn a_second_writer_waits_then_fails_naming_the_lock_and_changes_nothing() {
    let s = sandbox_with(&["t1"]);
    let before = s.read(".env");
    let lock_path = stackgen::output::lock::manifest_lock_path(&s.path(".env"));
    let held = stackgen::output::lock::acquire(&lock_path, Duration::ZERO, "test").unwrap();
    let start = Instant::now();
    let out = run_in(
        s.dir.path(),
        &["init", "--non-interactive", "--tenant", "t9"],
        &[("STACKGEN_LOCK_WAIT", "1")],
    );
    assert!(start.elapsed() >= Duration::from_secs(1), "it did not wait");
    assert!(lost_the_lock(&out), "{}", text(&out));
    let msg = text(&out);
    assert!(msg.contains(&lock_path.display().to_string()), "{msg}");
    assert!(
        msg.contains(&format!("process {}", std::process::id())),
        "{msg}"
    );
    assert_eq!(s.read(".env"), before);
    // A render --check only reads: it does not wait for the lock.
    s.run(&["render", "--check"]).code(1);
    drop(held);
    s.run(&["init", "--non-interactive", "--tenant", "t9"]).ok();
}

#[test]
fn operations_on_one_tenant_wait_for_each_other() {
    let s = sandbox_with(&["t1", "t2"]);
    let lock_path = stackgen::output::lock::tenant_lock_path(&s.path(".env"), "t1");
    let held = stackgen::output::lock::acquire(&lock_path, Duration::ZERO, "test").unwrap();
    // Refused after the wait, naming the lock, for every command that changes the tenant.
    for args in [
        &["up", "t1"][..],
        &["down", "t1"],
        &["restart", "t1"],
        &["teardown", "t1", "--yes"],
        &["prepare", "t1"],
    ] {
        let out = run_in(s.dir.path(), args, &[("STACKGEN_LOCK_WAIT", "0.3")]);
        assert!(lost_the_lock(&out), "{args:?}: {}", text(&out));
        assert!(
            text(&out).contains("operating on tenant `t1`"),
            "{args:?}: {}",
            text(&out)
        );
    }
    // Another tenant is not held up.
    run_in(s.dir.path(), &["prepare", "t2", "--dry-run"], &[]);
    let out = run_in(
        s.dir.path(),
        &["prepare", "t2"],
        &[("STACKGEN_LOCK_WAIT", "0.3")],
    );
    assert!(!lost_the_lock(&out), "{}", text(&out));
    // A waiter proceeds once the holder is done.
    let child = spawn_in(
        s.dir.path(),
        &["prepare", "t1"],
        &[("STACKGEN_LOCK_WAIT", "30")],
    );
    std::thread::sleep(Duration::from_millis(1500));
    drop(held);
    let out = child.wait_with_output().unwrap();
    let msg = text(&out);
    assert!(msg.contains("waiting for"), "{msg}");
    assert!(!lost_the_lock(&out), "{msg}");
    assert!(
        out.status.success() || msg.contains("only root can"),
        "{msg}"
    );
}
