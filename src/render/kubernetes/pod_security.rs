//! The tenant's Namespace and the Pod Security Standard it enforces: the strictest level every
//! container meets, from the policy's user and capabilities (and kernel-mode tailscale's
//! device), with the policy's reasons for each exception in an annotation.

use serde_yaml::{Mapping, Value};

use super::objects::{labels, map, Object};
use super::workload::Mount;
use super::{namespace as ns_name, Tenancy};

/// The Pod Security Standard levels, weakest last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Restricted,
    Baseline,
    Privileged,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Restricted => "restricted",
            Level::Baseline => "baseline",
            Level::Privileged => "privileged",
        }
    }
}

/// The capabilities the baseline standard allows a container to add (Pod Security Standards,
/// "Capabilities"); `restricted` allows only NET_BIND_SERVICE.
const BASELINE_CAPS: [&str; 13] = [
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];

/// The weakest level each container needs, and why (empty for `restricted`).
pub fn pod_security(t: &Tenancy) -> (Level, Vec<String>) {
    let mut level = Level::Restricted;
    let mut why = Vec::new();
    for u in &t.units {
        for m in &u.members {
            let p = &m.policy;
            let mut need = Level::Restricted;
            if p.user.is_none() {
                need = need.max(Level::Baseline);
            }
            for c in &p.cap_add {
                need = need.max(if c == "NET_BIND_SERVICE" {
                    Level::Restricted
                } else if BASELINE_CAPS.contains(&c.as_str()) {
                    Level::Baseline
                } else {
                    Level::Privileged
                });
            }
            if m.mounts.iter().any(|x| matches!(x, Mount::Device { .. })) {
                need = Level::Privileged;
            }
            if need > Level::Restricted {
                // The policy's reasons, the same lines compose shows as x-stackgen-exceptions.
                let reasons: Vec<&str> = p
                    .exceptions
                    .iter()
                    .filter(|e| !e.starts_with("writable root filesystem"))
                    .map(String::as_str)
                    .collect();
                why.push(format!(
                    "{} needs {}: {}",
                    m.svc.name,
                    need.as_str(),
                    reasons.join("; ")
                ));
            }
            level = level.max(need);
        }
    }
    (level, why)
}

pub fn namespace(t: &Tenancy) -> Object {
    let (level, why) = pod_security(t);
    let mut labels = match labels(t, None) {
        Value::Mapping(m) => m,
        _ => unreachable!(),
    };
    labels.insert(
        "pod-security.kubernetes.io/enforce".into(),
        level.as_str().into(),
    );
    // Warn and audit at `restricted` whatever is enforced: every exception stays visible.
    labels.insert(
        "pod-security.kubernetes.io/warn".into(),
        "restricted".into(),
    );
    labels.insert(
        "pod-security.kubernetes.io/audit".into(),
        "restricted".into(),
    );
    let mut meta = Mapping::new();
    meta.insert("name".into(), ns_name(t.tenant).into());
    meta.insert("labels".into(), Value::Mapping(labels));
    if !why.is_empty() {
        meta.insert(
            "annotations".into(),
            map([("stackgen/pod-security-exceptions", why.join("\n").into())]),
        );
    }
    Object::new(
        "Namespace",
        &ns_name(t.tenant),
        map([
            ("apiVersion", "v1".into()),
            ("kind", "Namespace".into()),
            ("metadata", Value::Mapping(meta)),
        ]),
    )
}
