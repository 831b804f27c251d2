//! Line-level reading of the `.env` manifest: `KEY=value` entries with their line numbers.
//!
//! Values are unquoted with dotenvy, one line at a time, so every problem can name its line. Two
//! rules are stricter than dotenvy and compose: a value must fit on one line, and a `$` outside
//! single quotes is refused, because compose would interpolate it and the rendered stack would
//! then depend on the environment of whoever runs it.

use std::path::Path;

use indexmap::IndexMap;

use crate::error::ManifestProblem;

/// One `KEY=value` line of the manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub key: String,
    pub value: String,
    pub line: usize,
}

/// The key that may repeat: one `TENANT=<name>` line per tenant, so `init` can add a tenant by
/// appending lines and never has to rewrite one.
pub const LIST_KEY: &str = "TENANT";

/// What the manifest's lines say.
#[derive(Debug, Default)]
pub struct Parsed {
    /// Every key but `TENANT`, once each, in file order.
    pub entries: IndexMap<String, Entry>,
    /// The `TENANT=` lines, in file order.
    pub tenants: Vec<Entry>,
    /// Keys on lines whose value could not be read (already reported): not also "missing".
    pub unreadable: std::collections::HashSet<String>,
}

/// All entries in file order, keyed by name; duplicates and malformed lines are reported.
pub fn parse(path: &Path, text: &str) -> (Parsed, Vec<ManifestProblem>) {
    let mut entries: IndexMap<String, Entry> = IndexMap::new();
    let mut tenants: Vec<Entry> = Vec::new();
    let mut unreadable = std::collections::HashSet::new();
    let mut problems = Vec::new();
    let problem = |line: usize, key: Option<&str>, message: String, hint: &str| ManifestProblem {
        file: path.to_path_buf(),
        line: Some(line),
        key: key.map(readable_key),
        message: readable(&message),
        hint: readable(hint),
    };
    // An editor's byte-order mark would glue itself invisibly to the first key.
    let text = match text.strip_prefix('\u{feff}') {
        Some(rest) => {
            problems.push(problem(
                1,
                None,
                "the file starts with a byte-order mark (U+FEFF)".into(),
                "save the manifest as UTF-8 without BOM",
            ));
            rest
        }
        None => text,
    };

    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let body = trimmed.strip_prefix("export ").unwrap_or(trimmed);
        let Some((key, value)) = body.split_once('=') else {
            // The line's text is never shown: a line holding only a secret (a value pasted
            // without its key) would print it. The key is named when the line starts with one.
            let (key, message) = match leading_key(body) {
                Some((key, next)) => (
                    Some(key),
                    format!("expected KEY=value, found `{}` after the key", escape_invisible(&next.to_string())),
                ),
                None => (
                    None,
                    format!(
                        "expected KEY=value, found a line of {} characters without `=` (not shown: it may hold a secret)",
                        body.chars().count()
                    ),
                ),
            };
            problems.push(problem(
                line,
                key,
                message,
                "write one KEY=value per line; start comments with #",
            ));
            continue;
        };
        let key = key.trim_end();
        if !is_key(key) {
            problems.push(problem(
                line,
                None,
                format!("`{}` is not a valid key", shorten(key)),
                "keys are upper-case letters, digits and underscores, starting with a letter",
            ));
            continue;
        }
        let value_text = value.trim_start();
        if has_unquoted_dollar(value_text) {
            problems.push(problem(
                line,
                Some(key),
                "a `$` outside single quotes would be interpolated by docker compose".into(),
                "put the value in single quotes to keep the `$` literal, e.g. KEY='a$b'",
            ));
            unreadable.insert(key.to_string());
            continue;
        }
        let value = match unquote(key, value_text) {
            Ok(v) => v,
            Err((message, hint)) => {
                problems.push(problem(line, Some(key), message, hint));
                unreadable.insert(key.to_string());
                continue;
            }
        };
        if key == LIST_KEY {
            tenants.push(Entry {
                key: key.to_string(),
                value,
                line,
            });
            continue;
        }
        if let Some(first) = entries.get(key) {
            problems.push(problem(
                line,
                Some(key),
                format!("duplicate key (first set on line {})", first.line),
                "keep one of the two lines",
            ));
            continue;
        }
        entries.insert(
            key.to_string(),
            Entry {
                key: key.to_string(),
                value,
                line,
            },
        );
    }
    (
        Parsed {
            entries,
            tenants,
            unreadable,
        },
        problems,
    )
}

