//! State shared by all NETCONF sessions: the datastores with their locks
//! (one mutex, so a lock check and the edit it guards are atomic), the
//! session registry (ids, kill handles, monitoring counters), the
//! reconciler that follows running, and the notification bus.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use tokio::sync::{broadcast, Notify};

use yang2::data::{DataDiffFlags, DataDiffOp, DataTree};

use crate::apphost::AppEvent;
use crate::datastore::confirmed::{self, ConfirmedCommit, Rollback};
use crate::datastore::{Commit, Datastores, DsName};
use crate::error::{ErrorTag, RpcError};
use crate::nacm::{Nacm, Principal};
use crate::netconf::rpc::YangRpcs;
use crate::notify::{events, Bus, Event, SessionParms};
use crate::reconciler::Reconciler;

/// Events kept for `startTime` replay (RFC 5277 §3.3), all streams
/// together. An event is a few hundred bytes of libyang tree.
pub const NOTIF_REPLAY: usize = 1000;
/// How far a subscriber may fall behind the newest event before it loses
/// the oldest ones (counted, see [`SessionStats::dropped_notifications`]).
pub const NOTIF_QUEUE: usize = 256;

/// Operational state of the domain (app status, images, media) for
/// `<get>` and get-data of the operational datastore.
pub trait StateProvider: Send + Sync {
    /// A tree of state data (may also hold config nodes, which are
    /// ignored), or `None` when there is nothing to report.
    fn state(&self) -> Result<Option<DataTree<'static>>, RpcError>;
}

/// Limits applied to every session.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_message_size: usize,
    /// Close a session after this long without an RPC (never while it has a
    /// notification subscription).
    pub idle_timeout: Option<Duration>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_size: crate::config::DEFAULT_MAX_MESSAGE_SIZE,
            idle_timeout: None,
        }
    }
}

/// A held datastore lock (RFC 6241 §7.5).
#[derive(Debug, Clone)]
pub struct LockInfo {
    pub session: u32,
    /// For ietf-netconf-monitoring `locked-time`.
    pub since: chrono::DateTime<chrono::Utc>,
}

/// Locks of the three datastores.
#[derive(Debug, Default)]
pub struct Locks {
    running: Option<LockInfo>,
    candidate: Option<LockInfo>,
    startup: Option<LockInfo>,
}

impl Locks {
    pub fn get(&self, ds: DsName) -> Option<&LockInfo> {
        self.slot(ds).as_ref()
    }
    fn slot(&self, ds: DsName) -> &Option<LockInfo> {
        match ds {
            DsName::Running => &self.running,
            DsName::Candidate => &self.candidate,
            DsName::Startup => &self.startup,
        }
    }
    fn slot_mut(&mut self, ds: DsName) -> &mut Option<LockInfo> {
        match ds {
            DsName::Running => &mut self.running,
            DsName::Candidate => &mut self.candidate,
            DsName::Startup => &mut self.startup,
        }
    }
    /// The session holding `ds` if it is not `me`.
    pub fn held_by_other(&self, ds: DsName, me: u32) -> Option<u32> {
        self.get(ds).map(|l| l.session).filter(|s| *s != me)
    }
}

/// The datastores, their locks and the pending confirmed commit, behind
/// one mutex.
pub struct Core {
    pub ds: Datastores,
    pub locks: Locks,
    /// Confirmed commit (RFC 6241 §8.4); in memory unless the daemon
    /// installs the recovered, persisted one.
    pub confirmed: ConfirmedCommit,
    /// The access-control rules of running, and the running generation they
    /// were read from.
    nacm: (u64, Arc<Nacm>),
}

impl Core {
    fn new(ds: Datastores) -> Core {
        let nacm = (
            ds.running_generation(),
            Arc::new(Nacm::from_running(ds.tree(DsName::Running))),
        );
        Core {
            ds,
            locks: Locks::default(),
            confirmed: ConfirmedCommit::in_memory(),
            nacm,
        }
    }

    /// The access-control rules in effect: those of the current running.
    /// Rebuilt here, on first use after running changed (however it
    /// changed: edit, commit, copy-config, rollback), so a rule change
    /// holds from the next operation on; otherwise one integer compare.
    pub fn nacm(&mut self) -> Arc<Nacm> {
        let generation = self.ds.running_generation();
        if self.nacm.0 != generation {
            self.nacm = (
                generation,
                Arc::new(Nacm::from_running(self.ds.tree(DsName::Running))),
            );
            tracing::debug!(generation, "access-control rules reloaded");
        }
        self.nacm.1.clone()
    }

