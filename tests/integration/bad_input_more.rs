//! More bad input, table-driven like `bad_input.rs`: quotes, `$`, newlines, `#`, unicode and
//! very long strings in various keys; invalid and path-traversing tenant, custom-service and
//! `BASE_DIR` names; ports at and beyond the limits in ranges and custom ports; overlapping
//! ranges; command-line mistakes. Each case names the input, the exit status and fragments of the
//! message, and checks that no file was created or changed and that nothing panicked.
//!
//! Inputs that are valid but at a limit (port 1, port 65535, a 1 MiB value, a comment after a
//! value) run `render --check`, which exits 1 with "differ" when the manifest renders and writes
//! nothing, so they fit the same table.
//!
//! Then the file-system cases: a read-only stacks directory, a full disk (a 64 KiB tmpfs), a
//! file in the way, and a manifest replaced while `render` runs.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::*;

/// A valid manifest with one custom service, so custom keys can be mutated too.
const BASE: &str = concat!(
    crate::common::minimal_manifest!(),
    "ACME__CUSTOM_APP_IMAGE=ghcr.io/me/app:1.2\n",
    "ACME__CUSTOM_APP_PORT=8080\n",
    "ACME__CUSTOM_APP_HOST_PORT=20040\n",
    "ACME__CUSTOM_APP_ROUTE=app\n",
    "ACME__CUSTOM_APP_ENV_GREETING='hello $USER #1 ☃'\n",
);

/// A second tenant; its range is replaced to test overlaps.
fn globex(range: &str) -> String {
    format!(
        "TENANT=globex\nGLOBEX__VECTOR_DB=chroma\nGLOBEX__SERVICES=caddy\nGLOBEX__UID=20002\n\
         GLOBEX__GID=20002\nGLOBEX__PORT_RANGE={range}\n"
    )
}

fn with(extra: &str) -> String {
    format!("{BASE}{extra}")
}

fn replaced(from: &str, to: &str) -> String {
    assert!(BASE.contains(from), "the base manifest has no `{from}`");
    BASE.replacen(from, to, 1)
}

/// What `render --check` says when the manifest is valid and nothing is rendered yet.
const RENDERS: &[&str] = &["differ from what the manifest renders"];