/// The key a line without `=` starts with, and the character after it: `KEY: value` names
/// `KEY`. `None` unless a valid key is followed by whitespace or punctuation, so that a line
/// holding only a secret never has a piece of it shown as a "key".
fn leading_key(body: &str) -> Option<(&str, char)> {
    let end = body.find(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))?;
    let next = body[end..].chars().next()?;
    let key = &body[..end];
    (is_key(key) && (next.is_whitespace() || matches!(next, ':' | '-' | '.' | ',' | ';')))
        .then_some((key, next))
}

fn is_key(key: &str) -> bool {
    let mut chars = key.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_uppercase())
        && chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

/// True when a `$` appears outside a single-quoted value.
fn has_unquoted_dollar(value: &str) -> bool {
    !value.starts_with('\'') && value.contains('$')
}

/// Unquotes one value; on failure, what is wrong and how to fix it.
///
/// Two readers must agree before a value is accepted: dotenvy (the common `.env` dialect, and
/// what stackgen used to read) and [`compose_value`], which reads the line the way docker
/// compose's own env-file parser does (compose-go's `dotenv`, checked against the real compose by
/// the property test `manifest_lines_read_as_compose_reads_them`). Compose is the reader that
/// matters, since it fills the stack's `${KEY}`s; where the two differ the line is refused, so
/// the value stackgen checks is always the value compose uses.
fn unquote(key: &str, value: &str) -> Result<String, (String, &'static str)> {
    // Most values (names, numbers, secrets) have nothing to unquote or unescape: both readers
    // return them as they are, at the cost of a reader per line (a tenth of a second for a
    // thousand tenants).
    if is_plain(value) {
        return Ok(value.to_string());
    }
    if let Some(why) = comment_after_other_whitespace(value) {
        return Err(why);
    }
    let line = format!("{key}={value}");
    let mut iter = dotenvy::from_read_iter(line.as_bytes());
    let dotenvy = match iter.next() {
        Some(Ok((_, v))) => v,
        Some(Err(dotenvy::Error::LineParse(_, _))) => return Err(why_malformed(value)),
        Some(Err(e)) => {
            return Err((
                format!("cannot read value: {e}"),
                "write the value on one line, quoted if it has spaces",
            ))
        }
        None => String::new(),
    };
    let compose = compose_value(value)?;
    if compose != dotenvy {
        // Neither reading is shown: the value may be a secret.
        return Err((
            "docker compose reads this value differently from other .env readers".into(),
            "write it in single quotes without backslashes, e.g. KEY='value', or plain without quotes, spaces or backslashes",
        ));
    }
    Ok(compose)
}

/// An unquoted value with `#` after a tab (or any whitespace but a space): dotenvy starts a
/// comment there, compose does not (it only cuts at ` #`) and keeps `\t# note` in the value.
fn comment_after_other_whitespace(value: &str) -> Option<(String, &'static str)> {
    if value.starts_with(['\'', '"']) {
        return None;
    }
    let mut prev = None;
    for c in value.chars() {
        if c == '#' && prev.is_some_and(|p: char| p.is_whitespace() && p != ' ') {
            return Some((
                format!(
                    "`{}` before `#`: docker compose keeps it and the rest of the line in the value, other readers start a comment",
                    escape_invisible(&prev.unwrap_or(' ').to_string())
                ),
                "separate a comment with a space (`KEY=value # note`), or quote the value",
            ));
        }
        prev = Some(c);
    }
    None
}

