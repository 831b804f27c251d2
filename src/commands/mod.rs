//! One function per subcommand, dispatched from one `match`; each group of commands has its own
//! file. Turns CLI arguments into calls to the library and prints the human-readable result.

mod generate;

use std::path::Path;

use anyhow::Result;

use crate::cli::{Cli, Command};
use crate::render::Display;

pub fn dispatch(cli: Cli) -> Result<()> {
    match &cli.command {
        Command::Init(args) => generate::cmd_init(&cli, args),
        Command::Render(args) => generate::cmd_render(&cli, args),
        Command::Prepare(args) => generate::cmd_prepare(&cli, args),
    }
}

/// A path as the operator typed it, without a leading `./`, for headers and messages.
pub fn shown(path: &Path) -> String {
    let s = path.display().to_string();
    s.strip_prefix("./").map(str::to_string).unwrap_or(s)
}

pub fn display(cli: &Cli) -> Display {
    Display {
        manifest: shown(&cli.env_file),
        stacks_dir: shown(&cli.stacks_dir),
    }
}
