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
        DsParam::Datastore(ds) => {
            let core = ctx.agent.core();
            // YANG first, then the reconciler's own rules on the same tree.
            core.ds
                .validate(ConfigSource::Datastore(ds))
                .and_then(|()| ctx.agent.check(core.ds.tree(ds)))
        }
    };
    match result {
        Ok(()) => Response::Ok,
        Err(errs) => Response::Errors(errs),
    }
}