/// One value as docker compose's env-file parser reads it (compose-go `dotenv`, compose 2.x),
/// for the single-line values stackgen accepts; `Err` for what compose would read across lines
/// or as another statement.
///
/// - unquoted: up to the first ` #` (a space, not a tab), trailing whitespace trimmed;
/// - single quotes: up to the closing `'`; `\'` is a quote, any other backslash is kept;
/// - double quotes: up to the closing `"`; `\"` is a quote; then `\\` `\n` `\t` `\r` are
///   unescaped and other backslashes kept (`\a` `\b` `\f` `\v` `\0` are refused: no
///   manifest value needs them);
/// - after a closing quote: only whitespace or a `#` comment (compose would read anything
///   else as a second `KEY` and silently ignore it).
pub fn compose_value(value: &str) -> Result<String, (String, &'static str)> {
    let quote = match value.chars().next() {
        Some(q @ ('\'' | '"')) => q,
        _ => {
            let value = value.split_once(" #").map_or(value, |(v, _)| v);
            return Ok(value.trim_end().to_string());
        }
    };
    let mut chars = String::new();
    let mut escaped = false;
    let mut close = None;
    for (i, c) in value.char_indices().skip(1) {
        if c != quote {
            if !escaped && c == '\\' {
                escaped = true;
                continue;
            }
            if escaped {
                escaped = false;
                chars.push('\\');
            }
            chars.push(c);
            continue;
        }
        if escaped {
            escaped = false;
            chars.push(c);
            continue;
        }
        close = Some(i);
        break;
    }
    let Some(close) = close else {
        return Err((
            "unterminated quote".into(),
            "close the quote on the same line; values must fit on one line",
        ));
    };
    let rest = value[close + 1..].trim_start();
    if !rest.is_empty() && !rest.starts_with('#') {
        return Err((
            "text after the closing quote".into(),
            "put the whole value inside the quotes; a comment after a value starts with ` #`",
        ));
    }
    if quote == '\'' {
        return Ok(chars);
    }
    let mut out = String::with_capacity(chars.len());
    let mut it = chars.chars().peekable();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match it.peek().copied() {
            Some('\\') => out.push('\\'),
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('"') => out.push('"'),
            Some('a' | 'b' | 'f' | 'v' | '0' | 'c' | '$') => {
                return Err((
                    "an escape sequence docker compose and other .env readers read differently"
                        .into(),
                    "write the value in single quotes, or without the backslash",
                ))
            }
            _ => {
                out.push('\\');
                continue;
            }
        }
        it.next();
    }
    Ok(out)
}

/// A value dotenvy reads as it is written: no quotes, escapes, comments, spaces or `$`.
fn is_plain(value: &str) -> bool {
    !value.is_empty()
        && !value.contains(|c: char| {
            c.is_whitespace() || c.is_control() || matches!(c, '\\' | '\'' | '"' | '#' | '$')
        })
}

/// Says why dotenvy refused a value, for the common mistakes.
fn why_malformed(value: &str) -> (String, &'static str) {
    let Some(quote) = value.chars().next().filter(|c| *c == '\'' || *c == '"') else {
        if value.contains(char::is_whitespace) {
            return (
                "a value with spaces must be quoted".into(),
                "put the value in single quotes, e.g. KEY='two words' (or end it before ` #` to start a comment)",
            );
        }
        return (
            "malformed value".into(),
            "quote the value: KEY='value' keeps every character as written",
        );
    };
    let body = &value[1..];
    // The closing quote, skipping backslash escapes inside double quotes.
    let mut close = None;
    let mut escaped = false;
    for (i, c) in body.char_indices() {
        if quote == '"' && c == '\\' && !escaped {
            escaped = true;
            continue;
        }
        if c == quote && !escaped {
            close = Some(i);
            break;
        }
        escaped = false;
    }
    match close {
        None => (
            "unterminated quote".into(),
            "close the quote on the same line; values must fit on one line",
        ),
        Some(_) => (
            "text after the closing quote".into(),
            "put the whole value inside the quotes; a comment after a value starts with ` #`",
        ),
    }
}

/// A message with every invisible or control character spelled out (`\n`, `\u{200b}`), so the
/// operator sees what is really in the file, and every quoted value longer than 80 characters
/// cut short, so a pasted blob does not bury the message.
pub fn readable(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    for (i, part) in message.split('`').enumerate() {
        if i > 0 {
            out.push('`');
        }
        let visible = escape_invisible(part);
        let count = visible.chars().count();
        if i % 2 == 1 && count > 80 {
            out.extend(visible.chars().take(60));
            out.push_str(&format!("…({count} characters)"));
        } else {
            out.push_str(&visible);
        }
    }
    out
}

/// A key for a problem's location: invisible characters spelled out, very long keys cut short.
pub fn readable_key(key: &str) -> String {
    let key = escape_invisible(key);
    let count = key.chars().count();
    if count > 80 {
        let cut: String = key.chars().take(60).collect();
        format!("{cut}…({count} characters)")
    } else {
        key
    }
}

