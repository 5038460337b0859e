//! get (RFC 6241 §7.7): running configuration plus state data.

use roxmltree::Node;
use yang2::data::DataTree;

use super::{Response, RpcCtx};
use crate::datastore::DsName;
use crate::error::RpcError;
use crate::netconf::output::{self, Selection, WithDefaults};
use crate::schema::NC_NS;

pub fn handle(ctx: &RpcCtx<'_>, op: Node<'_, '_>) -> Response {
    let run = || -> Result<String, RpcError> {
        let wd = output::with_defaults(op)?;
        if output::filter(op, NC_NS)? == Selection::Nothing {
            return Ok(String::new());
        }
        running_and_state(ctx, wd)
    };
    match run() {
        Ok(d) => Response::Data(d),
        Err(e) => e.into(),
    }
}

/// Running merged with the operational state of the domain, printed.
pub fn running_and_state(ctx: &RpcCtx<'_>, wd: WithDefaults) -> Result<String, RpcError> {
    let Some(provider) = ctx.agent.state_provider() else {
        let core = ctx.agent.core();
        return output::print(core.ds.tree(DsName::Running), wd);
    };
    let mut tree: DataTree<'static> = {
        let core = ctx.agent.core();
        core.ds
            .tree(DsName::Running)
            .duplicate()
            .map_err(|e| RpcError::from_yang(&e))?
    };
    // Collected without the datastore lock: state may take a while.
    if let Some(state) = provider.state()? {
        tree.merge(&state).map_err(|e| RpcError::from_yang(&e))?;
    }
    output::print(&tree, wd)
}
