//! The reconciler: owns the OS seams, the image store, the logs and the
//! state table; observes, plans (pure, `plan.rs`) and executes. Errors of
//! execution land in the state table (`last-error`, status `failed`), in
//! `app-state-changed` events and in tracing — never hidden.
//!
//! Concurrency: one `core` mutex serialises every reconcile pass and every
//! lifecycle RPC (they run a pass themselves, synchronously, so the RPC
//! reply tells whether the app started). The state table, the desired
//! snapshot and the image store have their own short-held locks, so `<get>`
//! never waits for a container's stop grace time.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;
use yang2::data::DataTree;

use super::images::{valid_label, ImageError, Images};
use super::logs::{Logs, DEFAULT_LOG_CAP};
use super::model::{pred, AppConfig, Desired, NetnsMode, Storage, TOP};
use super::plan::{plan, Action, Observed, ObservedApp};
use crate::error::{ErrorTag, RpcError};
use crate::os::rootfs::Prefetch;
use crate::os::{oci, BindMount, BundleSpec, Os, OsError};
use crate::schema;

/// Most the RAM overlay (tmpfs upper layer) of one app may hold. The
/// overlay's pages are charged to the app's memory cgroup, i.e. against the
/// shared RAM budget, so the effective size is min(RAM budget, this).
pub const DEFAULT_TMPFS_MAX: u64 = 64 << 20;

/// Name of the start record in an app's directory.
const RECORD: &str = "started.json";

#[derive(Debug, Clone)]
pub struct ApphostConfig {
    /// Bundles, rootfs mounts, start records (`apps/<name>/`), logs
    /// (`logs/`).
    pub state_dir: PathBuf,
    /// Media name → mount point.
    pub media: HashMap<String, PathBuf>,
    /// Time between SIGTERM and SIGKILL when stopping an app.
    pub stop_grace: Duration,
    /// Period of the reconcile loop (container exits, log follow).
    pub tick: Duration,
    /// Cap of one log file before rotation.
    pub log_cap: u64,
    /// Upper bound of the RAM overlay of one app.
    pub tmpfs_max: u64,
}

impl ApphostConfig {
    pub fn new(state_dir: PathBuf, media: HashMap<String, PathBuf>) -> Self {
        ApphostConfig {
            state_dir,
            media,
            stop_grace: Duration::from_secs(10),
            tick: Duration::from_secs(1),
            log_cap: DEFAULT_LOG_CAP,
            tmpfs_max: DEFAULT_TMPFS_MAX,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApphostError {
    #[error("{op}: {source}")]
    Io {
        op: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Os(#[from] OsError),
}

/// Run state of an app (typedef `app-status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Stopped,
    Starting,
    Running,
    Stopping,
    Failed,
    NoImage,
    Disabled,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Stopped => "stopped",
            Status::Starting => "starting",
            Status::Running => "running",
            Status::Stopping => "stopping",
            Status::Failed => "failed",
            Status::NoImage => "no-image",
            Status::Disabled => "disabled",
        }
    }
}

/// One row of the state table (`/app-hosting/app/state`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppState {
    pub status: Status,
    pub pid: Option<u32>,
    /// RFC 3339.
    pub started_at: Option<String>,
    pub image_file: Option<PathBuf>,
    pub image_sha256: Option<String>,
    pub restart_count: u32,
    pub last_error: Option<String>,
}

impl Default for AppState {
    fn default() -> Self {
        AppState {
            status: Status::Stopped,
            pid: None,
            started_at: None,
            image_file: None,
            image_sha256: None,
            restart_count: 0,
            last_error: None,
        }
    }
}

/// Events for notifications (`app-state-changed`, `app-log`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppEvent {
    StateChanged {
        app: String,
        status: Status,
        previous: Status,
        reason: String,
    },
    Log {
        app: String,
        line: String,
    },
}

/// What a started app holds, stored in its directory: teardown after an
/// agent restart or a config change needs the *old* ports and veths, and
/// adoption compares the fingerprint.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
struct StartRecord {
    fingerprint: String,
    label: Option<String>,
    image: PathBuf,
    sha256: Option<String>,
    /// (host name, name in the app)
    ports: Vec<(String, String)>,
    veths: Vec<String>,
    netns: bool,
    pid: Option<u32>,
    started_at: Option<String>,
}

/// The label an app's image was resolved from, and the file. Kept while
/// the app runs so a moved label takes effect only at `reload`.
#[derive(Debug, Clone)]
struct Pin {
    label: String,
    image: PathBuf,
}

/// State owned by the reconcile pass.
#[derive(Default)]
struct Core {
    /// No pass before the first `apply`: an empty default config would
    /// stop containers that are to be adopted.
    configured: bool,
    desired: Desired,
    requested: BTreeSet<String>,
    pins: BTreeMap<String, Pin>,
    force_restart: BTreeSet<String>,
    /// Limits set on the parent cgroup.
    limits: Option<(u8, u8)>,
    /// Pids of the containers we know are running, to reap them and notice
    /// their exit.
    pids: BTreeMap<String, u32>,
}

struct Inner {
    cfg: ApphostConfig,
    os: Os,
    logs: Logs,
    images: Mutex<Images>,
    core: Mutex<Core>,
    table: Mutex<BTreeMap<String, AppState>>,
    /// Copy of the desired config for readers that must not wait for a
    /// pass (state tree, check).
    snapshot: Mutex<Desired>,
    /// A configuration given by `apply`, not yet taken by the core.
    pending: Mutex<Option<Desired>>,
    events: broadcast::Sender<AppEvent>,
    /// Wakes the loop thread (apply). Dropping `Inner` closes it, which
    /// ends the thread.
    wake: Mutex<mpsc::Sender<()>>,
}

