//! Image contracts: what each pinned upstream image really is (its default user, the programs in
//! it, the paths its program writes, whether it runs as a foreign UID, whether it needs egress),
//! and the rules that check a rendered compose service against it.
//!
//! The facts are data in `templates/catalog.yml` (`contract:` per service), each one cited in
//! `docs/upstream-notes.md`. The rules run in unit tests for every service × vector DB, so an
//! image bump that changes a fact the stack depends on fails the build instead of a deployment.
//! The policy layer reads the contract too: a service whose image refuses a foreign UID runs as
//! the image's own user (see `policy::for_service`).

use serde::{Deserialize, Serialize};
use serde_yaml::Value;

/// One image's contract, as read at the pinned tag.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Contract {
    /// Where the facts were read: `owner/repo@tag` (paths in docs/upstream-notes.md).
    pub source: String,
    /// The final image stage's `USER`, numeric `uid:gid` (`0:0` for root).
    pub image_user: String,
    /// `HOME` of `image_user` in the image's /etc/passwd (what Docker sets when the stack does
    /// not). A UID that the image does not know gets `/`.
    pub home: String,
    /// Paths the image owns by `image_user` (chowned in the Dockerfile): writable only by it.
    #[serde(default)]
    pub owns: Vec<String>,
    /// Programs in the image that a healthcheck or a `command:` may call.
    pub binaries: Vec<String>,
    /// Image `ENV` that decides where the program writes (`XDG_DATA_HOME`, `PGDATA`, ...).
    #[serde(default)]
    pub env: indexmap::IndexMap<String, String>,
    /// Every path the program writes, at start or while running.
    #[serde(default)]
    pub writes: Vec<Write>,
    /// Whether the image works as a UID it does not know, given writable mounts for `writes`.
    pub arbitrary_uid: bool,
    /// Why not, when `arbitrary_uid` is false.
    #[serde(default)]
    pub arbitrary_uid_why: Option<String>,
    /// What the program needs on first start to start at all, and how the stack provides it.
    #[serde(default)]
    pub first_start: Option<String>,
    /// Whether the program needs outbound internet (models, plugins, webhooks).
    pub egress: bool,
    #[serde(default)]
    pub egress_why: Option<String>,
    /// A fact the stand-in enforces at start: the program exits unless one of these arguments is
    /// on its command line (openclaw's `--allow-unconfigured`).
    #[serde(default)]
    pub requires_args: Vec<String>,
}

/// A path the program writes. `$VAR` and `${VAR}` are expanded from the service's environment,
/// then the image's `env`; `$HOME` as Docker sets it (see [`Contract::home`]).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Write {
    pub path: String,
    /// The program exits when it cannot write the path (false: it logs and goes on).
    #[serde(default = "yes")]
    pub fatal: bool,
    /// A file, not a directory.
    #[serde(default)]
    pub file: bool,
    /// When it is written: `start` (before the program answers its healthcheck) or `runtime`.
    #[serde(default = "start")]
    pub when: String,
}

fn yes() -> bool {
    true
}
fn start() -> String {
    "start".into()
}

impl Contract {
    /// `image_user` as numbers.
    pub fn image_ids(&self) -> (u32, u32) {
        parse_ids(&self.image_user).expect("contract image_user is uid:gid (tested)")
    }
}

/// `"1000:1000"` → `(1000, 1000)`.
pub fn parse_ids(s: &str) -> Option<(u32, u32)> {
    let (u, g) = s.split_once(':')?;
    Some((u.parse().ok()?, g.parse().ok()?))
}

