//! `stackgen teardown` on a real Docker engine: only the containers and networks that carry both
//! the tenant's stackgen label and its compose project go; a container and a network made by
//! hand (with one of the two labels, the trickiest case) survive; the data directory survives
//! without `--purge-data`; with it, a backup is written first, the typed tenant name is
//! required on a terminal, and nothing outside `BASE_DIR/tenants/<tenant>` is deleted.

use crate::common::tty::{have_tmux, Tty};
use crate::common::*;

/// One tenant (postgres + chroma on stand-in images), its data directory with a marker file,
/// running under plain `docker compose`, plus a container and a network that are NOT
/// stackgen's. Drop removes everything the test made, selected by the project label and by the
/// names it chose.
struct World {
    s: Sandbox,
    tenant: String,
    foreign_containers: Vec<String>,
    foreign_networks: Vec<String>,
    image: Option<String>,
}

impl World {
    fn new(tag: &str, postgres_image: &str) -> World {
        let s = Sandbox::new();
        let tenant = unique_tenant("td", tag);
        let base = s.path("base").display().to_string();
        s.run(&[
            "init",
            "--non-interactive",
            "--tenant",
            &tenant,
            "--vector-db",
            "chroma",
            "--services",
            "postgres",
            "--base-dir",
            &base,
        ])
        .ok();
        let mut env = s.read(".env");
        env.push_str(&format!(
            "POSTGRES_IMAGE={postgres_image}\nCHROMA_IMAGE={}\n",
            image_for("chroma")
        ));
        s.write(".env", &env);
        s.run(&["render"]).ok();
        s.write(
            &format!("base/tenants/{tenant}/data/postgres/marker"),
            "pg data\n",
        );
        s.write(
            &format!("base/tenants/{tenant}/data/chroma/marker"),
            "vectors\n",
        );
        // A sibling tenant's tree that no purge of `tenant` may touch.
        s.write("base/tenants/other/data/postgres/keep", "not yours\n");
        // Data directories owned by the UIDs the services run as: the real postgres cannot
        // initialise a root-owned one (the README's order: render, prepare, compose up).
        s.run(&["prepare", &tenant]).ok();
        let w = World {
            s,
            tenant,
            foreign_containers: Vec::new(),
            foreign_networks: Vec::new(),
            image: None,
        };
        w.compose_up();
        w
    }

    /// `--wait` matters: the real postgres takes a few seconds to initialise before it can be
    /// dumped.
    fn compose_up(&self) {
        plain_compose_up(&self.s, &self.tenant);
    }

    /// A container with only the tenant's compose project label and one with only its stackgen
    /// label, and networks likewise: neither has both, so teardown must leave all four.
    fn add_foreign(&mut self) {
        let t = self.tenant.clone();
        let project = format!("com.docker.compose.project={t}");
        let stackgen = format!("com.stackgen.tenant={t}");
        for (suffix, label) in [("fp", &project), ("fs", &stackgen)] {
            let name = format!("{t}-{suffix}");
            host(
                "docker",
                &[
                    "run",
                    "-d",
                    "--name",
                    &name,
                    "--label",
                    label,
                    &image_for("redis"),
                ],
            )
            .ok();
            self.foreign_containers.push(name);
            let net = format!("{t}-{suffix}-net");
            host("docker", &["network", "create", "--label", label, &net]).ok();
            self.foreign_networks.push(net);
        }
    }

    /// IDs of containers with both labels (what teardown may remove).
    fn stack_containers(&self) -> Vec<String> {
        let t = &self.tenant;
        host(
            "docker",
            &[
                "ps",
                "-aq",
                "--filter",
                &format!("label=com.stackgen.tenant={t}"),
                "--filter",
                &format!("label=com.docker.compose.project={t}"),
            ],
        )
        .ok()
        .stdout
        .split_whitespace()
        .map(str::to_string)
        .collect()
    }

    fn stack_networks(&self) -> Vec<String> {
        let t = &self.tenant;
        host(
            "docker",
            &[
                "network",
                "ls",
                "-q",
                "--filter",
                &format!("label=com.stackgen.tenant={t}"),
                "--filter",
                &format!("label=com.docker.compose.project={t}"),
            ],
        )
        .ok()
        .stdout
        .split_whitespace()
        .map(str::to_string)
        .collect()
    }

