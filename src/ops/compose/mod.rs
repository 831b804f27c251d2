//! Every Docker call stackgen makes, in one place: finding `docker` and Compose v2, building the
//! argument vectors (pure, so `--dry-run` and snapshot tests see exactly what would run), running
//! them with duct, and reading the tenant's containers back.
//!
//! stackgen is a thin wrapper (design.md): `up`, `down`, `restart`, `logs` are
//! `docker compose -p <tenant> --env-file <manifest> -f <stack> ...`, and the child's exit status
//! is passed through. Secrets never appear in an argument vector: commands that need one (the new
//! postgres password, a tailscale key) get it on stdin.

pub mod argv;
pub mod containers;
pub mod exec;
pub mod find;
pub mod service;

use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;

pub use containers::{Container, Health, Published};
pub use find::{Compose, Flavor, Tools};

/// The compose project of one tenant: `-p <name> --env-file <manifest> -f <stack>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Project {
    pub name: String,
    pub env_file: PathBuf,
    pub stack: PathBuf,
}

/// One command to run: its argument vector, what it is for (used in error messages), and
/// optional bytes for its stdin (never printed).
#[derive(Clone, PartialEq, Eq)]
pub struct Cmd {
    pub argv: Vec<OsString>,
    pub purpose: String,
    pub stdin: Option<Vec<u8>>,
}

impl fmt::Debug for Cmd {
    // Written by hand so a secret on stdin can never end up in a debug print or a panic message.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cmd")
            .field("argv", &self.argv)
            .field("purpose", &self.purpose)
            .field("stdin", &self.stdin.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl Cmd {
    /// A command with no stdin; `purpose` names it in error messages.
    pub fn new(argv: Vec<OsString>, purpose: impl Into<String>) -> Self {
        Cmd {
            argv,
            purpose: purpose.into(),
            stdin: None,
        }
    }

    /// Feeds `bytes` to the command's stdin (for secrets: they stay out of `ps` and logs).
    pub fn with_stdin(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(bytes.into());
        self
    }

    /// The command as a shell would need it typed: each word quoted only when it has to be.
    pub fn shell_line(&self) -> String {
        let words: Vec<String> = self
            .argv
            .iter()
            .map(|a| quote(&a.to_string_lossy()))
            .collect();
        let mut line = words.join(" ");
        if self.stdin.is_some() {
            line.push_str("   # secret on stdin, not shown");
        }
        line
    }
}

impl fmt::Display for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shell_line())
    }
}

/// POSIX-shell quoting for display: bare when safe, else single quotes.
pub fn quote(word: &str) -> String {
    let safe = !word.is_empty()
        && word.chars().all(|c| {
            c.is_ascii_alphanumeric()
                || matches!(c, '-' | '_' | '.' | '/' | ':' | '=' | '@' | ',' | '+')
        });
    if safe {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_keeps_plain_words_bare() {
        assert_eq!(quote("up"), "up");
        assert_eq!(quote("--wait-timeout"), "--wait-timeout");
        assert_eq!(
            quote("label=com.stackgen.tenant=a"),
            "label=com.stackgen.tenant=a"
        );
        assert_eq!(quote("{{json .}}"), "'{{json .}}'");
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote(""), "''");
    }

    #[test]
    fn stdin_is_never_shown() {
        let cmd = Cmd::new(vec!["psql".into()], "alter role").with_stdin("hunter2hunter2");
        assert!(!cmd.shell_line().contains("hunter2"));
        assert!(!format!("{cmd:?}").contains("hunter2"));
    }
}
