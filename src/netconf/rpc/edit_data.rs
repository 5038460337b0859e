//! edit-data (RFC 8526 §3.1.2): NMDA edit of a conventional datastore.

use roxmltree::Node;

use super::{bad, child, missing, nmda_datastore, NmdaDs, Response, RpcCtx, NMDA_NS};
use crate::datastore::{DefaultOperation, EditOptions};

pub fn handle(ctx: &RpcCtx<'_>, op: Node<'_, '_>) -> Response {
    let node = match child(op, NMDA_NS, "datastore") {
        Some(n) => n,
        None => return missing("datastore").into(),
    };
    let target = match nmda_datastore(node) {
        Ok(NmdaDs::Conventional(ds)) => ds,
        Ok(NmdaDs::Operational) => {
            return bad("datastore", "the operational datastore is not writable").into()
        }
        Err(e) => return e.into(),
    };
    let mut opts = EditOptions::default();
    if let Some(n) = child(op, NMDA_NS, "default-operation") {
        opts.default_operation = match n.text().unwrap_or("").trim() {
            "merge" => DefaultOperation::Merge,
            "replace" => DefaultOperation::Replace,
            "none" => DefaultOperation::None,
            v => {
                return bad(
                    "default-operation",
                    format!("unknown default-operation {v:?}"),
                )
                .into()
            }
        };
    }
    let Some(config) = child(op, NMDA_NS, "config") else {
        return missing("config").into();
    };
    super::edit_config::edit(ctx, target, config, &opts)
}
