//! The `.env` manifest: read, check every key and value, and build the typed `Manifest`.
//!
//! Platform keys have no `__`; tenant keys are `<TENANT>__<SETTING>` (e.g. `TEAM_A__VECTOR_DB`),
//! where `<TENANT>` is the tenant name upper-cased with `-` as `_`. The double underscore keeps the
//! split unambiguous: tenant names never contain `_`, so no tenant prefix can swallow a setting.
//! All problems are collected and reported together, each with file, line and key.

pub mod custom;
pub mod deployment_id;
pub mod edge;
pub mod edit;
pub mod extend;
pub mod init;
mod names;
pub mod parse;
pub mod redact;
pub mod secrets;
pub mod values;

use std::path::{Path, PathBuf};

use indexmap::IndexMap;

use crate::error::{ManifestProblem, UsageError};
use crate::platform::catalog::{Catalog, VECTOR_DBS};
use custom::CustomService;
pub use parse::Entry;
use values::Invalid;

/// Platform-wide keys (besides `<SERVICE>_IMAGE` overrides).
pub const PLATFORM_KEYS: [&str; 14] = [
    "STACKGEN_MANIFEST_VERSION",
    "STACKGEN_DEPLOYMENT",
    "DOMAIN",
    "BASE_DIR",
    "TENANT",
    "IMAGE_REGISTRY",
    "TLS_MODE",
    "ACME_EMAIL",
    "BACKUP_DIR",
    "KUBE_STORAGE_CLASS",
    "EDGE_HTTP_PORT",
    "EDGE_HTTPS_PORT",
    "EDGE_BIND_ADDRESS",
    "EDGE_SUBNET",
];

/// Per-tenant settings (besides secrets).
pub const TENANT_SETTINGS: [&str; 12] = [
    "DOMAIN",
    "VECTOR_DB",
    "SERVICES",
    "UID",
    "GID",
    "OPENCLAW_UID",
    "OPENCLAW_GID",
    "PORT_RANGE",
    "TAILSCALE_MODE",
    "OLLAMA_MODEL",
    "EMBEDDING_MODEL",
    values::DOCKER_CONTEXT,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    /// Caddy's automatic HTTPS with a public CA (the tenant's ports must be reachable).
    Acme,
    /// Caddy's own local CA: for tests, private networks and examples.
    Internal,
}

#[derive(Debug, Clone)]
pub struct Platform {
    pub domain: String,
    pub base_dir: String,
    pub image_registry: Option<String>,
    pub tls: TlsMode,
    pub acme_email: Option<String>,
    /// Where `stackgen backup` writes (`<BACKUP_DIR>/<tenant>`); `None`: `BASE_DIR/backups`.
    pub backup_dir: Option<String>,
    /// The front door's ports and networks (`EDGE_*`, see `crate::render::edge`): those of the
    /// current context's, and the defaults of every other engine's.
    pub edge: edge::Settings,
    /// The front door of each other engine a tenant names (`<T>__DOCKER_CONTEXT`): `edge` with
    /// that engine's `EDGE__<CONTEXT>__*` keys applied. Use [`Platform::edge_of`].
    pub engine_edges: Vec<(String, edge::Settings)>,
    /// `<SERVICE>_IMAGE` → image, as set in the manifest.
    pub image_overrides: IndexMap<String, String>,
    /// The storage class of the Kubernetes target's volume claims; `None`: the cluster default.
    pub kube_storage_class: Option<String>,
}

impl Platform {
    /// The settings of the front door of `engine` (`None`: the current context).
    pub fn edge_of(&self, engine: Option<&str>) -> &edge::Settings {
        edge::settings_of(&self.edge, &self.engine_edges, engine)
    }
}

#[derive(Debug, Clone)]
pub struct Tenant {
    pub name: String,
    /// `TEAM_A` for `team-a`: the prefix of this tenant's keys.
    pub prefix: String,
    pub domain: String,
    pub vector_db: String,
    /// Selected components, in catalog order, including the vector DB's component.
    pub components: Vec<String>,
    pub uid: u32,
    pub gid: u32,
    pub openclaw_uid: u32,
    pub openclaw_gid: u32,
    pub ports: (u16, u16),
    pub tailscale_mode: String,
    pub ollama_model: String,
    pub embedding_model: String,
    /// Secret name (without prefix) → value. Only used to check presence and for leak tests.
    pub secrets: IndexMap<String, String>,
    /// Services outside the catalog, in the order the manifest declares them.
    pub custom: Vec<crate::manifest::custom::CustomService>,
    /// `<T>__DOCKER_CONTEXT`: the Docker context of the engine it runs on; `None` for the
    /// current context (see `crate::ops::engines`).
    pub docker_context: Option<String>,
    /// The manifest's `STACKGEN_DEPLOYMENT` (the same for every tenant): the label that proves
    /// a running container is this manifest's. `None` in a manifest from before it existed.
    pub deployment: Option<String>,
}

impl Tenant {
    /// The manifest key of one of this tenant's settings or secrets.
    pub fn key(&self, setting: &str) -> String {
        format!("{}__{setting}", self.prefix)
    }

    pub fn has(&self, component: &str) -> bool {
        self.components.iter().any(|c| c == component)
    }
}

#[derive(Debug, Clone)]
pub struct Manifest {
    pub path: PathBuf,
    pub text: String,
    pub entries: IndexMap<String, Entry>,
    pub platform: Platform,
    pub tenants: Vec<Tenant>,
}

