//! Validators for single manifest values: names, domains, paths, images, ports, secrets.
//!
//! Each returns `Err(message, hint)` that the manifest loader turns into a located problem.

pub type Invalid = (String, String);

fn invalid(message: impl Into<String>, hint: impl Into<String>) -> Invalid {
    (message.into(), hint.into())
}

/// Tenant names become compose project names, network names and env-key prefixes.
pub fn tenant_name(name: &str) -> Result<(), Invalid> {
    let hint = "use lower-case letters, digits and single dashes, starting with a letter, at most 30 characters (e.g. team-a)";
    if name.is_empty() {
        return Err(invalid("empty tenant name", hint));
    }
    if name.len() > 30 {
        return Err(invalid(
            format!("tenant name `{name}` is longer than 30 characters"),
            hint,
        ));
    }
    let ok_chars = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    let starts = name.starts_with(|c: char| c.is_ascii_lowercase());
    if !ok_chars || !starts || name.ends_with('-') || name.contains("--") {
        return Err(invalid(
            format!("`{name}` is not a valid tenant name"),
            hint,
        ));
    }
    if name == super::edge::NAME {
        return Err(invalid(
            format!("`{name}` is reserved: stacks/{name}-stack.yml is the platform's front door"),
            "choose another tenant name",
        ));
    }
    Ok(())
}

/// `team-a` → `TEAM_A`, the prefix of the tenant's keys (`TEAM_A__VECTOR_DB`).
pub fn env_prefix(tenant: &str) -> String {
    tenant.replace('-', "_").to_ascii_uppercase()
}

pub fn domain(value: &str) -> Result<(), Invalid> {
    let hint = "use a lower-case DNS name such as example.com";
    if value.is_empty() || value.len() > 200 {
        return Err(invalid("empty or too long domain", hint));
    }
    for label in value.split('.') {
        let ok = !label.is_empty()
            && label.len() <= 63
            && label
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !label.starts_with('-')
            && !label.ends_with('-');
        if !ok {
            return Err(invalid(
                format!("`{value}` is not a valid domain name"),
                hint,
            ));
        }
    }
    Ok(())
}

/// `BASE_DIR`: where tenant data lives; destructive commands are scoped below it.
pub fn base_dir(value: &str) -> Result<(), Invalid> {
    let hint = "use an absolute, normalised directory path such as /srv/ai-platform";
    if !value.starts_with('/') {
        return Err(invalid(format!("`{value}` is not an absolute path"), hint));
    }
    if value == "/" {
        return Err(invalid("BASE_DIR must not be the root directory", hint));
    }
    if value.ends_with('/') || value.contains("//") {
        return Err(invalid(
            format!("`{value}` is not normalised (trailing or double slash)"),
            hint,
        ));
    }
    if value.split('/').any(|c| c == "." || c == "..") {
        return Err(invalid(format!("`{value}` contains `.` or `..`"), hint));
    }
    // Tenant data lives below it, a few levels deep: keep far from the kernel's path limits.
    if value.len() > 1024 {
        return Err(invalid(
            format!("`{value}` is longer than 1024 bytes"),
            "use a shorter path",
        ));
    }
    if value.split('/').any(|c| c.len() > 255) {
        return Err(invalid(
            format!("`{value}` has a directory name longer than 255 bytes, the file-system limit"),
            "use a shorter path",
        ));
    }
    if value
        .chars()
        .any(|c| c.is_control() || c == ':' || c == '$' || c == '\'' || c == '"' || c == '\\')
    {
        return Err(invalid(
            format!("`{value}` contains a character compose volume specs cannot carry"),
            "avoid `:`, quotes, `$`, backslashes and control characters in BASE_DIR",
        ));
    }
    Ok(())
}