/// The app-hosting service. Cheap to clone; internally synchronised; its
/// reconcile loop runs on its own thread.
#[derive(Clone)]
pub struct Apphost {
    inner: Arc<Inner>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic in one pass must not wedge the agent: the data is plain state
    // that the next pass re-derives from observation.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Makes this process the reaper of orphaned descendants: `crun run -d`
/// exits after starting the container, whose init would otherwise be
/// re-parented to PID 1 and its exit status lost.
pub fn become_subreaper() -> std::io::Result<()> {
    // SAFETY: plain prctl with integer arguments.
    let r = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Reaps `pid` if it is our (adopted) child and has exited; returns its
/// exit description.
fn reap(pid: u32) -> Option<String> {
    use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
    let p = nix::unistd::Pid::from_raw(i32::try_from(pid).ok()?);
    match waitpid(p, Some(WaitPidFlag::WNOHANG)) {
        Ok(WaitStatus::Exited(_, code)) => Some(format!("exited with status {code}")),
        Ok(WaitStatus::Signaled(_, sig, _)) => Some(format!("killed by signal {sig}")),
        _ => None,
    }
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn rpc_path(rpc: &str, leaf: &str) -> String {
    format!("/app-hosting:{rpc}/{leaf}")
}

impl Apphost {
    /// Sets up the state directory, adopts containers still running from an
    /// earlier agent and starts the loop. Nothing is started or stopped
    /// before the first [`Apphost::apply`].
    pub fn new(cfg: ApphostConfig, os: Os) -> Result<Self, ApphostError> {
        let io = |op: &str| {
            let op = op.to_string();
            move |source| ApphostError::Io { op, source }
        };
        fs::create_dir_all(cfg.state_dir.join("apps")).map_err(io("create state dir"))?;
        fs::create_dir_all(cfg.state_dir.join("runtime")).map_err(io("create runtime dir"))?;
        let logs =
            Logs::new(cfg.state_dir.join("logs"), cfg.log_cap).map_err(io("create log dir"))?;
        if let Err(e) = become_subreaper() {
            tracing::warn!(error = %e, "cannot become child subreaper; container exit status is lost");
        }
        let (tx, rx) = mpsc::channel();
        let (events, _) = broadcast::channel(1024);
        let images = Images::new(cfg.media.clone(), Storage::default());
        let inner = Arc::new(Inner {
            cfg,
            os,
            logs,
            images: Mutex::new(images),
            core: Mutex::new(Core::default()),
            table: Mutex::new(BTreeMap::new()),
            snapshot: Mutex::new(Desired::default()),
            pending: Mutex::new(None),
            events,
            wake: Mutex::new(tx),
        });
        inner.adopt();
        let weak = Arc::downgrade(&inner);
        let tick = inner.cfg.tick;
        std::thread::Builder::new()
            .name("apphost-reconcile".into())
            .spawn(move || run_loop(weak, rx, tick))
            .map_err(io("spawn reconcile thread"))?;
        Ok(Apphost { inner })
    }

    /// Takes a new running configuration (after every change of running,
    /// and at start). Autostart apps are (re)requested; the pass runs on the
    /// loop thread — use [`Apphost::reconcile_now`] to wait for it.
    pub fn apply(&self, running: &DataTree<'static>) {
        let d = Desired::from_tree(running);
        self.inner.set_desired(d);
        let _ = lock(&self.inner.wake).send(());
    }

    /// Runs one reconcile pass now, on the caller's thread.
    pub fn reconcile_now(&self) {
        let mut core = self.inner.core();
        self.inner.pass(&mut core);
    }

    /// Pre-commit checks without side effects.
    pub fn check(&self, candidate: &DataTree<'static>) -> Result<(), Vec<RpcError>> {
        let d = Desired::from_tree(candidate);
        let errs = self.inner.check(&d);
        if errs.is_empty() {
            Ok(())
        } else {
            Err(errs)
        }
    }

    pub fn start(&self, app: &str) -> Result<(), RpcError> {
        self.inner.lifecycle("start", app, false)
    }

    pub fn restart(&self, app: &str) -> Result<(), RpcError> {
        self.inner.lifecycle("restart", app, true)
    }

    pub fn stop(&self, app: &str) -> Result<(), RpcError> {
        let mut core = self.inner.core();
        if !core.desired.apps.contains_key(app) {
            return Err(unknown_app("stop", app));
        }
        core.requested.remove(app);
        // Only an error of this stop counts, not an earlier failure.
        match self.inner.pass(&mut core).remove(app) {
            Some(e) => Err(RpcError::app(
                ErrorTag::OperationFailed,
                format!("stopping app '{app}' failed: {e}"),
            )),
            None => Ok(()),
        }
    }

    pub fn set_label(&self, image: &str, label: &str) -> Result<(), RpcError> {
        let r = lock(&self.inner.images).set_label(image, label);
        r.map_err(|e| image_rpc_error("set-label", e))?;
        // Apps not running pick the label up at their next start; status
        // no-image may change.
        let _ = lock(&self.inner.wake).send(());
        Ok(())
    }

    pub fn remove_label(&self, label: &str) -> Result<(), RpcError> {
        let r = lock(&self.inner.images).remove_label(label);
        r.map_err(|e| image_rpc_error("remove-label", e))?;
        let _ = lock(&self.inner.wake).send(());
        Ok(())
    }

    /// Re-resolves labels and restarts the running apps using them (all
    /// apps with a label when `label` is None).
    pub fn reload(&self, label: Option<&str>) -> Result<(), RpcError> {
        let mut core = self.inner.core();
        if let Some(l) = label {
            let known = lock(&self.inner.images)
                .labels()
                .map(|m| m.contains_key(l))
                .unwrap_or(false);
            let used = core
                .desired
                .apps
                .values()
                .any(|a| a.image.as_deref() == Some(l));
            if !known && !used {
                return Err(
                    RpcError::app(ErrorTag::InvalidValue, format!("no label '{l}'"))
                        .with_path(rpc_path("reload", "label")),
                );
            }
        }
        let names: Vec<String> = core
            .desired
            .apps
            .values()
            .filter(|a| a.image.is_some() && label.is_none_or(|l| a.image.as_deref() == Some(l)))
            .map(|a| a.name.clone())
            .collect();
        for n in &names {
            core.pins.remove(n);
            if core.pids.contains_key(n) {
                core.force_restart.insert(n.clone());
            }
        }
        let errors = self.inner.pass(&mut core);
        let failed: Vec<String> = names
            .iter()
            .filter_map(|n| errors.get(n).map(|e| format!("{n}: {e}")))
            .collect();
        if failed.is_empty() {
            Ok(())
        } else {
            Err(RpcError::app(
                ErrorTag::OperationFailed,
                format!("reload: {}", failed.join("; ")),
            ))
        }
    }

    pub fn show_log(&self, app: &str, lines: u32) -> Result<String, RpcError> {
        let known = lock(&self.inner.snapshot).apps.contains_key(app);
        if !known && !self.inner.logs.path(app).exists() {
            return Err(unknown_app("show-log", app));
        }
        self.inner.logs.tail(app, lines as usize).map_err(|e| {
            RpcError::app(
                ErrorTag::OperationFailed,
                format!("reading the log of '{app}': {e}"),
            )
        })
    }

    /// The command for `attach APP`: the app's shell inside its container,
    /// on a terminal of type `term` when given (`TERM` in the container;
    /// an empty type is not set), else on plain stdio.
    pub fn attach_command(
        &self,
        app: &str,
        term: Option<&str>,
    ) -> Result<std::process::Command, RpcError> {
        let shell = match lock(&self.inner.snapshot).apps.get(app) {
            Some(a) => a.shell.clone(),
            None => return Err(unknown_app("attach", app)),
        };
        let status = self.inner.state(app).map(|s| s.status);
        if status != Some(Status::Running) {
            // The status tells the user what to do (start it, fix the image).
            let status = status.unwrap_or(Status::Stopped).as_str();
            return Err(RpcError::app(
                ErrorTag::OperationFailed,
                format!("app '{app}' is not running (status {status})"),
            ));
        }
        let env: Vec<(String, String)> = term
            .filter(|t| !t.is_empty())
            .map(|t| ("TERM".to_string(), t.to_string()))
            .into_iter()
            .collect();
        Ok(self
            .inner
            .os
            .runtime
            .exec_command(app, term.is_some(), &env, &[shell]))
    }

    /// The directory images are stored in (`<media>/<storage path>` of the
    /// running configuration), for `import-image` / `delete-image`.
    pub fn images_dir(&self) -> Result<PathBuf, RpcError> {
        lock(&self.inner.images)
            .dir()
            .map_err(|e| RpcError::app(ErrorTag::OperationFailed, e.to_string()))
    }

    /// The mount point of the storage media (`/app-hosting/storage/media`):
    /// `import-image` creates the storage path below it, never the media
    /// itself (an unmounted USB stick must not become a directory on the
    /// root filesystem).
    pub fn storage_media_root(&self) -> Result<PathBuf, RpcError> {
        let images = lock(&self.inner.images);
        images
            .media_root(&images.storage().media)
            .map(Path::to_path_buf)
            .map_err(|e| RpcError::app(ErrorTag::OperationFailed, e.to_string()))
    }

    /// Apps whose container runs (or is being started/stopped) from the
    /// image file `name`: `delete-image` must refuse those.
    pub fn apps_using_image(&self, name: &str) -> Vec<String> {
        lock(&self.inner.table)
            .iter()
            .filter(|(_, s)| {
                matches!(
                    s.status,
                    Status::Running | Status::Starting | Status::Stopping
                )
            })
            .filter(|(_, s)| {
                s.image_file
                    .as_ref()
                    .and_then(|p| p.file_name())
                    .is_some_and(|f| f == name)
            })
            .map(|(a, _)| a.clone())
            .collect()
    }

    /// A row of the state table.
    pub fn app_state(&self, app: &str) -> Option<AppState> {
        self.inner.state(app)
    }

    pub fn subscribe(&self) -> broadcast::Receiver<AppEvent> {
        self.inner.events.subscribe()
    }

    /// Operational data: `/app-hosting/app[name]/state/*`,
    /// `/app-hosting/media`, `/app-hosting/image`.
    pub fn state_tree(&self) -> Result<DataTree<'static>, RpcError> {
        self.inner.state_tree().map_err(|e| RpcError::from_yang(&e))
    }

    /// The log of `app` on disk (for tests and diagnostics).
    pub fn log_path(&self, app: &str) -> PathBuf {
        self.inner.logs.path(app)
    }
}

fn unknown_app(rpc: &str, app: &str) -> RpcError {
    RpcError::app(
        ErrorTag::InvalidValue,
        format!("no app '{app}' is configured"),
    )
    .with_path(rpc_path(rpc, "app"))
}

fn image_rpc_error(rpc: &str, e: ImageError) -> RpcError {
    match e {
        ImageError::NoImage(_) | ImageError::BadImageName(_) => {
            RpcError::app(ErrorTag::InvalidValue, e.to_string()).with_path(rpc_path(rpc, "image"))
        }
        ImageError::BadLabel(_) | ImageError::NoLabel(_) => {
            RpcError::app(ErrorTag::InvalidValue, e.to_string()).with_path(rpc_path(rpc, "label"))
        }
        other => RpcError::app(ErrorTag::OperationFailed, other.to_string()),
    }
}

fn run_loop(weak: Weak<Inner>, rx: mpsc::Receiver<()>, tick: Duration) {
    loop {
        match rx.recv_timeout(tick) {
            Ok(()) | Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        }
        let Some(inner) = weak.upgrade() else { return };
        {
            let mut core = inner.core();
            inner.pass(&mut core);
        }
        for (app, line) in inner.logs.poll() {
            let _ = inner.events.send(AppEvent::Log { app, line });
        }
    }
}

// ===== impl Inner =====

impl Inner {
    fn app_dir(&self, name: &str) -> PathBuf {
        self.cfg.state_dir.join("apps").join(name)
    }

    fn read_record(&self, name: &str) -> Option<StartRecord> {
        let text = fs::read_to_string(self.app_dir(name).join(RECORD)).ok()?;
        serde_json::from_str(&text).ok()
    }

    fn write_record(&self, name: &str, rec: &StartRecord) -> Result<(), String> {
        let text = serde_json::to_vec_pretty(rec).map_err(|e| e.to_string())?;
        // Replaced atomically but not fsynced: the record lists kernel state
        // (mounts, links, netns, the container) for an agent that crashed;
        // a power loss takes that state with it, so a record that did not
        // reach the disk describes nothing that still exists. This keeps
        // two disk flushes out of every app start.
        let dir = self.app_dir(name);
        let tmp = dir.join(format!(".{RECORD}.tmp"));
        fs::create_dir_all(&dir)
            .and_then(|()| fs::write(&tmp, &text))
            .and_then(|()| fs::rename(&tmp, dir.join(RECORD)))
            .map_err(|e| format!("start record of {name}: {e}"))
    }

    fn state(&self, app: &str) -> Option<AppState> {
        lock(&self.table).get(app).cloned()
    }

    /// Updates a row and emits `StateChanged` when the status changed.
    fn update(&self, app: &str, reason: &str, f: impl FnOnce(&mut AppState)) {
        let mut table = lock(&self.table);
        let row = table.entry(app.to_string()).or_default();
        let previous = row.status;
        f(row);
        let status = row.status;
        drop(table);
        if status != previous {
            tracing::info!(
                app,
                status = status.as_str(),
                previous = previous.as_str(),
                reason,
                "app state"
            );
            let _ = self.events.send(AppEvent::StateChanged {
                app: app.to_string(),
                status,
                previous,
                reason: reason.to_string(),
            });
        }
    }

    fn fail(&self, app: &str, err: &str) {
        tracing::error!(app, error = err, "app failed");
        self.logs.note(app, err);
        self.update(app, err, |r| {
            r.status = Status::Failed;
            r.last_error = Some(err.to_string());
            r.pid = None;
        });
    }

    /// Stores a new configuration without waiting for a running pass (a
    /// stop can take the grace time); the next pass, or RPC, takes it.
    fn set_desired(&self, d: Desired) {
        lock(&self.images).set_storage(d.storage.clone());
        *lock(&self.snapshot) = d.clone();
        *lock(&self.pending) = Some(d);
    }

    /// Locks the core, taking a pending configuration first.
    fn core(&self) -> MutexGuard<'_, Core> {
        let mut core = lock(&self.core);
        if let Some(d) = lock(&self.pending).take() {
            Self::take_desired(&mut core, d);
        }
        core
    }

    fn take_desired(core: &mut Core, d: Desired) {
        for (name, app) in &d.apps {
            if app.enable && app.autostart {
                core.requested.insert(name.clone());
            } else if !app.enable {
                core.requested.remove(name);
            }
        }
        core.requested.retain(|n| d.apps.contains_key(n));
        core.desired = d;
        core.configured = true;
    }

    /// Containers still running from an earlier agent, with a start record,
    /// are requested and pinned as they are: the first pass keeps them if
    /// their fingerprint matches the configuration (same pid).
    fn adopt(&self) {
        let list = match self.os.runtime.list() {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(error = %e, "listing containers for adoption");
                return;
            }
        };
        let mut core = lock(&self.core);
        for c in list {
            if !matches!(c.status.as_str(), "running" | "created" | "paused") {
                continue;
            }
            let Some(rec) = self.read_record(&c.id) else {
                continue;
            };
            tracing::info!(app = c.id, pid = c.pid, "found running container");
            core.requested.insert(c.id.clone());
            core.pids.insert(c.id.clone(), c.pid);
            if let Some(label) = &rec.label {
                core.pins.insert(
                    c.id.clone(),
                    Pin {
                        label: label.clone(),
                        image: rec.image.clone(),
                    },
                );
            }
            self.update(&c.id, "adopted", |r| {
                r.status = Status::Running;
                r.pid = Some(c.pid);
                r.started_at = rec.started_at.clone();
                r.image_file = Some(rec.image.clone());
                r.image_sha256 = rec.sha256.clone();
            });
        }
    }