    /// Refuses a write to `ds` by `me` while another session locks it.
    pub fn check_writable(&self, ds: DsName, me: u32) -> Result<(), RpcError> {
        match self.locks.held_by_other(ds, me) {
            Some(holder) => Err(RpcError::protocol(
                ErrorTag::InUse,
                format!(
                    "the {} datastore is locked by session {holder}",
                    ds.as_str()
                ),
            )
            .with_info("session-id", holder.to_string())),
            None => Ok(()),
        }
    }

    /// lock (RFC 6241 §7.5).
    pub fn lock(&mut self, ds: DsName, me: u32) -> Result<(), RpcError> {
        if let Some(l) = self.locks.get(ds) {
            // Also when `me` holds it already: a lock is not reentrant.
            return Err(RpcError::protocol(
                ErrorTag::LockDenied,
                format!(
                    "the {} datastore is already locked by session {}",
                    ds.as_str(),
                    l.session
                ),
            )
            .with_info("session-id", l.session.to_string()));
        }
        if ds == DsName::Candidate && self.ds.candidate_modified() {
            // RFC 6241 §8.3.5.2: no lock while candidate holds changes.
            return Err(RpcError::protocol(
                ErrorTag::LockDenied,
                "the candidate datastore has uncommitted changes; commit or discard them first",
            )
            .with_info("session-id", "0"));
        }
        *self.locks.slot_mut(ds) = Some(LockInfo {
            session: me,
            since: chrono::Utc::now(),
        });
        Ok(())
    }

    /// unlock (RFC 6241 §7.6).
    pub fn unlock(&mut self, ds: DsName, me: u32) -> Result<(), RpcError> {
        match self.locks.get(ds) {
            Some(l) if l.session == me => {
                self.release(ds);
                Ok(())
            }
            Some(l) => Err(RpcError::protocol(
                ErrorTag::LockDenied,
                format!(
                    "the {} datastore is locked by session {}",
                    ds.as_str(),
                    l.session
                ),
            )
            .with_info("session-id", l.session.to_string())),
            None => Err(RpcError::protocol(
                ErrorTag::OperationFailed,
                format!("the {} datastore is not locked", ds.as_str()),
            )),
        }
    }

    fn release(&mut self, ds: DsName) {
        *self.locks.slot_mut(ds) = None;
        // Changes made under a candidate lock belong to the session that
        // held it: releasing the lock discards them (as sysrepo/netopeer2
        // do), so the next client does not inherit a half-done edit.
        if ds == DsName::Candidate && self.ds.candidate_modified() {
            self.ds.discard_changes();
        }
    }

    /// Releases every lock of `session` (session end, kill-session).
    pub fn release_all(&mut self, session: u32) {
        for ds in [DsName::Running, DsName::Candidate, DsName::Startup] {
            if self.locks.get(ds).is_some_and(|l| l.session == session) {
                tracing::info!(
                    session,
                    datastore = ds.as_str(),
                    "lock released at session end"
                );
                self.release(ds);
            }
        }
    }
}

/// Per-session counters (ietf-netconf-monitoring `session` list).
#[derive(Debug, Default)]
pub struct SessionStats {
    pub in_rpcs: AtomicU64,
    pub in_bad_rpcs: AtomicU64,
    pub out_rpc_errors: AtomicU64,
    pub out_notifications: AtomicU64,
    /// Notifications this session's subscription lost because it fell too
    /// far behind (events of any stream that it missed).
    pub dropped_notifications: AtomicU64,
    /// Active notification subscriptions; while non-zero the session is
    /// never closed for idleness.
    pub subscriptions: AtomicU32,
}

/// One registered session.
#[derive(Debug, Clone)]
pub struct SessionEntry {
    pub id: u32,
    pub user: String,
    pub peer: Option<SocketAddr>,
    pub login_time: chrono::DateTime<chrono::Utc>,
    pub stats: Arc<SessionStats>,
    /// Signalled by kill-session and shutdown.
    kill: Arc<Notify>,
    /// Who killed the session (0: nobody), for netconf-session-end.
    killed_by: Arc<AtomicU32>,
}

