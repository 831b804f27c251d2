//! Rendering: a tenant's resolved services + policy + templates → the stack file, the config
//! files it mounts and its AppArmor profiles. Pure and deterministic: same manifest, same bytes.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use anyhow::{anyhow, bail, Context, Result};
use indexmap::IndexMap;
use minijinja::value::Value as JValue;
use serde::Serialize;
use serde_yaml::{Mapping, Value};

use crate::manifest::{Manifest, Tenant};
use crate::platform::catalog::Catalog;
use crate::platform::model::{self, ResolvedService};
use crate::platform::vectordb;
use crate::policy::{self, Policy};
use crate::render::apparmor;
use crate::render::templates::environment;

use super::{Display, RenderedFile};

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
    ctx.insert(
        "cfg",
        JValue::from(model::config_source(&manifest.platform, tenant)),
    );
    ctx.insert("manifest", JValue::from(display.manifest.clone()));
    ctx
}

/// Whether `rel` (a path under `<stacks-dir>/<tenant>/`) is one stackgen can generate for that
/// tenant: a catalog service's config file or one of the tenant's AppArmor profiles.
pub fn may_generate(tenant: &str, rel: &std::path::Path) -> bool {
    let catalog = Catalog::get();
    let config = catalog
        .services
        .values()
        .flat_map(|d| d.files.iter())
        .any(|f| rel == std::path::Path::new(&f.path));
    let profile = rel.parent() == Some(std::path::Path::new("apparmor"))
        && rel.file_name().is_some_and(|n| {
            let n = n.to_string_lossy();
            let base = format!("ai-platform-{tenant}");
            n == base || n == format!("{base}-openclaw") || n == format!("{base}-tailscale")
        });
    config || profile
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
    render_tenant_with(manifest, tenant, display, true)
}

/// `render_tenant`, with the template cache on or off (tests prove both give the same bytes).
pub fn render_tenant_with(
    manifest: &Manifest,
    tenant: &Tenant,
    display: &Display,
    cache: bool,
) -> Result<Vec<RenderedFile>> {
    let services = model::services(&manifest.platform, tenant);
    let ctx = base_context(manifest, tenant, display);
    let mut service_map = Mapping::new();
    let mut used_networks: Vec<&str> = Vec::new();
    let mut apparmor_facts = Vec::new();
    for svc in &services {
        let policy = policy::for_service(tenant, svc, &services);
        for n in &policy.networks {
            if !used_networks.contains(n) {
                used_networks.push(n);
            }
        }
        let fragment = service_fragment(manifest, tenant, svc, &ctx, cache)?;
        let entry = assemble(tenant, svc, &policy, fragment)
            .with_context(|| format!("assembling {}", svc.name))?;
        let strings_of = |key: &str| -> Vec<String> {
            entry[key]
                .as_sequence()
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        };
        apparmor_facts.push(apparmor::ServiceFacts {
            name: svc.name.clone(),
            kind: svc.def.apparmor,
            cap_add: policy.cap_add.clone(),
            tmpfs: tmpfs(&policy),
            volumes: strings_of("volumes"),
            devices: strings_of("devices"),
        });
        service_map.insert(Value::from(svc.name.clone()), entry);
    }

    let mut doc = Mapping::new();
    doc.insert("name".into(), tenant.name.clone().into());
    doc.insert("services".into(), Value::Mapping(service_map));
    let mut networks = Mapping::new();
    for key in ["edge", "internal", "front"] {
        if !used_networks.contains(&key) {
            continue;
        }
        let mut n = Mapping::new();
        n.insert("name".into(), policy::network_name(tenant, key).into());
        if key == "front" {
            // The front door of the tenant's engine creates it (stacks/edge-stack.yml, or
            // edge-<context>-stack.yml): it must be up first.
            n.insert("external".into(), true.into());
            networks.insert(key.into(), Value::Mapping(n));
            continue;
        }
        if key == "internal" {
            // Backend services get no route out: databases, caches, vector DB, ollama, sandbox.
            n.insert("internal".into(), true.into());
        }
        let mut labels = Mapping::new();
        labels.insert(policy::TENANT_LABEL.into(), tenant.name.clone().into());
        if let Some(id) = &tenant.deployment {
            labels.insert(policy::DEPLOYMENT_LABEL.into(), id.clone().into());
        }
        n.insert("labels".into(), Value::Mapping(labels));
        networks.insert(key.into(), Value::Mapping(n));
    }
    doc.insert("networks".into(), Value::Mapping(networks));

    let body = crate::render::yaml::to_string(&Value::Mapping(doc));
    let stack_path = PathBuf::from(format!("{}-stack.yml", tenant.name));
    let mut files = vec![RenderedFile {
        path: stack_path,
        content: format!("{}{body}", header(manifest, tenant, display)),
    }];
    files.extend(config_files(manifest, tenant, &services, &ctx)?);
    files.extend(apparmor::render_profiles(tenant, &apparmor_facts, &ctx)?);
    Ok(files)
}

