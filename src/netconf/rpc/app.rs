//! The app-hosting RPCs (start, stop, restart, set-label, remove-label,
//! reload, show-log), handed to the domain ([`Apphost`]).
//! import-image, delete-image, install-license and attach are not handled
//! here (operation-not-supported).

use std::sync::Arc;

use roxmltree::Node;

use super::{bad, child, missing, Response, RpcCtx, YangRpcs};
use crate::apphost::Apphost;
use crate::error::RpcError;
use crate::netconf::reply::escape_text;
use crate::schema::AH_NS;

/// Default of `show-log/lines` in the YANG module.
const DEFAULT_LOG_LINES: u32 = 100;

/// Dispatches app-hosting RPCs to an [`Apphost`].
pub struct AppRpcs(pub Arc<Apphost>);

impl YangRpcs for AppRpcs {
    fn call(&self, _ctx: &RpcCtx<'_>, op: Node<'_, '_>) -> Option<Response> {
        if op.tag_name().namespace() != Some(AH_NS) {
            return None;
        }
        let h = &self.0;
        let r: Result<Response, RpcError> = match op.tag_name().name() {
            "start" => leaf(op, "app")
                .and_then(|a| h.start(&a))
                .map(|()| Response::Ok),
            "stop" => leaf(op, "app")
                .and_then(|a| h.stop(&a))
                .map(|()| Response::Ok),
            "restart" => leaf(op, "app")
                .and_then(|a| h.restart(&a))
                .map(|()| Response::Ok),
            "set-label" => (|| {
                let image = leaf(op, "image")?;
                let label = leaf(op, "label")?;
                h.set_label(&image, &label)
            })()
            .map(|()| Response::Ok),
            "remove-label" => leaf(op, "label")
                .and_then(|l| h.remove_label(&l))
                .map(|()| Response::Ok),
            "reload" => h
                .reload(opt_leaf(op, "label").as_deref())
                .map(|()| Response::Ok),
            "show-log" => (|| {
                let app = leaf(op, "app")?;
                let lines = match opt_leaf(op, "lines") {
                    None => DEFAULT_LOG_LINES,
                    Some(v) => v
                        .parse::<u32>()
                        .ok()
                        .filter(|n| (1..=100_000).contains(n))
                        .ok_or_else(|| {
                            bad("lines", format!("lines must be 1..100000, not {v:?}"))
                        })?,
                };
                let log = h.show_log(&app, lines)?;
                Ok(Response::Body(format!(
                    "<log xmlns=\"{AH_NS}\">{}</log>",
                    escape_text(&log)
                )))
            })(),
            _ => return None,
        };
        Some(r.unwrap_or_else(Response::from))
    }
}

fn opt_leaf(op: Node<'_, '_>, name: &str) -> Option<String> {
    child(op, AH_NS, name).map(|n| n.text().unwrap_or("").trim().to_string())
}

fn leaf(op: Node<'_, '_>, name: &str) -> Result<String, RpcError> {
    opt_leaf(op, name)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| missing(name))
}