/// Checks one assembled compose service (the mapping stackgen writes) against its image's
/// contract. Returns one sentence per broken rule; empty when the service fits its image.
pub fn check(name: &str, contract: &Contract, service: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let image_ids = contract.image_ids();
    let user = service["user"]
        .as_str()
        .map(|u| parse_ids(u).unwrap_or((u32::MAX, u32::MAX)))
        .unwrap_or(image_ids);

    // 1. The healthcheck (and a shell `command:`) calls only programs the image has.
    for program in called_programs(&service["healthcheck"]["test"]) {
        if !contract.binaries.iter().any(|b| b == &program) {
            problems.push(format!(
                "{name}: the healthcheck calls `{program}`, which the image does not have (it has: {})",
                contract.binaries.join(", ")
            ));
        }
    }
    if let Some(first) = service["command"]
        .as_sequence()
        .and_then(|c| c.first())
        .and_then(Value::as_str)
    {
        if matches!(first, "sh" | "bash") && !contract.binaries.iter().any(|b| b == first) {
            problems.push(format!(
                "{name}: the command runs `{first}`, which the image does not have"
            ));
        }
    }

    // 2. A foreign UID only where the image takes one.
    let foreign = user != image_ids && user.0 != 0;
    if foreign && !contract.arbitrary_uid {
        problems.push(format!(
            "{name}: runs as {}:{} but the image works only as {}: {}",
            user.0,
            user.1,
            contract.image_user,
            contract
                .arbitrary_uid_why
                .as_deref()
                .unwrap_or("see its contract")
        ));
    }

    // 3. Every path it must write (a fatal one) is writable by the user it runs as.
    let env = environment(contract, service, user, image_ids);
    let mounts = mount_targets(service);
    let read_only = service["read_only"].as_bool().unwrap_or(false);
    let mut uncovered = 0;
    for w in &contract.writes {
        let path = match expand(&w.path, &env) {
            Ok(p) => p,
            Err(var) => {
                problems.push(format!(
                    "{name}: writes {} but ${var} is not set in its environment",
                    w.path
                ));
                continue;
            }
        };
        if mounts.iter().any(|m| is_under(&path, m)) {
            continue;
        }
        uncovered += 1;
        if !w.fatal {
            // The program logs and goes on: nothing to prove, but it is a write on the root.
            continue;
        }
        if read_only {
            problems.push(format!(
                "{name}: writes {path} (from {}), which is on its read-only root: mount it or relocate it",
                w.path
            ));
        } else if !writable_in_image(contract, &path, user, image_ids) {
            problems.push(format!(
                "{name}: as {}:{} it cannot write {path} (from {}) in the image: mount it or relocate it",
                user.0, user.1, w.path
            ));
        }
    }

    // 4. A writable root only where something on it is written.
    if !read_only && uncovered == 0 {
        problems.push(format!(
            "{name}: every path it writes is a mount or tmpfs, so its root file system can be read-only"
        ));
    }

    // 5. Egress only where the image needs it, and never cut off where it does.
    // A list of names, or a mapping by name when one carries options (caddy's front alias).
    let mut networks = strings(&service["networks"]);
    if let Some(m) = service["networks"].as_mapping() {
        networks.extend(m.keys().filter_map(Value::as_str));
    }
    if service["network_mode"].is_null() && contract.egress && !networks.contains(&"edge") {
        problems.push(format!(
            "{name}: needs egress ({}) but sits only on the internal network",
            contract.egress_why.as_deref().unwrap_or("see its contract")
        ));
    }

    // 6. Arguments the program refuses to start without.
    if !contract.requires_args.is_empty() {
        let args = strings(&service["command"]);
        if !service["command"].is_null()
            && !contract
                .requires_args
                .iter()
                .any(|a| args.contains(&a.as_str()))
        {
            problems.push(format!(
                "{name}: its command lacks {}, without which the program refuses to start",
                contract.requires_args.join(" or ")
            ));
        }
    }
    problems
}

/// The strings of a YAML sequence (empty for anything else).
fn strings(v: &Value) -> Vec<&str> {
    v.as_sequence()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect()
}

/// The programs a healthcheck test runs: `CMD` → its first word; `CMD-SHELL` → `sh` and the
/// first word of every pipeline stage.
pub fn called_programs(test: &Value) -> Vec<String> {
    let words = strings(test);
    match words.first() {
        Some(&"CMD") => words
            .get(1)
            .map(|w| vec![w.to_string()])
            .unwrap_or_default(),
        Some(&"CMD-SHELL") => {
            let mut out = vec!["sh".to_string()];
            let script = words.get(1).copied().unwrap_or_default();
            for stage in script.split(['|', ';', '&']) {
                if let Some(first) = stage.split_whitespace().next() {
                    let first = first.trim_start_matches('(');
                    if !first.is_empty()
                        && !matches!(first, "exit" | "test" | "[" | "!" | "exec")
                        && !out.iter().any(|o| o == first)
                    {
                        out.push(first.to_string());
                    }
                }
            }
            out
        }
        _ => Vec::new(),
    }
}

/// The variables a write path can use: the service's environment over the image's, and `HOME`
/// as Docker sets it for the user the service runs as.
fn environment(
    contract: &Contract,
    service: &Value,
    user: (u32, u32),
    image_ids: (u32, u32),
) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = contract
        .env
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if let Some(m) = service["environment"].as_mapping() {
        for (k, v) in m {
            if let (Some(k), Some(v)) = (k.as_str(), v.as_str()) {
                env.retain(|(ek, _)| ek != k);
                env.push((k.to_string(), v.to_string()));
            }
        }
    }
    if !env.iter().any(|(k, _)| k == "HOME") {
        let home = if user == image_ids {
            contract.home.clone()
        } else if user.0 == 0 {
            "/root".to_string()
        } else {
            "/".to_string()
        };
        env.push(("HOME".into(), home));
    }
    env
}

