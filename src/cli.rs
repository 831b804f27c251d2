//! The command line (clap). Only parsing lives here; `lib::run` turns it into work.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Generate and run the Docker Compose stacks of a self-hosted, multi-tenant AI platform.
///
/// stackgen reads one `.env` manifest and writes one `stacks/<tenant>-stack.yml` per tenant,
/// plus the config files it mounts. The files deploy with plain `docker compose`.
#[derive(Debug, Parser)]
#[command(name = "stackgen", version, about, long_about = None, term_width = 100)]
pub struct Cli {
    /// The manifest
    #[arg(long, global = true, value_name = "PATH", default_value = "./.env")]
    pub env_file: PathBuf,

    /// Where stack files are written
    #[arg(long, global = true, value_name = "DIR", default_value = "./stacks")]
    pub stacks_dir: PathBuf,

    /// Print only errors and what was asked for (`render` prints nothing on success)
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    /// Print more detail (`render`: which services do not run as the tenant's own UID, and why)
    #[arg(short, long, global = true)]
    pub verbose: bool,

    /// Colour check lines and diffs; auto: only on a terminal, and not when NO_COLOR is set
    #[arg(long, global = true, value_name = "WHEN", default_value = "auto")]
    pub color: crate::ui::style::ColorChoice,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write the manifest, or add tenants (and missing secrets) to an existing one
    Init(InitArgs),
    /// Render every tenant's stack file and config files (or only the named tenants)
    Render(RenderArgs),
    /// Create a tenant's data directories, owned by the UID each service runs as
    Prepare(PrepareArgs),
    /// Print a tenant's Kubernetes namespace and Secret for `kubectl apply -f -` (never to disk)
    KubeSecrets(KubeSecretsArgs),
    /// Load a tenant's AppArmor profiles into the host kernel
    #[command(subcommand)]
    Apparmor(ApparmorCommand),
    /// Check the host, prepare the data, then `docker compose up --wait` tenants
    Up(UpArgs),
    /// Stop and remove tenants' containers and networks; their data is kept
    Down(DownArgs),
    /// Restart a tenant's services (all, or the ones named), or several tenants
    Restart(RestartArgs),
    /// Show a tenant's logs (all services, or the ones named)
    Logs(LogsArgs),
    /// Every service of every tenant (or the ones named): state, health, ports, image
    Status(StatusArgs),
    /// Run any `docker compose` command on a tenant's project: `stackgen compose TENANT -- ps`
    Compose(ComposeArgs),
    /// Re-render a tenant's Caddyfile (or a front door's: `edge`, `edge-<context>`) and reload caddy in place
    ReloadProxy(ReloadProxyArgs),
    /// Store a new tailscale auth key and re-authenticate the sidecar (state kept)
    RefreshTailscaleKey(RefreshTailscaleKeyArgs),
    /// Generate new secrets, apply them, and recreate the services that use them
    RotateSecrets(RotateSecretsArgs),
    /// Check engine, compose, AppArmor, validators, ports, disk and the manifest
    Doctor(DoctorArgs),
    /// Add a service that is not in the catalog to one tenant, and start it if the tenant runs
    AddService(AddServiceArgs),
    /// Remove a service added with add-service (its data is kept unless --purge-data)
    RemoveService(RemoveServiceArgs),
    /// Remove a tenant's containers and networks (only its own); --purge-data also deletes its data
    Teardown(TeardownArgs),
    /// Back up a tenant (running or stopped) into one checksummed archive
    Backup(BackupArgs),
    /// Restore a tenant's data from an archive `stackgen backup` wrote
    Restore(RestoreArgs),
    /// The built-in catalog: each service's pinned image and its image contract
    Catalog(CatalogArgs),
    /// Print a shell completion script (bash, zsh, fish, powershell, elvish)
    #[command(
        after_help = "Example: `stackgen completions bash > /etc/bash_completion.d/stackgen`, then open a new shell."
    )]
    Completions(CompletionsArgs),
    /// Print the man page (roff)
    #[command(
        after_help = "Example: `stackgen man > /usr/local/share/man/man1/stackgen.1`, then `man stackgen`."
    )]
    Man,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete in
    #[arg(value_name = "SHELL")]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Print the checks as a JSON array of {check, status (ok|warn|fail|skip), detail, fix}
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
#[command(
    after_help = "The contract of an image is what it really is at the pinned tag: its default user, the programs in it, the paths it writes, whether a foreign UID works, whether it needs egress. Sources: docs/upstream-notes.md."
)]
pub struct CatalogArgs {
    /// Print every service and its contract as JSON (for scripts and the stand-in image builder)
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Take every answer from flags; never prompt
    #[arg(long)]
    pub non_interactive: bool,
    /// A tenant to add (repeatable)
    #[arg(long = "tenant", value_name = "NAME")]
    pub tenants: Vec<String>,
    /// The new tenants' vector DB
    #[arg(long, value_name = "DB", default_value = "qdrant", value_parser = ["qdrant", "pgvector", "weaviate", "chroma"])]
    pub vector_db: String,
    /// Comma-separated catalog names, or `all` (adds dify, and openclaw, which needs a tailscale
    /// auth key); the default is the menu's and needs no key
    #[arg(long, value_name = "LIST", default_value = crate::manifest::init::DEFAULT_SERVICES)]
    pub services: String,
    /// The platform domain; tenants get <tenant>.<domain>
    #[arg(long, value_name = "DOMAIN")]
    pub domain: Option<String>,
    /// Where tenant data lives (BASE_DIR/tenants/<tenant>/data/<service>)
    #[arg(long, value_name = "DIR")]
    pub base_dir: Option<String>,
    /// The new tenant's host ports (32 or more); refused if a tenant or a process on this host
    /// holds any of them. Default: the first run of 100 from 20000 that is free in both
    #[arg(long, value_name = "START-END")]
    pub port_range: Option<String>,
    /// Place the new tenants on the Docker engine of this context (`<T>__DOCKER_CONTEXT`); their
    /// port ranges are then not probed on this host (`up` probes them on that one)
    #[arg(long, value_name = "CONTEXT", requires = "non_interactive")]
    pub docker_context: Option<String>,
}

