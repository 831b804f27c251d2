//! Backup and restore of a tenant on another engine (`<T>__DOCKER_CONTEXT`, `crate::ops::engines`):
//! its data folder lives on that engine's host, so it is read and written through that engine
//! only, with `docker cp`, which needs no program inside any image. This machine's disk holds
//! only the archive (and, during a restore, the SQL dump and redis snapshot taken out of it).
//!
//! A [`Helper`] is a throwaway container on that engine, created (`docker create`: nothing
//! runs in it, no network, no capability) with `BASE_DIR/tenants/<tenant>` bind-mounted, and
//! removed when dropped. `docker cp` works on a container that never started, and resolves every
//! path inside the container's own root, so a link in the tenant's tree can never reach the rest
//! of that host:
//!
//! - reading ([`Helper::copy_out`]): `docker cp HELPER:/stackgen-tenant/data/<folder> -` is a tar
//!   stream that `archive::Writer::add_stream` re-packs under the same names and checksums a
//!   local backup writes;
//! - listing ([`list_data`]): the folder names, their owners and the size, for the plan and for
//!   restore's "is it empty" check. A short script in one of the tenant's images (`stat`, `du`:
//!   nothing is read, so a running postgres's files are neither sent nor disturbed); for an
//!   image without those, the `docker cp` stream with the contents discarded ([`Helper::list`]);
//! - writing ([`Helper::copy_in`]): `docker cp -a - HELPER:/stackgen-tenant` extracts a tar that
//!   restore builds with every owner already mapped, keeping numeric owners (`-a`).
//!
//! [`Helper::create_at`] makes one for any folder of that host: `crate::ops::engines::push_dir`
//! copies a remote tenant's config files with it.

use std::ffi::OsString;
use std::io::{self, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use anyhow::{bail, Context, Result};

use crate::manifest::{Manifest, Tenant};
use crate::ops::compose::{exec, Cmd, Tools};
use crate::platform::model;

/// Where the helper container sees the tenant's folder (the prepare container's path too).
pub const MOUNT: &str = "/stackgen-tenant";

/// Marks stackgen's throwaway containers (never the tenant's label: they are not its services,
/// and `status`, `teardown` and the guards must not count them).
const LABEL: &str = "com.stackgen.helper=backup";

/// The top level of a folder as the engine's copy shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listing {
    /// The folder itself is a symbolic link (refused by backup and restore).
    pub is_link: bool,
    /// Its entries: name and numeric owner, in name order.
    pub top: Vec<(String, (u32, u32))>,
    /// The bytes of every file below it.
    pub bytes: u64,
}

/// Reads a `docker cp ... -` stream of one folder without keeping the contents.
pub fn listing(stream: impl Read) -> Result<Listing> {
    let mut out = Listing::default();
    let mut tar = tar::Archive::new(stream);
    for (i, entry) in tar.entries()?.enumerate() {
        let entry = entry.context("reading the engine's copy")?;
        let h = entry.header();
        let path = entry.path()?.into_owned();
        let parts: Vec<_> = path.components().collect();
        if i == 0 {
            out.is_link = h.entry_type() == tar::EntryType::Symlink;
        } else if parts.len() == 2 {
            let name = parts[1].as_os_str().to_string_lossy().into_owned();
            out.top.push((name, (h.uid()? as u32, h.gid()? as u32)));
        }
        if h.entry_type().is_file() {
            out.bytes += h.size()?;
        }
    }
    out.top.sort();
    Ok(out)
}

