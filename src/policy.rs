//! The policy layer: user, capabilities, AppArmor, read-only root, networks, ports, health-gated
//! dependencies and labels, decided here for every service from the catalog — never in templates.

use indexmap::IndexMap;

use crate::catalog::{ApparmorProfile, NetworkMode, ServiceDef, UserPolicy};
use crate::manifest::Tenant;
use crate::model::ResolvedService;

/// Label every container and network carries; destructive commands act only on what has it.
pub const TENANT_LABEL: &str = "com.stackgen.tenant";
pub const SERVICE_LABEL: &str = "com.stackgen.service";

/// The policy-decided part of one compose service.
#[derive(Debug, Clone)]
pub struct Policy {
    pub user: Option<String>,
    pub read_only: bool,
    pub tmpfs: Vec<String>,
    pub cap_add: Vec<String>,
    pub security_opt: Vec<String>,
    pub networks: Vec<&'static str>,
    pub network_mode: Option<String>,
    pub ports: Vec<String>,
    pub depends_on: Vec<String>,
    pub labels: IndexMap<String, String>,
    /// Reasons for every deviation from the hardened default, shown in the stack file.
    pub exceptions: Vec<String>,
    /// UID:GID that owns the service's data directory.
    pub data_owner: (u32, u32),
    pub non_root: bool,
}

/// The compose network keys and their docker names.
pub fn network_name(tenant: &Tenant, key: &str) -> String {
    match key {
        "edge" => format!("ai-platform-{}", tenant.name),
        "front" => crate::edge::front_network(tenant),
        _ => format!("ai-platform-{}-internal", tenant.name),
    }
}

/// AppArmor profile names: one for ordinary services, stricter ones for openclaw and tailscale.
pub fn apparmor_profile(tenant: &Tenant, kind: ApparmorProfile) -> String {
    match kind {
        ApparmorProfile::Default => format!("ai-platform-{}", tenant.name),
        ApparmorProfile::Openclaw => format!("ai-platform-{}-openclaw", tenant.name),
        ApparmorProfile::Tailscale => format!("ai-platform-{}-tailscale", tenant.name),
    }
}

/// The catalog's `uses` entry that stands for the tenant's vector DB server, whichever it is.
pub const VECTOR_DB_USE: &str = "vector-db";

/// Why kernel-mode tailscale runs as root (shown in the stack file and docs/security.md).
pub const KERNEL_TAILSCALE_ROOT_WHY: &str =
    "kernel mode (TAILSCALE_MODE=kernel) needs root for NET_ADMIN on the tun device";
/// The one capability kernel-mode tailscale adds, and why.
pub const KERNEL_TAILSCALE_CAP: (&str, &str) = (
    "NET_ADMIN",
    "kernel-mode tailscale configures its tun device and routes",
);

/// Whether this is the tailscale sidecar of a tenant that chose kernel mode (`/dev/net/tun`).
pub fn is_kernel_tailscale(tenant: &Tenant, svc: &ResolvedService) -> bool {
    svc.name == "tailscale" && tenant.tailscale_mode == "kernel"
}