/// A service template's output for one tenant, as YAML.
///
/// Parsing that YAML was most of the render time, and a template's output differs between
/// tenants only in the tenant's values and in what the template branches on (the selected
/// components, the tailscale mode). So each template is rendered and parsed once per branch
/// combination with sentinel strings in place of the tenant's values, and each tenant gets a copy
/// with its values put back. Custom services are rendered directly: their templates depend on
/// their own settings.
fn service_fragment(
    manifest: &Manifest,
    tenant: &Tenant,
    svc: &ResolvedService,
    ctx: &IndexMap<&'static str, JValue>,
    cache: bool,
) -> Result<Value> {
    if svc.custom.is_some() || !cache {
        let mut sctx = ctx.clone();
        sctx.insert("data", JValue::from(svc.data_dir.clone()));
        if let Some(c) = &svc.custom {
            sctx.insert("custom", custom_view(c));
        }
        return render_fragment(tenant, svc, &sctx);
    }
    static CACHE: OnceLock<Mutex<HashMap<String, Arc<Value>>>> = OnceLock::new();
    let has: String = Catalog::get()
        .component_names()
        .map(|c| if tenant.has(c) { '1' } else { '0' })
        .collect();
    let key = format!("{}|{}|{has}", svc.name, tenant.tailscale_mode);
    let cache = CACHE.get_or_init(Default::default);
    let cached = cache
        .lock()
        .expect("template cache lock")
        .get(&key)
        .cloned();
    let template_output = match cached {
        Some(v) => v,
        None => {
            let mut sctx = ctx.clone();
            sctx.insert("t", JValue::from_serialize(sentinel_view(tenant)));
            sctx.insert("cfg", JValue::from(sentinel("CFG")));
            sctx.insert("data", JValue::from(sentinel("DATA")));
            let v = Arc::new(render_fragment(tenant, svc, &sctx)?);
            cache
                .lock()
                .expect("template cache lock")
                .insert(key, v.clone());
            v
        }
    };
    let values = sentinel_values(manifest, tenant, svc);
    let mut out = (*template_output).clone();
    substitute(&mut out, &values);
    Ok(out)
}

fn render_fragment(
    tenant: &Tenant,
    svc: &ResolvedService,
    sctx: &IndexMap<&'static str, JValue>,
) -> Result<Value> {
    let template = match &svc.custom {
        Some(_) => "services/custom.yml.j2".to_string(),
        None => format!("services/{}.yml.j2", svc.name),
    };
    let text = environment()
        .get_template(&template)
        .and_then(|t| t.render(sctx))
        .with_context(|| format!("rendering {template} for tenant {}", tenant.name))?;
    serde_yaml::from_str(&text).with_context(|| {
        format!(
            "{template} rendered invalid YAML for tenant {}:\n{text}",
            tenant.name
        )
    })
}

fn sentinel(name: &str) -> String {
    format!("@@STACKGEN_{name}@@")
}

/// The tenant view with a sentinel for every value; what templates branch on stays real.
fn sentinel_view(tenant: &Tenant) -> IndexMap<&'static str, String> {
    let mut m = IndexMap::new();
    for (field, _) in tenant_fields(tenant) {
        m.insert(field, sentinel(field));
    }
    m.insert("tailscale_mode", tenant.tailscale_mode.clone());
    m
}