    fn assert_foreign_survived(&self) {
        for c in &self.foreign_containers {
            let state = host("docker", &["inspect", "-f", "{{.State.Running}}", c]);
            assert_eq!(
                state.stdout.trim(),
                "true",
                "{c} was touched: {}",
                state.stderr
            );
        }
        for n in &self.foreign_networks {
            host("docker", &["network", "inspect", n]).ok();
        }
    }

    fn data(&self) -> std::path::PathBuf {
        self.s.path(&format!("base/tenants/{}/data", self.tenant))
    }
}

impl Drop for World {
    fn drop(&mut self) {
        let ids = host(
            "docker",
            &[
                "ps",
                "-aq",
                "--filter",
                &format!("label=com.docker.compose.project={}", self.tenant),
            ],
        );
        for id in ids.stdout.split_whitespace() {
            let _ = host("docker", &["rm", "-f", id]);
        }
        for c in &self.foreign_containers {
            let _ = host("docker", &["rm", "-f", c]);
        }
        let nets = host(
            "docker",
            &[
                "network",
                "ls",
                "-q",
                "--filter",
                &format!("label=com.docker.compose.project={}", self.tenant),
            ],
        );
        for n in nets.stdout.split_whitespace() {
            let _ = host("docker", &["network", "rm", n]);
        }
        for n in &self.foreign_networks {
            let _ = host("docker", &["network", "rm", n]);
        }
        if let Some(image) = &self.image {
            let _ = host("docker", &["rmi", "-f", image]);
        }
    }
}

#[test]
fn teardown_removes_only_what_carries_both_labels_and_keeps_the_data() {
    let test = "teardown_removes_only_what_carries_both_labels_and_keeps_the_data";
    if !engine_ready(&["postgres", "chroma", "redis"], test) {
        return;
    }
    let mut w = World::new("keep", &image_for("postgres"));
    w.add_foreign();
    let t = w.tenant.clone();
    assert_eq!(w.stack_containers().len(), 2);
    assert_eq!(w.stack_networks().len(), 1);

    // Without a terminal and without --yes: refused, nothing touched.
    let run = w.s.run(&["teardown", &t]).code(2);
    assert!(run.stderr.contains("--yes"), "{}", run.stderr);
    assert_eq!(w.stack_containers().len(), 2);

    // A dry run names what would go and runs nothing.
    let run = w.s.run(&["teardown", &t, "--dry-run"]).ok();
    assert!(
        run.stdout.contains(&format!("{t}-postgres-1")),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("docker stop --time 30"),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains(&format!("{t}-fp")), "{}", run.stdout);
    assert_eq!(w.stack_containers().len(), 2);

    let run = w.s.run(&["teardown", &t, "--yes"]).ok();
    assert!(
        run.stdout
            .contains(&format!("{t}: 2 container(s) and 1 network(s) removed")),
        "{}",
        run.stdout
    );
    assert!(w.stack_containers().is_empty(), "stack containers remain");
    assert!(w.stack_networks().is_empty(), "stack networks remain");
    w.assert_foreign_survived();
    assert_eq!(
        std::fs::read_to_string(w.data().join("postgres/marker")).unwrap(),
        "pg data\n",
        "the data must survive teardown without --purge-data"
    );
    // Nothing left: a second teardown says so and succeeds.
    let run = w.s.run(&["teardown", &t, "--yes"]).ok();
    assert!(
        run.stdout.contains("nothing to tear down"),
        "{}",
        run.stdout
    );

    // --purge-data on a terminal: sizes shown, the tenant name must be typed.
    if !have_tmux(test) {
        return;
    }
    let tty = Tty::start(w.s.dir.path(), &["teardown", &t, "--purge-data"]);
    let screen = tty.wait_for("Type the tenant name");
    assert!(screen.contains("DELETED with --purge-data"), "{screen}");
    // Each directory with its size (the real postgres's cluster: several MiB).
    let pg_line = screen
        .lines()
        .find(|l| l.contains(&format!("tenants/{t}/data/postgres")))
        .unwrap_or_else(|| panic!("{screen}"));
    assert!(pg_line.contains(" MiB  "), "sizes: {screen}");
    tty.type_text("other");
    tty.keys(&["Enter"]);
    tty.wait_for("aborted");
    assert_eq!(tty.exit_status(), 1);
    assert!(
        w.data().join("postgres/marker").exists(),
        "deleted after a wrong name"
    );
    drop(tty);

    let tty = Tty::start(w.s.dir.path(), &["teardown", &t, "--purge-data"]);
    tty.wait_for("Type the tenant name");
    tty.type_text(&t);
    tty.keys(&["Enter"]);
    tty.wait_for("deleted");
    assert_eq!(tty.exit_status(), 0, "{}", tty.screen());
    assert!(!w.data().exists(), "the data directory is still there");
    assert!(w.s.path("base/tenants/other/data/postgres/keep").exists());
    w.assert_foreign_survived();
}