/// Lists the tenant's data folder on that host: nothing in it is read, so a running postgres's
/// files are neither sent nor disturbed. Run in one of the tenant's images (as the prepare
/// container is): no network, read-only, root with only `DAC_READ_SEARCH` (to see folders the
/// services own). Needs `sh`, `stat` and `du` there.
const LIST_SCRIPT: &str = r#"cd /stackgen-tenant || exit 90
if [ -L data ]; then echo link; exit 0; fi
if [ ! -d data ]; then echo none; exit 0; fi
for f in data/* data/.[!.]* data/..?*; do
  if [ -e "$f" ] || [ -L "$f" ]; then stat -c 'entry %u %g %n' -- "$f" || exit 91; fi
done
set -- $(du -sk data)
echo "kib $1"
"#;

/// `docker [--context X] run` of [`LIST_SCRIPT`] with the tenant's folder read-only.
pub fn list_cmd(tools: &Tools, root: &str, image: &str) -> Cmd {
    let mut v = crate::ops::engines::one_shot_argv(tools, &["DAC_READ_SEARCH"]);
    v.extend(["--label".into(), LABEL.into(), "--mount".into()]);
    v.push(format!("type=bind,src={root},dst={MOUNT},readonly").into());
    v.extend([image.into(), "-c".into(), LIST_SCRIPT.into()]);
    Cmd::new(v, "list the data folder on the engine's host")
}

/// Reads [`LIST_SCRIPT`]'s output: `Some(None)` no folder, `Some(Some(_))` its listing, `None`
/// when the output is not the script's (then the listing is taken from `docker cp`).
pub fn parse_list(out: &str) -> Option<Option<Listing>> {
    let mut lines = out.lines();
    match lines.next()? {
        "none" => return Some(None),
        "link" => {
            return Some(Some(Listing {
                is_link: true,
                ..Listing::default()
            }))
        }
        _ => {}
    }
    let mut listing = Listing::default();
    let mut total = None;
    for line in out.lines() {
        let mut w = line.splitn(4, ' ');
        match (w.next()?, w.next()?) {
            ("entry", uid) => {
                let gid = w.next()?;
                let name = w.next()?.strip_prefix("data/")?;
                listing
                    .top
                    .push((name.to_string(), (uid.parse().ok()?, gid.parse().ok()?)));
            }
            ("kib", kib) => total = Some(kib.parse::<u64>().ok()?.saturating_mul(1024)),
            _ => return None,
        }
    }
    listing.bytes = total?;
    listing.top.sort();
    Some(Some(listing))
}

/// The tenant's data folder on that host: listed by [`LIST_SCRIPT`] when the helper image can
/// run it, else from `docker cp`'s stream through `helper` (which reads every file: an image
/// without `stat` or `du`, such as a tenant of stand-ins only).
pub fn list_data(
    tools: &Tools,
    manifest: &Manifest,
    tenant: &Tenant,
    helper: &Helper,
) -> Result<Option<Listing>> {
    let root = model::tenant_root(&manifest.platform, tenant);
    if let Some(image) = crate::ops::engines::helper_image(manifest, tenant) {
        let out = exec::capture(&list_cmd(tools, &root, &image))?;
        if out.status.success() {
            if let Some(listing) = parse_list(&String::from_utf8_lossy(&out.stdout)) {
                return Ok(listing);
            }
        }
    }
    helper.list("data")
}

/// The tenant's data folder as its engine lists it, through a read-only helper removed again
/// (teardown's plan): `None` when there is none on that host.
pub fn data_on_host(
    tools: &Tools,
    manifest: &Manifest,
    tenant: &Tenant,
) -> Result<Option<Listing>> {
    match Helper::create(tools, manifest, tenant, false)? {
        Some(helper) => list_data(tools, manifest, tenant, &helper),
        None => Ok(None),
    }
}

/// A throwaway container on the tenant's engine with the tenant's folder bind-mounted.
pub struct Helper {
    tools: Tools,
    id: String,
}

impl Helper {
    /// Creates it. `writable: false` mounts the folder read-only and requires it to exist on
    /// that host (`Ok(None)` when it does not: nothing to read); `writable: true` lets the
    /// engine create it as the prepare container does.
    pub fn create(
        tools: &Tools,
        manifest: &Manifest,
        tenant: &Tenant,
        writable: bool,
    ) -> Result<Option<Helper>> {
        let root = model::tenant_root(&manifest.platform, tenant);
        let image = crate::ops::engines::helper_image(manifest, tenant)
            .ok_or_else(|| anyhow::anyhow!("tenant `{}` runs no service", tenant.name))?;
        Helper::create_at(tools, &root, &image, writable)
    }

    /// [`Helper::create`] for any folder `root` of the engine's host (absolute there), in any
    /// image on that engine (nothing runs in it): `crate::ops::engines::push_dir`'s copies.
    pub fn create_at(
        tools: &Tools,
        root: &str,
        image: &str,
        writable: bool,
    ) -> Result<Option<Helper>> {
        let cmd = create_cmd(tools, root, image, writable);
        let out = exec::capture(&cmd)?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() {
            if !writable && stderr.contains("bind source path does not exist") {
                return Ok(None);
            }
            bail!(
                "could not create a helper container on {}: {}",
                crate::ops::engines::describe(tools.context.as_deref()),
                exec::first_line(&stderr).unwrap_or("docker create failed")
            );
        }
        let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
        Ok(Some(Helper {
            tools: tools.clone(),
            id,
        }))
    }

    fn cp_argv(&self, args: &[&str]) -> Vec<OsString> {
        let mut v = self.tools.docker_argv();
        v.push("cp".into());
        v.extend(args.iter().map(OsString::from));
        v
    }

    /// Streams `rel` (a path under the tenant's folder) out as a tar to `each`. `Ok(None)`
    /// when it does not exist there.
    pub fn copy_out<T>(
        &self,
        rel: &str,
        each: &mut dyn FnMut(&mut dyn Read) -> Result<T>,
    ) -> Result<Option<T>> {
        let from = format!("{}:{MOUNT}/{rel}", self.id);
        let argv = self.cp_argv(&[&from, "-"]);
        let mut child = spawn(&argv, false)?;
        let mut stdout = child.stdout.take().expect("piped");
        let result = each(&mut stdout);
        if result.is_err() {
            // Our own refusal (a hard link, a name outside the folder): stop docker rather than
            // read the rest of the folder for nothing, and report ours, not its broken pipe.
            let _ = child.kill();
            let _ = child.wait();
            return result.map(Some);
        }
        // Whatever `each` left unread (the tar's padding), so docker is never stuck on a pipe.
        let _ = io::copy(&mut stdout, &mut io::sink());
        drop(stdout);
        let (ok, stderr) = finish(child)?;
        if !ok {
            if stderr.contains("Could not find the file") {
                return Ok(None);
            }
            bail!(
                "docker cp of {rel} from {} failed: {}",
                crate::ops::engines::describe(self.tools.context.as_deref()),
                exec::first_line(&stderr).unwrap_or("no message")
            );
        }
        result.map(Some)
    }

    /// The listing of `rel`, `None` when it does not exist.
    pub fn list(&self, rel: &str) -> Result<Option<Listing>> {
        self.copy_out(rel, &mut |r| listing(r))
    }

    /// Extracts the tar that `write` produces into the tenant's folder on that host, keeping
    /// the numeric owners in it.
    pub fn copy_in(&self, write: &mut dyn FnMut(&mut dyn Write) -> Result<()>) -> Result<()> {
        let to = format!("{}:{MOUNT}", self.id);
        let argv = self.cp_argv(&["-a", "-", &to]);
        let mut child = spawn(&argv, true)?;
        let mut stdin = child.stdin.take().expect("piped");
        let written = write(&mut stdin);
        drop(stdin);
        if written.is_err() && !matches!(child.try_wait(), Ok(Some(_))) {
            // Our own failure half-way: stop docker before it takes a cut tar for a whole one.
            let _ = child.kill();
            let _ = child.wait();
            return written;
        }
        let (ok, stderr) = finish(child)?;
        if !ok {
            bail!(
                "docker cp into {} failed: {}",
                crate::ops::engines::describe(self.tools.context.as_deref()),
                exec::first_line(&stderr).unwrap_or("no message")
            );
        }
        written
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        let mut v = self.tools.docker_argv();
        v.extend(["rm".into(), "-f".into(), OsString::from(&self.id)]);
        let _ = exec::capture(&Cmd::new(v, "remove the helper container"));
    }
}

/// `docker [--context X] create` of the helper: nothing runs in it (its entrypoint is never
/// started), no network, no capability, the tenant's folder at [`MOUNT`].
pub fn create_cmd(tools: &Tools, root: &str, image: &str, writable: bool) -> Cmd {
    let mut v = tools.docker_argv();
    let mount = if writable {
        // `-v` lets the engine create the folder on its host, as the prepare container does.
        vec!["-v".to_string(), format!("{root}:{MOUNT}")]
    } else {
        // `--mount` refuses a missing folder instead of creating it: a backup creates nothing.
        vec![
            "--mount".to_string(),
            format!("type=bind,src={root},dst={MOUNT},readonly"),
        ]
    };
    for w in [
        "create",
        "--network",
        "none",
        "--cap-drop",
        "ALL",
        "--security-opt",
        "no-new-privileges",
        "--label",
        LABEL,
        "--entrypoint",
        "/bin/true",
    ] {
        v.push(w.into());
    }
    v.extend(mount.into_iter().map(OsString::from));
    v.push(image.into());
    Cmd::new(v, "create a helper container for the copy")
}

/// Starts `argv` with stdout (or stdin) piped and stderr captured, without the manifest's keys
/// in its environment (as every child stackgen starts).
fn spawn(argv: &[OsString], stdin: bool) -> Result<Child> {
    let (program, args) = argv.split_first().expect("a command has a program");
    let mut cmd = Command::new(program);
    cmd.args(args).stderr(Stdio::piped());
    for key in exec::shadowing_keys(argv) {
        cmd.env_remove(key);
    }
    if stdin {
        cmd.stdin(Stdio::piped()).stdout(Stdio::null());
    } else {
        cmd.stdin(Stdio::null()).stdout(Stdio::piped());
    }
    cmd.spawn()
        .with_context(|| format!("could not start `{}`", Path::new(program).display()))
}

fn finish(child: Child) -> Result<(bool, String)> {
    let out = child.wait_with_output()?;
    Ok((
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A tar as `docker cp` writes one: (name, type, owner, body; a link's body is its target),
    /// every numeric field set as docker sets it.
    pub(crate) fn stream(entries: &[(&str, tar::EntryType, u32, &str)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, kind, uid, body) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(*kind);
            h.set_uid(u64::from(*uid));
            h.set_gid(u64::from(*uid));
            h.set_mode(0o640);
            h.set_mtime(7);
            if *kind == tar::EntryType::Symlink {
                h.set_size(0);
                b.append_link(&mut h, name, body).unwrap();
            } else {
                h.set_size(body.len() as u64);
                b.append_data(&mut h, name, body.as_bytes()).unwrap();
            }
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn a_listing_keeps_the_top_level_owners_and_the_size() {
        use tar::EntryType::{Directory, Regular, Symlink};
        let bytes = stream(&[
            ("data/", Directory, 0, ""),
            ("data/qdrant/", Directory, 2001, ""),
            ("data/qdrant/seg.bin", Regular, 2001, "12345"),
            ("data/extra", Regular, 7, "abc"),
        ]);
        let l = listing(&bytes[..]).unwrap();
        assert!(!l.is_link);
        assert_eq!(
            l.top,
            vec![("extra".into(), (7, 7)), ("qdrant".into(), (2001, 2001))]
        );
        assert_eq!(l.bytes, 8);
        let link = listing(&stream(&[("data", Symlink, 0, "elsewhere")])[..]).unwrap();
        assert!(link.is_link && link.top.is_empty());
    }

    #[test]
    fn the_listing_script_is_read_and_anything_else_falls_back() {
        let out = "entry 0 0 data/extra dir\nentry 2001 2001 data/qdrant\nkib 12\n";
        let l = parse_list(out).unwrap().unwrap();
        assert_eq!(
            l.top,
            vec![
                ("extra dir".into(), (0, 0)),
                ("qdrant".into(), (2001, 2001))
            ]
        );
        assert_eq!(l.bytes, 12 * 1024);
        assert_eq!(parse_list("none\n"), Some(None));
        assert!(parse_list("link\n").unwrap().unwrap().is_link);
        assert_eq!(parse_list("kib 0\n").unwrap().unwrap().top, vec![]);
        // Not the script's output (no shell, no `stat`): the caller falls back to `docker cp`.
        for bad in [
            "",
            "entry 1 1 data/x\n",
            "/bin/sh: stat: not found\n",
            "kib x\n",
        ] {
            assert_eq!(parse_list(bad), None, "{bad:?}");
        }
        let tools = Tools::fixed("docker").on(Some("host-2"));
        let line = list_cmd(&tools, "/srv/x/tenants/t", "img:1").shell_line();
        assert!(
            line.starts_with("docker --context host-2 run --rm --network none --user 0:0 --cap-drop ALL --cap-add DAC_READ_SEARCH"),
            "{line}"
        );
        assert!(
            line.contains(&format!(
                "--mount type=bind,src=/srv/x/tenants/t,dst={MOUNT},readonly img:1 -c "
            )),
            "{line}"
        );
    }

    #[test]
    fn the_helper_runs_nothing_and_mounts_only_the_tenant_folder() {
        let tools = Tools::fixed("docker").on(Some("host-2"));
        let ro = create_cmd(&tools, "/srv/x/tenants/t", "img:1", false).shell_line();
        assert!(
            ro.starts_with("docker --context host-2 create --network none --cap-drop ALL"),
            "{ro}"
        );
        assert!(
            ro.ends_with(&format!(
                "--entrypoint /bin/true --mount type=bind,src=/srv/x/tenants/t,dst={MOUNT},readonly img:1"
            )),
            "{ro}"
        );
        let rw = create_cmd(&tools, "/srv/x/tenants/t", "img:1", true).shell_line();
        assert!(
            rw.ends_with(&format!("-v /srv/x/tenants/t:{MOUNT} img:1")),
            "{rw}"
        );
    }
}
