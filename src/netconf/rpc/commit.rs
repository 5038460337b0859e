//! commit (RFC 6241 §8.3.4.1). Confirmed commit is not offered.

use roxmltree::Node;

use super::{nc_child, Response, RpcCtx};
use crate::datastore::DsName;
use crate::error::{ErrorTag, RpcError};

pub fn handle(ctx: &RpcCtx<'_>, op: Node<'_, '_>) -> Response {
    for p in ["confirmed", "confirm-timeout", "persist", "persist-id"] {
        if nc_child(op, p).is_some() {
            return RpcError::protocol(
                ErrorTag::OperationNotSupported,
                "confirmed commit is not supported",
            )
            .with_info("bad-element", p)
            .into();
        }
    }
    let span = tracing::info_span!("commit", session = ctx.session_id, op = "commit");
    let _g = span.enter();
    let result = {
        let mut core = ctx.agent.core();
        // Another session's lock on either datastore blocks the commit.
        for ds in [DsName::Running, DsName::Candidate] {
            if let Err(e) = core.check_writable(ds, ctx.session_id) {
                return e.into();
            }
        }
        // RFC 8341 §3.2.8: write access to exactly the nodes of running
        // that the commit changes.
        let nacm = core.nacm();
        if let Err(e) = nacm.check_write(
            ctx.principal,
            core.ds.tree(DsName::Running),
            core.ds.tree(DsName::Candidate),
        ) {
            return e.into();
        }
        core.ds
            .commit()
            .and_then(|c| super::vet_running(ctx, &mut core, c, true))
    };
    match result {
        Ok(commit) => {
            if commit.is_some() {
                tracing::info!("running changed");
            }
            ctx.after_commit(commit);
            Response::Ok
        }
        Err(errs) => Response::Errors(errs),
    }
}
