//! `stackgen-backup.json`, the archive's own description: which tenant, which stackgen, which
//! services and images, how each data directory was captured, the tenant's manifest settings
//! (secret values replaced by salted fingerprints), and the size and SHA-256 of every member.
//! `format` is bumped whenever a reader of the old version would restore a new archive wrongly.

use std::collections::BTreeMap;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::archive::hex;
use crate::manifest::{Manifest, Tenant};

/// The member that describes the archive; written last, after every member it lists.
pub const META_NAME: &str = "stackgen-backup.json";
/// The format this stackgen writes and the newest it reads.
pub const FORMAT: u32 = 1;
/// Marks the JSON as ours (a tar of something else with a file of that name is refused).
pub const KIND: &str = "stackgen-backup";
/// The member holding `pg_dumpall`'s output.
pub const POSTGRES_DUMP: &str = "postgres.sql";
/// The member holding redis's `SAVE` snapshot.
pub const REDIS_DUMP: &str = "redis/dump.rdb";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileSum {
    pub size: u64,
    pub sha256: String,
}

impl FileSum {
    /// A link is listed by the hash of its target, so a changed target is caught too.
    pub fn of_link(target: &str) -> FileSum {
        FileSum {
            size: 0,
            sha256: format!("link:{}", hex(&Sha256::digest(target.as_bytes()))),
        }
    }
}

/// How one data directory was captured.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// `pg_dumpall` inside the running postgres; restored into a fresh postgres.
    PgDumpall,
    /// redis `SAVE`, then its `dump.rdb`.
    RedisSave,
    /// The services were stopped for the copy and started again.
    StopCopyStart,
    /// Nothing ran on the directory: copied as it is.
    Files,
}

impl Method {
    pub fn describe(&self) -> &'static str {
        match self {
            Method::PgDumpall => "pg_dumpall inside the running container",
            Method::RedisSave => "redis SAVE, then its dump.rdb",
            Method::StopCopyStart => "stopped, copied, started again",
            Method::Files => "copied (nothing running on it)",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Component {
    /// The folder under `data/`.
    pub name: String,
    pub method: Method,
    /// The UID:GID the directory belongs to (its service's user) in the backed-up tenant.
    pub owner: (u32, u32),
    /// The services that were stopped for the copy.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stopped: Vec<String>,
    /// How long they were down, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub down_ms: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Service {
    pub name: String,
    pub image: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ids {
    pub uid: u32,
    pub gid: u32,
    pub openclaw_uid: u32,
    pub openclaw_gid: u32,
}

impl Ids {
    pub fn of(t: &Tenant) -> Ids {
        Ids {
            uid: t.uid,
            gid: t.gid,
            openclaw_uid: t.openclaw_uid,
            openclaw_gid: t.openclaw_gid,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meta {
    pub kind: String,
    pub format: u32,
    pub tenant: String,
    pub deployment: Option<String>,
    pub stackgen_version: String,
    /// UTC, `20261130T081500Z`.
    pub created: String,
    pub created_unix: u64,
    pub ids: Ids,
    pub services: Vec<Service>,
    pub components: Vec<Component>,
    /// The tenant's manifest keys (without its prefix) → value; secrets are not here.
    pub settings: IndexMap<String, String>,
    /// Secret keys (without prefix) → `sha256(salt, value)`, truncated: tells a restore whether
    /// the manifest still holds the secrets the data was written with, without storing them.
    pub secrets: IndexMap<String, String>,
    pub salt: String,
    pub files: BTreeMap<String, FileSum>,
}

impl Meta {
    /// Parses the description, refusing another program's file and a newer format first.
    pub fn parse(bytes: &[u8]) -> Result<Meta, String> {
        let value: serde_json::Value = serde_json::from_slice(bytes)
            .map_err(|e| format!("its {META_NAME} is not valid JSON ({e})"))?;
        if value.get("kind").and_then(|k| k.as_str()) != Some(KIND) {
            return Err(format!(
                "its {META_NAME} is not a stackgen backup description"
            ));
        }
        let format = value.get("format").and_then(|f| f.as_u64()).unwrap_or(0);
        if format > u64::from(FORMAT) {
            return Err(format!(
                "it is backup format {format}, newer than this stackgen reads ({FORMAT}): restore it with the stackgen that wrote it ({})",
                value
                    .get("stackgen_version")
                    .and_then(|v| v.as_str())
                    .unwrap_or("unknown version")
            ));
        }
        serde_json::from_value(value).map_err(|e| format!("its {META_NAME} is incomplete ({e})"))
    }
}

/// The salted fingerprint of a secret value (16 hex digits: enough to tell values apart, far
/// too little to matter as a guess oracle for generated secrets).
pub fn fingerprint(salt: &str, value: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"stackgen-backup-secret\0");
    h.update(salt.as_bytes());
    h.update([0]);
    h.update(value.as_bytes());
    hex(&h.finalize()[..8])
}

/// The tenant's keys from the manifest: settings with values, secrets as fingerprints only.
pub fn tenant_keys(
    manifest: &Manifest,
    tenant: &Tenant,
    salt: &str,
) -> (IndexMap<String, String>, IndexMap<String, String>) {
    let prefix = format!("{}__", tenant.prefix);
    let mut settings = IndexMap::new();
    let mut secrets = IndexMap::new();
    for e in manifest.entries.values() {
        let Some(short) = e.key.strip_prefix(&prefix) else {
            continue;
        };
        if tenant.secrets.contains_key(short) || crate::manifest::redact::is_secret_key(&e.key) {
            secrets.insert(short.to_string(), fingerprint(salt, &e.value));
        } else {
            settings.insert(short.to_string(), e.value.clone());
        }
    }
    (settings, secrets)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta_json(format: u32) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "kind": KIND, "format": format, "tenant": "t", "deployment": null,
            "stackgen_version": "9.9.9", "created": "x", "created_unix": 0,
            "ids": {"uid": 1, "gid": 1, "openclaw_uid": 2, "openclaw_gid": 2},
            "services": [], "components": [], "settings": {}, "secrets": {}, "salt": "s",
            "files": {}
        }))
        .unwrap()
    }

    #[test]
    fn a_newer_format_is_refused_by_name_and_an_old_one_read() {
        assert!(Meta::parse(&meta_json(FORMAT)).is_ok());
        let err = Meta::parse(&meta_json(FORMAT + 1)).unwrap_err();
        assert!(
            err.contains("newer than this stackgen") && err.contains("9.9.9"),
            "{err}"
        );
        let err = Meta::parse(b"{\"kind\":\"other\"}").unwrap_err();
        assert!(err.contains("not a stackgen backup"), "{err}");
    }

    #[test]
    fn fingerprints_depend_on_salt_and_value_and_hide_it() {
        let a = fingerprint("s1", "secret-value");
        assert_eq!(a, fingerprint("s1", "secret-value"));
        assert_ne!(a, fingerprint("s2", "secret-value"));
        assert_ne!(a, fingerprint("s1", "secret-valuf"));
        assert_eq!(a.len(), 16);
        assert!(!a.contains("secret"));
    }
}
