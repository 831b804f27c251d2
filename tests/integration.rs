//! Integration tests: one binary (faster to link), one module per topic.

mod common;

mod integration {
    mod bad_input;
    mod check;
    mod cli_help;
    mod init;
    mod readme;
    mod render;
}
