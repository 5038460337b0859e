//! kill-session (RFC 6241 §7.9).

use roxmltree::Node;

use super::{bad, missing, nc_child, Response, RpcCtx};

pub fn handle(ctx: &RpcCtx<'_>, op: Node<'_, '_>) -> Response {
    let Some(n) = nc_child(op, "session-id") else {
        return missing("session-id").into();
    };
    let text = n.text().unwrap_or("").trim();
    let Ok(victim) = text.parse::<u32>() else {
        return bad("session-id", format!("invalid session-id {text:?}")).into();
    };
    if victim == ctx.session_id {
        return bad(
            "session-id",
            "a session cannot kill itself; use close-session",
        )
        .into();
    }
    if !ctx.agent.kill_by(victim, ctx.session_id) {
        return bad("session-id", format!("no session {victim}")).into();
    }
    tracing::info!(victim, "session killed");
    Response::Ok
}
