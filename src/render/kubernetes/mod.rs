//! The Kubernetes render target (issue 14): the same tenant model and the same policy as the
//! compose target, written as plain manifests under `<stacks-dir>/kubernetes/<tenant>/`.
//!
//! The compose renderer stays the one place that knows each image (its templates give the
//! command, environment, mounts and healthcheck); this target reads the assembled compose
//! service back and translates it, so the two targets can never disagree on what a service
//! runs. What differs is only how the platform expresses it: a namespace per tenant with a Pod
//! Security Standard, a workload per pod, Services, PersistentVolumeClaims, ConfigMaps, an
//! Ingress instead of the tenant's caddy, and NetworkPolicies instead of compose networks.
//! Decisions and their reasons: docs/kubernetes.md.
//!
//! Here: reading the compose services into pods (`Unit`) and writing the files; `workload`
//! (StatefulSets and Deployments, security contexts, mounts), `health` (probes and start
//! order), `pod_security` (the Namespace and its level), `objects` (ConfigMaps, claims,
//! Services, kustomization), `ingress`, `network_policy`, `secrets` (references and the
//! Secret), `ports`.

pub mod health;
pub mod ingress;
pub mod network_policy;
pub mod objects;
pub mod pod_security;
pub mod ports;
pub mod secrets;
pub mod workload;

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde_yaml::{Mapping, Value};

use crate::manifest::{Manifest, Tenant};
use crate::platform::model::{self, ResolvedService};
use crate::policy::{self, Policy};
use crate::render::compose::{self as render};
use crate::render::{Display, RenderedFile};

/// The folder under the stacks directory that holds one folder per tenant.
pub const DIR: &str = "kubernetes";

/// The compose service the Ingress replaces: the cluster's ingress controller terminates TLS
/// and routes by host name, so a per-tenant caddy would only add a hop.
pub const REPLACED_BY_INGRESS: &str = "caddy";

/// The tenant's namespace. Prefixed like its compose networks, so a tenant named `default` or
/// `kube-system` can never land in a namespace the cluster already uses.
pub fn namespace(tenant: &Tenant) -> String {
    format!("ai-platform-{}", tenant.name)
}

/// `kubernetes/<tenant>`: the tenant's folder, relative to the stacks directory.
pub fn tenant_dir(tenant: &Tenant) -> PathBuf {
    Path::new(DIR).join(&tenant.name)
}

/// Whether `rel` (a path under a tenant's Kubernetes folder) is one this target writes: the
/// folder holds only generated manifests, one level deep.
pub fn may_generate(rel: &Path) -> bool {
    rel.components().count() == 1 && rel.extension().is_some_and(|e| e == "yaml")
}

/// One compose service as this target sees it: the model's service, the policy's decisions
/// and the compose renderer's assembled mapping (command, environment, mounts, healthcheck).
pub struct Member<'a> {
    pub svc: &'a ResolvedService,
    pub policy: Policy,
    pub compose: Mapping,
    /// Its volumes and devices, read from the compose mapping.
    pub mounts: Vec<workload::Mount>,
}

/// One pod: usually one compose service; a service that shares another's network namespace
/// (`network_mode: service:X`, openclaw on its tailscale sidecar) joins that one's pod.
pub struct Unit<'a> {
    /// The workload's name, its pod label and (when it listens) its Service's name.
    pub name: String,
    /// The containers, the pod's own service first.
    pub members: Vec<Member<'a>>,
}

/// Everything the object builders need for one tenant.
pub struct Tenancy<'a> {
    pub manifest: &'a Manifest,
    pub tenant: &'a Tenant,
    pub units: Vec<Unit<'a>>,
    /// The compose target's config files, relative to the tenant's compose folder
    /// (`postgres/initdb/10-stackgen.sql`), with their content.
    pub configs: Vec<(String, String)>,
}

impl Tenancy<'_> {
    /// The unit that runs compose service `name`.
    pub fn unit_of(&self, name: &str) -> Option<&Unit<'_>> {
        self.units
            .iter()
            .find(|u| u.members.iter().any(|m| m.svc.name == name))
    }
}

