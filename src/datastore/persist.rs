//! Persistence of the running and startup datastores in a state directory.
//!
//! Files (all in the state directory, mode 0600, directory 0700):
//! - `running.xml`, `startup.xml`: the datastore as readable XML (libyang
//!   printer, all top-level siblings, with-defaults `explicit`).
//! - `running.xml.prev`, `startup.xml.prev`: the previous good copy, the
//!   fallback when the current file turns out to be corrupt.
//! - `boot_id`: the kernel boot id at the last agent start.
//! - `NAME.corrupt-<unix time>`: a file that failed to parse or validate, set
//!   aside (never deleted) so an operator can inspect it.
//!
//! A save is atomic: the new content goes to `NAME.tmp`, is fsync'ed, the
//! current file is hard-linked to `NAME.prev`, the temp file is renamed over
//! `NAME`, and the directory is fsync'ed. A crash at any instant leaves
//! `NAME` either wholly old or wholly new.
//!
//! Start-up rule: the running datastore survives an agent restart within one
//! boot (same `/proc/sys/kernel/random/boot_id`), but after a reboot running
//! starts as a copy of startup, as on a network device.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use yang2::data::{
    Data, DataFormat, DataParserFlags, DataPrinterFlags, DataTree, DataValidationFlags,
};

use super::{DsName, Saver};
use crate::schema;

/// File holding running.
pub const RUNNING_FILE: &str = "running.xml";
/// File holding startup.
pub const STARTUP_FILE: &str = "startup.xml";
/// File holding the boot id of the last start.
pub const BOOT_ID_FILE: &str = "boot_id";
/// Where the kernel tells the current boot id.
const KERNEL_BOOT_ID: &str = "/proc/sys/kernel/random/boot_id";

/// Suffix of the previous good copy.
const PREV_SUFFIX: &str = ".prev";
/// Suffix of a file being written.
const TMP_SUFFIX: &str = ".tmp";

#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("printing the {ds} datastore: {source}")]
    Print {
        ds: &'static str,
        #[source]
        source: yang2::Error,
    },
    #[error("copying startup into running: {0}")]
    Duplicate(#[source] yang2::Error),
    #[error("the kernel boot id ({KERNEL_BOOT_ID}) is empty")]
    EmptyBootId,
}

/// Attaches the operation and path to an I/O error.
fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> PersistError + 'a {
    move |source| PersistError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// The datastores found at start-up.
pub struct Loaded {
    pub running: DataTree<'static>,
    pub startup: DataTree<'static>,
    /// Problems found and worked around (corrupt files set aside, fallbacks
    /// used). Also logged at error level; the daemon may surface them.
    pub warnings: Vec<String>,
}

/// The state directory. Saves are synchronous and do not lock: one owner
/// (the datastore mutex) calls [`Store::save`].
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
}

/// Where a loaded tree came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    Current,
    Previous,
}

impl Store {
    /// Opens (creating it, mode 0700, if missing) the state directory and
    /// loads running and startup following the boot-id rule.
    pub fn open(state_dir: &Path) -> Result<(Store, Loaded), PersistError> {
        let boot_id = kernel_boot_id()?;
        Self::open_with_boot_id(state_dir, &boot_id)
    }

    /// As [`Store::open`], with the current boot id given (tests simulate
    /// reboots with it).
    pub fn open_with_boot_id(
        state_dir: &Path,
        boot_id: &str,
    ) -> Result<(Store, Loaded), PersistError> {
        let boot_id = boot_id.trim();
        if boot_id.is_empty() {
            return Err(PersistError::EmptyBootId);
        }
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(state_dir)
            .map_err(io_err("creating", state_dir))?;
        // The directory may predate us (created by someone else, or with the
        // default umask): the datastores can hold secrets (environment
        // values), so it is made private.
        let mode = fs::metadata(state_dir)
            .map_err(io_err("reading", state_dir))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            tracing::warn!(dir = %state_dir.display(), mode = format!("{:o}", mode & 0o777), "state directory was accessible to others; setting mode 0700");
            fs::set_permissions(state_dir, fs::Permissions::from_mode(0o700))
                .map_err(io_err("setting mode 0700 on", state_dir))?;
        }
        let store = Store {
            dir: state_dir.to_path_buf(),
        };
        store.remove_stale_temps()?;

