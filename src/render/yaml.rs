//! A small block-style YAML emitter for the generated stack files.
//!
//! Why not serde_yaml's: it leaves strings such as `20001:20001`, `yes` or `0.0.0.0:80:80` plain,
//! which YAML 1.1 readers take for sexagesimal numbers or booleans (rust-conventions B1), and it
//! was half the time of rendering a thousand tenants. Here a string is written plain only when no
//! YAML version can read it as anything but that string; everything else is double-quoted with
//! JSON escapes, which YAML accepts verbatim.

use serde_yaml::Value;

/// The document as block-style YAML, two-space indented, sequences indented under their key.
pub fn to_string(value: &Value) -> String {
    let mut out = String::with_capacity(16 * 1024);
    match value {
        Value::Mapping(m) if !m.is_empty() => mapping(m, 0, &mut out),
        Value::Sequence(s) if !s.is_empty() => sequence(s, 0, &mut out),
        other => {
            out.push_str(&scalar(other));
            out.push('\n');
        }
    }
    out
}

fn pad(out: &mut String, n: usize) {
    out.extend(std::iter::repeat_n(' ', n));
}

fn mapping(m: &serde_yaml::Mapping, indent: usize, out: &mut String) {
    for (i, (k, v)) in m.iter().enumerate() {
        if i > 0 {
            pad(out, indent);
        }
        out.push_str(&scalar(k));
        out.push(':');
        match (k.as_str(), v) {
            // Command vectors read best on one line, as in hand-written compose files.
            (Some("test" | "command" | "entrypoint"), Value::Sequence(items))
                if !items.is_empty() && items.iter().all(|i| matches!(i, Value::String(_))) =>
            {
                let quoted: Vec<String> = items
                    .iter()
                    .map(|i| {
                        serde_json::to_string(i.as_str().unwrap_or_default())
                            .expect("strings serialize")
                    })
                    .collect();
                out.push_str(" [");
                out.push_str(&quoted.join(", "));
                out.push_str("]\n");
            }
            _ => value_after_key(v, indent, out),
        }
    }
}

fn value_after_key(v: &Value, indent: usize, out: &mut String) {
    match v {
        Value::Mapping(m) if !m.is_empty() => {
            out.push('\n');
            pad(out, indent + 2);
            mapping(m, indent + 2, out);
        }
        Value::Sequence(s) if !s.is_empty() => {
            out.push('\n');
            pad(out, indent + 2);
            sequence(s, indent + 2, out);
        }
        Value::Tagged(t) => value_after_key(&t.value, indent, out),
        other => {
            out.push(' ');
            out.push_str(&scalar(other));
            out.push('\n');
        }
    }
}

fn sequence(s: &[Value], indent: usize, out: &mut String) {
    for (i, item) in s.iter().enumerate() {
        if i > 0 {
            pad(out, indent);
        }
        out.push_str("- ");
        match item {
            Value::Mapping(m) if !m.is_empty() => mapping(m, indent + 2, out),
            Value::Sequence(inner) if !inner.is_empty() => sequence(inner, indent + 2, out),
            other => {
                out.push_str(&scalar(other));
                out.push('\n');
            }
        }
    }
}

fn scalar(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => string(s),
        Value::Mapping(_) => "{}".into(),
        Value::Sequence(_) => "[]".into(),
        Value::Tagged(t) => scalar(&t.value),
    }
}

/// Plain when unambiguous in YAML 1.1 and 1.2, else a JSON string.
fn string(s: &str) -> String {
    if is_plain_safe(s) {
        s.to_string()
    } else {
        serde_json::to_string(s).expect("strings always serialize")
    }
}

fn is_plain_safe(s: &str) -> bool {
    const SPECIAL: [&str; 11] = [
        "y", "n", "yes", "no", "on", "off", "true", "false", "null", "~", "nan",
    ];
    let Some(first) = s.chars().next() else {
        return false;
    };
    if !(first.is_ascii_alphabetic() || first == '/' || first == '_') {
        return false; // digits, signs and dots could start a number
    }
    if SPECIAL.iter().any(|w| s.eq_ignore_ascii_case(w)) || s.eq_ignore_ascii_case(".inf") {
        return false;
    }
    s.chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '/' | '-' | '@' | '='))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ambiguous_strings_are_quoted_and_the_output_parses_back_identically() {
        let src = r#"
name: acme
services:
  db:
    user: "20001:20001"
    command: ["redis-server", "--appendonly", "yes", "$$HOME"]
    environment: {A: "on", B: "1.5", C: "plain-value_1", D: "", E: "a \"q\" b"}
    ports: ["0.0.0.0:80:80"]
    read_only: true
    healthcheck: {test: ["CMD", "x"], retries: 6}
    deps: {}
"#;
        let v: Value = serde_yaml::from_str(src).unwrap();
        let out = to_string(&v);
        assert!(out.contains("user: \"20001:20001\"\n"), "{out}");
        assert!(
            out.contains("command: [\"redis-server\", \"--appendonly\", \"yes\", \"$$HOME\"]\n"),
            "{out}"
        );
        assert!(
            out.contains("A: \"on\"\n")
                && out.contains("B: \"1.5\"\n")
                && out.contains("C: plain-value_1\n")
        );
        assert!(out.contains("    - \"0.0.0.0:80:80\"\n"), "{out}");
        assert!(out.contains("    deps: {}\n"), "{out}");
        let back: Value = serde_yaml::from_str(&out).unwrap();
        assert_eq!(back, v);
    }
}