impl Manifest {
    /// Reads and validates the manifest at `path`.
    pub fn load(path: &Path) -> Result<Manifest, UsageError> {
        let text = read(path)?;
        Self::from_text(path, &text)
    }

    pub fn from_text(path: &Path, text: &str) -> Result<Manifest, UsageError> {
        let (parsed, mut problems) = parse::parse(path, text);
        // Before any check: a problem (or a later diff) that quotes a secret prints it redacted.
        crate::manifest::redact::register(
            parsed
                .entries
                .values()
                .map(|e| (e.key.as_str(), e.value.as_str())),
        );
        let entries = parsed.entries;
        let mut b = Builder {
            path,
            entries: &entries,
            tenant_lines: &parsed.tenants,
            custom_keys: custom_keys_by_prefix(&entries),
            problems: &mut problems,
        };
        let built = b.build();
        // A key whose line could not be read is reported there, not also as missing.
        problems.retain(|p| {
            p.message != "is missing"
                || !p
                    .key
                    .as_ref()
                    .is_some_and(|k| parsed.unreadable.contains(k))
        });
        root_causes_only(&mut problems);
        if !problems.is_empty() {
            for p in &mut problems {
                p.message = crate::manifest::redact::text(&p.message);
                p.hint = crate::manifest::redact::text(&p.hint);
            }
            return Err(UsageError::problems(problems));
        }
        let (platform, tenants) = built.expect("no problems means every value was built");
        Ok(Manifest {
            path: path.to_path_buf(),
            text: text.to_string(),
            entries,
            platform,
            tenants,
        })
    }

    pub fn tenant(&self, name: &str) -> Option<&Tenant> {
        self.tenants.iter().find(|t| t.name == name)
    }

    /// The tenants named on the command line (all when none), or a usage error for unknown names.
    pub fn select(&self, names: &[String]) -> Result<Vec<&Tenant>, UsageError> {
        if names.is_empty() {
            return Ok(self.tenants.iter().collect());
        }
        names
            .iter()
            .map(|n| {
                self.tenant(n).ok_or_else(|| {
                    let known: Vec<&str> = self.tenants.iter().map(|t| t.name.as_str()).collect();
                    UsageError::plain(format!(
                        "{}: no tenant `{n}` is declared (known: {})",
                        self.path.display(),
                        known.join(", ")
                    ))
                })
            })
            .collect()
    }
}

/// The largest manifest `read` accepts.
pub const MAX_MANIFEST_BYTES: u64 = 64 << 20;

/// Reads the manifest file with errors that say what to do.
/// One typo, one message: a misspelt key (`DOMIAN`) is also reported as the missing key it
/// should have been (`DOMAIN`), and a missing or invalid platform `DOMAIN` makes every tenant's
/// derived domain collide. Keep the root cause: the unknown key, named as the missing one's typo.
fn root_causes_only(problems: &mut Vec<ManifestProblem>) {
    let typo_of: Vec<(String, String)> = problems
        .iter()
        .filter(|p| p.message == "unknown key")
        .filter_map(|p| {
            let meant = p.hint.strip_prefix("did you mean `")?.strip_suffix("`?")?;
            Some((p.key.clone()?, meant.to_string()))
        })
        .filter(|(_, meant)| {
            problems
                .iter()
                .any(|q| q.message == "is missing" && q.key.as_deref() == Some(meant))
        })
        .collect();
    let domain_broken = problems.iter().any(|p| p.key.as_deref() == Some("DOMAIN"))
        || typo_of.iter().any(|(_, meant)| meant == "DOMAIN");
    problems.retain(|p| {
        let missing_typo = p.message == "is missing"
            && typo_of
                .iter()
                .any(|(_, meant)| p.key.as_deref() == Some(meant.as_str()));
        let domain_cascade = domain_broken && p.message.contains("has the same domain as tenant");
        !missing_typo && !domain_cascade
    });
    for p in problems.iter_mut() {
        if let Some((_, meant)) = typo_of.iter().find(|(k, _)| p.key.as_ref() == Some(k)) {
            p.message = format!("unknown key, and `{meant}` is missing: a typo?");
            p.hint = format!("rename it to `{meant}`");
        }
    }
}

pub fn read(path: &Path) -> Result<String, UsageError> {
    let fail = |what: String, hint: &str| {
        UsageError::problems(vec![ManifestProblem {
            file: path.to_path_buf(),
            line: None,
            key: None,
            message: what,
            hint: hint.to_string(),
        }])
    };
    if path.is_dir() {
        return Err(fail(
            "is a directory, not a manifest file".into(),
            "pass the .env file with --env-file PATH",
        ));
    }
    let cannot_read = |e: std::io::Error| {
        match e.kind() {
        std::io::ErrorKind::NotFound => fail(
            "no manifest here".into(),
            "create one with `stackgen init --non-interactive --tenant NAME` or pass --env-file PATH",
        ),
        _ => fail(format!("cannot read: {e}"), "check the file's permissions"),
    }
    };
    // One read, capped: the whole text is parsed from this one copy (an editor replacing the file
    // meanwhile cannot mix two versions), and `--env-file /dev/zero` cannot eat the memory.
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| {
            std::io::Read::read_to_end(
                &mut std::io::Read::take(f, MAX_MANIFEST_BYTES + 1),
                &mut bytes,
            )
        })
        .map_err(cannot_read)?;
    if bytes.len() as u64 > MAX_MANIFEST_BYTES {
        return Err(fail(
            format!(
                "is larger than {} MiB; a manifest of a thousand tenants is about 2 MiB",
                MAX_MANIFEST_BYTES >> 20
            ),
            "pass the .env manifest with --env-file PATH",
        ));
    }
    String::from_utf8(bytes)
        .map_err(|_| fail("is not UTF-8 text".into(), "save the manifest as UTF-8"))
}

