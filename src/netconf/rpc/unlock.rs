//! unlock (RFC 6241 §7.6).

use roxmltree::Node;

use super::{datastore, Response, RpcCtx};

pub fn handle(ctx: &RpcCtx<'_>, op: Node<'_, '_>) -> Response {
    let ds = match datastore(op, "target") {
        Ok(t) => t,
        Err(e) => return e.into(),
    };
    let r = ctx.agent.core().unlock(ds, ctx.session_id);
    if r.is_ok() {
        tracing::info!(datastore = ds.as_str(), "unlocked");
    }
    r.into()
}
