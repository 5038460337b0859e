//! Flattening OCI image archives into a SquashFS image.
//!
//! Two archive layouts are recognised, plain or gzip-compressed:
//! - `oci-archive`: a tar of an OCI image layout (`oci-layout`, `index.json`,
//!   blobs under `blobs/sha256/`); `index.json` → manifest (through nested
//!   indexes, picking this machine's platform) → config + layers.
//! - `docker-archive` (`docker save`): `manifest.json` → `Config`, `Layers`.
//!
//! Layers (plain or gzip tars) are applied in order into a scratch directory
//! beside the output: whiteouts (`.wh.NAME`, `.wh..wh..opq`) remove what lower
//! layers put there; files keep their modes, ownership (when run as root),
//! xattrs and mtimes. `mksquashfs` then packs the tree, keeping ownership
//! (no `-all-root`). The archive is read once per layer pass instead of being
//! unpacked, so that converting needs room for the rootfs and the image only.

use std::fs::{self, File};
use std::io::{self, BufReader, Read, Write};
use std::path::{Component, Path, PathBuf};
use std::process::Command;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The part of an OCI image config that says how to run the image (the
/// `config` object of the OCI image config). Written as `<image>.json`; keys
/// as in the OCI spec so that the file reads like the original.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageConfig {
    #[serde(
        rename = "Entrypoint",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub entrypoint: Option<Vec<String>>,
    #[serde(rename = "Cmd", default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    /// `NAME=VALUE` strings.
    #[serde(rename = "Env", default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<String>>,
    #[serde(
        rename = "WorkingDir",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub working_dir: Option<String>,
    #[serde(rename = "User", default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    #[error("not an OCI or docker image archive: {0}")]
    NotAnArchive(String),
    #[error("malformed image archive: {0}")]
    Format(String),
    #[error("unsupported image archive: {0}")]
    Unsupported(String),
    #[error("archive member {member} does not match its digest {expected}")]
    DigestMismatch { member: String, expected: String },
    #[error("no space left on the storage media")]
    NoSpace,
    #[error("mksquashfs failed: {0}")]
    Mksquashfs(String),
    #[error("{op}: {source}")]
    Io {
        op: String,
        #[source]
        source: io::Error,
    },
}

impl ConvertError {
    fn io(op: impl Into<String>) -> impl FnOnce(io::Error) -> ConvertError {
        let op = op.into();
        move |source| {
            if is_no_space(&source) {
                ConvertError::NoSpace
            } else {
                ConvertError::Io { op, source }
            }
        }
    }
}

pub(crate) fn is_no_space(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT))
}

/// Which layout an archive has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveKind {
    /// `docker save` output (`manifest.json`).
    Docker,
    /// OCI image layout (`oci-layout` + `index.json`).
    Oci,
}

/// Cap on the JSON documents read into memory (manifests, configs).
const JSON_MAX: u64 = 8 << 20;

/// Recognises an image archive by its members. `Ok(None)` for anything that is
/// not a (gzip-)tar holding an OCI layout or a docker manifest.
pub fn detect(archive: &Path) -> io::Result<Option<ArchiveKind>> {
    let reader = open_archive(archive)?;
    let mut tar = tar::Archive::new(reader);
    let Ok(entries) = tar.entries() else {
        return Ok(None);
    };
    let (mut layout, mut index, mut manifest) = (false, false, false);
    for entry in entries {
        // A read error here means "not a tar" (random bytes), not an I/O
        // failure worth reporting.
        let Ok(entry) = entry else { return Ok(None) };
        let Ok(path) = entry.path() else { continue };
        match normalize(&path).as_deref().and_then(|p| p.to_str()) {
            Some("oci-layout") => layout = true,
            Some("index.json") => index = true,
            Some("manifest.json") => manifest = true,
            _ => {}
        }
    }
    Ok(if layout && index {
        Some(ArchiveKind::Oci)
    } else if manifest {
        Some(ArchiveKind::Docker)
    } else if index {
        Some(ArchiveKind::Oci)
    } else {
        None
    })
}

