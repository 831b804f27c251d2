//! Security commands: `apparmor load`.

use std::ffi::OsString;

use anyhow::Result;

use crate::cli::{ApparmorCommand, ApparmorLoadArgs, Cli};
use crate::manifest::Manifest;
use crate::ops::apparmor;

pub fn cmd_apparmor(cli: &Cli, cmd: &ApparmorCommand) -> Result<()> {
    match cmd {
        ApparmorCommand::Load(args) => cmd_apparmor_load(cli, args),
    }
}

fn cmd_apparmor_load(cli: &Cli, args: &ApparmorLoadArgs) -> Result<()> {
    let manifest = Manifest::load(&cli.env_file)?;
    let tenant = manifest.select(std::slice::from_ref(&args.tenant))?[0];
    if let Some(context) = &tenant.docker_context {
        // That host's kernel is out of reach from here: say what to run there. `load` with
        // dry_run still checks that the files are the reviewed ones.
        let report = apparmor::load(&manifest, tenant, &cli.stacks_dir, true)?;
        // `prepare` and `up` copy them there with the config files (engines::push_config):
        // the commands name that copy.
        let local = cli.stacks_dir.join(&tenant.name);
        let there = std::path::PathBuf::from(crate::platform::model::config_source(
            &manifest.platform,
            tenant,
        ));
        println!(
            "# tenant `{}` runs on the engine of Docker context `{context}`: its profiles must be loaded in that host's kernel.",
            tenant.name
        );
        println!(
            "# `stackgen prepare {}` (or `up`) copies {} to {} there; then run on that host, as root:",
            tenant.name,
            local.join("apparmor").display(),
            there.join("apparmor").display()
        );
        for argv in &report.commands {
            let argv: Vec<OsString> = argv
                .iter()
                .map(|a| match std::path::Path::new(a).strip_prefix(&local) {
                    Ok(rel) => there.join(rel).into_os_string(),
                    Err(_) => a.clone(),
                })
                .collect();
            println!("{}", shell_words(&argv));
        }
        return Ok(());
    }
    let report = apparmor::load(&manifest, tenant, &cli.stacks_dir, args.dry_run)?;
    for argv in &report.commands {
        println!("{}", shell_words(argv));
    }
    if report.loaded {
        println!(
            "{}: {} AppArmor profile(s) loaded: {}",
            tenant.name,
            report.profiles.len(),
            report.profiles.join(", ")
        );
    } else {
        println!("dry run: nothing loaded; {}", report.host.describe());
    }
    Ok(())
}

/// An argument vector as a shell would need it typed: words with only safe characters stay
/// bare, anything else is single-quoted. For display only; the command itself never goes
/// through a shell.
fn shell_words(argv: &[OsString]) -> String {
    argv.iter()
        .map(|a| {
            let a = a.to_string_lossy();
            let safe = !a.is_empty()
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c));
            if safe {
                a.into_owned()
            } else {
                format!("'{}'", a.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_words_quotes_only_what_needs_it() {
        let argv: Vec<OsString> = ["apparmor_parser", "-r", "a b/it's"]
            .map(OsString::from)
            .to_vec();
        assert_eq!(shell_words(&argv), r"apparmor_parser -r 'a b/it'\''s'");
    }
}
