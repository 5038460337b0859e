//! Downloading an image into the storage directory (RPC `import-image`).
//!
//! libcurl does the transfer (http, https, ftp, tftp, scp, sftp), streaming
//! into `.NAME.partial-XXXX` in the destination directory while hashing. Free
//! space is checked before (when the size is announced) and during the
//! transfer. The file must be a SquashFS image or an OCI/docker image archive
//! (converted into a SquashFS + `.json` config); it is renamed into place only
//! when complete and verified, and the temporary file is removed on every
//! failure path (drop guard).

use std::cell::RefCell;
use std::collections::HashSet;
use std::ffi::CString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::oci::{self, is_no_space, ArchiveKind, ConvertError, ImageConfig, TempPath};
use super::valid_name;

/// What to import. `Debug` shows the URL without credentials.
#[derive(Clone, Default)]
pub struct ImportRequest {
    /// `http`, `https`, `ftp`, `tftp`, `scp` or `sftp` URL; may carry
    /// `user:password@` (never logged or put in errors).
    pub url: String,
    /// File name to store; default: the URL's last path segment (for an OCI
    /// archive its `.tar`/`.tar.gz`/`.tgz` suffix is replaced by `.img`).
    pub name: Option<String>,
    /// Expected SHA-256 (hex) of the downloaded file.
    pub sha256: Option<String>,
    /// CA certificates (PEM) to trust for https instead of the system ones.
    pub ca_file: Option<PathBuf>,
    /// Private key for scp/sftp public-key authentication.
    pub ssh_private_key: Option<PathBuf>,
    /// Its public key; default: the private key's path + `.pub` when that
    /// exists, else derived from the private key by libssh2.
    pub ssh_public_key: Option<PathBuf>,
    /// OpenSSH known_hosts file: when given, the server's host key must be
    /// listed there (otherwise libcurl accepts any host key).
    pub ssh_known_hosts: Option<PathBuf>,
    /// Connection timeout; default 30 s.
    pub connect_timeout: Option<Duration>,
    /// Abort when less than 1 byte/s arrives for this long; default 60 s.
    pub stall_timeout: Option<Duration>,
}

impl std::fmt::Debug for ImportRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImportRequest")
            .field("url", &redact_url(&self.url))
            .field("name", &self.name)
            .field("sha256", &self.sha256)
            .field("ca_file", &self.ca_file)
            .field("ssh_private_key", &self.ssh_private_key)
            .field("ssh_public_key", &self.ssh_public_key)
            .field("ssh_known_hosts", &self.ssh_known_hosts)
            .field("connect_timeout", &self.connect_timeout)
            .field("stall_timeout", &self.stall_timeout)
            .finish()
    }
}

impl ImportRequest {
    pub fn new(url: impl Into<String>) -> ImportRequest {
        ImportRequest {
            url: url.into(),
            ..ImportRequest::default()
        }
    }
}

/// Progress report (notification `image-import-progress`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    pub name: String,
    /// Bytes received so far.
    pub bytes: u64,
    /// Announced size, when the server told it.
    pub total: Option<u64>,
    /// `bytes * 100 / total`, when the size is known.
    pub percent: Option<u8>,
}

/// What an import produced (RPC output, notification `image-imported`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Imported {
    /// The stored image's name (file name in the destination directory).
    pub name: String,
    pub path: PathBuf,
    /// SHA-256 of the stored image (for a converted archive: of the SquashFS).
    pub sha256: String,
    /// SHA-256 of the downloaded file (what `ImportRequest::sha256` checks).
    pub download_sha256: String,
    pub size: u64,
    /// `None` for a SquashFS image; the archive kind when converted.
    pub converted_from: Option<ArchiveKind>,
    /// The image config written beside a converted image.
    pub config: Option<ImageConfig>,
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("invalid URL {url}: {reason}")]
    InvalidUrl { url: String, reason: String },
    #[error("unsupported URL scheme {0:?} (use http, https, ftp, tftp, scp or sftp)")]
    UnsupportedScheme(String),
    #[error("invalid image name {name:?}: {reason}")]
    InvalidName { name: String, reason: String },
    #[error("invalid sha256 {0:?}: 64 hexadecimal digits expected")]
    InvalidSha256(String),
    #[error("image {0:?} is already being imported or deleted")]
    Busy(String),
    /// `needed` is 0 when the size was not known (the media filled up).
    #[error("not enough space on the storage media: {}", space_text(*.needed, *.available))]
    NoSpace { needed: u64, available: u64 },
    #[error("SHA-256 mismatch: expected {expected}, got {actual}")]
    ChecksumMismatch { expected: String, actual: String },
    #[error("not an image: {0}")]
    NotAnImage(String),
    #[error("download failed: {0}")]
    Transfer(String),
    #[error("converting the image archive failed: {0}")]
    Convert(ConvertError),
    #[error("{op}: {source}")]
    Io {
        op: String,
        #[source]
        source: io::Error,
    },
}

