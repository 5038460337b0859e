//! get-config (RFC 6241 §7.1).

use roxmltree::Node;

use super::{datastore, Response, RpcCtx};
use crate::error::RpcError;
use crate::netconf::output::{self, Selection};
use crate::schema::NC_NS;

pub fn handle(ctx: &RpcCtx<'_>, op: Node<'_, '_>) -> Response {
    match run(ctx, op) {
        Ok(d) => Response::Data(d),
        Err(e) => e.into(),
    }
}

fn run(ctx: &RpcCtx<'_>, op: Node<'_, '_>) -> Result<String, RpcError> {
    let ds = datastore(op, "source")?;
    let wd = output::with_defaults(op)?;
    if output::filter(op, NC_NS)? == Selection::Nothing {
        return Ok(String::new());
    }
    // Printed under the lock, straight from the stored tree: no copy.
    let core = ctx.agent.core();
    output::print(core.ds.tree(ds), wd)
}