/// Converts `archive` into the SquashFS image `out_img` and writes the image
/// config beside it (`out_img` with extension `.json`). Both appear only when
/// complete (written to temporary names in the same directory, then renamed);
/// scratch space is taken in that directory too.
pub fn convert(archive: &Path, out_img: &Path) -> Result<ImageConfig, ConvertError> {
    let dir = match out_img.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let file_name = out_img
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| ConvertError::Format(format!("bad output path {}", out_img.display())))?;
    let out_json = super::config_path(out_img);
    if out_json == out_img {
        return Err(ConvertError::Format(format!(
            "output {} would be overwritten by its config",
            out_img.display()
        )));
    }
    let tag = random_tag();
    let tmp_img = TempPath(dir.join(format!(".{file_name}.partial-{tag}")));
    let tmp_json = TempPath(dir.join(format!(".{file_name}.partial-{tag}.json")));
    let config = convert_to(archive, &tmp_img.0, &tmp_json.0, &dir)?;
    fs::rename(&tmp_json.0, &out_json).map_err(ConvertError::io("renaming the image config"))?;
    fs::rename(&tmp_img.0, out_img).map_err(ConvertError::io("renaming the image"))?;
    if let Ok(d) = File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(config)
}

/// CLI entry for `apphostd image convert IN OUT`.
pub fn convert_cli(input: &Path, output: &Path) -> Result<(), ConvertError> {
    let cfg = convert(input, output)?;
    let mut out = io::stdout().lock();
    let _ = writeln!(out, "{}", output.display());
    if let Ok(s) = serde_json::to_string(&cfg) {
        let _ = writeln!(out, "{s}");
    }
    Ok(())
}

/// Converts into exactly the given paths (not atomic: callers rename).
pub(crate) fn convert_to(
    archive: &Path,
    out_img: &Path,
    out_json: &Path,
    scratch_parent: &Path,
) -> Result<ImageConfig, ConvertError> {
    let kind = detect(archive)
        .map_err(ConvertError::io(format!("reading {}", archive.display())))?
        .ok_or_else(|| {
            ConvertError::NotAnArchive("no oci-layout/index.json or manifest.json found".into())
        })?;
    let plan = match kind {
        ArchiveKind::Docker => docker_plan(archive)?,
        ArchiveKind::Oci => oci_plan(archive)?,
    };
    let config_doc = read_member(archive, &plan.config.path, plan.config.digest.as_deref())?;
    let config = parse_config(&config_doc)?;

    let root = ScratchDir::create(scratch_parent)?;
    for layer in &plan.layers {
        apply_layer(archive, layer, &root.0)?;
    }
    mksquashfs(&root.0, out_img)?;
    drop(root);

    let json = serde_json::to_vec_pretty(&config)
        .map_err(|e| ConvertError::Format(format!("image config: {e}")))?;
    let mut f = File::create(out_json).map_err(ConvertError::io("writing the image config"))?;
    f.write_all(&json)
        .and_then(|()| f.write_all(b"\n"))
        .and_then(|()| f.sync_all())
        .map_err(ConvertError::io("writing the image config"))?;
    Ok(config)
}

// ===== archive layouts =====

/// A member of the outer archive, with the digest it must have (OCI blobs).
#[derive(Debug)]
struct Member {
    path: PathBuf,
    digest: Option<String>,
}

#[derive(Debug)]
struct Plan {
    config: Member,
    layers: Vec<Member>,
}

fn docker_plan(archive: &Path) -> Result<Plan, ConvertError> {
    let doc = read_member(archive, Path::new("manifest.json"), None)?;
    let v: serde_json::Value = serde_json::from_slice(&doc)
        .map_err(|e| ConvertError::Format(format!("manifest.json: {e}")))?;
    // `docker save` of several images lists each; we take the first.
    let first = v
        .as_array()
        .and_then(|a| a.first())
        .ok_or_else(|| ConvertError::Format("manifest.json lists no image".into()))?;
    let config = first
        .get("Config")
        .and_then(|c| c.as_str())
        .ok_or_else(|| ConvertError::Format("manifest.json: no Config".into()))?;
    let layers = first
        .get("Layers")
        .and_then(|l| l.as_array())
        .ok_or_else(|| ConvertError::Format("manifest.json: no Layers".into()))?;
    let member = |s: &str| -> Result<Member, ConvertError> {
        Ok(Member {
            path: normalize(Path::new(s))
                .ok_or_else(|| ConvertError::Format(format!("bad member name {s:?}")))?,
            digest: None,
        })
    };
    Ok(Plan {
        config: member(config)?,
        layers: layers
            .iter()
            .map(|l| {
                l.as_str()
                    .ok_or_else(|| ConvertError::Format("manifest.json: bad Layers".into()))
                    .and_then(member)
            })
            .collect::<Result<_, _>>()?,
    })
}

const INDEX_TYPES: [&str; 2] = [
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];

