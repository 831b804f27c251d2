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
}

/// All entries in file order, keyed by name; duplicates and malformed lines are reported.
pub fn parse(path: &Path, text: &str) -> (Parsed, Vec<ManifestProblem>) {
    let mut entries: IndexMap<String, Entry> = IndexMap::new();
    let mut tenants: Vec<Entry> = Vec::new();
    let mut problems = Vec::new();
    let problem = |line: usize, key: Option<&str>, message: String, hint: &str| ManifestProblem {
        file: path.to_path_buf(),
        line: Some(line),
        key: key.map(str::to_string),
        message,
        hint: hint.to_string(),
    };

    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let body = trimmed.strip_prefix("export ").unwrap_or(trimmed);
        let Some((key, value)) = body.split_once('=') else {
            problems.push(problem(
                line,
                None,
                format!("expected KEY=value, found `{}`", shorten(trimmed)),
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
            continue;
        }
        let value = match unquote(key, value_text) {
            Ok(v) => v,
            Err(message) => {
                problems.push(problem(
                    line,
                    Some(key),
                    message,
                    "close the quote on the same line; values must fit on one line",
                ));
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
    (Parsed { entries, tenants }, problems)
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

/// Unquotes one value the way dotenvy (and compose's env-file reader) do.
fn unquote(key: &str, value: &str) -> Result<String, String> {
    let line = format!("{key}={value}");
    let mut iter = dotenvy::from_read_iter(line.as_bytes());
    match iter.next() {
        Some(Ok((_, v))) => Ok(v),
        Some(Err(dotenvy::Error::LineParse(_, _))) => {
            Err("unterminated quote or malformed value".into())
        }
        Some(Err(e)) => Err(format!("cannot read value: {e}")),
        None => Ok(String::new()),
    }
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