fn space_text(needed: u64, available: u64) -> String {
    if needed == 0 {
        format!("it filled up ({available} bytes left)")
    } else {
        format!("{needed} bytes needed, {available} available")
    }
}

impl ImportError {
    fn io(op: &str, dir: &Path) -> impl FnOnce(io::Error) -> ImportError {
        let op = op.to_string();
        let dir = dir.to_path_buf();
        move |source| {
            if is_no_space(&source) {
                ImportError::NoSpace {
                    needed: 0,
                    available: available_space(&dir).unwrap_or(0),
                }
            } else {
                ImportError::Io { op, source }
            }
        }
    }
}

// ===== names held by imports and deletes in progress =====

/// Image paths with an import (or delete) in progress, process-wide: a second
/// import to the same name is refused instead of racing on the rename.
static IN_FLIGHT: Mutex<Option<HashSet<PathBuf>>> = Mutex::new(None);

/// Holds an image path until dropped.
#[derive(Debug)]
pub(crate) struct NameClaim(PathBuf);

impl Drop for NameClaim {
    fn drop(&mut self) {
        if let Ok(mut g) = IN_FLIGHT.lock() {
            if let Some(set) = g.as_mut() {
                set.remove(&self.0);
            }
        }
    }
}

/// Claims `path` (an image's full path); `None` while someone else holds it.
pub(crate) fn claim_name(path: &Path) -> Option<NameClaim> {
    // Same file, whatever spelling of the directory the caller used.
    let key = match (path.parent(), path.file_name()) {
        (Some(d), Some(n)) => fs::canonicalize(d)
            .map(|d| d.join(n))
            .unwrap_or_else(|_| path.to_path_buf()),
        _ => path.to_path_buf(),
    };
    // A poisoned lock only means a panic elsewhere while holding it; the set
    // itself is still consistent (insert/remove are single operations).
    let mut g = IN_FLIGHT.lock().unwrap_or_else(|p| p.into_inner());
    let set = g.get_or_insert_with(HashSet::new);
    if set.insert(key.clone()) {
        Some(NameClaim(key))
    } else {
        None
    }
}

// ===== URLs =====

/// The URL with any `user:password@` replaced by `***@`, for logs and errors.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..end].rfind('@') {
        Some(at) => format!("{scheme}://***@{}", &rest[at + 1..]),
        None => url.to_string(),
    }
}