fn oci_plan(archive: &Path) -> Result<Plan, ConvertError> {
    let mut doc = read_member(archive, Path::new("index.json"), None)?;
    // Nested indexes are legal; three levels is more than any tool writes.
    for _ in 0..4 {
        let v: serde_json::Value = serde_json::from_slice(&doc)
            .map_err(|e| ConvertError::Format(format!("OCI index/manifest: {e}")))?;
        if let Some(manifests) = v.get("manifests").and_then(|m| m.as_array()) {
            let chosen = pick_platform(manifests)
                .ok_or_else(|| ConvertError::Format("OCI index lists no manifest".into()))?;
            let digest = descriptor_digest(chosen)?;
            doc = read_member(archive, &blob_path(&digest)?, Some(&digest))?;
            continue;
        }
        let media = v.get("mediaType").and_then(|m| m.as_str()).unwrap_or("");
        if INDEX_TYPES.contains(&media) {
            return Err(ConvertError::Format("OCI index without manifests".into()));
        }
        let config = v
            .get("config")
            .ok_or_else(|| ConvertError::Format("OCI manifest has no config".into()))?;
        let config_digest = descriptor_digest(config)?;
        let layers = v
            .get("layers")
            .and_then(|l| l.as_array())
            .ok_or_else(|| ConvertError::Format("OCI manifest has no layers".into()))?;
        let mut out = Vec::new();
        for l in layers {
            let media = l.get("mediaType").and_then(|m| m.as_str()).unwrap_or("");
            if media.contains("zstd") {
                return Err(ConvertError::Unsupported(format!(
                    "layer media type {media}"
                )));
            }
            let d = descriptor_digest(l)?;
            out.push(Member {
                path: blob_path(&d)?,
                digest: Some(d),
            });
        }
        return Ok(Plan {
            config: Member {
                path: blob_path(&config_digest)?,
                digest: Some(config_digest),
            },
            layers: out,
        });
    }
    Err(ConvertError::Format("OCI indexes nested too deeply".into()))
}

/// The manifest for this machine's architecture when the index says
/// platforms, else the first.
fn pick_platform(manifests: &[serde_json::Value]) -> Option<&serde_json::Value> {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "powerpc" => "ppc",
        "powerpc64" => "ppc64le",
        other => other,
    };
    manifests
        .iter()
        .find(|m| {
            let p = m.get("platform");
            p.and_then(|p| p.get("architecture"))
                .and_then(|a| a.as_str())
                == Some(arch)
                && p.and_then(|p| p.get("os")).and_then(|o| o.as_str()) != Some("windows")
        })
        .or_else(|| manifests.first())
}

fn descriptor_digest(d: &serde_json::Value) -> Result<String, ConvertError> {
    d.get("digest")
        .and_then(|d| d.as_str())
        .map(str::to_string)
        .ok_or_else(|| ConvertError::Format("descriptor without digest".into()))
}

/// `sha256:HEX` → `blobs/sha256/HEX`, refusing anything that is not a plain
/// algorithm and hex string (the digest becomes a path).
fn blob_path(digest: &str) -> Result<PathBuf, ConvertError> {
    let (alg, hex) = digest
        .split_once(':')
        .ok_or_else(|| ConvertError::Format(format!("bad digest {digest:?}")))?;
    if alg != "sha256" {
        return Err(ConvertError::Unsupported(format!(
            "digest algorithm {alg:?}"
        )));
    }
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ConvertError::Format(format!("bad digest {digest:?}")));
    }
    Ok(PathBuf::from(format!("blobs/sha256/{hex}")))
}

fn parse_config(doc: &[u8]) -> Result<ImageConfig, ConvertError> {
    let v: serde_json::Value = serde_json::from_slice(doc)
        .map_err(|e| ConvertError::Format(format!("image config: {e}")))?;
    match v.get("config") {
        None | Some(serde_json::Value::Null) => Ok(ImageConfig::default()),
        Some(c) => serde_json::from_value(c.clone())
            .map_err(|e| ConvertError::Format(format!("image config: {e}"))),
    }
}

// ===== reading the outer archive =====

fn open_archive(path: &Path) -> io::Result<Box<dyn Read>> {
    let mut f = File::open(path)?;
    let mut magic = [0u8; 2];
    let n = f.read(&mut magic)?;
    drop(f);
    let f = BufReader::new(File::open(path)?);
    Ok(if n == 2 && magic == [0x1f, 0x8b] {
        Box::new(flate2::read::GzDecoder::new(f))
    } else {
        Box::new(f)
    })
}