pub fn for_service(tenant: &Tenant, svc: &ResolvedService, all: &[ResolvedService]) -> Policy {
    let def: &ServiceDef = &svc.def;
    let mut exceptions = Vec::new();
    let tenant_ids = (tenant.uid, tenant.gid);
    let openclaw_ids = (tenant.openclaw_uid, tenant.openclaw_gid);

    let mut user_policy = def.user;
    let mut cap_add: Vec<String> = def.cap_add.iter().map(|c| c.cap.clone()).collect();
    for c in &def.cap_add {
        exceptions.push(format!("cap_add {}: {}", c.cap, c.why));
    }
    // Kernel-mode tailscale needs a tun device and NET_ADMIN, which only root can use: docker
    // gives added capabilities to root processes, not to a non-root `user:`.
    let kernel_tailscale = is_kernel_tailscale(tenant, svc);
    if kernel_tailscale {
        user_policy = UserPolicy::Root;
        let (cap, why) = KERNEL_TAILSCALE_CAP;
        cap_add.push(cap.into());
        exceptions.push(format!("cap_add {cap}: {why}"));
    }

    // The contract decides whether the tenant's UID works at all: an image that writes into
    // paths it owns (or refuses an unknown UID) runs as its own user instead, with its data
    // directory prepared for that user.
    if let Some(c) = def.contract.as_ref().filter(|c| !c.arbitrary_uid) {
        if matches!(user_policy, UserPolicy::Tenant | UserPolicy::Openclaw) {
            let (uid, gid) = c.image_ids();
            let why = c.arbitrary_uid_why.as_deref().unwrap_or_default();
            if uid == 0 {
                exceptions.insert(0, format!("runs as root: {why}"));
                user_policy = UserPolicy::Root;
            } else {
                exceptions.insert(
                    0,
                    format!(
                        "runs as the image's own user {uid}:{gid}, not the tenant's UID: {why}"
                    ),
                );
                user_policy = UserPolicy::Image(uid, gid);
            }
        }
    }

    let (user, data_owner, non_root) = match user_policy {
        UserPolicy::Image(uid, gid) => (Some(format!("{uid}:{gid}")), (uid, gid), true),
        UserPolicy::Tenant => (
            Some(format!("{}:{}", tenant.uid, tenant.gid)),
            tenant_ids,
            true,
        ),
        UserPolicy::Openclaw => (
            Some(format!("{}:{}", tenant.openclaw_uid, tenant.openclaw_gid)),
            openclaw_ids,
            true,
        ),
        UserPolicy::Root => {
            let why = if kernel_tailscale {
                KERNEL_TAILSCALE_ROOT_WHY
            } else {
                def.why.as_deref().unwrap_or_default()
            };
            if def.user == UserPolicy::Root || kernel_tailscale {
                exceptions.insert(0, format!("runs as root: {why}"));
            }
            // Root with `cap_drop: [ALL]` has no DAC_OVERRIDE: it can use a 0750 directory only
            // as its owner, so its data belongs to root (inside the tenant's tree all the same).
            (None, (0, 0), false)
        }
        UserPolicy::SelfDrop => {
            exceptions.insert(
                0,
                format!(
                    "starts as root and drops to {}:{} itself: {}",
                    tenant.uid,
                    tenant.gid,
                    def.why.as_deref().unwrap_or_default()
                ),
            );
            (None, tenant_ids, false)
        }
    };
    if !def.read_only {
        exceptions.push(format!(
            "writable root filesystem: {}",
            def.read_only_why.as_deref().unwrap_or_default()
        ));
    }

    let tmpfs = def
        .tmpfs
        .iter()
        .map(|p| format!("{p}:rw,nosuid,nodev"))
        .collect();
    let security_opt = vec![
        "no-new-privileges:true".to_string(),
        format!("apparmor={}", apparmor_profile(tenant, def.apparmor)),
    ];

    let (networks, network_mode) = match def.network {
        NetworkMode::Sidecar => (Vec::new(), Some("service:tailscale".to_string())),
        NetworkMode::Networks => (
            def.networks
                .iter()
                .map(|n| match n {
                    crate::catalog::Network::Internal => "internal",
                    crate::catalog::Network::Edge => "edge",
                    crate::catalog::Network::Front => "front",
                })
                .collect(),
            None,
        ),
    };

    let base = tenant.ports.0;
    let mut ports = Vec::new();
    if let Some(p) = &def.loopback {
        ports.push(format!("127.0.0.1:{}:{}", base + p.offset, p.port));
    }

    // Health-gated start: wait for what this service uses, when the tenant runs it. Caddy waits
    // for every service it routes to, so it comes up last.
    let rendered = |name: &str| all.iter().any(|s| s.name == name);
    // `vector-db` in the catalog means the tenant's vector DB server (postgres for pgvector).
    let mut depends_on: Vec<String> = def
        .uses
        .iter()
        .map(|u| match u.as_str() {
            VECTOR_DB_USE => crate::vectordb::server_service(tenant).to_string(),
            _ => u.clone(),
        })
        .filter(|u| rendered(u))
        .collect();
    if svc.name == "caddy" {
        depends_on.extend(
            all.iter()
                .filter(|s| !s.def.routes.is_empty())
                .map(|s| s.name.clone()),
        );
        for s in all.iter().filter(|s| !s.def.routes.is_empty()) {
            for r in &s.def.routes {
                depends_on.extend(
                    r.paths
                        .iter()
                        .map(|p| p.service.clone())
                        .filter(|n| rendered(n)),
                );
            }
        }
    }
    let mut seen = Vec::new();
    depends_on.retain(|d| {
        d != &svc.name && !seen.contains(d) && {
            seen.push(d.clone());
            true
        }
    });

    let mut labels = IndexMap::new();
    labels.insert(TENANT_LABEL.to_string(), tenant.name.clone());
    labels.insert(SERVICE_LABEL.to_string(), svc.name.clone());
    labels.insert("com.stackgen.component".to_string(), svc.component.clone());
    // Which manifest owns the container: every command that changes a tenant checks it.
    if let Some(id) = &tenant.deployment {
        labels.insert(crate::deployment::LABEL.to_string(), id.clone());
    }

    Policy {
        user,
        read_only: def.read_only,
        tmpfs,
        cap_add,
        security_opt,
        networks,
        network_mode,
        ports,
        depends_on,
        labels,
        exceptions,
        data_owner,
        non_root,
    }
}