/// A docker image reference: `[registry[:port]/]path[:tag][@sha256:digest]`, pinned.
pub fn image(value: &str) -> Result<(), Invalid> {
    let hint = "use a pinned reference such as registry.example:5000/team/app:1.2.3 or name@sha256:<digest>";
    let (name, digest) = match value.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (value, None),
    };
    if let Some(d) = digest {
        let hex = d.strip_prefix("sha256:").unwrap_or("");
        if hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(invalid(format!("`{value}` has a malformed digest"), hint));
        }
    }
    let last_slash = name.rfind('/').map_or(0, |i| i + 1);
    let (repo, tag) = match name[last_slash..].rfind(':') {
        Some(i) => (&name[..last_slash + i], Some(&name[last_slash + i + 1..])),
        None => (name, None),
    };
    let repo_ok = !repo.is_empty()
        && repo.split('/').enumerate().all(|(i, part)| {
            !part.is_empty()
                && part.chars().all(|c| {
                    c.is_ascii_lowercase()
                        || c.is_ascii_digit()
                        || matches!(c, '.' | '_' | '-')
                        || (i == 0 && c == ':')
                })
        });
    if !repo_ok {
        return Err(invalid(
            format!("`{value}` is not a valid image reference"),
            hint,
        ));
    }
    match tag {
        Some(t) => {
            let ok = !t.is_empty()
                && t.len() <= 128
                && t.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
            if !ok {
                return Err(invalid(format!("`{value}` has an invalid tag"), hint));
            }
            if t == "latest" && digest.is_none() {
                return Err(invalid(
                    format!("`{value}` uses the moving tag `latest`"),
                    hint,
                ));
            }
        }
        None if digest.is_none() => {
            return Err(invalid(
                format!("`{value}` has no tag (that means `latest`)"),
                hint,
            ));
        }
        None => {}
    }
    Ok(())
}

/// `KUBE_STORAGE_CLASS`: a Kubernetes object name (a DNS-1123 subdomain).
pub fn kube_name(value: &str) -> Result<(), Invalid> {
    let ok = value.len() <= 253
        && value.split('.').all(|part| {
            !part.is_empty()
                && !part.starts_with('-')
                && !part.ends_with('-')
                && part
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        });
    if ok {
        Ok(())
    } else {
        Err(invalid(
            format!("`{value}` is not a Kubernetes storage class name"),
            "use lower-case letters, digits, `-` and `.` (`kubectl get storageclass` lists them), or delete the line for the cluster's default",
        ))
    }
}

/// `IMAGE_REGISTRY`: a host[:port][/path] prefix for a private mirror.
pub fn registry(value: &str) -> Result<(), Invalid> {
    let ok = !value.is_empty()
        && !value.ends_with('/')
        && value.split('/').all(|p| {
            !p.is_empty()
                && p.chars().all(|c| {
                    c.is_ascii_lowercase()
                        || c.is_ascii_digit()
                        || matches!(c, '.' | '-' | '_' | ':')
                })
        });
    if ok {
        Ok(())
    } else {
        Err(invalid(
            format!("`{value}` is not a registry prefix"),
            "use host[:port][/path], e.g. mirror.internal:5000/ai",
        ))
    }
}

pub fn id(value: &str) -> Result<u32, Invalid> {
    let hint = "use a number from 1 to 2147483647 (not 0: services must not run as root)";
    let n: u32 = value
        .parse()
        .map_err(|_| invalid(format!("`{value}` is not a number"), hint))?;
    if n == 0 || n > 2_147_483_647 {
        return Err(invalid(format!("{n} is out of range"), hint));
    }
    Ok(n)
}

/// `20000-20099`: the tenant's host ports.
pub fn port_range(value: &str) -> Result<(u16, u16), Invalid> {
    let hint =
        "use START-END with 1 <= START <= END <= 65535 and at least 32 ports, e.g. 20000-20099";
    let (a, b) = value
        .split_once('-')
        .ok_or_else(|| invalid(format!("`{value}` is not a START-END range"), hint))?;
    let parse = |s: &str| -> Result<u16, Invalid> {
        let n: u32 = s
            .trim()
            .parse()
            .map_err(|_| invalid(format!("`{s}` is not a port number"), hint))?;
        if n == 0 || n > 65535 {
            return Err(invalid(format!("port {n} is outside 1..65535"), hint));
        }
        Ok(n as u16)
    };
    let (a, b) = (parse(a)?, parse(b)?);
    if a > b {
        return Err(invalid(
            format!("range {a}-{b} ends before it starts"),
            hint,
        ));
    }
    if u32::from(b) - u32::from(a) + 1 < 32 {
        return Err(invalid(
            format!("range {a}-{b} has fewer than 32 ports"),
            hint,
        ));
    }
    Ok((a, b))
}

/// Secrets go into URLs and compose interpolation: only URL-safe unreserved characters.
pub fn secret(value: &str, operator_supplied: bool) -> Result<(), Invalid> {
    if value.is_empty() {
        if operator_supplied {
            return Ok(());
        }
        return Err(invalid(
            "empty secret",
            "delete the line and run `stackgen init --non-interactive` to generate it",
        ));
    }
    if !value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '~'))
    {
        return Err(invalid(
            "secret contains characters that break URLs or compose interpolation",
            "use only letters, digits and - _ . ~ (generated secrets are alphanumeric)",
        ));
    }
    if !operator_supplied && value.len() < 16 {
        return Err(invalid(
            "secret is shorter than 16 characters",
            "delete the line and run `stackgen init --non-interactive` to generate a 40-character secret",
        ));
    }
    Ok(())
}

