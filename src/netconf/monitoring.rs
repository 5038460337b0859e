//! NETCONF monitoring (RFC 6022): the `/ietf-netconf-monitoring:netconf-state`
//! tree built from a snapshot of the server's sessions, locks and counters,
//! and the `<get-schema>` operation.

use std::ffi::{CStr, CString};

use chrono::{DateTime, SecondsFormat, Utc};
use yang2::data::DataTree;
use yang2::ffi;
use yang2::schema::{SchemaModule, SchemaOutputFormat, SchemaPrinterFlags};

use crate::datastore::DsName;
use crate::error::{ErrorTag, RpcError};
use crate::schema::{context, embedded_source};

const NCM: &str = "/ietf-netconf-monitoring:netconf-state";

/// One NETCONF session, as the server sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    pub session_id: u32,
    /// Authenticated user name.
    pub username: String,
    /// Client address (IP literal or host name), if known.
    pub source_host: Option<String>,
    pub login_time: DateTime<Utc>,
    pub counters: Counters,
}

/// The per-session and global counters of RFC 6022 (`common-counters`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counters {
    pub in_rpcs: u32,
    pub in_bad_rpcs: u32,
    pub out_rpc_errors: u32,
    pub out_notifications: u32,
}

/// A global lock held on a datastore.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockInfo {
    pub datastore: DsName,
    /// The holder; 0 for a lock held by the server itself (RFC 6022).
    pub session_id: u32,
    pub locked_time: DateTime<Utc>,
}

/// Server-wide statistics (`/netconf-state/statistics`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stats {
    pub in_bad_hellos: u32,
    pub in_sessions: u32,
    pub dropped_sessions: u32,
    pub totals: Counters,
}

/// A snapshot of what `netconf-state` reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonitoringInfo {
    pub sessions: Vec<SessionInfo>,
    pub locks: Vec<LockInfo>,
    /// Capability URIs, as sent in the server's hello.
    pub capabilities: Vec<String>,
    /// Datastores the server offers (running always; candidate and startup
    /// when their capabilities are enabled).
    pub datastores: Vec<DsName>,
    pub stats: Stats,
    /// When the server started (`netconf-start-time`).
    pub start_time: DateTime<Utc>,
}

impl MonitoringInfo {
    /// A snapshot with all three datastores and nothing else.
    pub fn new(start_time: DateTime<Utc>) -> Self {
        MonitoringInfo {
            sessions: Vec::new(),
            locks: Vec::new(),
            capabilities: Vec::new(),
            datastores: vec![DsName::Running, DsName::Candidate, DsName::Startup],
            stats: Stats::default(),
            start_time,
        }
    }
}

/// `yang:date-and-time` as RFC 6022 uses it: UTC, whole seconds, `Z`.
pub fn date_and_time(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn yerr(e: yang2::Error) -> RpcError {
    RpcError::from_yang(&e)
}

/// Builds `/ietf-netconf-monitoring:netconf-state`.
pub fn state(info: &MonitoringInfo) -> Result<DataTree<'static>, RpcError> {
    let ctx = context();
    let mut tree = DataTree::new(ctx);
    tree.new_path(NCM, None, false).map_err(yerr)?;

    // Config-false leaf-lists: a path without predicate always appends.
    for cap in &info.capabilities {
        tree.new_path(&format!("{NCM}/capabilities/capability"), Some(cap), false)
            .map_err(yerr)?;
    }

    for ds in &info.datastores {
        let dpath = format!("{NCM}/datastores/datastore[name='{}']", ds.as_str());
        tree.new_path(&dpath, None, false).map_err(yerr)?;
        if let Some(lock) = info.locks.iter().find(|l| l.datastore == *ds) {
            let lpath = format!("{dpath}/locks/global-lock");
            tree.new_path(
                &format!("{lpath}/locked-by-session"),
                Some(&lock.session_id.to_string()),
                false,
            )
            .map_err(yerr)?;
            tree.new_path(
                &format!("{lpath}/locked-time"),
                Some(&date_and_time(&lock.locked_time)),
                false,
            )
            .map_err(yerr)?;
        }
    }

    for s in schemas() {
        let spath = format!(
            "{NCM}/schemas/schema[identifier='{}'][version='{}'][format='ietf-netconf-monitoring:yang']",
            s.identifier, s.version
        );
        tree.new_path(&format!("{spath}/namespace"), Some(&s.namespace), false)
            .map_err(yerr)?;
        tree.new_path(&format!("{spath}/location"), Some("NETCONF"), false)
            .map_err(yerr)?;
    }

    for s in &info.sessions {
        let p = format!("{NCM}/sessions/session[session-id='{}']", s.session_id);
        tree.new_path(
            &format!("{p}/transport"),
            Some("ietf-netconf-monitoring:netconf-ssh"),
            false,
        )
        .map_err(yerr)?;
        tree.new_path(&format!("{p}/username"), Some(&s.username), false)
            .map_err(yerr)?;
        if let Some(host) = &s.source_host {
            // An address libyang refuses as inet:host is left out rather
            // than failing the whole read.
            let _ = tree.new_path(&format!("{p}/source-host"), Some(host), false);
        }
        tree.new_path(
            &format!("{p}/login-time"),
            Some(&date_and_time(&s.login_time)),
            false,
        )
        .map_err(yerr)?;
        add_counters(&mut tree, &p, &s.counters)?;
    }

    let st = format!("{NCM}/statistics");
    let stats = &info.stats;
    for (leaf, v) in [
        ("in-bad-hellos", stats.in_bad_hellos),
        ("in-sessions", stats.in_sessions),
        ("dropped-sessions", stats.dropped_sessions),
    ] {
        tree.new_path(&format!("{st}/{leaf}"), Some(&v.to_string()), false)
            .map_err(yerr)?;
    }
    tree.new_path(
        &format!("{st}/netconf-start-time"),
        Some(&date_and_time(&info.start_time)),
        false,
    )
    .map_err(yerr)?;
    add_counters(&mut tree, &st, &stats.totals)?;
    Ok(tree)
}

