//! cancel-commit (RFC 6241 §8.4.4.1): rolls a pending confirmed commit
//! back at once.

use roxmltree::Node;

use super::{nc_child, Response, RpcCtx};
use crate::netconf::agent::Core;

pub fn handle(ctx: &RpcCtx<'_>, op: Node<'_, '_>) -> Response {
    let persist_id = nc_child(op, "persist-id").map(|n| n.text().unwrap_or("").trim().to_string());
    let span = tracing::info_span!("commit", session = ctx.session_id, op = "cancel-commit");
    let _g = span.enter();
    let result = {
        let mut core = ctx.agent.core();
        let Core { ds, confirmed, .. } = &mut *core;
        confirmed.cancel(ds, ctx.session_id, persist_id.as_deref())
    };
    match result {
        Ok(rb) => {
            ctx.agent.rolled_back(rb);
            Response::Ok
        }
        Err(errs) => Response::Errors(errs),
    }
}