    /// What exists: containers, start records, mounts. Notices exits of
    /// containers we knew running (reaping them first: an unreaped zombie
    /// still looks alive to the runtime).
    fn observe(&self, core: &mut Core) -> BTreeMap<String, ObservedApp> {
        let mut exits = BTreeMap::new();
        for (name, pid) in &core.pids {
            if let Some(how) = reap(*pid) {
                exits.insert(name.clone(), how);
            }
        }
        // Every container of ours has its directory (the start record is
        // written before anything else): with none and no pid known there
        // is nothing to list, which spares an idle agent a runtime process
        // every tick.
        let dirs: BTreeSet<String> = fs::read_dir(self.cfg.state_dir.join("apps"))
            .map(|rd| {
                rd.flatten()
                    .filter_map(|e| e.file_name().into_string().ok())
                    .collect()
            })
            .unwrap_or_default();
        let listed = if dirs.is_empty() && core.pids.is_empty() {
            Ok(Vec::new())
        } else {
            self.os.runtime.list()
        };
        let containers = match listed {
            Ok(l) => l,
            Err(e) => {
                // Without a list nothing can be planned safely.
                tracing::error!(error = %e, "listing containers");
                return core
                    .pids
                    .iter()
                    .map(|(n, p)| {
                        let fp = self.read_record(n).map(|r| r.fingerprint);
                        (
                            n.clone(),
                            ObservedApp {
                                running: Some(*p),
                                fingerprint: fp,
                                leftovers: true,
                            },
                        )
                    })
                    .collect();
            }
        };
        let mut names: BTreeSet<String> = containers.iter().map(|c| c.id.clone()).collect();
        names.extend(dirs);
        names.extend(core.pids.keys().cloned());
        let mut out = BTreeMap::new();
        for name in names {
            let c = containers.iter().find(|c| c.id == name);
            let running = c
                .filter(|c| matches!(c.status.as_str(), "running" | "created" | "paused"))
                .map(|c| c.pid);
            let rec = self.read_record(&name);
            let dir = self.app_dir(&name);
            let leftovers = c.is_some() || rec.is_some() || self.os.rootfs.is_mounted(&dir);
            if running.is_none() {
                if let Some(pid) = core.pids.remove(&name) {
                    // It may have ended between the reap above and the list:
                    // reap now, or it stays a zombie.
                    let how = exits
                        .remove(&name)
                        .or_else(|| reap(pid))
                        .unwrap_or_else(|| "exited".to_string());
                    tracing::info!(app = name, pid, how, "container ended");
                    self.logs.note(&name, &format!("container {how}"));
                    // Not restarted by itself: the next commit (autostart)
                    // or a start RPC does; a crash loop is avoided.
                    core.requested.remove(&name);
                    let failed = how != "exited with status 0" && how != "exited";
                    self.update(&name, &how, |r| {
                        r.pid = None;
                        if failed {
                            r.status = Status::Failed;
                            r.last_error = Some(format!("container {how}"));
                        } else {
                            r.status = Status::Stopped;
                        }
                    });
                }
            }
            if running.is_none() && !leftovers {
                continue;
            }
            let fingerprint = rec.map(|r| r.fingerprint);
            out.insert(
                name,
                ObservedApp {
                    running,
                    fingerprint,
                    leftovers,
                },
            );
        }
        out
    }

