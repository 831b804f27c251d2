//! The prompts, one small function each, over `inquire` (the menu's, and the confirmations of
//! destructive commands such as `teardown`). Ctrl-C and Esc become
//! [`Interrupted`], so every caller unwinds with `?` and nothing is ever written half-way.
//!
//! Validation reuses the manifest's own validators, so the menu refuses exactly what the manifest
//! loader would refuse, with the same hints.

use inquire::validator::Validation;
use inquire::{Confirm, CustomType, InquireError, MultiSelect, Password, PasswordDisplayMode};
use inquire::{Select, Text};

use super::choices::Choice;
use crate::error::{Interrupted, UsageError};
use crate::manifest::values::{self, Invalid};

/// Enough rows for the whole service list: scrolling hides choices and their defaults.
const PAGE: usize = 16;

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

/// An `Invalid` as the message inquire shows under the input.
fn invalid((message, hint): Invalid) -> Validation {
    Validation::Invalid(format!("{message} ({hint})").into())
}

pub fn text(
    message: &str,
    default: &str,
    check: impl Fn(&str) -> Result<(), Invalid> + Clone + 'static,
) -> Answer<String> {
    Text::new(message)
        .with_default(default)
        .with_validator(move |s: &str| {
            Ok(match check(s.trim()) {
                Ok(()) => Validation::Valid,
                Err(e) => invalid(e),
            })
        })
        .prompt()
        .map(|s| s.trim().to_string())
        .map_err(map)
}

/// A tenant name that is valid and not taken.
pub fn tenant_name(taken: Vec<String>) -> Answer<String> {
    Text::new("Tenant name:")
        .with_help_message("lower-case letters, digits and dashes, e.g. team-a; it becomes the compose project and the subdomain")
        .with_validator(move |s: &str| {
            let s = s.trim();
            Ok(match values::tenant_name(s) {
                Err(e) => invalid(e),
                Ok(()) if taken.iter().any(|t| t == s) => {
                    Validation::Invalid(format!("tenant `{s}` already exists").into())
                }
                Ok(()) => Validation::Valid,
            })
        })
        .prompt()
        .map(|s| s.trim().to_string())
        .map_err(map)
}

pub fn select<T: std::fmt::Display>(message: &str, choices: Vec<T>, start: usize) -> Answer<T> {
    Select::new(message, choices)
        .with_starting_cursor(start)
        .with_page_size(PAGE)
        .prompt()
        .map_err(map)
}

/// A choice from a list with explanations; the answer line shows only the name.
pub fn select_choice(message: &str, choices: Vec<Choice>, start: usize) -> Answer<Choice> {
    Select::new(message, choices)
        .with_starting_cursor(start)
        .with_page_size(PAGE)
        .with_formatter(&|o| o.value.name.clone())
        .prompt()
        .map_err(map)
}

pub fn multi_select(
    message: &str,
    choices: Vec<Choice>,
    defaults: &[usize],
) -> Answer<Vec<Choice>> {
    MultiSelect::new(message, choices)
        .with_default(defaults)
        .with_page_size(PAGE)
        .with_formatter(&|picked| {
            let names: Vec<&str> = picked.iter().map(|o| o.value.name.as_str()).collect();
            names.join(", ")
        })
        .with_help_message("↑↓ move, space toggles, enter accepts; what a choice needs (e.g. postgres) is added for you")
        .prompt()
        .map_err(map)
}

/// A UID or GID: a valid ID that no other tenant uses.
pub fn id(message: &str, default: u32, taken: Vec<u32>) -> Answer<u32> {
    CustomType::<u32>::new(message)
        .with_default(default)
        .with_error_message("type a number")
        .with_validator(move |v: &u32| {
            Ok(match values::id(&v.to_string()) {
                Err(e) => invalid(e),
                Ok(_) if taken.contains(v) => {
                    Validation::Invalid(format!("{v} is used by another tenant").into())
                }
                Ok(_) => Validation::Valid,
            })
        })
        .prompt()
        .map_err(map)
}

/// The tailscale auth key: hidden while typed, may be empty.
pub fn tailscale_key() -> Answer<String> {
    Password::new("Tailscale auth key for openclaw (hidden; leave empty to set it later):")
        .with_display_mode(PasswordDisplayMode::Hidden)
        .without_confirmation()
        .with_validator(|s: &str| {
            Ok(match values::secret(s.trim(), true) {
                Ok(()) => Validation::Valid,
                Err(e) => invalid(e),
            })
        })
        .prompt()
        .map(|s| s.trim().to_string())
        .map_err(map)
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
    Text::new(message)
        .prompt()
        .map(|s| s.trim() == expected)
        .map_err(map)
}