#[derive(Debug, Args)]
pub struct RenderArgs {
    /// Tenants to render (default: all)
    #[arg(value_name = "TENANT")]
    pub tenants: Vec<String>,
    /// Write nothing; exit 1 with a diff when files on disk differ from the manifest
    #[arg(long)]
    pub check: bool,
    /// With --check: per tenant, the changed and stale files as JSON (never a diff body)
    #[arg(long, requires = "check")]
    pub json: bool,
    /// What to render: compose stacks, or Kubernetes manifests under <stacks-dir>/kubernetes/
    #[arg(long, value_name = "TARGET", default_value = "compose")]
    pub target: Target,
}

/// A render target: both consume the same model and policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Target {
    Compose,
    Kubernetes,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Prints the tenant's Namespace (as `render --target kubernetes` writes it) and its Secret `stackgen-secrets` (every manifest secret of the tenant, as stringData) for `stackgen kube-secrets TENANT | kubectl apply -f -`; nothing is written to disk. Refused when standard output is a terminal."
)]
pub struct KubeSecretsArgs {
    /// The tenant whose Secret to print
    #[arg(value_name = "TENANT")]
    pub tenant: String,
}

#[derive(Debug, Args)]
pub struct PrepareArgs {
    /// The tenant whose directories to create
    #[arg(value_name = "TENANT")]
    pub tenant: String,
    /// Print what would be created, create nothing
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Subcommand)]
pub enum ApparmorCommand {
    /// Load (or replace) the tenant's rendered profiles with `apparmor_parser -r -W`
    #[command(
        after_help = "Needs root and a host kernel with AppArmor enabled. Without it Docker silently ignores `apparmor=` and the services run unconfined: `load` then says so and exits 1."
    )]
    Load(ApparmorLoadArgs),
}

