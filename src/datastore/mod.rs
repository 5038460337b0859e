//! The configuration datastores (RFC 6241 §5, §8.3, §8.7): running,
//! candidate, startup, as libyang trees, and the operations on them. This is
//! a library API: no SSH, no framing, no sessions. Locks and sessions live in
//! the NETCONF layer; one owner (a mutex in the server) holds `Datastores`.

pub mod confirmed;
pub mod edit;
pub mod persist;

use std::sync::Arc;

use yang2::data::{DataTree, DataValidationFlags};

use crate::error::{ErrorTag, RpcError};

/// A configuration datastore name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DsName {
    Running,
    Candidate,
    Startup,
}

impl DsName {
    pub fn as_str(self) -> &'static str {
        match self {
            DsName::Running => "running",
            DsName::Candidate => "candidate",
            DsName::Startup => "startup",
        }
    }
}

/// `default-operation` (RFC 6241 §7.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DefaultOperation {
    #[default]
    Merge,
    Replace,
    None,
}

/// `test-option` (RFC 6241 §8.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TestOption {
    #[default]
    TestThenSet,
    Set,
    TestOnly,
}

/// `error-option` (RFC 6241 §7.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ErrorOption {
    #[default]
    StopOnError,
    ContinueOnError,
    RollbackOnError,
}

/// Options of one edit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EditOptions {
    pub default_operation: DefaultOperation,
    pub test_option: TestOption,
    pub error_option: ErrorOption,
}

/// The source of copy-config / validate.
pub enum ConfigSource<'a> {
    Datastore(DsName),
    /// Inline `<config>` content, already parsed into a tree.
    Inline(&'a DataTree<'static>),
}

/// A change of running, handed to the reconciler. The trees are shared
/// with the datastores (never mutated in place), so a commit costs no copy.
pub struct Commit {
    pub old: Arc<DataTree<'static>>,
    pub new: Arc<DataTree<'static>>,
    /// The edits that turned `old` into `new` (data path, operation), when
    /// known: a commit of candidate carries the edits made to candidate.
    /// `None`: only a diff of the two trees can tell (copy-config, ...).
    pub edits: Option<Vec<(String, &'static str)>>,
}

impl std::fmt::Debug for Commit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Commit { .. }")
    }
}

