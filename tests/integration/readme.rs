//! The documentation is part of the product. The README is the front page: under 15 KB, its
//! links into docs/ resolve, it names the test command CI runs, and its quick start runs verbatim
//! on a Docker engine (tests/quickstart.sh). The reference in docs/ is checked against the code:
//! docs/manifest.md lists every key and secret the parser knows, docs/catalog.md every service
//! that does not run as the tenant's UID (the exception table of docs/security.md is checked in
//! security.rs).

use std::path::Path;
use std::process::Command;

use stackgen::manifest::{PLATFORM_KEYS, TENANT_SETTINGS};
use stackgen::platform::catalog::{Catalog, UserPolicy};

use crate::common::*;

fn doc(rel: &str) -> String {
    std::fs::read_to_string(Path::new(ROOT).join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn readme() -> String {
    doc("README.md")
}

/// The text under `heading` up to the next `## ` heading (its `###` subsections included).
fn section<'a>(text: &'a str, heading: &str, file: &str) -> &'a str {
    let start = text
        .find(&format!("{heading}\n"))
        .unwrap_or_else(|| panic!("{file} lacks {heading}"));
    let rest = &text[start + heading.len()..];
    let end = rest.find("\n## ").unwrap_or(rest.len());
    &rest[..end]
}

#[test]
fn manifest_reference_lists_every_key_the_parser_knows() {
    let reference = doc("docs/manifest.md");
    for key in PLATFORM_KEYS {
        assert!(
            reference.contains(&format!("`{key}`")),
            "docs/manifest.md lacks `{key}`"
        );
    }
    assert!(reference.contains("`<SERVICE>_IMAGE`") && reference.contains("`PGVECTOR_IMAGE`"));
    for setting in TENANT_SETTINGS {
        assert!(
            reference.contains(&format!("`<T>__{setting}`")),
            "docs/manifest.md lacks `<T>__{setting}`"
        );
    }
    let catalog = Catalog::get();
    for c in &catalog.components {
        for s in &c.secrets {
            assert!(
                reference.contains(&format!("`{s}`")),
                "docs/manifest.md lacks secret {s} of {}",
                c.name
            );
        }
        for s in &c.operator_secrets {
            assert!(
                reference.contains(&format!("`<T>__{s}`")),
                "docs/manifest.md lacks operator secret {s}"
            );
        }
    }
}

#[test]
fn every_key_of_the_example_manifest_is_documented() {
    let example = doc(".env.example");
    let reference = doc("docs/manifest.md");
    for line in example
        .lines()
        .filter(|l| !l.starts_with('#') && l.contains('='))
    {
        let key = line.split('=').next().unwrap();
        let documented = match key.split_once("__") {
            Some((_, setting)) => {
                reference.contains(&format!("`<T>__{setting}`"))
                    || reference.contains(&format!("`{setting}`"))
            }
            None => reference.contains(&format!("`{key}`")),
        };
        assert!(
            documented,
            "{key} from .env.example is not in docs/manifest.md"
        );
    }
}

#[test]
fn every_user_exception_in_the_catalog_is_listed() {
    let text = doc("docs/catalog.md");
    let list = section(
        &text,
        "## Services that do not run as a non-root user",
        "docs/catalog.md",
    );
    for (name, def) in &Catalog::get().services {
        if matches!(def.user, UserPolicy::Root | UserPolicy::SelfDrop) {
            assert!(
                list.contains(&format!("- `{name}`")),
                "docs/catalog.md's exception list lacks {name}"
            );
        }
        // A service whose image refuses a foreign UID runs as the image's user (or root).
        if def.contract.as_ref().is_some_and(|c| !c.arbitrary_uid) {
            assert!(
                list.contains(&format!("`{name}`")),
                "docs/catalog.md does not say that {name} runs as its image's own user"
            );
        }
    }
    assert!(list.contains("- `tailscale` in kernel mode"));
}

#[test]
fn ci_runs_the_readme_test_command() {
    let text = readme();
    assert!(
        text.contains("\nscripts/test.sh\n"),
        "README names scripts/test.sh as the test command"
    );
    assert!(text.contains("\ncargo run --release -- --env-file .env.example render\n"));
    assert!(text.contains("\ncargo install --path .\n"));
    let ci = doc(".ci/run");
    assert!(
        ci.contains("scripts/test.sh"),
        ".ci/run must call the README's test command"
    );
}

/// Every `docs/<name>.md` the text mentions (links and plain mentions alike).
fn docs_mentioned(text: &str) -> Vec<String> {
    text.match_indices("docs/")
        .filter_map(|(i, _)| {
            let tail = &text[i + "docs/".len()..];
            let stem: String = tail
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
                .collect();
            (!stem.is_empty() && tail[stem.len()..].starts_with(".md"))
                .then(|| format!("docs/{stem}.md"))
        })
        .collect()
}

