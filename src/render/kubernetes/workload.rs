//! One workload per pod: a StatefulSet when the pod keeps data (it mounts a data directory's
//! claim), a Deployment otherwise. Its containers come from the compose services: the same
//! image, command, environment, mounts and healthcheck (as probes), under the same policy:
//! user, dropped capabilities with the same named additions, read-only root, tmpfs as
//! memory-backed `emptyDir`, no privilege escalation, seccomp `RuntimeDefault` and the same
//! AppArmor profile. Start order becomes init containers that wait for the pod's dependencies
//! (`health`).

use anyhow::{bail, Result};
use serde_yaml::{Mapping, Value};

use super::health::{probes, seconds, wait_command};
use super::objects::{labels, map, metadata, selector, strings, Object, NAME_LABEL};
use super::secrets::Translator;
use super::{ports, Member, Tenancy, Unit};
use crate::manifest::Tenant;
use crate::platform::model::ResolvedService;

/// Where a container's mount comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum Mount {
    /// The claim of a data directory; `sub` is the path inside it (`subPath`).
    Data {
        claim: String,
        sub: Option<String>,
        target: String,
        /// A file the data directory holds (`data_files`), created before the pod starts:
        /// Kubernetes would make a missing `subPath` a directory.
        file: bool,
        read_only: bool,
    },
    /// A generated config folder (`dir`, relative to the tenant's compose folder) as a
    /// ConfigMap; `file` set when one file of it is mounted.
    Config {
        map: String,
        dir: String,
        file: Option<String>,
        target: String,
    },
    /// A host device (kernel-mode tailscale's `/dev/net/tun`).
    Device { host: String, target: String },
}

/// The mounts of one compose service, from its `volumes` and `devices`.
pub fn mounts(
    tenant: &Tenant,
    platform: &crate::manifest::Platform,
    svc: &ResolvedService,
    compose: &Mapping,
    configs: &[(String, String)],
) -> Result<Vec<Mount>> {
    let data_root = format!(
        "{}/data/",
        crate::platform::model::tenant_root(platform, tenant)
    );
    let config_root = format!("./{}/", tenant.name);
    let mut out = Vec::new();
    let items = |key: &str| -> Vec<String> {
        compose
            .get(key)
            .and_then(Value::as_sequence)
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(|s| s.replace("$$", "$")))
            .collect()
    };
    for v in items("volumes") {
        let (spec, read_only) = match v.strip_suffix(":ro") {
            Some(s) => (s.to_string(), true),
            None => (v.strip_suffix(":rw").unwrap_or(&v).to_string(), false),
        };
        let Some((src, target)) = spec.rsplit_once(':') else {
            bail!("{}: cannot read the volume `{v}`", svc.name);
        };
        let target = target.to_string();
        if let Some(rel) = src.strip_prefix(&data_root) {
            let (component, sub) = match rel.split_once('/') {
                Some((c, s)) => (c, Some(s.to_string())),
                None => (rel, None),
            };
            let file = sub.as_ref().is_some_and(|s| svc.def.data_files.contains(s));
            out.push(Mount::Data {
                claim: format!("data-{component}"),
                sub,
                target,
                file,
                read_only,
            });
        } else if let Some(rel) = src.strip_prefix(&config_root) {
            let (dir, file) = if configs.iter().any(|(p, _)| p == rel) {
                match rel.rsplit_once('/') {
                    Some((d, f)) => (d.to_string(), Some(f.to_string())),
                    None => bail!("{}: config file {rel} is not in a folder", svc.name),
                }
            } else {
                (rel.trim_end_matches('/').to_string(), None)
            };
            out.push(Mount::Config {
                map: format!("config-{}", dir.replace(['/', '.', '_'], "-")),
                dir,
                file,
                target,
            });
        } else {
            bail!(
                "{}: the volume `{v}` is neither a data directory nor a generated config file",
                svc.name
            );
        }
    }
    for d in items("devices") {
        let (host, target) = d.split_once(':').unwrap_or((&d, &d));
        out.push(Mount::Device {
            host: host.to_string(),
            target: target.to_string(),
        });
    }
    Ok(out)
}

