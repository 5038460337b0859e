//! validate (RFC 6241 §8.6).

use roxmltree::Node;

use super::{ds_param, DsParam, Response, RpcCtx};
use crate::datastore::{self as store, ConfigSource};

pub fn handle(ctx: &RpcCtx<'_>, op: Node<'_, '_>) -> Response {
    let source = match ds_param(op, "source", true) {
        Ok(s) => s,
        Err(e) => return e.into(),
    };
    let result = match source {
        DsParam::Config(node) => match store::parse_config(node) {
            Ok(tree) => ctx.agent.core().ds.validate(ConfigSource::Inline(&tree)),
            Err(errs) => Err(errs),
        },
        DsParam::Datastore(ds) => ctx.agent.core().ds.validate(ConfigSource::Datastore(ds)),
    };
    match result {
        Ok(()) => Response::Ok,
        Err(errs) => Response::Errors(errs),
    }
}
