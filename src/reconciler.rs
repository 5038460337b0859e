//! The seam between the datastores and the world: a new running
//! configuration is first checked (side-effect free, may refuse), and once
//! in place handed over (`apply`). Called for commit, edit-config and
//! copy-config to running, under the datastore lock for `check` and
//! outside it for `apply`.

use std::sync::Arc;

use yang2::data::DataTree;

use crate::apphost::Apphost;
use crate::datastore::Commit;
use crate::error::RpcError;
use crate::netconf::agent::StateProvider;

/// Follows running.
pub trait Reconciler: Send + Sync {
    /// Checks that cannot be expressed in YANG (port and veth names unique
    /// across apps, media paths, …) on the would-be running tree. An error
    /// refuses the commit or edit; nothing was changed yet.
    fn check(&self, _new: &DataTree<'static>) -> Result<(), Vec<RpcError>> {
        Ok(())
    }
    /// Running changed. Must not block for long: a real implementation
    /// records the desired state and converges in its own task (level
    /// triggered), reporting failures in operational state, not here.
    fn apply(&self, commit: &Commit);
}

/// Does nothing: datastores only (tests, or the agent without containers).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoopReconciler;

impl Reconciler for NoopReconciler {
    fn apply(&self, _commit: &Commit) {}
}

/// The application-hosting domain follows running.
impl Reconciler for Apphost {
    fn check(&self, new: &DataTree<'static>) -> Result<(), Vec<RpcError>> {
        Apphost::check(self, new)
    }
    fn apply(&self, commit: &Commit) {
        Apphost::apply(self, &commit.new);
    }
}

/// The application-hosting domain provides operational state for `<get>`.
impl StateProvider for Apphost {
    fn state(&self) -> Result<Option<DataTree<'static>>, RpcError> {
        self.state_tree().map(Some)
    }
}

/// The licence status (`/app-hosting-license:license`), served whether or
/// not Application Hosting is on.
impl StateProvider for crate::license::Licensing {
    fn state(&self) -> Result<Option<DataTree<'static>>, RpcError> {
        self.state_tree(chrono::Utc::now()).map(Some)
    }
}

/// Several sources of state data, merged (the domain's and the licence's).
pub struct States(pub Vec<Arc<dyn StateProvider>>);

impl StateProvider for States {
    fn state(&self) -> Result<Option<DataTree<'static>>, RpcError> {
        let mut out: Option<DataTree<'static>> = None;
        for p in &self.0 {
            let Some(t) = p.state()? else { continue };
            match &mut out {
                None => out = Some(t),
                Some(o) => o.merge(&t).map_err(|e| RpcError::from_yang(&e))?,
            }
        }
        Ok(out)
    }
}

impl<T: Reconciler + ?Sized> Reconciler for Arc<T> {
    fn check(&self, new: &DataTree<'static>) -> Result<(), Vec<RpcError>> {
        (**self).check(new)
    }
    fn apply(&self, commit: &Commit) {
        (**self).apply(commit)
    }
}