/// The policy summary `render` prints per tenant: how many services run as the tenant's own
/// UIDs, then one indented line per service that does not, with the reason (root, a self-drop,
/// or the image's own user because its contract refuses a foreign UID).
pub fn summary(tenant: &Tenant, services: &[ResolvedService]) -> String {
    let own = [
        format!("{}:{}", tenant.uid, tenant.gid),
        format!("{}:{}", tenant.openclaw_uid, tenant.openclaw_gid),
    ];
    let policies: Vec<(&ResolvedService, Policy)> = services
        .iter()
        .map(|s| (s, for_service(tenant, s, services)))
        .collect();
    let is_own = |p: &Policy| p.user.as_ref().is_some_and(|u| own.contains(u));
    let count = policies.iter().filter(|(_, p)| is_own(p)).count();
    let mut out = format!(
        "{}: {count} of {} services run as the tenant's own UID",
        tenant.name,
        policies.len()
    );
    let others: Vec<&(&ResolvedService, Policy)> =
        policies.iter().filter(|(_, p)| !is_own(p)).collect();
    if !others.is_empty() {
        out.push_str("; the others:");
        for (s, p) in others {
            // The first exception is the user one: "runs as root: …", "runs as the image's own
            // user …" or "starts as root …".
            let why = p.exceptions.first().map(String::as_str).unwrap_or_default();
            out.push_str(&format!("\n    {}: {why}", s.name));
        }
    }
    out
}

/// Every exception to the hardened default that the catalog (and kernel-mode tailscale) can
/// produce, as a Markdown table for the README; a test keeps the two identical.
pub fn exception_table() -> String {
    let cell = |s: &str| s.replace('|', "\\|");
    let mut rows: Vec<(String, String, String)> = Vec::new();
    for (name, def) in &crate::catalog::Catalog::get().services {
        let why = def.why.as_deref().unwrap_or_default();
        match def.user {
            UserPolicy::Root => rows.push((name.clone(), "runs as root".into(), why.into())),
            UserPolicy::SelfDrop => rows.push((
                name.clone(),
                "starts as root, drops to the tenant UID itself".into(),
                why.into(),
            )),
            UserPolicy::Tenant | UserPolicy::Openclaw | UserPolicy::Image(..) => {
                if let Some(c) = def.contract.as_ref().filter(|c| !c.arbitrary_uid) {
                    let what = match c.image_ids() {
                        (0, _) => "runs as root".to_string(),
                        (u, g) => format!("runs as the image's own user {u}:{g}"),
                    };
                    let why = c.arbitrary_uid_why.as_deref().unwrap_or_default();
                    rows.push((name.clone(), what, why.into()));
                }
            }
        }
        for c in &def.cap_add {
            rows.push((name.clone(), format!("cap_add {}", c.cap), c.why.clone()));
        }
        if !def.read_only {
            let why = def.read_only_why.as_deref().unwrap_or_default();
            rows.push((name.clone(), "writable root filesystem".into(), why.into()));
        }
    }
    let kernel = "tailscale (TAILSCALE_MODE=kernel)".to_string();
    let (cap, cap_why) = KERNEL_TAILSCALE_CAP;
    rows.push((
        kernel.clone(),
        "runs as root".into(),
        KERNEL_TAILSCALE_ROOT_WHY.into(),
    ));
    rows.push((kernel.clone(), format!("cap_add {cap}"), cap_why.into()));
    rows.push((
        kernel,
        "device /dev/net/tun".into(),
        "the kernel-mode tunnel interface".into(),
    ));
    let mut out = String::from("| Service | Exception | Why |\n| --- | --- | --- |\n");
    for (service, what, why) in rows {
        out.push_str(&format!(
            "| {} | {} | {} |\n",
            cell(&service),
            cell(&what),
            cell(&why)
        ));
    }
    out
}
