//! Secret redaction for every line of user content stackgen prints (diffs, manifest problems).
//!
//! The manifest's secrets (the catalog's generated and operator-supplied secrets of every
//! tenant, `Catalog::all_secret_names()`) are registered when a manifest is read; `text` then
//! replaces each registered value, and the value after any `<PREFIX>__<SECRET>` key (`KEY=v`,
//! `KEY: v`), with a marker naming the key. The second rule catches a secret stackgen has not read
//! (an old value in a stale file, a rotated one), because the key sits next to it on the line.

use std::sync::Mutex;

use crate::platform::catalog::Catalog;

/// Shorter values are not redacted by value: an operator secret of three characters would
/// mask every "abc" in a diff. (Generated secrets have 40 characters; the key rule still
/// catches short ones written next to their key.)
pub const MIN_LEN: usize = 6;

/// `(key, value)` of every secret read in this process, longest value first.
static SECRETS: Mutex<Vec<(String, String)>> = Mutex::new(Vec::new());

/// True for `<PREFIX>__<SECRET>` where `<SECRET>` is a catalog secret (generated or
/// operator-supplied), whichever tenant the prefix names.
pub fn is_secret_key(key: &str) -> bool {
    key.split_once("__").is_some_and(|(prefix, name)| {
        !prefix.is_empty() && Catalog::get().all_secret_names().any(|s| s == name)
    })
}

/// Remembers the secret values among `entries` (key, value) for `text`.
pub fn register<'a>(entries: impl IntoIterator<Item = (&'a str, &'a str)>) {
    let mut new: Vec<(String, String)> = entries
        .into_iter()
        .filter(|(k, v)| v.len() >= MIN_LEN && is_secret_key(k))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    if new.is_empty() {
        return;
    }
    let mut all = SECRETS.lock().unwrap_or_else(|e| e.into_inner());
    new.retain(|n| !all.contains(n));
    all.extend(new);
    all.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then_with(|| a.cmp(b)));
}

/// `text` with every registered secret, and every value next to a secret key, replaced.
pub fn text(text: &str) -> String {
    let all = SECRETS.lock().unwrap_or_else(|e| e.into_inner());
    with(text, &all)
}

/// `text` with the given secrets (key, value) and every value next to a secret key replaced.
pub fn with(text: &str, secrets: &[(String, String)]) -> String {
    let mut out = text.to_string();
    for (key, value) in secrets {
        if value.len() >= MIN_LEN && out.contains(value.as_str()) {
            out = replace_whole(&out, value, &marker(key));
        }
    }
    by_key(&out)
}

/// Replaces the occurrences of `value` not glued to a letter or digit on either side: a secret
/// is a whole token in a URL, a YAML line or a sentence, while the same letters inside a longer
/// word (a 10,000-character tenant name of `a`s) are not that secret.
fn replace_whole(text: &str, value: &str, with: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(value) {
        let before = rest[..i].chars().next_back().or(out.chars().next_back());
        let after = rest[i + value.len()..].chars().next();
        let glued = |c: Option<char>| c.is_some_and(char::is_alphanumeric);
        out.push_str(&rest[..i]);
        if glued(before) || glued(after) {
            // Not a whole token: keep the first character and look again after it.
            let first = rest[i..].chars().next().map_or(1, char::len_utf8);
            out.push_str(&rest[i..i + first]);
            rest = &rest[i + first..];
        } else {
            out.push_str(with);
            rest = &rest[i + value.len()..];
        }
    }
    out.push_str(rest);
    out
}

fn marker(key: &str) -> String {
    format!("<redacted {key}>")
}

/// Replaces the value written after each secret key on a line: `KEY=v`, `KEY: v`, `KEY="v"`.
fn by_key(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&line_by_key(line));
    }
    out
}

fn is_key_char(c: char) -> bool {
    c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'
}

