//! Changing single values in an existing manifest (a new tailscale key, rotated secrets) without
//! touching any other byte: comments, order, blank lines and the other values stay as they are.
//!
//! The result is validated as a whole before it is written, and written atomically with mode
//! 0600 (it holds every tenant's secrets) and its previous owner, so a `sudo stackgen ...` does
//! not leave the operator's manifest owned by root.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use anyhow::{bail, Context, Result};

use super::Manifest;
use crate::output::{write_atomic, Durability};

/// Sets `key=value` on the line that defines `key`; every other line is kept byte for byte.
/// The value must need no quoting (generated secrets and tailscale keys never do).
pub fn set_value(text: &str, key: &str, value: &str) -> Result<String> {
    if value
        .chars()
        .any(|c| c.is_whitespace() || "\"'#$\\".contains(c))
    {
        bail!("refusing to write a value for {key} that would need quoting");
    }
    let mut out = String::with_capacity(text.len() + value.len());
    let mut found = 0;
    for line in text.split_inclusive('\n') {
        let body = line.trim_end_matches(['\n', '\r']);
        let ending = &line[body.len()..];
        let indent_len = body.len() - body.trim_start().len();
        let (indent, rest) = body.split_at(indent_len);
        let (export, rest) = match rest.strip_prefix("export ") {
            Some(r) => ("export ", r),
            None => ("", rest),
        };
        match rest.split_once('=') {
            Some((k, _)) if k.trim_end() == key && !rest.starts_with('#') => {
                found += 1;
                out.push_str(&format!("{indent}{export}{key}={value}{ending}"));
            }
            _ => out.push_str(line),
        }
    }
    match found {
        1 => Ok(out),
        0 => bail!("the manifest has no line {key}=..."),
        n => bail!("the manifest defines {key} {n} times"),
    }
}

/// Validates `text` as a manifest and writes it over `path`: atomically, synced, mode 0600,
/// keeping the file's owner and group.
/// A manifest that is a symbolic link is written through: the temporary file goes beside the
/// file the link names and replaces that file, so the link stays a link (fsafe).
pub fn write(path: &Path, text: &str) -> Result<()> {
    Manifest::from_text(path, text)?;
    let target = crate::output::fsafe::manifest_target(path)?;
    let owner = std::fs::symlink_metadata(&target)
        .ok()
        .map(|m| (m.uid(), m.gid()));
    write_atomic(&target, text.as_bytes(), Some(0o600), Durability::Synced)?;
    if let Some((uid, gid)) = owner {
        let now = std::fs::symlink_metadata(&target)?;
        if (now.uid(), now.gid()) != (uid, gid) {
            std::os::unix::fs::lchown(&target, Some(uid), Some(gid))
                .with_context(|| format!("giving {} back to {uid}:{gid}", path.display()))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_one_line_changes() {
        let text = "# head\nA=1\n  export B=old # not a comment in dotenv\nB_C=2\r\nC=3";
        let out = set_value(text, "B", "new").unwrap();
        assert_eq!(out, "# head\nA=1\n  export B=new\nB_C=2\r\nC=3");
        let out = set_value(text, "C", "x").unwrap();
        assert_eq!(
            out,
            "# head\nA=1\n  export B=old # not a comment in dotenv\nB_C=2\r\nC=x"
        );
        assert!(set_value(text, "D", "x").is_err());
        assert!(set_value("A=1\nA=2\n", "A", "x").is_err());
        assert!(set_value(text, "A", "a b").is_err());
        assert!(set_value("#A=1\nA=2\n", "A", "3").unwrap() == "#A=1\nA=3\n");
    }
}
