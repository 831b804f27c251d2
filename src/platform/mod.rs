//! Stage 2, the platform model: what a tenant runs, independent of any deployment target.
//!
//! `catalog` (the built-in services, from templates/catalog.yml) × a manifest tenant → `model`
//! (resolved services, images, data folders); `vectordb` wires the tenant's vector DB into its
//! consumers; `refs` how the model names manifest values (secrets by reference, which each
//! renderer translates); `contract` holds what each pinned image really is and the rules that
//! check it.

pub mod catalog;
pub mod contract;
pub mod model;
pub mod refs;
pub mod vectordb;