struct Case {
    name: String,
    /// The `.env` to write; `None` for none.
    manifest: Option<String>,
    args: Vec<String>,
    code: i32,
    fragments: Vec<String>,
    /// Extra files to create before the run (they must be unchanged after it).
    files: Vec<(&'static str, String)>,
}

fn case(name: &str, manifest: String, code: i32, fragments: &[&str]) -> Case {
    Case {
        name: name.to_string(),
        manifest: Some(manifest),
        args: vec!["render".into()],
        code,
        fragments: fragments.iter().map(|f| f.to_string()).collect(),
        files: Vec::new(),
    }
}

/// A valid manifest at a limit: `render --check` exits 1 (nothing rendered yet) and writes nothing.
fn accepted(name: &str, manifest: String) -> Case {
    Case {
        args: vec!["render".into(), "--check".into()],
        ..case(name, manifest, 1, RENDERS)
    }
}

fn cli(name: &str, manifest: Option<String>, args: &[&str], code: i32, fragments: &[&str]) -> Case {
    Case {
        name: name.to_string(),
        manifest,
        args: args.iter().map(|a| a.to_string()).collect(),
        code,
        fragments: fragments.iter().map(|f| f.to_string()).collect(),
        files: Vec::new(),
    }
}

fn quotes_dollars_newlines_hashes() -> Vec<Case> {
    vec![
        case(
            "text after a closing double quote",
            replaced("DOMAIN=example.com", "DOMAIN=\"example.com\" x"),
            2,
            &[".env:2: DOMAIN: text after the closing quote", "fix: put the whole value inside the quotes"],
        ),
        case(
            "unquoted value with spaces",
            replaced("ACME__CUSTOM_APP_ENV_GREETING='hello $USER #1 ☃'", "ACME__CUSTOM_APP_ENV_GREETING=hello world"),
            2,
            &[".env:18: ACME__CUSTOM_APP_ENV_GREETING: a value with spaces must be quoted", "KEY='two words'"],
        ),
        case(
            "single quote inside a single-quoted value",
            replaced("'hello $USER #1 ☃'", "'it's'"),
            2,
            &[".env:18: ACME__CUSTOM_APP_ENV_GREETING: text after the closing quote"],
        ),
        case(
            "unterminated single quote in a custom env value",
            replaced("'hello $USER #1 ☃'", "'hello"),
            2,
            &[".env:18: ACME__CUSTOM_APP_ENV_GREETING: unterminated quote", "close the quote on the same line"],
        ),
        case(
            "double quote inside a tenant name",
            replaced("TENANT=acme", "TENANT=\"ac\\\"me\""),
            2,
            &[".env:4: TENANT: `ac\"me` is not a valid tenant name"],
        ),
        case(
            "quote inside a secret",
            replaced(
                "ACME__REDIS_PASSWORD=bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
                "ACME__REDIS_PASSWORD=\"bbbbbbbb'bbbbbbbbbbbbbbbbbbbbbbb\"",
            ),
            2,
            &[".env:11: ACME__REDIS_PASSWORD: secret contains characters that break URLs"],
        ),
        case(
            "unquoted dollar in a custom env value",
            replaced("'hello $USER #1 ☃'", "$HOME"),
            2,
            &[".env:18: ACME__CUSTOM_APP_ENV_GREETING: a `$` outside single quotes would be interpolated", "KEY='a$b'"],
        ),
        case(
            "dollar inside double quotes",
            replaced("'hello $USER #1 ☃'", "\"a$b\""),
            2,
            &[".env:18: ACME__CUSTOM_APP_ENV_GREETING: a `$` outside single quotes"],
        ),
        case(
            "single-quoted dollar in BASE_DIR",
            replaced("BASE_DIR=/srv/ai", "BASE_DIR='/srv/$X'"),
            2,
            &[".env:3: BASE_DIR: `/srv/$X` contains a character compose volume specs cannot carry"],
        ),
        case(
            "dollar in a tenant name",
            replaced("TENANT=acme", "TENANT='ac$me'"),
            2,
            &[".env:4: TENANT: `ac$me` is not a valid tenant name"],
        ),
        case(
            "interpolation in an image override",
            with("REDIS_IMAGE='redis:${TAG}'\n"),
            2,
            &[".env:19: REDIS_IMAGE: `redis:${TAG}` has an invalid tag"],
        ),
        case(
            "interpolation in a secret",
            replaced(
                "ACME__REDIS_PASSWORD=bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
                "ACME__REDIS_PASSWORD='${OTHER}bbbbbbbbbbbbbbbbbbbbbbbb'",
            ),
            2,
            &[".env:11: ACME__REDIS_PASSWORD: secret contains characters"],
        ),
        case(
            "value continued on the next line",
            replaced("DOMAIN=example.com", "DOMAIN=\"example\n.com\""),
            2,
            &[".env:2: DOMAIN: unterminated quote", ".env:3: expected KEY=value, found a line of 5 characters without `=` (not shown: it may hold a secret)", "the manifest has 2 problems"],
        ),
        case(
            "escaped newline in a tenant name",
            replaced("TENANT=acme", "TENANT=\"ac\\nme\""),
            2,
            &[".env:4: TENANT: `ac\\nme` is not a valid tenant name"],
        ),
        case(
            "escaped newline in a custom port",
            replaced("ACME__CUSTOM_APP_PORT=8080", "ACME__CUSTOM_APP_PORT=\"80\\n80\""),
            2,
            &[".env:15: ACME__CUSTOM_APP_PORT: `80\\n80` is not a port number"],
        ),
        case(
            "carriage return inside a domain",
            replaced("DOMAIN=example.com", "DOMAIN=exam\rple.com"),
            2,
            &[".env:2: DOMAIN: `exam\\rple.com` is not a valid domain name"],
        ),
        case(
            "hash glued to a domain",
            replaced("DOMAIN=example.com", "DOMAIN=example.com#x"),
            2,
            &[".env:2: DOMAIN: `example.com#x` is not a valid domain name"],
        ),
        case(
            "hash inside a quoted secret",
            replaced(
                "ACME__REDIS_PASSWORD=bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
                "ACME__REDIS_PASSWORD='bbbbbbbbbbbbbbbb#bbbbbbbbbbbbbbb'",
            ),
            2,
            &[".env:11: ACME__REDIS_PASSWORD: secret contains characters"],
        ),
        case(
            "hash in a custom route",
            replaced("ACME__CUSTOM_APP_ROUTE=app", "ACME__CUSTOM_APP_ROUTE='app#1'"),
            2,
            &[".env:17: ACME__CUSTOM_APP_ROUTE: `app#1` is not a subdomain label"],
        ),
        case(
            "a required key commented out",
            replaced("ACME__UID=20001", "#ACME__UID=20001"),
            2,
            &["ACME__UID: is missing", "add a line ACME__UID=20001"],
        ),
        accepted(
            "a comment after a value",
            replaced("ACME__UID=20001", "ACME__UID=20001 # the tenant's user"),
        ),
        accepted(
            "dollar, quotes, hash and unicode in a single-quoted custom value",
            replaced("'hello $USER #1 ☃'", "'a \"b\" $c ${d} #e ☃ ü 漢字'"),
        ),
    ]
}

fn unicode_and_long_strings() -> Vec<Case> {
    let long_name = "a".repeat(10_000);
    vec![
        case(
            "accented tenant name",
            replaced("TENANT=acme", "TENANT=acmé"),
            2,
            &[".env:4: TENANT: `acmé` is not a valid tenant name"],
        ),
        case(
            "zero-width space in a tenant name",
            replaced("TENANT=acme", "TENANT=ac\u{200b}me"),
            2,
            &[".env:4: TENANT: `ac\\u{200b}me` is not a valid tenant name"],
        ),
        case(
            "right-to-left override in a domain",
            replaced("DOMAIN=example.com", "DOMAIN=exa\u{202e}moc.elpm"),
            2,
            &[".env:2: DOMAIN: `exa\\u{202e}moc.elpm` is not a valid domain name"],
        ),
        case(
            "non-ASCII letter in a key",
            with("DOMA\u{130}N=x\n"),
            2,
            &[".env:19:", "`DOMA\u{130}N` is not a valid key"],
        ),
        case(
            "byte-order mark before the first key",
            format!("\u{feff}{BASE}"),
            2,
            &[".env:1: the file starts with a byte-order mark (U+FEFF)", "without BOM"],
        ),
        case(
            "en dash in a port range",
            replaced("20000-20099", "20000\u{2013}20099"),
            2,
            &[".env:9: ACME__PORT_RANGE: `20000\u{2013}20099` is not a START-END range"],
        ),
        case(
            "full-width digits in a UID",
            replaced("ACME__UID=20001", "ACME__UID=２０００１"),
            2,
            &[".env:7: ACME__UID: `２０００１` is not a number"],
        ),
        case(
            "unicode in a service list",
            replaced("openwebui,caddy", "openwebui,cäddy"),
            2,
            &[".env:6: ACME__SERVICES: unknown service `cäddy`"],
        ),
        case(
            "unicode in a custom image",
            replaced("ghcr.io/me/app:1.2", "ghcr.io/mé/app:1.2"),
            2,
            &[".env:14: ACME__CUSTOM_APP_IMAGE: `ghcr.io/mé/app:1.2` is not a valid image reference"],
        ),
        case(
            "tenant name of 31 characters",
            replaced("TENANT=acme", &format!("TENANT={}", "a".repeat(31))),
            2,
            &["is longer than 30 characters", "at most 30 characters"],
        ),
        case(
            "tenant name of 10,000 characters is cut short in the message",
            replaced("TENANT=acme", &format!("TENANT={long_name}")),
            2,
            &[".env:4: TENANT: tenant name `aaaaaaaaaa", "…(10000 characters)` is longer than 30 characters"],
        ),
        case(
            "key of 5,000 characters",
            with(&format!("{}=1\n", "K".repeat(5000))),
            2,
            &[".env:19: KKKKKKKKKK", "…(5000 characters): unknown key"],
        ),
        case(
            "BASE_DIR longer than 1024 bytes",
            replaced("BASE_DIR=/srv/ai", &format!("BASE_DIR=/srv/{}", "d/".repeat(600) + "x")),
            2,
            &[".env:3: BASE_DIR:", "is longer than 1024 bytes"],
        ),
        case(
            "BASE_DIR with a 256-byte directory name",
            replaced("BASE_DIR=/srv/ai", &format!("BASE_DIR=/srv/{}", "d".repeat(256))),
            2,
            &["has a directory name longer than 255 bytes"],
        ),
        case(
            "custom service name of 40 characters",
            BASE.replace("CUSTOM_APP_", &format!("CUSTOM_{}_", "A".repeat(40))),
            2,
            &["ACME__CUSTOM_AAAA", "is not a valid service name", "at most 30 characters"],
        ),
        case(
            "custom route of 64 characters",
            replaced("ACME__CUSTOM_APP_ROUTE=app", &format!("ACME__CUSTOM_APP_ROUTE={}", "r".repeat(64))),
            2,
            &[".env:17: ACME__CUSTOM_APP_ROUTE:", "is not a subdomain label"],
        ),
        accepted(
            "a 1 MiB custom env value",
            replaced("'hello $USER #1 ☃'", &"x".repeat(1 << 20)),
        ),
        accepted(
            "a 4,000-character secret",
            replaced("ACME__REDIS_PASSWORD=bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", &format!("ACME__REDIS_PASSWORD={}", "b".repeat(4000))),
        ),
    ]
}

fn names_and_traversal() -> Vec<Case> {
    let mut cases: Vec<Case> = [
        ("..", "`..` is not a valid tenant name"),
        ("a/../../etc", "`a/../../etc` is not a valid tenant name"),
        ("/etc", "`/etc` is not a valid tenant name"),
        ("-acme", "`-acme` is not a valid tenant name"),
        ("acme-", "`acme-` is not a valid tenant name"),
        ("a.b", "`a.b` is not a valid tenant name"),
        ("a_b", "`a_b` is not a valid tenant name"),
    ]
    .into_iter()
    .map(|(name, msg)| {
        case(
            &format!("tenant name {name}"),
            replaced("TENANT=acme", &format!("TENANT={name}")),
            2,
            &[".env:4: TENANT:", msg],
        )
    })
    .collect();
    let custom = |name: &str, part: &str, fragments: &[&str]| {
        case(
            name,
            BASE.replace("CUSTOM_APP_", &format!("CUSTOM_{part}_")),
            2,
            fragments,
        )
    };
    cases.extend([
        custom(
            "custom service name starting with a dash",
            "_X",
            &["ACME__CUSTOM__X_IMAGE: `-x` is not a valid service name"],
        ),
        custom(
            "custom service name with a double dash",
            "X__Y",
            &["ACME__CUSTOM_X__Y_IMAGE: `x--y` is not a valid service name"],
        ),
        custom(
            "custom service name starting with a digit",
            "9LIVES",
            &["ACME__CUSTOM_9LIVES_IMAGE: `9lives` is not a valid service name"],
        ),
        custom(
            "custom service named like a catalog service",
            "POSTGRES",
            &["ACME__CUSTOM_POSTGRES_IMAGE: `postgres` is a catalog service"],
        ),
        custom(
            "custom service name with an ambiguous word",
            "MY_ENV",
            &["`my-env` contains the word `env` or `host`"],
        ),
        case(
            "custom service key with a dash",
            with("ACME__CUSTOM_MY-APP_IMAGE=ghcr.io/me/app:1\n"),
            2,
            &[".env:19:", "`ACME__CUSTOM_MY-APP_IMAGE` is not a valid key"],
        ),
        case(
            "custom service key with a path",
            with("ACME__CUSTOM_../ETC_IMAGE=ghcr.io/me/app:1\n"),
            2,
            &[".env:19:", "is not a valid key"],
        ),
        case(
            "custom volume escaping its data directory",
            with("ACME__CUSTOM_APP_VOLUMES=../../etc:/data\n"),
            2,
            &[".env:19: ACME__CUSTOM_APP_VOLUMES: `../../etc:/data` is not a valid volume"],
        ),
        case(
            "custom volume mounted at a traversing path",
            with("ACME__CUSTOM_APP_VOLUMES=data:/x/../../etc\n"),
            2,
            &["`data:/x/../../etc` is not a valid volume"],
        ),
        case(
            "custom volume name with a slash",
            with("ACME__CUSTOM_APP_VOLUMES=a/b:/data\n"),
            2,
            &["`a/b:/data` is not a valid volume"],
        ),
        case(
            "custom key without its image",
            with("ACME__CUSTOM_GHOST_PORT=80\n"),
            2,
            &["ACME__CUSTOM_GHOST_PORT: unknown custom service key"],
        ),
        case(
            "custom service of an undeclared tenant",
            with("NOPE__CUSTOM_APP_IMAGE=ghcr.io/me/app:1\n"),
            2,
            &["NOPE__CUSTOM_APP_IMAGE: `NOPE` is not the key prefix of any declared tenant"],
        ),
        case(
            "duplicated custom key",
            with("ACME__CUSTOM_APP_PORT=9090\n"),
            2,
            &[".env:19: ACME__CUSTOM_APP_PORT: duplicate key (first set on line 15)"],
        ),
        accepted(
            "custom env variables named IMAGE and DOCKER_IMAGE",
            with("ACME__CUSTOM_APP_ENV_IMAGE=x\nACME__CUSTOM_APP_ENV_DOCKER_IMAGE=y\n"),
        ),
        case(
            "custom env name in lower case",
            with("ACME__CUSTOM_APP_ENV_lower=1\n"),
            2,
            &["`ACME__CUSTOM_APP_ENV_lower` is not a valid key"],
        ),
    ]);
    for (dir, msg) in [
        ("/srv/ai/..", "contains `.` or `..`"),
        ("/srv/./ai", "contains `.` or `..`"),
        ("~/ai", "`~/ai` is not an absolute path"),
        ("../ai", "`../ai` is not an absolute path"),
        (
            "'/srv/a\"b'",
            "contains a character compose volume specs cannot carry",
        ),
        (
            "\"/srv/a\\nb\"",
            "`/srv/a\\nb` contains a character compose volume specs cannot carry",
        ),
    ] {
        cases.push(case(
            &format!("BASE_DIR {dir}"),
            replaced("BASE_DIR=/srv/ai", &format!("BASE_DIR={dir}")),
            2,
            &[".env:3: BASE_DIR:", msg],
        ));
    }
    cases
}

fn ports_and_ranges() -> Vec<Case> {
    let range = |r: &str| {
        replaced(
            "ACME__PORT_RANGE=20000-20099",
            &format!("ACME__PORT_RANGE={r}"),
        )
    };
    let custom_port = |p: &str| {
        replaced(
            "ACME__CUSTOM_APP_PORT=8080",
            &format!("ACME__CUSTOM_APP_PORT={p}"),
        )
    };
    let host_port = |p: &str| {
        replaced(
            "ACME__CUSTOM_APP_HOST_PORT=20040",
            &format!("ACME__CUSTOM_APP_HOST_PORT={p}"),
        )
    };
    vec![
        // Up to 79: the front door's default HTTP port is 80.
        accepted(
            "range starting at port 1",
            range("1-79").replace("HOST_PORT=20040", "HOST_PORT=40"),
        ),
        accepted(
            "range ending at port 65535 with a custom host port of 65535",
            range("65400-65535").replace("HOST_PORT=20040", "HOST_PORT=65535"),
        ),
        case("range starting at port 0", range("0-99"), 2, &[".env:9: ACME__PORT_RANGE: port 0 is outside 1..65535"]),
        case(
            "range ending at port 65536",
            range("65505-65536"),
            2,
            &[".env:9: ACME__PORT_RANGE: port 65536 is outside 1..65535"],
        ),
        case("range of one port at 65535", range("65535-65535"), 2, &["range 65535-65535 has fewer than 32 ports"]),
        case("range of 31 ports", range("20000-20030"), 2, &["has fewer than 32 ports"]),
        case("range with three parts", range("20000-20099-20199"), 2, &["`20099-20199` is not a port number"]),
        case("negative range start", range("-1-40"), 2, &[".env:9: ACME__PORT_RANGE:", "is not a port number"]),
        case("range far beyond u16", range("20000-4294967296"), 2, &["`4294967296` is not a port number"]),
        accepted("custom port 1", custom_port("1")),
        accepted("custom port 65535", custom_port("65535")),
        case("custom port 0", custom_port("0"), 2, &[".env:15: ACME__CUSTOM_APP_PORT: port 0 is outside 1..65535"]),
        case("custom port 65536", custom_port("65536"), 2, &["ACME__CUSTOM_APP_PORT: port 65536 is outside 1..65535"]),
        case("custom port -1", custom_port("-1"), 2, &["ACME__CUSTOM_APP_PORT: `-1` is not a port number"]),
        case("custom port with a protocol", custom_port("8080/tcp"), 2, &["`8080/tcp` is not a port number"]),
        accepted("custom host port at the end of the range", host_port("20099")),
        accepted("custom host port at the first free offset", host_port("20032")),
        case(
            "custom host port in the catalog's reserved ports",
            host_port("20031"),
            2,
            &[".env:16: ACME__CUSTOM_APP_HOST_PORT: host port 20031 is outside the tenant's custom ports 20032-20099"],
        ),
        case(
            "custom host port past the range",
            host_port("20100"),
            2,
            &["host port 20100 is outside the tenant's custom ports 20032-20099"],
        ),
        case("custom host port 0", host_port("0"), 2, &["ACME__CUSTOM_APP_HOST_PORT: port 0 is outside 1..65535"]),
        case("custom host port 65536", host_port("65536"), 2, &["port 65536 is outside 1..65535"]),
        case(
            "two custom services on one host port",
            with("ACME__CUSTOM_OTHER_IMAGE=ghcr.io/me/other:1\nACME__CUSTOM_OTHER_PORT=80\nACME__CUSTOM_OTHER_HOST_PORT=20040\n"),
            2,
            &["ACME__CUSTOM_OTHER_HOST_PORT: host port 20040 is used by another custom service"],
        ),
        case(
            "identical ranges",
            with(&globex("20000-20099")),
            2,
            &["GLOBEX__PORT_RANGE: port range 20000-20099 overlaps 20000-20099 of tenant `acme`"],
        ),
        case(
            "range inside another",
            with(&globex("20010-20049")),
            2,
            &["port range 20010-20049 overlaps 20000-20099 of tenant `acme`"],
        ),
        case(
            "ranges sharing one port",
            with(&globex("20099-20199")),
            2,
            &["port range 20099-20199 overlaps 20000-20099 of tenant `acme`"],
        ),
        case(
            "a range overlapping two others",
            with(&format!(
                "{}{}",
                globex("20100-20199"),
                "TENANT=initech\nINITECH__VECTOR_DB=chroma\nINITECH__SERVICES=caddy\nINITECH__UID=20003\n\
                 INITECH__GID=20003\nINITECH__PORT_RANGE=20050-20149\n"
            )),
            2,
            &[
                "the manifest has 2 problems",
                "INITECH__PORT_RANGE: port range 20050-20149 overlaps 20000-20099 of tenant `acme`",
                "INITECH__PORT_RANGE: port range 20050-20149 overlaps 20100-20199 of tenant `globex`",
            ],
        ),
        accepted("adjacent ranges", with(&globex("20100-20199"))),
    ]
}

fn command_line() -> Vec<Case> {
    let base = || Some(BASE.to_string());
    vec![
        cli(
            "unknown option",
            base(),
            &["render", "--frobnicate"],
            2,
            &["unexpected argument '--frobnicate'"],
        ),
        cli(
            "tenant argument with a path",
            base(),
            &["render", "../acme"],
            2,
            &["no tenant `../acme` is declared (known: acme)"],
        ),
        cli(
            "manifest path is a directory",
            base(),
            &["--env-file", ".", "render"],
            2,
            &["is a directory, not a manifest file"],
        ),
        cli(
            "manifest without end: /dev/zero",
            None,
            &["--env-file", "/dev/zero", "render"],
            2,
            &["/dev/zero: is larger than", "fix:"],
        ),
        Case {
            files: vec![("stacks", "not a directory\n".into())],
            ..cli(
                "stacks directory is a file",
                base(),
                &["render"],
                1,
                &[
                    "./stacks is a file, where stackgen needs a directory",
                    "fix: move the file away",
                ],
            )
        },
        Case {
            files: vec![("stacks/acme", "not a directory\n".into())],
            ..cli(
                "tenant directory is a file",
                base(),
                &["render"],
                1,
                &[
                    "./stacks/acme is a file, where stackgen needs a directory",
                    "fix: move the file away",
                ],
            )
        },
        Case {
            files: vec![("stacks/acme", "not a directory\n".into())],
            ..cli(
                "tenant directory is a file, with --check",
                base(),
                &["render", "--check"],
                1,
                &["stacks/acme is a file"],
            )
        },
        cli(
            "init with a traversing tenant name",
            None,
            &[
                "init",
                "--non-interactive",
                "--tenant",
                "../etc",
                "--domain",
                "example.com",
            ],
            2,
            &["`../etc` is not a valid tenant name"],
        ),
        cli(
            "init with a relative BASE_DIR",
            None,
            &[
                "init",
                "--non-interactive",
                "--tenant",
                "acme",
                "--base-dir",
                "srv/ai",
            ],
            2,
            &["BASE_DIR (--base-dir): `srv/ai` is not an absolute path"],
        ),
        cli(
            "init with a domain holding a space",
            None,
            &[
                "init",
                "--non-interactive",
                "--tenant",
                "acme",
                "--domain",
                "exa mple.com",
            ],
            2,
            &[
                "DOMAIN (--domain): `exa mple.com` is not a valid domain name",
                "fix: use a lower-case DNS name",
            ],
        ),
        cli(
            "init adding a tenant that exists, with an invalid vector DB",
            base(),
            &[
                "init",
                "--non-interactive",
                "--tenant",
                "acme",
                "--vector-db",
                "milvus",
            ],
            2,
            &["invalid value 'milvus'"],
        ),
    ]
}

/// The front door (issue 12): its keys, and tenant domains it could not tell apart.
fn front_door() -> Vec<Case> {
    let second = |domain: &str| {
        with(&format!(
            "{}GLOBEX__DOMAIN={domain}\n",
            globex("20100-20199")
        ))
    };
    vec![
        case(
            "edge HTTPS port inside a tenant's range",
            with("EDGE_HTTPS_PORT=20050\n"),
            2,
            &[".env:19: EDGE_HTTPS_PORT: port 20050 is inside tenant `acme`'s ACME__PORT_RANGE 20000-20099", "ports of their own"],
        ),
        case(
            "a range holding the default edge port 80",
            replaced("ACME__PORT_RANGE=20000-20099", "ACME__PORT_RANGE=60-140")
                .replace("HOST_PORT=20040", "HOST_PORT=100"),
            2,
            &["EDGE_HTTP_PORT: port 80 is inside tenant `acme`'s ACME__PORT_RANGE 60-140"],
        ),
        case(
            "the same edge port for HTTP and HTTPS",
            with("EDGE_HTTP_PORT=8443\nEDGE_HTTPS_PORT=8443\n"),
            2,
            &[".env:20: EDGE_HTTPS_PORT: is the same port as EDGE_HTTP_PORT (8443)"],
        ),
        case("edge port 0", with("EDGE_HTTP_PORT=0\n"), 2, &[".env:19: EDGE_HTTP_PORT: `0` is not a port number"]),
        case("edge port 65536", with("EDGE_HTTPS_PORT=65536\n"), 2, &[".env:19: EDGE_HTTPS_PORT: `65536` is not a port number"]),
        case(
            "edge bind address that is a name",
            with("EDGE_BIND_ADDRESS=localhost\n"),
            2,
            &[".env:19: EDGE_BIND_ADDRESS: `localhost` is not an IP address"],
        ),
        case(
            "edge subnet that is not a /16",
            with("EDGE_SUBNET=10.1.2.0/24\n"),
            2,
            &[".env:19: EDGE_SUBNET: `10.1.2.0/24` is not an IPv4 /16"],
        ),
        case(
            "two tenants with one domain",
            second("acme.example.com"),
            2,
            &["GLOBEX__DOMAIN: tenant `globex` has the same domain as tenant `acme`"],
        ),
        case(
            "a tenant domain below another tenant's",
            second("x.acme.example.com"),
            2,
            &[".env:25: GLOBEX__DOMAIN: domain `x.acme.example.com` of tenant `globex` is inside domain `acme.example.com` of tenant `acme`"],
        ),
        case(
            "a tenant domain above another tenant's",
            second("example.com"),
            2,
            &[".env:25: GLOBEX__DOMAIN: domain `acme.example.com` of tenant `acme` is inside domain `example.com` of tenant `globex`"],
        ),
        case("a tenant named edge", with("TENANT=edge\n"), 2, &[".env:19: TENANT: `edge` is reserved"]),
    ]
}

#[test]
fn more_bad_input_exits_with_a_located_message_and_writes_nothing() {
    let cases: Vec<Case> = [
        quotes_dollars_newlines_hashes(),
        unicode_and_long_strings(),
        names_and_traversal(),
        ports_and_ranges(),
        front_door(),
        command_line(),
    ]
    .into_iter()
    .flatten()
    .collect();
    assert!(cases.len() >= 80, "the matrix has {} cases", cases.len());
    eprintln!("bad input (more): {} cases", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let s = Sandbox::new();
        if let Some(m) = &case.manifest {
            s.write(".env", m);
        }
        for (rel, content) in &case.files {
            s.write(rel, content);
        }
        let before = tree_with_dirs(s.dir.path());
        let args: Vec<&str> = case.args.iter().map(String::as_str).collect();
        let run = s.run(&args);
        let mut why = Vec::new();
        if run.code != case.code {
            why.push(format!("exit {} (expected {})", run.code, case.code));
        }
        for f in &case.fragments {
            if !run.stderr.contains(f.as_str()) {
                why.push(format!("stderr lacks `{f}`"));
            }
        }
        if tree_with_dirs(s.dir.path()) != before {
            why.push("files or directories were created or changed".into());
        }
        if run.stderr.contains("panicked") || run.code == 101 {
            why.push("panicked".into());
        }
        if !why.is_empty() {
            let stderr: String = run.stderr.chars().take(2000).collect();
            failures.push(format!("{}: {}\n{stderr}", case.name, why.join("; ")));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
}

#[test]
fn the_base_manifest_of_this_matrix_renders() {
    let s = Sandbox::new();
    s.write(".env", BASE);
    s.run(&["render"]).ok();
    let stack = s.read("stacks/acme-stack.yml");
    // The custom value reaches the stack literally, `$` escaped for compose.
    assert!(stack.contains("GREETING: \"hello $$USER #1 ☃\""), "{stack}");
    // Variables whose names end in _IMAGE belong to the service, not declare another one.
    s.write(
        ".env",
        &with("ACME__CUSTOM_APP_ENV_IMAGE=img-a\nACME__CUSTOM_APP_ENV_DOCKER_IMAGE=img-b\n"),
    );
    s.run(&["render"]).ok();
    let stack = s.read("stacks/acme-stack.yml");
    assert!(
        stack.contains("      IMAGE: img-a\n      DOCKER_IMAGE: img-b\n"),
        "{stack}"
    );
}

#[test]
fn generated_files_are_readable_by_the_tenants_services() {
    use std::os::unix::fs::PermissionsExt;
    let s = Sandbox::new();
    s.write(".env", BASE);
    s.run(&["render"]).ok();
    let mode = |rel: &str| std::fs::metadata(s.path(rel)).unwrap().permissions().mode() & 0o777;
    // caddy runs as the tenant's UID and reads its Caddyfile through a bind mount.
    let caddyfile = "stacks/acme/caddy/Caddyfile";
    assert_eq!(mode(caddyfile), 0o644);
    assert_eq!(mode("stacks/acme-stack.yml"), 0o644);
    // A file left 0600 (by an older stackgen) is not drift, and `render` repairs it in place.
    std::fs::set_permissions(s.path(caddyfile), std::fs::Permissions::from_mode(0o600)).unwrap();
    s.run(&["render", "--check"]).ok();
    let run = s.run(&["render"]).ok();
    assert!(run.stdout.contains("0 file(s) written"), "{}", run.stdout);
    assert_eq!(mode(caddyfile), 0o644);
}

/// Every path under `dir` with its kind, mode and content: what a command must not change.
fn tree_with_dirs(dir: &Path) -> Vec<(PathBuf, u32, Option<Vec<u8>>)> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<(PathBuf, u32, Option<Vec<u8>>)>) {
        use std::os::unix::fs::PermissionsExt;
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            let meta = std::fs::symlink_metadata(&p).unwrap();
            let rel = p.strip_prefix(base).unwrap().to_path_buf();
            let mode = meta.permissions().mode();
            if meta.is_dir() {
                out.push((rel, mode, None));
                walk(base, &p, out);
            } else {
                out.push((rel, mode, Some(std::fs::read(&p).unwrap_or_default())));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// A tmpfs mounted for one test, unmounted when dropped (also when the test panics).
struct Mount(PathBuf);

impl Mount {
    fn tmpfs(at: &Path, options: &str) -> Option<Mount> {
        std::fs::create_dir_all(at).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "tmpfs"])
            .arg(at)
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Mount(at.to_path_buf()))
    }

    fn remount(&self, options: &str) {
        let ok = Command::new("mount")
            .args(["-o", &format!("remount,{options}")])
            .arg(&self.0)
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "remount {options} of {}", self.0.display());
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// No file of a failed render is left behind under `dir`.
fn assert_no_temporary_files(dir: &Path) {
    let mut files = Vec::new();
    collect(dir, &mut files);
    let temps: Vec<_> = files
        .iter()
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(".stackgen-")
        })
        .collect();
    assert!(temps.is_empty(), "temporary files left behind: {temps:?}");
}