        let mut warnings = Vec::new();
        let startup = match store.load(STARTUP_FILE, &mut warnings)? {
            Some((tree, _)) => tree,
            None => super::empty_config(),
        };

        let saved_boot_id = store.read_boot_id()?;
        let same_boot = saved_boot_id.as_deref() == Some(boot_id);
        let running = if same_boot {
            match store.load(RUNNING_FILE, &mut warnings)? {
                Some((tree, Origin::Current)) => {
                    tracing::info!(dir = %store.dir.display(), "agent restart within the same boot: running restored");
                    tree
                }
                Some((tree, Origin::Previous)) => {
                    // Make running.xml whole again at once, so the next start
                    // does not go through the fallback a second time.
                    store.save(DsName::Running, &tree)?;
                    tree
                }
                None => {
                    let msg = format!(
                        "{}: no usable running configuration within the same boot; running starts as a copy of startup",
                        store.dir.join(RUNNING_FILE).display()
                    );
                    tracing::error!("{msg}");
                    warnings.push(msg);
                    let tree = startup.duplicate().map_err(PersistError::Duplicate)?;
                    store.save(DsName::Running, &tree)?;
                    tree
                }
            }
        } else {
            tracing::info!(dir = %store.dir.display(), "first start in this boot: running is a copy of startup");
            let tree = startup.duplicate().map_err(PersistError::Duplicate)?;
            // running.xml must hold this boot's running before the boot id
            // is recorded: a restart in between still counts as a fresh boot.
            store.save(DsName::Running, &tree)?;
            tree
        };
        if !same_boot {
            store.write_atomic(BOOT_ID_FILE, format!("{boot_id}\n").as_bytes(), false)?;
        }
        Ok((
            store,
            Loaded {
                running,
                startup,
                warnings,
            },
        ))
    }

    /// A handle on a state directory that loads nothing, for writing other
    /// state files there with [`Store::write_atomic`].
    pub(crate) fn at(state_dir: &Path) -> Store {
        Store {
            dir: state_dir.to_path_buf(),
        }
    }

    /// The state directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Saves running or startup atomically. Candidate is not persisted
    /// (RFC 6241 §8.3: it is a scratch area); saving it does nothing.
    pub fn save(&self, ds: DsName, tree: &DataTree<'static>) -> Result<(), PersistError> {
        let name = match ds {
            DsName::Running => RUNNING_FILE,
            DsName::Startup => STARTUP_FILE,
            DsName::Candidate => return Ok(()),
        };
        let text = tree
            .print_string(
                DataFormat::XML,
                DataPrinterFlags::WITH_SIBLINGS | DataPrinterFlags::WD_EXPLICIT,
            )
            .map_err(|source| PersistError::Print {
                ds: ds.as_str(),
                source,
            })?
            .unwrap_or_default();
        self.write_atomic(name, text.as_bytes(), true)
    }

    /// Turns the store into the datastores' persistence callback.
    pub fn into_saver(self) -> Saver {
        Box::new(move |ds, tree| self.save(ds, tree).map_err(|e| e.to_string()))
    }

    // ===== helper functions =====

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Temp files are never authoritative: a crash mid-save leaves them.
    fn remove_stale_temps(&self) -> Result<(), PersistError> {
        for name in [RUNNING_FILE, STARTUP_FILE, BOOT_ID_FILE] {
            for tmp in [
                format!("{name}{TMP_SUFFIX}"),
                format!("{name}{PREV_SUFFIX}{TMP_SUFFIX}"),
            ] {
                remove_if_present(&self.path(&tmp))?;
            }
        }
        Ok(())
    }

    fn read_boot_id(&self) -> Result<Option<String>, PersistError> {
        let path = self.path(BOOT_ID_FILE);
        match fs::read_to_string(&path) {
            Ok(s) => Ok(Some(s.trim().to_string())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err("reading", &path)(e)),
        }
    }

    /// Loads `name`, else its previous copy. A file that does not parse or
    /// validate is set aside and reported. `None` when neither is usable.
    /// An unreadable file (other than missing) is an error: starting with
    /// an empty configuration would overwrite it at the next save.
    fn load(
        &self,
        name: &str,
        warnings: &mut Vec<String>,
    ) -> Result<Option<(DataTree<'static>, Origin)>, PersistError> {
        let prev = format!("{name}{PREV_SUFFIX}");
        for (file, origin) in [(name, Origin::Current), (prev.as_str(), Origin::Previous)] {
            let path = self.path(file);
            let bytes = match fs::read(&path) {
                Ok(b) => b,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_err("reading", &path)(e)),
            };
            match parse_saved(&bytes) {
                Ok(tree) => {
                    if origin == Origin::Previous {
                        let msg = format!("{}: using the previous good copy", path.display());
                        tracing::error!("{msg}");
                        warnings.push(msg);
                    }
                    return Ok(Some((tree, origin)));
                }
                Err(reason) => {
                    let aside = self.set_aside(&path)?;
                    let msg = format!(
                        "{}: corrupt or invalid ({reason}); moved to {}",
                        path.display(),
                        aside.display()
                    );
                    tracing::error!("{msg}");
                    warnings.push(msg);
                }
            }
        }
        Ok(None)
    }

    /// Renames a bad file to `NAME.corrupt-<unix time>[-N]`.
    fn set_aside(&self, path: &Path) -> Result<PathBuf, PersistError> {
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let base = format!("{}.corrupt-{secs}", path.display());
        let mut target = PathBuf::from(&base);
        let mut n = 1;
        while target.exists() {
            target = PathBuf::from(format!("{base}-{n}"));
            n += 1;
        }
        fs::rename(path, &target).map_err(io_err("setting aside", path))?;
        self.sync_dir()?;
        Ok(target)
    }

    /// temp file, write, fsync, (keep previous copy), rename, fsync dir.
    /// Also used for other state files (confirmed commit, see `confirmed`).
    pub(crate) fn write_atomic(
        &self,
        name: &str,
        data: &[u8],
        keep_prev: bool,
    ) -> Result<(), PersistError> {
        let path = self.path(name);
        let tmp = self.path(&format!("{name}{TMP_SUFFIX}"));
        {
            let mut f = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)
                .map_err(io_err("creating", &tmp))?;
            f.write_all(data).map_err(io_err("writing", &tmp))?;
            f.sync_all().map_err(io_err("syncing", &tmp))?;
        }
        if keep_prev {
            self.keep_previous(&path, name)?;
        }
        fs::rename(&tmp, &path).map_err(io_err("renaming into place", &path))?;
        self.sync_dir()
    }

    /// Makes `NAME.prev` the current `NAME` (the last good copy), replacing
    /// the older one atomically. A hard link costs no copy; filesystems
    /// without links get a copy.
    fn keep_previous(&self, path: &Path, name: &str) -> Result<(), PersistError> {
        let prev = self.path(&format!("{name}{PREV_SUFFIX}"));
        let prev_tmp = self.path(&format!("{name}{PREV_SUFFIX}{TMP_SUFFIX}"));
        remove_if_present(&prev_tmp)?;
        match fs::hard_link(path, &prev_tmp) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(_) => match fs::copy(path, &prev_tmp) {
                Ok(_) => File::open(&prev_tmp)
                    .and_then(|f| f.sync_all())
                    .map_err(io_err("syncing", &prev_tmp))?,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(io_err("copying to", &prev_tmp)(e)),
            },
        }
        fs::rename(&prev_tmp, &prev).map_err(io_err("renaming into place", &prev))
    }

    fn sync_dir(&self) -> Result<(), PersistError> {
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(io_err("syncing directory", &self.dir))
    }
}

