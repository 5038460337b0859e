//! Images and labels. Media are named mount points from the agent
//! configuration; images are `*.img` / `*.squashfs` files under
//! `<media>/<storage path>`; labels live ON the media beside the images
//! (`.labels.json`, written atomically) so they survive an agent
//! reinstall and travel with a removable media.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use sha2::{Digest, Sha256};

use super::model::Storage;

/// File holding the labels of the images in its directory.
pub const LABELS_FILE: &str = ".labels.json";

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("unknown media '{0}'")]
    UnknownMedia(String),
    #[error("no image '{0}' in the storage path")]
    NoImage(String),
    #[error("invalid image name '{0}'")]
    BadImageName(String),
    #[error(
        "invalid label '{0}': 1-15 characters [A-Za-z0-9_.+-], starting with a letter or digit"
    )]
    BadLabel(String),
    #[error("no label '{0}'")]
    NoLabel(String),
    #[error("path '{path}' escapes media '{media}'")]
    Escapes { media: String, path: String },
    #[error("{op}: {source}")]
    Io {
        op: String,
        #[source]
        source: std::io::Error,
    },
    #[error("labels file {path}: {msg}")]
    BadLabelsFile { path: PathBuf, msg: String },
}

fn io(op: impl Into<String>) -> impl FnOnce(std::io::Error) -> ImageError {
    let op = op.into();
    move |source| ImageError::Io { op, source }
}

/// One image file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageInfo {
    pub name: String,
    pub path: PathBuf,
    pub size: u64,
    /// None when the file could not be read.
    pub sha256: Option<String>,
    pub labels: Vec<String>,
}

/// One media.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaInfo {
    pub name: String,
    pub path: PathBuf,
    pub available: bool,
    pub size: u64,
    pub free: u64,
}

/// The image store of the configured storage.
pub struct Images {
    media: HashMap<String, PathBuf>,
    storage: Storage,
    /// sha256 by path, valid while (size, mtime) are unchanged: hashing big
    /// images on every `<get>` would be far too slow.
    hashes: Mutex<HashMap<PathBuf, (u64, SystemTime, String)>>,
}

/// Label syntax (typedef `label`).
pub fn valid_label(l: &str) -> bool {
    valid_name(l, 15)
}

/// Image name syntax (typedef `image-name`), plus an image extension.
pub fn valid_image_name(n: &str) -> bool {
    valid_name(n, 255) && (n.ends_with(".img") || n.ends_with(".squashfs"))
}

fn valid_name(s: &str, max: usize) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= max
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'+' | b'-'))
}

impl Images {
    pub fn new(media: HashMap<String, PathBuf>, storage: Storage) -> Self {
        Images {
            media,
            storage,
            hashes: Mutex::new(HashMap::new()),
        }
    }

    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    /// Follows the configuration's `storage` (media, path).
    pub fn set_storage(&mut self, storage: Storage) {
        self.storage = storage;
    }

    pub fn media_root(&self, media: &str) -> Result<&Path, ImageError> {
        self.media
            .get(media)
            .map(|p| p.as_path())
            .ok_or_else(|| ImageError::UnknownMedia(media.to_string()))
    }

    /// `<media>/<storage path>`.
    pub fn dir(&self) -> Result<PathBuf, ImageError> {
        let root = self.media_root(&self.storage.media)?;
        let rel = relative(&self.storage.media, &self.storage.path)?;
        Ok(root.join(rel))
    }