/// Control characters and the invisible format characters (zero-width, bidi, BOM, no-break
/// space) as escapes; everything else, unicode included, as it is.
pub fn escape_invisible(s: &str) -> String {
    if !s.chars().any(is_invisible) {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if is_invisible(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

fn is_invisible(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{a0}' | '\u{ad}' | '\u{34f}' | '\u{61c}' | '\u{115f}' | '\u{1160}'
            | '\u{17b4}' | '\u{17b5}' | '\u{180e}' | '\u{2000}'..='\u{200f}'
            | '\u{2028}'..='\u{202f}' | '\u{205f}'..='\u{206f}' | '\u{3000}'
            | '\u{3164}' | '\u{feff}' | '\u{ffa0}' | '\u{fff9}'..='\u{fffb}')
}

fn shorten(s: &str) -> String {
    const MAX: usize = 60;
    if s.chars().count() <= MAX {
        s.to_string()
    } else {
        let cut: String = s.chars().take(MAX).collect();
        format!("{cut}…")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(text: &str) -> (IndexMap<String, Entry>, Vec<ManifestProblem>) {
        let (p, problems) = parse(Path::new(".env"), text);
        (p.entries, problems)
    }

    #[test]
    fn tenant_lines_may_repeat() {
        let (p, problems) = parse(Path::new(".env"), "TENANT=a\nX=1\nTENANT=b\n");
        assert!(problems.is_empty());
        let names: Vec<&str> = p.tenants.iter().map(|e| e.value.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(p.tenants[1].line, 3);
    }

    #[test]
    fn reads_plain_quoted_and_exported_values_with_lines() {
        let (e, p) = run("# c\n\nA=1\nexport B=\"two words\"\nC='x$y'\nD=v # note\n");
        assert!(p.is_empty(), "{p:?}");
        assert_eq!(e["A"].value, "1");
        assert_eq!(e["A"].line, 3);
        assert_eq!(e["B"].value, "two words");
        assert_eq!(e["C"].value, "x$y");
        assert_eq!(e["D"].value, "v");
    }

    #[test]
    fn plain_values_read_as_dotenvy_reads_them() {
        for v in [
            "20000-20099",
            "ghcr.io/a/b:1.2@sha256:00",
            "x=y,z+w~%!*?&^;|<>()[]{}",
            "héllo☃",
            "a:b/c@d",
        ] {
            assert!(is_plain(v), "{v}");
            let line = format!("K={v}");
            let slow = dotenvy::from_read_iter(line.as_bytes())
                .next()
                .unwrap()
                .unwrap()
                .1;
            assert_eq!(unquote("K", v).unwrap(), slow, "{v}");
        }
        for v in ["a b", "a#b", "a\\nb", "'a'", "\"a\"", "", "a\tb"] {
            assert!(!is_plain(v), "{v}");
        }
    }

    #[test]
    fn says_why_a_value_is_malformed() {
        let (_, p) = run("A=two words\nB=\"x\" y\nC='open\nD=\"a\\\"b\n");
        let msgs: Vec<String> = p.iter().map(|p| p.to_string()).collect();
        assert!(
            msgs[0].contains(":1: A: a value with spaces must be quoted"),
            "{msgs:#?}"
        );
        assert!(
            msgs[1].contains(":2: B: text after the closing quote"),
            "{msgs:#?}"
        );
        assert!(msgs[2].contains(":3: C: unterminated quote"), "{msgs:#?}");
        assert!(msgs[3].contains(":4: D: unterminated quote"), "{msgs:#?}");
    }

    #[test]
    fn byte_order_mark_and_invisible_characters_are_shown() {
        let (e, p) = run("\u{feff}A=1\n");
        assert_eq!(e["A"].value, "1");
        assert!(p[0]
            .to_string()
            .contains(":1: the file starts with a byte-order mark"));
        assert_eq!(readable("`a\u{200b}b\nc`"), "`a\\u{200b}b\\nc`");
        let long = readable(&format!("`{}` is bad", "x".repeat(500)));
        assert!(
            long.ends_with("…(500 characters)` is bad") && long.len() < 100,
            "{long}"
        );
        assert_eq!(readable("`héllo ☃`"), "`héllo ☃`");
    }

    #[test]
    fn reports_malformed_duplicate_dollar_and_unterminated() {
        let (_, p) = run("A=1\nA=2\njunk\nlower=1\nB=$HOME\nC=\"open\n");
        let msgs: Vec<String> = p.iter().map(|p| p.to_string()).collect();
        assert_eq!(p.len(), 5, "{msgs:#?}");
        assert!(msgs[0].contains(":2: A: duplicate key (first set on line 1)"));
        assert!(msgs[1].contains(":3: expected KEY=value"));
        assert!(msgs[2].contains(":4: `lower` is not a valid key"));
        assert!(msgs[3].contains(":5: B: a `$` outside single quotes"));
        assert!(msgs[4].contains(":6: C: unterminated quote"));
    }
}