/// An archive member's path without `./` or `/` prefixes; `None` when it
/// climbs out with `..`.
fn normalize(p: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir | Component::RootDir => {}
            Component::ParentDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

/// Runs `f` on the content of member `name` (streamed), then checks the
/// member's digest when one is given.
fn with_member(
    archive: &Path,
    name: &Path,
    digest: Option<&str>,
    f: &mut dyn FnMut(&mut dyn Read) -> Result<(), ConvertError>,
) -> Result<(), ConvertError> {
    let op = || format!("reading {}", archive.display());
    let mut tar = tar::Archive::new(open_archive(archive).map_err(ConvertError::io(op()))?);
    for entry in tar.entries().map_err(ConvertError::io(op()))? {
        let entry = entry.map_err(ConvertError::io(op()))?;
        let path = entry.path().map_err(ConvertError::io(op()))?;
        if normalize(&path).as_deref() != Some(name) {
            continue;
        }
        let mut hashing = HashingReader {
            inner: entry,
            hasher: Sha256::new(),
        };
        let result = f(&mut hashing);
        if let Some(expected) = digest {
            // The consumer may stop early (tar end blocks, or an error caused
            // by corrupt content): hash the rest, and report a corrupt blob
            // as such rather than as whatever its garbage made fail.
            let drained = io::copy(&mut hashing, &mut io::sink());
            let actual = format!("sha256:{}", hex::encode(hashing.hasher.finalize()));
            if drained.is_ok() && !actual.eq_ignore_ascii_case(expected) {
                return Err(ConvertError::DigestMismatch {
                    member: name.display().to_string(),
                    expected: expected.to_string(),
                });
            }
            result?;
            drained.map_err(ConvertError::io(op()))?;
            return Ok(());
        }
        return result;
    }
    Err(ConvertError::Format(format!(
        "archive has no member {}",
        name.display()
    )))
}

fn read_member(archive: &Path, name: &Path, digest: Option<&str>) -> Result<Vec<u8>, ConvertError> {
    let mut buf = Vec::new();
    with_member(archive, name, digest, &mut |r| {
        r.take(JSON_MAX + 1)
            .read_to_end(&mut buf)
            .map_err(ConvertError::io(format!("reading {}", name.display())))?;
        if buf.len() as u64 > JSON_MAX {
            return Err(ConvertError::Format(format!(
                "{} is too large",
                name.display()
            )));
        }
        Ok(())
    })?;
    Ok(buf)
}

struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// A layer blob, plain tar or gzip tar (by its magic, not the media type:
/// docker archives have none).
fn layer_reader<'a>(r: &'a mut dyn Read) -> Result<Box<dyn Read + 'a>, ConvertError> {
    let mut head = [0u8; 4];
    let mut n = 0;
    while n < head.len() {
        let k = r
            .read(&mut head[n..])
            .map_err(ConvertError::io("reading a layer"))?;
        if k == 0 {
            break;
        }
        n += k;
    }
    let chained = io::Cursor::new(head[..n].to_vec()).chain(r);
    if n >= 2 && head[..2] == [0x1f, 0x8b] {
        Ok(Box::new(flate2::read::GzDecoder::new(chained)))
    } else if n == 4 && head == [0x28, 0xb5, 0x2f, 0xfd] {
        Err(ConvertError::Unsupported("zstd-compressed layer".into()))
    } else {
        Ok(Box::new(chained))
    }
}

// ===== applying layers =====

const OPAQUE: &str = ".wh..wh..opq";
const WHITEOUT_PREFIX: &str = ".wh.";

