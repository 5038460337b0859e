//! commit (RFC 6241 §8.3.4.1) with confirmed commit (§8.4,
//! `:confirmed-commit:1.1`): `<confirmed/>`, `<confirm-timeout>`,
//! `<persist>`, `<persist-id>`. The state machine is
//! `datastore::confirmed`; this file parses and wires it.

use std::time::Duration;

use roxmltree::Node;

use super::{bad, nc_child, Response, RpcCtx};
use crate::datastore::confirmed::{CommitParams, DEFAULT_TIMEOUT};
use crate::datastore::DsName;
use crate::error::RpcError;
use crate::netconf::agent::Core;

pub fn handle(ctx: &RpcCtx<'_>, op: Node<'_, '_>) -> Response {
    let params = match parse(op) {
        Ok(p) => p,
        Err(e) => return e.into(),
    };
    let span = tracing::info_span!(
        "commit",
        session = ctx.session_id,
        op = "commit",
        confirmed = params.confirmed
    );
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
        // The reconciler's side-effect free checks (ports that exist, ...)
        // run on the would-be running before anything changes.
        if let Err(errs) = ctx.agent.check(core.ds.tree(DsName::Candidate)) {
            return Response::Errors(errs);
        }
        let Core { ds, confirmed, .. } = &mut *core;
        confirmed.commit(ds, ctx.session_id, &params)
    };
    match result {
        Ok(outcome) => {
            if outcome.commit.is_some() {
                tracing::info!("running changed");
            }
            ctx.after_commit(outcome.commit);
            if let Some(ev) = outcome.event {
                ctx.agent.confirmed_event(ev);
            }
            Response::Ok
        }
        Err(errs) => Response::Errors(errs),
    }
}

fn parse(op: Node<'_, '_>) -> Result<CommitParams, RpcError> {
    let text = |name| nc_child(op, name).map(|n| n.text().unwrap_or("").trim().to_string());
    let confirmed = nc_child(op, "confirmed").is_some();
    let timeout = match text("confirm-timeout") {
        None => DEFAULT_TIMEOUT,
        Some(_) if !confirmed => {
            return Err(bad(
                "confirm-timeout",
                "confirm-timeout is only allowed with <confirmed/>",
            ))
        }
        Some(v) => match v.parse::<u32>() {
            Ok(s) if s > 0 => Duration::from_secs(u64::from(s)),
            _ => {
                return Err(bad(
                    "confirm-timeout",
                    format!("confirm-timeout must be 1..4294967295 seconds, not {v:?}"),
                ))
            }
        },
    };
    let persist = text("persist");
    if persist.is_some() && !confirmed {
        return Err(bad("persist", "persist is only allowed with <confirmed/>"));
    }
    Ok(CommitParams {
        confirmed,
        timeout,
        persist,
        persist_id: text("persist-id"),
    })
}