/// Global counters (ietf-netconf-monitoring `statistics`).
#[derive(Debug, Default)]
pub struct GlobalStats {
    pub in_sessions: AtomicU64,
    pub in_bad_hellos: AtomicU64,
    pub dropped_sessions: AtomicU64,
    pub in_rpcs: AtomicU64,
    pub in_bad_rpcs: AtomicU64,
    pub out_rpc_errors: AtomicU64,
    pub out_notifications: AtomicU64,
}

/// Everything the sessions share.
pub struct Agent {
    core: Mutex<Core>,
    /// The access-control rules as last read from the core, for callers
    /// that must not wait for the core lock (notifications).
    nacm_seen: Mutex<Arc<Nacm>>,
    sessions: Mutex<HashMap<u32, SessionEntry>>,
    next_id: AtomicU32,
    reconciler: Arc<dyn Reconciler>,
    pub limits: Limits,
    pub stats: GlobalStats,
    /// For ietf-netconf-monitoring `netconf-start-time`.
    pub start_time: chrono::DateTime<chrono::Utc>,
    yang_rpcs: OnceLock<Arc<dyn YangRpcs>>,
    state: OnceLock<Arc<dyn StateProvider>>,
    /// Event notifications (RFC 5277) for every session's subscription.
    pub bus: Arc<Bus>,
    /// Events go to the bus through one worker thread, in order: the
    /// config-change of a commit needs a diff of two whole configurations,
    /// which must not delay the commit's reply.
    publisher: Mutex<std::sync::mpsc::Sender<PublishJob>>,
    /// Wakes the confirmed-commit timer when the deadline may have moved.
    confirmed_changed: Arc<Notify>,
}

impl Agent {
    /// The shared state. Inside a tokio runtime this also starts the
    /// confirmed-commit timer.
    pub fn new(ds: Datastores, reconciler: Arc<dyn Reconciler>, limits: Limits) -> Arc<Agent> {
        let mut core = Core::new(ds);
        let bus = Arc::new(Bus::new(NOTIF_REPLAY, NOTIF_QUEUE));
        let publisher = spawn_publisher(bus.clone());
        let agent = Arc::new(Agent {
            nacm_seen: Mutex::new(core.nacm()),
            core: Mutex::new(core),
            confirmed_changed: Arc::new(Notify::new()),
            sessions: Mutex::new(HashMap::new()),
            next_id: AtomicU32::new(1),
            reconciler,
            limits,
            stats: GlobalStats::default(),
            start_time: chrono::Utc::now(),
            yang_rpcs: OnceLock::new(),
            state: OnceLock::new(),
            bus,
            publisher: Mutex::new(publisher),
        });
        if tokio::runtime::Handle::try_current().is_ok() {
            agent.start_confirmed_timer();
        }
        agent
    }

    /// Installs the handler of non-NETCONF RPCs (once, at start-up).
    pub fn set_yang_rpcs(&self, h: Arc<dyn YangRpcs>) {
        let _ = self.yang_rpcs.set(h);
    }
    pub fn yang_rpcs(&self) -> Option<&Arc<dyn YangRpcs>> {
        self.yang_rpcs.get()
    }
    /// Installs the operational state source (once, at start-up).
    pub fn set_state_provider(&self, p: Arc<dyn StateProvider>) {
        let _ = self.state.set(p);
    }
    pub fn state_provider(&self) -> Option<&Arc<dyn StateProvider>> {
        self.state.get()
    }

    /// The datastores and locks. A std mutex: every holder does short,
    /// CPU-bound libyang work and never awaits while holding it.
    pub fn core(&self) -> MutexGuard<'_, Core> {
        // A panic while holding the lock leaves the trees as libyang left
        // them, which are still valid trees; keep serving.
        self.core.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The access-control rules in effect (see [`Core::nacm`]).
    pub fn nacm(&self) -> Arc<Nacm> {
        let n = self.core().nacm();
        *self.nacm_seen() = n.clone();
        n
    }

