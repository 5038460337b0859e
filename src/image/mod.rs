//! Application images on the storage media: import (download, verify, convert),
//! OCI archive flattening, deletion.
//!
//! An image is a SquashFS file `NAME` in the storage directory. An image made
//! from an OCI archive also has `NAME` with its extension replaced by `.json`
//! (e.g. `busybox.img` → `busybox.json`): the OCI image config's `config`
//! object (`Entrypoint`, `Cmd`, `Env`, `WorkingDir`, `User`), read by the
//! reconciler when it starts an app.
//!
//! Everything here is blocking; the agent runs it in `spawn_blocking`.

pub mod import;
pub mod oci;

use std::io;
use std::path::{Path, PathBuf};

pub use import::{fetch, import, redact_url, ImportError, ImportRequest, Imported, Progress};
pub use oci::{convert, ConvertError, ImageConfig};

/// Maximum length of an image name (YANG typedef `image-name`).
pub const NAME_MAX: usize = 255;

/// True when `name` matches the YANG `image-name` type:
/// `[A-Za-z0-9][A-Za-z0-9_.+-]*`, 1..255 characters. Such a name has no `/`
/// and cannot be `.` or `..`, so it is safe to join to the storage directory.
pub fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    name.len() <= NAME_MAX
        && first.is_ascii_alphanumeric()
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '+' | '-'))
}

/// Where the OCI image config of image `img` lives: its extension replaced
/// by `.json` (`a.img` → `a.json`, `a` → `a.json`).
pub fn config_path(img: &Path) -> PathBuf {
    img.with_extension("json")
}

/// Reads the image config written beside an image converted from an OCI
/// archive. `Ok(None)` when the image has none (a plain SquashFS image).
pub fn read_config(img: &Path) -> Result<Option<ImageConfig>, io::Error> {
    let path = config_path(img);
    if path == img {
        return Ok(None);
    }
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Removes what an interrupted import or conversion left in `dir` (agent
/// crash, power loss): `.NAME.partial-*` files and `.rootfs-*` scratch trees.
/// Call at start, before any import runs. Returns how many were removed.
/// (Listings of images should skip names starting with `.`: valid image names
/// never do.)
pub fn remove_leftovers(dir: &Path) -> io::Result<usize> {
    let mut n = 0;
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        if !name.starts_with('.') {
            continue;
        }
        let path = e.path();
        if name.starts_with(".rootfs-") && e.file_type()?.is_dir() {
            std::fs::remove_dir_all(&path)?;
            n += 1;
        } else if name.contains(".partial-") && !e.file_type()?.is_dir() {
            std::fs::remove_file(&path)?;
            n += 1;
        }
    }
    Ok(n)
}

#[derive(Debug, thiserror::Error)]
pub enum DeleteError {
    #[error("invalid image name {0:?}")]
    InvalidName(String),
    #[error("image {0:?} does not exist")]
    NotFound(String),
    #[error("image {0:?} is used by a running application")]
    InUse(String),
    #[error("image {0:?} is being imported")]
    Busy(String),
    #[error("cannot delete image {name:?}: {source}")]
    Io {
        name: String,
        #[source]
        source: io::Error,
    },
}

/// Deletes image `name` from `dir` with its `.json` config, unless
/// `in_use(name)` says a running app uses it, or an import of that name is in
/// progress.
pub fn delete(dir: &Path, name: &str, in_use: &dyn Fn(&str) -> bool) -> Result<(), DeleteError> {
    if !valid_name(name) {
        return Err(DeleteError::InvalidName(name.to_string()));
    }
    let img = dir.join(name);
    // Hold the name so that no import renames a new file into place while we
    // delete (and so that we do not delete what an import just finished).
    let _claim = import::claim_name(&img).ok_or_else(|| DeleteError::Busy(name.to_string()))?;
    match std::fs::symlink_metadata(&img) {
        Ok(m) if m.is_file() => {}
        Ok(_) => return Err(DeleteError::NotFound(name.to_string())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(DeleteError::NotFound(name.to_string()))
        }
        Err(source) => {
            return Err(DeleteError::Io {
                name: name.to_string(),
                source,
            })
        }
    }
    if in_use(name) {
        return Err(DeleteError::InUse(name.to_string()));
    }
    let io_err = |source| DeleteError::Io {
        name: name.to_string(),
        source,
    };
    std::fs::remove_file(&img).map_err(io_err)?;
    let cfg = config_path(&img);
    if cfg != img {
        match std::fs::remove_file(&cfg) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(e)),
        }
    }
    Ok(())
}

// ===== rpc-errors =====

use crate::error::{ErrorTag, RpcError};

