//! delete-config (RFC 6241 §7.4).

use roxmltree::Node;

use super::{datastore, Response, RpcCtx};

pub fn handle(ctx: &RpcCtx<'_>, op: Node<'_, '_>) -> Response {
    let target = match datastore(op, "target") {
        Ok(t) => t,
        Err(e) => return e.into(),
    };
    let mut core = ctx.agent.core();
    if let Err(e) = core.check_writable(target, ctx.session_id) {
        return e.into();
    }
    core.ds.delete_config(target).into()
}
