//! Rendering: a tenant's resolved services + policy + templates → the stack file and the config
//! files it mounts. Pure and deterministic: same manifest, same bytes.

use std::path::PathBuf;

use anyhow::{anyhow, bail, Context, Result};
use indexmap::IndexMap;
use minijinja::value::Value as JValue;
use serde::Serialize;
use serde_yaml::{Mapping, Value};

use crate::catalog::Catalog;
use crate::manifest::{Manifest, Tenant, TlsMode};
use crate::model::{self, ResolvedService};
use crate::policy::{self, Policy};
use crate::templates::environment;
use crate::vectordb;

/// One generated file, with its path relative to the stacks directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedFile {
    pub path: PathBuf,
    pub content: String,
}

/// How the header names the manifest and stack paths (as the operator typed them).
#[derive(Debug, Clone)]
pub struct Display {
    pub manifest: String,
    pub stacks_dir: String,
}

/// Keys a service template may set; everything else is the policy layer's.
const TEMPLATE_KEYS: [&str; 9] = [
    "command",
    "entrypoint",
    "environment",
    "volumes",
    "devices",
    "healthcheck",
    "working_dir",
    "stop_grace_period",
    "shm_size",
];

/// The tenant's view that templates see as `t`.
#[derive(Serialize)]
struct TenantView<'a> {
    name: &'a str,
    prefix: &'a str,
    domain: &'a str,
    uid: u32,
    gid: u32,
    openclaw_uid: u32,
    openclaw_gid: u32,
    vector_db: &'a str,
    tailscale_mode: &'a str,
    ollama_model: &'a str,
    embedding_model: &'a str,
}

fn tenant_view(t: &Tenant) -> TenantView<'_> {
    TenantView {
        name: &t.name,
        prefix: &t.prefix,
        domain: &t.domain,
        uid: t.uid,
        gid: t.gid,
        openclaw_uid: t.openclaw_uid,
        openclaw_gid: t.openclaw_gid,
        vector_db: &t.vector_db,
        tailscale_mode: &t.tailscale_mode,
        ollama_model: &t.ollama_model,
        embedding_model: &t.embedding_model,
    }
}

/// The context shared by all of a tenant's templates.
fn base_context(
    manifest: &Manifest,
    tenant: &Tenant,
    display: &Display,
) -> IndexMap<&'static str, JValue> {
    let catalog = Catalog::get();
    let has: IndexMap<&str, bool> = catalog
        .component_names()
        .map(|c| (c, tenant.has(c)))
        .collect();
    let allowed: Vec<String> = tenant
        .components
        .iter()
        .filter_map(|c| catalog.component(c))
        .flat_map(|c| c.secrets.iter().chain(&c.operator_secrets).cloned())
        .collect();
    let mut ctx = IndexMap::new();
    ctx.insert("t", JValue::from_serialize(tenant_view(tenant)));
    ctx.insert("has", JValue::from_serialize(&has));
    ctx.insert("allowed_secrets", JValue::from_serialize(&allowed));
    ctx.insert("cfg", JValue::from(format!("./{}", tenant.name)));
    ctx.insert("manifest", JValue::from(display.manifest.clone()));
    ctx.insert(
        "tls_internal",
        JValue::from(manifest.platform.tls == TlsMode::Internal),
    );
    ctx.insert(
        "acme_email",
        JValue::from(manifest.platform.acme_email.clone().unwrap_or_default()),
    );
    ctx
}

/// Runs `work` for every tenant on all cores, keeping the tenants' order in the result. Tenants
/// are independent, so this is the cheap way to keep a thousand-tenant render under a second.
pub fn render_many<'t, T, F>(tenants: &[&'t Tenant], work: F) -> Result<Vec<T>>
where
    T: Send,
    F: Fn(&'t Tenant) -> Result<T> + Sync,
{
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(tenants.len().max(1));
    let chunk = tenants.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = tenants
            .chunks(chunk)
            .map(|part| {
                let work = &work;
                scope.spawn(move || part.iter().map(|t| work(t)).collect::<Result<Vec<T>>>())
            })
            .collect();
        let mut out = Vec::with_capacity(tenants.len());
        for h in handles {
            out.extend(h.join().expect("render thread panicked")?);
        }
        Ok(out)
    })
}

