//! The archive file: a gzip'd tar whose last member, `stackgen-backup.json`, lists every other
//! member with its size and SHA-256. Writing goes to a `.partial` file created with `O_EXCL` and
//! `O_NOFOLLOW` (mode 0600) that is renamed into place only when complete, so the final name
//! never holds half an archive and a link planted under either name is never followed.
//! Reading verifies every member against that list before anything is restored.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path, PathBuf};

use anyhow::{bail, Context, Result};
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use sha2::{Digest, Sha256};

use super::format::{FileSum, Meta, META_NAME};

/// Writes one archive. Dropping it without [`Writer::finish`] removes the partial file.
pub struct Writer {
    tar: Option<tar::Builder<GzEncoder<File>>>,
    partial: PathBuf,
    to: PathBuf,
    files: BTreeMap<String, FileSum>,
}

/// `<name>.partial` beside `to`.
pub fn partial_path(to: &Path) -> PathBuf {
    let mut name = to.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    to.with_file_name(name)
}

impl Writer {
    /// Starts `to` (through its `.partial` name). A leftover `.partial` from a crashed run is
    /// removed first, unless it is not a plain file (then the operator must look).
    pub fn create(to: &Path) -> Result<Writer> {
        if fs::symlink_metadata(to).is_ok() {
            bail!("{} already exists; nothing was written", to.display());
        }
        let partial = partial_path(to);
        if let Ok(meta) = fs::symlink_metadata(&partial) {
            if !meta.file_type().is_file() {
                bail!(
                    "{} exists and is not a file (a link?); remove it, nothing was written",
                    partial.display()
                );
            }
            fs::remove_file(&partial)
                .with_context(|| format!("removing the leftover {}", partial.display()))?;
        }
        let file = create_new(&partial, 0o600)?;
        let gz = GzEncoder::new(file, flate2::Compression::fast());
        let mut tar = tar::Builder::new(gz);
        tar.mode(tar::HeaderMode::Complete);
        tar.follow_symlinks(false);
        Ok(Writer {
            tar: Some(tar),
            partial,
            to: to.to_path_buf(),
            files: BTreeMap::new(),
        })
    }

    fn tar(&mut self) -> &mut tar::Builder<GzEncoder<File>> {
        self.tar.as_mut().expect("not finished")
    }

    /// Adds a regular file read from `source` (size and owner from `meta`), hashing it.
    /// A file that changes size while it is read is an error: the copy would not be consistent.
    pub fn add_file(&mut self, name: &str, meta: &fs::Metadata, source: File) -> Result<()> {
        let mut header = tar::Header::new_gnu();
        header.set_metadata_in_mode(meta, tar::HeaderMode::Complete);
        self.append_file(name, header, source)
    }

    /// The one way a file goes in, from the disk or from an engine's stream: `header` carries
    /// its size, owner, mode and time; the body is hashed for the list of contents.
    fn append_file(
        &mut self,
        name: &str,
        mut header: tar::Header,
        source: impl Read,
    ) -> Result<()> {
        let size = header.size()?;
        header.set_entry_type(tar::EntryType::Regular);
        let mut reader = Hashing::new(source.take(size));
        self.tar()
            .append_data(&mut header, name, &mut reader)
            .with_context(|| format!("writing {name} into the archive"))?;
        if reader.bytes != size {
            bail!("{name} changed while it was copied ({size} bytes expected, {} read); run the backup again", reader.bytes);
        }
        self.files.insert(name.to_string(), reader.sum());
        Ok(())
    }

    /// A directory (no body, not listed: only files and links are).
    fn append_dir(&mut self, name: &str, mut header: tar::Header) -> Result<()> {
        header.set_size(0);
        header.set_entry_type(tar::EntryType::Directory);
        self.tar()
            .append_data(&mut header, name, io::empty())
            .with_context(|| format!("writing {name}"))
    }

