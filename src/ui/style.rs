//! Terminal colour for check lines and diffs, decided once per run from `--color` and
//! `NO_COLOR`. Dependency-free: a few SGR escapes are all stackgen needs, and keeping the
//! decision in one process-wide switch lets `Display` impls (a `Check` printed by `up` or
//! `doctor`) colour themselves without every caller passing a flag down.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};

/// `--color`: when check lines and diffs are coloured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorChoice {
    // Plain comments, not doc comments: a documented variant would switch every command's
    // `--help` to clap's long layout.
    // Only when stdout is a terminal and NO_COLOR is not set.
    Auto,
    // Always, even piped and with NO_COLOR set (the flag is the more explicit request).
    Always,
    Never,
}

/// Off until `init` says otherwise: library callers and unit tests get plain text.
static ENABLED: AtomicBool = AtomicBool::new(false);

/// Whether colour is on for this run. `NO_COLOR` with any value (even empty) disables `auto`,
/// as the brief of the convention asks; `always` is an explicit request and wins.
pub fn decide(choice: ColorChoice, no_color: bool, stdout_is_terminal: bool) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => stdout_is_terminal && !no_color,
    }
}

/// Sets the switch from the command line and the environment; called once by `dispatch`.
pub fn init(choice: ColorChoice) {
    let on = decide(
        choice,
        std::env::var_os("NO_COLOR").is_some(),
        std::io::stdout().is_terminal(),
    );
    ENABLED.store(on, Ordering::Relaxed);
}

pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

pub const GREEN: &str = "32";
pub const YELLOW: &str = "33";
pub const RED: &str = "31";
pub const CYAN: &str = "36";
pub const BOLD: &str = "1";

/// `text` wrapped in the SGR code when colour is on; `text` unchanged otherwise.
pub fn paint(code: &str, text: &str) -> String {
    if enabled() {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_string()
    }
}

/// A unified diff with `+` lines green, `-` lines red, `@@` hunk headers cyan and the file
/// headers bold; unchanged when colour is off. Each line is painted on its own so a pager that
/// cuts a line never leaves the colour running into the next one.
pub fn diff(text: &str) -> String {
    if !enabled() {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    for line in text.split_inclusive('\n') {
        let (body, nl) = match line.strip_suffix('\n') {
            Some(b) => (b, "\n"),
            None => (line, ""),
        };
        let code = if body.starts_with("+++") || body.starts_with("---") {
            Some(BOLD)
        } else if body.starts_with('+') {
            Some(GREEN)
        } else if body.starts_with('-') {
            Some(RED)
        } else if body.starts_with("@@") {
            Some(CYAN)
        } else {
            None
        };
        match code {
            Some(c) => out.push_str(&format!("\x1b[{c}m{body}\x1b[0m{nl}")),
            None => out.push_str(line),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_needs_a_terminal_and_no_no_color() {
        assert!(decide(ColorChoice::Auto, false, true));
        assert!(!decide(ColorChoice::Auto, true, true));
        assert!(!decide(ColorChoice::Auto, false, false));
        assert!(decide(ColorChoice::Always, true, false));
        assert!(!decide(ColorChoice::Never, false, true));
    }
}