    /// Whether `principal` may receive notification `name` of YANG module
    /// `module` (RFC 8341 §3.4.6); the session asks this per notification
    /// and silently drops the denied ones. Never waits for the core lock
    /// (sessions call it on the runtime thread while an RPC may hold the
    /// lock for long): the rules as last read are used then.
    pub fn allow_notification_for(&self, principal: &Principal, module: &str, name: &str) -> bool {
        let nacm = match self.core.try_lock() {
            Ok(mut core) => Some(core.nacm()),
            Err(std::sync::TryLockError::Poisoned(p)) => Some(p.into_inner().nacm()),
            Err(std::sync::TryLockError::WouldBlock) => None,
        };
        let nacm = match nacm {
            Some(n) => {
                *self.nacm_seen() = n.clone();
                n
            }
            None => self.nacm_seen().clone(),
        };
        nacm.allow_notification(principal, module, name)
    }

    fn nacm_seen(&self) -> MutexGuard<'_, Arc<Nacm>> {
        self.nacm_seen.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn sessions(&self) -> MutexGuard<'_, HashMap<u32, SessionEntry>> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a new session; the returned guard unregisters it and
    /// releases its locks when dropped, however the session ends.
    pub fn register(
        self: &Arc<Self>,
        principal: &Principal,
        peer: Option<SocketAddr>,
    ) -> SessionGuard {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let kill = Arc::new(Notify::new());
        let stats = Arc::new(SessionStats::default());
        let killed_by = Arc::new(AtomicU32::new(0));
        self.sessions().insert(
            id,
            SessionEntry {
                id,
                user: principal.name.clone(),
                peer,
                login_time: chrono::Utc::now(),
                stats: stats.clone(),
                kill: kill.clone(),
                killed_by: killed_by.clone(),
            },
        );
        self.stats.in_sessions.fetch_add(1, Ordering::Relaxed);
        SessionGuard {
            agent: self.clone(),
            id,
            kill,
            stats,
            killed_by,
            parms: SessionParms {
                username: principal.name.clone(),
                session_id: id,
                source_host: peer.map(|p| p.ip().to_string()),
            },
        }
    }

    /// `common-session-parms` of a live session (RFC 6470), for events it
    /// causes. A session that is gone gives its id with an empty user.
    pub fn session_parms(&self, id: u32) -> SessionParms {
        let sessions = self.sessions();
        let entry = sessions.get(&id);
        SessionParms {
            username: entry.map(|e| e.user.clone()).unwrap_or_default(),
            session_id: id,
            source_host: entry.and_then(|e| e.peer).map(|p| p.ip().to_string()),
        }
    }

    /// All sessions, for monitoring.
    pub fn session_list(&self) -> Vec<SessionEntry> {
        let mut v: Vec<_> = self.sessions().values().cloned().collect();
        v.sort_by_key(|s| s.id);
        v
    }

    /// kill-session (RFC 6241 §7.9): releases the victim's locks at once
    /// and tells its task to stop.
    pub fn kill(&self, victim: u32) -> bool {
        self.kill_by(victim, 0)
    }

    /// kill-session by session `by` (0: the server), which
    /// netconf-session-end reports as `killed-by`.
    pub fn kill_by(&self, victim: u32, by: u32) -> bool {
        let entry = self.sessions().remove(&victim);
        match entry {
            Some(e) => {
                e.killed_by.store(by, Ordering::Relaxed);
                self.core().release_all(victim);
                self.stats.dropped_sessions.fetch_add(1, Ordering::Relaxed);
                e.kill.notify_one();
                true
            }
            None => false,
        }
    }

    /// Asks every session to end (shutdown).
    pub fn kill_all(&self) {
        for e in self.sessions().values() {
            e.kill.notify_one();
        }
    }

    /// The reconciler's side-effect free check of a would-be running tree.
    pub fn check(&self, new: &DataTree<'static>) -> Result<(), Vec<RpcError>> {
        self.reconciler.check(new)
    }

    /// Hands a change of running to the reconciler. Called without the core
    /// lock held: reconciling may take a while and must not block sessions.
    pub fn reconcile(&self, commit: &Commit) {
        let span = tracing::info_span!("reconcile");
        let _g = span.enter();
        self.reconciler.apply(commit);
    }

    /// A confirmed-commit step happened (start, extend, complete, cancel,
    /// timeout): the timer re-reads the deadline, and the event is reported.
    pub fn confirmed_event(&self, ev: confirmed::Event) {
        let who = ev.session.map(|id| self.session_parms(id));
        self.confirmed_event_by(ev, who.as_ref());
    }

