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
