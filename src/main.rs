//! Entry point: parse the command line, run, exit with the documented status.

use clap::Parser;

fn main() -> std::process::ExitCode {
    // Rust ignores SIGPIPE, so `stackgen status | head` would panic on the closed pipe. Like
    // other Unix tools, end quietly instead.
    // SAFETY: called before any thread exists; restores the default disposition of one signal.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    stackgen::run(stackgen::cli::Cli::parse())
}

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