/// The current kernel boot id.
pub fn kernel_boot_id() -> Result<String, PersistError> {
    let path = Path::new(KERNEL_BOOT_ID);
    let id = fs::read_to_string(path).map_err(io_err("reading", path))?;
    let id = id.trim().to_string();
    if id.is_empty() {
        return Err(PersistError::EmptyBootId);
    }
    Ok(id)
}

/// Parses and fully validates a saved configuration (config only, unknown
/// elements refused). The error is a human-readable reason.
pub fn parse_saved(bytes: &[u8]) -> Result<DataTree<'static>, String> {
    // libyang reads to the first NUL: a file with NUL bytes in it (a
    // classic crash artifact of some filesystems) would otherwise parse as
    // its prefix, possibly an empty configuration.
    if bytes.contains(&0) {
        return Err("the file contains NUL bytes".into());
    }
    if std::str::from_utf8(bytes).is_err() {
        return Err("the file is not UTF-8".into());
    }
    let mut data = Vec::with_capacity(bytes.len() + 1);
    data.extend_from_slice(bytes);
    data.push(0);
    DataTree::parse_string(
        schema::context(),
        &data,
        DataFormat::XML,
        DataParserFlags::NO_STATE | DataParserFlags::STRICT,
        DataValidationFlags::NO_STATE,
    )
    .map_err(|e| match &e.path {
        Some(p) => format!("{e} (at {p})"),
        None => e.to_string(),
    })
}

