//! Running a [`Cmd`] with duct. Always `.unchecked()`: the status is read here and a failure
//! becomes `CommandFailed` with the child's own exit code, which `stackgen` then exits with.
//! Every child runs without the manifest's keys in its environment (`without_manifest_keys`).

use std::collections::HashSet;
use std::ffi::OsString;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{ExitStatus, Output};
use std::sync::Mutex;

use anyhow::{Context, Result};

use super::Cmd;
use crate::error::CommandFailed;
use crate::manifest;
use crate::platform::catalog::Catalog;

fn expression(cmd: &Cmd) -> duct::Expression {
    let (program, args) = cmd
        .argv
        .split_first()
        .expect("a command has at least its program");
    let mut e = without_manifest_keys(duct::cmd(program, args).unchecked(), &cmd.argv);
    if let Some(bytes) = &cmd.stdin {
        e = e.stdin_bytes(bytes.clone());
    }
    e
}

/// `e` with every manifest key removed from the child's environment.
///
/// Compose gives the environment priority over `--env-file` when it interpolates a stack, so a
/// `TEAM_A__REDIS_PASSWORD` exported in the operator's shell would silently replace the
/// manifest's. Removed: every key of the manifest named by `--env-file` in `argv`, the platform
/// keys, the catalog's `<SERVICE>_IMAGE` keys, and every name shaped like a tenant key
/// (`<PREFIX>__<SETTING>`, the only names a stack interpolates). Each one that was set is named
/// once on stderr (never its value). Every child gets this, not only compose: none needs them.
pub fn without_manifest_keys(mut e: duct::Expression, argv: &[OsString]) -> duct::Expression {
    for key in shadowing_keys(argv) {
        warn_once(&key);
        e = e.env_remove(key);
    }
    e
}

/// The names in this process's environment that `without_manifest_keys` removes.
pub fn shadowing_keys(argv: &[OsString]) -> Vec<String> {
    let mut manifest_keys: HashSet<String> = manifest::PLATFORM_KEYS
        .iter()
        .map(|k| k.to_string())
        .collect();
    manifest_keys.extend(
        Catalog::get()
            .services
            .keys()
            .map(|s| Catalog::image_key(s)),
    );
    manifest_keys.insert(crate::platform::catalog::PGVECTOR_IMAGE_KEY.to_string());
    let env_file = argv
        .iter()
        .position(|a| a == "--env-file")
        .and_then(|i| argv.get(i + 1));
    if let Some(path) = env_file {
        // Unreadable or invalid: compose will say so; the shape rule below still applies.
        if let Ok(text) = manifest::read(Path::new(path)) {
            let (parsed, _) = manifest::parse::parse(Path::new(path), &text);
            manifest_keys.extend(parsed.entries.into_keys());
        }
    }
    let mut keys: Vec<String> = std::env::vars_os()
        .filter_map(|(k, _)| k.into_string().ok())
        .filter(|k| manifest_keys.contains(k) || is_tenant_key(k))
        .collect();
    keys.sort();
    keys
}

/// `<PREFIX>__<SETTING>`: upper-case letters, digits and `_` on both sides of a `__`.
fn is_tenant_key(name: &str) -> bool {
    name.split_once("__").is_some_and(|(prefix, setting)| {
        let word = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        };
        word(prefix) && word(setting) && prefix.starts_with(|c: char| c.is_ascii_uppercase())
    })
}

fn warn_once(key: &str) {
    static WARNED: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let mut warned = WARNED.lock().unwrap_or_else(|e| e.into_inner());
    if warned.iter().any(|k| k == key) {
        return;
    }
    warned.push(key.to_string());
    eprintln!(
        "stackgen: warning: {key} is set in this shell; docker runs without it, since only the manifest may set it (unset it to silence this)"
    );
}

/// The status a shell would report: the exit code, or 128 + the signal that ended the child.
pub fn status_code(status: ExitStatus) -> i32 {
    status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(1)
}

fn spawn_error(cmd: &Cmd) -> String {
    format!(
        "could not start `{}` ({})",
        cmd.argv[0].to_string_lossy(),
        cmd.purpose
    )
}

/// Runs with the terminal's stdout and stderr (compose's progress and logs go straight to the
/// operator); a non-zero status becomes `CommandFailed` carrying that status.
pub fn run(cmd: &Cmd) -> Result<()> {
    let out = expression(cmd).run().with_context(|| spawn_error(cmd))?;
    check(cmd, &out)
}