/// Result of an edit: the errors (empty = success) and, when running
/// changed, the change for the reconciler. With continue-on-error an edit can
/// both change the target and report errors.
#[derive(Default)]
pub struct EditOutcome {
    pub errors: Vec<RpcError>,
    pub commit: Option<Commit>,
    /// Data paths of the edited nodes with the operation applied
    /// ("create", "delete", "replace", "merge"), for netconf-config-change.
    pub changes: Vec<(String, &'static str)>,
}

/// Asked about an edit before it takes effect: (old target, new target).
pub type EditGuard<'a> = &'a dyn Fn(&DataTree<'static>, &DataTree<'static>) -> Result<(), RpcError>;

/// Persists a datastore after each change; returns a message on failure, and
/// the change is then undone. Installed by the daemon (see `persist`).
pub type Saver = Box<dyn FnMut(DsName, &DataTree<'static>) -> Result<(), String> + Send>;

/// The three configuration datastores. Owned by one mutex in the server.
///
/// Trees are never changed in place once installed: every change builds a
/// new tree and swaps it in. So they are shared (`Arc`): candidate is the
/// same tree as running until it is edited, and a [`Commit`] hands both
/// trees to the reconciler without copying them.
pub struct Datastores {
    running: Arc<DataTree<'static>>,
    candidate: Arc<DataTree<'static>>,
    startup: Arc<DataTree<'static>>,
    /// Candidate differs from running (RFC 6241 §8.3.5.2: a lock on
    /// candidate is refused while it holds changes).
    candidate_modified: bool,
    /// The edits since candidate last mirrored running, for the commit's
    /// netconf-config-change; `None` once they are unknown (copy-config to
    /// candidate, running changed under a modified candidate).
    candidate_edits: Option<Vec<(String, &'static str)>>,
    saver: Option<Saver>,
    /// Bumped whenever running is replaced, so state derived from running
    /// (the NACM rules) knows when to rebuild without every caller having
    /// to remember.
    running_generation: u64,
}

impl Datastores {
    /// Empty running and startup; candidate a copy of running.
    pub fn new_empty() -> Self {
        Self::from_trees(empty_config(), DataTree::new(crate::schema::context()))
    }
    /// Running and startup as loaded from disk; candidate a copy of running.
    pub fn from_trees(running: DataTree<'static>, startup: DataTree<'static>) -> Self {
        let running = Arc::new(running);
        Datastores {
            candidate: running.clone(),
            running,
            startup: Arc::new(startup),
            candidate_modified: false,
            candidate_edits: Some(Vec::new()),
            saver: None,
            running_generation: 0,
        }
    }
    /// Installs the persistence callback for running and startup.
    pub fn set_saver(&mut self, saver: Saver) {
        self.saver = Some(saver);
    }
    pub fn tree(&self, ds: DsName) -> &DataTree<'static> {
        match ds {
            DsName::Running => &self.running,
            DsName::Candidate => &self.candidate,
            DsName::Startup => &self.startup,
        }
    }
    /// The tree of `ds`, shared (it is never changed in place).
    pub fn shared(&self, ds: DsName) -> Arc<DataTree<'static>> {
        match ds {
            DsName::Running => self.running.clone(),
            DsName::Candidate => self.candidate.clone(),
            DsName::Startup => self.startup.clone(),
        }
    }
    pub fn candidate_modified(&self) -> bool {
        self.candidate_modified
    }
    /// Changes whenever running changes (edit, commit, copy-config,
    /// rollback, restore).
    pub fn running_generation(&self) -> u64 {
        self.running_generation
    }

    /// edit-config / edit-data. `config` is the `<config>` element.
    ///
    /// The edit works on a copy of the target that is swapped in at the
    /// end, so the target is never torn: stop-on-error and rollback-on-error
    /// drop the copy on the first error; continue-on-error keeps what
    /// succeeded. Running and startup are validated in full before the
    /// swap; candidate only structurally (RFC 7950 §8.3.3). With test-option
    /// `set`, running is still validated: it must always be valid.
    pub fn edit(
        &mut self,
        target: DsName,
        config: roxmltree::Node<'_, '_>,
        opts: &EditOptions,
    ) -> EditOutcome {
        self.edit_guarded(target, config, opts, &|_, _| Ok(()))
    }

    /// [`edit`](Self::edit), with `guard` asked about the change (old
    /// target, edited target) before anything is validated or installed:
    /// an error refuses the whole edit and leaves the target as it was.
    /// The NETCONF layer checks write access (NACM) here.
    pub fn edit_guarded(
        &mut self,
        target: DsName,
        config: roxmltree::Node<'_, '_>,
        opts: &EditOptions,
        guard: EditGuard<'_>,
    ) -> EditOutcome {
        let ctx = crate::schema::context();
        let mut out = EditOutcome::default();
        let work = match self.tree(target).duplicate() {
            Ok(t) => t,
            Err(e) => {
                out.errors.push(RpcError::from_yang(&e));
                return out;
            }
        };
        let cont = opts.error_option == ErrorOption::ContinueOnError;
        let mut walk = edit::Walk::new(ctx, work, cont, false);
        let default_op = match opts.default_operation {
            DefaultOperation::Merge => edit::Op::Merge,
            DefaultOperation::Replace => edit::Op::Replace,
            DefaultOperation::None => edit::Op::None,
        };
        let stopped = walk.apply(config, default_op).is_err();
        if !stopped && opts.default_operation == DefaultOperation::Replace {
            walk.drop_untouched_top();
        }
        out.errors = std::mem::take(&mut walk.errors);
        let changes = std::mem::take(&mut walk.changes);
        if !out.errors.is_empty() && !cont {
            return out;
        }
        let mut work = walk.into_tree();
        if !changes.is_empty() {
            if let Err(e) = guard(self.tree(target), &work) {
                out.errors.push(e);
                return out;
            }
        }
        if opts.test_option == TestOption::TestOnly {
            if let Err(e) = work.validate(DataValidationFlags::NO_STATE) {
                out.errors.push(validation_error(&e));
            }
            return out;
        }
        if changes.is_empty() {
            return out;
        }
        match target {
            DsName::Candidate => {
                self.candidate = Arc::new(work);
                self.candidate_modified = true;
                if let Some(edits) = self.candidate_edits.as_mut() {
                    edits.extend(changes.iter().cloned());
                }
                out.changes = changes;
            }
            DsName::Running | DsName::Startup => {
                if let Err(e) = work.validate(DataValidationFlags::NO_STATE) {
                    out.errors.push(validation_error(&e));
                    return out;
                }
                match self.install(target, Arc::new(work)) {
                    Ok(commit) => {
                        out.commit = commit;
                        out.changes = changes;
                    }
                    Err(e) => out.errors.push(e),
                }
            }
        }
        out
    }

    /// Swaps a validated tree into running or startup, persists it, and
    /// undoes the swap when persisting fails. For running, returns the
    /// change and keeps an unmodified candidate in step with running.
    fn install(
        &mut self,
        target: DsName,
        tree: Arc<DataTree<'static>>,
    ) -> Result<Option<Commit>, RpcError> {
        let slot = match target {
            DsName::Running => &mut self.running,
            DsName::Startup => &mut self.startup,
            DsName::Candidate => {
                self.candidate = tree;
                self.candidate_modified = true;
                self.candidate_edits = None;
                return Ok(None);
            }
        };
        let old = std::mem::replace(slot, tree);
        if let Some(saver) = self.saver.as_mut() {
            let slot_ref = match target {
                DsName::Running => &self.running,
                _ => &self.startup,
            };
            if let Err(msg) = saver(target, slot_ref) {
                match target {
                    DsName::Running => self.running = old,
                    _ => self.startup = old,
                }
                return Err(RpcError::app(
                    ErrorTag::OperationFailed,
                    format!("saving {} failed, change undone: {msg}", target.as_str()),
                ));
            }
        }
        if target != DsName::Running {
            return Ok(None);
        }
        self.running_generation += 1;
        if !self.candidate_modified {
            self.candidate = self.running.clone();
        } else {
            // Candidate's edits no longer lead from running to it.
            self.candidate_edits = None;
        }
        Ok(Some(Commit {
            old,
            new: self.running.clone(),
            edits: None,
        }))
    }

    /// A validated copy of a source.
    fn validated(&self, source: &ConfigSource<'_>) -> Result<DataTree<'static>, Vec<RpcError>> {
        let src = match source {
            ConfigSource::Datastore(ds) => self.tree(*ds),
            ConfigSource::Inline(t) => t,
        };
        let mut t = src.duplicate().map_err(|e| vec![RpcError::from_yang(&e)])?;
        t.validate(DataValidationFlags::NO_STATE)
            .map_err(|e| vec![validation_error(&e)])?;
        Ok(t)
    }

    /// copy-config (RFC 6241 §7.3). Running and startup targets are
    /// validated in full; candidate takes the source as is and counts as
    /// modified.
    pub fn copy_config(
        &mut self,
        target: DsName,
        source: ConfigSource<'_>,
    ) -> Result<Option<Commit>, Vec<RpcError>> {
        if let ConfigSource::Datastore(ds) = source {
            if ds == target {
                return Err(vec![RpcError::protocol(
                    ErrorTag::InvalidValue,
                    format!("source and target are the same datastore ({})", ds.as_str()),
                )]);
            }
        }
        let tree = if target == DsName::Candidate {
            let src = match source {
                ConfigSource::Datastore(ds) => self.tree(ds),
                ConfigSource::Inline(t) => t,
            };
            src.duplicate().map_err(|e| vec![RpcError::from_yang(&e)])?
        } else {
            self.validated(&source)?
        };
        self.install(target, Arc::new(tree)).map_err(|e| vec![e])
    }

    /// delete-config (RFC 6241 §7.4). Startup becomes empty. Running cannot
    /// be deleted (RFC 6241 §7.4). Candidate is refused too: it is a scratch
    /// copy of running, reset with discard-changes, and emptying it would
    /// only stage a commit that deletes the whole configuration, which an
    /// edit with default-operation replace already expresses.
    pub fn delete_config(&mut self, target: DsName) -> Result<(), RpcError> {
        match target {
            DsName::Startup => {
                let empty = DataTree::new(crate::schema::context());
                self.install(DsName::Startup, Arc::new(empty)).map(|_| ())
            }
            DsName::Running => Err(RpcError::protocol(
                ErrorTag::OperationNotSupported,
                "the running datastore cannot be deleted",
            )),
            DsName::Candidate => Err(RpcError::protocol(
                ErrorTag::OperationNotSupported,
                "the candidate datastore cannot be deleted; use discard-changes",
            )),
        }
    }

    /// validate (RFC 6241 §8.6): full YANG validation including `must`.
    pub fn validate(&self, source: ConfigSource<'_>) -> Result<(), Vec<RpcError>> {
        self.validated(&source).map(|_| ())
    }

    /// commit (RFC 6241 §8.3.4.1).
    pub fn commit(&mut self) -> Result<Option<Commit>, Vec<RpcError>> {
        if !self.candidate_modified {
            // Candidate mirrors running: nothing to commit.
            return Ok(None);
        }
        // Validated in place when nobody else holds candidate (the usual
        // case after an edit): no copy of the whole configuration. What
        // validation adds (default nodes) is harmless if it then fails.
        let shared = std::mem::replace(&mut self.candidate, self.running.clone());
        let mut tree = Arc::try_unwrap(shared).unwrap_or_else(|shared| dup(&shared));
        if let Err(e) = tree.validate(DataValidationFlags::NO_STATE) {
            self.candidate = Arc::new(tree);
            return Err(vec![validation_error(&e)]);
        }
        let tree = Arc::new(tree);
        let edits = self.candidate_edits.take();
        let commit = match self.install(DsName::Running, tree.clone()) {
            Ok(c) => c,
            Err(e) => {
                // Saving failed and running is unchanged; the candidate's
                // content stays for the client to retry.
                self.candidate = tree;
                self.candidate_edits = edits;
                return Err(vec![e]);
            }
        };
        // Candidate mirrors the new running: the very same tree.
        self.candidate = self.running.clone();
        self.candidate_modified = false;
        self.candidate_edits = Some(Vec::new());
        Ok(commit.map(|c| Commit { edits, ..c }))
    }

    /// discard-changes (RFC 6241 §8.3.4.2).
    pub fn discard_changes(&mut self) {
        self.candidate = self.running.clone();
        self.candidate_modified = false;
        self.candidate_edits = Some(Vec::new());
    }

    /// Puts back a running tree taken from a [`Commit`] (it was valid when
    /// it was running), e.g. when the reconciler refused its successor.
    pub fn restore_running(
        &mut self,
        old: Arc<DataTree<'static>>,
    ) -> Result<Option<Commit>, Vec<RpcError>> {
        self.install(DsName::Running, old).map_err(|e| vec![e])
    }

    /// Replaces running wholesale (confirmed-commit rollback, restore).
    pub fn replace_running(
        &mut self,
        mut tree: DataTree<'static>,
    ) -> Result<Option<Commit>, Vec<RpcError>> {
        tree.validate(DataValidationFlags::NO_STATE)
            .map_err(|e| vec![validation_error(&e)])?;
        self.install(DsName::Running, Arc::new(tree))
            .map_err(|e| vec![e])
    }
}

/// A failed full validation. Values were checked when the tree was built,
/// so an `invalid-value` from validation is a `must` (or other constraint)
/// failure, which RFC 7950 §15.1–15.5 reports as `operation-failed` with
/// the `must`'s app-tag (e.g. `port-in-use`).
fn validation_error(e: &yang2::Error) -> RpcError {
    let mut r = RpcError::from_yang(e);
    if r.tag == ErrorTag::InvalidValue {
        r.tag = ErrorTag::OperationFailed;
    }
    r
}

/// A copy of a tree; duplicating only fails when memory runs out, and then
/// an empty tree is the only thing left to give.
fn dup(t: &DataTree<'static>) -> DataTree<'static> {
    t.duplicate()
        .unwrap_or_else(|_| DataTree::new(crate::schema::context()))
}

/// Parses an inline `<config>` (copy-config / validate source) into a tree,
/// with the same error mapping as edits. Operation attributes are refused.
pub fn parse_config(config: roxmltree::Node<'_, '_>) -> Result<DataTree<'static>, Vec<RpcError>> {
    let ctx = crate::schema::context();
    let mut walk = edit::Walk::new(ctx, DataTree::new(ctx), true, true);
    let _ = walk.apply(config, edit::Op::Merge);
    if !walk.errors.is_empty() {
        return Err(std::mem::take(&mut walk.errors));
    }
    Ok(walk.into_tree())
}

/// The empty configuration with its defaults (cpu 25, ...). An empty tree
/// only fails validation if an extra module has mandatory top-level data;
/// it then simply stays without defaults.
pub fn empty_config() -> DataTree<'static> {
    let mut tree = DataTree::new(crate::schema::context());
    let _ = tree.validate(DataValidationFlags::NO_STATE);
    tree
}