struct Builder<'a> {
    path: &'a Path,
    entries: &'a IndexMap<String, Entry>,
    tenant_lines: &'a [Entry],
    /// `<T>` → that tenant's `<T>__CUSTOM_*` keys in file order, gathered in one pass (a scan per
    /// tenant made a thousand-tenant manifest quadratic).
    custom_keys: std::collections::HashMap<String, Vec<String>>,
    problems: &'a mut Vec<ManifestProblem>,
}

fn custom_keys_by_prefix(
    entries: &IndexMap<String, Entry>,
) -> std::collections::HashMap<String, Vec<String>> {
    let mut map: std::collections::HashMap<String, Vec<String>> = std::collections::HashMap::new();
    for key in entries.keys() {
        if let Some((prefix, setting)) = key.split_once("__") {
            if setting.starts_with("CUSTOM_") {
                map.entry(prefix.to_string()).or_default().push(key.clone());
            }
        }
    }
    map
}

impl Builder<'_> {
    fn problem(&mut self, key: &str, (message, hint): Invalid) {
        let line = self.entries.get(key).map(|e| e.line);
        self.problems.push(ManifestProblem {
            file: self.path.to_path_buf(),
            line,
            key: Some(parse::readable_key(key)),
            message: parse::readable(&message),
            hint: parse::readable(&hint),
        });
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.entries.get(key).map(|e| e.value.as_str())
    }

    fn required(&mut self, key: &str, example: &str) -> Option<String> {
        match self.get(key) {
            Some(v) if !v.trim().is_empty() => Some(v.trim().to_string()),
            Some(_) => {
                self.problem(
                    key,
                    ("is empty".into(), format!("set it, e.g. {key}={example}")),
                );
                None
            }
            None => {
                self.problem(
                    key,
                    ("is missing".into(), format!("add a line {key}={example}")),
                );
                None
            }
        }
    }

    /// Runs a validator on an optional key; problems are recorded, `None` returned.
    fn check<T>(
        &mut self,
        key: &str,
        value: &str,
        f: impl FnOnce(&str) -> Result<T, Invalid>,
    ) -> Option<T> {
        match f(value) {
            Ok(v) => Some(v),
            Err(e) => {
                self.problem(key, e);
                None
            }
        }
    }

    fn build(&mut self) -> Option<(Platform, Vec<Tenant>)> {
        let catalog = Catalog::get();
        let before = self.problems.len();

        if let Some(v) = self.get("STACKGEN_MANIFEST_VERSION") {
            if v != "1" {
                let v = v.to_string();
                self.problem(
                    "STACKGEN_MANIFEST_VERSION",
                    (
                        format!("unsupported manifest version `{v}`"),
                        "this stackgen reads version 1".into(),
                    ),
                );
            }
        }
        let domain = self
            .required("DOMAIN", "example.com")
            .and_then(|d| self.check("DOMAIN", &d, values::domain).map(|()| d));
        let base_dir = self
            .required("BASE_DIR", "/srv/ai-platform")
            .and_then(|d| self.check("BASE_DIR", &d, values::base_dir).map(|()| d));
        let backup_dir = match self.get("BACKUP_DIR").map(str::trim) {
            None | Some("") => None,
            Some(d) => {
                let d = d.to_string();
                self.check("BACKUP_DIR", &d, values::base_dir).map(|()| d)
            }
        };
        let image_registry = match self.get("IMAGE_REGISTRY").map(str::trim) {
            None | Some("") => None,
            Some(r) => {
                let r = r.to_string();
                self.check("IMAGE_REGISTRY", &r, values::registry)
                    .map(|()| r)
            }
        };
        let kube_storage_class = match self.get("KUBE_STORAGE_CLASS").map(str::trim) {
            None | Some("") => None,
            Some(c) => {
                let c = c.to_string();
                self.check("KUBE_STORAGE_CLASS", &c, values::kube_name)
                    .map(|()| c)
            }
        };
        let tls = match self.get("TLS_MODE").map(str::trim) {
            None | Some("") | Some("acme") => TlsMode::Acme,
            Some("internal") => TlsMode::Internal,
            Some(other) => {
                let other = other.to_string();
                self.problem(
                    "TLS_MODE",
                    (
                        format!("unknown TLS mode `{other}`"),
                        "use acme (public certificates) or internal (caddy's local CA)".into(),
                    ),
                );
                TlsMode::Acme
            }
        };
        // Optional for manifests from before deployment IDs; `up` and friends refuse without it.
        let deployment = match self.get(deployment_id::KEY).map(str::trim) {
            None => None,
            Some("") => {
                self.problem(
                    deployment_id::KEY,
                    (
                        "is empty".into(),
                        "delete the line and run `stackgen init` to generate a deployment ID"
                            .into(),
                    ),
                );
                None
            }
            Some(id) => {
                let id = id.to_string();
                self.check(deployment_id::KEY, &id, deployment_id::check_id)
                    .map(|()| id)
            }
        };
        let acme_email = match self.get("ACME_EMAIL").map(str::trim) {
            None | Some("") => None,
            Some(e) => {
                let e = e.to_string();
                self.check("ACME_EMAIL", &e, values::email).map(|()| e)
            }
        };

        let edge = self.edge_settings(None, &edge::Settings::default());

        // Tenant list: one TENANT= line each.
        let mut tenant_names: Vec<String> = Vec::new();
        let mut first_line: Vec<usize> = Vec::new();
        if self.tenant_lines.is_empty() {
            self.problem(
                "TENANT",
                ("no tenant is declared".into(), "add a line TENANT=team-a (one line per tenant), or run `stackgen init --non-interactive --tenant team-a`".into()),
            );
        }
        for entry in self.tenant_lines {
            let name = entry.value.trim();
            let located = |message: String, hint: String| ManifestProblem {
                file: self.path.to_path_buf(),
                line: Some(entry.line),
                key: Some("TENANT".into()),
                message: parse::readable(&message),
                hint: parse::readable(&hint),
            };
            if let Err((m, h)) = values::tenant_name(name) {
                self.problems.push(located(m, h));
            } else if let Some(i) = tenant_names.iter().position(|n| n == name) {
                self.problems.push(located(
                    format!(
                        "tenant `{name}` is declared twice (first on line {})",
                        first_line[i]
                    ),
                    "keep one TENANT line per tenant".into(),
                ));
            } else {
                tenant_names.push(name.to_string());
                first_line.push(entry.line);
            }
        }

        // Every key must be known.
        let image_keys: Vec<String> = catalog
            .services
            .keys()
            .map(|s| Catalog::image_key(s))
            .chain([crate::platform::catalog::PGVECTOR_IMAGE_KEY.to_string()])
            .collect();
        let secret_names: Vec<&str> = catalog.all_secret_names().collect();
        // A set: manifests with a thousand tenants have tens of thousands of keys.
        let mut known: std::collections::HashSet<String> =
            PLATFORM_KEYS.iter().map(|k| k.to_string()).collect();
        known.extend(image_keys.iter().cloned());
        for t in &tenant_names {
            let p = values::env_prefix(t);
            known.extend(TENANT_SETTINGS.iter().map(|s| format!("{p}__{s}")));
            known.extend(secret_names.iter().map(|s| format!("{p}__{s}")));
        }
        let prefixes: std::collections::HashSet<String> =
            tenant_names.iter().map(|t| values::env_prefix(t)).collect();
        let mut image_overrides = IndexMap::new();
        let keys: Vec<String> = self.entries.keys().cloned().collect();
        for key in keys {
            if key.starts_with(edge::ENGINE_PREFIX) {
                continue; // checked with the engines, once the tenants are known
            }
            if known.contains(&key) {
                if key.ends_with("_IMAGE") && image_keys.contains(&key) {
                    let v = self.get(&key).unwrap_or_default().trim().to_string();
                    if !v.is_empty() && self.check(&key, &v, values::image).is_some() {
                        image_overrides.insert(key.clone(), v);
                    }
                }
                continue;
            }
            if let Some((tenant_part, setting)) = key.split_once("__") {
                let declared = prefixes.contains(tenant_part);
                if declared && setting.starts_with("CUSTOM_") {
                    continue; // checked with the tenant's custom services
                }
                if !declared {
                    self.problem(
                        &key,
                        (
                            format!("`{tenant_part}` is not the key prefix of any declared tenant (TENANT= lines)"),
                            "declare the tenant with a TENANT=<name> line, or delete the tenant's lines".into(),
                        ),
                    );
                    continue;
                }
            }
            // Suggestions come from the platform's keys and those of the tenants whose prefix
            // starts the key: comparing with every key of a thousand tenants took seconds.
            let mut candidates: Vec<String> = PLATFORM_KEYS
                .iter()
                .map(|k| k.to_string())
                .chain(image_keys.iter().cloned())
                .collect();
            for p in prefixes.iter().filter(|p| key.starts_with(p.as_str())) {
                candidates.extend(TENANT_SETTINGS.iter().map(|s| format!("{p}__{s}")));
                candidates.extend(secret_names.iter().map(|s| format!("{p}__{s}")));
            }
            candidates.sort_unstable();
            let hint = match values::closest(&key, candidates.iter().map(String::as_str)) {
                Some(k) => format!("did you mean `{k}`?"),
                None => "see docs/manifest.md for the known keys".into(),
            };
            self.problem(&key, ("unknown key".into(), hint));
        }

        let mut tenants = Vec::new();
        for (index, name) in tenant_names.iter().enumerate() {
            if let Some(mut t) = self.tenant(name, index, domain.as_deref()) {
                t.deployment = deployment.clone();
                tenants.push(t);
            }
        }
        self.cross_tenant(&tenants);
        let engine_edges = self.engine_edges(&edge, &tenants);
        for t in &tenants {
            let engine = t.docker_context.as_deref();
            let settings = edge::settings_of(&edge, &engine_edges, engine);
            let keys = ["HTTP_PORT", "HTTPS_PORT"].map(|s| self.edge_key(engine, s));
            for (key, problem) in edge::port_clashes(settings, keys, t) {
                self.problem(&key, problem);
            }
        }

        if self.problems.len() > before {
            return None;
        }
        Some((
            Platform {
                domain: domain?,
                base_dir: base_dir?,
                image_registry,
                tls,
                acme_email,
                backup_dir,
                edge,
                engine_edges,
                image_overrides,
                kube_storage_class,
            },
            tenants,
        ))
    }

    fn tenant(
        &mut self,
        name: &str,
        _index: usize,
        platform_domain: Option<&str>,
    ) -> Option<Tenant> {
        let catalog = Catalog::get();
        let prefix = values::env_prefix(name);
        let key = |s: &str| format!("{prefix}__{s}");
        let before = self.problems.len();

        let domain = match self.get(&key("DOMAIN")).map(str::trim) {
            None | Some("") => platform_domain
                .map(|d| format!("{name}.{d}"))
                .unwrap_or_default(),
            Some(d) => {
                let d = d.to_string();
                self.check(&key("DOMAIN"), &d, values::domain);
                d
            }
        };
        let vector_db = self.required(&key("VECTOR_DB"), "qdrant").and_then(|v| {
            if VECTOR_DBS.contains(&v.as_str()) {
                Some(v)
            } else {
                self.problem(
                    &key("VECTOR_DB"),
                    (
                        format!("unknown vector DB `{v}`"),
                        format!("use one of: {}", VECTOR_DBS.join(", ")),
                    ),
                );
                None
            }
        });

        // Selected components.
        let mut selected: Vec<String> = Vec::new();
        if let Some(list) = self.required(&key("SERVICES"), "postgres,redis,openwebui,caddy") {
            for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                if item == "all" {
                    selected.extend(catalog.component_names().map(str::to_string));
                } else if catalog.component(item).is_some() {
                    selected.push(item.to_string());
                } else {
                    let hint = match values::closest(item, catalog.component_names()) {
                        Some(c) => format!(
                            "did you mean `{c}`? known: {}",
                            catalog.component_names().collect::<Vec<_>>().join(", ")
                        ),
                        None => format!(
                            "known services: {}",
                            catalog.component_names().collect::<Vec<_>>().join(", ")
                        ),
                    };
                    self.problem(
                        &key("SERVICES"),
                        (format!("unknown service `{item}`"), hint),
                    );
                }
            }
        }
        // The chosen vector DB is always part of the tenant; any other vector DB is a conflict.
        if let Some(vdb) = &vector_db {
            let vdb_component = if vdb == "pgvector" {
                "postgres"
            } else {
                vdb.as_str()
            };
            let others: Vec<String> = selected
                .iter()
                .filter(|c| {
                    catalog.component(c).is_some_and(|c| c.vector_db) && *c != vdb_component
                })
                .cloned()
                .collect();
            let all = self
                .get(&key("SERVICES"))
                .is_some_and(|s| s.split(',').any(|i| i.trim() == "all"));
            // Components that cannot work with this vector DB: `all` leaves them out, naming
            // them by hand is an error.
            let incompatible: Vec<(String, String)> = selected
                .iter()
                .filter_map(|c| {
                    let why = catalog
                        .component(c)?
                        .incompatible_vector_dbs
                        .get(vdb.as_str())?;
                    Some((c.clone(), why.clone()))
                })
                .collect();
            if all {
                selected.retain(|c| !incompatible.iter().any(|(i, _)| i == c));
            } else {
                for (c, why) in &incompatible {
                    self.problem(
                        &key("VECTOR_DB"),
                        (
                            format!("`{c}` cannot use `{vdb}`: {why}"),
                            format!(
                                "choose another vector DB for this tenant, or remove `{c}` from {}",
                                key("SERVICES")
                            ),
                        ),
                    );
                }
            }
            // VECTOR_DB alone decides: a vector DB that SERVICES still names from before a
            // switch is left out, so switching is one edit (then `init` adds any new secret).
            selected.retain(|c| !others.contains(c));
            selected.push(vdb_component.to_string());
        }
        for c in selected.clone() {
            for r in &catalog
                .component(&c)
                .map(|c| c.requires.clone())
                .unwrap_or_default()
            {
                if !selected.contains(r) {
                    let why = if r == "tailscale" {
                        format!("openclaw is reachable only through its tailscale sidecar; add `tailscale` to {}", key("SERVICES"))
                    } else {
                        format!("add `{r}` to {}", key("SERVICES"))
                    };
                    self.problem(&key("SERVICES"), (format!("`{c}` needs `{r}`"), why));
                }
            }
        }
        let components: Vec<String> = catalog
            .component_names()
            .filter(|c| selected.iter().any(|s| s == c))
            .map(str::to_string)
            .collect();

        let id_of = |this: &mut Self, setting: &str, example: &str| {
            let k = key(setting);
            this.required(&k, example)
                .and_then(|v| this.check(&k, &v, values::id))
        };
        let uid = id_of(self, "UID", "20001");
        let gid = id_of(self, "GID", "20001");
        let needs_openclaw = components
            .iter()
            .any(|c| c == "openclaw" || c == "tailscale");
        let (openclaw_uid, openclaw_gid) = if needs_openclaw {
            (
                id_of(self, "OPENCLAW_UID", "21001"),
                id_of(self, "OPENCLAW_GID", "21001"),
            )
        } else {
            (Some(0), Some(0))
        };
        let ports = self
            .required(&key("PORT_RANGE"), "20000-20099")
            .and_then(|v| self.check(&key("PORT_RANGE"), &v, values::port_range));
        let tailscale_mode = match self.get(&key("TAILSCALE_MODE")).map(str::trim) {
            None | Some("") | Some("userspace") => "userspace".to_string(),
            Some("kernel") => "kernel".to_string(),
            Some(other) => {
                let other = other.to_string();
                self.problem(
                    &key("TAILSCALE_MODE"),
                    (
                        format!("unknown tailscale mode `{other}`"),
                        "use userspace (default, no tun device) or kernel".into(),
                    ),
                );
                String::new()
            }
        };
        let model = |this: &mut Self, setting: &str, default: &str| match this
            .get(&key(setting))
            .map(str::trim)
        {
            None | Some("") => default.to_string(),
            Some(m) => {
                let m = m.to_string();
                this.check(&key(setting), &m, values::model);
                m
            }
        };
        let ollama_model = model(self, "OLLAMA_MODEL", "llama3.1:8b");
        let embedding_model = model(self, "EMBEDDING_MODEL", "nomic-embed-text");
        let docker_context = match self.get(&key(values::DOCKER_CONTEXT)).map(str::trim) {
            None | Some("") => None,
            Some(c) => {
                let c = c.to_string();
                self.check(&key(values::DOCKER_CONTEXT), &c, values::docker_context)
                    .map(|()| c)
            }
        };

        // Secrets: every one the selected components need must be present and well-formed.
        let mut secrets = IndexMap::new();
        for c in &components {
            let comp = catalog.component(c).expect("validated above");
            for (name, operator) in comp
                .secrets
                .iter()
                .map(|s| (s, false))
                .chain(comp.operator_secrets.iter().map(|s| (s, true)))
            {
                let k = key(name);
                match self.get(&k) {
                    None => {
                        let hint = if operator {
                            format!("add a line {k}= (it may stay empty until you have the key; `stackgen up` checks it)")
                        } else {
                            "run `stackgen init --non-interactive` to generate the missing secrets (existing lines are kept)".into()
                        };
                        self.problem(&k, (format!("secret needed by `{c}` is missing"), hint));
                    }
                    Some(v) => {
                        let v = v.to_string();
                        if self
                            .check(&k, &v, |v| values::secret(v, operator))
                            .is_some()
                        {
                            secrets.insert(name.clone(), v);
                        }
                    }
                }
            }
        }

        let custom = self.custom_services(&prefix, ports, &components);

        if self.problems.len() > before {
            return None;
        }
        Some(Tenant {
            custom,
            name: name.to_string(),
            prefix: prefix.clone(),
            domain,
            vector_db: vector_db?,
            components,
            uid: uid?,
            gid: gid?,
            openclaw_uid: openclaw_uid?,
            openclaw_gid: openclaw_gid?,
            ports: ports?,
            tailscale_mode,
            ollama_model,
            embedding_model,
            secrets,
            docker_context,
            deployment: None,
        })
    }

    /// The tenant's custom services (`<T>__CUSTOM_<NAME>_*`, see `custom.rs`), checked.
    fn custom_services(
        &mut self,
        prefix: &str,
        ports: Option<(u16, u16)>,
        components: &[String],
    ) -> Vec<CustomService> {
        let catalog = Catalog::get();
        let base = format!("{prefix}__CUSTOM_");
        let keys: Vec<String> = self.custom_keys.get(prefix).cloned().unwrap_or_default();
        // In manifest order; `_IMAGE` declares a service, except `<NAME>_ENV_IMAGE` and
        // `<NAME>_ENV_<VAR>_IMAGE` of a declared service: those are its variables `IMAGE` and
        // `<VAR>_IMAGE` (service names never contain the word `env`).
        let images: Vec<&str> = keys
            .iter()
            .filter_map(|k| k[base.len()..].strip_suffix("_IMAGE"))
            .collect();
        let order: Vec<String> = images
            .iter()
            .filter(|part| {
                !images.iter().any(|other| {
                    part.strip_prefix(other)
                        .is_some_and(|rest| rest == "_ENV" || rest.starts_with("_ENV_"))
                })
            })
            .map(|part| part.to_string())
            .collect();
        // Longest names first, so that every key is matched to its own service.
        let mut names = order.clone();
        names.sort_by_key(|n| std::cmp::Reverse(n.len()));
        let mut settings: IndexMap<String, IndexMap<String, String>> = IndexMap::new();
        for key in &keys {
            let rest = &key[base.len()..];
            let owner = names.iter().find(|n| {
                rest.strip_prefix(n.as_str())
                    .and_then(|r| r.strip_prefix('_'))
                    .is_some_and(|setting| {
                        custom::SETTINGS.contains(&setting) || setting.starts_with("ENV_")
                    })
            });
            match owner {
                Some(n) => {
                    let setting = rest[n.len() + 1..].to_string();
                    settings
                        .entry(n.clone())
                        .or_default()
                        .insert(setting, key.clone());
                }
                None => {
                    let hint = if names.is_empty() {
                        format!("declare the service first with {base}<NAME>_IMAGE (stackgen add-service does it)")
                    } else {
                        format!(
                            "custom service keys end in _{} or _ENV_<VAR>",
                            custom::SETTINGS.join(", _")
                        )
                    };
                    self.problem(key, ("unknown custom service key".into(), hint));
                }
            }
        }
        let routes: Vec<String> = components
            .iter()
            .filter_map(|c| catalog.component(c))
            .flat_map(|c| c.services.iter())
            .flat_map(|s| {
                catalog
                    .service(s)
                    .routes
                    .iter()
                    .map(|r| r.subdomain.clone())
            })
            .collect();
        let mut out: Vec<CustomService> = Vec::new();
        for part in order {
            let keyset = settings.shift_remove(&part).unwrap_or_default();
            let image_key = format!("{base}{part}_IMAGE");
            let name = part.replace('_', "-").to_ascii_lowercase();
            let before = self.problems.len();
            if let Err(e) = custom::check_name(&name) {
                self.problem(&image_key, e);
                continue;
            }
            let value = |this: &Self, s: &str| {
                keyset.get(s).map(|k| {
                    (
                        k.clone(),
                        this.get(k).unwrap_or_default().trim().to_string(),
                    )
                })
            };
            let image = self.get(&image_key).unwrap_or_default().trim().to_string();
            self.check(&image_key, &image, values::image);
            let port = match value(self, "PORT") {
                Some((k, v)) => self.check(&k, &v, custom::parse_port),
                None => {
                    self.problem(
                        &format!("{base}{part}_PORT"),
                        (
                            "is missing".into(),
                            "add the service's internal port, e.g. 8080".into(),
                        ),
                    );
                    None
                }
            };
            let host_port = match value(self, "HOST_PORT") {
                Some((k, v)) => self.check(&k, &v, custom::parse_port).and_then(|p| {
                    let (start, end) = ports?;
                    let first = start.saturating_add(custom::RESERVED_PORTS);
                    if p < first || p > end {
                        self.problem(
                            &k,
                            (
                                format!("host port {p} is outside the tenant's custom ports {first}-{end}"),
                                format!(
                                    "the first {} ports of the range belong to the catalog; `stackgen add-service` picks a free one",
                                    custom::RESERVED_PORTS
                                ),
                            ),
                        );
                        return None;
                    }
                    if out.iter().any(|c| c.host_port == p) {
                        self.problem(&k, (format!("host port {p} is used by another custom service"), "give each service its own port".into()));
                        return None;
                    }
                    Some(p)
                }),
                None => {
                    self.problem(
                        &format!("{base}{part}_HOST_PORT"),
                        ("is missing".into(), "add a free port from the tenant's range".into()),
                    );
                    None
                }
            };
            let route = value(self, "ROUTE").and_then(|(k, v)| {
                self.check(&k, &v, custom::check_route)?;
                if routes.contains(&v) || out.iter().any(|c| c.route.as_deref() == Some(v.as_str()))
                {
                    self.problem(
                        &k,
                        (
                            format!("route `{v}` is already taken in this tenant"),
                            "choose another subdomain".into(),
                        ),
                    );
                    return None;
                }
                Some(v)
            });
            let healthcheck = value(self, "HEALTHCHECK")
                .map(|(_, v)| v)
                .filter(|v| !v.is_empty());
            let volumes = match value(self, "VOLUMES") {
                Some((k, v)) => self
                    .check(&k, &v, custom::parse_volumes)
                    .unwrap_or_default(),
                None => Vec::new(),
            };
            let mut env = IndexMap::new();
            for (setting, key) in &keyset {
                if let Some(var) = setting.strip_prefix("ENV_") {
                    if self.check(key, var, custom::check_env_name).is_some() {
                        env.insert(
                            var.to_string(),
                            self.get(key).unwrap_or_default().to_string(),
                        );
                    }
                }
            }
            if self.problems.len() > before {
                continue;
            }
            if let (Some(port), Some(host_port)) = (port, host_port) {
                out.push(CustomService {
                    name,
                    image,
                    port,
                    host_port,
                    route,
                    healthcheck,
                    volumes,
                    env,
                });
            }
        }
        out
    }

    /// The `EDGE_*` keys of the front door of `engine` (all optional), over `base`: the
    /// defaults of `edge::Settings` for the current context, the `EDGE_*` values for another.
    fn edge_settings(&mut self, engine: Option<&str>, base: &edge::Settings) -> edge::Settings {
        let mut s = base.clone();
        let value = |this: &mut Self, setting: &str| {
            let key = edge::key(engine, setting);
            let v = this.get(&key).map(str::trim).filter(|v| !v.is_empty())?;
            Some((key, v.to_string()))
        };
        if let Some((k, v)) = value(self, "HTTP_PORT") {
            s.http_port = self.check(&k, &v, edge::port).unwrap_or(s.http_port);
        }
        if let Some((k, v)) = value(self, "HTTPS_PORT") {
            s.https_port = self.check(&k, &v, edge::port).unwrap_or(s.https_port);
        }
        if let Some((k, v)) = value(self, "BIND_ADDRESS") {
            s.bind = self.check(&k, &v, edge::bind_address).unwrap_or(s.bind);
        }
        if let Some((k, v)) = value(self, "SUBNET") {
            s.subnet = self.check(&k, &v, edge::subnet).unwrap_or(s.subnet);
        }
        // Reported once, for the current context, unless this engine set a port itself.
        let own_port = ["HTTP_PORT", "HTTPS_PORT"]
            .iter()
            .any(|p| self.entries.contains_key(&edge::key(engine, p)));
        if s.http_port == s.https_port && (engine.is_none() || own_port) {
            let key = self.edge_key(engine, "HTTPS_PORT");
            self.problem(
                &key,
                (
                    format!(
                        "is the same port as {} ({})",
                        self.edge_key(engine, "HTTP_PORT"),
                        s.http_port
                    ),
                    "give HTTP and HTTPS their own ports, e.g. 80 and 443".into(),
                ),
            );
        }
        s
    }

    /// `edge::key_set_by` on this manifest's keys.
    fn edge_key(&self, engine: Option<&str>, setting: &str) -> String {
        edge::key_set_by(|k| self.entries.contains_key(k), engine, setting)
    }

    /// The front door of every other engine the tenants name, and the checks of the
    /// `EDGE__<CONTEXT>__<SETTING>` keys: each names an engine of the manifest and a setting; no
    /// two contexts share a key form; no tenant is called like an engine's front door.
    fn engine_edges(
        &mut self,
        defaults: &edge::Settings,
        tenants: &[Tenant],
    ) -> Vec<(String, edge::Settings)> {
        let mut contexts: Vec<&str> = Vec::new();
        for t in tenants {
            if let Some(c) = t.docker_context.as_deref() {
                if !contexts.contains(&c) {
                    contexts.push(c);
                }
            }
        }
        for (i, a) in contexts.iter().enumerate() {
            // Both problems are on the line of the first tenant that names the context.
            let key = tenants
                .iter()
                .find(|t| t.docker_context.as_deref() == Some(a))
                .map(|t| t.key(values::DOCKER_CONTEXT))
                .unwrap_or_default();
            if let Some(b) = contexts[..i]
                .iter()
                .find(|b| edge::context_key(a) == edge::context_key(b))
            {
                self.problem(
                    &key,
                    (
                        format!("contexts `{a}` and `{b}` have the same key form `{}` (EDGE__{}__*): their front doors' settings could not be told apart", edge::context_key(a), edge::context_key(a)),
                        "name the Docker contexts so that they differ in more than case and punctuation".into(),
                    ),
                );
            }
            let door = edge::door_name(Some(a));
            if let Some(t) = tenants.iter().find(|t| t.name == door) {
                self.problem(
                    &key,
                    (
                        format!("the front door of context `{a}` is `{door}` (stacks/{door}-stack.yml), the name of tenant `{}`", t.name),
                        "rename the tenant or the Docker context".into(),
                    ),
                );
            }
        }
        let keys: Vec<String> = self
            .entries
            .keys()
            .filter(|k| k.starts_with(edge::ENGINE_PREFIX))
            .cloned()
            .collect();
        for key in keys {
            let rest = &key[edge::ENGINE_PREFIX.len()..];
            let Some((ctx, setting)) = rest.split_once("__") else {
                self.problem(&key, ("unknown key".into(), "a front door's own setting is EDGE__<CONTEXT>__<SETTING>, e.g. EDGE__HOST_2__BIND_ADDRESS".into()));
                continue;
            };
            if !contexts.iter().any(|c| edge::context_key(c) == ctx) {
                let known: Vec<String> = contexts
                    .iter()
                    .map(|c| format!("`{c}` ({})", edge::context_key(c)))
                    .collect();
                self.problem(
                    &key,
                    (
                        format!("no tenant runs on a Docker context whose key form is `{ctx}`"),
                        if known.is_empty() {
                            "no tenant sets <T>__DOCKER_CONTEXT: use the EDGE_* keys for this host's front door".into()
                        } else {
                            format!("the contexts of this manifest are {}", known.join(", "))
                        },
                    ),
                );
            } else if !edge::SETTINGS.contains(&setting) {
                let hint = match values::closest(setting, edge::SETTINGS) {
                    Some(s) => format!("did you mean `EDGE__{ctx}__{s}`?"),
                    None => format!("the settings are {}", edge::SETTINGS.join(", ")),
                };
                self.problem(&key, ("unknown key".into(), hint));
            }
        }
        contexts
            .into_iter()
            .map(|c| (c.to_string(), self.edge_settings(Some(c), defaults)))
            .collect()
    }

    /// Checks that need several tenants: ports, UIDs and domains must not be shared.
    fn cross_tenant(&mut self, tenants: &[Tenant]) {
        self.derived_names(tenants);
        for (i, a) in tenants.iter().enumerate() {
            for b in &tenants[..i] {
                // Ports are per host: only tenants on the same engine may not share them.
                let same_engine = a.docker_context == b.docker_context;
                if same_engine && a.ports.0 <= b.ports.1 && b.ports.0 <= a.ports.1 {
                    self.problem(
                        &a.key("PORT_RANGE"),
                        (
                            format!(
                                "port range {}-{} overlaps {}-{} of tenant `{}`",
                                a.ports.0, a.ports.1, b.ports.0, b.ports.1, b.name
                            ),
                            "give each tenant its own range, e.g. 20000-20099, 20100-20199".into(),
                        ),
                    );
                }
                let ids_a = [a.uid, a.openclaw_uid];
                let ids_b = [b.uid, b.openclaw_uid];
                if ids_a.iter().any(|x| *x != 0 && ids_b.contains(x)) {
                    self.problem(
                        &a.key("UID"),
                        (
                            format!("tenant `{}` shares a UID with tenant `{}`", a.name, b.name),
                            "give every tenant (and its openclaw) its own UID; isolation relies on it".into(),
                        ),
                    );
                }
                if a.domain == b.domain {
                    self.problem(
                        &a.key("DOMAIN"),
                        (
                            format!(
                                "tenant `{}` has the same domain as tenant `{}`",
                                a.name, b.name
                            ),
                            "give each tenant its own domain".into(),
                        ),
                    );
                } else if let Some(problem) = edge::domain_clash(a, b) {
                    // On the line that set a domain: a derived one has no line of its own.
                    let key = [a, b]
                        .iter()
                        .map(|t| t.key("DOMAIN"))
                        .find(|k| self.entries.contains_key(k))
                        .unwrap_or_else(|| a.key("DOMAIN"));
                    self.problem(&key, problem);
                }
            }
            if a.openclaw_uid != 0 && a.openclaw_uid == a.uid {
                self.problem(
                    &a.key("OPENCLAW_UID"),
                    (
                        "openclaw runs as the same UID as the tenant's other services".into(),
                        "give openclaw its own UID so it cannot touch the other services' data"
                            .into(),
                    ),
                );
            }
        }
    }
}
