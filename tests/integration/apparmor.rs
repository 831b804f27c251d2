//! AppArmor profiles: rendered per tenant, parsed by the real `apparmor_parser`, tightened from
//! docker-default; and `stackgen apparmor load`.

use std::path::PathBuf;
use std::process::Command;

use crate::common::*;

/// The example (4 tenants), every service per vector DB, and kernel-mode tailscale.
fn rendered(kernel: bool, example: bool) -> Sandbox {
    if example {
        let s = Sandbox::with_example();
        s.run(&["render"]).ok();
        return s;
    }
    let s = Sandbox::with_every_service(if kernel {
        "ALPHA__TAILSCALE_MODE=kernel\n"
    } else {
        ""
    });
    s.run(&["render"]).ok();
    s
}

fn profile_files(s: &Sandbox) -> Vec<PathBuf> {
    let mut files = Vec::new();
    collect(&s.path("stacks"), &mut files);
    files.retain(|p| p.parent().is_some_and(|d| d.ends_with("apparmor")));
    files.sort();
    files
}

/// The profile's rules: no comments, no blank lines.
fn rules(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| l.split('#').next().unwrap().trim().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

#[test]
fn every_rendered_profile_passes_apparmor_parser() {
    let test = "every_rendered_profile_passes_apparmor_parser";
    let sandboxes = [
        rendered(false, true),
        rendered(false, false),
        rendered(true, false),
    ];
    if !have("apparmor_parser", &["--version"], test) {
        return;
    }
    let mut checked = 0;
    for s in &sandboxes {
        for f in profile_files(s) {
            // -Q: parse and compile without loading; -K: no cache. No root or kernel needed.
            let out = Command::new("apparmor_parser")
                .args(["-Q", "-K"])
                .arg(&f)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{} fails apparmor_parser -Q -K:\n{}",
                f.display(),
                String::from_utf8_lossy(&out.stderr)
            );
            checked += 1;
        }
    }
    // 4 example tenants (+2 for team-a's openclaw and tailscale), 4 × 3 generated, 4 × 3 kernel.
    assert_eq!(checked, 6 + 12 + 12);
}

#[test]
fn only_the_profiles_a_tenant_uses_are_rendered_and_every_one_used_exists() {
    let s = rendered(false, true);
    let names = |t: &str| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(s.path(&format!("stacks/{t}/apparmor")))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    };
    assert_eq!(
        names("team-a"),
        [
            "ai-platform-team-a",
            "ai-platform-team-a-openclaw",
            "ai-platform-team-a-tailscale"
        ]
    );
    assert_eq!(names("team-b"), ["ai-platform-team-b"]);
    for t in ["team-a", "team-b", "team-c", "team-d"] {
        let doc: serde_yaml::Value =
            serde_yaml::from_str(&s.read(&format!("stacks/{t}-stack.yml"))).unwrap();
        for (name, svc) in doc["services"].as_mapping().unwrap() {
            let profile = svc["security_opt"]
                .as_sequence()
                .unwrap()
                .iter()
                .find_map(|o| o.as_str()?.strip_prefix("apparmor="))
                .unwrap_or_else(|| panic!("{t}/{name:?} has no profile"));
            let text = s.read(&format!("stacks/{t}/apparmor/{profile}"));
            assert!(
                text.contains(&format!("\nprofile {profile} flags=")),
                "{profile}"
            );
        }
    }
}

