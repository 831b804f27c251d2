//! Pure builders of every Docker command stackgen runs. Nothing here touches the system, so
//! `--dry-run` prints exactly these vectors and the snapshot tests pin them.
//!
//! Compose commands always carry `-p <tenant> --env-file <manifest> -f <stack>`: the project name
//! is the tenant (so compose's own `com.docker.compose.project` label scopes every action to it),
//! and the manifest is the only source of interpolated values.

use std::ffi::OsString;

use super::containers::FORMAT;
use super::{Cmd, Project, Tools};
use crate::policy::TENANT_LABEL;

/// Where the rendered Caddyfile is mounted inside the caddy container (templates/services/caddy).
pub const CADDYFILE_IN_CONTAINER: &str = "/etc/caddy/Caddyfile";

fn words<I, S>(items: I) -> impl Iterator<Item = OsString>
where
    I: IntoIterator<Item = S>,
    S: Into<OsString>,
{
    items.into_iter().map(Into::into)
}

/// `docker compose -p <tenant> --env-file <manifest> -f <stack>`
pub fn project(tools: &Tools, p: &Project) -> Vec<OsString> {
    let mut v = tools.compose_argv();
    v.extend(words(["-p", p.name.as_str(), "--env-file"]));
    v.push(p.env_file.clone().into_os_string());
    v.push("-f".into());
    v.push(p.stack.clone().into_os_string());
    v
}

fn compose(tools: &Tools, p: &Project, args: &[&str], services: &[String], purpose: &str) -> Cmd {
    let mut v = project(tools, p);
    v.extend(words(args.iter().copied()));
    v.extend(words(services.iter().map(String::as_str)));
    Cmd::new(v, purpose)
}

/// `up -d --wait --wait-timeout N [SERVICE...]`: compose recreates only what changed.
pub fn up(tools: &Tools, p: &Project, services: &[String], timeout_secs: u32) -> Cmd {
    let t = timeout_secs.to_string();
    compose(
        tools,
        p,
        &["up", "-d", "--wait", "--wait-timeout", &t],
        services,
        "docker compose up",
    )
}

/// `up -d --wait --force-recreate SERVICE...`: recreate exactly these services (after a secret
/// or key changed); their dependencies are only recreated if they changed, which they did not.
/// Not `--no-deps`: compose then hashes the services without their `depends_on`, and the next
/// plain `up` would recreate them (and caddy after them) a second time.
pub fn recreate(tools: &Tools, p: &Project, services: &[String], timeout_secs: u32) -> Cmd {
    let t = timeout_secs.to_string();
    compose(
        tools,
        p,
        &[
            "up",
            "-d",
            "--wait",
            "--wait-timeout",
            &t,
            "--force-recreate",
        ],
        services,
        "docker compose up --force-recreate",
    )
}

/// `down --remove-orphans`. Never `-v`: the tenant's data lives in bind mounts under BASE_DIR
/// and must survive; orphans are removed only after `guard_project` proved they are the tenant's.
pub fn down(tools: &Tools, p: &Project) -> Cmd {
    compose(
        tools,
        p,
        &["down", "--remove-orphans"],
        &[],
        "docker compose down",
    )
}

/// `down` of a project by its name alone, for one whose stack file is gone: compose finds its
/// containers and networks by their project label.
pub fn down_project(tools: &Tools, name: &str) -> Cmd {
    let mut v = tools.compose_argv();
    v.extend(words(["-p", name, "down", "--remove-orphans"]));
    Cmd::new(v, "docker compose down")
}

pub fn restart(tools: &Tools, p: &Project, services: &[String]) -> Cmd {
    compose(tools, p, &["restart"], services, "docker compose restart")
}

/// The filters of `stackgen logs`, passed to `docker compose logs` as they are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogOptions {
    pub follow: bool,
    /// A number of lines or `all` (checked by the caller).
    pub tail: Option<String>,
    /// A timestamp or a duration; compose checks it.
    pub since: Option<String>,
    pub timestamps: bool,
}

/// `logs [-f] [--tail N] [--since T] [--timestamps] [SERVICE...]`
pub fn logs(tools: &Tools, p: &Project, o: &LogOptions, services: &[String]) -> Cmd {
    let mut args = vec!["logs"];
    if o.follow {
        args.push("-f");
    }
    if let Some(n) = &o.tail {
        args.extend(["--tail", n]);
    }
    if let Some(t) = &o.since {
        args.extend(["--since", t]);
    }
    if o.timestamps {
        args.push("--timestamps");
    }
    compose(tools, p, &args, services, "docker compose logs")
}