/// `run`, bounded: when the child is still running after `limit` it is killed and the result is
/// an error saying so. `docker compose up --wait-timeout` bounds only the final wait, not the
/// waits for each dependency's health before its dependants start; this bounds the whole run.
pub fn run_within(cmd: &Cmd, limit: std::time::Duration) -> Result<()> {
    let handle = expression(cmd).start().with_context(|| spawn_error(cmd))?;
    let deadline = std::time::Instant::now() + limit;
    loop {
        if let Some(out) = handle.try_wait().with_context(|| spawn_error(cmd))? {
            return check(cmd, out);
        }
        if std::time::Instant::now() >= deadline {
            // SIGTERM first: the docker CLI forwards it to the compose plugin it runs (a
            // SIGKILL would leave the plugin waiting in the background); SIGKILL if it lingers.
            for pid in handle.pids() {
                // SAFETY: kill(2) on a child we started and have not reaped; no memory involved.
                unsafe {
                    libc::kill(pid as libc::pid_t, libc::SIGTERM);
                }
            }
            let grace = std::time::Instant::now() + std::time::Duration::from_secs(10);
            while std::time::Instant::now() < grace && matches!(handle.try_wait(), Ok(None)) {
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            let _ = handle.kill();
            anyhow::bail!(
                "{} did not finish within {} s (--timeout): stopped waiting; the services started so far keep running",
                cmd.purpose,
                limit.as_secs()
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// Runs and captures stdout and stderr, whatever the status.
pub fn capture(cmd: &Cmd) -> Result<Output> {
    expression(cmd)
        .stdout_capture()
        .stderr_capture()
        .run()
        .with_context(|| spawn_error(cmd))
}

/// Runs, captures, and returns stdout; on failure the error carries the child's stderr.
pub fn capture_ok(cmd: &Cmd) -> Result<String> {
    let out = capture(cmd)?;
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    Err(failure(cmd, &out))
}

/// Runs with stdout into `file` (a dump too big to hold in memory); on failure the error
/// carries the child's stderr.
pub fn run_to_file(cmd: &Cmd, file: std::fs::File) -> Result<()> {
    let out = expression(cmd)
        .stdout_file(file)
        .stderr_capture()
        .stdin_null()
        .run()
        .with_context(|| spawn_error(cmd))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(failure(cmd, &out))
    }
}

/// Runs with stdin read from `input` (a dump), stdout discarded and stderr captured; the output
/// whatever the status, for a caller that reads the child's errors itself.
pub fn capture_errors_from(cmd: &Cmd, input: &std::path::Path) -> Result<Output> {
    expression(cmd)
        .stdin_path(input)
        .stdout_null()
        .stderr_capture()
        .run()
        .with_context(|| spawn_error(cmd))
}

/// A command that ran and failed: `CommandFailed` (its status) with its stderr's first line.
fn failure(cmd: &Cmd, out: &Output) -> anyhow::Error {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let err = anyhow::Error::new(CommandFailed {
        what: cmd.purpose.clone(),
        code: status_code(out.status),
    });
    match first_line(&stderr) {
        Some(line) => err.context(line.to_string()),
        None => err,
    }
}

fn check(cmd: &Cmd, out: &Output) -> Result<()> {
    if out.status.success() {
        Ok(())
    } else {
        Err(CommandFailed {
            what: cmd.purpose.clone(),
            code: status_code(out.status),
        }
        .into())
    }
}

/// The first non-empty line of a child's stderr, for one-line error messages.
pub fn first_line(text: &str) -> Option<&str> {
    text.lines().map(str::trim).find(|l| !l.is_empty())
}

/// Runs `program args` to ask it something (its version): its output whatever its status, or
/// `None` when it cannot be started. As every child, without the manifest's keys; its stdin
/// is empty, so nothing it does can wait on the operator's terminal.
pub fn probe(program: &Path, args: &[&str]) -> Option<Output> {
    let mut argv = vec![program.as_os_str().to_os_string()];
    argv.extend(args.iter().map(OsString::from));
    let purpose = format!("{} {}", program.display(), args.join(" "));
    capture(&Cmd::new(argv, purpose).with_stdin(Vec::new())).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bounded_run_is_stopped_at_its_limit() {
        let cmd = Cmd::new(vec!["sleep".into(), "30".into()], "docker compose up");
        let start = std::time::Instant::now();
        let err = run_within(&cmd, std::time::Duration::from_secs(1)).unwrap_err();
        assert!(start.elapsed() < std::time::Duration::from_secs(10));
        assert!(
            format!("{err:#}").contains("did not finish within 1 s (--timeout)"),
            "{err:#}"
        );
        let ok = Cmd::new(vec!["true".into()], "t");
        run_within(&ok, std::time::Duration::from_secs(5)).unwrap();
    }

    #[test]
    fn the_childs_status_is_passed_through() {
        let cmd = Cmd::new(vec!["sh".into(), "-c".into(), "exit 7".into()], "test");
        let err = run(&cmd).unwrap_err();
        let failed = err.downcast_ref::<CommandFailed>().unwrap();
        assert_eq!(failed.code, 7);
        let cmd = Cmd::new(vec!["sh".into(), "-c".into(), "kill -TERM $$".into()], "t");
        let err = run(&cmd).unwrap_err();
        assert_eq!(err.downcast_ref::<CommandFailed>().unwrap().code, 128 + 15);
    }

    #[test]
    fn stdin_reaches_the_child_and_stderr_the_error() {
        let cmd = Cmd::new(vec!["cat".into()], "cat").with_stdin("hello");
        assert_eq!(capture_ok(&cmd).unwrap(), "hello");
        let cmd = Cmd::new(
            vec!["sh".into(), "-c".into(), "echo boom >&2; exit 3".into()],
            "boom",
        );
        let err = capture_ok(&cmd).unwrap_err();
        assert_eq!(format!("{err}"), "boom");
        assert_eq!(err.downcast_ref::<CommandFailed>().unwrap().code, 3);
    }
}