    /// One reconcile pass; returns the errors of this pass's actions by app.
    fn pass(&self, core: &mut Core) -> BTreeMap<String, String> {
        let mut errors = BTreeMap::new();
        if !core.configured {
            return errors;
        }
        let apps = self.observe(core);
        let mut obs = Observed {
            limits: core.limits,
            apps,
            requested: core.requested.clone(),
            images: BTreeMap::new(),
        };
        {
            let images = lock(&self.images);
            for (name, app) in &core.desired.apps {
                let Some(label) = app.image.as_ref().filter(|_| app.enable) else {
                    core.pins.remove(name);
                    continue;
                };
                let running = obs.apps.get(name).is_some_and(|o| o.running.is_some());
                let pinned = core
                    .pins
                    .get(name)
                    .filter(|p| running && p.label == *label)
                    .map(|p| p.image.clone());
                match pinned.or_else(|| images.resolve(label)) {
                    Some(path) => {
                        obs.images.insert(name.clone(), path.clone());
                        core.pins.insert(
                            name.clone(),
                            Pin {
                                label: label.clone(),
                                image: path,
                            },
                        );
                    }
                    None => {
                        core.pins.remove(name);
                    }
                }
            }
        }
        for n in std::mem::take(&mut core.force_restart) {
            if let Some(o) = obs.apps.get_mut(&n) {
                o.fingerprint = None;
            }
        }
        for action in plan(&core.desired, &obs) {
            match action {
                Action::SetLimits { cpu, ram } => {
                    if let Err(e) = self.os.cgroups.set_limits(cpu, ram) {
                        tracing::error!(cpu, ram, error = %e, "setting the cpu/ram limits");
                    }
                    // Not retried every tick; a config change retries.
                    core.limits = Some((cpu, ram));
                }
                Action::StopApp { name } => {
                    let was_running = core.pids.contains_key(&name);
                    if was_running {
                        self.update(&name, "stop", |r| r.status = Status::Stopping);
                    }
                    core.pids.remove(&name);
                    match self.stop_app(&name) {
                        Ok(()) => self.update(&name, "stopped", |r| {
                            r.pid = None;
                            if matches!(
                                r.status,
                                Status::Running | Status::Stopping | Status::Starting
                            ) {
                                r.status = Status::Stopped;
                            }
                        }),
                        Err(e) => {
                            let e = format!("stop: {e}");
                            self.fail(&name, &e);
                            errors.insert(name.clone(), e);
                        }
                    }
                }
                Action::StartApp {
                    name,
                    image,
                    fingerprint,
                } => {
                    let Some(app) = core.desired.apps.get(&name).cloned() else {
                        continue;
                    };
                    self.update(&name, "start", |r| r.status = Status::Starting);
                    match self.start_app(&app, &image, &fingerprint) {
                        Ok((pid, rec)) => {
                            core.pids.insert(name.clone(), pid);
                            self.update(&name, "started", |r| {
                                r.status = Status::Running;
                                r.pid = Some(pid);
                                r.started_at = rec.started_at.clone();
                                r.image_file = Some(rec.image.clone());
                                r.image_sha256 = rec.sha256.clone();
                                r.restart_count += 1;
                                r.last_error = None;
                            });
                        }
                        Err(e) => {
                            // Undo what the start did; its own errors only
                            // go to tracing, the start error is the news.
                            if let Err(e2) = self.stop_app(&name) {
                                tracing::warn!(app = name, error = %e2, "cleanup after failed start");
                            }
                            core.requested.remove(&name);
                            let e = format!("start: {e}");
                            self.fail(&name, &e);
                            errors.insert(name.clone(), e);
                        }
                    }
                }
            }
        }
        self.finalize(core, &obs);
        errors
    }