fn add_counters(tree: &mut DataTree<'static>, parent: &str, c: &Counters) -> Result<(), RpcError> {
    for (leaf, v) in [
        ("in-rpcs", c.in_rpcs),
        ("in-bad-rpcs", c.in_bad_rpcs),
        ("out-rpc-errors", c.out_rpc_errors),
        ("out-notifications", c.out_notifications),
    ] {
        tree.new_path(&format!("{parent}/{leaf}"), Some(&v.to_string()), false)
            .map_err(yerr)?;
    }
    Ok(())
}

/// One entry of `/netconf-state/schemas`.
struct SchemaEntry {
    identifier: String,
    version: String,
    namespace: String,
}

/// Every module and submodule of the context (imported ones too: a client
/// needs them to compile the modules that import them).
fn schemas() -> Vec<SchemaEntry> {
    let mut out = Vec::new();
    for m in context().modules(false) {
        if crate::schema::is_hidden_module(m.name()) {
            continue;
        }
        let namespace = m.namespace().to_owned();
        out.push(SchemaEntry {
            identifier: m.name().to_owned(),
            version: m.revision().unwrap_or("").to_owned(),
            namespace: namespace.clone(),
        });
        for (name, rev) in submodules(&m) {
            out.push(SchemaEntry {
                identifier: name,
                version: rev,
                namespace: namespace.clone(),
            });
        }
    }
    out
}

/// (name, revision) of a module's submodules.
fn submodules(m: &SchemaModule<'_>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    // SAFETY: modules of the static context are live; `includes` is a
    // libyang sized array (count stored just before the first item), NULL
    // when empty; each include's submodule is resolved after parsing.
    unsafe {
        let parsed = (*m.as_raw()).parsed;
        if parsed.is_null() || (*parsed).includes.is_null() {
            return out;
        }
        let includes = (*parsed).includes;
        let count = *(includes as *const u64).offset(-1) as usize;
        for i in 0..count {
            let sub = (*includes.add(i)).submodule;
            if sub.is_null() || (*sub).name.is_null() {
                continue;
            }
            let name = CStr::from_ptr((*sub).name).to_string_lossy().into_owned();
            let revs = (*sub).revs;
            let rev = if revs.is_null() || *(revs as *const u64).offset(-1) == 0 {
                String::new()
            } else {
                CStr::from_ptr((*revs).date.as_ptr())
                    .to_string_lossy()
                    .into_owned()
            };
            out.push((name, rev));
        }
    }
    out
}

/// Schema formats `<get-schema>` can return.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Yang,
    Yin,
}

fn parse_format(format: Option<&str>) -> Result<Format, RpcError> {
    // The value is an identityref: `yang`, or `prefix:yang` with any XML
    // prefix the client bound to the monitoring namespace.
    let local = format
        .map(|f| f.trim())
        .map(|f| f.rsplit_once(':').map_or(f, |(_, l)| l));
    match local {
        None | Some("") | Some("yang") => Ok(Format::Yang),
        Some("yin") => Ok(Format::Yin),
        Some(other) => Err(RpcError::app(
            ErrorTag::InvalidValue,
            format!("unsupported schema format \"{other}\""),
        )
        .with_info("bad-element", "format")),
    }
}

