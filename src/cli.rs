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
    /// Load a tenant's AppArmor profiles into the host kernel
    #[command(subcommand)]
    Apparmor(ApparmorCommand),
    /// Check the host, prepare the data, then `docker compose up --wait` a tenant
    Up(UpArgs),
    /// Stop and remove a tenant's containers and networks; its data is kept
    Down(DownArgs),
    /// Restart a tenant's services (all, or the ones named)
    Restart(RestartArgs),
    /// Show a tenant's logs (all services, or one)
    Logs(LogsArgs),
    /// Every service of every tenant (or one): state, health, ports, image
    Status(StatusArgs),
    /// Re-render a tenant's Caddyfile and reload caddy in place
    ReloadProxy(ReloadProxyArgs),
    /// Store a new tailscale auth key and re-authenticate the sidecar (state kept)
    RefreshTailscaleKey(RefreshTailscaleKeyArgs),
    /// Generate new secrets, apply them, and recreate the services that use them
    RotateSecrets(RotateSecretsArgs),
    /// Check engine, compose, AppArmor, validators, ports, disk and the manifest
    Doctor,
    /// Add a service that is not in the catalog to one tenant, and start it if the tenant runs
    AddService(AddServiceArgs),
    /// Remove a service added with add-service (its data is kept unless --purge-data)
    RemoveService(RemoveServiceArgs),
    /// Remove a tenant's containers and networks (only its own); --purge-data also deletes its data
    Teardown(TeardownArgs),
    /// The built-in catalog: each service's pinned image and its image contract
    Catalog(CatalogArgs),
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
    #[arg(long, value_name = "LIST", default_value = crate::init::DEFAULT_SERVICES)]
    pub services: String,
    /// The platform domain; tenants get <tenant>.<domain>
    #[arg(long, value_name = "DOMAIN")]
    pub domain: Option<String>,
    /// Where tenant data lives (BASE_DIR/tenants/<tenant>/data/<service>)
    #[arg(long, value_name = "DIR")]
    pub base_dir: Option<String>,
}

#[derive(Debug, Args)]
pub struct RenderArgs {
    /// Tenants to render (default: all)
    #[arg(value_name = "TENANT")]
    pub tenants: Vec<String>,
    /// Write nothing; exit 1 with a diff when files on disk differ from the manifest
    #[arg(long)]
    pub check: bool,
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

#[derive(Debug, Args)]
#[command(
    after_help = "Refuses (exit 1, with the diff) when the committed stack files differ from what the manifest renders, unless --render writes them first. Every preflight check runs before any container is touched."
)]
pub struct UpArgs {
    /// The tenant to start
    #[arg(value_name = "TENANT")]
    pub tenant: String,
    /// Start only these services (and what they wait for)
    #[arg(value_name = "SERVICE")]
    pub services: Vec<String>,
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

#[derive(Debug, Args)]
pub struct DownArgs {
    /// The tenant to stop
    #[arg(value_name = "TENANT")]
    pub tenant: String,
    /// Print the command, run nothing
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct RestartArgs {
    /// The tenant
    #[arg(value_name = "TENANT")]
    pub tenant: String,
    /// Services to restart (default: all)
    #[arg(value_name = "SERVICE")]
    pub services: Vec<String>,
    /// Print the command, run nothing
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// The tenant
    #[arg(value_name = "TENANT")]
    pub tenant: String,
    /// One service (default: all)
    #[arg(value_name = "SERVICE")]
    pub service: Option<String>,
    /// Keep printing new lines
    #[arg(short, long)]
    pub follow: bool,
    /// Print the command, run nothing
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// One tenant (default: every tenant in the manifest)
    #[arg(value_name = "TENANT")]
    pub tenant: Option<String>,
    /// JSON for scripts instead of the table
    #[arg(long)]
    pub json: bool,
    /// Print the command, run nothing
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct ReloadProxyArgs {
    /// The tenant whose caddy to reload
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
    /// First write a postgres dump and a tar archive of the data directory into DIR
    #[arg(long, value_name = "DIR")]
    pub backup: Option<PathBuf>,
    /// Print what would be removed and the commands, change nothing
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