/// `docker compose -p ... --env-file ... -f ... ARGS...`: the operator's own compose command
/// (`stackgen compose`), scoped to the tenant's project, files and manifest.
pub fn passthrough(tools: &Tools, p: &Project, args: &[OsString]) -> Cmd {
    let mut v = project(tools, p);
    v.extend(args.iter().cloned());
    let what = args
        .first()
        .map(|a| format!("docker compose {}", a.to_string_lossy()))
        .unwrap_or_else(|| "docker compose".into());
    Cmd::new(v, what)
}

/// `ps --all --format json`: what compose itself knows about the project.
pub fn ps(tools: &Tools, p: &Project) -> Cmd {
    compose(
        tools,
        p,
        &["ps", "--all", "--format", "json"],
        &[],
        "docker compose ps",
    )
}

/// `exec -T SERVICE COMMAND...`: no TTY, so stdin can carry a secret and scripts get plain output.
pub fn exec(tools: &Tools, p: &Project, service: &str, command: &[&str], purpose: &str) -> Cmd {
    let mut v = project(tools, p);
    v.extend(words(["exec", "-T", service]));
    v.extend(words(command.iter().copied()));
    Cmd::new(v, purpose)
}

/// Caddy re-reads its Caddyfile and swaps the config in place; a bad file is refused and the
/// running config is kept.
pub fn caddy_reload(tools: &Tools, p: &Project) -> Cmd {
    exec(
        tools,
        p,
        "caddy",
        &[
            "caddy",
            "reload",
            "--config",
            CADDYFILE_IN_CONTAINER,
            "--adapter",
            "caddyfile",
        ],
        "caddy reload",
    )
}

/// `ALTER ROLE` for the tenant's postgres user, over the container's local socket. The new
/// password travels on stdin, never in an argument.
pub fn postgres_set_password(tools: &Tools, p: &Project, role: &str, password: &str) -> Cmd {
    exec(
        tools,
        p,
        "postgres",
        &[
            "psql",
            "-v",
            "ON_ERROR_STOP=1",
            "-q",
            "-U",
            role,
            "-d",
            role,
        ],
        "psql ALTER ROLE",
    )
    .with_stdin(format!("ALTER ROLE \"{role}\" PASSWORD '{password}';\n"))
}

/// Grafana keeps its admin password in its database; the env var only seeds it on first start.
pub fn grafana_set_admin_password(tools: &Tools, p: &Project, password: &str) -> Cmd {
    exec(
        tools,
        p,
        "grafana",
        &[
            "grafana",
            "cli",
            "admin",
            "reset-admin-password",
            "--password-from-stdin",
        ],
        "grafana cli admin reset-admin-password",
    )
    .with_stdin(format!("{password}\n"))
}

/// Re-authenticates the running tailscale sidecar with a new auth key. `file:/dev/stdin` keeps
/// the key out of every process list; the node's state (its identity) stays in TS_STATE_DIR.
pub fn tailscale_login(tools: &Tools, p: &Project, socket: &str, key: &str) -> Cmd {
    let socket_flag = format!("--socket={socket}");
    exec(
        tools,
        p,
        "tailscale",
        &[
            "tailscale",
            &socket_flag,
            "login",
            "--auth-key=file:/dev/stdin",
        ],
        "tailscale login",
    )
    .with_stdin(format!("{key}\n"))
}

/// `docker version --format {{.Server.Version}}`: fails when the engine cannot be reached.
pub fn server_version(tools: &Tools) -> Cmd {
    let mut v = tools.docker_argv();
    v.extend(words(["version", "--format", "{{.Server.Version}}"]));
    Cmd::new(v, "docker version")
}

