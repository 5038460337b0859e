//! Confirmed commit (RFC 6241 §8.4, `:confirmed-commit:1.1`) on top of
//! [`Datastores`]: a commit that is rolled back unless confirmed in time.
//!
//! One [`ConfirmedCommit`] lives next to the [`Datastores`] (under the same
//! mutex). The NETCONF layer calls [`ConfirmedCommit::commit`] for every
//! `<commit>` (plain or confirmed), [`ConfirmedCommit::cancel`] for
//! `<cancel-commit>`, [`ConfirmedCommit::session_ended`] when a session ends
//! for any reason, and [`ConfirmedCommit::expire`] when its timer reaches
//! [`ConfirmedCommit::deadline`]. Each change of running comes back as a
//! [`Commit`] for the reconciler, and each step as an [`Event`] for the
//! `netconf-confirmed-commit` notification (RFC 6470).
//!
//! The pending state survives an agent restart: the rollback point is kept in
//! `confirmed-rollback.xml` and the rest in `confirmed.toml` (both in the state
//! directory, written atomically; `confirmed.toml` is written last and
//! removed first, so it marks a complete pending state). See
//! [`ConfirmedCommit::recover`] and `docs/confirmed-commit.md`.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use yang2::data::{Data, DataFormat, DataPrinterFlags, DataTree};

use super::persist::{self, Store};
use super::{Commit, Datastores};
use crate::error::{ErrorTag, RpcError};

/// The rollback point (running before the first confirmed commit).
pub const ROLLBACK_FILE: &str = "confirmed-rollback.xml";
/// Deadline, persist id and session of the pending confirmed commit.
pub const STATE_FILE: &str = "confirmed.toml";
/// `confirm-timeout` default (RFC 6241 §8.4.5.1).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);
/// A rollback that failed (saving running failed) is retried this much later,
/// so a timer driven by [`ConfirmedCommit::deadline`] does not spin.
const RETRY_AFTER: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum ConfirmedError {
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("saving the confirmed-commit state: {0}")]
    Persist(#[from] persist::PersistError),
    #[error("rolling back the pending confirmed commit failed: {}", messages(.0))]
    Rollback(Vec<RpcError>),
}