/// The base manifest with another domain, so that every rendered file changes.
fn changed_domain() -> String {
    BASE.replace("DOMAIN=example.com", "DOMAIN=example.org")
}

#[test]
fn read_only_stacks_directory_fails_with_advice_and_changes_nothing() {
    let test = "read_only_stacks_directory_fails_with_advice_and_changes_nothing";
    let s = Sandbox::new();
    s.write(".env", BASE);
    let stacks = s.path("stacks");
    // Root ignores file modes: a read-only mount is the only thing that stops it.
    let _mount;
    if is_root() {
        let Some(m) = Mount::tmpfs(&stacks, "size=4m") else {
            assert!(!tools_required(), "{test}: cannot mount a tmpfs as root");
            eprintln!("SKIPPED {test}: cannot mount a tmpfs");
            return;
        };
        s.run(&["render"]).ok();
        m.remount("ro");
        _mount = m;
    } else {
        s.run(&["render"]).ok();
        chmod_tree(&stacks, 0o555);
        if std::fs::write(stacks.join("probe"), "x").is_ok() {
            std::fs::remove_file(stacks.join("probe")).unwrap();
            chmod_tree(&stacks, 0o755);
            eprintln!("SKIPPED {test}: neither a read-only mount nor chmod stops writes here");
            return;
        }
    }
    s.write(".env", &changed_domain());
    let before = tree_with_dirs(&stacks);
    let run = s.run(&["render"]);
    if !is_root() {
        chmod_tree(&stacks, 0o755);
    }
    assert_eq!(run.code, 1, "{}", run.stderr);
    let expected: &[&str] = if is_root() {
        &[
            "Read-only file system",
            "on a read-only file system: remount it read-write",
        ]
    } else {
        &[
            "Permission denied",
            "run stackgen as a user that may write to",
        ]
    };
    for f in expected
        .iter()
        .chain(&["nothing was changed", "--stacks-dir DIR"])
    {
        assert!(
            run.stderr.contains(f),
            "stderr lacks `{f}`:\n{}",
            run.stderr
        );
    }
    if is_root() {
        assert_eq!(
            before,
            tree_with_dirs(&stacks),
            "a read-only stacks directory changed"
        );
    }
    assert_no_temporary_files(&stacks);
    // --check still works on a read-only directory, and sees the drift.
    let check = s.run(&["render", "--check"]).code(1);
    assert!(
        check.stdout.contains("+# Generated by stackgen") || check.stdout.contains("example.org")
    );
}