    /// A symbolic link, as a link (never followed), listed by the hash of its target.
    fn append_link(&mut self, name: &str, mut header: tar::Header, target: &Path) -> Result<()> {
        header.set_size(0);
        header.set_entry_type(tar::EntryType::Symlink);
        self.tar()
            .append_link(&mut header, name, target)
            .with_context(|| format!("writing the link {name}"))?;
        let sum = FileSum::of_link(&target.to_string_lossy());
        self.files.insert(name.to_string(), sum);
        Ok(())
    }

    /// Adds a file that stackgen produced (a dump), owned by root, mode 0600.
    pub fn add_produced(&mut self, name: &str, path: &Path) -> Result<()> {
        let file = open_nofollow(path)?;
        let meta = file.metadata()?;
        self.add_file(name, &meta, file)
    }

    /// Adds `path` (and, for a directory, everything below it) as `prefix/...`, in name order,
    /// links as links (never followed), keeping numeric owners and modes. Sockets and fifos are
    /// skipped: they are not data, and the services recreate them.
    pub fn add_tree(&mut self, prefix: &str, path: &Path) -> Result<()> {
        let meta =
            fs::symlink_metadata(path).with_context(|| format!("reading {}", path.display()))?;
        self.add_entry(prefix, path, &meta)
    }

    fn add_entry(&mut self, name: &str, path: &Path, meta: &fs::Metadata) -> Result<()> {
        let ft = meta.file_type();
        let mut header = tar::Header::new_gnu();
        header.set_metadata_in_mode(meta, tar::HeaderMode::Complete);
        if ft.is_dir() {
            self.append_dir(name, header)?;
            let mut children: Vec<_> = fs::read_dir(path)
                .with_context(|| format!("listing {}", path.display()))?
                .collect::<io::Result<_>>()?;
            children.sort_by_key(|e| e.file_name());
            for child in children {
                let child_name = format!("{name}/{}", child.file_name().to_string_lossy());
                let child_meta = fs::symlink_metadata(child.path())?;
                self.add_entry(&child_name, &child.path(), &child_meta)?;
            }
        } else if ft.is_file() {
            let file = open_nofollow(path)?;
            self.append_file(name, header, file)?;
        } else if ft.is_symlink() {
            let target = fs::read_link(path)?;
            self.append_link(name, header, &target)?;
        }
        Ok(())
    }

    /// Adds the members of a tar stream (what `docker cp CONTAINER:PATH -` writes: the copied
    /// folder or file under its own name, then everything below it) as `prefix/...`: the
    /// stream's first name component becomes `prefix`. Numeric owners, modes and times are
    /// kept, links stay links, every file is hashed, exactly as [`Writer::add_tree`] does from
    /// the disk. Sockets and fifos are skipped as there. A hard link (the stream names an
    /// earlier member instead of sending the bytes again) is refused: the archive holds files,
    /// and re-reading the first copy is not worth its complexity for data stackgen's services
    /// do not write (docs/operations.md, Backups). Returns how many members were added.
    pub fn add_stream(&mut self, prefix: &str, stream: impl Read) -> Result<usize> {
        let mut tar = tar::Archive::new(stream);
        let mut added = 0;
        for entry in tar.entries().context("reading the engine's copy")? {
            let mut entry = entry.context("reading the engine's copy")?;
            let raw = entry.path()?.into_owned();
            let Some(rel) = safe_name(&raw) else {
                bail!(
                    "the engine's copy holds `{}`, outside the folder; nothing was written",
                    raw.display()
                );
            };
            let name = match rel.split_once('/') {
                Some((_, rest)) => format!("{prefix}/{rest}"),
                None => prefix.to_string(),
            };
            let src = entry.header();
            let mut header = tar::Header::new_gnu();
            header.set_uid(src.uid()?);
            header.set_gid(src.gid()?);
            header.set_mode(src.mode()? & 0o7777);
            header.set_mtime(src.mtime()?);
            header.set_size(src.size()?);
            match src.entry_type() {
                tar::EntryType::Directory => self.append_dir(&name, header)?,
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    self.append_file(&name, header, &mut entry)?
                }
                tar::EntryType::Symlink => {
                    let target = entry.link_name()?.unwrap_or_default().into_owned();
                    self.append_link(&name, header, &target)?
                }
                tar::EntryType::Link => bail!(
                    "{name} is a hard link to {}: a backup through the engine copies files, not hard links; replace it with a copy (or a symbolic link) and run the backup again",
                    entry
                        .link_name()?
                        .map(|t| t.display().to_string())
                        .unwrap_or_default()
                ),
                _ => continue,
            }
            added += 1;
        }
        Ok(added)
    }

    /// Writes the list of contents last, flushes to disk, renames into place. Returns the size.
    pub fn finish(mut self, mut meta: Meta) -> Result<u64> {
        meta.files = std::mem::take(&mut self.files);
        let json = serde_json::to_vec_pretty(&meta)?;
        let mut header = tar::Header::new_gnu();
        header.set_size(json.len() as u64);
        header.set_mode(0o600);
        header.set_mtime(meta.created_unix);
        header.set_entry_type(tar::EntryType::Regular);
        let mut tar = self.tar.take().expect("not finished");
        tar.append_data(&mut header, META_NAME, json.as_slice())?;
        let gz = tar.into_inner().context("finishing the archive")?;
        let file = gz.finish().context("finishing the archive")?;
        file.sync_all().context("writing the archive to disk")?;
        fs::rename(&self.partial, &self.to)
            .with_context(|| format!("renaming to {}", self.to.display()))?;
        Ok(fs::metadata(&self.to)?.len())
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        if self.tar.is_some() {
            let _ = fs::remove_file(&self.partial);
        }
    }
}

