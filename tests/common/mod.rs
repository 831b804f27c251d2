//! Test harness: run the real binary in a temporary directory, and find the external validators.
//!
//! Validators (docker compose v2, caddy, apparmor_parser) are required in CI: when
//! `STACKGEN_REQUIRE_TOOLS=1` or `CI` is set, a missing tool fails the test. On a developer
//! machine the test prints that it skipped and returns.

#![allow(dead_code)]

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