#[test]
fn purge_with_backup_dumps_archives_and_deletes_only_the_tenants_tree() {
    let test = "purge_with_backup_dumps_archives_and_deletes_only_the_tenants_tree";
    if !engine_ready(&["postgres", "chroma", "redis"], test) {
        return;
    }
    // The real PostgreSQL (tests/images/real): the dump is pg_dumpall's own.
    let mut w = World::new("purge", &image_for("postgres"));
    w.add_foreign();
    let t = w.tenant.clone();
    let profiles = w.s.path(&format!("stacks/{t}/apparmor"));
    let other_stack = std::fs::read(w.s.path(&format!("stacks/{t}-stack.yml"))).unwrap();

    // A backup directory that the purge would delete is refused up front.
    let inside = w.data().join("backup").display().to_string();
    let run =
        w.s.run(&["teardown", &t, "--purge-data", "--yes", "--backup", &inside])
            .code(2);
    assert!(
        run.stderr.contains("--purge-data deletes"),
        "{}",
        run.stderr
    );
    assert_eq!(w.stack_containers().len(), 2);

    let backups = w.s.path("backups");
    let run =
        w.s.run(&[
            "teardown",
            &t,
            "--purge-data",
            "--yes",
            "--backup",
            backups.to_str().unwrap(),
        ])
        .ok();
    assert!(
        run.stdout.contains("DELETED with --purge-data"),
        "{}",
        run.stdout
    );

    // One archive, as `stackgen backup` writes it: the dump came from the running postgres,
    // through compose exec, before the stop; chroma's folder was copied.
    let files: Vec<String> = std::fs::read_dir(&backups)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(files[0].starts_with(&format!("{t}-")) && files[0].ends_with("Z.tar.gz"));
    let archive = backups.join(&files[0]);
    let dump = host("tar", &["-xzOf", archive.to_str().unwrap(), "postgres.sql"]).ok();
    assert!(
        dump.stdout.contains("PostgreSQL database cluster dump")
            && dump.stdout.contains("CREATE ROLE stackgen"),
        "{}",
        dump.stdout
    );
    let listing = host("tar", &["-tzf", archive.to_str().unwrap()]).ok();
    assert!(
        listing.stdout.contains("data/chroma/marker")
            && listing.stdout.contains("stackgen-backup.json"),
        "{}",
        listing.stdout
    );

    // Deleted: exactly the tenant's data. Its generated files (stack, profiles) are not data:
    // they stay, so `render --check` still passes on the committed tree.
    assert!(!w.data().exists());
    assert!(
        std::fs::read_dir(&profiles).unwrap().count() > 0,
        "the rendered profiles were deleted"
    );
    w.s.run(&["render", "--check"]).ok();
    assert!(w.s.path("base/tenants/other/data/postgres/keep").exists());
    assert_eq!(
        std::fs::read(w.s.path(&format!("stacks/{t}-stack.yml"))).unwrap(),
        other_stack,
        "the stack file is not the purge's to delete"
    );
    assert!(w.stack_containers().is_empty() && w.stack_networks().is_empty());
    w.assert_foreign_survived();
}

#[test]
fn purge_refuses_a_base_dir_of_root_or_empty() {
    // The manifest validator refuses these before teardown runs (exit 2, nothing done); the
    // teardown guard's own refusal is unit-tested in src/ops/teardown/guard.rs.
    for bad in ["/", ""] {
        let s = Sandbox::new();
        s.run(&["init", "--non-interactive", "--tenant", "acme"])
            .ok();
        s.set_env_line("BASE_DIR", bad);
        let before = s.snapshot_tree();
        let run = s
            .run(&["teardown", "acme", "--purge-data", "--yes"])
            .code(2);
        assert!(run.stderr.contains("BASE_DIR"), "{bad:?}: {}", run.stderr);
        assert_eq!(s.snapshot_tree(), before);
    }
}