#[test]
fn readme_is_a_front_page_under_15_kb_whose_docs_links_exist() {
    let text = readme();
    assert!(
        text.len() < 15_000,
        "README.md is {} bytes: keep it a front page under 15,000 and move reference to docs/",
        text.len()
    );
    let linked = docs_mentioned(&text);
    // The reference the README points to: all of it, each one a file.
    for want in [
        "commands",
        "manifest",
        "catalog",
        "security",
        "operations",
        "development",
    ] {
        let rel = format!("docs/{want}.md");
        assert!(
            text.contains(&format!("]({rel})")),
            "README does not link {rel}"
        );
    }
    for rel in &linked {
        assert!(
            Path::new(ROOT).join(rel).is_file(),
            "README mentions {rel}, which does not exist"
        );
    }
    // Links between the docs files (`](name.md` or `](name.md#anchor`) resolve too.
    for entry in std::fs::read_dir(Path::new(ROOT).join("docs")).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        for piece in text.split("](").skip(1) {
            let target: String = piece
                .chars()
                .take_while(|c| *c != ')' && *c != '#')
                .collect();
            if target.ends_with(".md") && !target.contains("://") {
                let resolved = path.parent().unwrap().join(&target);
                assert!(
                    resolved.is_file(),
                    "{} links {target}, which does not exist",
                    path.display()
                );
            }
        }
    }
}

/// The quick start's claims that need no engine: `init` as written selects only services that
/// need nothing from the operator, so it names nothing to supply; when a tenant does need an
/// operator value (openclaw's tailscale key), `init` names the key and its line, not a value.
#[test]
fn init_names_what_the_operator_must_supply_and_the_default_needs_nothing() {
    let text = readme();
    let quick = section(&text, "## Quick start", "README.md");
    let init_line = quick
        .lines()
        .find(|l| l.starts_with("stackgen init "))
        .expect("the quick start runs `stackgen init`");
    assert!(
        !init_line.contains("--services"),
        "the quick start relies on the default service set: {init_line}"
    );
    let s = Sandbox::new();
    let base = s.path("data").display().to_string();
    let run = s
        .run(&[
            "init",
            "--non-interactive",
            "--tenant",
            "team-a",
            "--base-dir",
            &base,
        ])
        .ok();
    assert!(!run.stdout.contains("still to supply"), "{}", run.stdout);
    let env = s.read(".env");
    let services = env
        .lines()
        .find_map(|l| l.strip_prefix("TEAM_A__SERVICES="))
        .unwrap();
    assert_eq!(
        services,
        "postgres,redis,qdrant,ollama,litellm,openwebui,caddy"
    );
    assert!(!env.contains("TAILSCALE_AUTH_KEY"), "{env}");

    let run = s
        .run(&[
            "init",
            "--non-interactive",
            "--tenant",
            "team-b",
            "--services",
            "openclaw",
        ])
        .ok();
    let env = s.read(".env");
    let line = env
        .lines()
        .position(|l| l == "TEAM_B__TAILSCALE_AUTH_KEY=")
        .expect("an empty key line")
        + 1;
    assert!(
        run.stdout
            .contains(&format!("TEAM_B__TAILSCALE_AUTH_KEY at .env:{line}")),
        "{}",
        run.stdout
    );
    for (_, value) in env.lines().filter_map(|l| l.split_once('=')) {
        assert!(
            value.len() < 40 || !run.stdout.contains(value),
            "init printed a secret"
        );
    }
}

/// Whether this process runs as root (the quick start does: it gives data directories away).
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

/// tests/quickstart.sh runs the README's quick-start block verbatim on the local test images
/// and checks that the tenant comes up with every service healthy, then takes it down.
#[test]
fn readme_quick_start_runs_verbatim() {
    let test = "readme_quick_start_runs_verbatim";
    if !is_root() {
        assert!(
            !tools_required(),
            "{test}: the quick start runs as root (it gives data directories to the tenant's UID)"
        );
        eprintln!("SKIPPED {test}: not root, and the quick start runs as root");
        return;
    }
    // The images of what the quick start's `init` selects: the default services and qdrant.
    let mut services: Vec<&str> = stackgen::manifest::init::DEFAULT_SERVICES
        .split(',')
        .collect();
    services.push("qdrant");
    if !engine_ready(&services, test) || !have("jq", &["--version"], test) {
        return;
    }
    let out = Command::new("bash")
        .arg(Path::new(ROOT).join("tests/quickstart.sh"))
        .env("STACKGEN", BIN)
        .env("QUICKSTART_IMAGE_OVERRIDES", image_overrides())
        .output()
        .expect("run tests/quickstart.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the README quick start failed:\n{stdout}\n{stderr}"
    );
    // It really ran the block's commands and checked the result.
    assert!(
        stdout.contains("$ stackgen init --non-interactive"),
        "{stdout}"
    );
    assert!(stdout.contains("$ stackgen up "), "{stdout}");
    assert!(stderr.contains("services healthy"), "{stderr}");
}
