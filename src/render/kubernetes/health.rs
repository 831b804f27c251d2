//! Health on Kubernetes: compose healthchecks become readiness, liveness and startup probes
//! (the same command and timing), and compose's health-gated start order becomes an init
//! container that waits for the dependencies' Services with a program the image has.

use anyhow::{bail, Context, Result};
use serde_yaml::Value;

use super::objects::{map, strings};
use super::secrets::Translator;

/// Seconds in a compose duration (`10s`, `1m30s`, `500ms`), rounded up to whole seconds.
pub fn seconds(v: Option<&Value>) -> Result<Option<u64>> {
    let Some(v) = v else { return Ok(None) };
    let s = match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => format!("{n}s"),
        _ => bail!("unreadable duration {v:?}"),
    };
    let mut millis: u64 = 0;
    let mut num = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let unit = if c == 'm' && chars.peek() == Some(&'s') {
            chars.next();
            1
        } else {
            match c {
                'h' => 3_600_000,
                'm' => 60_000,
                's' => 1000,
                _ => bail!("unreadable duration `{s}`"),
            }
        };
        let n: u64 = num
            .parse()
            .with_context(|| format!("unreadable duration `{s}`"))?;
        millis += n * unit;
        num.clear();
    }
    if !num.is_empty() {
        bail!("unreadable duration `{s}`: a number without a unit");
    }
    Ok(Some(millis.div_ceil(1000)))
}

/// Readiness, liveness and (with a start period) startup probes from a compose healthcheck:
/// the same command, interval, timeout and retries. The start period becomes a startup probe
/// that allows it on top of the retries, as compose does not count failures in it.
pub fn probes(tr: &Translator, hc: Option<&Value>) -> Result<Vec<(&'static str, Value)>> {
    let Some(hc) = hc.and_then(Value::as_mapping) else {
        return Ok(Vec::new());
    };
    let test: Vec<String> = match hc.get("test") {
        Some(Value::Sequence(items)) => items
            .iter()
            .map(|i| i.as_str().unwrap_or_default().to_string())
            .collect(),
        Some(Value::String(s)) => vec!["CMD-SHELL".into(), s.clone()],
        _ => return Ok(Vec::new()),
    };
    let command: Vec<String> = match test.split_first() {
        Some((kind, rest)) if kind == "CMD" => rest.to_vec(),
        Some((kind, rest)) if kind == "CMD-SHELL" => {
            vec!["sh".into(), "-c".into(), rest.join(" ")]
        }
        _ => return Ok(Vec::new()),
    };
    let command: Vec<String> = command
        .iter()
        .map(|c| tr.literal(c))
        .collect::<Result<_>>()?;
    let interval = seconds(hc.get("interval"))?.unwrap_or(30).max(1);
    let timeout = seconds(hc.get("timeout"))?.unwrap_or(30).max(1);
    let retries = hc
        .get("retries")
        .and_then(Value::as_u64)
        .unwrap_or(3)
        .max(1);
    let probe = |failures: u64| {
        map([
            ("exec", map([("command", strings(&command))])),
            ("periodSeconds", interval.into()),
            ("timeoutSeconds", timeout.into()),
            ("failureThreshold", failures.into()),
        ])
    };
    let mut out = vec![
        ("readinessProbe", probe(retries)),
        ("livenessProbe", probe(retries)),
    ];
    if let Some(start) = seconds(hc.get("start_period"))?.filter(|s| *s > 0) {
        out.push(("startupProbe", probe(start.div_ceil(interval) + retries)));
    }
    Ok(out)
}

/// Waits for `targets` (`host:port`) with a program the image has (its contract's
/// `binaries`): python3, node or bash, in that order. A Service answers only once a pod behind
/// it is ready, so a connection means the dependency passed its readiness probe, which is
/// compose's `service_healthy`. `None` when the image has none of them.
pub fn wait_command(binaries: &[String], targets: &[String]) -> Option<Vec<String>> {
    const PYTHON: &str = "import socket, sys, time\nfor target in sys.argv[1:]:\n    host, port = target.rsplit(':', 1)\n    while True:\n        try:\n            socket.create_connection((host, int(port)), timeout=2).close()\n            break\n        except OSError:\n            print('waiting for ' + target, flush=True)\n            time.sleep(2)\n";
    const NODE: &str = "const net = require('net');\nconst targets = process.argv.slice(1);\nconst next = () => {\n  const t = targets.shift();\n  if (!t) return;\n  const i = t.lastIndexOf(':');\n  const attempt = () => {\n    const s = net.connect(Number(t.slice(i + 1)), t.slice(0, i), () => { s.destroy(); next(); });\n    s.setTimeout(2000, () => s.destroy(new Error('timeout')));\n    s.on('error', () => { console.log('waiting for ' + t); setTimeout(attempt, 2000); });\n  };\n  attempt();\n};\nnext();\n";
    // `read -t` on a pipe nobody writes is bash's sleep: the images need not have one.
    const BASH: &str = "for t in \"$@\"; do until (exec 3<>\"/dev/tcp/${t%:*}/${t##*:}\") 2>/dev/null; do echo \"waiting for $t\"; read -rt 2 <> <(:) || :; done; done";
    let has = |b: &str| binaries.iter().any(|x| x == b);
    let mut out: Vec<String> = if has("python3") {
        vec!["python3".into(), "-c".into(), PYTHON.into()]
    } else if has("node") {
        vec!["node".into(), "-e".into(), NODE.into()]
    } else if has("bash") {
        vec!["bash".into(), "-c".into(), BASH.into(), "wait".into()]
    } else {
        return None;
    };
    out.extend(targets.iter().cloned());
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compose_durations_become_seconds() {
        let s = |v: &str| seconds(Some(&Value::from(v))).unwrap();
        assert_eq!(s("10s"), Some(10));
        assert_eq!(s("1m30s"), Some(90));
        assert_eq!(s("500ms"), Some(1));
        assert_eq!(s("2h"), Some(7200));
        assert!(seconds(Some(&Value::from("10"))).is_err());
        assert!(seconds(Some(&Value::from("10x"))).is_err());
    }

    #[test]
    fn waits_use_only_programs_the_image_has() {
        let b = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let t = b(&["postgres:5432"]);
        assert_eq!(
            wait_command(&b(&["sh", "bash", "python3"]), &t).unwrap()[0],
            "python3"
        );
        assert_eq!(wait_command(&b(&["sh", "node"]), &t).unwrap()[0], "node");
        assert_eq!(wait_command(&b(&["sh", "bash"]), &t).unwrap()[0], "bash");
        assert!(wait_command(&b(&["sh", "wget"]), &t).is_none());
        // Nothing in the scripts that Kubernetes would expand.
        for bins in [&["python3"][..], &["node"], &["bash"]] {
            let cmd = wait_command(&b(bins), &t).unwrap().join(" ");
            assert!(!cmd.contains("$(") && !cmd.contains("$$"), "{cmd}");
        }
    }
}