/// Expands `$VAR` and `${VAR}`; an unset variable is an error naming it.
pub fn expand(path: &str, env: &[(String, String)]) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = path;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let (var, tail) = if let Some(b) = after.strip_prefix('{') {
            let end = b.find('}').ok_or_else(|| after.to_string())?;
            (&b[..end], &b[end + 1..])
        } else {
            let end = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            (&after[..end], &after[end..])
        };
        let value = env
            .iter()
            .rev()
            .find(|(k, _)| k == var)
            .map(|(_, v)| v.as_str())
            .ok_or_else(|| var.to_string())?;
        out.push_str(value);
        rest = tail;
    }
    out.push_str(rest);
    Ok(normalize(&out))
}

/// `//a/./b/` → `/a/b`.
fn normalize(p: &str) -> String {
    let parts: Vec<&str> = p
        .split('/')
        .filter(|s| !s.is_empty() && *s != ".")
        .collect();
    format!("/{}", parts.join("/"))
}

/// Container paths of the service's bind mounts, volumes and tmpfs.
pub fn mount_targets(service: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for v in service["volumes"].as_sequence().into_iter().flatten() {
        if let Some(s) = v.as_str() {
            // SOURCE:TARGET[:MODE]; a read-only mount covers nothing.
            let parts: Vec<&str> = s.split(':').collect();
            if parts.len() >= 2
                && parts
                    .get(2)
                    .is_none_or(|m| !m.split(',').any(|o| o == "ro"))
            {
                out.push(normalize(parts[1]));
            }
        }
    }
    for t in service["tmpfs"].as_sequence().into_iter().flatten() {
        if let Some(s) = t.as_str() {
            out.push(normalize(s.split(':').next().unwrap_or(s)));
        }
    }
    out
}

/// Whether `path` is `dir` or below it.
pub fn is_under(path: &str, dir: &str) -> bool {
    dir == "/" || path == dir || path.starts_with(&format!("{dir}/"))
}

