//! stackgen: from one `.env` manifest to one reviewed Docker Compose stack per tenant.
//!
//! Generation is a pipeline, one folder per stage:
//!
//! - `manifest`: read and validate the `.env` (and write it: `init`, `add-service`, secrets);
//! - `platform`: the target-neutral model, one tenant × the catalog (and each image's contract);
//! - `policy`: users, capabilities, networks, health-gated order, decided once for every target;
//! - `render`: the targets (`render::compose` today) and what they share (templates, references);
//! - `output`: the files on disk (atomic writes, `--check`, locks, no symlink followed).
//!
//! Operating the rendered stacks is apart from generation, in `ops` (the compose runner,
//! preflight, status, prepare, backups, teardown, several engines). `cli` parses, `commands`
//! turns each subcommand into calls of the above, `ui` is the terminal (menu, colour).

pub mod cli;
pub mod commands;
pub mod error;
pub mod manifest;
pub mod ops;
pub mod output;
pub mod platform;
pub mod policy;
pub mod render;
pub mod ui;

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