/// Everything generated for one tenant: the stack file first, then its config files.
pub fn render_tenant(
    manifest: &Manifest,
    tenant: &Tenant,
    display: &Display,
) -> Result<Vec<RenderedFile>> {
    let services = model::services(&manifest.platform, tenant);
    let ctx = base_context(manifest, tenant, display);
    let env = environment();

    let mut service_map = Mapping::new();
    let mut used_networks: Vec<&str> = Vec::new();
    for svc in &services {
        let policy = policy::for_service(tenant, svc, &services);
        for n in &policy.networks {
            if !used_networks.contains(n) {
                used_networks.push(n);
            }
        }
        let mut sctx = ctx.clone();
        sctx.insert("data", JValue::from(svc.data_dir.clone()));
        let template = format!("services/{}.yml.j2", svc.name);
        let text = env
            .get_template(&template)
            .and_then(|t| t.render(&sctx))
            .with_context(|| format!("rendering {template} for tenant {}", tenant.name))?;
        let fragment: Value = serde_yaml::from_str(&text).with_context(|| {
            format!(
                "{template} rendered invalid YAML for tenant {}:\n{text}",
                tenant.name
            )
        })?;
        let entry = assemble(tenant, svc, &policy, fragment)
            .with_context(|| format!("assembling {}", svc.name))?;
        service_map.insert(Value::from(svc.name.clone()), entry);
    }

    let mut doc = Mapping::new();
    doc.insert("name".into(), tenant.name.clone().into());
    doc.insert("services".into(), Value::Mapping(service_map));
    let mut networks = Mapping::new();
    for key in ["edge", "internal"] {
        if !used_networks.contains(&key) {
            continue;
        }
        let mut n = Mapping::new();
        n.insert("name".into(), policy::network_name(tenant, key).into());
        if key == "internal" {
            // Backend services get no route out: databases, caches, vector DB, ollama, sandbox.
            n.insert("internal".into(), true.into());
        }
        let mut labels = Mapping::new();
        labels.insert(policy::TENANT_LABEL.into(), tenant.name.clone().into());
        n.insert("labels".into(), Value::Mapping(labels));
        networks.insert(key.into(), Value::Mapping(n));
    }
    doc.insert("networks".into(), Value::Mapping(networks));

    let body = crate::yaml::to_string(&Value::Mapping(doc));
    let stack_path = PathBuf::from(format!("{}-stack.yml", tenant.name));
    let mut files = vec![RenderedFile {
        path: stack_path,
        content: format!("{}{body}", header(tenant, display)),
    }];
    files.extend(config_files(manifest, tenant, &services, &ctx)?);
    Ok(files)
}

fn header(tenant: &Tenant, display: &Display) -> String {
    let stack = format!("{}/{}-stack.yml", display.stacks_dir, tenant.name);
    format!(
        "# Generated by stackgen from {manifest} for tenant `{name}`; do not edit by hand.\n\
         # Change the manifest, run `stackgen render`, and commit; CI runs `stackgen render --check`.\n\
         #\n\
         # Deploy without stackgen, from the directory holding {manifest}:\n\
         #   stackgen prepare {name}    # once: data directories owned by the tenant's UID\n\
         #   docker compose --env-file {manifest} -f {stack} up -d\n\
         # Secrets are ${{VAR}} references into {manifest}; no secret value is written here.\n\n",
        manifest = display.manifest,
        name = tenant.name,
    )
}

