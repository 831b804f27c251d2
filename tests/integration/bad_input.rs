//! Bad input, table-driven: each case names the input, the exit status and a fragment of the
//! message, and checks that nothing on disk changed.

use crate::common::*;

const BASE: &str = crate::common::minimal_manifest!();

const GLOBEX: &str = "\
TENANT=globex
GLOBEX__VECTOR_DB=chroma
GLOBEX__SERVICES=caddy
GLOBEX__UID=20002
GLOBEX__GID=20002
GLOBEX__PORT_RANGE=20100-20199
";

struct Case {
    name: &'static str,
    manifest: String,
    args: &'static [&'static str],
    code: i32,
    fragments: &'static [&'static str],
}

fn with(extra: &str) -> String {
    format!("{BASE}{extra}")
}

fn replaced(from: &str, to: &str) -> String {
    assert!(BASE.contains(from), "{from}");
    BASE.replace(from, to)
}

fn cases() -> Vec<Case> {
    let c = |name, manifest: String, code, fragments| Case {
        name,
        manifest,
        args: &["render"],
        code,
        fragments,
    };
    vec![
        c(
            "malformed line",
            with("this is not a key\n"),
            2,
            &[".env:14:", "expected KEY=value"],
        ),
        c(
            "duplicated key",
            with("DOMAIN=example.org\n"),
            2,
            &[".env:14: DOMAIN: duplicate key (first set on line 2)"],
        ),
        c(
            "unknown platform key",
            with("DOMIAN=example.com\n"),
            2,
            &[".env:14: DOMIAN: unknown key", "did you mean `DOMAIN`?"],
        ),
        c(
            // One typo, one message: not also "DOMAIN is missing" and its cascades.
            "misspelt platform key",
            replaced("DOMAIN=example.com", "DOMIAN=example.com"),
            2,
            &[
                "stackgen: error: ./.env:2: DOMIAN: unknown key, and `DOMAIN` is missing: a typo?",
                "fix: rename it to `DOMAIN`",
            ],
        ),
        c(
            "unknown tenant key",
            with("ACME__VECTORDB=qdrant\n"),
            2,
            &[
                "ACME__VECTORDB: unknown key",
                "did you mean `ACME__VECTOR_DB`?",
            ],
        ),
        c(
            "lower-case key",
            with("domain=x\n"),
            2,
            &[".env:14:", "`domain` is not a valid key"],
        ),
        c(
            "unknown vector DB",
            replaced("VECTOR_DB=qdrant", "VECTOR_DB=milvus"),
            2,
            &[
                ".env:5: ACME__VECTOR_DB: unknown vector DB `milvus`",
                "qdrant, pgvector, weaviate, chroma",
            ],
        ),
        c(
            "unknown service",
            replaced("redis,openwebui", "redis,openwebiu"),
            2,
            &[
                ".env:6: ACME__SERVICES: unknown service `openwebiu`",
                "did you mean `openwebui`?",
            ],
        ),
        c(
            "upper-case tenant",
            replaced("TENANT=acme", "TENANT=Acme"),
            2,
            &[".env:4: TENANT: `Acme` is not a valid tenant name"],
        ),
        c(
            "tenant with slash",
            replaced("TENANT=acme", "TENANT=a/b"),
            2,
            &["`a/b` is not a valid tenant name"],
        ),
        c(
            "tenant path traversal",
            replaced("TENANT=acme", "TENANT=../etc"),
            2,
            &["`../etc` is not a valid tenant name"],
        ),
        c(
            "tenant with space",
            replaced("TENANT=acme", "TENANT='a b'"),
            2,
            &["`a b` is not a valid tenant name"],
        ),
        c(
            "duplicate tenant",
            with("TENANT=acme\n"),
            2,
            &[".env:14: TENANT: tenant `acme` is declared twice (first on line 4)"],
        ),
        c(
            "overlapping port ranges",
            with(&GLOBEX.replace("20100-20199", "20050-20149")),
            2,
            &["GLOBEX__PORT_RANGE: port range 20050-20149 overlaps 20000-20099 of tenant `acme`"],
        ),
        c(
            "port beyond 65535",
            replaced("20000-20099", "65500-65600"),
            2,
            &[".env:9: ACME__PORT_RANGE: port 65600 is outside 1..65535"],
        ),
        c(
            "port zero",
            replaced("20000-20099", "0-99"),
            2,
            &["port 0 is outside 1..65535"],
        ),
        c(
            "range too small",
            replaced("20000-20099", "20000-20010"),
            2,
            &["fewer than 32 ports"],
        ),
        c(
            "uid not a number",
            replaced("ACME__UID=20001", "ACME__UID=abc"),
            2,
            &[".env:7: ACME__UID: `abc` is not a number"],
        ),
        c(
            "uid root",
            replaced("ACME__UID=20001", "ACME__UID=0"),
            2,
            &["ACME__UID: 0 is out of range", "not 0"],
        ),
        c(
            "shared uid",
            with(&GLOBEX.replace("GLOBEX__UID=20002", "GLOBEX__UID=20001")),
            2,
            &["shares a UID with tenant `acme`"],
        ),
        c(
            "openclaw without tailscale",
            replaced("redis,openwebui", "redis,openwebui,openclaw"),
            2,
            &[
                "ACME__SERVICES: `openclaw` needs `tailscale`",
                "tailscale sidecar",
            ],
        ),
        c(
            "unquoted dollar",
            replaced("DOMAIN=example.com", "DOMAIN=ex$ample.com"),
            2,
            &[".env:2: DOMAIN:", "single quotes"],
        ),
        c(
            "unterminated quote",
            replaced("DOMAIN=example.com", "DOMAIN=\"example.com"),
            2,
            &[".env:2: DOMAIN: unterminated quote"],
        ),
        c(
            "missing secret",
            BASE.replace(
                "ACME__REDIS_PASSWORD=bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\n",
                "",
            ),
            2,
            &[
                "ACME__REDIS_PASSWORD: secret needed by `redis` is missing",
                "stackgen init",
            ],
        ),
        c(
            "secret with dollar",
            replaced(
                "ACME__REDIS_PASSWORD=bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
                "ACME__REDIS_PASSWORD='bbbb$bbbbbbbbbbbbbbbbbbbbbbb'",
            ),
            2,
            &["ACME__REDIS_PASSWORD: secret contains characters"],
        ),
        c(
            "short secret",
            replaced(
                "ACME__REDIS_PASSWORD=bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
                "ACME__REDIS_PASSWORD=short",
            ),
            2,
            &["shorter than 16"],
        ),
        c(
            "relative BASE_DIR",
            replaced("BASE_DIR=/srv/ai", "BASE_DIR=srv/ai"),
            2,
            &[".env:3: BASE_DIR: `srv/ai` is not an absolute path"],
        ),
        c(
            "BASE_DIR traversal",
            replaced("BASE_DIR=/srv/ai", "BASE_DIR=/srv/../etc"),
            2,
            &["contains `.` or `..`"],
        ),
        c(
            "BASE_DIR root",
            replaced("BASE_DIR=/srv/ai", "BASE_DIR=/"),
            2,
            &["must not be the root directory"],
        ),
        c(
            "empty BASE_DIR",
            replaced("BASE_DIR=/srv/ai", "BASE_DIR="),
            2,
            &["BASE_DIR: is empty"],
        ),
        c(
            "missing DOMAIN",
            replaced("DOMAIN=example.com\n", ""),
            2,
            &["DOMAIN: is missing", "add a line DOMAIN="],
        ),
        c(
            "no tenants",
            BASE.replace("TENANT=acme\n", ""),
            2,
            &[
                "no tenant is declared",
                "not the key prefix of any declared tenant",
            ],
        ),
        c(
            "image on latest",
            with("REDIS_IMAGE=redis:latest\n"),
            2,
            &["REDIS_IMAGE: `redis:latest` uses the moving tag"],
        ),
        c(
            "untagged image",
            with("REDIS_IMAGE=redis\n"),
            2,
            &["has no tag"],
        ),
        c(
            "unknown tls mode",
            with("TLS_MODE=off\n"),
            2,
            &["unknown TLS mode"],
        ),
        c(
            "future manifest version",
            replaced("STACKGEN_MANIFEST_VERSION=1", "STACKGEN_MANIFEST_VERSION=9"),
            2,
            &["unsupported manifest version"],
        ),
        c(
            "unicode domain",
            replaced("DOMAIN=example.com", "DOMAIN=exämple.com"),
            2,
            &["not a valid domain name"],
        ),
        c(
            "very long value",
            replaced(
                "DOMAIN=example.com",
                &format!("DOMAIN={}.com", "a".repeat(5000)),
            ),
            2,
            &["DOMAIN"],
        ),
        Case {
            name: "unknown tenant on the command line",
            manifest: BASE.to_string(),
            args: &["render", "nope"],
            code: 2,
            fragments: &["no tenant `nope` is declared (known: acme)"],
        },
        Case {
            name: "prepare unknown tenant",
            manifest: BASE.to_string(),
            args: &["prepare", "nope"],
            code: 2,
            fragments: &["no tenant `nope`"],
        },
    ]
}

