//! Error kinds that decide the exit status: bad input (2), drift or a failed command (1).
//!
//! Everything else travels as `anyhow::Error`; `lib::exit_code` downcasts to these types, so a
//! command only has to return the right kind and never calls `process::exit` itself.

use std::fmt;
use std::path::PathBuf;

/// One problem in the manifest, located so the operator can fix it without searching.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestProblem {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub key: Option<String>,
    pub message: String,
    pub hint: String,
}

impl fmt::Display for ManifestProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(key) = &self.key {
            write!(f, ": {key}")?;
        }
        write!(f, ": {}", self.message)?;
        if !self.hint.is_empty() {
            write!(f, "\n  fix: {}", self.hint)?;
        }
        Ok(())
    }
}

/// Invalid usage or an invalid manifest: exit status 2, nothing written.
#[derive(Debug)]
pub struct UsageError {
    pub problems: Vec<ManifestProblem>,
    pub plain: Option<String>,
}

impl UsageError {
    pub fn plain(message: impl Into<String>) -> Self {
        UsageError {
            problems: Vec::new(),
            plain: Some(message.into()),
        }
    }

    pub fn problems(problems: Vec<ManifestProblem>) -> Self {
        UsageError {
            problems,
            plain: None,
        }
    }
}

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(p) = &self.plain {
            write!(f, "{p}")?;
        }
        let n = self.problems.len();
        if n > 1 {
            writeln!(f, "the manifest has {n} problems:")?;
        }
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for UsageError {}

/// `render --check` found files that differ from what the manifest renders: exit status 1.
#[derive(Debug)]
pub struct Drift {
    pub files: Vec<PathBuf>,
}

impl fmt::Display for Drift {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} file(s) differ from what the manifest renders; run `stackgen render` and commit the result",
            self.files.len()
        )
    }
}

impl std::error::Error for Drift {}

/// An external command (docker, compose, apparmor_parser) failed; its status is passed through.
#[derive(Debug)]
pub struct CommandFailed {
    pub what: String,
    pub code: i32,
}

impl fmt::Display for CommandFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} failed with exit status {}", self.what, self.code)
    }
}

impl std::error::Error for CommandFailed {}

/// The operator interrupted a prompt (Ctrl-C or Esc) before anything was written: exit 130, the
/// status a shell reports for SIGINT.
#[derive(Debug)]
pub struct Interrupted;

impl fmt::Display for Interrupted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("interrupted: nothing was written")
    }
}

impl std::error::Error for Interrupted {}

/// `status` found a tenant degraded or still starting: exit status 3.
pub const EXIT_DEGRADED: u8 = 3;
/// `status` found a tenant not running, or `restart` was asked to restart one: exit status 4.
pub const EXIT_NOT_RUNNING: u8 = 4;

/// An outcome a script must be able to tell apart (a tenant's state, or the worst status of
/// several tenants run at once): the exit status is `code`, and `message` is printed as is
/// (it is not a failure of stackgen, so without `error:`).
#[derive(Debug)]
pub struct Outcome {
    pub code: u8,
    pub message: String,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Outcome {}