impl ImportError {
    /// The `<rpc-error>` for RPC `import-image`. The message is the error's
    /// text (credentials already removed); the app-tag names the case.
    pub fn rpc_error(&self) -> RpcError {
        let (tag, app_tag, bad) = match self {
            ImportError::InvalidUrl { .. } => (ErrorTag::InvalidValue, "invalid-url", Some("url")),
            ImportError::UnsupportedScheme(_) => {
                (ErrorTag::InvalidValue, "unsupported-scheme", Some("url"))
            }
            ImportError::InvalidName { .. } => {
                (ErrorTag::InvalidValue, "invalid-name", Some("name"))
            }
            ImportError::InvalidSha256(_) => {
                (ErrorTag::InvalidValue, "invalid-sha256", Some("sha256"))
            }
            ImportError::Busy(_) => (ErrorTag::InUse, "image-busy", None),
            ImportError::NoSpace { .. } => (ErrorTag::ResourceDenied, "no-space", None),
            ImportError::ChecksumMismatch { .. } => (
                ErrorTag::OperationFailed,
                "checksum-mismatch",
                Some("sha256"),
            ),
            ImportError::NotAnImage(_) => (ErrorTag::OperationFailed, "not-an-image", None),
            ImportError::Transfer(_) => (ErrorTag::OperationFailed, "transfer-failed", None),
            ImportError::Convert(_) => (ErrorTag::OperationFailed, "conversion-failed", None),
            ImportError::Io { .. } => (ErrorTag::OperationFailed, "storage-error", None),
        };
        let e = RpcError::app(tag, self.to_string()).with_app_tag(app_tag);
        match bad {
            Some(leaf) => e.with_info("bad-element", leaf),
            None => e,
        }
    }
}

impl DeleteError {
    /// The `<rpc-error>` for RPC `delete-image`.
    pub fn rpc_error(&self) -> RpcError {
        let (tag, app_tag) = match self {
            DeleteError::InvalidName(_) => (ErrorTag::InvalidValue, "invalid-name"),
            DeleteError::NotFound(_) => (ErrorTag::DataMissing, "no-such-image"),
            DeleteError::InUse(_) => (ErrorTag::InUse, "image-in-use"),
            DeleteError::Busy(_) => (ErrorTag::InUse, "image-busy"),
            DeleteError::Io { .. } => (ErrorTag::OperationFailed, "storage-error"),
        };
        RpcError::app(tag, self.to_string()).with_app_tag(app_tag)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in ["a", "busybox-a.img", "A_1.2+3-x", "a..b"] {
            assert!(valid_name(ok), "{ok}");
        }
        let long = "a".repeat(256);
        for bad in [
            "", ".", "..", "../x", "a/b", ".hidden", "-x", "a b", "é", &long,
        ] {
            assert!(!valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn config_path_replaces_extension() {
        assert_eq!(config_path(Path::new("/m/a.img")), Path::new("/m/a.json"));
        assert_eq!(config_path(Path::new("/m/a")), Path::new("/m/a.json"));
    }

    #[test]
    fn leftovers_removed() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("a.img"), b"hsqs").unwrap();
        std::fs::write(d.join(".a.img.partial-0123abcd"), b"x").unwrap();
        std::fs::write(d.join(".b.img.partial-0123abcd.json"), b"x").unwrap();
        std::fs::create_dir_all(d.join(".rootfs-99/etc")).unwrap();
        std::fs::write(d.join(".keep"), b"x").unwrap();
        assert_eq!(remove_leftovers(d).unwrap(), 3);
        let mut left: Vec<_> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left, [".keep", "a.img"]);
    }

    #[test]
    fn rpc_errors() {
        let e = DeleteError::InUse("x.img".into()).rpc_error();
        assert_eq!(e.tag, ErrorTag::InUse);
        assert_eq!(e.app_tag.as_deref(), Some("image-in-use"));
        let e = ImportError::NoSpace {
            needed: 2,
            available: 1,
        }
        .rpc_error();
        assert_eq!(e.tag, ErrorTag::ResourceDenied);
        let e = ImportError::UnsupportedScheme("file".into()).rpc_error();
        assert_eq!(e.info, [("bad-element".to_string(), "url".to_string())]);
    }

    #[test]
    fn delete_refuses_in_use_and_removes_config() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("x.img"), b"hsqs").unwrap();
        std::fs::write(dir.path().join("x.json"), b"{}").unwrap();
        let e = delete(dir.path(), "x.img", &|n| n == "x.img").unwrap_err();
        assert!(matches!(e, DeleteError::InUse(_)), "{e}");
        assert!(dir.path().join("x.img").exists());
        delete(dir.path(), "x.img", &|_| false).unwrap();
        assert!(!dir.path().join("x.img").exists());
        assert!(!dir.path().join("x.json").exists());
        let e = delete(dir.path(), "x.img", &|_| false).unwrap_err();
        assert!(matches!(e, DeleteError::NotFound(_)), "{e}");
        let e = delete(dir.path(), "../x.img", &|_| false).unwrap_err();
        assert!(matches!(e, DeleteError::InvalidName(_)), "{e}");
    }
}
