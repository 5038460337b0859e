//! install-license (module app-hosting): verifies a signed licence (given as
//! `content` or fetched from `url`) and stores it; it takes effect at the
//! next start of the agent (status `pending-restart` until then).
//!
//! Served also while Application Hosting is off: it is how it gets on.

use roxmltree::Node;

use super::{bad, child, missing, Response};
use crate::error::RpcError;
use crate::image::{self, redact_url, ImportRequest};
use crate::license::Licensing;
use crate::schema::AH_NS;

/// Largest licence accepted from a URL (they are a few hundred bytes).
const MAX_LICENSE_BYTES: usize = 64 * 1024;

pub fn handle(licensing: &Licensing, op: Node<'_, '_>) -> Response {
    match run(licensing, op) {
        Ok(()) => Response::Ok,
        Err(e) => e.into(),
    }
}

fn run(licensing: &Licensing, op: Node<'_, '_>) -> Result<(), RpcError> {
    let leaf = |name: &str| child(op, AH_NS, name).map(|n| n.text().unwrap_or("").to_string());
    let (content, leaf_name) = match (leaf("content"), leaf("url")) {
        (Some(_), Some(_)) => return Err(bad("url", "give either content or url, not both")),
        (Some(c), None) => (c, "content"),
        (None, Some(url)) => {
            let url = url.trim().to_string();
            tracing::info!(url = %redact_url(&url), "fetching a licence");
            let bytes = image::fetch(&ImportRequest::new(url), MAX_LICENSE_BYTES)
                .map_err(|e| e.rpc_error().with_path("/app-hosting:install-license/url"))?;
            let text = String::from_utf8(bytes)
                .map_err(|_| bad("url", "the licence fetched is not UTF-8 text"))?;
            (text, "url")
        }
        (None, None) => return Err(missing("content")),
    };
    let now = chrono::Utc::now();
    let lic = licensing.install(&content, now).map_err(|e| {
        tracing::warn!(error = %e, "licence refused");
        e.rpc_error()
            .with_path(format!("/app-hosting:install-license/{leaf_name}"))
    })?;
    tracing::info!(expires = %lic.expires, "licence installed; effective at the next start");
    Ok(())
}