    /// [`Agent::confirmed_event`] with the causing session's parameters
    /// given (the session may be gone from the registry already).
    fn confirmed_event_by(&self, ev: confirmed::Event, who: Option<&SessionParms>) {
        tracing::info!(
            event = ev.kind.as_str(),
            session = ?ev.session,
            timeout = ?ev.timeout,
            "confirmed commit"
        );
        self.confirmed_changed.notify_one();
        self.publish(events::confirmed_commit(who, ev.kind.as_str(), ev.timeout));
    }

    /// A rollback of a pending confirmed commit: running went back, so the
    /// reconciler follows and the event is reported.
    pub fn rolled_back(&self, rb: Rollback) {
        let who = rb.event.session.map(|id| self.session_parms(id));
        self.rolled_back_by(rb, who.as_ref());
    }

    /// A rollback caused by `who` (cancel-commit, the owning session
    /// ending), or by the server (`None`: timeout, recovery at start), which
    /// netconf-config-change reports as `changed-by server`.
    fn rolled_back_by(&self, rb: Rollback, who: Option<&SessionParms>) {
        tracing::warn!(
            event = rb.event.kind.as_str(),
            "confirmed commit rolled back to the previous configuration"
        );
        self.reconcile(&rb.commit);
        self.send_job(PublishJob::Commit {
            who: who.cloned(),
            datastore: "running",
            commit: rb.commit,
        });
        self.confirmed_event_by(rb.event, who);
    }

