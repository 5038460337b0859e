//! The YANG library (RFC 8525 `/ietf-yang-library:yang-library`) and its
//! deprecated RFC 7895 form (`/ietf-yang-library:modules-state`), which
//! netopeer2-cli reads at connect to learn the modules and fetch the ones
//! it lacks with `<get-schema>`.
//!
//! libyang builds both trees from the context (`ly_ctx_get_yanglib_data`);
//! we add the NMDA datastores, set a content-id derived from the module
//! set, and drop `file://` locations, which name paths on our disk that a
//! client cannot read (clients fetch schemas with `<get-schema>`).

use std::ffi::CString;

use sha2::{Digest, Sha256};
use yang2::data::{Data, DataTree};
use yang2::ffi;
use yang2::utils::Binding;

use crate::error::{ErrorTag, RpcError};
use crate::schema::context;

const YL: &str = "/ietf-yang-library:";

/// NMDA datastores we serve, all with the one complete schema.
const DATASTORES: &[&str] = &["running", "candidate", "startup", "operational"];

/// An identifier of the module set: the same modules, revisions, features
/// and conformance give the same id, across restarts too (a client may cache
/// schemas by it).
pub fn content_id() -> String {
    let mut lines: Vec<String> = context()
        .modules(false)
        .filter(|m| !crate::schema::is_hidden_module(m.name()))
        .map(|m| {
            let mut features = Vec::new();
            // SAFETY: every module of the context has a parsed form with a
            // (possibly NULL) sized array of features.
            unsafe { collect_features(m.as_raw(), &mut features) };
            format!(
                "{}@{} {} {}",
                m.name(),
                m.revision().unwrap_or(""),
                if m.is_implemented() {
                    "implement"
                } else {
                    "import"
                },
                features.join(",")
            )
        })
        .collect();
    lines.sort();
    let mut h = Sha256::new();
    for l in &lines {
        h.update(l.as_bytes());
        h.update(b"\n");
    }
    hex::encode(&h.finalize()[..8])
}

/// Names of the enabled features of a module.
///
/// # Safety
/// `module` must be a live module of the context.
unsafe fn collect_features(module: *mut ffi::lys_module, out: &mut Vec<String>) {
    let parsed = (*module).parsed;
    if parsed.is_null() {
        return;
    }
    let features = (*parsed).features;
    if features.is_null() {
        return;
    }
    // libyang sized arrays keep their count just before the first item.
    let count = *(features as *const u64).offset(-1) as usize;
    for i in 0..count {
        let f = features.add(i);
        if (*f).flags as u32 & ffi::LYS_FENABLED != 0 && !(*f).name.is_null() {
            out.push(
                std::ffi::CStr::from_ptr((*f).name)
                    .to_string_lossy()
                    .into_owned(),
            );
        }
    }
}

/// The YANG library data: `yang-library` (RFC 8525, with content-id and
/// datastores) and `modules-state` (RFC 7895, with module-set-id).
pub fn state() -> Result<DataTree<'static>, RpcError> {
    let ctx = context();
    let id = content_id();
    let cid = CString::new(id.as_str()).map_err(|_| internal("content-id"))?;
    let fmt = CString::new("%s").map_err(|_| internal("format"))?;
    let ylib = ctx
        .get_module_implemented("ietf-yang-library")
        .ok_or_else(|| {
            RpcError::app(
                ErrorTag::OperationFailed,
                "ietf-yang-library is not implemented",
            )
        })?;
    // yang2 hides the context's raw pointer; every module points back to it.
    // SAFETY: the module is live as long as the (static) context.
    let raw_ctx = unsafe { (*ylib.as_raw()).ctx };
    let mut raw: *mut ffi::lyd_node = std::ptr::null_mut();
    // SAFETY: the context is live for the program; the format takes one
    // string argument, given; on success `raw` owns a new tree that the
    // `DataTree` below takes over (and frees on drop).
    let ret =
        unsafe { ffi::ly_ctx_get_yanglib_data(raw_ctx, &mut raw, fmt.as_ptr(), cid.as_ptr()) };
    if ret != ffi::LY_ERR::LY_SUCCESS {
        return Err(RpcError::from_yang(&yang2::Error::new(ctx)));
    }
    // SAFETY: see above; `raw` is the first sibling of the new tree.
    let mut tree = unsafe { DataTree::from_raw(ctx, raw) };
    for ds in DATASTORES {
        let path = format!("{YL}yang-library/datastore[name='ietf-datastores:{ds}']/schema");
        tree.new_path(&path, Some("complete"), false)
            .map_err(|e| RpcError::from_yang(&e))?;
    }
    drop_file_locations(&mut tree)?;
    drop_hidden_modules(&mut tree)?;
    Ok(tree)
}