/// The container security context of one compose service's policy.
fn security_context(m: &Member, wait: bool) -> Value {
    let p = &m.policy;
    let mut sc = Mapping::new();
    sc.insert("allowPrivilegeEscalation".into(), false.into());
    sc.insert(
        "appArmorProfile".into(),
        map([
            ("type", "Localhost".into()),
            ("localhostProfile", p.apparmor_profile.clone().into()),
        ]),
    );
    let mut caps = Mapping::new();
    caps.insert("drop".into(), strings(&["ALL"]));
    // A wait needs no capability, whatever the service it precedes adds.
    if !p.cap_add.is_empty() && !wait {
        caps.insert("add".into(), strings(&p.cap_add));
    }
    sc.insert("capabilities".into(), Value::Mapping(caps));
    sc.insert(
        "readOnlyRootFilesystem".into(),
        (p.read_only || wait).into(),
    );
    // A wait runs as nobody when its service needs root: connecting needs no privilege.
    let ids = match (p.user, wait) {
        (Some(ids), _) => Some(ids),
        (None, true) => Some((65534, 65534)),
        (None, false) => None,
    };
    if let Some((uid, gid)) = ids {
        sc.insert("runAsNonRoot".into(), true.into());
        sc.insert("runAsUser".into(), uid.into());
        sc.insert("runAsGroup".into(), gid.into());
    }
    Value::Mapping(sc)
}

/// The pod's volumes, in the order first used, by name.
#[derive(Default)]
struct Volumes(Vec<(String, Value)>);

impl Volumes {
    fn add(&mut self, name: &str, source: Value) {
        if !self.0.iter().any(|(n, _)| n == name) {
            self.0.push((name.to_string(), source));
        }
    }
}

fn mount_value(name: &str, target: &str, sub: Option<&str>, read_only: bool) -> Value {
    let mut m = Mapping::new();
    m.insert("name".into(), name.into());
    m.insert("mountPath".into(), target.into());
    if let Some(s) = sub {
        m.insert("subPath".into(), s.into());
    }
    if read_only {
        m.insert("readOnly".into(), true.into());
    }
    Value::Mapping(m)
}

/// The mounts of one container, adding their volumes to the pod's.
fn volume_mounts(m: &Member, index: usize, vols: &mut Volumes) -> Vec<Value> {
    let mut out = Vec::new();
    for (i, path) in m.policy.tmpfs.iter().enumerate() {
        let name = format!("tmpfs-{index}-{i}");
        vols.add(
            &name,
            map([("emptyDir", map([("medium", "Memory".into())]))]),
        );
        out.push(mount_value(&name, path, None, false));
    }
    for (i, x) in m.mounts.iter().enumerate() {
        match x {
            Mount::Data {
                claim,
                sub,
                target,
                read_only,
                ..
            } => {
                vols.add(
                    claim,
                    map([(
                        "persistentVolumeClaim",
                        map([("claimName", claim.as_str().into())]),
                    )]),
                );
                out.push(mount_value(claim, target, sub.as_deref(), *read_only));
            }
            Mount::Config {
                map: name,
                file,
                target,
                ..
            } => {
                vols.add(
                    name,
                    map([("configMap", map([("name", name.as_str().into())]))]),
                );
                out.push(mount_value(name, target, file.as_deref(), true));
            }
            Mount::Device { host, target } => {
                let name = format!("device-{index}-{i}");
                vols.add(
                    &name,
                    map([(
                        "hostPath",
                        map([
                            ("path", host.as_str().into()),
                            ("type", "CharDevice".into()),
                        ]),
                    )]),
                );
                out.push(mount_value(&name, target, None, false));
            }
        }
    }
    out
}

/// The compose `command`/`entrypoint` list, translated for Kubernetes.
fn argv(tr: &mut Translator, m: &Member, key: &str) -> Result<Option<Value>> {
    match m.compose.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Sequence(items)) => {
            let v: Vec<String> = items
                .iter()
                .map(|i| tr.expanded(i.as_str().unwrap_or_default()))
                .collect::<Result<_>>()?;
            Ok(Some(strings(&v)))
        }
        Some(_) => bail!("{}: `{key}` is not a list", m.svc.name),
    }
}