#[test]
fn profiles_tighten_docker_default_and_name_no_host_paths() {
    let s = rendered(false, true);
    let k = rendered(true, false);
    let mut files = profile_files(&s);
    files.extend(profile_files(&k));
    for f in files {
        let name = f.file_name().unwrap().to_str().unwrap().to_string();
        let text = std::fs::read_to_string(&f).unwrap();
        let r = rules(&text);
        let has = |rule: &str| r.iter().any(|l| l == rule);
        assert!(
            text.contains("profiles/apparmor/template.go"),
            "{name}: cites docker-default"
        );
        assert!(
            has(&format!(
                "profile {name} flags=(attach_disconnected,mediate_deleted) {{"
            )),
            "{name}"
        );
        for rule in [
            "deny mount,",
            "deny umount,",
            "deny pivot_root,",
            "deny capability sys_module,",
            "deny capability net_raw,",
            "deny network inet raw,",
            "deny network inet6 raw,",
            "deny network packet,",
            "deny @{PROC}/* w,",
            "deny @{PROC}/sys/** wklx,",
            "deny /sys/** wklx,",
            "@{PROC}=/proc/",
        ] {
            assert!(has(rule), "{name} lacks `{rule}`");
        }
        for l in &r {
            assert!(
                !l.contains('!'),
                "{name}: `!` is no negation in AppArmor: {l}"
            );
            assert!(
                !l.starts_with("include") && !l.contains("<abstractions/"),
                "{name}: {l}"
            );
            assert!(
                !l.contains("/srv/") && !l.contains("tenants/"),
                "{name}: host path in {l}"
            );
            assert!(
                !l.contains("capability sys_module,") || l.starts_with("deny"),
                "{name}: {l}"
            );
            assert!(
                !(l.starts_with("network") && l.contains("raw") && !l.contains("netlink")),
                "{name}: {l}"
            );
            assert!(
                l != "network," && l != "capability," && l != "mount,",
                "{name}: blanket {l}"
            );
            if l.starts_with("ptrace") {
                assert!(
                    l.ends_with(&format!("peer={name},")),
                    "{name}: ptrace beyond the profile: {l}"
                );
            }
            if l.starts_with("signal") {
                assert!(
                    l.ends_with(&format!("peer={name},"))
                        || l == "signal (receive) peer=unconfined,",
                    "{name}: {l}"
                );
            }
        }
        let confined = name.ends_with("-openclaw") || name.ends_with("-tailscale");
        assert_eq!(
            has("file,"),
            !confined,
            "{name}: confined profiles list their writes"
        );
        if confined {
            assert!(
                has(&format!("ptrace (read,readby) peer={name},")),
                "{name}: read only"
            );
            assert!(has("deny /tmp/** mx,"), "{name}");
        }
    }
}

#[test]
fn capabilities_and_writes_follow_the_stack_file() {
    let s = rendered(false, true);
    let k = rendered(true, false);
    let caps = |text: &str| -> Vec<String> {
        let mut v: Vec<String> = rules(text)
            .into_iter()
            .filter(|l| l.starts_with("capability "))
            .collect();
        v.sort();
        v
    };
    // Ordinary services: the union of what the stack adds; the catalog's reasons apply.
    let a = s.read("stacks/team-a/apparmor/ai-platform-team-a");
    assert_eq!(
        caps(&a),
        [
            "capability chown,",
            "capability dac_override,",
            "capability fowner,",
            "capability kill,",
            "capability net_bind_service,",
            "capability setgid,",
            "capability setuid,",
            "capability sys_chroot,",
        ]
    );
    // openclaw: no capability at all; writes only to its tmpfs and data mounts.
    let oc = s.read("stacks/team-a/apparmor/ai-platform-team-a-openclaw");
    assert!(caps(&oc).is_empty());
    let writes: Vec<String> = rules(&oc)
        .into_iter()
        .filter(|l| l.contains(" rw") && !l.starts_with("deny") && !l.starts_with("/dev/"))
        .collect();
    assert_eq!(
        writes,
        [
            "/tmp/{,**} rwkl,",
            "/home/node/.openclaw/{,**} rwkl,",
            "/home/node/.config/openclaw/{,**} rwkl,",
        ]
    );
    // tailscale: userspace adds nothing; kernel mode NET_ADMIN and the tun device only.
    let ts = s.read("stacks/team-a/apparmor/ai-platform-team-a-tailscale");
    assert!(caps(&ts).is_empty());
    assert!(!ts.contains("/dev/net/tun"));
    assert!(rules(&ts).contains(&"/var/lib/tailscale/{,**} rwkl,".to_string()));
    let kts = k.read("stacks/alpha/apparmor/ai-platform-alpha-tailscale");
    assert_eq!(caps(&kts), ["capability net_admin,"]);
    assert!(rules(&kts).contains(&"/dev/net/tun rw,".to_string()));
    // Userspace tenants of the same manifest keep the unprivileged sidecar profile.
    assert!(caps(&k.read("stacks/beta/apparmor/ai-platform-beta-tailscale")).is_empty());
}

