//! Integration tests: one binary (faster to link), one module per topic.

mod common;

mod integration {
    mod apparmor;
    mod backup;
    mod bad_input;
    mod bad_input_more;
    mod check;
    mod cli_help;
    mod conventions;
    mod deployment;
    mod e2e_backup;
    mod e2e_catalog;
    mod e2e_edge;
    mod e2e_run;
    mod e2e_verbs;
    mod engines;
    mod engines_backup;
    mod engines_edge;
    mod extend;
    mod hostile_fs;
    mod hostile_input;
    mod init;
    mod kubernetes;
    mod menu;
    mod properties;
    mod readme;
    mod render;
    mod run_cli;
    mod security;
    mod teardown;
    mod verbs;
}
