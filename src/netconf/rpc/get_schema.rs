//! get-schema (RFC 6022 §3.1): the text of a YANG module we serve.

use roxmltree::Node;

use super::{child, missing, Response, RpcCtx, MONITORING_NS};
use crate::netconf::monitoring;
use crate::netconf::reply::escape_text;

pub fn handle(_ctx: &RpcCtx<'_>, op: Node<'_, '_>) -> Response {
    let text = |name: &str| {
        child(op, MONITORING_NS, name).map(|n| n.text().unwrap_or("").trim().to_string())
    };
    let Some(identifier) = text("identifier") else {
        return missing("identifier").into();
    };
    let version = text("version");
    // The format is an identity (`yang`, `ncm:yin`): drop any prefix.
    let format = text("format").map(|f| f.rsplit(':').next().unwrap_or("").to_string());
    match monitoring::get_schema(&identifier, version.as_deref(), format.as_deref()) {
        Ok(src) => Response::Body(format!(
            "<data xmlns=\"{MONITORING_NS}\">{}</data>",
            escape_text(&src)
        )),
        Err(e) => e.into(),
    }
}