/// Removes the entries of modules hidden by the licence gate
/// ([`crate::schema::is_hidden_module`]) from both module lists.
fn drop_hidden_modules(tree: &mut DataTree<'static>) -> Result<(), RpcError> {
    if crate::schema::app_hosting_enabled() {
        return Ok(());
    }
    let name = crate::schema::AH_MODULE;
    let paths = [
        format!("/ietf-yang-library:modules-state/module[name='{name}']"),
        format!("/ietf-yang-library:yang-library/module-set/module[name='{name}']"),
        format!("/ietf-yang-library:yang-library/module-set/import-only-module[name='{name}']"),
    ];
    let mut doomed = Vec::new();
    for p in &paths {
        let set = tree.find_xpath(p).map_err(|e| RpcError::from_yang(&e))?;
        doomed.extend(set.map(|n| n.as_raw()));
    }
    for raw in doomed {
        // SAFETY: each pointer is a distinct list entry below a top-level
        // container of `tree` (never a top-level node), freed once.
        unsafe { ffi::lyd_free_tree(raw) };
    }
    Ok(())
}

/// Removes `schema` (RFC 7895) and `location` (RFC 8525) leaves holding
/// `file://` URLs of our disk.
fn drop_file_locations(tree: &mut DataTree<'static>) -> Result<(), RpcError> {
    let paths = [
        "/ietf-yang-library:modules-state/module/schema",
        "/ietf-yang-library:modules-state/module/submodule/schema",
        "/ietf-yang-library:yang-library/module-set/module/location",
        "/ietf-yang-library:yang-library/module-set/module/submodule/location",
        "/ietf-yang-library:yang-library/module-set/import-only-module/location",
        "/ietf-yang-library:yang-library/module-set/import-only-module/submodule/location",
    ];
    let mut doomed = Vec::new();
    for p in paths {
        let set = tree.find_xpath(p).map_err(|e| RpcError::from_yang(&e))?;
        for node in set {
            if node
                .value_canonical()
                .is_some_and(|v| v.starts_with("file://"))
            {
                doomed.push(node.as_raw());
            }
        }
    }
    for raw in doomed {
        // SAFETY: each pointer is a distinct leaf of `tree` (never the
        // first top-level node, so the tree's root pointer stays valid).
        unsafe { ffi::lyd_free_tree(raw) };
    }
    Ok(())
}

fn internal(what: &str) -> RpcError {
    RpcError::app(
        ErrorTag::OperationFailed,
        format!("yang-library: bad {what}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enabled_features_are_read() {
        let m = context()
            .get_module_implemented("ietf-netconf")
            .expect("ietf-netconf implemented");
        let mut features = Vec::new();
        // SAFETY: a live module of the static context.
        unsafe { collect_features(m.as_raw(), &mut features) };
        assert!(features.iter().any(|f| f == "candidate"), "{features:?}");
        assert!(features.iter().any(|f| f == "xpath"), "{features:?}");
        // Declared by ietf-netconf but not enabled by us.
        assert!(!features.iter().any(|f| f == "url"), "{features:?}");
    }

    #[test]
    fn content_id_is_stable() {
        assert_eq!(content_id(), content_id());
        assert_eq!(content_id().len(), 16);
    }
}
