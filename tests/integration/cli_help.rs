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
            ("help_kube_secrets", vec!["kube-secrets", "--help"]),
            ("help_add_service", vec!["add-service", "--help"]),
            ("help_remove_service", vec!["remove-service", "--help"]),
            ("help_teardown", vec!["teardown", "--help"]),
            ("help_backup", vec!["backup", "--help"]),
            ("help_restore", vec!["restore", "--help"]),
            ("help_catalog", vec!["catalog", "--help"]),
            ("help_completions", vec!["completions", "--help"]),
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

#[test]
fn a_closed_stdout_ends_the_command_quietly() {
    // `stackgen render | head -1`: the reader goes away; no panic message may appear.
    let s = Sandbox::with_example();
    let mut child = std::process::Command::new(BIN)
        .arg("render")
        .current_dir(s.dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
}