    /// Statuses of apps no action touched; drops rows of deleted apps.
    fn finalize(&self, core: &Core, obs: &Observed) {
        let names: Vec<String> = lock(&self.table).keys().cloned().collect();
        for n in names {
            if !core.desired.apps.contains_key(&n) {
                lock(&self.table).remove(&n);
            }
        }
        for (name, app) in &core.desired.apps {
            let running = core.pids.get(name).copied();
            let resolvable = obs.images.contains_key(name);
            // Only read when the status changes.
            let reason = if !app.enable {
                "not enabled".to_string()
            } else if running.is_some() {
                "running".to_string()
            } else if !resolvable {
                match &app.image {
                    Some(l) => format!("label '{l}' names no image"),
                    None => "no image configured".to_string(),
                }
            } else {
                "not requested".to_string()
            };
            self.update(name, &reason, |r| {
                if !app.enable {
                    *r = AppState {
                        status: Status::Disabled,
                        restart_count: r.restart_count,
                        last_error: r.last_error.take(),
                        ..Default::default()
                    };
                } else if let Some(pid) = running {
                    r.status = Status::Running;
                    r.pid = Some(pid);
                } else {
                    r.pid = None;
                    if !resolvable {
                        r.status = Status::NoImage;
                    } else if r.status != Status::Failed {
                        r.status = Status::Stopped;
                    }
                }
            });
        }
    }