/// The tenant's values that templates may print, by field name of `t`.
fn tenant_fields(t: &Tenant) -> [(&'static str, String); 10] {
    [
        ("name", t.name.clone()),
        ("prefix", t.prefix.clone()),
        ("domain", t.domain.clone()),
        ("uid", t.uid.to_string()),
        ("gid", t.gid.to_string()),
        ("openclaw_uid", t.openclaw_uid.to_string()),
        ("openclaw_gid", t.openclaw_gid.to_string()),
        ("vector_db", t.vector_db.clone()),
        ("ollama_model", t.ollama_model.clone()),
        ("embedding_model", t.embedding_model.clone()),
    ]
}

/// Sentinel → the tenant's value, escaped for compose as the `q` filter would have.
fn sentinel_values(
    manifest: &Manifest,
    tenant: &Tenant,
    svc: &ResolvedService,
) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = tenant_fields(tenant)
        .into_iter()
        .map(|(f, value)| (sentinel(f), crate::platform::refs::escape_inline(&value)))
        .collect();
    v.push((
        sentinel("CFG"),
        crate::platform::refs::escape_inline(&model::config_source(&manifest.platform, tenant)),
    ));
    v.push((
        sentinel("DATA"),
        crate::platform::refs::escape_inline(&svc.data_dir),
    ));
    v
}

fn substitute(v: &mut Value, values: &[(String, String)]) {
    match v {
        Value::String(s) if s.contains("@@STACKGEN_") => {
            for (from, to) in values {
                if s.contains(from.as_str()) {
                    *s = s.replace(from.as_str(), to);
                }
            }
        }
        Value::Sequence(items) => items.iter_mut().for_each(|i| substitute(i, values)),
        Value::Mapping(m) => m.iter_mut().for_each(|(_, i)| substitute(i, values)),
        Value::Tagged(t) => substitute(&mut t.value, values),
        _ => {}
    }
}

/// What `services/custom.yml.j2` sees as `custom`.
fn custom_view(c: &crate::manifest::custom::CustomService) -> JValue {
    #[derive(Serialize)]
    struct Volume<'a> {
        name: &'a str,
        path: &'a str,
    }
    #[derive(Serialize)]
    struct View<'a> {
        env: &'a IndexMap<String, String>,
        volumes: Vec<Volume<'a>>,
        healthcheck: String,
    }
    JValue::from_serialize(View {
        env: &c.env,
        volumes: c
            .volumes
            .iter()
            .map(|(n, p)| Volume { name: n, path: p })
            .collect(),
        healthcheck: c.healthcheck_command(),
    })
}