    /// Image files (name, path), sorted by name.
    pub fn files(&self) -> Result<Vec<(String, PathBuf)>, ImageError> {
        let dir = self.dir()?;
        let rd = match fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io(format!("read {}", dir.display()))(e)),
        };
        let mut out = Vec::new();
        for entry in rd.flatten() {
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            if !valid_image_name(&name) {
                continue;
            }
            let path = entry.path();
            if fs::metadata(&path).is_ok_and(|m| m.is_file()) {
                out.push((name, path));
            }
        }
        out.sort();
        Ok(out)
    }

    /// label → image name.
    pub fn labels(&self) -> Result<BTreeMap<String, String>, ImageError> {
        let path = self.dir()?.join(LABELS_FILE);
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
            Err(e) => return Err(io(format!("read {}", path.display()))(e)),
        };
        let map: BTreeMap<String, String> =
            serde_json::from_str(&text).map_err(|e| ImageError::BadLabelsFile {
                path: path.clone(),
                msg: e.to_string(),
            })?;
        Ok(map
            .into_iter()
            .filter(|(l, i)| valid_label(l) && valid_image_name(i))
            .collect())
    }

    fn write_labels(&self, labels: &BTreeMap<String, String>) -> Result<(), ImageError> {
        let dir = self.dir()?;
        let text = serde_json::to_string_pretty(labels).map_err(|e| ImageError::BadLabelsFile {
            path: dir.join(LABELS_FILE),
            msg: e.to_string(),
        })?;
        write_atomic(&dir, LABELS_FILE, text.as_bytes())
    }

    /// Puts `label` on `image`; a label on another image moves.
    pub fn set_label(&self, image: &str, label: &str) -> Result<(), ImageError> {
        if !valid_label(label) {
            return Err(ImageError::BadLabel(label.to_string()));
        }
        if !valid_image_name(image) {
            return Err(ImageError::BadImageName(image.to_string()));
        }
        if !self.files()?.iter().any(|(n, _)| n == image) {
            return Err(ImageError::NoImage(image.to_string()));
        }
        let mut labels = self.labels()?;
        labels.insert(label.to_string(), image.to_string());
        self.write_labels(&labels)
    }

    pub fn remove_label(&self, label: &str) -> Result<(), ImageError> {
        let mut labels = self.labels()?;
        if labels.remove(label).is_none() {
            return Err(ImageError::NoLabel(label.to_string()));
        }
        self.write_labels(&labels)
    }

    /// The image file a label points at, if both exist.
    pub fn resolve(&self, label: &str) -> Option<PathBuf> {
        let labels = self.labels().ok()?;
        let image = labels.get(label)?;
        let path = self.dir().ok()?.join(image);
        fs::metadata(&path)
            .is_ok_and(|m| m.is_file())
            .then_some(path)
    }

    /// Every image with size, sha256 and labels.
    pub fn list(&self) -> Result<Vec<ImageInfo>, ImageError> {
        let labels = self.labels().unwrap_or_else(|e| {
            tracing::warn!(error = %e, "labels unreadable");
            BTreeMap::new()
        });
        let mut out = Vec::new();
        for (name, path) in self.files()? {
            let size = fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            let sha256 = self.sha256(&path).ok();
            let l = labels
                .iter()
                .filter(|(_, i)| **i == name)
                .map(|(l, _)| l.clone())
                .collect();
            out.push(ImageInfo {
                name,
                path,
                size,
                sha256,
                labels: l,
            });
        }
        Ok(out)
    }

    /// SHA-256 of a file, cached by (size, mtime).
    pub fn sha256(&self, path: &Path) -> Result<String, ImageError> {
        let meta = fs::metadata(path).map_err(io(format!("stat {}", path.display())))?;
        let mtime = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
        if let Ok(cache) = self.hashes.lock() {
            if let Some((s, m, h)) = cache.get(path) {
                if *s == meta.len() && *m == mtime {
                    return Ok(h.clone());
                }
            }
        }
        let mut f = fs::File::open(path).map_err(io(format!("open {}", path.display())))?;
        let mut h = Sha256::new();
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = f
                .read(&mut buf)
                .map_err(io(format!("read {}", path.display())))?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
        let hex = hex::encode(h.finalize());
        if let Ok(mut cache) = self.hashes.lock() {
            cache.insert(path.to_path_buf(), (meta.len(), mtime, hex.clone()));
        }
        Ok(hex)
    }

    /// The media known to the agent, with filesystem size and free space.
    pub fn media_list(&self) -> Vec<MediaInfo> {
        let mut names: Vec<_> = self.media.keys().cloned().collect();
        names.sort();
        names
            .into_iter()
            .map(|name| {
                let path = self.media[&name].clone();
                let available = path.is_dir();
                let (size, free) = match nix::sys::statvfs::statvfs(&path) {
                    // statvfs field types differ between 32- and 64-bit
                    // targets (embedded devices are often 32-bit).
                    #[allow(clippy::unnecessary_cast)]
                    Ok(s) if available => {
                        let f = s.fragment_size() as u64;
                        (s.blocks() as u64 * f, s.blocks_available() as u64 * f)
                    }
                    _ => (0, 0),
                };
                MediaInfo {
                    name,
                    path,
                    available,
                    size,
                    free,
                }
            })
            .collect()
    }

    /// The host directory of a media share, checked to stay inside its
    /// media after resolving symlinks. With `create`, missing directories
    /// are created one level at a time (each checked before going deeper,
    /// so a symlink cannot make us create anything outside the media).
    pub fn share_path(&self, media: &str, path: &str, create: bool) -> Result<PathBuf, ImageError> {
        let root = self.media_root(media)?;
        let base =
            fs::canonicalize(root).map_err(io(format!("media {media} at {}", root.display())))?;
        let rel = relative(media, path)?;
        let escapes = || ImageError::Escapes {
            media: media.to_string(),
            path: path.to_string(),
        };
        let mut cur = base.clone();
        for comp in rel.components() {
            let Component::Normal(c) = comp else {
                return Err(escapes());
            };
            let next = cur.join(c);
            match fs::symlink_metadata(&next) {
                Ok(_) => {
                    let canon = fs::canonicalize(&next).map_err(|_| escapes())?;
                    if !canon.starts_with(&base) {
                        return Err(escapes());
                    }
                    cur = canon;
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    if create {
                        fs::create_dir(&next).map_err(io(format!("create {}", next.display())))?;
                    }
                    cur = next;
                }
                Err(e) => return Err(io(format!("stat {}", next.display()))(e)),
            }
        }
        if create && !cur.is_dir() {
            return Err(ImageError::Io {
                op: format!("share {}", cur.display()),
                source: std::io::Error::other("not a directory"),
            });
        }
        Ok(cur)
    }
}