    fn ram_budget(&self, ram_percent: u8) -> u64 {
        let total = fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|t| {
                t.lines()
                    .find(|l| l.starts_with("MemTotal:"))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|kb| kb.parse::<u64>().ok())
            })
            .unwrap_or(0)
            * 1024;
        total / 100 * u64::from(ram_percent)
    }

    fn start_app(
        &self,
        app: &AppConfig,
        image: &Path,
        fingerprint: &str,
    ) -> Result<(u32, StartRecord), String> {
        let name = app.name.as_str();
        let t0 = Instant::now();
        let dir = self.app_dir(name);
        fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
        let user_ns = app.netns == NetnsMode::UserNs;
        let sha256 = lock(&self.images).sha256(image).ok();
        let mut rec = StartRecord {
            fingerprint: fingerprint.to_string(),
            label: app.image.clone(),
            image: image.to_path_buf(),
            sha256,
            ports: Vec::new(),
            veths: Vec::new(),
            netns: user_ns,
            pid: None,
            started_at: None,
        };
        // Recorded before each side effect so a failed or interrupted start
        // can be undone, also by a later agent.
        self.write_record(name, &rec)?;
        let netns = if user_ns {
            self.os
                .net
                .create_netns(name)
                .map_err(|e| format!("netns: {e}"))?;
            for v in &app.veths {
                rec.veths.push(v.name.clone());
                self.write_record(name, &rec)?;
                self.os
                    .net
                    .add_veth(&v.name, &v.as_name, name)
                    .map_err(|e| format!("veth {}: {e}", v.name))?;
            }
            for p in &app.ports {
                rec.ports.push((p.name.clone(), p.as_name.clone()));
                self.write_record(name, &rec)?;
                self.os
                    .net
                    .move_port(&p.name, name, &p.as_name)
                    .map_err(|e| format!("port {}: {e}", p.name))?;
            }
            Some(self.os.net.netns_path(name))
        } else {
            None
        };
        let t_net = t0.elapsed();
        let ram = lock(&self.snapshot).ram;
        let tmpfs = self.ram_budget(ram).min(self.cfg.tmpfs_max).max(1 << 20);
        let rootfs = self
            .os
            .rootfs
            .mount(image, &dir, tmpfs)
            .map_err(|e| format!("rootfs: {e}"))?;
        let entry = entry_point(app, image);
        // Warms the fresh mount's page cache while the runtime works; held
        // until the runtime returned (see `Prefetch`).
        let _prefetch = entry.args.first().map(|exe| Prefetch::start(&rootfs, exe));
        let t_rootfs = t0.elapsed();
        let mut mounts = Vec::new();
        for m in &app.media {
            let source = lock(&self.images)
                .share_path(&m.media, &m.path, true)
                .map_err(|e| format!("media share {}:{}: {e}", m.media, m.path))?;
            mounts.push(BindMount {
                source,
                destination: m.as_path.clone(),
                readonly: false,
            });
        }
        let spec = BundleSpec {
            id: name.to_string(),
            rootfs,
            args: entry.args,
            env: entry.env,
            cwd: entry.cwd,
            capabilities: app.capabilities.clone(),
            hostname: name.to_string(),
            netns,
            cgroup_path: format!("/{}/{}", self.os.cgroups.parent(), name),
            mounts,
        };
        oci::write_bundle(&dir, &spec).map_err(|e| format!("bundle: {e}"))?;
        let log = self
            .logs
            .prepare(name)
            .map_err(|e| format!("log file: {e}"))?;
        let t_bundle = t0.elapsed();
        let pid = self
            .os
            .runtime
            .run(name, &dir, &log)
            .map_err(|e| format!("run: {e}"))?;
        let t_run = t0.elapsed();
        rec.pid = Some(pid);
        rec.started_at = Some(now_rfc3339());
        self.write_record(name, &rec)?;
        // Where a start spends its time (cumulative milliseconds).
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        tracing::info!(
            app = name,
            pid,
            image = %image.display(),
            net_ms = ms(t_net),
            rootfs_ms = ms(t_rootfs),
            bundle_ms = ms(t_bundle),
            runtime_ms = ms(t_run),
            "app started"
        );
        Ok((pid, rec))
    }

    /// SIGTERM → grace → SIGKILL, delete, return ports, delete veths and
    /// netns, unmount, remove cgroup, drop the start record. Every step is
    /// tried; the first error is returned.
    fn stop_app(&self, name: &str) -> Result<(), String> {
        let mut errors: Vec<String> = Vec::new();
        let rec = self.read_record(name);
        let rt = &self.os.runtime;
        let alive = |st: &Result<Option<crate::os::ContainerState>, OsError>| matches!(st, Ok(Some(c)) if matches!(c.status.as_str(), "running" | "created" | "paused"));
        let st = rt.state(name);
        if alive(&st) {
            let pid = st
                .as_ref()
                .ok()
                .and_then(|s| s.as_ref())
                .map(|c| c.pid)
                .unwrap_or(0);
            if let Err(e) = rt.kill(name, libc::SIGTERM) {
                tracing::warn!(app = name, error = %e, "SIGTERM");
            }
            let wait = |limit: Duration| {
                let t0 = Instant::now();
                loop {
                    reap(pid);
                    if !alive(&rt.state(name)) {
                        return true;
                    }
                    if t0.elapsed() >= limit {
                        return false;
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
            };
            if !wait(self.cfg.stop_grace) {
                tracing::info!(app = name, "grace time over, SIGKILL");
                if let Err(e) = rt.kill(name, libc::SIGKILL) {
                    errors.push(format!("SIGKILL: {e}"));
                }
                if !wait(Duration::from_secs(5)) {
                    errors.push("container survived SIGKILL".into());
                }
            }
        }
        if let Err(e) = rt.delete(name) {
            errors.push(format!("delete: {e}"));
        }
        // Steps done are struck from the record, so a retry after a partial
        // failure does only what is left (a port returned once cannot be
        // returned again).
        let mut rec = rec;
        if let Some(rec) = rec.as_mut() {
            rec.ports.retain(
                |(host, inside)| match self.os.net.return_port(name, inside, host) {
                    Ok(()) => false,
                    Err(e) => {
                        errors.push(format!("return port {host}: {e}"));
                        true
                    }
                },
            );
            rec.veths.retain(|v| match self.os.net.del_link(v) {
                Ok(()) => false,
                Err(e) => {
                    errors.push(format!("delete veth {v}: {e}"));
                    true
                }
            });
        }
        let has_netns =
            rec.as_ref().is_some_and(|r| r.netns) || self.os.net.netns_path(name).exists();
        if has_netns {
            match self.os.net.delete_netns(name) {
                Ok(()) => {
                    if let Some(r) = rec.as_mut() {
                        r.netns = false;
                    }
                }
                Err(e) => errors.push(format!("delete netns: {e}")),
            }
        }
        let dir = self.app_dir(name);
        if let Err(e) = self.os.rootfs.unmount(&dir) {
            errors.push(format!("unmount: {e}"));
        }
        if let Err(e) = self.os.cgroups.remove_app(name) {
            errors.push(format!("cgroup: {e}"));
        }
        if errors.is_empty() {
            // Keep nothing but the log: a deleted app leaves no directory.
            let _ = fs::remove_file(dir.join(RECORD));
            let _ = fs::remove_file(dir.join("config.json"));
            // Mount points only, emptied by the unmount: `remove_dir`
            // (never `_all`) so a mount still in place is never emptied.
            if !self.os.rootfs.is_mounted(&dir) {
                for sub in ["rootfs", "upper", "lower", "work"] {
                    let _ = fs::remove_dir(dir.join(sub));
                }
            }
            let _ = fs::remove_dir(&dir);
            tracing::info!(app = name, "app stopped");
            Ok(())
        } else {
            // The record stays so the next pass retries the teardown.
            if let Some(r) = &rec {
                if let Err(e) = self.write_record(name, r) {
                    tracing::warn!(app = name, error = e, "updating the start record");
                }
            }
            Err(errors.join("; "))
        }
    }

    fn lifecycle(&self, rpc: &str, app: &str, restart: bool) -> Result<(), RpcError> {
        let mut core = self.core();
        let Some(cfg) = core.desired.apps.get(app) else {
            return Err(unknown_app(rpc, app));
        };
        if !cfg.enable {
            return Err(RpcError::app(
                ErrorTag::OperationFailed,
                format!(
                    "app '{app}' is not enabled; set /app-hosting/app[name='{app}']/enable to true"
                ),
            )
            .with_path(rpc_path(rpc, "app")));
        }
        core.requested.insert(app.to_string());
        if restart && core.pids.contains_key(app) {
            core.force_restart.insert(app.to_string());
        }
        // A new attempt clears an earlier failure.
        self.update(app, rpc, |r| {
            if r.status == Status::Failed {
                r.status = Status::Stopped;
            }
        });
        if let Some(e) = self.pass(&mut core).remove(app) {
            return Err(RpcError::app(
                ErrorTag::OperationFailed,
                format!("{rpc} of app '{app}' failed: {e}"),
            ));
        }
        match self.state(app) {
            Some(s) if s.status == Status::Running => Ok(()),
            Some(s) if s.status == Status::NoImage => Err(RpcError::app(
                ErrorTag::OperationFailed,
                format!(
                    "app '{app}': image label '{}' names no image",
                    cfg_label(&core, app)
                ),
            )),
            Some(s) => Err(RpcError::app(
                ErrorTag::OperationFailed,
                format!(
                    "app '{app}' is {}: {}",
                    s.status.as_str(),
                    s.last_error.unwrap_or_else(|| "not started".into())
                ),
            )),
            None => Err(RpcError::app(
                ErrorTag::OperationFailed,
                format!("app '{app}' has no state"),
            )),
        }
    }

    // ===== pre-commit checks =====

    fn check(&self, d: &Desired) -> Vec<RpcError> {
        let mut errs = Vec::new();
        // Ports and veths currently held by our apps are not on the host (or
        // are ours), so they do not count as missing / taken.
        let mut our_ports = BTreeSet::new();
        let mut our_veths = BTreeSet::new();
        if let Ok(rd) = fs::read_dir(self.cfg.state_dir.join("apps")) {
            for e in rd.flatten() {
                let Ok(n) = e.file_name().into_string() else {
                    continue;
                };
                if let Some(r) = self.read_record(&n) {
                    our_ports.extend(r.ports.into_iter().map(|(h, _)| h));
                    our_veths.extend(r.veths);
                }
            }
        }
        let images = lock(&self.images);
        let bad = |path: String, tag: &str, msg: String| {
            RpcError::app(ErrorTag::InvalidValue, msg)
                .with_path(path)
                .with_app_tag(tag)
        };
        for app in d.apps.values() {
            let base = app.path();
            let mut inside: BTreeMap<&str, String> = BTreeMap::new();
            for p in &app.ports {
                let path = format!("{base}/share/port[name={}]", pred(&p.name));
                if !valid_ifname(&p.name) || !valid_ifname(&p.as_name) {
                    errs.push(bad(
                        format!("{path}/as"),
                        "bad-interface-name",
                        format!("invalid interface name '{}'", p.as_name),
                    ));
                }
                if !self.os.net.link_exists(&p.name) && !our_ports.contains(&p.name) {
                    errs.push(bad(
                        format!("{path}/name"),
                        "port-not-found",
                        format!("app '{}': no interface '{}' on the host", app.name, p.name),
                    ));
                }
                if let Some(other) = inside.insert(&p.as_name, format!("{path}/as")) {
                    errs.push(bad(
                        other,
                        "name-collision",
                        format!("app '{}': two interfaces named '{}'", app.name, p.as_name),
                    ));
                }
            }
            for v in &app.veths {
                let path = format!("{base}/share/veth[name={}]", pred(&v.name));
                if !valid_ifname(&v.name) || !valid_ifname(&v.as_name) {
                    errs.push(bad(
                        format!("{path}/as"),
                        "bad-interface-name",
                        format!("invalid interface name '{}'", v.as_name),
                    ));
                }
                if self.os.net.link_exists(&v.name) && !our_veths.contains(&v.name) {
                    errs.push(bad(
                        format!("{path}/name"),
                        "veth-exists",
                        format!(
                            "app '{}': interface '{}' already exists on the host",
                            app.name, v.name
                        ),
                    ));
                }
                if inside.insert(&v.as_name, format!("{path}/as")).is_some() {
                    errs.push(bad(
                        format!("{path}/as"),
                        "name-collision",
                        format!("app '{}': two interfaces named '{}'", app.name, v.as_name),
                    ));
                }
            }
            for m in &app.media {
                let path = format!(
                    "{base}/share/media[media={}][path={}]",
                    pred(&m.media),
                    pred(&m.path)
                );
                match images.share_path(&m.media, &m.path, false) {
                    Ok(_) => {}
                    Err(ImageError::UnknownMedia(_)) => errs.push(bad(
                        format!("{path}/media"),
                        "unknown-media",
                        format!("no media '{}'", m.media),
                    )),
                    Err(ImageError::Escapes { .. }) => errs.push(bad(
                        format!("{path}/path"),
                        "path-escapes-media",
                        format!("'{}' leads outside media '{}'", m.path, m.media),
                    )),
                    Err(e) => errs.push(bad(
                        format!("{path}/path"),
                        "media-unavailable",
                        e.to_string(),
                    )),
                }
            }
            if let Some(l) = &app.image {
                if !valid_label(l) {
                    errs.push(bad(
                        format!("{base}/image"),
                        "bad-label",
                        format!("invalid label '{l}'"),
                    ));
                }
            }
        }
        errs
    }

    // ===== operational state =====

    fn state_tree(&self) -> Result<DataTree<'static>, yang2::Error> {
        let mut t = DataTree::new(schema::context());
        let clean = |s: &str| s.replace('\0', "");
        let rows: Vec<(String, AppState)> = lock(&self.table)
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for (name, s) in &rows {
            let base = format!("{TOP}/app[name={}]/state", pred(name));
            t.new_path(&format!("{base}/status"), Some(s.status.as_str()), false)?;
            if let Some(pid) = s.pid {
                t.new_path(&format!("{base}/pid"), Some(&pid.to_string()), false)?;
            }
            if let Some(v) = &s.started_at {
                t.new_path(&format!("{base}/started-at"), Some(v), false)?;
            }
            if let Some(v) = &s.image_file {
                t.new_path(
                    &format!("{base}/image-file"),
                    Some(&clean(&v.to_string_lossy())),
                    false,
                )?;
            }
            if let Some(v) = &s.image_sha256 {
                t.new_path(&format!("{base}/image-sha256"), Some(v), false)?;
            }
            t.new_path(
                &format!("{base}/restart-count"),
                Some(&s.restart_count.to_string()),
                false,
            )?;
            if let Some(v) = &s.last_error {
                t.new_path(&format!("{base}/last-error"), Some(&clean(v)), false)?;
            }
            if s.status == Status::Running {
                if let Some((mem, cpu)) = self.os.cgroups.usage(name) {
                    t.new_path(
                        &format!("{base}/memory-usage"),
                        Some(&mem.to_string()),
                        false,
                    )?;
                    t.new_path(&format!("{base}/cpu-usage"), Some(&cpu.to_string()), false)?;
                }
            }
        }
        let desired = lock(&self.snapshot).clone();
        let (media, list, labels) = {
            let images = lock(&self.images);
            let list = images.list().unwrap_or_else(|e| {
                tracing::warn!(error = %e, "listing images");
                Vec::new()
            });
            (
                images.media_list(),
                list,
                images.labels().unwrap_or_default(),
            )
        };
        for m in media {
            let base = format!("{TOP}/media[name={}]", pred(&m.name));
            t.new_path(
                &format!("{base}/path"),
                Some(&clean(&m.path.to_string_lossy())),
                false,
            )?;
            t.new_path(
                &format!("{base}/available"),
                Some(if m.available { "true" } else { "false" }),
                false,
            )?;
            t.new_path(&format!("{base}/size"), Some(&m.size.to_string()), false)?;
            t.new_path(&format!("{base}/free"), Some(&m.free.to_string()), false)?;
        }
        for i in list {
            let base = format!("{TOP}/image[name={}]", pred(&i.name));
            t.new_path(&format!("{base}/size"), Some(&i.size.to_string()), false)?;
            if let Some(h) = &i.sha256 {
                t.new_path(&format!("{base}/sha256"), Some(h), false)?;
            }
            for l in &i.labels {
                t.new_path(&format!("{base}/label[.={}]", pred(l)), None, false)?;
            }
            for a in desired.apps.values() {
                let uses = a
                    .image
                    .as_ref()
                    .and_then(|l| labels.get(l))
                    .is_some_and(|img| *img == i.name);
                if uses {
                    t.new_path(&format!("{base}/used-by[.={}]", pred(&a.name)), None, false)?;
                }
            }
        }
        Ok(t)
    }
}

