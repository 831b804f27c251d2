//! The prompts, one small function each (the menu's, and the confirmations of destructive
//! commands such as `teardown`): lists and yes/no over `inquire`, typed text over
//! [`Line`] (which has Ctrl-U and Ctrl-W). Ctrl-C and Esc become
//! [`Interrupted`], so every caller unwinds with `?` and nothing is ever written half-way.
//!
//! Validation reuses the manifest's own validators, so the menu refuses exactly what the manifest
//! loader would refuse, with the same hints.

use inquire::{Confirm, InquireError, MultiSelect, Select};

use super::choices::Choice;
use super::line::Line;
use crate::error::{Interrupted, UsageError};
use crate::manifest::values::{self, Invalid};

/// Enough rows for the whole service list on a tall terminal: scrolling hides choices and
/// their defaults. A shorter terminal gets fewer (see [`page`]).
const PAGE: usize = 16;

/// The terminal's (columns, rows), 80x24 when it cannot be asked (the smallest usual size).
pub fn term_size() -> (usize, usize) {
    // SAFETY: TIOCGWINSZ only writes the `winsize` it is given; a failed call leaves it zeroed.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    let ok = unsafe { libc::ioctl(libc::STDERR_FILENO, libc::TIOCGWINSZ, &mut ws) } == 0;
    if ok && ws.ws_col > 0 && ws.ws_row > 0 {
        (usize::from(ws.ws_col), usize::from(ws.ws_row))
    } else {
        (80, 24)
    }
}

/// Rows for a list prompt on a terminal of `rows`: the question, the list and the help line
/// must fit together, or the terminal scrolls the question off the top while the list redraws.
pub fn page(rows: usize) -> usize {
    PAGE.min(rows.saturating_sub(4)).max(3)
}

type Answer<T> = anyhow::Result<T>;

/// Maps inquire's errors: interruptions to [`Interrupted`] (exit 130), a lost terminal to a usage
/// error that names the way out.
fn map(err: InquireError) -> anyhow::Error {
    match err {
        InquireError::OperationInterrupted | InquireError::OperationCanceled => Interrupted.into(),
        InquireError::NotTTY => UsageError::plain(
            "the menu needs a terminal; pass --non-interactive with flags instead (see `stackgen init --help`)",
        )
        .into(),
        other => anyhow::Error::new(other).context("the menu failed"),
    }
}

/// Free text with a default, checked by a manifest validator (editable with Ctrl-U/Ctrl-W).
pub fn text(
    message: &str,
    default: &str,
    check: impl Fn(&str) -> Result<(), Invalid> + Clone + 'static,
) -> Answer<String> {
    Line {
        message,
        default: Some(default),
        help: None,
        hidden: false,
        check: &|s: &str| check(s).map_err(shown),
    }
    .prompt()
}

/// An `Invalid` as the line under the input.
fn shown((message, hint): Invalid) -> String {
    format!("{message} ({hint})")
}

/// A tenant name that is valid and not taken.
pub fn tenant_name(taken: Vec<String>) -> Answer<String> {
    Line {
        message: "Tenant name:",
        default: None,
        help: Some("a-z, 0-9 and dashes, e.g. team-a: its compose project and subdomain"),
        hidden: false,
        check: &|s: &str| match values::tenant_name(s) {
            Err(e) => Err(shown(e)),
            Ok(()) if taken.iter().any(|t| t == s) => Err(format!("tenant `{s}` already exists")),
            Ok(()) => Ok(()),
        },
    }
    .prompt()
}

pub fn select<T: std::fmt::Display>(message: &str, choices: Vec<T>, start: usize) -> Answer<T> {
    let rows = term_size().1;
    Select::new(message, choices)
        .with_starting_cursor(start)
        .with_page_size(page(rows))
        .prompt()
        .map_err(map)
}

/// A choice from a list with explanations; the answer line shows only the name.
pub fn select_choice(message: &str, choices: Vec<Choice>, start: usize) -> Answer<Choice> {
    let (cols, rows) = term_size();
    Select::new(message, super::choices::fit(choices, cols))
        .with_starting_cursor(start)
        .with_page_size(page(rows))
        .with_formatter(&|o| o.value.name.clone())
        .prompt()
        .map_err(map)
}

pub fn multi_select(
    message: &str,
    choices: Vec<Choice>,
    defaults: &[usize],
) -> Answer<Vec<Choice>> {
    let (cols, rows) = term_size();
    MultiSelect::new(message, super::choices::fit(choices, cols))
        .with_default(defaults)
        .with_page_size(page(rows))
        .with_formatter(&|picked| {
            let names: Vec<&str> = picked.iter().map(|o| o.value.name.as_str()).collect();
            names.join(", ")
        })
        .with_help_message("↑↓ move, space toggles, enter accepts; what a choice needs is added")
        .prompt()
        .map_err(map)
}

/// A UID or GID: a valid ID that no other tenant uses.
pub fn id(message: &str, default: u32, taken: Vec<u32>) -> Answer<u32> {
    let default = default.to_string();
    let answer = Line {
        message,
        default: Some(&default),
        help: None,
        hidden: false,
        check: &|s: &str| {
            let v: u32 = s.parse().map_err(|_| "type a number".to_string())?;
            match values::id(s) {
                Err(e) => Err(shown(e)),
                Ok(_) if taken.contains(&v) => Err(format!("{v} is used by another tenant")),
                Ok(_) => Ok(()),
            }
        },
    }
    .prompt()?;
    Ok(answer.parse()?)
}

/// The tailscale auth key: hidden while typed, may be empty.
pub fn tailscale_key() -> Answer<String> {
    Line {
        message: "Tailscale auth key for openclaw (hidden; leave empty to set it later):",
        default: None,
        help: None,
        hidden: true,
        check: &|s: &str| values::secret(s, true).map_err(shown),
    }
    .prompt()
}

pub fn confirm(message: &str, default: bool) -> Answer<bool> {
    Confirm::new(message)
        .with_default(default)
        .prompt()
        .map_err(map)
}

/// Asks the operator to type `expected` (e.g. a tenant name before its data is deleted).
/// Returns whether they did; anything else, including an empty answer, is a no.
pub fn typed(message: &str, expected: &str) -> Answer<bool> {
    Line {
        message,
        default: None,
        help: None,
        hidden: false,
        check: &|_: &str| Ok(()),
    }
    .prompt()
    .map(|s| s == expected)
}
