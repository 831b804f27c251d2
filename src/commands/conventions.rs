//! `completions` and `man`: generated from the clap definition itself, so they can never list a
//! flag the binary does not take.

use anyhow::{Context, Result};
use clap::CommandFactory;

use crate::cli::{Cli, CompletionsArgs};

pub fn cmd_completions(args: &CompletionsArgs) -> Result<()> {
    let mut cmd = Cli::command();
    clap_complete::generate(args.shell, &mut cmd, "stackgen", &mut std::io::stdout());
    Ok(())
}

pub fn cmd_man() -> Result<()> {
    let mut page = Vec::new();
    clap_mangen::Man::new(Cli::command())
        .render(&mut page)
        .context("rendering the man page")?;
    let page = String::from_utf8(page).context("the man page is not UTF-8")?;
    // clap_mangen opens with the definition of the `Aq` string; `.TH` goes first so that tools
    // which identify a man page by its first request (and `file`) see one. The definition
    // still precedes every use of `Aq`, which only the sections after `.TH` make.
    let (th, rest): (Vec<&str>, Vec<&str>) = page.lines().partition(|l| l.starts_with(".TH "));
    let mut out = th.join("\n");
    for line in rest {
        out.push('\n');
        out.push_str(line);
    }
    out.push('\n');
    std::io::Write::write_all(&mut std::io::stdout(), out.as_bytes())
        .context("writing the man page")
}
