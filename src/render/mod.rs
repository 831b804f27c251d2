//! Stage 4, the targets: rendering a tenant's model and policy into files.
//!
//! - `compose`: the Docker Compose stack and its config files; `apparmor`: the AppArmor
//!   profiles the stack names; `edge`: the front door's stack and Caddyfile.
//! - `kubernetes`: the same tenant as Kubernetes manifests, from the same model and policy.
//! - `templates`: the embedded minijinja environment; `yaml`: the block-style emitter.

pub mod apparmor;
pub mod compose;
pub mod edge;
pub mod kubernetes;
pub mod templates;
pub mod yaml;

use std::path::PathBuf;

/// One generated file, with its path relative to the stacks directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedFile {
    pub path: PathBuf,
    pub content: String,
}

/// How the header names the manifest and stack paths (as the operator typed them).
#[derive(Debug, Clone)]
pub struct Display {
    pub manifest: String,
    pub stacks_dir: String,
}
