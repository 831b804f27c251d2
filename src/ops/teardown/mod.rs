//! `stackgen teardown`: removes one tenant's containers and networks — only those that carry
//! both its stackgen label and its compose project — and, with `--purge-data`, its data
//! directory (and unloads its AppArmor profiles from the kernel; their files under the stacks
//! directory are generated, not data, and stay). Nothing else on the host is ever listed, stopped
//! or deleted (the design's script 0 removed every container and pruned every network).
//!
//! The work is a list of [`Step`]s computed up front by [`plan`] and [`steps`]: `--dry-run`
//! prints that list, a real run performs exactly it. The order matters:
//! back up (with `--backup`: the same archive `stackgen backup` writes, see `crate::ops::backup`)
//! → stop → remove containers → remove networks → unload profiles → delete the data.
//! A failing step stops the run, so data is never deleted after something unexpected happened.
//!
//! One mechanism per place the data lives: on this machine's disk it is checked by [`guard`] and
//! deleted by [`disk`]; for a tenant on another engine (`<T>__DOCKER_CONTEXT`) it is listed
//! through that engine and deleted there by a one-shot container
//! (`crate::ops::engines::purge_cmd`), and this machine's disk is never looked at.

pub mod disk;
pub mod docker;
pub mod guard;

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::error::UsageError;
use crate::manifest::{Manifest, Tenant};
use crate::ops::apparmor;
use crate::ops::compose::{exec, Cmd, Container, Project, Tools};
use disk::Measured;
use docker::Network;

/// What the operator asked for.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub purge_data: bool,
    /// Take a backup into this folder first.
    pub backup: Option<PathBuf>,
}

/// What teardown found for one tenant.
#[derive(Debug, Clone)]
pub struct Plan {
    pub tenant: String,
    pub project: Project,
    pub containers: Vec<Container>,
    pub networks: Vec<Network>,
    /// `BASE_DIR` as the manifest has it (checked again before every deletion).
    pub base_dir: String,
    /// `BASE_DIR/tenants/<tenant>`.
    pub tenant_root: PathBuf,
    /// The data directory, checked by [`guard::data_dir`]; `None` when it does not exist (or
    /// neither a purge nor a backup needs it).
    pub data: Option<PathBuf>,
    /// With `--purge-data`: each entry of the data directory with its size.
    pub data_entries: Vec<Measured>,
    /// With `--purge-data`: the tenant's rendered profiles loaded in the kernel, which are
    /// unloaded. Their files under the stacks directory are generated, not data: they stay, so
    /// `render --check` keeps passing until the tenant leaves the manifest.
    pub loaded_profiles: Vec<PathBuf>,
    /// With `--purge-data` for a tenant on another engine whose data folder exists there: that
    /// host and how the purge deletes it (`data_entries` then name its entries, sizes unknown).
    pub on_host: Option<OnHost>,
}

/// The data of a tenant on another engine's host, as a purge deletes it.
#[derive(Debug, Clone)]
pub struct OnHost {
    /// The tenant's Docker context.
    pub context: String,
    /// The bytes its engine listed under the data folder.
    pub bytes: u64,
    /// The one-shot container that deletes it there.
    pub delete: Cmd,
}

impl Plan {
    /// Bytes a purge deletes.
    pub fn purge_bytes(&self) -> u64 {
        match &self.on_host {
            Some(h) => h.bytes,
            None => self.data_entries.iter().map(|e| e.bytes).sum::<u64>(),
        }
    }

    /// Whether the purge deletes anything (an empty data directory still counts).
    pub fn deletes_anything(&self) -> bool {
        self.data.is_some()
    }
}

