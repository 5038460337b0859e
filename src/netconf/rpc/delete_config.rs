//! delete-config (RFC 6241 §7.4).

use roxmltree::Node;

use yang2::data::DataTree;

use super::{datastore, Response, RpcCtx};
use crate::datastore::DsName;

pub fn handle(ctx: &RpcCtx<'_>, op: Node<'_, '_>) -> Response {
    let target = match datastore(op, "target") {
        Ok(t) => t,
        Err(e) => return e.into(),
    };
    let mut core = ctx.agent.core();
    if let Err(e) = core.check_writable(target, ctx.session_id) {
        return e.into();
    }
    // RFC 8341 §3.2.7: besides the right to run delete-config (denied by
    // default), delete access to what the target holds.
    if target == DsName::Startup {
        let nacm = core.nacm();
        let empty = DataTree::new(crate::schema::context());
        if let Err(e) = nacm.check_write(ctx.principal, core.ds.tree(target), &empty) {
            return e.into();
        }
    }
    let before = core.ds.shared(target);
    if let Err(e) = core.ds.delete_config(target) {
        return e.into();
    }
    let after = core.ds.shared(target);
    drop(core);
    if target == DsName::Startup {
        ctx.agent.publish_startup(ctx.session_id, before, after);
    }
    Response::Ok
}
