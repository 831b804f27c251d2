//! stackgen: from one `.env` manifest to one reviewed Docker Compose stack per tenant.
//!
//! The pipeline, one module per stage: `manifest` (read and validate) → `model` (tenant ×
//! catalog) → `policy` (users, capabilities, networks, gating) → `render` (YAML and config files)
//! → `output` (atomic writes or `--check`). `cli` parses; `commands` dispatch.

pub mod apparmor;
pub mod catalog;
pub mod cli;
pub mod commands;
pub mod compose;
pub mod contract;
pub mod custom;
pub mod deployment;
pub mod edge;
pub mod error;
pub mod extend;
pub mod fsafe;
pub mod init;
pub mod lock;
pub mod manifest;
pub mod menu;
pub mod model;
pub mod output;
pub mod policy;
pub mod preflight;
pub mod prepare;
pub mod redact;
pub mod refs;
pub mod render;
pub mod rotate;
pub mod secrets;
pub mod status;
pub mod style;
pub mod teardown;
pub mod templates;
pub mod vectordb;
pub mod yaml;

use std::process::ExitCode;

use error::{CommandFailed, Drift, Interrupted, Outcome, UsageError};

/// Maps an error to the documented exit status: 2 bad input, 1 drift or failed command, 130 a
/// prompt interrupted with Ctrl-C, 3 and 4 a tenant degraded or not running (`error::Outcome`).
pub fn exit_code(err: &anyhow::Error) -> u8 {
    if let Some(o) = err.downcast_ref::<Outcome>() {
        o.code
    } else if err.downcast_ref::<UsageError>().is_some() {
        2
    } else if err.downcast_ref::<Drift>().is_some() {
        1
    } else if err.downcast_ref::<Interrupted>().is_some() {
        130
    } else if let Some(c) = err.downcast_ref::<CommandFailed>() {
        u8::try_from(c.code).ok().filter(|c| *c != 0).unwrap_or(1)
    } else {
        1
    }
}

/// Runs the parsed command line; prints errors and returns the exit status.
pub fn run(cli: cli::Cli) -> ExitCode {
    match commands::dispatch(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            if err.downcast_ref::<Outcome>().is_some() {
                eprintln!("stackgen: {err}");
            } else if err.downcast_ref::<Drift>().is_none() {
                eprintln!("stackgen: error: {err:#}");
            } else {
                eprintln!("stackgen: {err}");
            }
            ExitCode::from(exit_code(&err))
        }
    }
}