#[test]
fn load_dry_run_prints_the_exact_argument_vectors() {
    let s = rendered(false, true);
    let before = s.snapshot_tree();
    let run = s.run(&["apparmor", "load", "team-a", "--dry-run"]).ok();
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(
        &lines[..3],
        [
            "apparmor_parser -r -W ./stacks/team-a/apparmor/ai-platform-team-a",
            "apparmor_parser -r -W ./stacks/team-a/apparmor/ai-platform-team-a-openclaw",
            "apparmor_parser -r -W ./stacks/team-a/apparmor/ai-platform-team-a-tailscale",
        ]
    );
    assert!(
        lines[3].starts_with("dry run: nothing loaded; AppArmor is"),
        "{}",
        run.stdout
    );
    assert_eq!(before, s.snapshot_tree(), "a dry run writes nothing");
    // The stacks directory given is the one used.
    std::fs::rename(s.path("stacks"), s.path("out")).unwrap();
    let run = s
        .run(&[
            "--stacks-dir",
            "out",
            "apparmor",
            "load",
            "team-b",
            "--dry-run",
        ])
        .ok();
    assert!(
        run.stdout
            .starts_with("apparmor_parser -r -W out/team-b/apparmor/ai-platform-team-b\ndry run"),
        "{}",
        run.stdout
    );
}

#[test]
fn load_says_clearly_when_the_host_has_no_apparmor() {
    let s = rendered(false, true);
    let host = stackgen::ops::apparmor::host_state();
    let dry = s.run(&["apparmor", "load", "team-c", "--dry-run"]).ok();
    if host.is_enabled() {
        assert!(dry.stdout.contains("AppArmor is enabled on this host"));
        eprintln!(
            "SKIPPED load_says_clearly_when_the_host_has_no_apparmor: this host has AppArmor"
        );
        return;
    }
    assert!(
        dry.stdout.contains("AppArmor is not enabled on this host"),
        "{}",
        dry.stdout
    );
    let run = s.run(&["apparmor", "load", "team-c"]).code(1);
    for want in [
        "cannot load the AppArmor profiles of tenant `team-c`",
        "AppArmor is not enabled on this host",
        "/sys/module/apparmor/parameters/enabled",
        "Docker silently ignores `apparmor=`",
        "NOT confined",
        "Nothing was loaded",
    ] {
        assert!(
            run.stderr.contains(want),
            "missing {want:?} in:\n{}",
            run.stderr
        );
    }
    assert!(
        run.stdout.is_empty(),
        "no command is printed as if it ran: {}",
        run.stdout
    );
}

#[test]
fn load_refuses_profiles_that_differ_from_the_manifest() {
    let s = rendered(false, true);
    let path = "stacks/team-d/apparmor/ai-platform-team-d";
    let edited = s.read(path).replace("deny mount,", "mount,");
    s.write(path, &edited);
    let run = s.run(&["apparmor", "load", "team-d", "--dry-run"]).code(1);
    assert!(
        run.stderr.contains("differ from what the manifest renders"),
        "{}",
        run.stderr
    );
    std::fs::remove_file(s.path(path)).unwrap();
    s.run(&["apparmor", "load", "team-d", "--dry-run"]).code(1);
    // render --check sees the edit as drift too: the profiles are generated files.
    s.run(&["render", "--check", "team-d"]).code(1);
    s.run(&["render", "team-d"]).ok();
    s.run(&["apparmor", "load", "team-d", "--dry-run"]).ok();
    s.run(&["apparmor", "load", "nobody", "--dry-run"]).code(2);
}

#[test]
fn apparmor_help_is_reviewed() {
    let s = Sandbox::new();
    insta_settings().bind(|| {
        for (name, args) in [
            ("help_apparmor", vec!["apparmor", "--help"]),
            ("help_apparmor_load", vec!["apparmor", "load", "--help"]),
        ] {
            insta::assert_snapshot!(name, s.run(&args).ok().stdout);
        }
    });
}
