//! Names derived from tenant and service names must be unique on the host.
//!
//! Docker networks (`ai-platform-<tenant>`, `ai-platform-<tenant>-internal`), AppArmor profiles
//! (`ai-platform-<tenant>[-openclaw|-tailscale]`), container names (`<tenant>-<service>-1`) and
//! data directories (`<BASE_DIR>/tenants/<tenant>`) are global, but built by joining names with
//! dashes, and tenant names contain dashes: tenants `rt-n` and `rt-n-internal` would share a
//! network, and `add-service rt-c x-qdrant` would take tenant `rt-c-x`'s qdrant container name.
//! Two owners of one name would join each other's network, load each other's AppArmor rules or
//! recreate each other's containers, so the manifest is refused (exit 2) naming both.

use std::collections::HashMap;

use super::{parse, Builder, Tenant};
use crate::error::ManifestProblem;
use crate::platform::catalog::{ApparmorProfile, Catalog};
use crate::policy;

/// One derived name: what it is, the name, whose it is, and the manifest key that makes it.
struct Derived {
    kind: &'static str,
    name: String,
    owner: String,
    /// The manifest key of a custom service; `None` for the tenant itself (its TENANT line).
    key: Option<String>,
    tenant: String,
}

/// Every global name one tenant's stack uses.
fn derived(tenant: &Tenant) -> Vec<Derived> {
    let catalog = Catalog::get();
    let mut out = Vec::new();
    let mut push = |kind, name: String, owner: String, key: Option<String>| {
        out.push(Derived {
            kind,
            name,
            owner,
            key,
            tenant: tenant.name.clone(),
        })
    };
    let t = &tenant.name;
    push(
        "network",
        policy::network_name(tenant, "edge"),
        format!("tenant `{t}`'s edge network"),
        None,
    );
    push(
        "network",
        policy::network_name(tenant, "internal"),
        format!("tenant `{t}`'s internal network"),
        None,
    );
    push(
        "network",
        crate::policy::network_name(tenant, "front"),
        format!("tenant `{t}`'s front network"),
        None,
    );
    push(
        "data directory",
        format!("tenants/{t}"),
        format!("tenant `{t}`'s data directory"),
        None,
    );
    // Catalog services in the tenant's components (as `model::services` selects them).
    let mut kinds = Vec::new();
    for (name, def) in &catalog.services {
        if !tenant.has(&catalog.component_of(name).name) {
            continue;
        }
        if !kinds.contains(&def.apparmor) {
            kinds.push(def.apparmor);
        }
        push(
            "container",
            format!("{t}-{name}-1"),
            format!("tenant `{t}`'s service `{name}`"),
            None,
        );
    }
    for c in &tenant.custom {
        push(
            "container",
            format!("{t}-{}-1", c.name),
            format!("tenant `{t}`'s custom service `{}`", c.name),
            Some(format!(
                "{}__CUSTOM_{}_IMAGE",
                tenant.prefix,
                crate::platform::catalog::upper_snake(&c.name)
            )),
        );
    }
    if !tenant.custom.is_empty() && !kinds.contains(&ApparmorProfile::Default) {
        kinds.push(ApparmorProfile::Default);
    }
    for kind in kinds {
        push(
            "AppArmor profile",
            policy::apparmor_profile(tenant, kind),
            format!("tenant `{t}`'s {kind:?} profile").to_lowercase(),
            None,
        );
    }
    out
}

impl Builder<'_> {
    /// Refuses two owners of one derived name, naming both; the later one is located.
    pub(super) fn derived_names(&mut self, tenants: &[Tenant]) {
        let mut seen: HashMap<(&'static str, String), Derived> = HashMap::new();
        for tenant in tenants {
            for d in derived(tenant) {
                let slot = (d.kind, d.name.clone());
                let Some(first) = seen.get(&slot) else {
                    seen.insert(slot, d);
                    continue;
                };
                if first.tenant == d.tenant {
                    continue; // one tenant's own names (e.g. two profiles of one kind)
                }
                // A custom service is the easier thing to rename: point at it when one is involved.
                let at = if d.key.is_none() && first.key.is_some() {
                    first
                } else {
                    &d
                };
                let other = if std::ptr::eq(at, &d) { first } else { &d };
                let message = format!(
                    "{} `{}` is both {} and {}",
                    d.kind, d.name, at.owner, other.owner
                );
                let hint = match &at.key {
                    Some(_) => "rename the custom service (remove-service, then add-service with another name)",
                    None => "rename one of the tenants: names joined with `-` must not spell another tenant's names",
                };
                let (key, tenant) = (at.key.clone(), at.tenant.clone());
                match key {
                    Some(key) => {
                        self.problem(&key, (message, hint.into()));
                    }
                    None => {
                        let line = self
                            .tenant_lines
                            .iter()
                            .find(|e| e.value.trim() == tenant)
                            .map(|e| e.line);
                        self.problems.push(ManifestProblem {
                            file: self.path.to_path_buf(),
                            line,
                            key: Some("TENANT".into()),
                            message: parse::readable(&message),
                            hint: hint.into(),
                        });
                    }
                }
            }
        }
    }
}
