//! get-data (RFC 8526 §3.1.1): NMDA read of a datastore.

use roxmltree::Node;

use super::{bad, child, missing, nmda_datastore, NmdaDs, Response, RpcCtx, NMDA_NS};
use crate::error::{ErrorTag, RpcError};
use crate::netconf::filter::Filter;
use crate::netconf::output::{self, Parts};
use crate::netconf::print;

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
        "max-depth",
        "origin-filter",
        "negated-origin-filter",
        "with-origin",
    ] {
        if child(op, NMDA_NS, p).is_some() {
            return Err(RpcError::protocol(
                ErrorTag::OperationNotSupported,
                format!("{p} is not supported"),
            )
            .with_info("bad-element", p));
        }
    }
    let filter = match (
        child(op, NMDA_NS, "subtree-filter"),
        child(op, NMDA_NS, "xpath-filter"),
    ) {
        (Some(_), Some(_)) => {
            return Err(bad(
                "xpath-filter",
                "give either subtree-filter or xpath-filter",
            ))
        }
        (Some(s), None) => Some(Filter::from_subtree_filter_element(s)?),
        (None, Some(x)) => Some(Filter::from_xpath_filter_element(x)),
        (None, None) => None,
    };
    // config-filter: true = config only, false = state only, absent = both.
    let config_filter =
        match child(op, NMDA_NS, "config-filter").map(|n| n.text().unwrap_or("").trim()) {
            None => None,
            Some("true") => Some(true),
            Some("false") => Some(false),
            Some(v) => return Err(bad("config-filter", format!("invalid boolean {v:?}"))),
        };
    match ds {
        NmdaDs::Conventional(ds) => {
            if config_filter == Some(false) {
                // Conventional datastores hold no state.
                return Ok(String::new());
            }
            output::reply_datastore(ctx, ds, filter.as_ref(), wd)
        }
        NmdaDs::Operational => {
            let parts = Parts {
                config: config_filter != Some(false),
                state: config_filter != Some(true),
            };
            let tree = output::operational(ctx, parts)?;
            print::reply_data(&tree, filter.as_ref(), wd)
        }
    }
}
