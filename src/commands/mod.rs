//! One function per subcommand, dispatched from one `match`; each group of commands has its own
//! file. Turns CLI arguments into calls to the library and prints the human-readable result.

mod backup;
mod catalog;
mod conventions;
mod extend;
mod generate;
mod many;
mod ops;
mod run;
mod security;
mod teardown;

use std::path::Path;

use anyhow::Result;

use crate::cli::{Cli, Command};
use crate::render::Display;

pub fn dispatch(cli: Cli) -> Result<()> {
    crate::ui::style::init(cli.color);
    match &cli.command {
        Command::Init(args) => generate::cmd_init(&cli, args),
        Command::Render(args) => generate::cmd_render(&cli, args),
        Command::Prepare(args) => generate::cmd_prepare(&cli, args),
        Command::KubeSecrets(args) => generate::cmd_kube_secrets(&cli, args),
        Command::Apparmor(cmd) => security::cmd_apparmor(&cli, cmd),
        Command::Up(args) => run::cmd_up(&cli, args),
        Command::Down(args) => run::cmd_down(&cli, args),
        Command::Restart(args) => run::cmd_restart(&cli, args),
        Command::Logs(args) => run::cmd_logs(&cli, args),
        Command::Status(args) => run::cmd_status(&cli, args),
        Command::Compose(args) => run::cmd_compose(&cli, args),
        Command::ReloadProxy(args) => ops::cmd_reload_proxy(&cli, args),
        Command::RefreshTailscaleKey(args) => ops::cmd_refresh_tailscale_key(&cli, args),
        Command::RotateSecrets(args) => ops::cmd_rotate_secrets(&cli, args),
        Command::Doctor(args) => ops::cmd_doctor(&cli, args),
        Command::AddService(args) => extend::cmd_add_service(&cli, args),
        Command::RemoveService(args) => extend::cmd_remove_service(&cli, args),
        Command::Teardown(args) => teardown::cmd_teardown(&cli, args),
        Command::Backup(args) => backup::cmd_backup(&cli, args),
        Command::Restore(args) => backup::cmd_restore(&cli, args),
        Command::Catalog(args) => catalog::cmd_catalog(args),
        Command::Completions(args) => conventions::cmd_completions(args),
        Command::Man => conventions::cmd_man(),
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