fn chmod_tree(dir: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        let _ = std::fs::set_permissions(&d, std::fs::Permissions::from_mode(mode));
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                dirs.push(e.path());
            }
        }
    }
}

/// Six more tenants with every service: far more than 64 KiB of stack files.
fn many_tenants() -> String {
    let mut m = changed_domain();
    for i in 0..6 {
        let p = format!("BIG{i}");
        let secrets: String = [
            "POSTGRES_PASSWORD",
            "REDIS_PASSWORD",
            "QDRANT_API_KEY",
            "N8N_ENCRYPTION_KEY",
            "FLOWISE_SECRETKEY",
            "FLOWISE_JWT_AUTH_SECRET",
            "FLOWISE_JWT_REFRESH_SECRET",
            "FLOWISE_SESSION_SECRET",
            "FLOWISE_TOKEN_HASH_SECRET",
            "ANYTHINGLLM_JWT_SECRET",
            "ANYTHINGLLM_SIG_KEY",
            "ANYTHINGLLM_SIG_SALT",
            "LITELLM_MASTER_KEY",
            "LITELLM_SALT_KEY",
            "DIFY_SECRET_KEY",
            "DIFY_SANDBOX_API_KEY",
            "DIFY_PLUGIN_DAEMON_KEY",
            "DIFY_PLUGIN_INNER_API_KEY",
            "OPENCLAW_GATEWAY_TOKEN",
            "OPENWEBUI_SECRET_KEY",
            "GRAFANA_ADMIN_PASSWORD",
            "GRAFANA_SECRET_KEY",
            "MINIO_ROOT_PASSWORD",
        ]
        .iter()
        .map(|s| format!("{p}__{s}=secret{i}xxxxxxxxxxxxxxxxxxxxxxxxx\n"))
        .collect();
        let start = 21000 + 100 * i;
        m.push_str(&format!(
            "TENANT=big{i}\n{p}__VECTOR_DB=qdrant\n{p}__SERVICES=all\n{p}__UID={}\n{p}__GID={}\n\
             {p}__OPENCLAW_UID={}\n{p}__OPENCLAW_GID={}\n{p}__PORT_RANGE={start}-{}\n\
             {p}__TAILSCALE_AUTH_KEY=\n{secrets}",
            30000 + i,
            30000 + i,
            40000 + i,
            40000 + i,
            start + 99
        ));
    }
    m
}