fn header(manifest: &Manifest, tenant: &Tenant, display: &Display) -> String {
    let stack = format!("{}/{}-stack.yml", display.stacks_dir, tenant.name);
    if let Some(context) = &tenant.docker_context {
        // Another engine's host: every path it mounts is that host's, config files included
        // (its daemon cannot see this machine's stacks directory), and so is the prepare step.
        return format!(
            "# Generated by stackgen from {manifest} for tenant `{name}`; do not edit by hand.\n\
             # Change the manifest, run `stackgen render`, and commit; CI runs `stackgen render --check`.\n\
             #\n\
             # Deploys to the Docker engine of context `{context}` ({key}). Every path\n\
             # mounted below is on that engine's host:\n\
             #   data:         {root}/data\n\
             #   config files: {config}, a copy of {stacks}/{name}/ that\n\
             #                 `stackgen prepare {name}` and `stackgen up {name}` make through the engine\n\
             #                 (or copy that folder there yourself: root-owned, folders 0755, files 0644).\n\
             # Deploy without stackgen, from the directory holding {manifest}:\n\
             #   stackgen prepare {name}    # after each render: data directories and config files on that host\n\
             #   docker --context {context} compose --env-file {manifest} -f {stack} up -d\n\
             # Secrets are ${{VAR}} references into {manifest}; no secret value is written here.\n\n",
            manifest = display.manifest,
            name = tenant.name,
            key = tenant.key(crate::manifest::values::DOCKER_CONTEXT),
            root = model::tenant_root(&manifest.platform, tenant),
            config = model::config_source(&manifest.platform, tenant),
            stacks = display.stacks_dir,
        );
    }
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
/// Compose's tmpfs entries. A tmpfs belongs to the user the service runs as: without `uid=` and
/// `gid=` its root is root-owned 1777 on the first start only; on every restart (`stackgen
/// restart`, a backup's stop and start, a reboot) runc chmods it to the mode of the mount point
/// it created the first time, 0755, and a non-root service can no longer write its /tmp or
/// cache (docs/upstream-notes.md, "tmpfs after a restart").
fn tmpfs(p: &Policy) -> Vec<String> {
    p.tmpfs
        .iter()
        .map(|path| match p.user {
            Some((uid, gid)) => format!("{path}:rw,nosuid,nodev,uid={uid},gid={gid},mode=0700"),
            None => format!("{path}:rw,nosuid,nodev"),
        })
        .collect()
}

/// Compose's short port syntax: `127.0.0.1:20010:8080[/udp]`.
fn ports(p: &Policy) -> Vec<String> {
    p.ports
        .iter()
        .map(|b| {
            let proto = b
                .protocol
                .as_deref()
                .map(|x| format!("/{x}"))
                .unwrap_or_default();
            format!("{}:{}:{}{proto}", b.host_ip, b.host_port, b.container_port)
        })
        .collect()
}

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
    if let Some((uid, gid)) = p.user {
        m.insert("user".into(), format!("{uid}:{gid}").into());
    }
    m.insert("restart".into(), "unless-stopped".into());
    m.insert("read_only".into(), p.read_only.into());
    if !p.tmpfs.is_empty() {
        m.insert("tmpfs".into(), strings(&tmpfs(p)));
    }
    m.insert("cap_drop".into(), strings(&["ALL".to_string()]));
    if !p.cap_add.is_empty() {
        m.insert("cap_add".into(), strings(&p.cap_add));
    }
    let security_opt = [
        "no-new-privileges:true".to_string(),
        format!("apparmor={}", p.apparmor_profile),
    ];
    m.insert("security_opt".into(), strings(&security_opt));

    let mut env = match take("environment") {
        Some(Value::Mapping(e)) => e,
        None | Some(Value::Null) => Mapping::new(),
        Some(_) => bail!("environment must be a mapping"),
    };
    for (k, v) in vectordb::consumer_env(tenant, &svc.name) {
        env.insert(k.into(), v.into());
    }
    if !env.is_empty() {
        m.insert("environment".into(), Value::Mapping(env));
    }
    for k in ["volumes", "devices", "shm_size", "stop_grace_period"] {
        match take(k) {
            None | Some(Value::Null) => {}
            Some(v) => {
                m.insert(k.into(), v);
            }
        }
    }
    if let Some(owner) = &p.network_of {
        m.insert("network_mode".into(), format!("service:{owner}").into());
    } else {
        let nets: Vec<String> = p.networks.iter().map(|s| s.to_string()).collect();
        if nets.iter().any(|n| n == "front") {
            // On the front network the edge knows this caddy as `<tenant>-caddy`: `caddy`
            // would be every tenant's caddy, since the edge is on all their front networks.
            let mut map = Mapping::new();
            for n in &nets {
                let mut opts = Mapping::new();
                if n == "front" {
                    opts.insert(
                        "aliases".into(),
                        strings(&[crate::render::edge::upstream(tenant)]),
                    );
                }
                map.insert(n.clone().into(), Value::Mapping(opts));
            }
            m.insert("networks".into(), Value::Mapping(map));
        } else {
            m.insert("networks".into(), strings(&nets));
        }
    }
    if !p.ports.is_empty() {
        m.insert("ports".into(), strings(&ports(p)));
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
    // Each component's own databases, plus the ones that exist only to hold its vectors.
    let mut databases: Vec<String> = tenant
        .components
        .iter()
        .filter_map(|c| catalog.component(c))
        .flat_map(|c| c.databases.iter().cloned())
        .collect();
    for db in vectordb::pgvector_databases(tenant) {
        if !databases.contains(&db) {
            databases.push(db);
        }
    }

    let mut ctx = ctx.clone();
    ctx.insert("sites", JValue::from_serialize(&sites));
    ctx.insert("databases", JValue::from_serialize(&databases));
    ctx.insert(
        "front_subnet",
        JValue::from(crate::render::edge::front_subnet(
            &manifest.platform,
            tenant,
        )),
    );
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
    Ok(files)
}
