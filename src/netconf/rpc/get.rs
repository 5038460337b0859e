//! get (RFC 6241 §7.7): running configuration plus state data
//! (app-hosting state, netconf-state, yang-library).

use roxmltree::Node;

use super::{Response, RpcCtx};
use crate::error::RpcError;
use crate::netconf::output::{self, Parts};
use crate::netconf::print;
use crate::schema::NC_NS;

pub fn handle(ctx: &RpcCtx<'_>, op: Node<'_, '_>) -> Response {
    let run = || -> Result<String, RpcError> {
        let wd = output::with_defaults(op)?;
        let filter = output::filter(op, NC_NS)?;
        let tree = output::operational(
            ctx,
            Parts {
                config: true,
                state: true,
            },
        )?;
        print::reply_data(&tree, filter.as_ref(), wd)
    };
    match run() {
        Ok(d) => Response::Data(d),
        Err(e) => e.into(),
    }
}