fn cfg_label(core: &Core, app: &str) -> String {
    core.desired
        .apps
        .get(app)
        .and_then(|a| a.image.clone())
        .unwrap_or_default()
}

fn valid_ifname(n: &str) -> bool {
    let b = n.as_bytes();
    !b.is_empty()
        && b.len() <= 15
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

// ===== entry point =====

/// What the container runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub cwd: String,
}

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// `cmd` when set explicitly, else the image's OCI config entrypoint + cmd
/// (from `<image>.json` or `<image-stem>.json` beside it), else
/// `/sbin/init`. Environment: PATH, then the image's, then the app's.
pub fn entry_point(app: &AppConfig, image: &Path) -> Entry {
    let oci = image_config(image);
    let mut env: Vec<(String, String)> = vec![("PATH".into(), DEFAULT_PATH.into())];
    let mut set = |k: String, v: String| {
        if let Some(e) = env.iter_mut().find(|(ek, _)| *ek == k) {
            e.1 = v;
        } else {
            env.push((k, v));
        }
    };
    if let Some(c) = &oci {
        for kv in &c.env {
            if let Some((k, v)) = kv.split_once('=') {
                set(k.to_string(), v.to_string());
            }
        }
    }
    for (k, v) in &app.env {
        set(k.clone(), v.clone());
    }
    let image_args: Vec<String> = oci
        .as_ref()
        .map(|c| c.entrypoint.iter().chain(&c.cmd).cloned().collect())
        .unwrap_or_default();
    let args = if app.cmd_explicit {
        split_command(&app.cmd)
    } else if !image_args.is_empty() {
        image_args
    } else {
        vec![app.cmd.clone()]
    };
    let args = if args.is_empty() {
        vec![super::model::DEFAULT_CMD.to_string()]
    } else {
        args
    };
    let cwd = oci
        .and_then(|c| c.working_dir)
        .filter(|w| w.starts_with('/'))
        .unwrap_or_else(|| "/".into());
    Entry { args, env, cwd }
}

