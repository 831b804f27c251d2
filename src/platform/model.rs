//! The platform model: one tenant × the catalog → the compose services that tenant runs.
//!
//! Resolves which services are rendered, their images (pinned default, manifest override,
//! registry prefix, pgvector variant) and where their data lives. Pure: no I/O.

use std::borrow::Cow;

use crate::manifest::custom::{CustomService, RESERVED_PORTS};
use crate::manifest::{Platform, Tenant};
use crate::platform::catalog::{
    Catalog, Network, PortSpec, Route, ServiceDef, UserPolicy, PGVECTOR_IMAGE, PGVECTOR_IMAGE_KEY,
};
use crate::platform::vectordb;

/// One compose service of one tenant, before policy and templates.
#[derive(Debug, Clone)]
pub struct ResolvedService {
    pub name: String,
    pub component: String,
    /// The catalog's definition, or one built for a custom service.
    pub def: Cow<'static, ServiceDef>,
    pub image: String,
    /// Set for services added with `stackgen add-service`.
    pub custom: Option<CustomService>,
    /// `BASE_DIR/tenants/<tenant>/data/<component>`.
    pub data_dir: String,
}

/// The services a tenant runs, in catalog order (infrastructure first), then its custom
/// services, then caddy, which starts last.
pub fn services(platform: &Platform, tenant: &Tenant) -> Vec<ResolvedService> {
    let catalog = Catalog::get();
    let mut out: Vec<ResolvedService> = catalog
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
                def: Cow::Borrowed(def),
                image: image(platform, tenant, name),
                custom: None,
                data_dir: data_dir(platform, tenant, &component.name),
            })
        })
        .collect();
    let caddy = out
        .iter()
        .position(|s| s.name == "caddy")
        .map(|i| out.remove(i));
    for c in &tenant.custom {
        out.push(ResolvedService {
            name: c.name.clone(),
            component: c.name.clone(),
            def: Cow::Owned(custom_def(tenant, c)),
            image: with_registry(platform, &c.image),
            custom: Some(c.clone()),
            data_dir: data_dir(platform, tenant, &c.name),
        });
    }
    out.extend(caddy);
    out
}

/// The policy data of a custom service: like a built-in web app, with a writable root because
/// stackgen cannot know what an arbitrary image writes.
fn custom_def(tenant: &Tenant, c: &CustomService) -> ServiceDef {
    ServiceDef {
        image: Some(c.image.clone()),
        image_from: None,
        networks: vec![Network::Internal, Network::Edge],
        network: Default::default(),
        user: UserPolicy::Tenant,
        why: None,
        read_only: false,
        read_only_why: Some(
            "custom image: stackgen cannot know whether it runs with a read-only root".into(),
        ),
        tmpfs: vec!["/tmp".into()],
        cap_add: Vec::new(),
        uses: Vec::new(),
        loopback: Some(PortSpec {
            offset: c.host_port - tenant.ports.0,
            port: c.port,
            protocol: None,
        }),
        routes: c
            .route
            .iter()
            .map(|r| Route {
                subdomain: r.clone(),
                port: c.port,
                paths: Vec::new(),
            })
            .collect(),
        files: Vec::new(),
        data_files: Vec::new(),
        apparmor: Default::default(),
        contract: None,
    }
}

/// The first host port a custom service may take (the ones before belong to the catalog).
pub fn first_custom_port(tenant: &Tenant) -> u16 {
    tenant.ports.0.saturating_add(RESERVED_PORTS)
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
    with_registry(platform, chosen)
}

/// Puts `IMAGE_REGISTRY` (when set) in front of an image.
fn with_registry(platform: &Platform, image: &str) -> String {
    match &platform.image_registry {
        Some(registry) => format!("{registry}/{}", strip_registry_host(image)),
        None => image.to_string(),
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

/// The folder under the tenant's root that holds its generated config files (a mirror of
/// `<stacks-dir>/<tenant>/`) on the host of another engine (`crate::ops::engines::push_config`).
pub const CONFIG_DIR: &str = "config";

/// Where the tenant's services mount their config files from, as the stack file writes it:
/// `./<tenant>` (under the stacks directory, resolved by compose on this machine) for a tenant
/// on the current engine; `BASE_DIR/tenants/<tenant>/config` for a tenant on another engine,
/// whose daemon resolves bind-mount sources on its own host, where the stacks directory is not.
pub fn config_source(platform: &Platform, tenant: &Tenant) -> String {
    if tenant.docker_context.is_some() {
        format!("{}/{CONFIG_DIR}", tenant_root(platform, tenant))
    } else {
        format!("./{}", tenant.name)
    }
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