#[derive(Debug, Args)]
pub struct ApparmorLoadArgs {
    /// The tenant whose profiles (stacks/<tenant>/apparmor/) to load
    #[arg(value_name = "TENANT")]
    pub tenant: String,
    /// Print the apparmor_parser commands, run nothing
    #[arg(long)]
    pub dry_run: bool,
}

// ---- running the stacks (issue 4) -------------------------------------------------------------

/// Shown under `up`, `down` and `restart`: how several tenants run.
const MANY_TENANTS_HELP: &str = "Several tenants (or --all) run concurrently, --jobs at a time; each tenant's output is printed in one piece when it finishes, and the exit status is the highest of the tenants' statuses.";

/// How many tenants run at once when several are named (each is one stackgen process).
pub const DEFAULT_JOBS: u16 = 4;

#[derive(Debug, Args)]
#[command(
    after_help = "Refuses (exit 1, with the diff) when the committed stack files differ from what the manifest renders, unless --render writes them first. Every preflight check runs before any container is touched.\n\nThe words are tenants as long as they name tenants of the manifest; the rest are services of the one tenant named (`up team-a litellm`). Several tenants (or --all) run concurrently, --jobs at a time; each tenant's output is printed in one piece when it finishes, and the exit status is the highest of the tenants' statuses."
)]
pub struct UpArgs {
    /// The tenant(s) to start; after a single tenant, only these services (and what they wait for)
    #[arg(
        value_name = "TENANT|SERVICE",
        required_unless_present = "all",
        conflicts_with = "all"
    )]
    pub words: Vec<String>,
    #[command(flatten)]
    pub fleet: Fleet,
    /// Write the rendered files first when they differ from the manifest
    #[arg(long)]
    pub render: bool,
    /// Seconds to wait for the services to become healthy
    #[arg(long, value_name = "SECS", default_value_t = 300)]
    pub timeout: u32,
    /// Print the commands, run and change nothing
    #[arg(long)]
    pub dry_run: bool,
}

/// Every tenant at once, and how many run concurrently: shared by up, down and restart.
#[derive(Debug, Args)]
pub struct Fleet {
    /// Every tenant in the manifest
    #[arg(long)]
    pub all: bool,
    /// How many tenants to run at once
    #[arg(long, short = 'j', value_name = "N", default_value_t = DEFAULT_JOBS, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub jobs: u16,
}