/// Opens a file for reading without following a link at its last component.
pub fn open_nofollow(path: &Path) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))
}

/// A reader that counts and hashes what passes through.
pub struct Hashing<R> {
    inner: R,
    hasher: Sha256,
    pub bytes: u64,
}

impl<R: Read> Hashing<R> {
    pub fn new(inner: R) -> Self {
        Hashing {
            inner,
            hasher: Sha256::new(),
            bytes: 0,
        }
    }

    pub fn sum(&self) -> FileSum {
        FileSum {
            size: self.bytes,
            sha256: hex(&self.hasher.clone().finalize()),
        }
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One member as the archive holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub name: String,
    pub kind: MemberKind,
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
    pub mtime: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberKind {
    Dir,
    File(FileSum),
    Link(String),
}

/// What [`verify`] proved about an archive.
#[derive(Debug)]
pub struct Verified {
    pub meta: Meta,
    pub members: Vec<Member>,
}

impl Verified {
    /// Bytes the files take once restored.
    pub fn restored_bytes(&self) -> u64 {
        self.members
            .iter()
            .map(|m| match &m.kind {
                MemberKind::File(s) => s.size,
                _ => 0,
            })
            .sum()
    }
}

/// The archive is not one stackgen can restore: truncated, tampered, foreign or too new.
#[derive(Debug)]
pub struct Damaged(pub String);

impl std::fmt::Display for Damaged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}
impl std::error::Error for Damaged {}

fn damaged(path: &Path, why: impl std::fmt::Display) -> anyhow::Error {
    anyhow::Error::new(Damaged(format!(
        "{}: {why}; nothing was restored",
        path.display()
    )))
}

/// A member name stackgen itself could have written: relative, no `..`, no `.`, UTF-8.
fn safe_name(name: &Path) -> Option<String> {
    let mut out = Vec::new();
    for c in name.components() {
        match c {
            Component::Normal(part) => out.push(part.to_str()?.to_string()),
            Component::CurDir => {}
            _ => return None,
        }
    }
    (!out.is_empty()).then(|| out.join("/"))
}

/// Reads the whole archive from the start of `file`: every member's name must be safe, every
/// file's SHA-256 and size must match the list in `stackgen-backup.json`, and the list must name
/// exactly the members present. The format version is checked before the sums, so an archive of
/// a newer stackgen says so instead of reporting mismatches.
pub fn verify(path: &Path, file: &mut File) -> Result<Verified> {
    file.rewind()?;
    let mut archive = tar::Archive::new(GzDecoder::new(&mut *file));
    let mut members = Vec::new();
    let mut meta_bytes: Option<Vec<u8>> = None;
    let entries = archive
        .entries()
        .map_err(|e| damaged(path, format!("not a readable archive ({e})")))?;
    for entry in entries {
        let mut entry =
            entry.map_err(|e| damaged(path, format!("unreadable ({e}); is it truncated?")))?;
        let raw = entry
            .path()
            .map_err(|e| damaged(path, format!("a member has an unreadable name ({e})")))?
            .into_owned();
        if raw.components().all(|c| c == Component::CurDir) {
            continue; // `./`, as `tar -C dir .` writes it
        }
        let Some(name) = safe_name(&raw) else {
            return Err(damaged(
                path,
                format!("member `{}` points outside the archive", raw.display()),
            ));
        };
        let header = entry.header().clone();
        let uid = header.uid().unwrap_or(0) as u32;
        let gid = header.gid().unwrap_or(0) as u32;
        let mode = header.mode().unwrap_or(0o600);
        let mtime = header.mtime().unwrap_or(0);
        let kind = match header.entry_type() {
            tar::EntryType::Directory => MemberKind::Dir,
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                if name == META_NAME {
                    let mut bytes = Vec::new();
                    entry.read_to_end(&mut bytes).map_err(|e| {
                        damaged(path, format!("unreadable ({e}); is it truncated?"))
                    })?;
                    meta_bytes = Some(bytes);
                    continue;
                }
                let mut h = Hashing::new(&mut entry);
                io::copy(&mut h, &mut io::sink()).map_err(|e| {
                    damaged(
                        path,
                        format!("unreadable at {name} ({e}); is it truncated?"),
                    )
                })?;
                MemberKind::File(h.sum())
            }
            tar::EntryType::Symlink => {
                let target = entry
                    .link_name()
                    .ok()
                    .flatten()
                    .map(|t| t.to_string_lossy().into_owned())
                    .unwrap_or_default();
                MemberKind::Link(target)
            }
            other => {
                return Err(damaged(
                    path,
                    format!("member `{name}` is a {other:?}, which stackgen never writes"),
                ))
            }
        };
        members.push(Member {
            name,
            kind,
            uid,
            gid,
            mode,
            mtime,
        });
    }
    // The gzip trailer (its CRC and length) is checked only when the stream is read to its end.
    io::copy(&mut archive.into_inner(), &mut io::sink())
        .map_err(|e| damaged(path, format!("unreadable ({e}); is it truncated?")))?;
    let Some(bytes) = meta_bytes else {
        return Err(damaged(
            path,
            format!("no {META_NAME} in it: not a stackgen backup, or truncated"),
        ));
    };
    let meta = Meta::parse(&bytes).map_err(|e| damaged(path, e))?;
    let mut listed = meta.files.clone();
    for m in &members {
        let actual = match &m.kind {
            MemberKind::Dir => continue,
            MemberKind::File(sum) => sum.clone(),
            MemberKind::Link(target) => FileSum::of_link(target),
        };
        match listed.remove(&m.name) {
            Some(expected) if expected == actual => {}
            Some(_) => {
                return Err(damaged(
                    path,
                    format!(
                        "`{}` does not match its checksum: the archive was changed or damaged",
                        m.name
                    ),
                ))
            }
            None => {
                return Err(damaged(
                    path,
                    format!(
                        "`{}` is not in the archive's list of contents: the archive was changed",
                        m.name
                    ),
                ))
            }
        }
    }
    if let Some(missing) = listed.keys().next() {
        return Err(damaged(
            path,
            format!("`{missing}` is listed but missing: the archive is truncated or was changed"),
        ));
    }
    Ok(Verified { meta, members })
}

