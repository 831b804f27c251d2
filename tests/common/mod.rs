//! Test harness: run the real binary in a temporary directory, and find the external validators.
//!
//! Validators (docker compose v2, caddy, apparmor_parser) are required in CI: when
//! `STACKGEN_REQUIRE_TOOLS=1` or `CI` is set, a missing tool fails the test. On a developer
//! machine the test prints that it skipped and returns.

#![allow(dead_code)]

pub mod tty;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const BIN: &str = env!("CARGO_BIN_EXE_stackgen");
pub const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// A scratch directory with the binary's usual layout (`.env`, `stacks/`).
pub struct Sandbox {
    pub dir: tempfile::TempDir,
}

impl Sandbox {
    pub fn new() -> Self {
        Sandbox {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    /// A sandbox whose `.env` is the repository's example manifest.
    pub fn with_example() -> Self {
        let s = Self::new();
        s.write(
            ".env",
            &std::fs::read_to_string(Path::new(ROOT).join(".env.example")).unwrap(),
        );
        s
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn write(&self, rel: &str, content: &str) {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path(rel)).unwrap_or_else(|e| panic!("reading {rel}: {e}"))
    }

    /// Runs `stackgen ARGS` in the sandbox.
    pub fn run(&self, args: &[&str]) -> Run {
        let out = Command::new(BIN)
            .args(args)
            .current_dir(self.dir.path())
            .env_remove("RUST_BACKTRACE")
            .output()
            .expect("run stackgen");
        Run::from(out)
    }

    /// Every file under the sandbox (relative path → bytes), to prove a command wrote nothing.
    pub fn snapshot_tree(&self) -> Vec<(PathBuf, Vec<u8>)> {
        fn walk(base: &Path, dir: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
            let Ok(entries) = std::fs::read_dir(dir) else {
                return;
            };
            for e in entries.flatten() {
                let p = e.path();
                if p.is_dir() {
                    walk(base, &p, out);
                } else {
                    out.push((
                        p.strip_prefix(base).unwrap().to_path_buf(),
                        std::fs::read(&p).unwrap_or_default(),
                    ));
                }
            }
        }
        let mut out = Vec::new();
        walk(self.dir.path(), self.dir.path(), &mut out);
        out.sort();
        out
    }
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Self {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl Run {
    pub fn ok(self) -> Self {
        assert_eq!(
            self.code, 0,
            "expected success\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }

    pub fn code(self, code: i32) -> Self {
        assert_eq!(
            self.code, code,
            "expected exit {code}\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

/// Whether a missing tool must fail the test rather than skip it.
pub fn tools_required() -> bool {
    std::env::var_os("STACKGEN_REQUIRE_TOOLS").is_some_and(|v| v == "1")
        || std::env::var_os("CI").is_some()
}

/// Returns true when the tool works; otherwise fails (CI) or prints a skip notice (developer).
pub fn have(tool: &str, probe: &[&str], test: &str) -> bool {
    let ok = Command::new(tool)
        .args(probe)
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            !tools_required(),
            "{test}: required tool `{tool}` is missing (install it: see .ci/install-deps.sh)"
        );
        eprintln!("SKIPPED {test}: `{tool}` is not installed on this machine");
    }
    ok
}

/// The compose v2 command: the docker plugin, else the standalone binary (checked to be v2).
pub fn compose_command() -> Option<Vec<String>> {
    let candidates: [&[&str]; 2] = [&["docker", "compose"], &["docker-compose"]];
    for c in candidates {
        let out = Command::new(c[0])
            .args(&c[1..])
            .arg("version")
            .arg("--short")
            .output();
        if let Ok(o) = out {
            let v = String::from_utf8_lossy(&o.stdout);
            if o.status.success()
                && (v.trim_start_matches('v').starts_with('2')
                    || v.trim_start_matches('v').starts_with('5'))
            {
                return Some(c.iter().map(|s| s.to_string()).collect());
            }
        }
    }
    None
}

/// `docker compose config -q` on a stack, with the manifest as env file. Returns stderr on failure.
pub fn compose_config(env_file: &Path, stack: &Path, test: &str) -> Option<Result<(), String>> {
    let Some(cmd) = compose_command() else {
        assert!(
            !tools_required(),
            "{test}: docker compose v2 is missing (see .ci/install-deps.sh)"
        );
        eprintln!("SKIPPED {test}: docker compose v2 is not installed on this machine");
        return None;
    };
    let out = Command::new(&cmd[0])
        .args(&cmd[1..])
        .arg("--env-file")
        .arg(env_file)
        .arg("-f")
        .arg(stack)
        .args(["config", "-q"])
        .output()
        .expect("run compose");
    Some(if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    })
}

/// `caddy adapt` on a Caddyfile. Returns stderr on failure.
pub fn caddy_adapt(caddyfile: &Path, test: &str) -> Option<Result<(), String>> {
    if !have("caddy", &["version"], test) {
        return None;
    }
    let out = Command::new("caddy")
        .args(["adapt", "--adapter", "caddyfile", "--config"])
        .arg(caddyfile)
        .output()
        .expect("run caddy");
    Some(if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    })
}

/// Shared insta settings: snapshots live in the top-level `snapshots/` folder.
pub fn insta_settings() -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.set_snapshot_path(Path::new(ROOT).join("snapshots"));
    s.set_prepend_module_to_snapshot(false);
    s.set_omit_expression(true);
    s
}

/// All files rendered for one tenant, joined under `==== path ====` headers for one review.
pub fn joined_tenant_files(stacks: &Path, tenant: &str) -> String {
    let mut files = vec![stacks.join(format!("{tenant}-stack.yml"))];
    let mut rest = Vec::new();
    collect(&stacks.join(tenant), &mut rest);
    rest.sort();
    files.extend(rest);
    let mut out = String::new();
    for f in files {
        let rel = f.strip_prefix(stacks).unwrap().display().to_string();
        out.push_str(&format!("==== {rel} ====\n"));
        out.push_str(&std::fs::read_to_string(&f).unwrap());
    }
    out
}

pub fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            collect(&p, out);
        } else {
            out.push(p);
        }
    }
}

// ---- running stacks (issue 4): env-controlled runs, fake docker, real-engine helpers ----------

impl Sandbox {
    /// Runs `stackgen ARGS` with extra environment variables (e.g. PATH with a fake docker).
    pub fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .current_dir(self.dir.path())
            .env_remove("RUST_BACKTRACE");
        for (k, v) in env {
            cmd.env(k, v);
        }
        Run::from(cmd.output().expect("run stackgen"))
    }