#[derive(Debug, Args)]
#[command(after_help = MANY_TENANTS_HELP)]
pub struct DownArgs {
    /// The tenant(s) to stop; `edge` (`edge-<context>`) alone: that front door, once no tenant behind it runs
    #[arg(
        value_name = "TENANT",
        required_unless_present = "all",
        conflicts_with = "all"
    )]
    pub tenants: Vec<String>,
    #[command(flatten)]
    pub fleet: Fleet,
    /// Print the command, run nothing
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Exit status 4 when the tenant is not running (no container of it runs, or a named service has no container): nothing is restarted; start it with `stackgen up`.\n\nThe words are tenants as long as they name tenants of the manifest; the rest are services of the one tenant named (`restart team-a litellm caddy`). Several tenants (or --all) run concurrently, --jobs at a time; each tenant's output is printed in one piece when it finishes, and the exit status is the highest of the tenants' statuses."
)]
pub struct RestartArgs {
    /// The tenant(s); after a single tenant, the services to restart (default: all)
    #[arg(
        value_name = "TENANT|SERVICE",
        required_unless_present = "all",
        conflicts_with = "all"
    )]
    pub words: Vec<String>,
    #[command(flatten)]
    pub fleet: Fleet,
    /// Print the command, run nothing
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// The tenant
    #[arg(value_name = "TENANT")]
    pub tenant: String,
    /// Services (default: all)
    #[arg(value_name = "SERVICE")]
    pub services: Vec<String>,
    /// Keep printing new lines
    #[arg(short, long)]
    pub follow: bool,
    /// Only the last N lines of each service (`all`: every line)
    #[arg(short = 'n', long, value_name = "N")]
    pub tail: Option<String>,
    /// Only lines since T: a timestamp (2026-01-02T13:23:37Z) or a duration (42m, 1h30m)
    #[arg(long, value_name = "T")]
    pub since: Option<String>,
    /// Prefix each line with its timestamp
    #[arg(short, long)]
    pub timestamps: bool,
    /// Print the command, run nothing
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Exit status: 0 every tenant shown is running and healthy; 3 a tenant is degraded or still starting (some service is not running, unhealthy or not yet healthy); 4 a tenant is not running (none of its services runs); 1 docker failed; 2 bad input. With several tenants, the highest applies. The table fits the terminal's width (PORTS and IMAGE are cut, marked …); piped, it is printed whole."
)]
pub struct StatusArgs {
    /// Tenants (default: every tenant in the manifest)
    #[arg(value_name = "TENANT")]
    pub tenants: Vec<String>,
    /// Every tenant in the manifest (the default)
    #[arg(long, conflicts_with = "tenants")]
    pub all: bool,
    /// JSON for scripts instead of the table
    #[arg(long)]
    pub json: bool,
    /// Print the command, run nothing
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Runs `docker compose -p TENANT --env-file MANIFEST -f STACK COMPOSE_ARGS...` with the environment the other commands use (the manifest's keys removed from it), after the same ownership checks as `down`; the exit status is compose's. Examples: `stackgen compose team-a -- ps`, `stackgen compose team-a -- exec postgres psql -U team_a`, `stackgen compose team-a -- pull`, `stackgen compose team-a -- config`. No drift check and no tenant lock: what the arguments do is up to you."
)]
pub struct ComposeArgs {
    /// The tenant whose compose project to use
    #[arg(value_name = "TENANT")]
    pub tenant: String,
    /// What to pass to `docker compose`, after `--`
    #[arg(value_name = "COMPOSE_ARGS", last = true, required = true)]
    pub args: Vec<std::ffi::OsString>,
    /// Print the command, run nothing
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct ReloadProxyArgs {
    /// The tenant whose caddy to reload, or `edge` for the front door (stacks/edge/Caddyfile), `edge-<context>` for another engine's
    #[arg(value_name = "TENANT")]
    pub tenant: String,
    /// Print what would be written and run, change nothing
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct RefreshTailscaleKeyArgs {
    /// The tenant whose sidecar to re-authenticate
    #[arg(value_name = "TENANT")]
    pub tenant: String,
    /// The new auth key; `-` reads it from stdin (keeps it out of the shell history)
    #[arg(long, value_name = "KEY")]
    pub key: String,
    /// Print the commands, change nothing
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Secrets a service encrypts stored data with (e.g. N8N_ENCRYPTION_KEY, LITELLM_SALT_KEY) are refused with the reason; with no NAME they are skipped and listed."
)]
pub struct RotateSecretsArgs {
    /// The tenant
    #[arg(value_name = "TENANT")]
    pub tenant: String,
    /// Secrets to rotate, e.g. POSTGRES_PASSWORD (default: every one that may change)
    #[arg(value_name = "NAME")]
    pub names: Vec<String>,
    /// Print the plan and the commands, change nothing
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
#[command(
    group(clap::ArgGroup::new("which").required(true).args(["tenant", "all"])),
    after_help = "Only containers and networks that carry both com.stackgen.tenant=<tenant> and the compose project <tenant> are touched. The data directory (BASE_DIR/tenants/<tenant>/data) is kept unless --purge-data; before deleting it, teardown shows what goes, with sizes, and asks you to type the tenant name."
)]
pub struct TeardownArgs {
    /// The tenant to tear down
    #[arg(value_name = "TENANT")]
    pub tenant: Option<String>,
    /// Every tenant in the manifest
    #[arg(long, conflicts_with = "tenant")]
    pub all: bool,
    /// Also delete the data directory and the rendered AppArmor profiles
    #[arg(long)]
    pub purge_data: bool,
    /// Do not ask for confirmation (for scripts; without a terminal teardown refuses otherwise)
    #[arg(long)]
    pub yes: bool,
    /// First take a backup (as `stackgen backup --to DIR`) into DIR
    #[arg(long, value_name = "DIR")]
    pub backup: Option<PathBuf>,
    /// Print what would be removed and the commands, change nothing
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
#[command(
    after_help = "One archive per run, <tenant>-<UTC stamp>.tar.gz, mode 0600 in a 0700 folder: postgres is dumped with pg_dumpall inside its container, redis snapshotted with SAVE, every other data folder copied while its services are briefly stopped (the output says for how long). The archive lists every file with its SHA-256 and the tenant's manifest settings, never a secret value. Example schedule (cron): `17 3 * * * cd /srv/platform && stackgen backup --all --keep 14`."
)]
pub struct BackupArgs {
    /// The tenant to back up
    #[arg(
        value_name = "TENANT",
        required_unless_present = "all",
        conflicts_with = "all"
    )]
    pub tenant: Option<String>,
    /// Every tenant in the manifest, one after the other
    #[arg(long)]
    pub all: bool,
    /// Where the archive goes [default: BACKUP_DIR/<tenant>, else BASE_DIR/backups/<tenant>]
    #[arg(long, value_name = "DIR")]
    pub to: Option<PathBuf>,
    /// After a successful backup, keep only the tenant's N newest archives in that folder
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub keep: Option<u32>,
    /// Print how each data folder would be captured, change nothing
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Every checksum is verified before anything changes. The tenant must be stopped (`stackgen down TENANT`) and its data folder empty, unless --replace, which takes a safety backup of what is there first. Afterwards `stackgen up TENANT` starts it on the restored data."
)]
pub struct RestoreArgs {
    /// The tenant to restore into
    #[arg(value_name = "TENANT")]
    pub tenant: String,
    /// The archive
    #[arg(long, value_name = "ARCHIVE")]
    pub from: PathBuf,
    /// The archive is of this other tenant (its paths and owners are rewritten for TENANT)
    #[arg(long, value_name = "NAME")]
    pub from_tenant: Option<String>,
    /// Replace a non-empty data folder (after a safety backup of it)
    #[arg(long)]
    pub replace: bool,
    /// Do not ask before replacing data (for scripts)
    #[arg(long)]
    pub yes: bool,
    /// Verify the archive and print what would be restored, change nothing
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
#[command(
    after_help = "The service gets the tenant's user, security options, AppArmor profile, labels, networks and a data directory (BASE_DIR/tenants/<tenant>/data/<name>), and a 127.0.0.1 port from the tenant's range. If the tenant is running, only the new service is started and caddy is reloaded."
)]
pub struct AddServiceArgs {
    /// The tenant
    #[arg(value_name = "TENANT")]
    pub tenant: String,
    /// The compose service name (lower-case letters, digits, dashes; not a catalog name)
    #[arg(value_name = "NAME")]
    pub name: String,
    /// A pinned image reference, e.g. ghcr.io/me/app:1.2 (not `latest`)
    #[arg(long, value_name = "IMAGE")]
    pub image: String,
    /// The port the service listens on inside its container
    #[arg(long, value_name = "PORT")]
    pub port: String,
    /// An environment variable (repeatable)
    #[arg(long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// A directory under the service's data directory mounted at /path (repeatable)
    #[arg(long = "volume", value_name = "NAME:/PATH")]
    pub volumes: Vec<String>,
    /// Route <SUB>.<tenant domain> to the service through caddy
    #[arg(long, value_name = "SUB")]
    pub route: Option<String>,
    /// The healthcheck, a shell command run in the container (default: an HTTP probe of PORT)
    #[arg(long, value_name = "CMD")]
    pub healthcheck: Option<String>,
}

#[derive(Debug, Args)]
pub struct RemoveServiceArgs {
    /// The tenant
    #[arg(value_name = "TENANT")]
    pub tenant: String,
    /// The custom service to remove
    #[arg(value_name = "NAME")]
    pub name: String,
    /// Also delete its data directory, BASE_DIR/tenants/<tenant>/data/<name>
    #[arg(long)]
    pub purge_data: bool,
}
