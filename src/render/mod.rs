//! Stage 4, the targets: rendering a tenant's model and policy into files.
//!
//! `compose` renders the Docker Compose stack and its config files, `apparmor` the AppArmor
//! profiles it names;
//! `templates` is the embedded minijinja environment, `refs` how generated files name manifest
//! values (secrets by reference), `yaml` the block-style emitter the stack files use.

pub mod apparmor;
pub mod compose;
pub mod edge;
pub mod kubernetes;
pub mod refs;
pub mod templates;
pub mod yaml;