    /// Runs `stackgen ARGS` with `input` on stdin.
    pub fn run_stdin(&self, args: &[&str], input: &str) -> Run {
        use std::io::Write;
        let mut child = Command::new(BIN)
            .args(args)
            .current_dir(self.dir.path())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run stackgen");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        Run::from(child.wait_with_output().unwrap())
    }

    /// Writes an executable script (mode 0755).
    pub fn write_executable(&self, rel: &str, content: &str) {
        use std::os::unix::fs::PermissionsExt;
        self.write(rel, content);
        std::fs::set_permissions(self.path(rel), std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    /// Replaces one whole `KEY=...` line of `.env` (panics when the key is not there).
    pub fn set_env_line(&self, key: &str, value: &str) {
        let text = self.read(".env");
        let mut found = false;
        let out: Vec<String> = text
            .lines()
            .map(|l| {
                if l.split_once('=').is_some_and(|(k, _)| k == key) {
                    found = true;
                    format!("{key}={value}")
                } else {
                    l.to_string()
                }
            })
            .collect();
        assert!(found, "no {key} in .env");
        self.write(".env", &(out.join("\n") + "\n"));
    }
}

/// A fake `docker` for preflight tests: logs every call's arguments to `docker.log` in the
/// sandbox and answers like a Docker host would; behaviour is switched by environment variables:
/// `FAKE_ENGINE_DOWN=1` (the daemon is unreachable), `FAKE_COMPOSE_VERSION` (default 2.26.1; `none`: no compose plugin),
/// `FAKE_PS` (a file whose lines `docker ps` prints), `FAKE_COMPOSE_RC` (the status of every
/// compose command but `version`).
pub const FAKE_DOCKER: &str = r#"#!/bin/sh
PATH=/usr/local/bin:/usr/bin:/bin
echo "$*" >> "$FAKE_DOCKER_LOG"
case "$1" in
  version)
    if [ -n "$FAKE_ENGINE_DOWN" ]; then
      echo "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?" >&2
      exit 1
    fi
    echo "20.10.24"; exit 0 ;;
  ps)
    [ -n "$FAKE_PS" ] && cat "$FAKE_PS"
    exit 0 ;;
  compose)
    if [ "$2" = version ]; then
      if [ "$FAKE_COMPOSE_VERSION" = none ]; then
        echo "docker: 'compose' is not a docker command." >&2; exit 1
      fi
      echo "${FAKE_COMPOSE_VERSION:-2.26.1}"; exit 0
    fi
    exit "${FAKE_COMPOSE_RC:-0}" ;;