/// Finds what teardown would touch for `tenant`. Reads only: lists, sizes, checks.
pub fn plan(
    manifest: &Manifest,
    tenant: &Tenant,
    stacks_dir: &Path,
    project: Project,
    tools: &Tools,
    opts: &Options,
) -> Result<Plan> {
    let base = &manifest.platform.base_dir;
    // A remote tenant's data is on its engine's host: its backup and its purge read it there,
    // and this machine's disk is not looked at.
    let remote = crate::ops::engines::is_remote(tenant);
    let needs_data = opts.purge_data || (opts.backup.is_some() && !remote);
    let (tenant_root, mut data) = if needs_data {
        // Independent of the manifest validator: BASE_DIR `/`, empty or relative stops here.
        let root = guard::tenant_root(&guard::base_dir(base)?, &tenant.name)?;
        let data = match remote {
            true => None,
            false => guard::data_dir(base, &tenant.name)?,
        };
        (root, data)
    } else {
        (Path::new(base).join("tenants").join(&tenant.name), None)
    };
    let containers = docker::containers_of(tools, &tenant.name)?;
    let networks = docker::networks_of(tools, &tenant.name)?;

    if let Some(dir) = &opts.backup {
        if opts.purge_data && !remote && guard::is_inside(dir, &tenant_root) {
            return Err(UsageError::plain(format!(
                "--backup {}: that is inside {}, which --purge-data deletes; choose a directory outside it",
                dir.display(),
                tenant_root.display()
            ))
            .into());
        }
    }

    let mut data_entries = Vec::new();
    let mut loaded_profiles = Vec::new();
    let mut on_host = None;
    if opts.purge_data && remote {
        let context = tenant.docker_context.clone().unwrap_or_default();
        if let Some(listed) = crate::ops::backup::engine::data_on_host(tools, manifest, tenant)? {
            let d = tenant_root.join("data");
            if listed.is_link {
                return Err(UsageError::plain(format!(
                    "refusing to delete {} on the host of context `{context}`: it is a symbolic link; nothing was stopped, removed or deleted. Replace the link with a real directory on that host",
                    d.display()
                ))
                .into());
            }
            data_entries = listed
                .top
                .iter()
                .map(|(name, _)| Measured {
                    path: d.join(name),
                    bytes: 0,
                })
                .collect();
            on_host = Some(OnHost {
                context,
                bytes: listed.bytes,
                delete: crate::ops::engines::purge_cmd(tools, manifest, tenant, None)?,
            });
            data = Some(d);
        }
    } else if opts.purge_data {
        if let Some(d) = &data {
            data_entries = disk::entries(d)?;
        }
        let enabled = apparmor::host_state().is_enabled();
        for file in guard::profile_files(stacks_dir, &tenant.name)? {
            let name = file
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if enabled && apparmor::is_loaded(&name).unwrap_or(false) {
                loaded_profiles.push(file);
            }
        }
    }
    Ok(Plan {
        tenant: tenant.name.clone(),
        project,
        containers,
        networks,
        base_dir: base.clone(),
        tenant_root,
        data,
        data_entries,
        loaded_profiles,
        on_host,
    })
}

/// One thing teardown does.
#[derive(Debug, Clone)]
pub enum Step {
    /// Takes a backup into this archive (`crate::ops::backup`), while the services still run.
    Backup { to: PathBuf },
    /// Runs the command. `verb` and `what` make the log line ("stopped a, b") and, in a dry
    /// run, a comment naming what the IDs in the command are.
    Run {
        cmd: Cmd,
        verb: &'static str,
        what: String,
    },
    /// Deletes the tenant's data directory, after checking it again.
    DeleteData {
        base_dir: String,
        tenant: String,
        path: PathBuf,
        bytes: u64,
    },
    /// Deletes a remote tenant's data folder on its engine's host with a one-shot container
    /// there (which checks it again).
    DeleteOnHost {
        cmd: Cmd,
        path: PathBuf,
        bytes: u64,
        context: String,
    },
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Backup { to } => {
                write!(f, "back up into {} (as `stackgen backup`)", to.display())
            }
            Step::Run { cmd, what, .. } => write!(f, "+ {cmd}   # {what}"),
            Step::DeleteData { path, bytes, .. } => {
                write!(f, "delete {} ({})", path.display(), disk::human(*bytes))
            }
            Step::DeleteOnHost {
                cmd,
                path,
                bytes,
                context,
            } => write!(
                f,
                "+ {cmd}   # delete {} ({}) on the host of context `{context}`",
                path.display(),
                disk::human(*bytes)
            ),
        }
    }
}

/// The steps for a plan, in the order they run. `stamp` names the backup files.
pub fn steps(plan: &Plan, tools: &Tools, opts: &Options, stamp: &str) -> Vec<Step> {
    let mut out = Vec::new();
    if let Some(dir) = &opts.backup {
        out.push(Step::Backup {
            to: dir.join(crate::ops::backup::archive_name(&plan.tenant, stamp)),
        });
    }
    let containers = joined(plan.containers.iter().map(|c| c.name.as_str()));
    if !plan.containers.is_empty() {
        out.push(Step::Run {
            cmd: docker::stop(tools, &plan.containers),
            verb: "stopped",
            what: containers.clone(),
        });
    }
    if !plan.containers.is_empty() {
        out.push(Step::Run {
            cmd: docker::remove(tools, &plan.containers, opts.purge_data),
            verb: "removed",
            what: containers,
        });
    }
    if !plan.networks.is_empty() {
        out.push(Step::Run {
            cmd: docker::remove_networks(tools, &plan.networks),
            verb: "removed",
            what: joined(plan.networks.iter().map(|n| n.name.as_str())),
        });
    }
    if opts.purge_data {
        for p in &plan.loaded_profiles {
            out.push(Step::Run {
                cmd: docker::unload_profile(p),
                verb: "unloaded the AppArmor profile",
                what: p.display().to_string(),
            });
        }
        match (&plan.data, &plan.on_host) {
            (Some(d), Some(h)) => out.push(Step::DeleteOnHost {
                cmd: h.delete.clone(),
                path: d.clone(),
                bytes: h.bytes,
                context: h.context.clone(),
            }),
            (Some(d), None) => out.push(Step::DeleteData {
                base_dir: plan.base_dir.clone(),
                tenant: plan.tenant.clone(),
                path: d.clone(),
                bytes: plan.data_entries.iter().map(|e| e.bytes).sum(),
            }),
            (None, _) => {}
        }
    }
    out
}

