//! get-data (RFC 8526 §3.1.1): NMDA read of a datastore.

use roxmltree::Node;

use super::{bad, child, missing, nmda_datastore, NmdaDs, Response, RpcCtx, NMDA_NS};
use crate::error::{ErrorTag, RpcError};
use crate::netconf::output;

pub fn handle(ctx: &RpcCtx<'_>, op: Node<'_, '_>) -> Response {
    match run(ctx, op) {
        Ok(d) => Response::Data(d),
        Err(e) => e.into(),
    }
}

fn run(ctx: &RpcCtx<'_>, op: Node<'_, '_>) -> Result<String, RpcError> {
    let ds = nmda_datastore(child(op, NMDA_NS, "datastore").ok_or_else(|| missing("datastore"))?)?;
    let wd = output::with_defaults(op)?;
    for p in [
        "subtree-filter",
        "xpath-filter",
        "max-depth",
        "origin-filter",
        "negated-origin-filter",
        "with-origin",
    ] {
        if child(op, NMDA_NS, p).is_some() {
            return Err(RpcError::protocol(
                ErrorTag::OperationNotSupported,
                format!("{p} is not supported yet"),
            )
            .with_info("bad-element", p));
        }
    }
    let config_only =
        match child(op, NMDA_NS, "config-filter").map(|n| n.text().unwrap_or("").trim()) {
            None => false,
            Some("true") => true,
            Some("false") => {
                // Only state data: none in conventional datastores; state of
                // operational without its config is not separated yet.
                return Err(RpcError::protocol(
                    ErrorTag::OperationNotSupported,
                    "config-filter false is not supported yet",
                )
                .with_info("bad-element", "config-filter"));
            }
            Some(v) => return Err(bad("config-filter", format!("invalid boolean {v:?}"))),
        };
    match ds {
        NmdaDs::Conventional(ds) => {
            let core = ctx.agent.core();
            output::print(core.ds.tree(ds), wd)
        }
        NmdaDs::Operational if config_only => {
            let core = ctx.agent.core();
            output::print(core.ds.tree(crate::datastore::DsName::Running), wd)
        }
        NmdaDs::Operational => super::get::running_and_state(ctx, wd),
    }
}
