//! The command-line surface is part of the contract: `--help` of every command is snapshotted.

use crate::common::*;

#[test]
fn help_texts_are_reviewed() {
    let s = Sandbox::new();
    let settings = insta_settings();
    settings.bind(|| {
        for (name, args) in [
            ("help", vec!["--help"]),
            ("help_init", vec!["init", "--help"]),
            ("help_render", vec!["render", "--help"]),
            ("help_prepare", vec!["prepare", "--help"]),
            ("help_add_service", vec!["add-service", "--help"]),
            ("help_remove_service", vec!["remove-service", "--help"]),
            ("help_teardown", vec!["teardown", "--help"]),
        ] {
            let run = s.run(&args).ok();
            insta::assert_snapshot!(name, run.stdout);
        }
    });
}

#[test]
fn usage_errors_exit_2() {
    let s = Sandbox::new();
    s.run(&["render", "--bogus"]).code(2);
    s.run(&["nonsense"]).code(2);
}
