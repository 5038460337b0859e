//! discard-changes (RFC 6241 §8.3.4.2).

use roxmltree::Node;

use super::{Response, RpcCtx};
use crate::datastore::DsName;

pub fn handle(ctx: &RpcCtx<'_>, _op: Node<'_, '_>) -> Response {
    let mut core = ctx.agent.core();
    if let Err(e) = core.check_writable(DsName::Candidate, ctx.session_id) {
        return e.into();
    }
    core.ds.discard_changes();
    Response::Ok
}