/// Performs the steps in order, stopping at the first failure. `log` gets one line per step.
/// A failure keeps the underlying error (compose's or docker's own message) and says which step
/// failed and what had already been done, so the operator knows what state the tenant is in.
pub fn execute(steps: &[Step], backup: BackupFn<'_>, log: &mut dyn FnMut(String)) -> Result<()> {
    for (i, step) in steps.iter().enumerate() {
        perform(step, backup, log).with_context(|| {
            let done: Vec<String> = steps[..i].iter().map(Step::to_string).collect();
            let deleted = steps[..i]
                .iter()
                .any(|s| matches!(s, Step::DeleteData { .. } | Step::DeleteOnHost { .. }));
            format!(
                "teardown stopped at: {step}\n  done before it: {}\n  {}",
                if done.is_empty() {
                    "nothing".to_string()
                } else {
                    done.join("; ")
                },
                if deleted {
                    "data was deleted before the failure"
                } else {
                    "nothing was deleted"
                }
            )
        })?;
    }
    Ok(())
}

/// Takes the backup of a [`Step::Backup`] (the command layer supplies it: it needs the
/// manifest and the compose project).
pub type BackupFn<'a> = &'a mut dyn FnMut(&Path, &mut dyn FnMut(String)) -> Result<()>;

/// One step of [`execute`].
fn perform(step: &Step, backup: BackupFn<'_>, log: &mut dyn FnMut(String)) -> Result<()> {
    match step {
        // The backup creates its folder itself (`backup::take::run`).
        Step::Backup { to } => backup(to, log),
        Step::Run { cmd, verb, what } => {
            exec::capture_ok(cmd)?;
            log(format!("{verb} {what}"));
            Ok(())
        }
        Step::DeleteData {
            base_dir,
            tenant,
            path,
            ..
        } => {
            // Checked again right before deleting: the tree may have changed since the plan.
            match guard::data_dir(base_dir, tenant)? {
                Some(checked) if &checked == path => disk::remove_tree(path)?,
                Some(other) => bail!(
                    "refusing to delete {}: the data directory is now {}",
                    path.display(),
                    other.display()
                ),
                None => {}
            }
            if let Some(root) = path.parent() {
                disk::remove_if_empty(root);
            }
            log(format!("deleted {}", path.display()));
            Ok(())
        }
        Step::DeleteOnHost {
            cmd, path, context, ..
        } => {
            let what = match crate::ops::engines::run_purge(cmd)? {
                true => "deleted",
                false => "found nothing to delete at",
            };
            log(format!(
                "{what} {} on the host of context `{context}`, through its engine",
                path.display()
            ));
            Ok(())
        }
    }
}

/// `a, b` for the log.
fn joined<'a>(items: impl Iterator<Item = &'a str>) -> String {
    items.collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(argv: &[&str]) -> Cmd {
        Cmd {
            argv: argv.iter().map(Into::into).collect(),
            purpose: "test".into(),
            stdin: None,
        }
    }

    /// A failed step keeps the program's own error and says what was done and that nothing was
    /// deleted (a failed `teardown --backup` used to leave the operator guessing).
    #[test]
    fn a_failed_step_shows_its_error_and_what_was_done() {
        let tmp = tempfile::tempdir().unwrap();
        let steps = vec![
            Step::Run {
                cmd: cmd(&["true"]),
                verb: "stopped",
                what: "postgres".into(),
            },
            Step::Run {
                cmd: cmd(&[
                    "sh",
                    "-c",
                    "echo 'Error response from daemon: it broke' >&2; exit 3",
                ]),
                verb: "removed",
                what: "postgres".into(),
            },
            Step::DeleteData {
                base_dir: tmp.path().display().to_string(),
                tenant: "t".into(),
                path: tmp.path().join("tenants/t/data"),
                bytes: 0,
            },
        ];
        let mut log = Vec::new();
        let err = execute(&steps, &mut |_, _| Ok(()), &mut |l| log.push(l)).unwrap_err();
        let text = format!("{err:#}");
        assert!(
            text.contains("Error response from daemon: it broke"),
            "{text}"
        );
        assert!(text.contains("teardown stopped at:"), "{text}");
        assert!(text.contains("nothing was deleted"), "{text}");
        assert_eq!(log, ["stopped postgres"]);
    }
}