fn container(t: &Tenancy, m: &Member, index: usize, vols: &mut Volumes) -> Result<Value> {
    let mut tr = Translator::new(t.tenant);
    let mut c = Mapping::new();
    c.insert("name".into(), m.svc.name.clone().into());
    c.insert("image".into(), m.svc.image.clone().into());
    // compose's `entrypoint` is Kubernetes' `command`, compose's `command` its `args`.
    let command = argv(&mut tr, m, "entrypoint")?;
    let args = argv(&mut tr, m, "command")?;
    if let Some(v) = command {
        c.insert("command".into(), v);
    }
    if let Some(v) = args {
        c.insert("args".into(), v);
    }
    if let Some(w) = m.compose.get("working_dir").and_then(Value::as_str) {
        c.insert("workingDir".into(), w.into());
    }
    let env = tr.env(m.compose.get("environment").and_then(Value::as_mapping))?;
    let mut all_env = tr.helpers();
    all_env.extend(env);
    if m.svc.name == "tailscale" {
        // In a pod, containerboot keeps its state in a Kubernetes Secret unless TS_KUBE_SECRET
        // is empty, which needs a service-account token and RBAC; empty, it uses TS_STATE_DIR,
        // the claim mounted there (tailscale.com/kb/1282/docker, "TS_KUBE_SECRET").
        all_env.push(map([
            ("name", "TS_KUBE_SECRET".into()),
            ("value", "".into()),
        ]));
    }
    if !all_env.is_empty() {
        c.insert("env".into(), Value::Sequence(all_env));
    }
    let listening = ports::of(m.svc);
    if !listening.is_empty() {
        let list = listening
            .iter()
            .map(|p| {
                map([
                    ("name", ports::name(*p).into()),
                    ("containerPort", (*p).into()),
                    ("protocol", "TCP".into()),
                ])
            })
            .collect();
        c.insert("ports".into(), Value::Sequence(list));
    }
    let mounts = volume_mounts(m, index, vols);
    if !mounts.is_empty() {
        c.insert("volumeMounts".into(), Value::Sequence(mounts));
    }
    for (k, v) in probes(&tr, m.compose.get("healthcheck"))? {
        c.insert(k.into(), v);
    }
    c.insert("securityContext".into(), security_context(m, false));
    Ok(Value::Mapping(c))
}

/// The units (other than `u`) this unit waits for, with the first port of each: the policy's
/// health-gated `depends_on`, mapped to pods.
pub fn dependencies<'a>(t: &'a Tenancy, u: &Unit) -> Vec<&'a Unit<'a>> {
    let mut out: Vec<&Unit> = Vec::new();
    for m in &u.members {
        for d in &m.policy.depends_on {
            if let Some(target) = t.unit_of(d) {
                if target.name != u.name && !out.iter().any(|o| o.name == target.name) {
                    out.push(target);
                }
            }
        }
    }
    out
}

fn init_containers(t: &Tenancy, u: &Unit) -> Vec<Value> {
    let main = &u.members[0];
    let mut out = Vec::new();
    // Files in a data directory (anythingllm's .env) exist before the app mounts them.
    for x in &main.mounts {
        if let Mount::Data {
            claim,
            sub: Some(sub),
            file: true,
            ..
        } = x
        {
            let mut sc = security_context(main, true);
            if let Value::Mapping(m) = &mut sc {
                // It writes into the claim as the service's own user.
                if let Some((uid, gid)) = main.policy.user {
                    m.insert("runAsUser".into(), uid.into());
                    m.insert("runAsGroup".into(), gid.into());
                }
            }
            out.push(map([
                (
                    "name",
                    format!(
                        "create-{}",
                        sub.replace(['/', '.', '_'], "-").trim_matches('-')
                    )
                    .into(),
                ),
                ("image", main.svc.image.clone().into()),
                // `:` and `>>` are the shell's own: no program the image may lack.
                (
                    "command",
                    strings(&["sh", "-c", &format!(": >> '/stackgen-data/{sub}'")]),
                ),
                (
                    "volumeMounts",
                    Value::Sequence(vec![mount_value(claim, "/stackgen-data", None, false)]),
                ),
                ("securityContext", sc),
            ]));
        }
    }
    let targets: Vec<String> = dependencies(t, u)
        .iter()
        .filter_map(|d| ports::of_unit(d).first().map(|p| format!("{}:{p}", d.name)))
        .collect();
    let binaries = main
        .svc
        .def
        .contract
        .as_ref()
        .map(|c| c.binaries.clone())
        .unwrap_or_default();
    if !targets.is_empty() {
        if let Some(cmd) = wait_command(&binaries, &targets) {
            out.push(map([
                ("name", "wait-for-dependencies".into()),
                ("image", main.svc.image.clone().into()),
                ("command", strings(&cmd)),
                ("securityContext", security_context(main, true)),
            ]));
        }
    }
    out
}

