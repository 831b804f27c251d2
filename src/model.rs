//! The platform model: one tenant × the catalog → the compose services that tenant runs.
//!
//! Resolves which services are rendered, their images (pinned default, manifest override,
//! registry prefix, pgvector variant) and where their data lives. Pure: no I/O.

use crate::catalog::{Catalog, ServiceDef, PGVECTOR_IMAGE, PGVECTOR_IMAGE_KEY};
use crate::manifest::{Platform, Tenant};
use crate::vectordb;

/// One compose service of one tenant, before policy and templates.
#[derive(Debug, Clone)]
pub struct ResolvedService {
    pub name: String,
    pub component: String,
    pub def: &'static ServiceDef,
    pub image: String,
    /// `BASE_DIR/tenants/<tenant>/data/<component>`.
    pub data_dir: String,
}

/// The services a tenant runs, in catalog order (infrastructure first, caddy last).
pub fn services(platform: &Platform, tenant: &Tenant) -> Vec<ResolvedService> {
    let catalog = Catalog::get();
    catalog
        .services
        .iter()
        .filter_map(|(name, def)| {
            let component = catalog.component_of(name);
            if !tenant.has(&component.name) {
                return None;
            }
            Some(ResolvedService {
                name: name.clone(),
                component: component.name.clone(),
                def,
                image: image(platform, tenant, name),
                data_dir: data_dir(platform, tenant, &component.name),
            })
        })
        .collect()
}

/// The image a service runs: the manifest's override or the pinned default, behind the registry.
pub fn image(platform: &Platform, tenant: &Tenant, service: &str) -> String {
    let catalog = Catalog::get();
    let (default, key) = if service == "postgres" && vectordb::postgres_is_pgvector(tenant) {
        (PGVECTOR_IMAGE, PGVECTOR_IMAGE_KEY.to_string())
    } else {
        catalog.default_image(service)
    };
    let chosen = platform
        .image_overrides
        .get(&key)
        .map_or(default, String::as_str);
    match &platform.image_registry {
        Some(registry) => format!("{registry}/{}", strip_registry_host(chosen)),
        None => chosen.to_string(),
    }
}

/// `ghcr.io/a/b:1` → `a/b:1`; `postgres:18` stays. The first path part is a host when it has a
/// dot or a port, or is `localhost` (the rule docker itself uses).
fn strip_registry_host(image: &str) -> &str {
    match image.split_once('/') {
        Some((first, rest))
            if first.contains('.') || first.contains(':') || first == "localhost" =>
        {
            rest
        }
        _ => image,
    }
}

/// Where a tenant's component keeps its data on the host.
pub fn data_dir(platform: &Platform, tenant: &Tenant, component: &str) -> String {
    format!(
        "{}/tenants/{}/data/{component}",
        platform.base_dir, tenant.name
    )
}

/// The tenant's root under BASE_DIR: the only tree stackgen ever creates, chowns or deletes.
pub fn tenant_root(platform: &Platform, tenant: &Tenant) -> String {
    format!("{}/tenants/{}", platform.base_dir, tenant.name)
}

#[cfg(test)]
mod tests {
    use super::strip_registry_host;

    #[test]
    fn registry_host_is_stripped() {
        assert_eq!(strip_registry_host("ghcr.io/a/b:1"), "a/b:1");
        assert_eq!(strip_registry_host("localhost:5000/x:1"), "x:1");
        assert_eq!(strip_registry_host("postgres:18"), "postgres:18");
        assert_eq!(strip_registry_host("qdrant/qdrant:v1"), "qdrant/qdrant:v1");
    }
}