fn messages(errs: &[RpcError]) -> String {
    errs.iter()
        .map(|e| {
            e.message
                .clone()
                .unwrap_or_else(|| e.tag.as_str().to_string())
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The parameters of one `<commit>` (RFC 6241 §8.4.5.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitParams {
    /// `<confirmed/>`.
    pub confirmed: bool,
    /// `<confirm-timeout>`; only meaningful with `confirmed`.
    pub timeout: Duration,
    /// `<persist>`: the token that lets any session confirm or cancel, and
    /// keeps the commit pending when the session ends.
    pub persist: Option<String>,
    /// `<persist-id>`: the token of the pending confirmed commit.
    pub persist_id: Option<String>,
}

impl Default for CommitParams {
    fn default() -> Self {
        CommitParams {
            confirmed: false,
            timeout: DEFAULT_TIMEOUT,
            persist: None,
            persist_id: None,
        }
    }
}

/// `confirm-event` of `netconf-confirmed-commit` (RFC 6470).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfirmEvent {
    /// A confirmed commit started a pending state.
    Start,
    /// A follow-up confirmed commit reset the timer.
    Extend,
    /// A confirming commit ended the pending state; running stays.
    Complete,
    /// `<cancel-commit>`, or the owning session ended: rolled back.
    Cancel,
    /// The timer ran out (also: found expired at agent start): rolled back.
    Timeout,
}

impl ConfirmEvent {
    /// The `confirm-event` enum value.
    pub fn as_str(self) -> &'static str {
        match self {
            ConfirmEvent::Start => "start",
            ConfirmEvent::Extend => "extend",
            ConfirmEvent::Complete => "complete",
            ConfirmEvent::Cancel => "cancel",
            ConfirmEvent::Timeout => "timeout",
        }
    }
}

/// What happened, for `notify::events::confirmed_commit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event {
    pub kind: ConfirmEvent,
    /// The session that caused it; `None` for the server itself (timeout,
    /// rollback at agent start): RFC 6470 then omits the session parameters.
    pub session: Option<u32>,
    /// Seconds until the rollback, for `start` and `extend`.
    pub timeout: Option<u32>,
}

/// Result of [`ConfirmedCommit::commit`].
#[derive(Debug)]
pub struct Outcome {
    /// The change of running, for the reconciler (`None`: running unchanged).
    pub commit: Option<Commit>,
    /// `None` for a plain commit with no confirmed commit pending.
    pub event: Option<Event>,
}

/// A rollback to the rollback point: the change of running (its `new` is the
/// configuration from before the confirmed commit) and the event.
#[derive(Debug)]
pub struct Rollback {
    pub commit: Commit,
    pub event: Event,
}

/// The pending confirmed commit.
struct Pending {
    /// Running before the first confirmed commit of the sequence.
    rollback: DataTree<'static>,
    deadline: SystemTime,
    /// `<persist>` of the latest confirmed commit: when set, any session
    /// holding it may confirm or cancel, and session end does not roll back.
    persist: Option<String>,
    /// Session of the latest confirmed commit (the owner when no persist).
    session: u32,
}

/// What `confirmed.toml` holds.
#[derive(Debug, Serialize, Deserialize)]
struct SavedState {
    /// Wall-clock deadline, milliseconds since the Unix epoch.
    deadline_unix_ms: u64,
    session: u32,
    persist: Option<String>,
    /// Kernel boot id when saved: a pending confirmed commit found after a
    /// reboot is rolled back at once (RFC 6241 §8.4.1).
    boot_id: Option<String>,
}

/// The confirmed-commit state machine. Owned next to the `Datastores`.
pub struct ConfirmedCommit {
    /// Where the pending state is saved; `None` keeps it in memory only.
    dir: Option<PathBuf>,
    /// This boot's kernel boot id, saved with the state.
    boot_id: Option<String>,
    pending: Option<Pending>,
}

impl std::fmt::Debug for ConfirmedCommit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfirmedCommit")
            .field("dir", &self.dir)
            .field("pending", &self.pending.is_some())
            .field("deadline", &self.deadline())
            .finish()
    }
}

impl ConfirmedCommit {
    /// No persistence: a restart forgets a pending confirmed commit (and so
    /// keeps its unconfirmed configuration). For tests and tools.
    pub fn in_memory() -> Self {
        ConfirmedCommit {
            dir: None,
            boot_id: None,
            pending: None,
        }
    }

    /// Loads the saved state at agent start, with the current time and the
    /// kernel's boot id. Call it after the datastores are loaded (and their
    /// saver installed), before sessions are accepted.
    pub fn recover(
        state_dir: &Path,
        ds: &mut Datastores,
    ) -> Result<(Self, Option<Rollback>), ConfirmedError> {
        let boot_id = persist::kernel_boot_id()?;
        Self::recover_at(state_dir, ds, SystemTime::now(), &boot_id)
    }

