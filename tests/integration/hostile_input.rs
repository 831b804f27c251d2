//! Issue 10, the parts about hostile or careless input: the operator's shell cannot override the
//! manifest when compose runs, the manifest is read exactly as compose reads it (or refused),
//! no secret is printed in a diff or an error, and names derived from two tenants never collide
//! (a refused `add-service` leaves every file as it was).

use proptest::prelude::*;

use crate::common::*;

const BASE: &str = crate::common::minimal_manifest!();

/// Secrets of `minimal_manifest!` (tenant `acme`).
const PG: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const REDIS: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

/// A fake `docker` that logs each call's arguments to `$FAKE_DOCKER_LOG` and the whole
/// environment of every compose call (but `version`) to `$FAKE_ENV_LOG`.
const ENV_LOGGING_DOCKER: &str = r#"#!/bin/sh
PATH=/usr/local/bin:/usr/bin:/bin
echo "$*" >> "$FAKE_DOCKER_LOG"
case "$1" in
  version) echo "20.10.24"; exit 0 ;;
  compose)
    if [ "$2" = version ]; then echo "2.26.1"; exit 0; fi
    env >> "$FAKE_ENV_LOG"
    exit 0 ;;
esac
exit 0
"#;

/// The minimal manifest with BASE_DIR in the sandbox, rendered.
fn rendered() -> Sandbox {
    let s = Sandbox::new();
    s.write(".env", BASE);
    s.set_env_line("BASE_DIR", &s.path("base").display().to_string());
    s.run(&["render"]).ok();
    s
}

fn assert_no_secret(run: &Run, secrets: &[&str]) {
    for secret in secrets {
        // Any 8 consecutive characters would be a leak: the old message showed 35.
        let piece = &secret[..8.min(secret.len())];
        assert!(
            !run.stdout.contains(piece) && !run.stderr.contains(piece),
            "secret {piece}… printed\nstdout:\n{}\nstderr:\n{}",
            run.stdout,
            run.stderr
        );
    }
}

// ---- 1. the shell cannot override the manifest -------------------------------------------------

#[test]
fn a_key_exported_in_the_shell_never_reaches_compose() {
    let s = rendered();
    s.write_executable("fakebin/docker", ENV_LOGGING_DOCKER);
    let env_log = s.path("env.log");
    let path = s.path("fakebin").display().to_string();
    let docker_log = s.path("docker.log").display().to_string();
    let env_log_s = env_log.display().to_string();
    let run = s
        .run_env(
            &["logs", "acme"],
            &[
                ("PATH", &path),
                ("FAKE_DOCKER_LOG", &docker_log),
                ("FAKE_ENV_LOG", &env_log_s),
                ("ACME__REDIS_PASSWORD", "shell-value"),
                ("ACME__SOMETHING_ELSE", "shell-value"),
                ("DOMAIN", "evil.example"),
                ("UNRELATED_VARIABLE", "kept"),
            ],
        )
        .ok();
    let seen = std::fs::read_to_string(&env_log).expect("compose ran");
    assert!(
        seen.contains("UNRELATED_VARIABLE=kept"),
        "other variables pass: {seen}"
    );
    for gone in [
        "ACME__REDIS_PASSWORD=",
        "ACME__SOMETHING_ELSE=",
        "DOMAIN=",
        "shell-value",
    ] {
        assert!(!seen.contains(gone), "{gone} reached compose:\n{seen}");
    }
    for key in ["ACME__REDIS_PASSWORD", "ACME__SOMETHING_ELSE", "DOMAIN"] {
        assert!(
            run.stderr
                .contains(&format!("warning: {key} is set in this shell")),
            "{key} named: {}",
            run.stderr
        );
    }
    assert!(!run.stderr.contains("shell-value"), "{}", run.stderr);
    assert!(!run.stderr.contains("UNRELATED_VARIABLE"), "{}", run.stderr);
}

// ---- 2. the parser reads as compose reads, or refuses ----------------------------------------

struct Case {
    name: &'static str,
    line: &'static str,
    fragments: &'static [&'static str],
}