/// A configured relative path as a `PathBuf`, refusing `..`, absolute paths
/// and anything but plain names.
fn relative(media: &str, path: &str) -> Result<PathBuf, ImageError> {
    let p = Path::new(path);
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir => {}
            _ => {
                return Err(ImageError::Escapes {
                    media: media.to_string(),
                    path: path.to_string(),
                })
            }
        }
    }
    Ok(out)
}

/// Writes `dir/name` atomically: temp file, fsync, rename, fsync dir.
pub fn write_atomic(dir: &Path, name: &str, data: &[u8]) -> Result<(), ImageError> {
    fs::create_dir_all(dir).map_err(io(format!("create {}", dir.display())))?;
    let tmp = dir.join(format!(".{name}.tmp"));
    let target = dir.join(name);
    let mut f = fs::File::create(&tmp).map_err(io(format!("create {}", tmp.display())))?;
    f.write_all(data)
        .map_err(io(format!("write {}", tmp.display())))?;
    f.sync_all()
        .map_err(io(format!("fsync {}", tmp.display())))?;
    drop(f);
    fs::rename(&tmp, &target).map_err(io(format!("rename to {}", target.display())))?;
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> (tempfile::TempDir, Images) {
        let t = tempfile::tempdir().unwrap();
        let media = t.path().join("ext");
        fs::create_dir_all(media.join("app/images")).unwrap();
        fs::write(media.join("app/images/a.img"), b"image a").unwrap();
        fs::write(media.join("app/images/b.squashfs"), b"image bb").unwrap();
        fs::write(media.join("app/images/notes.txt"), b"x").unwrap();
        let mut m = HashMap::new();
        m.insert("external".to_string(), media);
        (t, Images::new(m, Storage::default()))
    }

    #[test]
    fn lists_images_only() {
        let (_t, im) = setup();
        let l = im.list().unwrap();
        let names: Vec<_> = l.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names, vec!["a.img", "b.squashfs"]);
        assert_eq!(l[0].size, 7);
        assert_eq!(
            l[0].sha256.as_deref(),
            Some(hex::encode(Sha256::digest(b"image a")).as_str())
        );
    }

    #[test]
    fn set_move_remove_resolve_and_persist() {
        let (t, im) = setup();
        assert_eq!(im.resolve("web"), None);
        im.set_label("a.img", "web").unwrap();
        assert_eq!(im.resolve("web"), Some(im.dir().unwrap().join("a.img")));
        // The label moves.
        im.set_label("b.squashfs", "web").unwrap();
        assert_eq!(
            im.resolve("web"),
            Some(im.dir().unwrap().join("b.squashfs"))
        );
        im.set_label("b.squashfs", "web2").unwrap();
        let l = im.list().unwrap();
        assert!(l[0].labels.is_empty());
        assert_eq!(l[1].labels, vec!["web", "web2"]);
        // A new instance (agent reinstall) reads them from the media.
        let mut m = HashMap::new();
        m.insert("external".to_string(), t.path().join("ext"));
        let im2 = Images::new(m, Storage::default());
        assert_eq!(
            im2.labels().unwrap().get("web").map(String::as_str),
            Some("b.squashfs")
        );
        im2.remove_label("web").unwrap();
        assert_eq!(im2.resolve("web"), None);
        assert!(matches!(
            im2.remove_label("web"),
            Err(ImageError::NoLabel(_))
        ));
        assert!(im2.resolve("web2").is_some());
    }

    #[test]
    fn label_errors() {
        let (_t, im) = setup();
        assert!(matches!(
            im.set_label("a.img", "this-is-too-long-label"),
            Err(ImageError::BadLabel(_))
        ));
        assert!(matches!(
            im.set_label("a.img", "-x"),
            Err(ImageError::BadLabel(_))
        ));
        assert!(matches!(
            im.set_label("nope.img", "x"),
            Err(ImageError::NoImage(_))
        ));
        assert!(matches!(
            im.set_label("../a.img", "x"),
            Err(ImageError::BadImageName(_))
        ));
    }

    #[test]
    fn resolve_of_deleted_image_is_none() {
        let (_t, im) = setup();
        im.set_label("a.img", "web").unwrap();
        fs::remove_file(im.dir().unwrap().join("a.img")).unwrap();
        assert_eq!(im.resolve("web"), None);
    }

    #[test]
    fn sha_cache_follows_changes() {
        let (_t, im) = setup();
        let p = im.dir().unwrap().join("a.img");
        let h1 = im.sha256(&p).unwrap();
        fs::write(&p, b"a different content").unwrap();
        let h2 = im.sha256(&p).unwrap();
        assert_ne!(h1, h2);
        assert_eq!(h2, hex::encode(Sha256::digest(b"a different content")));
    }

    #[test]
    fn share_path_created_inside_media() {
        let (t, im) = setup();
        let p = im.share_path("external", "data/www/", true).unwrap();
        assert!(p.is_dir());
        assert!(p.starts_with(fs::canonicalize(t.path().join("ext")).unwrap()));
        // Check-only mode creates nothing.
        let q = im.share_path("external", "other/x", false).unwrap();
        assert!(!q.exists());
    }

    #[test]
    fn share_path_escapes_refused() {
        let (t, im) = setup();
        let outside = t.path().join("outside");
        fs::create_dir_all(&outside).unwrap();
        std::os::unix::fs::symlink(&outside, t.path().join("ext/link")).unwrap();
        assert!(matches!(
            im.share_path("external", "../outside", true),
            Err(ImageError::Escapes { .. })
        ));
        assert!(matches!(
            im.share_path("external", "link", true),
            Err(ImageError::Escapes { .. })
        ));
        // A symlink escape is refused before anything is created below it.
        assert!(matches!(
            im.share_path("external", "link/new", true),
            Err(ImageError::Escapes { .. })
        ));
        assert!(!outside.join("new").exists());
        assert!(matches!(
            im.share_path("nomedia", "x", true),
            Err(ImageError::UnknownMedia(_))
        ));
        // A symlink that stays inside is fine.
        fs::create_dir_all(t.path().join("ext/real")).unwrap();
        std::os::unix::fs::symlink("real", t.path().join("ext/alias")).unwrap();
        assert!(im
            .share_path("external", "alias/sub", true)
            .unwrap()
            .ends_with("real/sub"));
    }

    #[test]
    fn media_list_reports_sizes() {
        let (_t, mut im) = setup();
        im.media
            .insert("gone".into(), PathBuf::from("/nonexistent/media"));
        let l = im.media_list();
        assert_eq!(l.len(), 2);
        assert!(l[0].available && l[0].size > 0 && l[0].free <= l[0].size);
        assert!(!l[1].available && l[1].size == 0);
    }
}
