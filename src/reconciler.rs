//! The seam between the datastores and the world: every change of running
//! (commit, edit-config or copy-config to running) is handed to a
//! [`Reconciler`] after it is in place.

use crate::datastore::Commit;

/// Follows running. `apply` must not block for long: a real implementation
/// records the desired state and converges in its own task (level
/// triggered), reporting failures in operational state, not to the client.
pub trait Reconciler: Send + Sync {
    fn apply(&self, commit: &Commit);
}

/// Does nothing: datastores only (tests, or the agent without containers).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoopReconciler;

impl Reconciler for NoopReconciler {
    fn apply(&self, _commit: &Commit) {}
}
