//! The libyang context: the modules of `yang/`, embedded in the binary so
//! `apphostd` runs without the source tree, plus extra modules named by the
//! agent configuration (served as plain datastores, no reconciler).
//!
//! The context lives in a `static` because every `DataTree` borrows it.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

use yang2::context::{Context, ContextFlags, EmbeddedModuleKey, EmbeddedModules};

/// Namespace of our own module.
pub const AH_NS: &str = "urn:apphost:yang:app-hosting";
/// Name of our own module.
pub const AH_MODULE: &str = "app-hosting";
/// Revision of our own module.
pub const AH_REVISION: &str = "2026-12-03";
/// Namespace of the licence status module (always served).
pub const AH_LICENSE_NS: &str = "urn:apphost:yang:app-hosting-license";
/// NETCONF base namespace.
pub const NC_NS: &str = "urn:ietf:params:xml:ns:netconf:base:1.0";

/// One embedded module: name, revision, text.
struct Embedded {
    name: &'static str,
    revision: Option<&'static str>,
    text: &'static str,
    /// Features enabled when the module is implemented.
    features: &'static [&'static str],
    /// Implemented (its data served); the rest are import-only.
    implement: bool,
}

macro_rules! embed {
    ($name:literal, $rev:literal, $implement:expr, $features:expr) => {
        Embedded {
            name: $name,
            revision: Some($rev),
            text: include_str!(concat!("../yang/", $name, "@", $rev, ".yang")),
            features: $features,
            implement: $implement,
        }
    };
}

/// Every module of `yang/`, in load order.
const EMBEDDED: &[Embedded] = &[
    embed!(
        "ietf-netconf",
        "2011-06-01",
        true,
        &[
            "writable-running",
            "candidate",
            "confirmed-commit",
            "rollback-on-error",
            "validate",
            "startup",
            "xpath",
        ]
    ),
    embed!("ietf-netconf-with-defaults", "2011-06-01", true, &[]),
    embed!("ietf-netconf-monitoring", "2010-10-04", true, &[]),
    embed!("ietf-origin", "2018-02-14", false, &[]),
    embed!("ietf-netconf-nmda", "2019-01-07", true, &["with-defaults"]),
    embed!("ietf-netconf-acm", "2018-02-14", true, &[]),
    embed!("notifications", "2008-07-14", true, &[]),
    embed!("nc-notifications", "2008-07-14", true, &[]),
    embed!("ietf-netconf-notifications", "2012-02-06", true, &[]),
    embed!("app-hosting", "2026-12-03", true, &[]),
    embed!("app-hosting-license", "2026-12-04", true, &[]),
];

/// Extra YANG modules named by the agent configuration.
#[derive(Debug, Clone, Default)]
pub struct ExtraModules {
    /// Directory searched for the modules and their imports.
    pub dir: Option<PathBuf>,
    /// Module names (optionally `name@revision`) to implement.
    pub modules: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error("libyang: {0}")]
    Yang(#[from] yang2::Error),
    #[error("extra module {name}: {source}")]
    Extra {
        name: String,
        #[source]
        source: yang2::Error,
    },
    #[error("the YANG context was already built with other modules")]
    AlreadyInitialized,
}

static CONTEXT: OnceLock<Context> = OnceLock::new();

/// Builds the context with `extra` modules. Call once, before the first
/// [`context`]; a second call with other modules fails.
pub fn init(extra: &ExtraModules) -> Result<&'static Context, SchemaError> {
    if let Some(ctx) = CONTEXT.get() {
        if extra.modules.is_empty() {
            return Ok(ctx);
        }
        return Err(SchemaError::AlreadyInitialized);
    }
    let ctx = build(extra)?;
    // A concurrent init may have won; either context is equivalent for
    // callers without extra modules, and `build` is deterministic.
    Ok(CONTEXT.get_or_init(|| ctx))
}

