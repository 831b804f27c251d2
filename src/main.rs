//! Entry point: parse the command line, run, exit with the documented status.

use clap::Parser;

fn main() -> std::process::ExitCode {
    stackgen::run(stackgen::cli::Cli::parse())
}

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