/// A sandbox whose stacks directory is a 64 KiB tmpfs (unmounted when the `Mount` drops);
/// `None`, after saying it skipped, where no tmpfs can be mounted (fails in CI).
fn sandbox_with_a_64k_stacks_dir(test: &str) -> Option<(Sandbox, Mount)> {
    if !is_root() {
        assert!(
            !tools_required(),
            "{test}: needs root to mount a small tmpfs"
        );
        eprintln!("SKIPPED {test}: needs root to mount a small tmpfs");
        return None;
    }
    let s = Sandbox::new();
    let Some(mount) = Mount::tmpfs(&s.path("stacks"), "size=64k") else {
        assert!(!tools_required(), "{test}: cannot mount a tmpfs as root");
        eprintln!("SKIPPED {test}: cannot mount a tmpfs");
        return None;
    };
    Some((s, mount))
}

#[test]
fn full_disk_fails_with_advice_and_leaves_every_file_as_it_was() {
    let test = "full_disk_fails_with_advice_and_leaves_every_file_as_it_was";
    let Some((s, _mount)) = sandbox_with_a_64k_stacks_dir(test) else {
        return;
    };
    let stacks = s.path("stacks");
    s.write(".env", BASE);
    s.run(&["render"]).ok();
    // acme's new files alone would fit; all the new tenants' do not. A render that replaced
    // files as it went would leave acme's (written first) new and the others old.
    s.write(".env", &many_tenants());
    let before = tree_with_dirs(&stacks);
    let run = s.run(&["render"]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    for f in [
        "writing ./stacks/",
        "No space left on device",
        "nothing was changed: every file under ./stacks is as it was",
        "fix: free space on the file system that holds ./stacks",
    ] {
        assert!(
            run.stderr.contains(f),
            "stderr lacks `{f}`:\n{}",
            run.stderr
        );
    }
    assert!(!run.stderr.contains("panicked"));
    assert_eq!(
        before,
        tree_with_dirs(&stacks),
        "a render that ran out of space changed, created or half-wrote files"
    );
    assert_no_temporary_files(&stacks);
    // Once there is room again, the same render succeeds.
    drop(_mount);
    s.run(&["render"]).ok();
    s.run(&["render", "--check"]).ok();
}

#[test]
fn manifest_replaced_while_rendering_gives_the_output_of_one_version() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    let s = Sandbox::new();
    // Version A: two tenants; version B: one tenant with another domain and custom value.
    let a = format!("{BASE}{}", globex("20100-20199"));
    let b = changed_domain().replace("'hello $USER #1 ☃'", "'version b'");
    let expected = |manifest: &str| {
        let e = Sandbox::new();
        e.write(".env", manifest);
        e.run(&["--stacks-dir", "out", "render"]).ok();
        tree_with_dirs(&e.path("out"))
    };
    let (tree_a, tree_b) = (expected(&a), expected(&b));
    assert_ne!(tree_a, tree_b);

    s.write(".env", &a);
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (dir, stop) = (s.dir.path().to_path_buf(), stop.clone());
        std::thread::spawn(move || {
            // Replace the manifest atomically (write, rename), as editors and `init` do.
            let mut swaps = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let text = if swaps % 2 == 0 { &b } else { &a };
                let tmp = dir.join(".env.tmp");
                std::fs::write(&tmp, text).unwrap();
                std::fs::rename(&tmp, dir.join(".env")).unwrap();
                swaps += 1;
            }
            swaps
        })
    };
    let (mut seen_a, mut seen_b) = (0, 0);
    for i in 0..40 {
        // The same directory each time: the stack header names it.
        let out = "out";
        let run = s.run(&["--stacks-dir", out, "render"]).ok();
        let tree = tree_with_dirs(&s.path(out));
        if tree == tree_a {
            seen_a += 1;
        } else if tree == tree_b {
            seen_b += 1;
        } else {
            let diff: Vec<_> = tree
                .iter()
                .filter(|e| !tree_a.contains(e) && !tree_b.contains(e))
                .map(|e| {
                    (
                        e.0.clone(),
                        e.1,
                        e.2.as_ref()
                            .map(|c| String::from_utf8_lossy(c).into_owned()),
                    )
                })
                .collect();
            panic!(
                "render {i} produced output matching neither manifest:\n{}\n{diff:#?}",
                run.stdout
            );
        }
        std::fs::remove_dir_all(s.path(out)).unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    let swaps = writer.join().unwrap();
    assert!(swaps > 40, "the manifest was replaced only {swaps} times");
    eprintln!("40 renders during {swaps} manifest replacements: {seen_a} × version A, {seen_b} × version B");
}