/// The context; built without extra modules if [`init`] was not called.
pub fn context() -> &'static Context {
    if let Some(ctx) = CONTEXT.get() {
        return ctx;
    }
    // The embedded modules are part of the binary and covered by tests: a
    // failure here is a build defect, not an input error.
    CONTEXT.get_or_init(|| build(&ExtraModules::default()).expect("embedded YANG modules load"))
}

fn build(extra: &ExtraModules) -> Result<Context, SchemaError> {
    let mut ctx = Context::new(ContextFlags::DISABLE_SEARCHDIR_CWD)?;
    let mut map = EmbeddedModules::new();
    for m in EMBEDDED {
        map.insert(
            EmbeddedModuleKey::new(m.name, m.revision, None, None),
            m.text,
        );
    }
    ctx.set_embedded_modules(&map);
    for m in EMBEDDED.iter().filter(|m| m.implement) {
        ctx.load_module(m.name, m.revision, m.features)?;
    }
    if let Some(dir) = &extra.dir {
        ctx.set_searchdir(dir)?;
    }
    for spec in &extra.modules {
        let (name, rev) = match spec.split_once('@') {
            Some((n, r)) => (n, Some(r)),
            None => (spec.as_str(), None),
        };
        ctx.load_module(name, rev, &["*"])
            .map_err(|source| SchemaError::Extra {
                name: spec.clone(),
                source,
            })?;
    }
    Ok(ctx)
}

// ===== the licence gate =====

/// Whether Application Hosting is on (the licence check at start). While
/// off, module app-hosting stays loaded (its `install-license` RPC must keep
/// working, and stored configuration keeps validating) but is hidden from
/// clients: not advertised, no schema, and requests naming its namespace get
/// unknown-namespace.
static APP_HOSTING_ENABLED: AtomicBool = AtomicBool::new(true);

/// Turns the app-hosting module on or off for clients. The daemon calls it
/// once at start, before the first session: the hello capabilities and the
/// YANG library are built once and cached.
pub fn set_app_hosting_enabled(on: bool) {
    APP_HOSTING_ENABLED.store(on, Ordering::Relaxed);
}

pub fn app_hosting_enabled() -> bool {
    APP_HOSTING_ENABLED.load(Ordering::Relaxed)
}

/// True for a module that exists in the context but is hidden from clients.
pub fn is_hidden_module(name: &str) -> bool {
    name == AH_MODULE && !app_hosting_enabled()
}

/// True for the namespace of a hidden module.
pub fn is_hidden_ns(ns: &str) -> bool {
    ns == AH_NS && !app_hosting_enabled()
}

/// The error for a request naming a hidden module's namespace: the same
/// unknown-namespace as for a module we do not have, with a hint for the
/// operator.
pub fn hidden_ns_error(ns: &str, element: &str) -> crate::error::RpcError {
    use crate::error::{ErrorTag, ErrorType, RpcError};
    RpcError::new(ErrorType::Protocol, ErrorTag::UnknownNamespace)
        .with_message(format!(
            "unknown namespace {ns}: Application Hosting is not enabled \
             (no valid licence at start; install-license, then restart the agent)"
        ))
        .with_info("bad-element", element)
        .with_info("bad-namespace", ns)
}

/// Text of an embedded module (for `get-schema` and the yang-library).
pub fn embedded_source(name: &str, revision: Option<&str>) -> Option<&'static str> {
    EMBEDDED
        .iter()
        .find(|m| m.name == name && (revision.is_none() || revision == m.revision))
        .map(|m| m.text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_modules_load() {
        let ctx = context();
        let m = ctx
            .get_module_implemented("app-hosting")
            .expect("app-hosting implemented");
        assert_eq!(m.namespace(), AH_NS);
        assert!(ctx
            .get_module_implemented("ietf-netconf-monitoring")
            .is_some());
        assert!(ctx.get_module_implemented("ietf-yang-library").is_some());
    }
}