    /// Rolls back a pending confirmed commit when its deadline passes
    /// (RFC 6241 §8.4.1). Holds the agent weakly: ends when it is gone.
    async fn confirmed_timer(agent: std::sync::Weak<Agent>, changed: Arc<Notify>) {
        // Re-checked at least this often, so a dropped agent ends the task.
        const MAX_WAIT: Duration = Duration::from_secs(30);
        loop {
            let Some(me) = agent.upgrade() else { return };
            let deadline = me.core().confirmed.deadline();
            drop(me);
            let wait = deadline
                .map(|d| {
                    d.duration_since(std::time::SystemTime::now())
                        .unwrap_or_default()
                })
                .unwrap_or(MAX_WAIT)
                .min(MAX_WAIT);
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = changed.notified() => continue,
            }
            let Some(me) = agent.upgrade() else { return };
            let result = {
                let mut core = me.core();
                let Core { ds, confirmed, .. } = &mut *core;
                confirmed.expire(ds, std::time::SystemTime::now())
            };
            match result {
                Ok(Some(rb)) => me.rolled_back(rb),
                Ok(None) => {}
                Err(errs) => {
                    tracing::error!(errors = ?errs, "confirmed-commit rollback failed; retrying")
                }
            }
        }
    }

    /// Starts the confirmed-commit timer (needs a tokio runtime).
    fn start_confirmed_timer(self: &Arc<Self>) {
        let weak = Arc::downgrade(self);
        let changed = self.confirmed_changed.clone();
        tokio::spawn(Self::confirmed_timer(weak, changed));
    }

    /// A session ended: its locks go, and so does a confirmed commit it
    /// owns without `<persist>` (RFC 6241 §8.4.1).
    fn session_ended(&self, who: &SessionParms) {
        let session = who.session_id;
        let rolled = {
            let mut core = self.core();
            core.release_all(session);
            let Core { ds, confirmed, .. } = &mut *core;
            confirmed.session_ended(ds, session)
        };
        match rolled {
            Ok(Some(rb)) => self.rolled_back_by(rb, Some(who)),
            Ok(None) => {}
            Err(errs) => tracing::error!(
                session,
                errors = ?errs,
                "rolling back the confirmed commit of an ended session failed; the timer retries"
            ),
        }
    }

    // ===== notifications =====

    /// Publishes an event to every subscription. Never blocks (the bus
    /// drops what a slow subscriber cannot take); an event that failed to
    /// build is logged and dropped, as losing a notification must not fail
    /// the operation that caused it.
    pub fn publish(&self, ev: Result<Event, RpcError>) {
        match ev {
            Ok(ev) => self.send_job(PublishJob::Ready(ev)),
            Err(e) => tracing::error!(error = %e, "notification could not be built; not sent"),
        }
    }

    fn send_job(&self, job: PublishJob) {
        let tx = self.publisher.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(std::sync::mpsc::SendError(job)) = tx.send(job) {
            // The worker is gone (it never exits while we live): publish
            // here rather than lose the event.
            job.run(&self.bus);
        }
    }

    /// netconf-config-change for a change of running by session `by`
    /// (`None`: the server, e.g. a confirmed-commit rollback), its edits
    /// computed by libyang's diff of the old and new running.
    pub fn publish_commit(&self, by: Option<u32>, commit: Commit) {
        let who = by.map(|id| self.session_parms(id));
        // The job owns the commit: the old configuration is freed on the
        // publisher thread, not on the reply path.
        self.send_job(PublishJob::Commit {
            who,
            datastore: "running",
            commit,
        });
    }

    /// netconf-config-change for a change of startup by session `by`
    /// (copy-config, delete-config), its edits from a diff.
    pub fn publish_startup(
        &self,
        by: u32,
        old: Arc<yang2::data::DataTree<'static>>,
        new: Arc<yang2::data::DataTree<'static>>,
    ) {
        if Arc::ptr_eq(&old, &new) {
            return;
        }
        self.send_job(PublishJob::Commit {
            who: Some(self.session_parms(by)),
            datastore: "startup",
            commit: Commit {
                old,
                new,
                edits: None,
            },
        });
    }

    /// netconf-config-change for an edit of running by session `by`, with
    /// the edits as requested (the operation the client asked for).
    pub fn publish_edit(&self, by: u32, changes: &[(String, &'static str)], commit: Commit) {
        self.publish_commit(
            Some(by),
            Commit {
                edits: Some(changes.to_vec()),
                ..commit
            },
        );
    }

    /// netconf-confirmed-commit (RFC 6470 §2.1.5). `event`: start, cancel,
    /// timeout, extend, complete; `by`: the session (none for timeout);
    /// `timeout`: seconds, for start and extend.
    pub fn publish_confirmed(&self, by: Option<u32>, event: &str, timeout: Option<u32>) {
        let who = by.map(|id| self.session_parms(id));
        self.publish(events::confirmed_commit(who.as_ref(), event, timeout));
    }

    /// Turns the domain's events into notifications: `app-state-changed` on
    /// stream NETCONF, `app-log` on stream `app-log`. Spawns a task on the
    /// current runtime that runs until the sender is gone.
    pub fn forward_app_events(
        self: &Arc<Self>,
        mut rx: broadcast::Receiver<AppEvent>,
    ) -> tokio::task::JoinHandle<()> {
        let agent = self.clone();
        tokio::spawn(async move {
            loop {
                match rx.recv().await {
                    Ok(AppEvent::StateChanged {
                        app,
                        status,
                        previous,
                        reason,
                    }) => agent.publish(events::app_state_changed(
                        &app,
                        status.as_str(),
                        previous.as_str(),
                        &reason,
                    )),
                    Ok(AppEvent::Log { app, line }) => agent.publish(events::app_log(&app, &line)),
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!(lost = n, "app events lost before becoming notifications");
                        agent.bus.note_dropped(n);
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        })
    }
}

/// The edits between two running trees as (data path, operation), for
/// netconf-config-change. Only the topmost node of a created or deleted
/// subtree is listed (libyang marks only it).
/// What the publisher thread does.
enum PublishJob {
    /// A built event.
    Ready(Event),
    /// netconf-config-change of a commit, its edits from the diff.
    Commit {
        who: Option<SessionParms>,
        datastore: &'static str,
        commit: Commit,
    },
}

impl PublishJob {
    fn run(self, bus: &Bus) {
        let ev = match self {
            PublishJob::Ready(ev) => Ok(ev),
            PublishJob::Commit {
                who,
                datastore,
                commit,
            } => {
                // The edits when known; a diff of two whole trees otherwise.
                let changes = match &commit.edits {
                    Some(edits) => edits.clone(),
                    None => changes_of(&commit),
                };
                if changes.is_empty() {
                    return;
                }
                events::config_change(who.as_ref(), datastore, &changes)
            }
        };
        match ev {
            Ok(ev) => {
                tracing::debug!(event = %ev.name, stream = ev.stream, "notification");
                bus.publish(ev);
            }
            Err(e) => tracing::error!(error = %e, "notification could not be built; not sent"),
        }
    }
}

/// The publisher thread; it ends when the agent (the sender) is gone.
fn spawn_publisher(bus: Arc<Bus>) -> std::sync::mpsc::Sender<PublishJob> {
    let (tx, rx) = std::sync::mpsc::channel::<PublishJob>();
    let spawned = std::thread::Builder::new()
        .name("notify-publish".into())
        .spawn(move || {
            while let Ok(job) = rx.recv() {
                job.run(&bus);
            }
        });
    if let Err(e) = spawned {
        // The sender then fails and `send_job` publishes inline.
        tracing::error!(error = %e, "cannot start the notification thread; publishing inline");
    }
    tx
}

pub fn changes_of(commit: &Commit) -> Vec<(String, &'static str)> {
    // DEFAULTS: the edit engine can leave the default flag on a
    // non-presence container that holds explicit nodes, and libyang would
    // then report the whole container as created. Nodes whose value merely
    // became explicit (or default) show up as replaced, which they were.
    let diff = match commit.old.diff(&commit.new, DataDiffFlags::DEFAULTS) {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!(error = ?e.msg, "diff of running failed; config-change lists no edits");
            return Vec::new();
        }
    };
    diff.iter()
        .map(|(op, node)| {
            let op = match op {
                DataDiffOp::Create => "create",
                DataDiffOp::Delete => "delete",
                DataDiffOp::Replace => "replace",
            };
            (node.path(), op)
        })
        .collect()
}

/// A registered session; dropping it ends the registration.
pub struct SessionGuard {
    agent: Arc<Agent>,
    pub id: u32,
    pub kill: Arc<Notify>,
    pub stats: Arc<SessionStats>,
    /// Set by [`Agent::kill_by`]: the killer's session id, 0 if none.
    pub killed_by: Arc<AtomicU32>,
    /// Who this session is, for the events it causes even after a kill
    /// removed it from the registry.
    pub parms: SessionParms,
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        self.agent.sessions().remove(&self.id);
        self.agent.session_ended(&self.parms);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datastore::EditOptions;

    fn edit(ds: &mut Datastores, target: DsName, body: &str) -> Option<Commit> {
        let xml = format!(
            "<config xmlns=\"{}\"><app-hosting xmlns=\"{}\">{body}</app-hosting></config>",
            crate::schema::NC_NS,
            crate::schema::AH_NS
        );
        let doc = roxmltree::Document::parse(&xml).expect("test XML");
        let out = ds.edit(target, doc.root_element(), &EditOptions::default());
        assert!(out.errors.is_empty(), "{:?}", out.errors);
        out.commit
    }

    #[test]
    fn changes_of_a_commit() {
        let mut ds = Datastores::new_empty();
        edit(&mut ds, DsName::Running, "<cpu>30</cpu>").expect("running changed");
        edit(
            &mut ds,
            DsName::Candidate,
            "<cpu>40</cpu><app><name>web</name></app>",
        );
        let c = ds.commit().expect("commit").expect("running changed");
        let changes = changes_of(&c);
        assert!(
            changes.contains(&("/app-hosting:app-hosting/cpu".into(), "replace")),
            "{changes:?}"
        );
        assert!(
            changes.contains(&("/app-hosting:app-hosting/app[name='web']".into(), "create")),
            "{changes:?}"
        );
        // Only those two: the defaults inside the new app are part of its
        // creation, and nothing else changed.
        assert_eq!(changes.len(), 2, "{changes:?}");
        // Back to the empty configuration: the app is deleted, cpu back to
        // its default.
        let empty = crate::datastore::empty_config();
        let c = ds
            .copy_config(
                DsName::Running,
                crate::datastore::ConfigSource::Inline(&empty),
            )
            .expect("copy-config")
            .expect("running changed");
        let changes = changes_of(&c);
        assert!(
            changes.contains(&("/app-hosting:app-hosting/app[name='web']".into(), "delete")),
            "{changes:?}"
        );
        assert!(
            changes.contains(&("/app-hosting:app-hosting/cpu".into(), "replace")),
            "{changes:?}"
        );
    }
}
