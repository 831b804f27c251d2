//! Stage 3, the policy: user, capabilities, AppArmor, read-only root, networks, ports,
//! health-gated dependencies and labels, decided here for every service from the catalog —
//! never in templates, and once for every target (no compose or Kubernetes type here).
//!
//! `user` decides who a service runs as and what it may add back; `order` what it waits for.

mod order;
mod user;

use indexmap::IndexMap;

use crate::manifest::Tenant;
use crate::platform::catalog::{ApparmorProfile, Network, NetworkMode, ServiceDef, UserPolicy};
use crate::platform::model::ResolvedService;

/// Label every container and network carries; destructive commands act only on what has it.
pub const TENANT_LABEL: &str = "com.stackgen.tenant";
pub const SERVICE_LABEL: &str = "com.stackgen.service";
/// The label naming the deployment (manifest) that owns a container or network.
pub const DEPLOYMENT_LABEL: &str = "com.stackgen.deployment";

/// What the policy decides for one service, for every target: compose renders it as `user`,
/// `tmpfs`, `security_opt`, `network_mode` and `ports` strings (`crate::render::compose`),
/// Kubernetes as a security context, volumes, pods and Services (`crate::render::kubernetes`).
#[derive(Debug, Clone)]
pub struct Policy {
    /// UID and GID the service runs as; `None`: the image's own start (root, or root that drops
    /// to the tenant's UID itself).
    pub user: Option<(u32, u32)>,
    pub read_only: bool,
    /// Paths that get a private in-memory file system, owned by `user`.
    pub tmpfs: Vec<String>,
    /// Capabilities added back after dropping all.
    pub cap_add: Vec<String>,
    /// The AppArmor profile's name.
    pub apparmor_profile: String,
    /// The tenant networks the service joins (`internal`, `edge`, `front`).
    pub networks: Vec<&'static str>,
    /// The service whose network namespace this one shares (openclaw in tailscale's).
    pub network_of: Option<String>,
    /// Host ports published for the service.
    pub ports: Vec<Binding>,
    /// Services that must be healthy before this one starts.
    pub depends_on: Vec<String>,
    pub labels: IndexMap<String, String>,
    /// Reasons for every deviation from the hardened default, shown in the stack file.
    pub exceptions: Vec<String>,
    /// UID:GID that owns the service's data directory.
    pub data_owner: (u32, u32),
    pub non_root: bool,
}

/// One published port: `host_ip:host_port` on the host to `container_port` in the service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    pub host_ip: &'static str,
    pub host_port: u16,
    pub container_port: u16,
    /// `udp`, or `None` for TCP.
    pub protocol: Option<String>,
}

/// The compose network keys and their docker names.
pub fn network_name(tenant: &Tenant, key: &str) -> String {
    match key {
        "edge" => format!("ai-platform-{}", tenant.name),
        "front" => format!("ai-platform-{}-front", tenant.name),
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

/// Capabilities every profile denies explicitly, whatever a stack adds (a `deny` beats an
/// allow): kernel modules, raw I/O, raw sockets, tracing, MAC policy, clock, reboot, kernel log.
pub const DENIED_CAPABILITIES: [&str; 9] = [
    "sys_module",
    "sys_rawio",
    "net_raw",
    "sys_ptrace",
    "mac_admin",
    "mac_override",
    "sys_time",
    "sys_boot",
    "syslog",
];

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

/// Every decision for one service of a tenant (`all`: every service the tenant runs).
pub fn for_service(tenant: &Tenant, svc: &ResolvedService, all: &[ResolvedService]) -> Policy {
    let def: &ServiceDef = &svc.def;
    let mut exceptions = Vec::new();
    let cap_add = user::capabilities(tenant, svc, &mut exceptions);
    let who = user::decide(tenant, svc, &mut exceptions);
    if !def.read_only {
        exceptions.push(format!(
            "writable root filesystem: {}",
            def.read_only_why.as_deref().unwrap_or_default()
        ));
    }
    let (networks, network_of) = networks(def);
    Policy {
        user: who.user,
        read_only: def.read_only,
        tmpfs: def.tmpfs.clone(),
        cap_add,
        apparmor_profile: apparmor_profile(tenant, def.apparmor),
        networks,
        network_of,
        ports: ports(tenant, def),
        depends_on: order::depends_on(tenant, svc, all),
        labels: labels(tenant, svc),
        exceptions,
        data_owner: who.data_owner,
        non_root: who.non_root,
    }
}

/// The tenant networks a service joins, or the service whose network namespace it shares.
fn networks(def: &ServiceDef) -> (Vec<&'static str>, Option<String>) {
    match def.network {
        NetworkMode::Sidecar => (Vec::new(), Some("tailscale".to_string())),
        NetworkMode::Networks => (
            def.networks
                .iter()
                .map(|n| match n {
                    Network::Internal => "internal",
                    Network::Edge => "edge",
                    Network::Front => "front",
                })
                .collect(),
            None,
        ),
    }
}

/// Host ports: only on loopback, from the tenant's range (the front door publishes 80/443).
fn ports(tenant: &Tenant, def: &ServiceDef) -> Vec<Binding> {
    def.loopback
        .iter()
        .map(|p| Binding {
            host_ip: "127.0.0.1",
            host_port: tenant.ports.0 + p.offset,
            container_port: p.port,
            protocol: p.protocol.clone(),
        })
        .collect()
}

/// The labels that tie a container to its tenant, service, component and manifest.
fn labels(tenant: &Tenant, svc: &ResolvedService) -> IndexMap<String, String> {
    let mut labels = IndexMap::new();
    labels.insert(TENANT_LABEL.to_string(), tenant.name.clone());
    labels.insert(SERVICE_LABEL.to_string(), svc.name.clone());
    labels.insert("com.stackgen.component".to_string(), svc.component.clone());
    // Which manifest owns the container: every command that changes a tenant checks it.
    if let Some(id) = &tenant.deployment {
        labels.insert(DEPLOYMENT_LABEL.to_string(), id.clone());
    }
    labels
}

/// The policy summary `render` prints per tenant: how many services run as the tenant's own
/// UIDs, then one indented line per service that does not, with the reason (root, a self-drop,
/// or the image's own user because its contract refuses a foreign UID).
pub fn summary(tenant: &Tenant, services: &[ResolvedService]) -> String {
    let own = [
        (tenant.uid, tenant.gid),
        (tenant.openclaw_uid, tenant.openclaw_gid),
    ];
    let policies: Vec<(&ResolvedService, Policy)> = services
        .iter()
        .map(|s| (s, for_service(tenant, s, services)))
        .collect();
    let is_own = |p: &Policy| p.user.is_some_and(|u| own.contains(&u));
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
    for (name, def) in &crate::platform::catalog::Catalog::get().services {
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