fn line_by_key(line: &str) -> String {
    if !line.contains("__") {
        return line.to_string();
    }
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(start) = rest.find(|c: char| c.is_ascii_uppercase()) {
        // Only a whole word is a key: `XTEAM_A__...` inside another word does not count.
        let before = &rest[..start];
        let len = rest[start..]
            .find(|c: char| !is_key_char(c))
            .unwrap_or(rest.len() - start);
        let word = &rest[start..start + len];
        out.push_str(before);
        out.push_str(word);
        rest = &rest[start + len..];
        let glued = before.chars().last().is_some_and(is_key_char);
        if glued || !is_secret_key(word) {
            continue;
        }
        // `=` or `:`, spaces, an optional quote, then the value up to whitespace or a quote.
        let sep_len = rest
            .char_indices()
            .find(|(_, c)| !matches!(c, ' ' | '\t'))
            .map_or(rest.len(), |(i, _)| i);
        let Some(sep) = rest[sep_len..]
            .chars()
            .next()
            .filter(|c| matches!(c, '=' | ':'))
        else {
            continue;
        };
        let after_sep = sep_len + sep.len_utf8();
        let lead = rest[after_sep..]
            .char_indices()
            .find(|(_, c)| !matches!(c, ' ' | '\t' | '"' | '\''))
            .map_or(rest.len() - after_sep, |(i, _)| i);
        let value_start = after_sep + lead;
        // A quoted value runs to its closing quote (spaces included), a bare one to whitespace.
        let quote = rest[after_sep..value_start]
            .chars()
            .rev()
            .find(|c| matches!(c, '"' | '\''));
        let value_len = rest[value_start..]
            .find(|c: char| match quote {
                Some(q) => c == q,
                None => c.is_whitespace() || c == '"' || c == '\'',
            })
            .unwrap_or(rest.len() - value_start);
        out.push_str(&rest[..value_start]);
        let value = &rest[value_start..value_start + value_len];
        // `${KEY}` interpolations and values already replaced stay as they are.
        if !value.is_empty() && !value.starts_with("${") && !value.starts_with("<redacted") {
            out.push_str(&marker(word));
        } else {
            out.push_str(value);
        }
        rest = &rest[value_start + value_len..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets() -> Vec<(String, String)> {
        vec![(
            "TEAM_A__POSTGRES_PASSWORD".into(),
            "s3cretvalue0000000000".into(),
        )]
    }

    #[test]
    fn known_values_are_replaced_anywhere() {
        let out = with("-  PASSWORD: s3cretvalue0000000000 # x\n", &secrets());
        assert_eq!(
            out,
            "-  PASSWORD: <redacted TEAM_A__POSTGRES_PASSWORD> # x\n"
        );
    }

    #[test]
    fn values_next_to_a_secret_key_are_replaced_even_when_unknown() {
        for (line, want) in [
            (
                "+TEAM_B__REDIS_PASSWORD=oldvalue",
                "+TEAM_B__REDIS_PASSWORD=<redacted TEAM_B__REDIS_PASSWORD>",
            ),
            (
                "  TEAM_B__REDIS_PASSWORD: \"x y\"",
                "  TEAM_B__REDIS_PASSWORD: \"<redacted TEAM_B__REDIS_PASSWORD>\"",
            ),
            (
                "url: redis://:${TEAM_B__REDIS_PASSWORD}@redis",
                "url: redis://:${TEAM_B__REDIS_PASSWORD}@redis",
            ),
            ("TEAM_B__DOMAIN=a.example", "TEAM_B__DOMAIN=a.example"),
            (
                "TEAM_B__REDIS_PASSWORD is missing",
                "TEAM_B__REDIS_PASSWORD is missing",
            ),
        ] {
            assert_eq!(with(line, &[]), want, "{line}");
        }
    }

    #[test]
    fn only_whole_tokens_are_replaced() {
        let s = vec![("A__REDIS_PASSWORD".to_string(), "aaaaaa".to_string())];
        assert_eq!(with("xaaaaaaa", &s), "xaaaaaaa");
        assert_eq!(
            with("redis://:aaaaaa@h aaaaaa.", &s),
            "redis://:<redacted A__REDIS_PASSWORD>@h <redacted A__REDIS_PASSWORD>."
        );
    }

    #[test]
    fn short_values_are_not_masked_everywhere() {
        let s = vec![("A__REDIS_PASSWORD".to_string(), "abc".to_string())];
        assert_eq!(with("abcdef", &s), "abcdef");
    }
}
