//! The README is part of the product: its manifest reference, secret list and exception list are
//! checked against the code, so they cannot drift.

use stackgen::catalog::{Catalog, UserPolicy};
use stackgen::manifest::{PLATFORM_KEYS, TENANT_SETTINGS};

use crate::common::ROOT;

fn readme() -> String {
    std::fs::read_to_string(format!("{ROOT}/README.md")).unwrap()
}

fn section<'a>(text: &'a str, heading: &str) -> &'a str {
    let start = text
        .find(heading)
        .unwrap_or_else(|| panic!("README lacks {heading}"));
    let rest = &text[start + heading.len()..];
    let end = rest.find("\n## ").unwrap_or(rest.len());
    &rest[..end]
}

#[test]
fn manifest_reference_lists_every_key_the_parser_knows() {
    let text = readme();
    let reference = section(&text, "## Manifest reference");
    for key in PLATFORM_KEYS {
        assert!(
            reference.contains(&format!("`{key}`")),
            "README manifest reference lacks `{key}`"
        );
    }
    assert!(reference.contains("`<SERVICE>_IMAGE`") && reference.contains("`PGVECTOR_IMAGE`"));
    for setting in TENANT_SETTINGS {
        assert!(
            reference.contains(&format!("`<T>__{setting}`")),
            "README lacks `<T>__{setting}`"
        );
    }
    let catalog = Catalog::get();
    for c in &catalog.components {
        for s in &c.secrets {
            assert!(
                reference.contains(&format!("`{s}`")),
                "README lacks secret {s} of {}",
                c.name
            );
        }
        for s in &c.operator_secrets {
            assert!(
                reference.contains(&format!("`<T>__{s}`")),
                "README lacks operator secret {s}"
            );
        }
    }
}

#[test]
fn every_key_of_the_example_manifest_is_documented() {
    let example = std::fs::read_to_string(format!("{ROOT}/.env.example")).unwrap();
    let text = readme();
    let reference = section(&text, "## Manifest reference");
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
            "{key} from .env.example is not in the README's manifest reference"
        );
    }
}

#[test]
fn every_user_exception_in_the_catalog_is_listed() {
    let text = readme();
    let list = section(&text, "### Services that do not run as a non-root user");
    for (name, def) in &Catalog::get().services {
        if matches!(def.user, UserPolicy::Root | UserPolicy::SelfDrop) {
            assert!(
                list.contains(&format!("- `{name}`")),
                "README exception list lacks {name}"
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
    let ci = std::fs::read_to_string(format!("{ROOT}/.ci/run")).unwrap();
    assert!(
        ci.contains("scripts/test.sh"),
        ".ci/run must call the README's test command"
    );
}