#[test]
fn lines_compose_reads_differently_are_refused() {
    let cases = [
        Case {
            name: "comment after a tab (compose keeps `\\t# note` in the value)",
            line: "ACME__OLLAMA_MODEL=llama3.1:8b\t# note\n",
            fragments: &[
                ".env:14: ACME__OLLAMA_MODEL: `\\t` before `#`",
                "separate a comment with a space",
            ],
        },
        Case {
            name: "comment after a tab in a secret",
            line: "ACME__N8N_ENCRYPTION_KEY=eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee\t# rotated\n",
            fragments: &[".env:14: ACME__N8N_ENCRYPTION_KEY: `\\t` before `#`"],
        },
        Case {
            name: "escaped quote in single quotes (compose: unterminated, dotenvy: ends)",
            line: "ACME__OLLAMA_MODEL='llama3\\'\n",
            fragments: &[".env:14: ACME__OLLAMA_MODEL:"],
        },
        Case {
            name: "a bell escape in double quotes",
            line: "ACME__OLLAMA_MODEL=\"llama\\a\"\n",
            fragments: &[".env:14: ACME__OLLAMA_MODEL:"],
        },
        Case {
            name: "a second statement after the closing quote",
            line: "ACME__OLLAMA_MODEL=\"llama3.1:8b\" OTHER\n",
            fragments: &[".env:14: ACME__OLLAMA_MODEL: text after the closing quote"],
        },
        Case {
            name: "unterminated double quote (compose reads on into the next lines)",
            line: "ACME__OLLAMA_MODEL=\"llama3.1:8b\n",
            fragments: &[".env:14: ACME__OLLAMA_MODEL: unterminated quote"],
        },
    ];
    for c in cases {
        let s = Sandbox::new();
        s.write(".env", &format!("{BASE}{}", c.line));
        let before = s.snapshot_tree();
        let run = s.run(&["render"]);
        assert_eq!(run.code, 2, "{}: {}", c.name, run.stderr);
        for f in c.fragments {
            assert!(run.stderr.contains(f), "{}: {f}\n{}", c.name, run.stderr);
        }
        assert!(run.stderr.contains("fix:"), "{}: {}", c.name, run.stderr);
        assert_eq!(before, s.snapshot_tree(), "{}: nothing written", c.name);
        assert!(!run.stderr.contains("eeeeeeee"), "{}", run.stderr);
    }
}

#[test]
fn edges_both_readers_agree_on_are_read_as_compose_reads_them() {
    let s = Sandbox::new();
    s.write(
        ".env",
        &format!(
            "{BASE}export ACME__OLLAMA_MODEL = \"llama3.1:8b\"  # a comment\n\
             ACME__EMBEDDING_MODEL='nomic-embed-text'\t\n"
        ),
    );
    s.run(&["render"]).ok();
}

/// The value docker compose sees for `KEY` when the env file is `text`: it interpolates
/// `${KEY}` into a one-service file and prints the result (`config` needs no engine).
fn compose_reads(compose: &[String], dir: &std::path::Path, text: &str) -> Result<String, String> {
    let env = dir.join("case.env");
    let file = dir.join("compose.yml");
    std::fs::write(&env, text).unwrap();
    std::fs::write(
        &file,
        "services: {x: {image: busybox, environment: {V: \"${KEY}\"}}}\n",
    )
    .unwrap();
    let out = std::process::Command::new(&compose[0])
        .args(&compose[1..])
        .arg("--env-file")
        .arg(&env)
        .arg("-f")
        .arg(&file)
        .args(["config", "--format", "json"])
        .env_remove("KEY")
        .output()
        .expect("run compose");
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    Ok(v["services"]["x"]["environment"]["V"]
        .as_str()
        .unwrap_or_default()
        .to_string())
}

/// One generated manifest line for `KEY`: an edge-heavy mix of quotes, escapes, comments after
/// spaces and tabs, `export`, spaces around `=`, trailing whitespace and `#` inside values.
fn line() -> impl Strategy<Value = String> {
    let piece = prop::sample::select(vec![
        "a", "Z9", "x.y", "-", "_", "~", "/", ":", "@", "#", " ", "\t", "'", "\"", "\\", "\\n",
        "\\t", "\\\\", "\\'", "\\\"", "\\q", " #", "\t#", "é", "=",
    ]);
    let body = prop::collection::vec(piece, 0..7).prop_map(|v| v.concat());
    let wrap = prop::sample::select(vec!["", "'", "\""]);
    let tail = prop::sample::select(vec!["", " ", "\t", " # note", "\t# note", "#x", "  "]);
    let head = prop::sample::select(vec!["", "export ", " ", "export  "]);
    let eq = prop::sample::select(vec!["=", " = ", "= ", " =", "=\t"]);
    (head, eq, wrap, body, tail)
        .prop_map(|(head, eq, wrap, body, tail)| format!("{head}KEY{eq}{wrap}{body}{wrap}{tail}"))
}

