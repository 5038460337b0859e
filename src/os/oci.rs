//! Placeholder on the `domain` branch (the `os` branch writes the real OCI
//! config.json with oci-spec). It writes the spec in Debug form so tests
//! can see that a bundle was written.

use std::path::Path;

use super::{BundleSpec, OsError};

pub fn write_bundle(dir: &Path, spec: &BundleSpec) -> Result<(), OsError> {
    std::fs::create_dir_all(dir).map_err(|source| OsError::Io {
        op: format!("create {}", dir.display()),
        source,
    })?;
    let path = dir.join("config.json");
    std::fs::write(&path, format!("{spec:#?}")).map_err(|source| OsError::Io {
        op: format!("write {}", path.display()),
        source,
    })
}
