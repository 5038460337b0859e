//! The configuration datastores (RFC 6241 §5, §8.3, §8.7): running,
//! candidate, startup, as libyang trees, and the operations on them. This is
//! a library API: no SSH, no framing, no sessions. Locks and sessions live in
//! the NETCONF layer; one owner (a mutex in the server) holds `Datastores`.

pub mod edit;
pub mod persist;

use yang2::data::DataTree;

use crate::error::RpcError;

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

/// A change of running, handed to the reconciler.
pub struct Commit {
    pub old: DataTree<'static>,
    pub new: DataTree<'static>,
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

/// Persists a datastore after each change; returns a message on failure, and
/// the change is then undone. Installed by the daemon (see `persist`).
pub type Saver = Box<dyn FnMut(DsName, &DataTree<'static>) -> Result<(), String> + Send>;

/// The three configuration datastores. Owned by one mutex in the server.
pub struct Datastores {
    running: DataTree<'static>,
    candidate: DataTree<'static>,
    startup: DataTree<'static>,
    /// Candidate differs from running (RFC 6241 §8.3.5.2: a lock on
    /// candidate is refused while it holds changes).
    candidate_modified: bool,
    saver: Option<Saver>,
}

impl Datastores {
    /// Empty running and startup; candidate a copy of running.
    pub fn new_empty() -> Self {
        todo!("edit helper")
    }
    /// Running and startup as loaded from disk; candidate a copy of running.
    pub fn from_trees(running: DataTree<'static>, startup: DataTree<'static>) -> Self {
        let _ = (running, startup);
        todo!("edit helper")
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
    pub fn candidate_modified(&self) -> bool {
        self.candidate_modified
    }
    /// edit-config / edit-data. `config` is the `<config>` element.
    pub fn edit(&mut self, target: DsName, config: roxmltree::Node<'_, '_>, opts: &EditOptions) -> EditOutcome {
        let _ = (target, config, opts);
        todo!("edit helper")
    }
    /// copy-config (RFC 6241 §7.3).
    pub fn copy_config(&mut self, target: DsName, source: ConfigSource<'_>) -> Result<Option<Commit>, Vec<RpcError>> {
        let _ = (target, source);
        todo!("edit helper")
    }
    /// delete-config (RFC 6241 §7.4).
    pub fn delete_config(&mut self, target: DsName) -> Result<(), RpcError> {
        let _ = target;
        todo!("edit helper")
    }
    /// validate (RFC 6241 §8.6): full YANG validation including `must`.
    pub fn validate(&self, source: ConfigSource<'_>) -> Result<(), Vec<RpcError>> {
        let _ = source;
        todo!("edit helper")
    }
    /// commit (RFC 6241 §8.3.4.1).
    pub fn commit(&mut self) -> Result<Option<Commit>, Vec<RpcError>> {
        todo!("edit helper")
    }
    /// discard-changes (RFC 6241 §8.3.4.2).
    pub fn discard_changes(&mut self) {
        todo!("edit helper")
    }
    /// Replaces running wholesale (confirmed-commit rollback, restore).
    pub fn replace_running(&mut self, tree: DataTree<'static>) -> Result<Option<Commit>, Vec<RpcError>> {
        let _ = tree;
        todo!("edit helper")
    }
}

/// Parses an inline `<config>` (copy-config / validate source) into a tree,
/// with the same error mapping as edits. Operation attributes are refused.
pub fn parse_config(config: roxmltree::Node<'_, '_>) -> Result<DataTree<'static>, Vec<RpcError>> {
    let _ = config;
    todo!("edit helper")
}