#[test]
fn every_bad_input_exits_2_with_a_located_message_and_writes_nothing() {
    let cases = cases();
    assert!(cases.len() >= 40, "the matrix has {} cases", cases.len());
    let mut failures = Vec::new();
    for case in cases {
        let s = Sandbox::new();
        s.write(".env", &case.manifest);
        let before = s.snapshot_tree();
        let run = s.run(case.args);
        let mut why = Vec::new();
        if run.code != case.code {
            why.push(format!("exit {} (expected {})", run.code, case.code));
        }
        for f in case.fragments {
            if !run.stderr.contains(f) {
                why.push(format!("stderr lacks `{f}`"));
            }
        }
        if s.snapshot_tree() != before {
            why.push("files changed".into());
        }
        if run.stderr.contains("panicked") {
            why.push("panicked".into());
        }
        if !why.is_empty() {
            failures.push(format!("{}: {}\n{}", case.name, why.join("; "), run.stderr));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn the_base_manifest_of_the_matrix_is_valid() {
    let s = Sandbox::new();
    s.write(".env", BASE);
    s.run(&["render"]).ok();
    s.write(".env", &with(GLOBEX));
    s.run(&["render"]).ok();
}

#[test]
fn manifest_that_is_missing_a_directory_or_not_text() {
    let s = Sandbox::new();
    let run = s.run(&["render"]).code(2);
    assert!(
        run.stderr.contains(".env: no manifest here") && run.stderr.contains("stackgen init"),
        "{}",
        run.stderr
    );
    std::fs::create_dir(s.path("dir.env")).unwrap();
    let run = s.run(&["--env-file", "dir.env", "render"]).code(2);
    assert!(run.stderr.contains("dir.env: is a directory"));
    std::fs::write(s.path("bin.env"), [0xff, 0xfe, 0x00]).unwrap();
    let run = s.run(&["--env-file", "bin.env", "render"]).code(2);
    assert!(run.stderr.contains("bin.env: is not UTF-8"));
    assert!(!s.path("stacks").exists());
}
