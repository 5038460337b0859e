//! close-session (RFC 6241 §7.8): `<ok/>`, then the session ends and its
//! locks are released (by the session guard).

use roxmltree::Node;

use super::{Response, RpcCtx};

pub fn handle(_ctx: &RpcCtx<'_>, _op: Node<'_, '_>) -> Response {
    Response::CloseSession
}
