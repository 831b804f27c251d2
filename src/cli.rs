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
    /// Comma-separated catalog names, or `all`
    #[arg(long, value_name = "LIST", default_value = "all")]
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
