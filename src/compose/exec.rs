//! Running a [`Cmd`] with duct. Always `.unchecked()`: the status is read here and a failure
//! becomes `CommandFailed` with the child's own exit code, which `stackgen` then exits with.

use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Output};

use anyhow::{Context, Result};

use super::Cmd;
use crate::error::CommandFailed;

fn expression(cmd: &Cmd) -> duct::Expression {
    let (program, args) = cmd
        .argv
        .split_first()
        .expect("a command has at least its program");
    let mut e = duct::cmd(program, args).unchecked();
    if let Some(bytes) = &cmd.stdin {
        e = e.stdin_bytes(bytes.clone());
    }
    e
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
    let stderr = String::from_utf8_lossy(&out.stderr);
    let err = anyhow::Error::new(CommandFailed {
        what: cmd.purpose.clone(),
        code: status_code(out.status),
    });
    Err(match first_line(&stderr) {
        Some(line) => err.context(line.to_string()),
        None => err,
    })
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

#[cfg(test)]
mod tests {
    use super::*;

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