/// RFC 6022 §3.1 `<get-schema>`: the text of a module or submodule of the
/// context. Unknown identifier or version → `invalid-value`; several
/// revisions and no version given → `operation-failed` / `data-not-unique`.
pub fn get_schema(
    identifier: &str,
    version: Option<&str>,
    format: Option<&str>,
) -> Result<String, RpcError> {
    let format = parse_format(format)?;
    let version = version.map(str::trim).filter(|v| !v.is_empty());
    let ctx = context();
    let modules: Vec<SchemaModule<'_>> = ctx
        .modules(false)
        .filter(|m| m.name() == identifier && !crate::schema::is_hidden_module(m.name()))
        .filter(|m| version.is_none() || m.revision() == version)
        .collect();
    if modules.len() > 1 {
        return Err(RpcError::app(
            ErrorTag::OperationFailed,
            format!("several revisions of \"{identifier}\": give a version"),
        )
        .with_app_tag("data-not-unique"));
    }
    if let Some(m) = modules.first() {
        return module_text(m, format);
    }
    if let Some(text) = submodule_text(identifier, version, format)? {
        return Ok(text);
    }
    let what = match version {
        Some(v) => format!("{identifier}@{v}"),
        None => identifier.to_owned(),
    };
    Err(RpcError::app(
        ErrorTag::InvalidValue,
        format!("no schema \"{what}\" on this server"),
    )
    .with_info("bad-element", "identifier"))
}

fn module_text(m: &SchemaModule<'_>, format: Format) -> Result<String, RpcError> {
    if format == Format::Yang {
        // The original text where we have it: comments and layout intact.
        if let Some(text) = embedded_source(m.name(), m.revision()) {
            return Ok(text.to_owned());
        }
        if let Some(path) = m.filepath() {
            if let Ok(text) = std::fs::read_to_string(path) {
                if !path.ends_with(".yin") {
                    return Ok(text);
                }
            }
        }
    }
    let out = match format {
        Format::Yang => SchemaOutputFormat::YANG,
        Format::Yin => SchemaOutputFormat::YIN,
    };
    m.print_string(out, SchemaPrinterFlags::empty())
        .map_err(|e| RpcError::from_yang(&e))
}

fn submodule_text(
    name: &str,
    version: Option<&str>,
    format: Format,
) -> Result<Option<String>, RpcError> {
    let ctx = context();
    let Some(any) = ctx.modules(false).next() else {
        return Ok(None);
    };
    let cname =
        CString::new(name).map_err(|_| RpcError::app(ErrorTag::InvalidValue, "bad identifier"))?;
    let crev = version
        .map(CString::new)
        .transpose()
        .map_err(|_| RpcError::app(ErrorTag::InvalidValue, "bad version"))?;
    // SAFETY: yang2 hides the context pointer; every module points back to
    // it. Names are NUL-terminated and outlive the calls.
    let sub = unsafe {
        let raw_ctx = (*any.as_raw()).ctx;
        match &crev {
            Some(r) => ffi::ly_ctx_get_submodule(raw_ctx, cname.as_ptr(), r.as_ptr()),
            None => ffi::ly_ctx_get_submodule_latest(raw_ctx, cname.as_ptr()),
        }
    };
    if sub.is_null() {
        return Ok(None);
    }
    let out_format = match format {
        Format::Yang => ffi::LYS_OUTFORMAT::LYS_OUT_YANG,
        Format::Yin => ffi::LYS_OUTFORMAT::LYS_OUT_YIN,
    };
    let mut out: *mut ffi::ly_out = std::ptr::null_mut();
    let mut buf: *mut std::os::raw::c_char = std::ptr::null_mut();
    // SAFETY: `ly_out_new_memory` allocates `buf` for the printer; after
    // printing we copy it and free both (the out handle with its buffer).
    unsafe {
        if ffi::ly_out_new_memory(&mut buf, 0, &mut out) != ffi::LY_ERR::LY_SUCCESS {
            return Err(RpcError::app(ErrorTag::OperationFailed, "out of memory"));
        }
        let ret = ffi::lys_print_submodule(out, sub, out_format, 0, 0);
        let text = if buf.is_null() {
            String::new()
        } else {
            CStr::from_ptr(buf).to_string_lossy().into_owned()
        };
        ffi::ly_out_free(out, None, 1);
        if ret != ffi::LY_ERR::LY_SUCCESS {
            return Err(RpcError::app(
                ErrorTag::OperationFailed,
                format!("printing submodule \"{name}\""),
            ));
        }
        Ok(Some(text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_parsing() {
        assert_eq!(parse_format(None).ok(), Some(Format::Yang));
        assert_eq!(parse_format(Some("ncm:yang")).ok(), Some(Format::Yang));
        assert_eq!(parse_format(Some("yin")).ok(), Some(Format::Yin));
        assert!(parse_format(Some("xsd")).is_err());
    }

    #[test]
    fn date_format() {
        let t = DateTime::parse_from_rfc3339("2026-12-03T20:01:45.123+00:00")
            .map(|t| t.with_timezone(&Utc));
        assert_eq!(
            t.map(|t| date_and_time(&t)).ok().as_deref(),
            Some("2026-12-03T20:01:45Z")
        );
    }
}