esac
exit 0
"#;

/// Puts [`FAKE_DOCKER`] into `<sandbox>/fakebin` and returns the environment that makes
/// stackgen find only it (PATH is that one directory: no real docker, no docker-compose).
pub fn fake_docker(s: &Sandbox) -> Vec<(String, String)> {
    s.write_executable("fakebin/docker", FAKE_DOCKER);
    vec![
        ("PATH".into(), s.path("fakebin").display().to_string()),
        (
            "FAKE_DOCKER_LOG".into(),
            s.path("docker.log").display().to_string(),
        ),
    ]
}

/// Borrowed form of an owned environment list, for `run_env`.
pub fn env_refs(env: &[(String, String)]) -> Vec<(&str, &str)> {
    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

/// The first port of a run of `len` ports that this process can bind (TCP on all interfaces,
/// UDP too), never handed out twice in one test process. The e2e tenants get their port ranges
/// here, so parallel tests and whatever else runs on the host do not collide.
pub fn free_port_range(len: u16) -> u16 {
    use std::net::{TcpListener, UdpSocket};
    use std::sync::Mutex;
    static TAKEN: Mutex<Vec<u16>> = Mutex::new(Vec::new());
    let mut taken = TAKEN.lock().unwrap();
    let seed = std::process::id() as u64 * 7919
        + std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos() as u64;
    for i in 0..400u64 {
        let base = 30000 + ((seed + i * 977) % 300) as u16 * 100;
        if taken.iter().any(|t| t.abs_diff(base) < 100) {
            continue;
        }
        let free = (base..base + len).all(|p| {
            TcpListener::bind(("0.0.0.0", p)).is_ok() && UdpSocket::bind(("0.0.0.0", p)).is_ok()
        });
        if free {
            taken.push(base);
            return base;
        }
    }
    panic!("no free run of {len} ports between 30000 and 60000");
}

/// Output of a command on the host (for docker inspections in the e2e tests).
pub fn host(cmd: &str, args: &[&str]) -> Run {
    Run::from(
        Command::new(cmd)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("{cmd}: {e}")),
    )
}

/// A Docker engine answers, Compose v2 is there, and the stand-in images for `services` exist
/// (built with tests/images/build.sh when missing). Fails in CI, skips on a developer machine.
pub fn engine_ready(services: &[&str], test: &str) -> bool {
    if !have("docker", &["info"], test) {
        return false;
    }
    if compose_command().is_none() {
        assert!(
            !tools_required(),
            "{test}: docker compose v2 is missing (see .ci/install-deps.sh)"
        );
        eprintln!("SKIPPED {test}: docker compose v2 is not installed on this machine");
        return false;
    }
    static BUILT: std::sync::Mutex<bool> = std::sync::Mutex::new(false);
    let mut built = BUILT.lock().unwrap();
    let missing: Vec<&str> = services
        .iter()
        .copied()
        .filter(|s| {
            !Command::new("docker")
                .args(["image", "inspect", &format!("stackgen-standin/{s}:test")])
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .collect();
    if !missing.is_empty() && !*built {
        let out = Command::new("bash")
            .arg(Path::new(ROOT).join("tests/images/build.sh"))
            .output()
            .expect("run tests/images/build.sh");
        *built = true;
        if !out.status.success() {
            let msg = format!(
                "{test}: building the stand-in images failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(!tools_required(), "{msg}");
            eprintln!("SKIPPED {msg}");
            return false;
        }
    }
    true
}