/// Model names as ollama spells them, e.g. `llama3.1:8b`.
pub fn model(value: &str) -> Result<(), Invalid> {
    let ok = !value.is_empty()
        && value.len() <= 100
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':' | '/'));
    if ok {
        Ok(())
    } else {
        Err(invalid(
            format!("`{value}` is not a model name"),
            "use a model name such as llama3.1:8b",
        ))
    }
}

/// An e-mail address for ACME account registration; kept simple on purpose.
pub fn email(value: &str) -> Result<(), Invalid> {
    let ok = value.split_once('@').is_some_and(|(u, d)| {
        !u.is_empty()
            && u.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '+'))
            && domain(d).is_ok()
    });
    if ok {
        Ok(())
    } else {
        Err(invalid(
            format!("`{value}` is not an e-mail address"),
            "use e.g. ops@example.com",
        ))
    }
}

/// Edit distance, for "did you mean" suggestions.
pub fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The closest candidate within a third of the key's length, if any.
pub fn closest<'a>(key: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (distance(key, c), c))
        .filter(|(d, _)| *d <= key.len().max(3) / 3)
        .min_by_key(|(d, c)| (*d, *c))
        .map(|(_, c)| c)
}

/// The tenant setting: `<T>__DOCKER_CONTEXT`.
pub const DOCKER_CONTEXT: &str = "DOCKER_CONTEXT";

/// A Docker context name as `docker context create` accepts it.
pub fn docker_context(name: &str) -> Result<(), Invalid> {
    let ok = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '+' | '-'))
        && name.len() <= 100;
    if ok {
        Ok(())
    } else {
        Err((
            format!("`{name}` is not a Docker context name"),
            "use the name `docker context ls` shows (letters, digits, `_.+-`), or delete the line for the current context".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_names_are_checked() {
        assert!(docker_context("host-2").is_ok());
        assert!(docker_context("sg_host.2+x").is_ok());
        for bad in ["-x", "a b", "a/b", "", "ä"] {
            assert!(docker_context(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn tenant_names() {
        for ok in ["a", "team-a", "t1", "abc-123-x"] {
            assert!(tenant_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "A",
            "1a",
            "a_b",
            "a--b",
            "a-",
            "../x",
            "a/b",
            "a b",
            "é",
            &"a".repeat(31),
            "edge",
        ] {
            assert!(tenant_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn images() {
        for ok in [
            "postgres:18.1",
            "ghcr.io/a/b:v1",
            "localhost:5000/x/y:1",
            "stackgen-standin/caddy:test",
            &format!("a@sha256:{}", "0".repeat(64)),
        ] {
            assert!(image(ok).is_ok(), "{ok}");
        }
        for bad in [
            "postgres",
            "postgres:latest",
            "Post:1",
            "a:b c",
            "a:",
            "/a:1",
            "a@sha256:12",
        ] {
            assert!(image(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ranges_and_ids() {
        assert_eq!(port_range("20000-20099").unwrap(), (20000, 20099));
        for bad in ["0-100", "1-65536", "200-100", "100-110", "x-y", "100"] {
            assert!(port_range(bad).is_err(), "{bad}");
        }
        assert!(id("0").is_err() && id("abc").is_err() && id("-1").is_err());
        assert_eq!(id("2001").unwrap(), 2001);
    }

    #[test]
    fn base_dirs() {
        assert!(base_dir("/srv/ai").is_ok());
        for bad in ["", "/", "srv", "/srv/../etc", "/srv/", "/a:b", "/a//b"] {
            assert!(base_dir(bad).is_err(), "{bad}");
        }
        assert!(base_dir(&format!("/{}", "a".repeat(255))).is_ok());
        assert!(base_dir(&format!("/{}", "a".repeat(256))).is_err());
        assert!(base_dir(&"/aaaaaaa".repeat(200)).is_err());
    }

    #[test]
    fn suggestions() {
        assert_eq!(closest("DOMIAN", ["DOMAIN", "BASE_DIR"]), Some("DOMAIN"));
        assert_eq!(closest("ZZZZZZ", ["DOMAIN"]), None);
    }
}