fn apply_layer(archive: &Path, layer: &Member, root: &Path) -> Result<(), ConvertError> {
    let layer_name = layer.path.display().to_string();
    let op = |what: &str| format!("{what} layer {layer_name}");
    // Pass 1: whiteouts hide what lower layers have. They must not touch what
    // this same layer adds, whatever the order inside its tar, so they are all
    // applied before anything of this layer is extracted.
    with_member(archive, &layer.path, layer.digest.as_deref(), &mut |r| {
        let mut tar = tar::Archive::new(layer_reader(r)?);
        for entry in tar.entries().map_err(ConvertError::io(op("reading")))? {
            let entry = entry.map_err(ConvertError::io(op("reading")))?;
            let raw = entry.path().map_err(ConvertError::io(op("reading")))?;
            let Some(rel) = normalize(&raw) else { continue };
            let Some(fname) = rel.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            if !fname.starts_with(WHITEOUT_PREFIX) {
                continue;
            }
            let parent_rel = rel.parent().unwrap_or(Path::new(""));
            // A whiteout below a symlink would act outside the tree.
            let Some(parent) = safe_dir(root, parent_rel) else {
                continue;
            };
            if fname == OPAQUE {
                clear_dir(&parent)
                    .map_err(ConvertError::io(op("applying an opaque whiteout in")))?;
            } else if let Some(target) = fname.strip_prefix(WHITEOUT_PREFIX) {
                if target.is_empty() || target == "." || target == ".." {
                    continue;
                }
                remove_any(&parent.join(target))
                    .map_err(ConvertError::io(op("applying a whiteout in")))?;
            }
        }
        Ok(())
    })?;
    // Pass 2: extract everything else.
    let euid_root = nix::unistd::geteuid().is_root();
    with_member(archive, &layer.path, None, &mut |r| {
        let mut tar = tar::Archive::new(layer_reader(r)?);
        tar.set_preserve_permissions(true);
        tar.set_preserve_ownerships(euid_root);
        tar.set_unpack_xattrs(true);
        tar.set_preserve_mtime(true);
        tar.set_overwrite(true);
        for entry in tar.entries().map_err(ConvertError::io(op("reading")))? {
            let mut entry = entry.map_err(ConvertError::io(op("reading")))?;
            let raw = entry
                .path()
                .map_err(ConvertError::io(op("reading")))?
                .into_owned();
            let Some(rel) = normalize(&raw) else {
                return Err(ConvertError::Format(format!(
                    "layer {layer_name}: member {} leaves the root",
                    raw.display()
                )));
            };
            if rel.as_os_str().is_empty() {
                continue; // "./": the root itself keeps the scratch dir's mode
            }
            let fname = rel.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if fname.starts_with(WHITEOUT_PREFIX) {
                continue;
            }
            let kind = entry.header().entry_type();
            // Only through real directories do we touch the tree ourselves:
            // a path below a symlink (possibly absolute, pointing at the
            // host) is left to the tar crate, which refuses to write outside.
            let target = rel
                .parent()
                .and_then(|p| safe_dir(root, p))
                .map(|parent| parent.join(rel.file_name().unwrap_or_default()));
            if let Some(target) = &target {
                // Replace what a lower layer has there unless both are
                // directories (which merge).
                if let Ok(m) = fs::symlink_metadata(target) {
                    if !(m.is_dir() && kind.is_dir()) {
                        remove_any(target).map_err(ConvertError::io(op("extracting")))?;
                    }
                }
            }
            if kind.is_character_special() || kind.is_block_special() || kind.is_fifo() {
                let Some(target) = &target else {
                    return Err(ConvertError::Unsupported(format!(
                        "device node {} below a symlink",
                        rel.display()
                    )));
                };
                make_node(&entry, target, euid_root)
                    .map_err(ConvertError::io(format!("creating {}", rel.display())))?;
                continue;
            }
            entry.unpack_in(root).map_err(|e| {
                ConvertError::io(format!(
                    "extracting {} from layer {layer_name}",
                    rel.display()
                ))(e)
            })?;
        }
        Ok(())
    })
}

/// `root/rel` when every component of `rel` below `root` is a real directory
/// (no symlink), else `None`. Missing components are fine: nothing to follow.
fn safe_dir(root: &Path, rel: &Path) -> Option<PathBuf> {
    let mut cur = root.to_path_buf();
    for c in rel.components() {
        let Component::Normal(n) = c else { return None };
        cur.push(n);
        match fs::symlink_metadata(&cur) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => return None,
            Err(_) => {}
        }
    }
    Some(cur)
}

fn remove_any(p: &Path) -> io::Result<()> {
    match fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(p),
        Ok(_) => fs::remove_file(p),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

fn clear_dir(dir: &Path) -> io::Result<()> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for e in entries {
        remove_any(&e?.path())?;
    }
    Ok(())
}