/// On a writable root: the image's own user writes what it owns; root writes what root owns
/// (everything but the image user's paths, as it has no DAC_OVERRIDE); a foreign UID nothing.
fn writable_in_image(contract: &Contract, path: &str, user: (u32, u32), image: (u32, u32)) -> bool {
    let owned = contract.owns.iter().any(|o| is_under(path, o));
    if user == image {
        owned || image.0 == 0
    } else {
        user.0 == 0 && !owned
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contract() -> Contract {
        serde_yaml::from_str(
            r#"
source: example/app@1.0
image_user: "1000:1000"
home: /home/node
owns: [/app, /home/node]
binaries: [sh, node]
writes:
  - { path: $HOME/.cache/app }
  - { path: /app/server/node_modules/.prisma }
arbitrary_uid: false
arbitrary_uid_why: the entrypoint writes into /app, owned by 1000
egress: true
egress_why: it downloads models
"#,
        )
        .unwrap()
    }

    fn service(yaml: &str) -> Value {
        serde_yaml::from_str(yaml).unwrap()
    }

    #[test]
    fn a_fitting_service_passes() {
        let s = service(
            r#"
user: "1000:1000"
read_only: false
networks: [internal, edge]
healthcheck: { test: ["CMD", "node", "-e", "1"] }
"#,
        );
        assert_eq!(check("app", &contract(), &s), Vec::<String>::new());
    }

    #[test]
    fn each_rule_can_fail() {
        let s = service(
            r#"
user: "2001:2001"
read_only: true
networks: [internal]
healthcheck: { test: ["CMD-SHELL", "curl -f http://x | grep -q ok"] }
"#,
        );
        let p = check("app", &contract(), &s).join("\n");
        assert!(p.contains("calls `curl`"), "{p}");
        assert!(p.contains("calls `grep`"), "{p}");
        assert!(p.contains("works only as 1000:1000"), "{p}");
        // HOME is / for a UID the image does not know.
        assert!(p.contains("writes /.cache/app"), "{p}");
        assert!(p.contains("needs egress"), "{p}");
    }

    #[test]
    fn foreign_uid_on_writable_root_cannot_write_image_paths() {
        let mut c = contract();
        c.arbitrary_uid = true;
        let s = service(
            r#"
user: "2001:2001"
read_only: false
networks: [edge]
environment: { HOME: /data }
volumes: ["./d:/data"]
healthcheck: { test: ["CMD", "node"] }
"#,
        );
        let p = check("app", &c, &s).join("\n");
        assert!(
            p.contains("cannot write /app/server/node_modules/.prisma"),
            "{p}"
        );
        assert!(!p.contains(".cache"), "{p}");
    }

    #[test]
    fn all_writes_mounted_means_read_only_is_possible() {
        let mut c = contract();
        c.arbitrary_uid = true;
        c.writes.truncate(1);
        let s = service(
            r#"
user: "2001:2001"
read_only: false
networks: [edge]
environment: { HOME: /data }
volumes: ["./d:/data", "./cfg:/etc/cfg:ro"]
healthcheck: { test: ["CMD", "node"] }
"#,
        );
        let p = check("app", &c, &s).join("\n");
        assert!(p.contains("can be read-only"), "{p}");
    }

    #[test]
    fn expand_and_mounts() {
        let env = vec![("HOME".to_string(), "/".to_string())];
        assert_eq!(expand("$HOME/.mc", &env).unwrap(), "/.mc");
        assert_eq!(expand("${HOME}/x/", &env).unwrap(), "/x");
        assert_eq!(expand("$NOPE/x", &env).unwrap_err(), "NOPE");
        let s = service(r#"{ volumes: ["a:/data", "b:/etc/x:ro"], tmpfs: ["/tmp:rw,nosuid"] }"#);
        assert_eq!(mount_targets(&s), vec!["/data", "/tmp"]);
        assert!(is_under("/data/x", "/data") && !is_under("/database", "/data"));
    }

    #[test]
    fn shell_healthchecks_name_every_stage() {
        let t = service(r#"["CMD-SHELL", "redis-cli ping | grep -q PONG"]"#);
        assert_eq!(called_programs(&t), vec!["sh", "redis-cli", "grep"]);
    }
}

/// Every catalog service, rendered for a tenant of each vector DB, fits its image's contract.
#[cfg(test)]
mod catalog_fits {
    use std::path::Path;

    use crate::manifest::Manifest;
    use crate::platform::catalog::Catalog;
    use crate::render::compose::render_tenant;
    use crate::render::Display;

    /// The example manifest's team-a (every service) with the given vector DB.
    pub fn every_service_manifest(vector_db: &str) -> Manifest {
        let example = include_str!("../../.env.example");
        let start = example.find("# ---- tenant team-a ----").unwrap();
        let end = example.find("# ---- tenant team-b ----").unwrap();
        let head = &example[..example.find("# ---- tenant").unwrap()];
        let mut block = example[start..end].to_string();
        let db_service = if vector_db == "pgvector" {
            ""
        } else {
            vector_db
        };
        block = block.replace(
            "TEAM_A__VECTOR_DB=qdrant",
            &format!("TEAM_A__VECTOR_DB={vector_db}"),
        );
        block = block.replace(
            "postgres,redis,qdrant,",
            &format!(
                "postgres,redis,{db_service}{}",
                if db_service.is_empty() { "" } else { "," }
            ),
        );
        if vector_db != "qdrant" {
            block = block.replace(
                "TEAM_A__QDRANT_API_KEY=example-qdrant-api-key-not-a-secret\n",
                "",
            );
        }
        if vector_db == "chroma" {
            // dify cannot use chroma (catalog: incompatible_vector_dbs).
            block = block.replace("dify,", "");
        }
        if vector_db == "weaviate" {
            block.push_str("TEAM_A__WEAVIATE_API_KEY=example-weaviate-api-key-not-a-secret\n");
        }
        Manifest::from_text(Path::new(".env"), &format!("{head}{block}"))
            .unwrap_or_else(|e| panic!("{vector_db}: {e}"))
    }

    #[test]
    fn every_service_fits_its_image_contract_for_every_vector_db() {
        let catalog = Catalog::get();
        let display = Display {
            manifest: ".env".into(),
            stacks_dir: "stacks".into(),
        };
        let mut problems = Vec::new();
        for db in crate::platform::catalog::VECTOR_DBS {
            let m = every_service_manifest(db);
            let tenant = &m.tenants[0];
            let files = render_tenant(&m, tenant, &display).unwrap();
            let stack: serde_yaml::Value = serde_yaml::from_str(&files[0].content).unwrap();
            let services = stack["services"].as_mapping().unwrap();
            let expected = if db == "chroma" { 16 } else { 22 };
            assert!(
                services.len() >= expected,
                "{db}: {} services",
                services.len()
            );
            for (name, svc) in services {
                let name = name.as_str().unwrap();
                let contract = catalog.services[name].contract.as_ref().unwrap();
                for p in super::check(name, contract, svc) {
                    problems.push(format!("[{db}] {p}"));
                }
            }
        }
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }
}
