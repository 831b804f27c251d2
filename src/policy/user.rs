//! Who a service runs as, and what it adds back after dropping every capability.
//!
//! The catalog's user policy is the start; the image contract overrides it (an image that
//! refuses a foreign UID runs as its own user, or root when that user is root), and
//! kernel-mode tailscale needs root for NET_ADMIN. Every deviation is recorded as an exception
//! with its reason, the first one being the user's.

use super::{is_kernel_tailscale, KERNEL_TAILSCALE_CAP, KERNEL_TAILSCALE_ROOT_WHY};
use crate::manifest::Tenant;
use crate::platform::catalog::UserPolicy;
use crate::platform::model::ResolvedService;

/// The user decision.
pub struct Who {
    /// `None`: the image's own start (root, or root that drops itself).
    pub user: Option<(u32, u32)>,
    pub data_owner: (u32, u32),
    pub non_root: bool,
}

/// The capabilities added back: the catalog's, plus NET_ADMIN for kernel-mode tailscale.
pub fn capabilities(
    tenant: &Tenant,
    svc: &ResolvedService,
    exceptions: &mut Vec<String>,
) -> Vec<String> {
    let mut caps: Vec<String> = svc.def.cap_add.iter().map(|c| c.cap.clone()).collect();
    for c in &svc.def.cap_add {
        exceptions.push(format!("cap_add {}: {}", c.cap, c.why));
    }
    if is_kernel_tailscale(tenant, svc) {
        let (cap, why) = KERNEL_TAILSCALE_CAP;
        caps.push(cap.into());
        exceptions.push(format!("cap_add {cap}: {why}"));
    }
    caps
}

/// Who the service runs as and who owns its data; the reason goes first into `exceptions`.
pub fn decide(tenant: &Tenant, svc: &ResolvedService, exceptions: &mut Vec<String>) -> Who {
    let def = &svc.def;
    let tenant_ids = (tenant.uid, tenant.gid);
    // Kernel-mode tailscale needs a tun device and NET_ADMIN, which only root can use: docker
    // gives added capabilities to root processes, not to a non-root `user:`.
    let kernel_tailscale = is_kernel_tailscale(tenant, svc);
    let mut policy = if kernel_tailscale {
        UserPolicy::Root
    } else {
        def.user
    };
    // The contract decides whether the tenant's UID works at all: an image that writes into
    // paths it owns (or refuses an unknown UID) runs as its own user instead, with its data
    // directory prepared for that user.
    if let Some(c) = def.contract.as_ref().filter(|c| !c.arbitrary_uid) {
        if matches!(policy, UserPolicy::Tenant | UserPolicy::Openclaw) {
            let (uid, gid) = c.image_ids();
            let why = c.arbitrary_uid_why.as_deref().unwrap_or_default();
            if uid == 0 {
                exceptions.insert(0, format!("runs as root: {why}"));
                policy = UserPolicy::Root;
            } else {
                exceptions.insert(
                    0,
                    format!(
                        "runs as the image's own user {uid}:{gid}, not the tenant's UID: {why}"
                    ),
                );
                policy = UserPolicy::Image(uid, gid);
            }
        }
    }
    match policy {
        UserPolicy::Image(uid, gid) => fixed((uid, gid)),
        UserPolicy::Tenant => fixed(tenant_ids),
        UserPolicy::Openclaw => fixed((tenant.openclaw_uid, tenant.openclaw_gid)),
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
            Who {
                user: None,
                data_owner: (0, 0),
                non_root: false,
            }
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
            Who {
                user: None,
                data_owner: tenant_ids,
                non_root: false,
            }
        }
    }
}

fn fixed(ids: (u32, u32)) -> Who {
    Who {
        user: Some(ids),
        data_owner: ids,
        non_root: true,
    }
}