#[derive(Debug, Default)]
struct ImageConfig {
    entrypoint: Vec<String>,
    cmd: Vec<String>,
    env: Vec<String>,
    working_dir: Option<String>,
}

fn image_config(image: &Path) -> Option<ImageConfig> {
    let mut candidates = vec![PathBuf::from(format!("{}.json", image.display()))];
    candidates.push(image.with_extension("json"));
    let text = candidates.iter().find_map(|p| fs::read_to_string(p).ok())?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    // The whole OCI image config, or just its `config` object.
    let c = v.get("config").filter(|c| c.is_object()).unwrap_or(&v);
    let strings = |key: &str| -> Vec<String> {
        c.get(key)
            .and_then(|x| x.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    Some(ImageConfig {
        entrypoint: strings("Entrypoint"),
        cmd: strings("Cmd"),
        env: strings("Env"),
        working_dir: c
            .get("WorkingDir")
            .and_then(|w| w.as_str())
            .filter(|w| !w.is_empty())
            .map(str::to_string),
    })
}

/// Splits a command line like a shell would for words: whitespace
/// separates, '…' and "…" quote, backslash escapes (outside '…').
pub fn split_command(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    let mut quote: Option<char> = None;
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some('\''), '\'') => quote = None,
            (Some('"'), '"') => quote = None,
            (Some('"'), '\\') | (None, '\\') => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
                in_word = true;
            }
            (Some(_), c) => cur.push(c),
            (None, '\'') | (None, '"') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        out.push(cur);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_command_words_and_quotes() {
        assert_eq!(
            split_command("/bin/sh -c 'echo hi; sleep 1'"),
            vec!["/bin/sh", "-c", "echo hi; sleep 1"]
        );
        assert_eq!(
            split_command(r#"a "b c" d\ e ''"#),
            vec!["a", "b c", "d e", ""]
        );
        assert_eq!(split_command("  "), Vec::<String>::new());
    }

    #[test]
    fn entry_point_prefers_explicit_cmd_then_image_config_then_init() {
        let t = tempfile::tempdir().unwrap();
        let img = t.path().join("web.img");
        fs::write(&img, b"x").unwrap();
        let mut app = AppConfig::new("web");
        app.env.push(("B".into(), "app".into()));
        // No image config: /sbin/init.
        let e = entry_point(&app, &img);
        assert_eq!(e.args, vec!["/sbin/init"]);
        assert_eq!(e.cwd, "/");
        fs::write(
            t.path().join("web.img.json"),
            r#"{"architecture":"amd64","config":{"Entrypoint":["/bin/httpd"],"Cmd":["-f","-p","80"],
               "Env":["A=img","B=img"],"WorkingDir":"/www"}}"#,
        )
        .unwrap();
        let e = entry_point(&app, &img);
        assert_eq!(e.args, vec!["/bin/httpd", "-f", "-p", "80"]);
        assert_eq!(e.cwd, "/www");
        assert!(e.env.contains(&("A".into(), "img".into())));
        assert!(
            e.env.contains(&("B".into(), "app".into())),
            "app env overrides image env"
        );
        assert_eq!(e.env[0].0, "PATH");
        app.cmd = "/bin/sh -c 'sleep 5'".into();
        app.cmd_explicit = true;
        assert_eq!(
            entry_point(&app, &img).args,
            vec!["/bin/sh", "-c", "sleep 5"]
        );
    }
}