/// Which containers `docker ps` lists, all by label: stackgen never selects by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Select<'a> {
    /// Every container that carries the stackgen tenant label.
    AllTenants,
    /// One tenant's containers (`com.stackgen.tenant=<name>`).
    Tenant(&'a str),
    /// Everything in the compose project named like the tenant, labelled by stackgen or not.
    Project(&'a str),
    /// Every running container on the host (to name who holds a port).
    Running,
}

/// `docker ps` with a JSON line per container; see `containers::FORMAT`.
pub fn containers(tools: &Tools, select: &Select<'_>) -> Cmd {
    let mut v = tools.docker_argv();
    v.push("ps".into());
    let filter = match select {
        Select::AllTenants => Some(TENANT_LABEL.to_string()),
        Select::Tenant(t) => Some(format!("{TENANT_LABEL}={t}")),
        Select::Project(p) => Some(format!("com.docker.compose.project={p}")),
        Select::Running => None,
    };
    if let Some(f) = filter {
        v.extend(words(["--all", "--filter"]));
        v.push(format!("label={f}").into());
    }
    v.extend(words(["--no-trunc", "--format", FORMAT]));
    Cmd::new(v, "docker ps")
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn project_a() -> Project {
        Project {
            name: "team-a".into(),
            env_file: PathBuf::from(".env"),
            stack: PathBuf::from("stacks/team-a-stack.yml"),
        }
    }

    /// Every builder once, one line each, in one reviewed snapshot.
    #[test]
    fn argument_vectors() {
        let t = Tools::fixed("docker");
        let p = project_a();
        let svc = |s: &[&str]| s.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let cmds = [
            up(&t, &p, &[], 300),
            up(&t, &p, &svc(&["litellm", "openwebui"]), 60),
            recreate(&t, &p, &svc(&["redis", "litellm"]), 300),
            down(&t, &p),
            restart(&t, &p, &[]),
            restart(&t, &p, &svc(&["litellm"])),
            logs(&t, &p, &LogOptions::default(), &[]),
            logs(
                &t,
                &p,
                &LogOptions {
                    follow: true,
                    ..LogOptions::default()
                },
                &svc(&["caddy"]),
            ),
            logs(
                &t,
                &p,
                &LogOptions {
                    follow: true,
                    tail: Some("50".into()),
                    since: Some("10m".into()),
                    timestamps: true,
                },
                &svc(&["postgres", "redis"]),
            ),
            passthrough(&t, &p, &["exec".into(), "postgres".into(), "true".into()]),
            ps(&t, &p),
            caddy_reload(&t, &p),
            postgres_set_password(&t, &p, "stackgen", "NEWSECRET"),
            grafana_set_admin_password(&t, &p, "NEWSECRET"),
            tailscale_login(&t, &p, "/tmp/tailscaled.sock", "tskey-NEW"),
            server_version(&t),
            containers(&t, &Select::AllTenants),
            containers(&t, &Select::Tenant("team-a")),
            containers(&t, &Select::Project("team-a")),
            containers(&t, &Select::Running),
            // A tenant on another engine (`<T>__DOCKER_CONTEXT`): the same, through its context.
            up(&t.on(Some("host-2")), &p, &[], 300),
            containers(&t.on(Some("host-2")), &Select::Running),
        ];
        // The `docker ps` template is long and pinned by its own parser's tests: shown once.
        let format = super::super::quote(FORMAT);
        let mut text: Vec<String> = cmds
            .iter()
            .map(|c| format!("{:<40} {}", c.purpose, c.shell_line()).replace(&format, "$FORMAT"))
            .collect();
        text.push(format!("\nFORMAT={format}"));
        let mut settings = insta::Settings::clone_current();
        settings.set_snapshot_path(concat!(env!("CARGO_MANIFEST_DIR"), "/snapshots"));
        settings.set_prepend_module_to_snapshot(false);
        settings.set_omit_expression(true);
        settings.bind(|| insta::assert_snapshot!("compose_argv", text.join("\n")));
        for c in &cmds {
            let line = c.shell_line();
            assert!(
                !line.contains("NEWSECRET") && !line.contains("tskey-NEW"),
                "{line}"
            );
            assert!(
                !line.contains(" -v") || line.contains("ON_ERROR_STOP"),
                "{line}"
            );
        }
    }

    #[test]
    fn standalone_compose_has_no_subcommand_word() {
        let mut t = Tools::fixed("/usr/bin/docker");
        t.compose.flavor = super::super::Flavor::Standalone;
        t.compose.program = PathBuf::from("/usr/bin/docker-compose");
        let v = down(&t, &project_a()).argv;
        assert_eq!(v[0], OsString::from("/usr/bin/docker-compose"));
        assert_eq!(v[1], OsString::from("-p"));
    }

    #[test]
    fn down_never_removes_volumes() {
        let v = down(&Tools::fixed("docker"), &project_a()).argv;
        assert!(!v.iter().any(|a| a == "-v" || a == "--volumes"));
    }
}
