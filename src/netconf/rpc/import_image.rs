//! import-image (module app-hosting): downloads an image into the storage
//! directory (`<media>/<storage path>` of running) with
//! [`image::import`](crate::image::import), reporting progress as
//! notifications `image-import-progress` and the end as `image-imported`.
//!
//! The URL may carry credentials: it is logged and echoed only through
//! [`redact_url`], and `ImportError` texts are scrubbed by the import.

use std::sync::Arc;

use roxmltree::Node;

use super::{child, missing, Response};
use crate::apphost::Apphost;
use crate::error::RpcError;
use crate::image::{self, redact_url, ImportError, ImportRequest, Progress};
use crate::netconf::reply::escape_text;
use crate::notify::{events, Event, STREAM_NETCONF};
use crate::schema::AH_NS;

/// Where the RPCs of module app-hosting send their notifications. The
/// daemon connects it to the agent's notification bus.
pub type Publish = Arc<dyn Fn(Event) + Send + Sync>;

/// A [`Publish`] that drops every event (no bus).
pub fn no_publish() -> Publish {
    Arc::new(|_| {})
}

pub fn handle(apphost: &Apphost, publish: &Publish, op: Node<'_, '_>) -> Response {
    let leaf =
        |name: &str| child(op, AH_NS, name).map(|n| n.text().unwrap_or("").trim().to_string());
    let Some(url) = leaf("url").filter(|u| !u.is_empty()) else {
        return missing("url").into();
    };
    let mut req = ImportRequest::new(url);
    req.name = leaf("name");
    req.sha256 = leaf("sha256");
    let span = tracing::info_span!("import-image", url = %redact_url(&req.url));
    let _g = span.enter();
    let dir = match apphost.images_dir() {
        Ok(d) => d,
        Err(e) => return e.into(),
    };
    let media = match apphost.storage_media_root() {
        Ok(m) => m,
        Err(e) => return e.into(),
    };
    if !media.is_dir() {
        return ImportError::Io {
            op: format!("storage media {}", media.display()),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "not mounted"),
        }
        .rpc_error()
        .into();
    }
    if let Err(e) = std::fs::create_dir_all(&dir) {
        return ImportError::Io {
            op: format!("creating the storage directory {}", dir.display()),
            source: e,
        }
        .rpc_error()
        .into();
    }
    let mut on_progress = |p: Progress| publish_event(publish, progress_event(&p));
    match image::import(&req, &dir, &mut on_progress) {
        Ok(done) => {
            tracing::info!(image = %done.name, sha256 = %done.sha256, size = done.size, "image imported");
            publish_event(publish, imported_event(Some(&done.name), Ok(&done.sha256)));
            Response::Body(format!(
                "<name xmlns=\"{AH_NS}\">{}</name><sha256 xmlns=\"{AH_NS}\">{}</sha256>",
                escape_text(&done.name),
                escape_text(&done.sha256)
            ))
        }
        Err(e) => {
            tracing::warn!(error = %e, "image import failed");
            let name = req.name.clone().filter(|n| image::valid_name(n));
            let msg = e.to_string();
            publish_event(publish, imported_event(name.as_deref(), Err(&msg)));
            rpc_error(&e).into()
        }
    }
}

/// The mapping of [`ImportError::rpc_error`], with the error-path of the
/// offending input leaf.
fn rpc_error(e: &ImportError) -> RpcError {
    let err = e.rpc_error();
    let leaf = err
        .info
        .iter()
        .find(|(k, _)| k == "bad-element")
        .map(|(_, v)| v.clone());
    match leaf {
        Some(l) => err.with_path(format!("/app-hosting:import-image/{l}")),
        None => err,
    }
}

fn progress_event(p: &Progress) -> Result<Event, RpcError> {
    let percent = p
        .percent
        .map(|v| format!("<percent>{v}</percent>"))
        .unwrap_or_default();
    events::custom(
        STREAM_NETCONF,
        &format!(
            "<image-import-progress xmlns=\"{AH_NS}\"><name>{}</name>{percent}<bytes>{}</bytes></image-import-progress>",
            escape_text(&p.name),
            p.bytes
        ),
    )
}

/// `image-imported`: `Ok(sha256)` on success, `Err(message)` on failure.
fn imported_event(name: Option<&str>, result: Result<&str, &str>) -> Result<Event, RpcError> {
    let name = name
        .map(|n| format!("<name>{}</name>", escape_text(n)))
        .unwrap_or_default();
    let result = match result {
        Ok(sha) => format!("<sha256>{}</sha256>", escape_text(sha)),
        Err(msg) => format!("<error>{}</error>", escape_text(msg)),
    };
    events::custom(
        STREAM_NETCONF,
        &format!("<image-imported xmlns=\"{AH_NS}\">{name}{result}</image-imported>"),
    )
}

fn publish_event(publish: &Publish, ev: Result<Event, RpcError>) {
    match ev {
        Ok(ev) => publish(ev),
        // Only a name outside `image-name` could fail here, and names are
        // checked before any progress; log rather than lose it silently.
        Err(e) => tracing::warn!(error = %e, "image notification not built"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_validate_against_the_module() {
        let p = Progress {
            name: "a.img".into(),
            bytes: 10,
            total: Some(20),
            percent: Some(50),
        };
        let ev = progress_event(&p).unwrap();
        assert_eq!(ev.name, "image-import-progress");
        assert!(
            ev.to_xml().contains("<percent>50</percent>"),
            "{}",
            ev.to_xml()
        );
        let ev = imported_event(Some("a.img"), Err("download failed: <404>")).unwrap();
        assert!(ev.to_xml().contains("&lt;404&gt;"), "{}", ev.to_xml());
        assert!(imported_event(None, Ok("00")).is_ok());
    }

    #[test]
    fn bad_leaf_gets_an_error_path() {
        let e = rpc_error(&ImportError::InvalidSha256("x".into()));
        assert_eq!(e.path.as_deref(), Some("/app-hosting:import-image/sha256"));
        assert_eq!(e.app_tag.as_deref(), Some("invalid-sha256"));
        let e = rpc_error(&ImportError::Busy("a.img".into()));
        assert_eq!(e.path, None);
    }
}