#[test]
fn manifest_lines_read_as_compose_reads_them() {
    let test = "manifest_lines_read_as_compose_reads_them";
    let Some(compose) = compose_command() else {
        assert!(
            !tools_required(),
            "{test}: docker compose v2 is missing (see .ci/install-deps.sh)"
        );
        eprintln!("SKIPPED {test}: docker compose v2 is not installed on this machine");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let counted = std::cell::Cell::new(0);
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 48,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let result = runner.run(&line(), |line| {
        let text = format!("{line}\n");
        let (parsed, problems) =
            stackgen::manifest::parse::parse(std::path::Path::new("case.env"), &text);
        let Some(entry) = parsed.entries.get("KEY") else {
            prop_assert!(!problems.is_empty(), "neither read nor refused: {line:?}");
            return Ok(());
        };
        counted.set(counted.get() + 1);
        let seen = compose_reads(&compose, dir.path(), &text);
        prop_assert_eq!(
            Ok(entry.value.clone()),
            seen,
            "stackgen and compose read {:?} differently",
            line
        );
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    let mut accepted = counted.get();
    // Also the edges a random run may miss, accepted or refused; each is compared when read.
    let fixed = [
        "KEY=plain",
        "KEY=a #b",
        "KEY=a\t# note",
        "KEY=a#b",
        "KEY='a b' # c",
        "KEY=\"x\\ny\"",
        "KEY='a\\\\'",
        "KEY=\"a\\\\\"",
        "KEY=\"a\\qb\"",
        "export KEY=v",
        "KEY = v",
        "KEY=v   ",
        "KEY=",
        "KEY=\"\"",
        "KEY=\"a\"#c",
        "KEY= #x",
        "KEY=é☃",
    ];
    for line in fixed {
        let text = format!("{line}\n");
        let (parsed, _) = stackgen::manifest::parse::parse(std::path::Path::new("e"), &text);
        if let Some(entry) = parsed.entries.get("KEY") {
            accepted += 1;
            assert_eq!(
                Ok(entry.value.clone()),
                compose_reads(&compose, dir.path(), &text),
                "{line:?}"
            );
        }
    }
    eprintln!("{test}: {accepted} accepted lines compared with compose");
    assert!(
        accepted >= 12,
        "too few accepted lines compared: {accepted}"
    );
}

// ---- 3. no secret in errors or diffs ---------------------------------------------------------

#[test]
fn malformed_lines_never_show_a_secret() {
    for (name, manifest) in [
        (
            "yaml-style key: secret",
            BASE.replace(
                &format!("ACME__POSTGRES_PASSWORD={PG}"),
                &format!("ACME__POSTGRES_PASSWORD: {PG}"),
            ),
        ),
        (
            "a line holding only a secret",
            BASE.replace(
                &format!("ACME__POSTGRES_PASSWORD={PG}\n"),
                &format!("ACME__POSTGRES_PASSWORD={PG}\n{PG}\n"),
            ),
        ),
        (
            "a secret with a tab comment",
            BASE.replace(
                &format!("ACME__POSTGRES_PASSWORD={PG}"),
                &format!("ACME__POSTGRES_PASSWORD={PG}\t# note"),
            ),
        ),
        (
            "a secret that is too short, quoted in a message",
            format!("{BASE}TENANT={PG}\n"),
        ),
    ] {
        assert_ne!(manifest, BASE, "{name}");
        let s = Sandbox::new();
        s.write(".env", &manifest);
        let run = s.run(&["render"]).code(2);
        assert!(run.stderr.contains(".env:"), "{name}: {}", run.stderr);
        assert_no_secret(&run, &[PG]);
    }
    let s = Sandbox::new();
    s.write(
        ".env",
        &BASE.replace(
            &format!("ACME__POSTGRES_PASSWORD={PG}"),
            &format!("ACME__POSTGRES_PASSWORD: {PG}"),
        ),
    );
    let run = s.run(&["render"]).code(2);
    assert!(
        run.stderr
            .contains(".env:10: ACME__POSTGRES_PASSWORD: expected KEY=value"),
        "the key and line are named: {}",
        run.stderr
    );
}

#[test]
fn diffs_never_show_a_secret() {
    let s = rendered();
    let stack = "stacks/acme-stack.yml";
    let old_secret = "0ldRotatedRedisSecret1234567890";
    // A secret pasted into the stack, an old value next to its key, and a changed line.
    s.write(
        stack,
        &format!(
            "{}# pasted: {PG}\n# ACME__REDIS_PASSWORD={old_secret}\n",
            s.read(stack)
                .replace("restart: unless-stopped", "restart: always")
        ),
    );
    let run = s.run(&["render", "--check"]).code(1);
    assert!(
        run.stdout.contains("-    restart: always"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("<redacted ACME__POSTGRES_PASSWORD>"),
        "{}",
        run.stdout
    );
    assert_no_secret(&run, &[PG, old_secret]);

    // The same diff in `up`'s drift refusal.
    let env = fake_docker(&s);
    let run = s.run_env(&["up", "acme"], &env_refs(&env)).code(1);
    assert!(
        run.stdout.contains("-    restart: always"),
        "{}",
        run.stdout
    );
    assert_no_secret(&run, &[PG, old_secret]);

    // A generated file that is a link to the manifest: its diff would be the whole manifest.
    let s = rendered();
    let caddyfile = s.path("stacks/acme/caddy/Caddyfile");
    assert!(caddyfile.exists());
    std::fs::remove_file(&caddyfile).unwrap();
    std::os::unix::fs::symlink(s.path(".env"), &caddyfile).unwrap();
    let run = s.run(&["render", "--check"]);
    assert_ne!(run.code, 0, "{}", run.stdout);
    assert_no_secret(&run, &[PG, REDIS]);
}

// ---- 4 and 5. derived names are unique; a refused add-service changes nothing ----------------

fn init(s: &Sandbox, tenant: &str, services: &str) -> Run {
    s.run(&[
        "init",
        "--non-interactive",
        "--tenant",
        tenant,
        "--services",
        services,
        "--domain",
        "example.com",
        "--base-dir",
        "/srv/ai",
    ])
}

#[test]
fn tenants_whose_derived_names_collide_are_refused() {
    for (first, first_services, second, fragments) in [
        (
            "rt-n",
            "postgres,caddy",
            "rt-n-internal",
            &[
                "network `ai-platform-rt-n-internal` is both tenant `rt-n-internal`'s edge network and tenant `rt-n`'s internal network",
            ][..],
        ),
        (
            "rt-q",
            "openclaw,caddy",
            "rt-q-openclaw",
            &[
                "AppArmor profile `ai-platform-rt-q-openclaw` is both tenant `rt-q-openclaw`'s default profile and tenant `rt-q`'s openclaw profile",
            ][..],
        ),
    ] {
        let s = Sandbox::new();
        init(&s, first, first_services).ok();
        let before = s.snapshot_tree();
        let run = init(&s, second, "caddy").code(2);
        for f in fragments {
            assert!(run.stderr.contains(f), "{second}: {f}\n{}", run.stderr);
        }
        assert!(run.stderr.contains("TENANT:"), "{}", run.stderr);
        assert_eq!(before, s.snapshot_tree(), "{second}: nothing written");

    }

    // Written by hand, the manifest is refused by every command, before anything is written.
    let s = Sandbox::new();
    s.write(
        ".env",
        &format!(
            "{BASE}TENANT=acme-internal\n\
             ACME_INTERNAL__VECTOR_DB=chroma\n\
             ACME_INTERNAL__SERVICES=caddy\n\
             ACME_INTERNAL__UID=20002\n\
             ACME_INTERNAL__GID=20002\n\
             ACME_INTERNAL__PORT_RANGE=20100-20199\n"
        ),
    );
    let run = s.run(&["render"]).code(2);
    assert!(
        run.stderr.contains(
            ".env:14: TENANT: network `ai-platform-acme-internal` is both tenant `acme-internal`'s edge network and tenant `acme`'s internal network"
        ),
        "{}",
        run.stderr
    );
    assert!(!s.path("stacks").exists(), "render wrote nothing");
}

#[test]
fn a_refused_add_service_leaves_manifest_and_stacks_byte_identical() {
    let s = Sandbox::new();
    init(&s, "rt-c-x", "qdrant,caddy").ok();
    init(&s, "rt-c", "caddy").ok();
    s.run(&["render"]).ok();
    let before = s.snapshot_tree();
    let run = s
        .run(&[
            "add-service",
            "rt-c",
            "x-qdrant",
            "--image",
            "nginx:1.27.0",
            "--port",
            "80",
        ])
        .code(2);
    assert!(
        run.stderr.contains(
            "container `rt-c-x-qdrant-1` is both tenant `rt-c`'s custom service `x-qdrant` and tenant `rt-c-x`'s service `qdrant`"
        ),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("fix: rename the custom service"),
        "{}",
        run.stderr
    );
    assert_eq!(before, s.snapshot_tree(), "manifest and stacks unchanged");

    // The same service under a free name is accepted.
    s.run(&[
        "add-service",
        "rt-c",
        "y-qdrant",
        "--image",
        "nginx:1.27.0",
        "--port",
        "80",
    ])
    .ok();
}
