//! The app-hosting RPCs: [`AppRpcs`] hands start, stop, restart, set-label,
//! remove-label, reload and show-log to the domain ([`Apphost`]);
//! [`AppHostingRpcs`] is the whole module behind the licence gate, adding
//! import-image, delete-image and install-license (one file each).

use std::sync::Arc;

use roxmltree::Node;

use super::import_image::Publish;
use super::{bad, child, delete_image, import_image, install_license, missing};
use super::{Response, RpcCtx, YangRpcs};
use crate::apphost::Apphost;
use crate::error::RpcError;
use crate::license::Licensing;
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

/// Every RPC of module app-hosting. While Application Hosting is off (no
/// valid licence at start: `apphost` is `None`) only `install-license` is
/// served; the rest get unknown-namespace, as the module is hidden.
pub struct AppHostingRpcs {
    apps: Option<AppRpcs>,
    licensing: Arc<Licensing>,
    publish: Publish,
}

impl AppHostingRpcs {
    /// `publish` receives the image notifications.
    pub fn new(
        apphost: Option<Arc<Apphost>>,
        licensing: Arc<Licensing>,
        publish: Publish,
    ) -> AppHostingRpcs {
        AppHostingRpcs {
            apps: apphost.map(AppRpcs),
            licensing,
            publish,
        }
    }
}

impl YangRpcs for AppHostingRpcs {
    fn call(&self, ctx: &RpcCtx<'_>, op: Node<'_, '_>) -> Option<Response> {
        if op.tag_name().namespace() != Some(AH_NS) {
            return None;
        }
        let name = op.tag_name().name();
        if name == "install-license" {
            return Some(install_license::handle(&self.licensing, op));
        }
        let Some(apps) = &self.apps else {
            if !crate::schema::app_hosting_enabled() {
                return Some(crate::schema::hidden_ns_error(AH_NS, name).into());
            }
            // Licensed, but the domain could not start (no root, no
            // runtime): the daemon logged why.
            return Some(
                RpcError::app(
                    crate::error::ErrorTag::OperationFailed,
                    format!(
                        "{name}: application hosting is unavailable on this agent (see its log)"
                    ),
                )
                .into(),
            );
        };
        match name {
            "import-image" => Some(import_image::handle(&apps.0, &self.publish, op)),
            "delete-image" => Some(delete_image::handle(&apps.0, op)),
            _ => apps.call(ctx, op),
        }
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