/// Builds one service's mapping in a fixed, reviewable key order.
fn assemble(tenant: &Tenant, svc: &ResolvedService, p: &Policy, fragment: Value) -> Result<Value> {
    let mut frag = match fragment {
        Value::Mapping(m) => m,
        Value::Null => Mapping::new(),
        _ => bail!("template output is not a mapping"),
    };
    for key in frag.keys() {
        let k = key.as_str().unwrap_or_default();
        if !TEMPLATE_KEYS.contains(&k) {
            bail!("template sets `{k}`, which belongs to the policy layer or is not allowed");
        }
    }
    let mut take = |k: &str| frag.remove(k);
    let strings =
        |v: &[String]| Value::Sequence(v.iter().map(|s| Value::from(s.clone())).collect());

    let mut m = Mapping::new();
    m.insert("image".into(), svc.image.clone().into());
    for k in ["entrypoint", "command", "working_dir"] {
        if let Some(v) = take(k) {
            m.insert(k.into(), v);
        }
    }
    if let Some(u) = &p.user {
        m.insert("user".into(), u.clone().into());
    }
    m.insert("restart".into(), "unless-stopped".into());
    m.insert("read_only".into(), p.read_only.into());
    if !p.tmpfs.is_empty() {
        m.insert("tmpfs".into(), strings(&p.tmpfs));
    }
    m.insert("cap_drop".into(), strings(&["ALL".to_string()]));
    if !p.cap_add.is_empty() {
        m.insert("cap_add".into(), strings(&p.cap_add));
    }
    m.insert("security_opt".into(), strings(&p.security_opt));

    let mut env = match take("environment") {
        Some(Value::Mapping(e)) => e,
        None => Mapping::new(),
        Some(_) => bail!("environment must be a mapping"),
    };
    for (k, v) in vectordb::consumer_env(tenant, &svc.name) {
        env.insert(k.into(), v.into());
    }
    if !env.is_empty() {
        m.insert("environment".into(), Value::Mapping(env));
    }
    for k in ["volumes", "devices", "shm_size", "stop_grace_period"] {
        if let Some(v) = take(k) {
            m.insert(k.into(), v);
        }
    }
    if let Some(mode) = &p.network_mode {
        m.insert("network_mode".into(), mode.clone().into());
    } else {
        let nets: Vec<String> = p.networks.iter().map(|s| s.to_string()).collect();
        m.insert("networks".into(), strings(&nets));
    }
    if !p.ports.is_empty() {
        m.insert("ports".into(), strings(&p.ports));
    }
    if !p.depends_on.is_empty() {
        let mut deps = Mapping::new();
        for d in &p.depends_on {
            let mut cond = Mapping::new();
            cond.insert("condition".into(), "service_healthy".into());
            deps.insert(d.clone().into(), Value::Mapping(cond));
        }
        m.insert("depends_on".into(), Value::Mapping(deps));
    }
    let healthcheck = take("healthcheck").ok_or_else(|| anyhow!("template has no healthcheck"))?;
    m.insert("healthcheck".into(), healthcheck);
    let mut labels = Mapping::new();
    for (k, v) in &p.labels {
        labels.insert(k.clone().into(), v.clone().into());
    }
    m.insert("labels".into(), Value::Mapping(labels));
    if !p.exceptions.is_empty() {
        // Compose ignores x- keys; reviewers see why this service deviates from the defaults.
        m.insert("x-stackgen-exceptions".into(), strings(&p.exceptions));
    }
    Ok(Value::Mapping(m))
}

#[derive(Serialize)]
struct Site {
    host: String,
    service: String,
    port: u16,
    paths: Vec<SitePath>,
}

#[derive(Serialize)]
struct SitePath {
    #[serde(rename = "match")]
    matchers: Vec<String>,
    service: String,
    port: u16,
}

/// Config files mounted by the tenant's services, rendered under `<stacks-dir>/<tenant>/`.
fn config_files(
    manifest: &Manifest,
    tenant: &Tenant,
    services: &[ResolvedService],
    ctx: &IndexMap<&'static str, JValue>,
) -> Result<Vec<RenderedFile>> {
    let catalog = Catalog::get();
    let rendered = |name: &str| services.iter().any(|s| s.name == name);
    let sites: Vec<Site> = services
        .iter()
        .flat_map(|s| s.def.routes.iter().map(move |r| (s, r)))
        .map(|(s, r)| Site {
            host: format!("{}.{}", r.subdomain, tenant.domain),
            service: s.name.clone(),
            port: r.port,
            paths: r
                .paths
                .iter()
                .filter(|p| rendered(&p.service))
                .map(|p| SitePath {
                    matchers: p.matchers.clone(),
                    service: p.service.clone(),
                    port: p.port,
                })
                .collect(),
        })
        .collect();
    let databases: Vec<String> = tenant
        .components
        .iter()
        .filter_map(|c| catalog.component(c))
        .flat_map(|c| c.databases.iter().cloned())
        .collect();

    let mut ctx = ctx.clone();
    ctx.insert("sites", JValue::from_serialize(&sites));
    ctx.insert("databases", JValue::from_serialize(&databases));
    ctx.insert(
        "vector_databases",
        JValue::from_serialize(vectordb::pgvector_databases(tenant)),
    );
    ctx.insert(
        "cache",
        JValue::from_serialize(vectordb::litellm_cache(tenant)),
    );

    let env = environment();
    let mut files = Vec::new();
    for svc in services {
        for f in &svc.def.files {
            let content = env
                .get_template(&f.template)
                .and_then(|t| t.render(&ctx))
                .with_context(|| format!("rendering {} for tenant {}", f.template, tenant.name))?;
            files.push(RenderedFile {
                path: PathBuf::from(&tenant.name).join(&f.path),
                content,
            });
        }
    }
    let _ = manifest;
    Ok(files)
}
