//! How generated files refer to manifest values: secrets by reference, never by value.
//!
//! Compose interpolates `${VAR:?message}` from the `--env-file` at deploy time, so the stack file
//! carries only the variable's name. Inline values are escaped (`$` → `$$`) so compose keeps them
//! literal.

use crate::manifest::Tenant;

/// The compose reference to one of the tenant's secrets; deploys fail loudly when it is unset.
pub fn secret(tenant: &Tenant, name: &str) -> String {
    reference(&tenant.key(name))
}

/// `${KEY:?…}` for a manifest key: compose stops with this message when the key is unset or empty.
pub fn reference(key: &str) -> String {
    let operator = crate::platform::catalog::Catalog::get()
        .components
        .iter()
        .flat_map(|c| &c.operator_secrets)
        .any(|s| key.ends_with(&format!("__{s}")));
    if operator {
        format!("${{{key}:?put the key from your provider into {key} in the manifest}}")
    } else {
        format!("${{{key}:?set {key} in the manifest (stackgen init generates it)}}")
    }
}

/// The database URL of one of the tenant's postgres databases.
pub fn postgres_url(tenant: &Tenant, database: &str) -> String {
    format!(
        "postgresql://stackgen:{}@postgres:5432/{database}",
        secret(tenant, "POSTGRES_PASSWORD")
    )
}

/// The URL of one logical database of the tenant's redis.
pub fn redis_url(tenant: &Tenant, db: u32) -> String {
    format!(
        "redis://:{}@redis:6379/{db}",
        secret(tenant, "REDIS_PASSWORD")
    )
}

/// Escapes an inline value for compose: a literal `$` is written `$$`.
pub fn escape_inline(value: &str) -> String {
    value.replace('$', "$$")
}

/// The tenant name as an identifier for collection and table names (`team-a` → `team_a`).
pub fn ident(tenant: &Tenant) -> String {
    tenant.name.replace('-', "_")
}
