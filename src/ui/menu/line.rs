//! A one-line text prompt with the editing keys a shell user expects: Backspace, Ctrl-U (clear
//! the line) and Ctrl-W (delete the word before the cursor). `inquire` 0.9 maps every Ctrl+letter
//! it does not know to the letter itself, so Ctrl-U typed `u`; its input handling has no hook,
//! hence this small editor for the menu's text prompts (lists and confirmations stay inquire's).
//!
//! The cursor stays at the end of the line (no Left/Right: arrow keys are read and ignored).
//! Ctrl-C and Esc interrupt ([`Interrupted`]), like the other prompts. The terminal is put in raw
//! mode for the prompt only and restored on every way out, panics included (a guard's `Drop`).

use std::io::Write;
use std::os::fd::AsRawFd;

use crate::error::{Interrupted, UsageError};

/// What a prompt shows and accepts.
pub struct Line<'a> {
    pub message: &'a str,
    /// Shown as `(default)` and taken when the answer is empty.
    pub default: Option<&'a str>,
    pub help: Option<&'a str>,
    /// Typed characters are not shown (a secret).
    pub hidden: bool,
    /// `Err(message)` keeps the prompt open and shows the message under the input.
    pub check: &'a dyn Fn(&str) -> Result<(), String>,
}

/// The terminal in raw mode until dropped.
struct Raw {
    fd: i32,
    saved: libc::termios,
}

impl Raw {
    fn enter(fd: i32) -> Option<Raw> {
        // SAFETY: tcgetattr/tcsetattr only read and write the `termios` they are given.
        unsafe {
            let mut saved: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(fd, &mut saved) != 0 {
                return None;
            }
            let mut raw = saved;
            libc::cfmakeraw(&mut raw);
            // Keep output processing: `\n` still returns the carriage.
            raw.c_oflag = saved.c_oflag;
            if libc::tcsetattr(fd, libc::TCSANOW, &raw) != 0 {
                return None;
            }
            Some(Raw { fd, saved })
        }
    }
}

impl Drop for Raw {
    fn drop(&mut self) {
        // SAFETY: restores the settings read in `enter`.
        unsafe {
            libc::tcsetattr(self.fd, libc::TCSANOW, &self.saved);
        }
    }
}

/// Removes the word before the end of `input` and the spaces after it, as a shell's Ctrl-W.
pub fn delete_word(input: &mut String) {
    while input.ends_with(char::is_whitespace) {
        input.pop();
    }
    while input.chars().last().is_some_and(|c| !c.is_whitespace()) {
        input.pop();
    }
}

/// One byte from the terminal, unbuffered: bytes typed ahead for the next prompt (an `inquire`
/// list, which reads the descriptor itself) must stay in the terminal, not in a buffer of ours.
/// `None` at end of input.
fn read_byte(fd: i32) -> std::io::Result<Option<u8>> {
    let mut b = 0u8;
    loop {
        // SAFETY: reads at most one byte into `b`.
        let n = unsafe { libc::read(fd, (&mut b as *mut u8).cast(), 1) };
        match n {
            1 => return Ok(Some(b)),
            0 => return Ok(None),
            _ => {
                let e = std::io::Error::last_os_error();
                if e.kind() != std::io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
        }
    }
}

/// Whether another byte arrives within a few milliseconds (the rest of an escape sequence).
fn more_soon(fd: i32) -> bool {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: polls the one descriptor given.
    unsafe { libc::poll(&mut p, 1, 30) > 0 }
}

impl Line<'_> {
    /// Asks until the check accepts; returns the answer (the default when left empty).
    pub fn prompt(&self) -> anyhow::Result<String> {
        let stdin = std::io::stdin();
        let fd = stdin.as_raw_fd();
        let Some(_raw) = Raw::enter(fd) else {
            return Err(UsageError::plain(
                "the prompt needs a terminal; pass --non-interactive with flags instead (see `stackgen init --help`)",
            )
            .into());
        };
        let mut err = std::io::stderr().lock();
        let mut input = String::new();
        let mut problem: Option<String> = None;
        let head = match self.default {
            Some(d) => format!("? {} ({d}) ", self.message),
            None => format!("? {} ", self.message),
        };
        // Room below for the help or error line, so drawing it never scrolls the prompt.
        write!(err, "\r\n\r\n\x1b[2A")?;
        let mut pending = Vec::new();
        loop {
            let shown = if self.hidden { "" } else { input.as_str() };
            let below = problem.as_deref().or(self.help);
            write!(err, "\r\x1b[J{head}{shown}\x1b7")?;
            if let Some(b) = below {
                let mark = if problem.is_some() { "✗" } else { " " };
                write!(err, "\r\n{mark} {b}")?;
            }
            write!(err, "\x1b8")?;
            err.flush()?;

            let Some(byte) = read_byte(fd)? else {
                return Err(Interrupted.into());
            };
            match byte {
                3 => {
                    write!(err, "\r\x1b[J{head}\r\n")?;
                    return Err(Interrupted.into());
                }
                0x1b => {
                    if !more_soon(fd) {
                        write!(err, "\r\x1b[J{head}\r\n")?;
                        return Err(Interrupted.into());
                    }
                    // An escape sequence (an arrow key): read up to its final byte, ignore it.
                    if let Some(b'[' | b'O') = read_byte(fd)? {
                        while let Some(b) = read_byte(fd)? {
                            if (0x40..=0x7e).contains(&b) {
                                break;
                            }
                        }
                    }
                }
                b'\r' | b'\n' => {
                    let answer = match (input.trim(), self.default) {
                        ("", Some(d)) => d.to_string(),
                        (s, _) => s.to_string(),
                    };
                    match (self.check)(&answer) {
                        Ok(()) => {
                            let echo = if self.hidden { "" } else { answer.as_str() };
                            write!(err, "\r\x1b[J? {} {echo}\r\n", self.message)?;
                            err.flush()?;
                            return Ok(answer);
                        }
                        Err(m) => problem = Some(m),
                    }
                }
                0x7f | 0x08 => {
                    input.pop();
                }
                0x15 => input.clear(),
                0x17 => delete_word(&mut input),
                b if b < 0x20 => {}
                b => {
                    // UTF-8: collect the bytes of one character before adding it.
                    pending.push(b);
                    match std::str::from_utf8(&pending) {
                        Ok(s) => {
                            input.push_str(s);
                            pending.clear();
                        }
                        Err(e) if e.error_len().is_some() => pending.clear(),
                        Err(_) => {}
                    }
                }
            }
            if byte != b'\r' && byte != b'\n' {
                problem = None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::delete_word;

    #[test]
    fn ctrl_w_deletes_the_last_word_and_the_spaces_after_it() {
        for (before, after) in [
            ("/srv/data wrong", "/srv/data "),
            ("one two  ", "one "),
            ("word", ""),
            ("", ""),
        ] {
            let mut s = before.to_string();
            delete_word(&mut s);
            assert_eq!(s, after, "{before:?}");
        }
    }
}