/// Removes the URL's credentials from a message (libcurl messages can quote
/// the URL or the user name).
fn scrub(msg: &str, url: &str) -> String {
    let Some((_, rest)) = url.split_once("://") else {
        return msg.to_string();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let mut out = msg.replace(url, &redact_url(url));
    if let Some(at) = rest[..end].rfind('@') {
        let userinfo = &rest[..at];
        if !userinfo.is_empty() {
            out = out.replace(userinfo, "***");
        }
        if let Some((_, pass)) = userinfo.split_once(':') {
            if !pass.is_empty() {
                out = out.replace(pass, "***");
            }
        }
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scheme {
    Http,
    Https,
    Ftp,
    Tftp,
    Scp,
    Sftp,
}

impl Scheme {
    /// libcurl's CURLPROTO_* bit, to forbid any other protocol.
    fn curl_proto(self) -> libc::c_long {
        match self {
            Scheme::Http => 1,
            Scheme::Https => 1 << 1,
            Scheme::Ftp => 1 << 2,
            Scheme::Scp => 1 << 4,
            Scheme::Sftp => 1 << 5,
            Scheme::Tftp => 1 << 11,
        }
    }
}

struct ParsedUrl {
    scheme: Scheme,
    /// Last path segment, percent-decoded.
    last_segment: String,
}

fn parse_url(url: &str) -> Result<ParsedUrl, ImportError> {
    let invalid = |reason: &str| ImportError::InvalidUrl {
        url: redact_url(url),
        reason: reason.to_string(),
    };
    if url.chars().any(|c| c.is_control() || c == ' ') {
        return Err(invalid("contains spaces or control characters"));
    }
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| invalid("expected SCHEME://HOST/PATH"))?;
    let scheme = match scheme.to_ascii_lowercase().as_str() {
        "http" => Scheme::Http,
        "https" => Scheme::Https,
        "ftp" => Scheme::Ftp,
        "tftp" => Scheme::Tftp,
        "scp" => Scheme::Scp,
        "sftp" => Scheme::Sftp,
        _ => return Err(ImportError::UnsupportedScheme(scheme.to_string())),
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if host.is_empty() || host.starts_with(':') {
        return Err(invalid("no host"));
    }
    let mut path = &rest[end..];
    if let Some(i) = path.find(['?', '#']) {
        path = &path[..i];
    }
    if scheme == Scheme::Tftp || scheme == Scheme::Ftp {
        // ";mode=octet" / ";type=i" are transfer options, not part of the name.
        if let Some(i) = path.find(';') {
            path = &path[..i];
        }
    }
    let last = path.rsplit('/').next().unwrap_or("");
    Ok(ParsedUrl {
        scheme,
        last_segment: percent_decode(last),
    })
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("");
            if let Ok(v) = u8::from_str_radix(hex, 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn check_name(name: &str) -> Result<(), ImportError> {
    if !valid_name(name) {
        return Err(ImportError::InvalidName {
            name: name.to_string(),
            reason: "must match [A-Za-z0-9][A-Za-z0-9_.+-]* (at most 255 characters)".into(),
        });
    }
    if Path::new(name).extension().is_some_and(|e| e == "json") {
        return Err(ImportError::InvalidName {
            name: name.to_string(),
            reason: "names ending in .json are reserved for image configs".into(),
        });
    }
    Ok(())
}

/// Name for an image converted from archive `name` when none was asked for.
fn converted_name(name: &str) -> String {
    for suffix in [".tar.gz", ".tgz", ".tar", ".oci"] {
        if let Some(stem) = name.strip_suffix(suffix) {
            if !stem.is_empty() {
                return format!("{stem}.img");
            }
        }
    }
    name.to_string()
}

// ===== free space =====

/// Bytes available to unprivileged writers on the filesystem holding `dir`.
pub fn available_space(dir: &Path) -> io::Result<u64> {
    let st = nix::sys::statvfs::statvfs(dir).map_err(io::Error::from)?;
    #[allow(clippy::unnecessary_cast)] // field widths differ between targets
    Ok((st.blocks_available() as u64).saturating_mul(st.fragment_size() as u64))
}

// ===== import =====

/// Imports `req.url` into `dest_dir`. Blocking: run it in `spawn_blocking`.
/// `progress` is called every few percent (or every few MiB when the size is
/// unknown) and once at the end of the transfer.
pub fn import(
    req: &ImportRequest,
    dest_dir: &Path,
    progress: &mut dyn FnMut(Progress),
) -> Result<Imported, ImportError> {
    let url = parse_url(&req.url)?;
    let name = match &req.name {
        Some(n) => n.clone(),
        None if url.last_segment.is_empty() => {
            return Err(ImportError::InvalidName {
                name: String::new(),
                reason: "the URL names no file; give a name".into(),
            })
        }
        None => url.last_segment.clone(),
    };
    check_name(&name)?;
    let expected = match &req.sha256 {
        Some(s) if s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()) => {
            Some(s.to_ascii_lowercase())
        }
        Some(s) => return Err(ImportError::InvalidSha256(s.clone())),
        None => None,
    };
    let claim = claim_name(&dest_dir.join(&name)).ok_or_else(|| ImportError::Busy(name.clone()))?;
    tracing::info!(url = %redact_url(&req.url), image = %name, "importing");

    let tmp = TempPath(dest_dir.join(format!(".{name}.partial-{}", oci::random_tag())));
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(&tmp.0)
        .map_err(ImportError::io("creating the download file", dest_dir))?;
    let (download_sha256, size) = download(req, url.scheme, &name, dest_dir, file, progress)?;

    if let Some(expected) = expected {
        if expected != download_sha256 {
            return Err(ImportError::ChecksumMismatch {
                expected,
                actual: download_sha256,
            });
        }
    }

    if is_squashfs(&tmp.0).map_err(ImportError::io("reading the download", dest_dir))? {
        let path = dest_dir.join(&name);
        fs::rename(&tmp.0, &path).map_err(ImportError::io("storing the image", dest_dir))?;
        // A config left by an earlier image of this name belongs to that one.
        let cfg = super::config_path(&path);
        if cfg != path {
            let _ = fs::remove_file(cfg);
        }
        sync_dir(dest_dir);
        tracing::info!(image = %name, sha256 = %download_sha256, size, "image imported");
        return Ok(Imported {
            name,
            path,
            sha256: download_sha256.clone(),
            download_sha256,
            size,
            converted_from: None,
            config: None,
        });
    }

    let kind = oci::detect(&tmp.0)
        .map_err(ImportError::io("reading the download", dest_dir))?
        .ok_or_else(|| {
            ImportError::NotAnImage(
                "neither a SquashFS image nor an OCI or docker image archive".into(),
            )
        })?;
    let out_name = if req.name.is_some() {
        name.clone()
    } else {
        converted_name(&name)
    };
    check_name(&out_name)?;
    let _out_claim = if out_name != name {
        Some(
            claim_name(&dest_dir.join(&out_name))
                .ok_or_else(|| ImportError::Busy(out_name.clone()))?,
        )
    } else {
        None
    };
    let out = dest_dir.join(&out_name);
    let config = oci::convert(&tmp.0, &out).map_err(|e| match e {
        ConvertError::NoSpace => ImportError::NoSpace {
            needed: 0,
            available: available_space(dest_dir).unwrap_or(0),
        },
        e => ImportError::Convert(e),
    })?;
    drop(tmp);
    let (sha256, size) =
        hash_file(&out).map_err(ImportError::io("reading the converted image", dest_dir))?;
    drop(claim);
    tracing::info!(image = %out_name, sha256 = %sha256, ?kind, "image archive imported");
    Ok(Imported {
        name: out_name,
        path: out,
        sha256,
        download_sha256,
        size,
        converted_from: Some(kind),
        config: Some(config),
    })
}

/// Shared between libcurl's write and progress callbacks.
struct Sink<'p> {
    file: File,
    hasher: Sha256,
    written: u64,
    total: Option<u64>,
    /// `Content-Length` of the current HTTP response.
    header_length: Option<u64>,
    next_report: u64,
    last_space_check: u64,
    error: Option<ImportError>,
    progress: &'p mut dyn FnMut(Progress),
    name: String,
    dir: PathBuf,
}

/// Re-check free space every this many bytes.
const SPACE_CHECK_EVERY: u64 = 1 << 20;
/// Without a size, report every this many bytes.
const REPORT_EVERY_BYTES: u64 = 4 << 20;
/// With a size, report every this many percent.
const REPORT_EVERY_PERCENT: u64 = 5;

impl Sink<'_> {
    fn report(&mut self) {
        let percent = self
            .total
            .filter(|t| *t > 0)
            .map(|t| (self.written.min(t) * 100 / t) as u8);
        (self.progress)(Progress {
            name: self.name.clone(),
            bytes: self.written,
            total: self.total,
            percent,
        });
    }

    fn schedule_next(&mut self) {
        self.next_report = match self.total.filter(|t| *t > 0) {
            Some(t) => {
                let step = (t * REPORT_EVERY_PERCENT / 100).max(1);
                (self.written / step + 1) * step
            }
            None => (self.written / REPORT_EVERY_BYTES + 1) * REPORT_EVERY_BYTES,
        };
    }

    /// `Err` when the rest of the announced size does not fit.
    fn check_space(&mut self) -> Result<(), ImportError> {
        self.last_space_check = self.written;
        let available = available_space(&self.dir).map_err(|source| ImportError::Io {
            op: "checking free space".into(),
            source,
        })?;
        let needed = self.total.map_or(0, |t| t.saturating_sub(self.written));
        if available < needed || available == 0 {
            return Err(ImportError::NoSpace { needed, available });
        }
        Ok(())
    }

    fn write(&mut self, data: &[u8]) -> Result<(), ImportError> {
        if let Err(e) = self.file.write_all(data) {
            return Err(ImportError::io("writing the download", &self.dir)(e));
        }
        self.hasher.update(data);
        self.written += data.len() as u64;
        if self.written - self.last_space_check >= SPACE_CHECK_EVERY {
            self.check_space()?;
        }
        if self.written >= self.next_report {
            self.report();
            self.schedule_next();
        }
        Ok(())
    }

    /// The size became known (progress callback).
    fn set_total(&mut self, total: u64) -> Result<(), ImportError> {
        if self.total.is_some() {
            return Ok(());
        }
        self.total = Some(total);
        self.schedule_next();
        self.check_space()
    }
}

/// A libcurl handle set up for `req`: timeouts, TLS trust, ssh keys, and
/// only the URL's own protocol allowed.
fn configure(req: &ImportRequest, scheme: Scheme) -> Result<curl::easy::Easy, curl::Error> {
    let mut easy = curl::easy::Easy::new();
    easy.url(&req.url)?;
    easy.fail_on_error(true)?;
    easy.connect_timeout(req.connect_timeout.unwrap_or(Duration::from_secs(30)))?;
    easy.low_speed_limit(1)?;
    easy.low_speed_time(req.stall_timeout.unwrap_or(Duration::from_secs(60)))?;
    easy.progress(true)?;
    easy.signal(false)?;
    if matches!(scheme, Scheme::Http | Scheme::Https) {
        easy.follow_location(true)?;
        easy.max_redirections(5)?;
    }
    if let Some(ca) = &req.ca_file {
        easy.cainfo(ca)?;
    }
    // Only the URL's own protocol, and redirects only between http(s): a
    // redirect must not turn an https import into file:// or anything else.
    setopt_long(&easy, curl_sys::CURLOPT_PROTOCOLS, scheme.curl_proto())?;
    setopt_long(
        &easy,
        curl_sys::CURLOPT_REDIR_PROTOCOLS,
        Scheme::Http.curl_proto() | Scheme::Https.curl_proto(),
    )?;
    if let Some(k) = &req.ssh_private_key {
        setopt_path(&easy, curl_sys::CURLOPT_SSH_PRIVATE_KEYFILE, k)?;
        // Without a public key file libcurl would try ~/.ssh/id_dsa.pub; an
        // empty string makes libssh2 derive it from the private key.
        let public = req.ssh_public_key.clone().or_else(|| {
            let mut p = k.clone().into_os_string();
            p.push(".pub");
            Some(PathBuf::from(p)).filter(|p| p.is_file())
        });
        let public = public.unwrap_or_default();
        setopt_path(&easy, curl_sys::CURLOPT_SSH_PUBLIC_KEYFILE, &public)?;
    }
    if let Some(k) = &req.ssh_known_hosts {
        setopt_path(&easy, curl_sys::CURLOPT_SSH_KNOWNHOSTS, k)?;
    }
    Ok(easy)
}

/// The text of a curl failure, credentials removed.
fn transfer_error(e: &curl::Error, easy: &curl::easy::Easy, url: &str) -> ImportError {
    let msg = if e.is_http_returned_error() {
        format!(
            "the server answered HTTP {}",
            easy.response_code().unwrap_or(0)
        )
    } else {
        curl_message(e)
    };
    ImportError::Transfer(scrub(&msg, url))
}

/// Downloads a small document (e.g. a licence, RPC `install-license` with a
/// `url`) into memory, over the same protocols and options as [`import`].
/// Refuses more than `max_bytes`.
pub fn fetch(req: &ImportRequest, max_bytes: usize) -> Result<Vec<u8>, ImportError> {
    let url = parse_url(&req.url)?;
    tracing::info!(url = %redact_url(&req.url), "fetching");
    let curl_err = |e: curl::Error| ImportError::Transfer(scrub(&curl_message(&e), &req.url));
    let mut easy = configure(req, url.scheme).map_err(curl_err)?;
    let mut buf = Vec::new();
    let mut too_big = false;
    let result = {
        let mut t = easy.transfer();
        t.write_function(|data| {
            if buf.len() + data.len() > max_bytes {
                too_big = true;
                return Ok(0);
            }
            buf.extend_from_slice(data);
            Ok(data.len())
        })
        .map_err(curl_err)?;
        t.perform()
    };
    if too_big {
        return Err(ImportError::Transfer(format!(
            "more than {max_bytes} bytes"
        )));
    }
    result.map_err(|e| transfer_error(&e, &easy, &req.url))?;
    Ok(buf)
}

fn download(
    req: &ImportRequest,
    scheme: Scheme,
    name: &str,
    dir: &Path,
    file: File,
    progress: &mut dyn FnMut(Progress),
) -> Result<(String, u64), ImportError> {
    let curl_err = |e: curl::Error| ImportError::Transfer(scrub(&curl_message(&e), &req.url));
    let mut easy = configure(req, scheme).map_err(curl_err)?;

    let sink = RefCell::new(Sink {
        file,
        hasher: Sha256::new(),
        written: 0,
        total: None,
        header_length: None,
        next_report: REPORT_EVERY_BYTES,
        last_space_check: 0,
        error: None,
        progress,
        name: name.to_string(),
        dir: dir.to_path_buf(),
    });
    // A zero-size "needed" check up front: a full media fails before we
    // connect anywhere.
    sink.borrow_mut().check_space()?;
    let result = {
        let mut t = easy.transfer();
        t.header_function(|line| {
            // HTTP: the size is known from the final response's headers,
            // before the progress callback may have run; a status line
            // starts a new response (redirects).
            let mut s = sink.borrow_mut();
            if line.starts_with(b"HTTP/") {
                s.header_length = None;
            } else if let Some(v) = header_value(line, "content-length") {
                s.header_length = v.trim().parse().ok();
            }
            true
        })
        .map_err(curl_err)?;
        t.write_function(|data| {
            let mut s = sink.borrow_mut();
            if s.written == 0 && s.total.is_none() {
                if let Some(len) = s.header_length {
                    if let Err(e) = s.set_total(len) {
                        s.error = Some(e);
                        return Ok(0);
                    }
                }
            }
            match s.write(data) {
                Ok(()) => Ok(data.len()),
                Err(e) => {
                    s.error = Some(e);
                    Ok(0) // a short write makes libcurl abort
                }
            }
        })
        .map_err(curl_err)?;
        t.progress_function(|dltotal, _dlnow, _, _| {
            if dltotal >= 1.0 {
                let mut s = sink.borrow_mut();
                if s.error.is_none() {
                    if let Err(e) = s.set_total(dltotal as u64) {
                        s.error = Some(e);
                        return false;
                    }
                }
            }
            true
        })
        .map_err(curl_err)?;
        t.perform()
    };
    let mut s = sink.into_inner();
    if let Some(e) = s.error.take() {
        return Err(e);
    }
    if let Err(e) = result {
        if e.is_partial_file() {
            return Err(ImportError::Transfer(match s.total {
                Some(t) => format!(
                    "the transfer ended early: {} of {t} bytes received",
                    s.written
                ),
                None => format!("the transfer ended early after {} bytes", s.written),
            }));
        }
        return Err(transfer_error(&e, &easy, &req.url));
    }
    if let Some(t) = s.total {
        // libcurl catches short bodies for http/ftp; this covers the rest.
        if s.written != t {
            return Err(ImportError::Transfer(format!(
                "received {} bytes, {t} announced",
                s.written
            )));
        }
    }
    s.report();
    s.file
        .sync_all()
        .map_err(ImportError::io("writing the download", dir))?;
    Ok((hex::encode(s.hasher.finalize()), s.written))
}

/// The value of header `name` (lower case) in a raw header line.
fn header_value(line: &[u8], name: &str) -> Option<String> {
    let line = std::str::from_utf8(line).ok()?;
    let (k, v) = line.split_once(':')?;
    k.trim()
        .eq_ignore_ascii_case(name)
        .then(|| v.trim().to_string())
}

fn curl_message(e: &curl::Error) -> String {
    match e.extra_description() {
        Some(extra) if !extra.is_empty() => format!("{}: {}", e.description(), extra),
        _ => e.description().to_string(),
    }
}

fn setopt_long(
    easy: &curl::easy::Easy,
    opt: curl_sys::CURLoption,
    value: libc::c_long,
) -> Result<(), curl::Error> {
    // SAFETY: `easy.raw()` is a live handle owned by `easy`; `opt` is a
    // long-valued option, passed a long as curl_easy_setopt expects.
    let rc = unsafe { curl_sys::curl_easy_setopt(easy.raw(), opt, value) };
    if rc == curl_sys::CURLE_OK {
        Ok(())
    } else {
        Err(curl::Error::new(rc))
    }
}

fn setopt_path(
    easy: &curl::easy::Easy,
    opt: curl_sys::CURLoption,
    path: &Path,
) -> Result<(), curl::Error> {
    use std::os::unix::ffi::OsStrExt;
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| curl::Error::new(curl_sys::CURLE_BAD_FUNCTION_ARGUMENT))?;
    // SAFETY: `easy.raw()` is a live handle; `opt` is a string option and
    // libcurl copies string arguments (since 7.17), so `c` may be dropped after.
    let rc = unsafe { curl_sys::curl_easy_setopt(easy.raw(), opt, c.as_ptr()) };
    if rc == curl_sys::CURLE_OK {
        Ok(())
    } else {
        Err(curl::Error::new(rc))
    }
}

fn is_squashfs(path: &Path) -> io::Result<bool> {
    let mut magic = [0u8; 4];
    let mut f = File::open(path)?;
    let mut n = 0;
    while n < 4 {
        let k = f.read(&mut magic[n..])?;
        if k == 0 {
            return Ok(false);
        }
        n += k;
    }
    Ok(&magic == b"hsqs")
}

fn hash_file(path: &Path) -> io::Result<(String, u64)> {
    let mut f = File::open(path)?;
    let mut h = Sha256::new();
    let n = io::copy(&mut f, &mut h)?;
    Ok((hex::encode(h.finalize()), n))
}

fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction() {
        assert_eq!(
            redact_url("sftp://bob:s3cret@host:22/x.img"),
            "sftp://***@host:22/x.img"
        );
        assert_eq!(redact_url("http://host/a@b"), "http://host/a@b");
        let dbg = format!("{:?}", ImportRequest::new("ftp://bob:s3cret@h/x"));
        assert!(!dbg.contains("s3cret"), "{dbg}");
        let msg = scrub(
            "Login denied for bob:s3cret at sftp://bob:s3cret@host/x (pass s3cret)",
            "sftp://bob:s3cret@host/x",
        );
        assert!(!msg.contains("s3cret"), "{msg}");
    }

    #[test]
    fn urls() {
        let u = parse_url("HTTP://h/dir/busybox%2Da.img?x=1").unwrap();
        assert_eq!(u.scheme, Scheme::Http);
        assert_eq!(u.last_segment, "busybox-a.img");
        assert_eq!(
            parse_url("tftp://h/a.img;mode=octet").unwrap().last_segment,
            "a.img"
        );
        assert!(matches!(
            parse_url("file:///etc/passwd"),
            Err(ImportError::UnsupportedScheme(_))
        ));
        assert!(matches!(
            parse_url("gopher://h/x"),
            Err(ImportError::UnsupportedScheme(_))
        ));
        assert!(matches!(
            parse_url("http:///x"),
            Err(ImportError::InvalidUrl { .. })
        ));
        assert!(matches!(
            parse_url("nothing"),
            Err(ImportError::InvalidUrl { .. })
        ));
        let e = parse_url("http://u:pw@/x").err().unwrap().to_string();
        assert!(!e.contains("pw"), "{e}");
    }

    #[test]
    fn hostile_names_refused() {
        let dir = tempfile::tempdir().unwrap();
        for url in [
            "http://h/..",
            "http://h/",
            "http://h/%2e%2e%2fx",
            "http://h/a.json",
        ] {
            let e = import(&ImportRequest::new(url), dir.path(), &mut |_| {}).unwrap_err();
            assert!(matches!(e, ImportError::InvalidName { .. }), "{url}: {e}");
        }
        let mut req = ImportRequest::new("http://h/x.img");
        req.name = Some("../x".into());
        let e = import(&req, dir.path(), &mut |_| {}).unwrap_err();
        assert!(matches!(e, ImportError::InvalidName { .. }), "{e}");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn claims_are_exclusive() {
        let dir = tempfile::tempdir().unwrap();
        let a = claim_name(&dir.path().join("x")).unwrap();
        assert!(claim_name(&dir.path().join("x")).is_none());
        assert!(claim_name(&dir.path().join(".").join("x")).is_none());
        drop(a);
        assert!(claim_name(&dir.path().join("x")).is_some());
    }

    #[test]
    fn converted_names() {
        assert_eq!(converted_name("busybox.tar"), "busybox.img");
        assert_eq!(converted_name("busybox.tar.gz"), "busybox.img");
        assert_eq!(converted_name("x.img"), "x.img");
    }
}