/// A multi-step command that fails half-way changes nothing: `add-service` writes the manifest,
/// then the stack files; when the disk is full for the second step, the manifest is put back.
#[test]
fn add_service_on_a_full_disk_leaves_manifest_and_stacks_as_they_were() {
    let test = "add_service_on_a_full_disk_leaves_manifest_and_stacks_as_they_were";
    let Some((s, _mount)) = sandbox_with_a_64k_stacks_dir(test) else {
        return;
    };
    let stacks = s.path("stacks");
    s.write(".env", BASE);
    s.run(&["render"]).ok();
    // Fill what is left of the tmpfs (a file render never touches).
    {
        use std::io::Write;
        let mut f = std::fs::File::create(stacks.join("filler.bin")).unwrap();
        while f.write_all(&[0u8; 512]).is_ok() {}
    }
    let manifest_before = s.read(".env");
    let before = tree_with_dirs(&stacks);
    let run = s.run(&[
        "add-service",
        "acme",
        "my-app",
        "--image",
        "ghcr.io/me/app:1.2",
        "--port",
        "8080",
    ]);
    assert_ne!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("No space left on device"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("nothing was changed"), "{}", run.stderr);
    assert_eq!(
        manifest_before,
        s.read(".env"),
        "the manifest was left changed"
    );
    assert_eq!(
        before,
        tree_with_dirs(&stacks),
        "the stacks were left changed"
    );
    assert_no_temporary_files(&stacks);
}