/// Device nodes and fifos (the tar crate would write them as regular files).
fn make_node<R: Read>(entry: &tar::Entry<R>, target: &Path, as_root: bool) -> io::Result<()> {
    use nix::sys::stat::{makedev, mknod, Mode, SFlag};
    let h = entry.header();
    let kind = h.entry_type();
    let mode = Mode::from_bits_truncate(h.mode()? & 0o7777);
    let (flag, dev) = if kind.is_fifo() {
        (SFlag::S_IFIFO, 0)
    } else {
        let major = h.device_major()?.unwrap_or(0);
        let minor = h.device_minor()?.unwrap_or(0);
        let flag = if kind.is_block_special() {
            SFlag::S_IFBLK
        } else {
            SFlag::S_IFCHR
        };
        (flag, makedev(u64::from(major), u64::from(minor)))
    };
    if !as_root && !kind.is_fifo() {
        // Only root may create device nodes; an unprivileged conversion
        // (tests, tools) drops them rather than failing.
        return Ok(());
    }
    if let Some(parent) = target.parent() {
        fs::create_dir_all(parent)?;
    }
    mknod(target, flag, mode, dev).map_err(io::Error::from)?;
    if as_root {
        let uid = u32::try_from(h.uid()?).unwrap_or(0);
        let gid = u32::try_from(h.gid()?).unwrap_or(0);
        nix::unistd::chown(
            target,
            Some(nix::unistd::Uid::from_raw(uid)),
            Some(nix::unistd::Gid::from_raw(gid)),
        )
        .map_err(io::Error::from)?;
        // chown clears setuid/setgid bits: put the mode back.
        fs::set_permissions(
            target,
            std::os::unix::fs::PermissionsExt::from_mode(mode.bits()),
        )?;
    }
    Ok(())
}

fn mksquashfs(root: &Path, out: &Path) -> Result<(), ConvertError> {
    let output = Command::new("mksquashfs")
        .arg(root)
        .arg(out)
        .args(["-noappend", "-no-progress", "-quiet"])
        .output()
        .map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                ConvertError::Mksquashfs("mksquashfs not found (apt package squashfs-tools)".into())
            } else {
                ConvertError::Io {
                    op: "running mksquashfs".into(),
                    source: e,
                }
            }
        })?;
    if output.status.success() {
        return Ok(());
    }
    let _ = fs::remove_file(out);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stderr),
        String::from_utf8_lossy(&output.stdout)
    );
    if text.contains("No space left") {
        return Err(ConvertError::NoSpace);
    }
    Err(ConvertError::Mksquashfs(
        text.trim().chars().take(2000).collect(),
    ))
}

// ===== scratch files =====

pub(crate) fn random_tag() -> String {
    let mut b = [0u8; 6];
    rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut b);
    hex::encode(b)
}

/// A path removed on drop (a temporary file that was not renamed away).
pub(crate) struct TempPath(pub(crate) PathBuf);

impl Drop for TempPath {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

/// A scratch directory tree removed on drop.
struct ScratchDir(PathBuf);

impl ScratchDir {
    fn create(parent: &Path) -> Result<ScratchDir, ConvertError> {
        let path = parent.join(format!(".rootfs-{}", random_tag()));
        fs::create_dir(&path).map_err(ConvertError::io("creating the scratch directory"))?;
        // The squashfs root takes this directory's mode.
        fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .map_err(ConvertError::io("creating the scratch directory"))?;
        Ok(ScratchDir(path))
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_paths_are_checked() {
        let hex = "a".repeat(64);
        assert_eq!(
            blob_path(&format!("sha256:{hex}")).unwrap(),
            PathBuf::from(format!("blobs/sha256/{hex}"))
        );
        assert!(blob_path("sha256:../../etc/passwd").is_err());
        assert!(blob_path("md5:abc").is_err());
    }

    #[test]
    fn normalize_refuses_parent() {
        assert_eq!(normalize(Path::new("./a/b")).unwrap(), PathBuf::from("a/b"));
        assert_eq!(normalize(Path::new("/a")).unwrap(), PathBuf::from("a"));
        assert!(normalize(Path::new("a/../../b")).is_none());
    }

    #[test]
    fn config_keeps_oci_keys() {
        let doc = br#"{"architecture":"amd64","config":{"Env":["A=1"],"Entrypoint":["/bin/sh"],"Cmd":null,"WorkingDir":"/w","Labels":{"x":"y"}}}"#;
        let c = parse_config(doc).unwrap();
        assert_eq!(c.env.as_deref(), Some(&["A=1".to_string()][..]));
        assert_eq!(c.cmd, None);
        let s = serde_json::to_string(&c).unwrap();
        assert_eq!(
            s,
            r#"{"Entrypoint":["/bin/sh"],"Env":["A=1"],"WorkingDir":"/w"}"#
        );
    }

    #[test]
    fn random_bytes_are_not_an_archive() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x");
        fs::write(&p, vec![7u8; 4096]).unwrap();
        assert_eq!(detect(&p).unwrap(), None);
    }
}