/// Every manifest of one tenant, paths relative to the stacks directory; `kustomization.yaml`
/// last. Pure and deterministic, like the compose renderer.
pub fn render_tenant(
    manifest: &Manifest,
    tenant: &Tenant,
    display: &Display,
) -> Result<Vec<RenderedFile>> {
    let services = model::services(&manifest.platform, tenant);
    let compose = render::render_tenant(manifest, tenant, display)?;
    let (stack, rest) = compose
        .split_first()
        .context("the compose renderer returned no stack file")?;
    let doc: Value = serde_yaml::from_str(&stack.content).context("reading the compose stack")?;
    let Some(service_map) = doc.get("services").and_then(Value::as_mapping) else {
        bail!("the compose stack of {} has no services", tenant.name);
    };
    let prefix = Path::new(&tenant.name);
    let configs: Vec<(String, String)> = rest
        .iter()
        .filter_map(|f| {
            let rel = f.path.strip_prefix(prefix).ok()?;
            // AppArmor profiles are loaded on the nodes, not mounted (docs/kubernetes.md).
            (!rel.starts_with("apparmor"))
                .then(|| (rel.to_string_lossy().into_owned(), f.content.clone()))
        })
        .collect();

    let sidecar_of = |svc: &ResolvedService| -> Option<String> {
        policy::for_service(tenant, svc, &services).network_of
    };
    let hosts: Vec<String> = services.iter().filter_map(sidecar_of).collect();
    let mut units = Vec::new();
    for svc in services.iter() {
        if svc.name == REPLACED_BY_INGRESS || hosts.contains(&svc.name) {
            continue;
        }
        let member = |s| member(manifest, tenant, &services, service_map, &configs, s);
        let mut members = vec![member(svc)?];
        if let Some(host) = sidecar_of(svc) {
            let host = services.iter().find(|s| s.name == host).with_context(|| {
                format!(
                    "{} shares the network of {host}, which is not rendered",
                    svc.name
                )
            })?;
            members.push(member(host)?);
        }
        units.push(Unit {
            name: svc.name.clone(),
            members,
        });
    }

    let t = Tenancy {
        manifest,
        tenant,
        units,
        configs,
    };
    let mut objects = vec![pod_security::namespace(&t)];
    objects.extend(objects::config_maps(&t)?);
    objects.extend(objects::volume_claims(&t));
    for u in &t.units {
        objects.extend(objects::service(&t, u));
        objects.push(workload::workload(&t, u)?);
    }
    objects.extend(ingress::ingress(&t));
    objects.extend(network_policy::policies(&t)?);

    let dir = tenant_dir(tenant);
    let short = short_header(tenant, display);
    let mut files = Vec::with_capacity(objects.len() + 1);
    let mut names = Vec::with_capacity(objects.len());
    for o in &objects {
        let name = o.file_name();
        if names.contains(&name) {
            bail!(
                "two Kubernetes objects of {} would both be written to {name}",
                tenant.name
            );
        }
        files.push(RenderedFile {
            path: dir.join(&name),
            content: format!("{short}{}", o.to_yaml()),
        });
        names.push(name);
    }
    files.push(RenderedFile {
        path: dir.join("kustomization.yaml"),
        content: format!(
            "{}{}",
            header(tenant, display),
            objects::kustomization(&names)
        ),
    });
    Ok(files)
}

/// The tenant's Namespace as `render` writes it (without the header), for `kube-secrets`.
pub fn namespace_yaml(manifest: &Manifest, tenant: &Tenant, display: &Display) -> Result<String> {
    let files = render_tenant(manifest, tenant, display)?;
    let path = tenant_dir(tenant).join("namespace.yaml");
    let file = files
        .iter()
        .find(|f| f.path == path)
        .context("no namespace rendered")?;
    Ok(file
        .content
        .split_once("\n\n")
        .map_or(file.content.as_str(), |(_, body)| body)
        .to_string())
}

fn member<'a>(
    manifest: &Manifest,
    tenant: &Tenant,
    services: &[ResolvedService],
    service_map: &Mapping,
    configs: &[(String, String)],
    svc: &'a ResolvedService,
) -> Result<Member<'a>> {
    let compose = service_map
        .get(svc.name.as_str())
        .and_then(Value::as_mapping)
        .cloned()
        .with_context(|| format!("the compose stack lacks {}", svc.name))?;
    let mounts = workload::mounts(tenant, &manifest.platform, svc, &compose, configs)?;
    Ok(Member {
        svc,
        policy: policy::for_service(tenant, svc, services),
        compose,
        mounts,
    })
}

/// The two lines each object's file starts with; `kustomization.yaml` has the full header.
fn short_header(tenant: &Tenant, display: &Display) -> String {
    format!(
        "# Generated by stackgen from {} for tenant `{}`; do not edit by hand.\n\
         # Applied by the kustomization.yaml beside it; no secret value is written here.\n\n",
        display.manifest, tenant.name,
    )
}

fn header(tenant: &Tenant, display: &Display) -> String {
    format!(
        "# Generated by stackgen from {manifest} for tenant `{name}`; do not edit by hand.\n\
         # Change the manifest, run `stackgen render --target kubernetes`, and commit.\n\
         # Apply: stackgen kube-secrets {name} | kubectl apply -f - ; kubectl apply -k {stacks}/{DIR}/{name}\n\
         # No secret value is written here: workloads read the Secret `{secret}` by key.\n\n",
        manifest = display.manifest,
        name = tenant.name,
        stacks = display.stacks_dir,
        secret = secrets::SECRET_NAME,
    )
}