/// Reads the archive again from the start and hands each member (other than the list) to `each`
/// with its contents, hashing as it goes: the file is the one [`verify`] read (same open file),
/// and a member that differs from the verified list stops the restore.
pub fn for_each_member(
    path: &Path,
    file: &mut File,
    verified: &Verified,
    each: &mut dyn FnMut(&Member, &mut dyn Read) -> Result<()>,
) -> Result<()> {
    file.rewind()?;
    let mut archive = tar::Archive::new(GzDecoder::new(&mut *file));
    let mut expected = verified.members.iter();
    for entry in archive.entries()? {
        let mut entry = entry?;
        let raw = entry.path()?.into_owned();
        let name = safe_name(&raw).unwrap_or_default();
        if name == META_NAME || raw.components().all(|c| c == Component::CurDir) {
            continue;
        }
        let Some(member) = expected.next().filter(|m| m.name == name) else {
            return Err(damaged(path, "it changed while it was being restored"));
        };
        let mut h = Hashing::new(&mut entry);
        each(member, &mut h)?;
        io::copy(&mut h, &mut io::sink())?;
        if let MemberKind::File(sum) = &member.kind {
            if &h.sum() != sum {
                return Err(damaged(path, "it changed while it was being restored"));
            }
        }
    }
    Ok(())
}

