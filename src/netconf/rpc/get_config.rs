//! get-config (RFC 6241 §7.1).

use roxmltree::Node;

use super::{datastore, Response, RpcCtx};
use crate::error::RpcError;
use crate::netconf::output;
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
    let filter = output::filter(op, NC_NS)?;
    output::reply_datastore(ctx, ds, filter.as_ref(), wd)
}