/// Pods that mount a claim another pod mounted first run on that pod's node: the claims are
/// ReadWriteOnce, which many pods may share on one node (dify's api, worker and daemons).
fn affinity(t: &Tenancy, u: &Unit) -> Option<Value> {
    let claims = |unit: &Unit| -> Vec<String> {
        unit.members
            .iter()
            .flat_map(|m| &m.mounts)
            .filter_map(|x| match x {
                Mount::Data { claim, .. } => Some(claim.clone()),
                _ => None,
            })
            .collect()
    };
    let mine = claims(u);
    let mut owners: Vec<&str> = Vec::new();
    for other in &t.units {
        if other.name == u.name {
            break;
        }
        if claims(other).iter().any(|c| mine.contains(c)) && !owners.contains(&other.name.as_str())
        {
            owners.push(&other.name);
        }
    }
    if owners.is_empty() {
        return None;
    }
    let terms: Vec<Value> = owners
        .iter()
        .map(|o| {
            map([
                (
                    "labelSelector",
                    map([("matchLabels", map([(NAME_LABEL, (*o).into())]))]),
                ),
                ("topologyKey", "kubernetes.io/hostname".into()),
            ])
        })
        .collect();
    Some(map([(
        "podAffinity",
        map([(
            "requiredDuringSchedulingIgnoredDuringExecution",
            Value::Sequence(terms),
        )]),
    )]))
}

pub fn workload(t: &Tenancy, u: &Unit) -> Result<Object> {
    let mut vols = Volumes::default();
    let mut containers = Vec::new();
    for (i, m) in u.members.iter().enumerate() {
        containers.push(container(t, m, i, &mut vols)?);
    }
    let main = &u.members[0];
    let stateful = u
        .members
        .iter()
        .any(|m| m.mounts.iter().any(|x| matches!(x, Mount::Data { .. })));

    let mut pod_sc = Mapping::new();
    // The data directories belong to the service's group, as `stackgen prepare` makes them.
    if let (true, Some((_, gid))) = (stateful, main.policy.user) {
        pod_sc.insert("fsGroup".into(), gid.into());
        pod_sc.insert("fsGroupChangePolicy".into(), "OnRootMismatch".into());
    }
    pod_sc.insert(
        "seccompProfile".into(),
        map([("type", "RuntimeDefault".into())]),
    );

    let mut pod = Mapping::new();
    // No API access and no Docker-links-style variables (`REDIS_PORT=tcp://...` would
    // shadow settings some images read).
    pod.insert("automountServiceAccountToken".into(), false.into());
    pod.insert("enableServiceLinks".into(), false.into());
    pod.insert("securityContext".into(), Value::Mapping(pod_sc));
    if let Some(a) = affinity(t, u) {
        pod.insert("affinity".into(), a);
    }
    let grace = u
        .members
        .iter()
        .map(|m| seconds(m.compose.get("stop_grace_period")))
        .collect::<Result<Vec<_>>>()?
        .into_iter()
        .flatten()
        .max();
    if let Some(g) = grace {
        pod.insert("terminationGracePeriodSeconds".into(), g.into());
    }
    let init = init_containers(t, u);
    if !init.is_empty() {
        pod.insert("initContainers".into(), Value::Sequence(init));
    }
    pod.insert("containers".into(), Value::Sequence(containers));
    let volumes: Vec<Value> = vols
        .0
        .into_iter()
        .map(|(name, source)| {
            let mut m = Mapping::new();
            m.insert("name".into(), name.into());
            if let Value::Mapping(s) = source {
                m.extend(s);
            }
            Value::Mapping(m)
        })
        .collect();
    if !volumes.is_empty() {
        pod.insert("volumes".into(), Value::Sequence(volumes));
    }

    let template = map([
        ("metadata", map([("labels", labels(t, Some(&u.name)))])),
        ("spec", Value::Mapping(pod)),
    ]);
    let (kind, spec) = if stateful {
        (
            "StatefulSet",
            map([
                ("serviceName", u.name.clone().into()),
                ("replicas", 1.into()),
                ("selector", map([("matchLabels", selector(&u.name))])),
                ("template", template),
            ]),
        )
    } else {
        (
            "Deployment",
            map([
                ("replicas", 1.into()),
                ("selector", map([("matchLabels", selector(&u.name))])),
                ("template", template),
            ]),
        )
    };
    Ok(Object::new(
        kind,
        &u.name,
        map([
            ("apiVersion", "apps/v1".into()),
            ("kind", kind.into()),
            ("metadata", metadata(t, &u.name, Some(&u.name))),
            ("spec", spec),
        ]),
    ))
}