/// Creates a file that must not exist yet, never through a link: every file a backup or a
/// restore writes (the archive, a dump while it is made, each restored file).
pub fn create_new(path: &Path, mode: u32) -> Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::ops::backup::format::{Ids, Meta, FORMAT, KIND};
    use std::os::unix::fs::PermissionsExt;

    /// A description with nothing in it but the tenant `t` (owner IDs 5000).
    pub(crate) fn meta(tenant: &str) -> Meta {
        Meta {
            kind: KIND.into(),
            format: FORMAT,
            tenant: tenant.into(),
            deployment: None,
            stackgen_version: "test".into(),
            created: "20261130T000000Z".into(),
            created_unix: 1_764_460_800,
            ids: Ids {
                uid: 5000,
                gid: 5000,
                openclaw_uid: 5001,
                openclaw_gid: 5001,
            },
            services: Vec::new(),
            components: Vec::new(),
            settings: Default::default(),
            secrets: Default::default(),
            salt: "s".into(),
            files: Default::default(),
        }
    }

    /// A header as docker's: every numeric field set.
    fn plain_header() -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_uid(0);
        h.set_gid(0);
        h.set_mode(0o644);
        h.set_mtime(1);
        h
    }

    /// Writes an archive with `fill`, then verifies it: the members as a restore sees them.
    fn written(fill: &dyn Fn(&mut Writer) -> Result<()>) -> Result<Vec<Member>> {
        let dir = tempfile::tempdir().unwrap();
        let to = dir.path().join("a.tar.gz");
        let mut w = Writer::create(&to)?;
        fill(&mut w)?;
        w.finish(meta("t"))?;
        let mut file = open_nofollow(&to)?;
        Ok(verify(&to, &mut file)?.members)
    }

    /// A folder with a nested private file, a link, and a fifo (skipped), owned 2001:2002.
    fn folder() -> tempfile::TempDir {
        let tmp = tempfile::tempdir().unwrap();
        let q = tmp.path().join("qdrant");
        fs::create_dir_all(q.join("collections/c1")).unwrap();
        fs::write(q.join("collections/c1/segment.bin"), b"vectors").unwrap();
        fs::write(q.join("private"), b"key").unwrap();
        fs::set_permissions(q.join("private"), fs::Permissions::from_mode(0o600)).unwrap();
        std::os::unix::fs::symlink("segment.bin", q.join("collections/c1/latest")).unwrap();
        let fifo = std::ffi::CString::new(q.join("fifo").to_str().unwrap()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
        if unsafe { libc::geteuid() } == 0 {
            let st = std::process::Command::new("chown")
                .args(["-hR", "2001:2002"])
                .arg(&q)
                .status()
                .unwrap();
            assert!(st.success());
        }
        tmp
    }

    /// What `docker cp CONTAINER:.../qdrant -` writes: the folder under its own name, numeric
    /// owners, links as links.
    fn as_docker_cp(dir: &Path) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        b.mode(tar::HeaderMode::Complete);
        b.follow_symlinks(false);
        b.append_dir_all("qdrant", dir.join("qdrant")).unwrap();
        b.into_inner().unwrap()
    }

    #[test]
    fn a_stream_from_the_engine_is_archived_exactly_as_the_same_folder_from_the_disk() {
        let tmp = folder();
        let from_disk =
            written(&|w| w.add_tree("data/qdrant", &tmp.path().join("qdrant"))).unwrap();
        let stream = as_docker_cp(tmp.path());
        let from_engine =
            written(&|w| w.add_stream("data/qdrant", &stream[..]).map(|_| ())).unwrap();
        let key = |m: &Member| {
            (
                m.name.clone(),
                m.kind.clone(),
                m.uid,
                m.gid,
                m.mode & 0o7777,
            )
        };
        let mut a: Vec<_> = from_disk.iter().map(key).collect();
        let mut b: Vec<_> = from_engine.iter().map(key).collect();
        a.sort_by(|x, y| x.0.cmp(&y.0));
        b.sort_by(|x, y| x.0.cmp(&y.0));
        assert_eq!(a, b);
        let names: Vec<&str> = b.iter().map(|m| m.0.as_str()).collect();
        assert!(
            names.contains(&"data/qdrant/collections/c1/segment.bin"),
            "{names:?}"
        );
        assert!(!names.iter().any(|n| n.ends_with("fifo")), "{names:?}");
        let link = b.iter().find(|m| m.0.ends_with("latest")).unwrap();
        assert_eq!(link.1, MemberKind::Link("segment.bin".into()));
        let private = b.iter().find(|m| m.0.ends_with("private")).unwrap();
        assert_eq!(private.4, 0o600);
        if unsafe { libc::geteuid() } == 0 {
            assert!(b.iter().all(|m| (m.2, m.3) == (2001, 2002)), "{b:?}");
        }
        // A single file (redis's dump.rdb) takes the name it is given.
        let one = {
            let mut t = tar::Builder::new(Vec::new());
            let mut h = plain_header();
            h.set_size(3);
            h.set_mode(0o640);
            t.append_data(&mut h, "dump.rdb", &b"rdb"[..]).unwrap();
            t.into_inner().unwrap()
        };
        let m = written(&|w| w.add_stream("redis/dump.rdb", &one[..]).map(|_| ())).unwrap();
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].name, "redis/dump.rdb");
        assert!(matches!(&m[0].kind, MemberKind::File(s) if s.size == 3));
    }

    #[test]
    fn a_hard_link_or_a_name_outside_the_folder_in_the_stream_is_refused() {
        let mut t = tar::Builder::new(Vec::new());
        let mut h = plain_header();
        h.set_size(1);
        t.append_data(&mut h, "q/a", &b"x"[..]).unwrap();
        let mut h = plain_header();
        h.set_entry_type(tar::EntryType::Link);
        h.set_size(0);
        t.append_link(&mut h, "q/b", "q/a").unwrap();
        let stream = t.into_inner().unwrap();
        let err = written(&|w| w.add_stream("data/q", &stream[..]).map(|_| ())).unwrap_err();
        assert!(
            format!("{err:#}").contains("data/q/b is a hard link to q/a"),
            "{err:#}"
        );

        let mut raw = Vec::new();
        let mut h = plain_header();
        h.set_size(1);
        h.as_old_mut().name[..9].copy_from_slice(b"../escape");
        h.set_cksum();
        raw.extend_from_slice(h.as_bytes());
        raw.extend_from_slice(&[b'x'; 512]);
        raw.extend_from_slice(&[0; 1024]);
        let err = written(&|w| w.add_stream("data/q", &raw[..]).map(|_| ())).unwrap_err();
        assert!(format!("{err:#}").contains("outside the folder"), "{err:#}");
    }
}
