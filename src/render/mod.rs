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