fn remove_if_present(path: &Path) -> Result<(), PersistError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err("removing", path)(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONF_A: &str = r#"<app-hosting xmlns="urn:apphost:yang:app-hosting">
  <cpu>30</cpu>
  <app>
    <name>a1</name>
    <enable>true</enable>
    <image>busybox</image>
    <share><veth><name>veth-a1</name><as>eth0</as></veth></share>
  </app>
</app-hosting>"#;

    const CONF_B: &str = r#"<app-hosting xmlns="urn:apphost:yang:app-hosting">
  <ram>40</ram>
  <app><name>b1</name><description>second</description></app>
  <app><name>b2</name><environment><name>X</name><value>1</value></environment></app>
</app-hosting>"#;

    fn tree(xml: &str) -> DataTree<'static> {
        parse_saved(xml.as_bytes()).expect("test config is valid")
    }

    fn xml(t: &DataTree<'static>) -> String {
        t.print_string(
            DataFormat::XML,
            DataPrinterFlags::WITH_SIBLINGS | DataPrinterFlags::WD_EXPLICIT,
        )
        .expect("print")
        .unwrap_or_default()
    }

    fn corrupt_files(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .expect("read dir")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(".corrupt-"))
            .collect();
        v.sort();
        v
    }

    #[test]
    fn first_open_creates_dir_and_is_empty() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("state/sub");
        let (_store, loaded) = Store::open_with_boot_id(&dir, "boot-1").expect("open");
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
        assert_eq!(xml(&loaded.running), "");
        assert_eq!(xml(&loaded.startup), "");
        let mode = fs::metadata(&dir).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        assert_eq!(
            fs::read_to_string(dir.join(BOOT_ID_FILE))
                .expect("boot_id")
                .trim(),
            "boot-1"
        );
        assert!(dir.join(RUNNING_FILE).exists());
    }

    #[test]
    fn existing_open_dir_is_made_private() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("state");
        fs::create_dir(&dir).expect("mkdir");
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).expect("chmod");
        Store::open_with_boot_id(&dir, "boot-1").expect("open");
        let mode = fs::metadata(&dir).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
    }

    #[test]
    fn save_load_round_trip_same_boot_restores_running() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path();
        let (store, _) = Store::open_with_boot_id(dir, "boot-1").expect("open");
        let a = tree(CONF_A);
        let b = tree(CONF_B);
        store.save(DsName::Running, &a).expect("save running");
        store.save(DsName::Startup, &b).expect("save startup");
        // Candidate is not persisted and saving it is harmless.
        store.save(DsName::Candidate, &a).expect("save candidate");
        let text = fs::read_to_string(dir.join(RUNNING_FILE)).expect("read");
        assert!(text.contains("<cpu>30</cpu>"), "{text}");
        // with-defaults explicit: defaults are not written out.
        assert!(!text.contains("<ram>"), "{text}");

        let (_s, loaded) = Store::open_with_boot_id(dir, "boot-1").expect("reopen");
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
        assert_eq!(xml(&loaded.running), xml(&a));
        assert_eq!(xml(&loaded.startup), xml(&b));
        assert_ne!(xml(&a), xml(&b));
    }

    #[test]
    fn new_boot_loads_startup_into_running() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path();
        let (store, _) = Store::open_with_boot_id(dir, "boot-1").expect("open");
        store
            .save(DsName::Running, &tree(CONF_A))
            .expect("save running");
        store
            .save(DsName::Startup, &tree(CONF_B))
            .expect("save startup");

        let (_s, loaded) = Store::open_with_boot_id(dir, "boot-2").expect("reboot");
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
        assert_eq!(xml(&loaded.running), xml(&tree(CONF_B)));
        assert_eq!(xml(&loaded.startup), xml(&tree(CONF_B)));
        // running.xml now holds this boot's running: a restart keeps it.
        let (_s, again) = Store::open_with_boot_id(dir, "boot-2").expect("restart");
        assert_eq!(xml(&again.running), xml(&tree(CONF_B)));
        assert_eq!(
            fs::read_to_string(dir.join(BOOT_ID_FILE))
                .expect("boot_id")
                .trim(),
            "boot-2"
        );
    }

    #[test]
    fn new_boot_without_startup_gives_empty_running() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path();
        let (store, _) = Store::open_with_boot_id(dir, "boot-1").expect("open");
        store
            .save(DsName::Running, &tree(CONF_A))
            .expect("save running");
        let (_s, loaded) = Store::open_with_boot_id(dir, "boot-2").expect("reboot");
        assert_eq!(xml(&loaded.running), "");
        assert_eq!(xml(&loaded.startup), "");
        assert!(!dir.join(STARTUP_FILE).exists());
    }

    #[test]
    fn previous_copy_is_kept() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path();
        let (store, _) = Store::open_with_boot_id(dir, "boot-1").expect("open");
        store.save(DsName::Running, &tree(CONF_A)).expect("save a");
        store.save(DsName::Running, &tree(CONF_B)).expect("save b");
        let prev = fs::read_to_string(dir.join("running.xml.prev")).expect("prev");
        assert_eq!(prev, xml(&tree(CONF_A)));
        let cur = fs::read_to_string(dir.join(RUNNING_FILE)).expect("cur");
        assert_eq!(cur, xml(&tree(CONF_B)));
    }

    fn corrupt_case(bad: &[u8], expect_in_warning: &str) {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path();
        let (store, _) = Store::open_with_boot_id(dir, "boot-1").expect("open");
        store.save(DsName::Running, &tree(CONF_A)).expect("save a");
        store.save(DsName::Running, &tree(CONF_B)).expect("save b");
        fs::write(dir.join(RUNNING_FILE), bad).expect("corrupt it");

        let (_s, loaded) = Store::open_with_boot_id(dir, "boot-1").expect("reopen");
        // The previous good copy (A) is used...
        assert_eq!(xml(&loaded.running), xml(&tree(CONF_A)));
        // ...reported loudly...
        let all = loaded.warnings.join("\n");
        assert!(all.contains("corrupt or invalid"), "{all}");
        assert!(all.contains(expect_in_warning), "{all}");
        assert!(all.contains("previous good copy"), "{all}");
        // ...the bad file is kept aside, byte for byte...
        let aside = corrupt_files(dir);
        assert_eq!(aside.len(), 1, "{aside:?}");
        assert!(aside[0].starts_with("running.xml.corrupt-"), "{aside:?}");
        assert_eq!(fs::read(dir.join(&aside[0])).expect("aside"), bad);
        // ...and running.xml is whole again.
        let cur = fs::read_to_string(dir.join(RUNNING_FILE)).expect("cur");
        assert_eq!(cur, xml(&tree(CONF_A)));
        let (_s, again) = Store::open_with_boot_id(dir, "boot-1").expect("reopen again");
        assert!(again.warnings.is_empty(), "{:?}", again.warnings);
        assert_eq!(xml(&again.running), xml(&tree(CONF_A)));
    }

    #[test]
    fn truncated_file_is_set_aside_and_previous_used() {
        let good = xml(&tree(CONF_B));
        corrupt_case(&good.as_bytes()[..good.len() / 2], "corrupt");
    }

    #[test]
    fn nul_filled_file_is_set_aside() {
        corrupt_case(&[0u8; 64], "NUL");
    }

    #[test]
    fn schema_invalid_file_is_set_aside_and_previous_used() {
        // Well-formed XML, but cpu is out of its 10..50 range.
        let bad =
            br#"<app-hosting xmlns="urn:apphost:yang:app-hosting"><cpu>99</cpu></app-hosting>"#;
        corrupt_case(bad, "cpu");
    }

    #[test]
    fn must_violation_is_set_aside() {
        // host-os netns with a veth share violates the list's must.
        let bad = br#"<app-hosting xmlns="urn:apphost:yang:app-hosting"><app><name>x</name><netns>host-os</netns><share><veth><name>v1</name></veth></share></app></app-hosting>"#;
        corrupt_case(bad, "host's network namespace");
    }

    #[test]
    fn state_data_in_file_is_refused() {
        let bad = br#"<app-hosting xmlns="urn:apphost:yang:app-hosting"><app><name>x</name><state><pid>1</pid></state></app></app-hosting>"#;
        corrupt_case(bad, "corrupt or invalid");
    }

    #[test]
    fn corrupt_startup_without_prev_gives_empty_and_keeps_file() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path();
        fs::write(dir.join(STARTUP_FILE), b"<app-hosting xmlns=").expect("write");
        let (_s, loaded) = Store::open_with_boot_id(dir, "boot-1").expect("open");
        assert_eq!(xml(&loaded.startup), "");
        assert_eq!(xml(&loaded.running), "");
        assert_eq!(loaded.warnings.len(), 1, "{:?}", loaded.warnings);
        let aside = corrupt_files(dir);
        assert_eq!(aside.len(), 1, "{aside:?}");
        assert!(aside[0].starts_with("startup.xml.corrupt-"));
    }

    #[test]
    fn corrupt_running_and_prev_fall_back_to_startup() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path();
        let (store, _) = Store::open_with_boot_id(dir, "boot-1").expect("open");
        store
            .save(DsName::Startup, &tree(CONF_B))
            .expect("save startup");
        fs::write(dir.join(RUNNING_FILE), b"garbage").expect("write");
        fs::write(dir.join("running.xml.prev"), b"<more garbage").expect("write");
        let (_s, loaded) = Store::open_with_boot_id(dir, "boot-1").expect("reopen");
        assert_eq!(xml(&loaded.running), xml(&tree(CONF_B)));
        assert_eq!(corrupt_files(dir).len(), 2);
        assert!(
            loaded
                .warnings
                .iter()
                .any(|w| w.contains("copy of startup")),
            "{:?}",
            loaded.warnings
        );
    }

    #[test]
    fn stale_temp_files_are_ignored_and_removed() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path();
        let (store, _) = Store::open_with_boot_id(dir, "boot-1").expect("open");
        store.save(DsName::Running, &tree(CONF_A)).expect("save");
        fs::write(dir.join("running.xml.tmp"), b"<half").expect("write");
        fs::write(dir.join("running.xml.prev.tmp"), b"x").expect("write");
        let (_s, loaded) = Store::open_with_boot_id(dir, "boot-1").expect("reopen");
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
        assert_eq!(xml(&loaded.running), xml(&tree(CONF_A)));
        assert!(!dir.join("running.xml.tmp").exists());
        assert!(!dir.join("running.xml.prev.tmp").exists());
    }

    #[test]
    fn saver_callback_persists() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path();
        let (store, _) = Store::open_with_boot_id(dir, "boot-1").expect("open");
        let mut saver = store.into_saver();
        saver(DsName::Startup, &tree(CONF_A)).expect("save");
        let (_s, loaded) = Store::open_with_boot_id(dir, "boot-1").expect("reopen");
        assert_eq!(xml(&loaded.startup), xml(&tree(CONF_A)));
    }

    #[test]
    fn kernel_boot_id_reads() {
        let id = kernel_boot_id().expect("boot id");
        assert_eq!(id.len(), 36, "{id}");
    }
}
