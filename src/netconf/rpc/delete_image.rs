//! delete-image (module app-hosting): removes an image (and its OCI config)
//! from the storage directory, refused while a running app uses it.

use roxmltree::Node;

use super::{child, missing, Response};
use crate::apphost::Apphost;
use crate::image::{self, DeleteError};
use crate::schema::AH_NS;

pub fn handle(apphost: &Apphost, op: Node<'_, '_>) -> Response {
    let name = child(op, AH_NS, "name").map(|n| n.text().unwrap_or("").trim().to_string());
    let Some(name) = name.filter(|n| !n.is_empty()) else {
        return missing("name").into();
    };
    let dir = match apphost.images_dir() {
        Ok(d) => d,
        Err(e) => return e.into(),
    };
    let users = std::cell::RefCell::new(Vec::new());
    let in_use = |n: &str| {
        let apps = apphost.apps_using_image(n);
        let used = !apps.is_empty();
        *users.borrow_mut() = apps;
        used
    };
    match image::delete(&dir, &name, &in_use) {
        Ok(()) => {
            tracing::info!(image = %name, "image deleted");
            Response::Ok
        }
        Err(e) => {
            let mut err = e.rpc_error().with_path("/app-hosting:delete-image/name");
            if matches!(e, DeleteError::InUse(_)) {
                err = err.with_message(format!("{e}: {}", users.borrow().join(", ")));
            }
            err.into()
        }
    }
}