    /// As [`ConfirmedCommit::recover`] at time `now` in boot `boot_id`.
    ///
    /// - No saved state: nothing pending.
    /// - Saved in another boot (the device rebooted before the confirmation):
    ///   rolled back now (RFC 6241 §8.4.1; `cancel` event, no session).
    /// - Deadline passed while the agent was down: rolled back now
    ///   (`timeout` event, no session).
    /// - No `persist`: the owning session did not survive the restart, so it
    ///   is rolled back now (`cancel` event, no session).
    /// - Otherwise re-armed with the saved deadline.
    ///
    /// Unreadable state files are set aside (`NAME.corrupt-<unix time>`) and
    /// nothing is pending: without a rollback point there is nothing to roll
    /// back to. A rollback that fails is an error and the files stay, so the
    /// next start tries again.
    pub fn recover_at(
        state_dir: &Path,
        ds: &mut Datastores,
        now: SystemTime,
        boot_id: &str,
    ) -> Result<(Self, Option<Rollback>), ConfirmedError> {
        let mut me = ConfirmedCommit {
            dir: Some(state_dir.to_path_buf()),
            boot_id: Some(boot_id.trim().to_string()),
            pending: None,
        };
        let state_path = state_dir.join(STATE_FILE);
        let rollback_path = state_dir.join(ROLLBACK_FILE);
        // In-flight writes of a crashed agent are never authoritative.
        for name in [STATE_FILE, ROLLBACK_FILE] {
            remove_if_present(&state_dir.join(format!("{name}.tmp")))?;
        }
        let state_text = match fs::read_to_string(&state_path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                // A crash between writing the rollback file and the state
                // file: the confirmed commit never happened.
                remove_if_present(&rollback_path)?;
                return Ok((me, None));
            }
            Err(e) => return Err(io_err("reading", &state_path, e)),
        };
        let saved: SavedState = match toml::from_str(&state_text) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(file = %state_path.display(), error = %e, "confirmed-commit state unreadable; no confirmed commit pending, running kept");
                set_aside(&state_path)?;
                return Ok((me, None));
            }
        };
        let rollback = match fs::read(&rollback_path) {
            Ok(bytes) => persist::parse_saved(&bytes),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err("missing".to_string()),
            Err(e) => return Err(io_err("reading", &rollback_path, e)),
        };
        let rollback = match rollback {
            Ok(t) => t,
            Err(reason) => {
                tracing::error!(file = %rollback_path.display(), %reason, "confirmed-commit rollback point unusable; no confirmed commit pending, running kept");
                if rollback_path.exists() {
                    set_aside(&rollback_path)?;
                }
                set_aside(&state_path)?;
                return Ok((me, None));
            }
        };
        let deadline = UNIX_EPOCH + Duration::from_millis(saved.deadline_unix_ms);
        me.pending = Some(Pending {
            rollback,
            deadline,
            persist: saved.persist,
            session: saved.session,
        });
        let rebooted = saved
            .boot_id
            .as_deref()
            .is_some_and(|b| b != boot_id.trim());
        let event = if rebooted {
            Event {
                kind: ConfirmEvent::Cancel,
                session: None,
                timeout: None,
            }
        } else if now >= deadline {
            Event {
                kind: ConfirmEvent::Timeout,
                session: None,
                timeout: None,
            }
        } else if me.pending.as_ref().is_some_and(|p| p.persist.is_none()) {
            // The session is gone with the old process; the server itself
            // rolls back (no session parameters in the event).
            Event {
                kind: ConfirmEvent::Cancel,
                session: None,
                timeout: None,
            }
        } else {
            tracing::info!(
                remaining_s = deadline
                    .duration_since(now)
                    .map(|d| d.as_secs())
                    .unwrap_or(0),
                "pending confirmed commit (persist) re-armed after agent restart"
            );
            return Ok((me, None));
        };
        tracing::warn!(
            event = event.kind.as_str(),
            "pending confirmed commit rolled back at agent start"
        );
        let commit = me.rollback(ds).map_err(ConfirmedError::Rollback)?;
        Ok((me, Some(Rollback { commit, event })))
    }

    /// Whether a confirmed commit is pending.
    pub fn pending(&self) -> bool {
        self.pending.is_some()
    }

    /// When the pending confirmed commit rolls back: the server's timer calls
    /// [`ConfirmedCommit::expire`] then.
    pub fn deadline(&self) -> Option<SystemTime> {
        self.pending.as_ref().map(|p| p.deadline)
    }

    /// The `<persist>` token of the pending confirmed commit.
    pub fn persist_id(&self) -> Option<&str> {
        self.pending.as_ref().and_then(|p| p.persist.as_deref())
    }

    /// The session of the latest confirmed commit of the pending sequence.
    pub fn session(&self) -> Option<u32> {
        self.pending.as_ref().map(|p| p.session)
    }

    /// `<commit>` from `session` (RFC 6241 §8.3.4.1, §8.4.5.1).
    ///
    /// Nothing pending: a plain commit commits; a confirmed one commits and
    /// starts the pending state (`start`). Pending: a confirmed commit is a
    /// follow-up (`extend`: timer reset, candidate committed, rollback point
    /// kept); a plain one confirms (`complete`). Either must come from the
    /// owning session (no persist) or carry the matching `<persist-id>`.
    pub fn commit(
        &mut self,
        ds: &mut Datastores,
        session: u32,
        p: &CommitParams,
    ) -> Result<Outcome, Vec<RpcError>> {
        if p.confirmed && p.timeout.is_zero() {
            return Err(vec![RpcError::protocol(
                ErrorTag::InvalidValue,
                "confirm-timeout must be at least 1 second",
            )
            .with_info("bad-element", "confirm-timeout")]);
        }
        let now = SystemTime::now();
        let deadline = if p.confirmed {
            Some(now.checked_add(p.timeout).ok_or_else(|| {
                vec![
                    RpcError::protocol(ErrorTag::InvalidValue, "confirm-timeout too large")
                        .with_info("bad-element", "confirm-timeout"),
                ]
            })?)
        } else {
            None
        };
        let timeout_s = u32::try_from(p.timeout.as_secs()).unwrap_or(u32::MAX);

        if self.pending.is_none() {
            if let Some(id) = &p.persist_id {
                return Err(vec![unknown_persist_id(id)]);
            }
            let Some(deadline) = deadline else {
                // Plain commit, nothing pending.
                let commit = ds.commit()?;
                return Ok(Outcome {
                    commit,
                    event: None,
                });
            };
            let rollback = ds
                .tree(super::DsName::Running)
                .duplicate()
                .map_err(|e| vec![RpcError::from_yang(&e)])?;
            let pending = Pending {
                rollback,
                deadline,
                persist: p.persist.clone(),
                session,
            };
            // Saved before running changes: a crash in between leaves a
            // rollback point equal to running, which is harmless.
            self.save(&pending, true)
                .map_err(|e| vec![save_failed(&e)])?;
            let commit = match ds.commit() {
                Ok(c) => c,
                Err(errs) => {
                    self.clear_files();
                    return Err(errs);
                }
            };
            self.pending = Some(pending);
            return Ok(Outcome {
                commit,
                event: Some(Event {
                    kind: ConfirmEvent::Start,
                    session: Some(session),
                    timeout: Some(timeout_s),
                }),
            });
        }

        self.authorize(session, p.persist_id.as_deref())?;
        match deadline {
            Some(deadline) => {
                // Follow-up confirmed commit: new timer, new (or no) persist
                // token, same rollback point.
                let (old_deadline, old_persist, old_session) = match self.pending.as_mut() {
                    Some(pending) => (
                        std::mem::replace(&mut pending.deadline, deadline),
                        std::mem::replace(&mut pending.persist, p.persist.clone()),
                        std::mem::replace(&mut pending.session, session),
                    ),
                    None => return Err(vec![not_pending()]),
                };
                let saved = match self.pending.as_ref() {
                    Some(pending) => self.save(pending, false),
                    None => Ok(()),
                };
                let result = match saved {
                    Ok(()) => ds.commit(),
                    Err(e) => Err(vec![save_failed(&e)]),
                };
                match result {
                    Ok(commit) => Ok(Outcome {
                        commit,
                        event: Some(Event {
                            kind: ConfirmEvent::Extend,
                            session: Some(session),
                            timeout: Some(timeout_s),
                        }),
                    }),
                    Err(errs) => {
                        // The follow-up failed as a whole: the pending state
                        // goes back to what it was, on disk too.
                        if let Some(pending) = self.pending.as_mut() {
                            pending.deadline = old_deadline;
                            pending.persist = old_persist;
                            pending.session = old_session;
                        }
                        if let Some(pending) = self.pending.as_ref() {
                            if let Err(e) = self.save(pending, false) {
                                tracing::error!(error = %e, "restoring the confirmed-commit state file failed");
                            }
                        }
                        Err(errs)
                    }
                }
            }
            None => {
                // Confirming commit. If it fails, nothing is confirmed.
                let commit = ds.commit()?;
                self.pending = None;
                self.clear_files();
                Ok(Outcome {
                    commit,
                    event: Some(Event {
                        kind: ConfirmEvent::Complete,
                        session: Some(session),
                        timeout: None,
                    }),
                })
            }
        }
    }

    /// `<cancel-commit>` from `session` (RFC 6241 §8.4.4.1): rolls back to
    /// the rollback point and resets candidate to it.
    pub fn cancel(
        &mut self,
        ds: &mut Datastores,
        session: u32,
        persist_id: Option<&str>,
    ) -> Result<Rollback, Vec<RpcError>> {
        if self.pending.is_none() {
            return Err(vec![not_pending()]);
        }
        self.authorize(session, persist_id)?;
        let commit = self.rollback(ds)?;
        Ok(Rollback {
            commit,
            event: Event {
                kind: ConfirmEvent::Cancel,
                session: Some(session),
                timeout: None,
            },
        })
    }

    /// A session ended (close, kill, drop). If it owns a pending confirmed
    /// commit without persist, that commit is rolled back (RFC 6241 §8.4.1).
    /// On error (running could not be saved) the commit stays pending and
    /// the timer retries at its deadline.
    pub fn session_ended(
        &mut self,
        ds: &mut Datastores,
        session: u32,
    ) -> Result<Option<Rollback>, Vec<RpcError>> {
        match &self.pending {
            Some(p) if p.persist.is_none() && p.session == session => {}
            _ => return Ok(None),
        }
        let commit = self.rollback(ds)?;
        Ok(Some(Rollback {
            commit,
            event: Event {
                kind: ConfirmEvent::Cancel,
                session: Some(session),
                timeout: None,
            },
        }))
    }

    /// The timer: rolls back when `now` has reached the deadline. On error
    /// (running could not be saved) the deadline moves 10 s on, so the timer
    /// retries without spinning.
    pub fn expire(
        &mut self,
        ds: &mut Datastores,
        now: SystemTime,
    ) -> Result<Option<Rollback>, Vec<RpcError>> {
        match &self.pending {
            Some(p) if now >= p.deadline => {}
            _ => return Ok(None),
        }
        match self.rollback(ds) {
            Ok(commit) => Ok(Some(Rollback {
                commit,
                event: Event {
                    kind: ConfirmEvent::Timeout,
                    session: None,
                    timeout: None,
                },
            })),
            Err(errs) => {
                if let Some(p) = self.pending.as_mut() {
                    p.deadline = now + RETRY_AFTER;
                }
                Err(errs)
            }
        }
    }

    // ===== helper functions =====

    /// May `session` (with `persist_id`) act on the pending commit?
    fn authorize(&self, session: u32, persist_id: Option<&str>) -> Result<(), Vec<RpcError>> {
        let Some(p) = &self.pending else {
            return Err(vec![not_pending()]);
        };
        match (&p.persist, persist_id) {
            (Some(token), Some(id)) if token == id => Ok(()),
            (_, Some(id)) => Err(vec![unknown_persist_id(id)]),
            (Some(_), None) => Err(vec![RpcError::protocol(
                ErrorTag::InUse,
                "a confirmed commit with <persist> is pending: confirm or cancel it with its <persist-id>",
            )]),
            (None, None) if p.session == session => Ok(()),
            (None, None) => Err(vec![RpcError::protocol(
                ErrorTag::InUse,
                format!(
                    "a confirmed commit of session {} is pending: only that session can confirm, extend or cancel it",
                    p.session
                ),
            )
            .with_info("session-id", p.session.to_string())]),
        }
    }

    /// Restores the rollback point into running, resets candidate to it and
    /// clears the pending state. On error running is unchanged (the
    /// datastores undo a failed save) and the commit stays pending.
    fn rollback(&mut self, ds: &mut Datastores) -> Result<Commit, Vec<RpcError>> {
        let Some(p) = &self.pending else {
            return Err(vec![not_pending()]);
        };
        let tree = p
            .rollback
            .duplicate()
            .map_err(|e| vec![RpcError::from_yang(&e)])?;
        let commit = ds.replace_running(tree)?.ok_or_else(|| {
            vec![RpcError::app(
                ErrorTag::OperationFailed,
                "rollback did not change running",
            )]
        })?;
        ds.discard_changes();
        self.pending = None;
        self.clear_files();
        Ok(commit)
    }

    /// Writes the state (and, for a new sequence, the rollback point).
    fn save(&self, p: &Pending, with_rollback: bool) -> Result<(), ConfirmedError> {
        let Some(dir) = &self.dir else {
            return Ok(());
        };
        let store = Store::at(dir);
        if with_rollback {
            let text = p
                .rollback
                .print_string(
                    DataFormat::XML,
                    DataPrinterFlags::WITH_SIBLINGS | DataPrinterFlags::WD_EXPLICIT,
                )
                .map_err(|source| persist::PersistError::Print {
                    ds: "rollback",
                    source,
                })?
                .unwrap_or_default();
            store.write_atomic(ROLLBACK_FILE, text.as_bytes(), false)?;
        }
        let ms = p
            .deadline
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(0);
        let state = SavedState {
            deadline_unix_ms: ms,
            session: p.session,
            persist: p.persist.clone(),
            boot_id: self.boot_id.clone(),
        };
        // Serializing a struct of integers and an optional string cannot
        // fail; an empty file would be set aside at the next start.
        let text = toml::to_string(&state).unwrap_or_default();
        store.write_atomic(STATE_FILE, text.as_bytes(), false)?;
        Ok(())
    }

    /// Removes the state file (first: it marks a pending state) and the
    /// rollback point. A failure is logged: the commit is already confirmed
    /// or rolled back, and the client cannot act on it.
    fn clear_files(&self) {
        let Some(dir) = &self.dir else {
            return;
        };
        for name in [STATE_FILE, ROLLBACK_FILE] {
            if let Err(e) = remove_if_present(&dir.join(name)) {
                tracing::error!(error = %e, "removing confirmed-commit state failed; the next start may roll back");
            }
        }
        if let Err(e) = fs::File::open(dir).and_then(|d| d.sync_all()) {
            tracing::error!(dir = %dir.display(), error = %e, "syncing the state directory failed");
        }
    }
}

fn not_pending() -> RpcError {
    RpcError::protocol(ErrorTag::OperationFailed, "no confirmed commit is pending")
}

fn unknown_persist_id(id: &str) -> RpcError {
    RpcError::protocol(
        ErrorTag::InvalidValue,
        format!("no pending confirmed commit has persist-id '{id}'"),
    )
    .with_info("bad-element", "persist-id")
}

fn save_failed(e: &ConfirmedError) -> RpcError {
    RpcError::app(
        ErrorTag::OperationFailed,
        format!("saving the confirmed-commit state failed, nothing committed: {e}"),
    )
}

fn io_err(op: &'static str, path: &Path, source: io::Error) -> ConfirmedError {
    ConfirmedError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

fn remove_if_present(path: &Path) -> Result<(), ConfirmedError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err("removing", path, e)),
    }
}

/// Renames a bad file to `NAME.corrupt-<unix time>` for inspection.
fn set_aside(path: &Path) -> Result<(), ConfirmedError> {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let target = PathBuf::from(format!("{}.corrupt-{secs}", path.display()));
    fs::rename(path, &target).map_err(|e| io_err("setting aside", path, e))
}
