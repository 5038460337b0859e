//! The `<hello>` exchange (RFC 6241 §8.1): our capabilities, and the
//! client's hello checked for a base version.

use std::fmt::Write as _;
use std::sync::OnceLock;

use crate::netconf::reply::escape_text;
use crate::schema::NC_NS;

pub const BASE_1_0: &str = "urn:ietf:params:netconf:base:1.0";
pub const BASE_1_1: &str = "urn:ietf:params:netconf:base:1.1";
pub const YANG_LIBRARY_REVISION: &str = "2019-01-04";

/// Protocol capabilities we implement, in hello order.
const PROTOCOL_CAPS: &[&str] = &[
    BASE_1_0,
    BASE_1_1,
    "urn:ietf:params:netconf:capability:writable-running:1.0",
    "urn:ietf:params:netconf:capability:candidate:1.0",
    "urn:ietf:params:netconf:capability:confirmed-commit:1.1",
    "urn:ietf:params:netconf:capability:rollback-on-error:1.0",
    "urn:ietf:params:netconf:capability:validate:1.1",
    "urn:ietf:params:netconf:capability:startup:1.0",
    "urn:ietf:params:netconf:capability:xpath:1.0",
    "urn:ietf:params:netconf:capability:with-defaults:1.0?basic-mode=explicit&also-supported=report-all,report-all-tagged,trim",
];

/// Every capability URI we announce.
pub fn capabilities() -> &'static [String] {
    static CAPS: OnceLock<Vec<String>> = OnceLock::new();
    CAPS.get_or_init(|| {
        let mut caps: Vec<String> = PROTOCOL_CAPS.iter().map(|s| s.to_string()).collect();
        caps.push(format!(
            "urn:ietf:params:netconf:capability:yang-library:1.1?revision={YANG_LIBRARY_REVISION}&content-id={}",
            crate::netconf::yanglib::content_id()
        ));
        caps.extend(module_capabilities());
        caps
    })
}

/// `ns?module=name&revision=…&features=…&deviations=…` for every
/// implemented YANG 1.0 module; YANG 1.1 modules are announced only through
/// the yang-library (RFC 7950 §5.6.4).
fn module_capabilities() -> Vec<String> {
    let ctx = crate::schema::context();
    let mut caps = Vec::new();
    for m in ctx.modules(false) {
        if !m.is_implemented() || crate::schema::is_hidden_module(m.name()) {
            continue;
        }
        let raw = m.as_raw();
        // SAFETY: `raw` is a module of the live 'static context; `parsed`
        // is kept by libyang for every loaded module and only read here.
        let (version, features, deviations) = unsafe {
            let parsed = (*raw).parsed;
            if parsed.is_null() {
                continue;
            }
            let version = (*parsed).version;
            let mut features = Vec::new();
            let mut idx: u32 = 0;
            let mut f = yang2::ffi::lysp_feature_next(std::ptr::null(), parsed, &mut idx);
            while !f.is_null() {
                if u32::from((*f).flags) & yang2::ffi::LYS_FENABLED != 0 {
                    features.push(cstr((*f).name));
                }
                f = yang2::ffi::lysp_feature_next(f, parsed, &mut idx);
            }
            let mut deviations = Vec::new();
            let dev = (*raw).deviated_by;
            if !dev.is_null() {
                let n = *(dev as *const u64).offset(-1);
                for i in 0..n as usize {
                    let d = *dev.add(i);
                    if !d.is_null() {
                        deviations.push(cstr((*d).name));
                    }
                }
            }
            (version, features, deviations)
        };
        // 0 means no yang-version statement, i.e. 1.0.
        if u32::from(version) == yang2::ffi::LYS_VERSION::LYS_VERSION_1_1 {
            continue;
        }
        let mut cap = format!("{}?module={}", m.namespace(), m.name());
        if let Some(r) = m.revision() {
            let _ = write!(cap, "&revision={r}");
        }
        if !features.is_empty() {
            let _ = write!(cap, "&features={}", features.join(","));
        }
        if !deviations.is_empty() {
            let _ = write!(cap, "&deviations={}", deviations.join(","));
        }
        caps.push(cap);
    }
    caps
}

/// # Safety
/// `p` is null or a NUL-terminated string owned by the context.
unsafe fn cstr(p: *const std::os::raw::c_char) -> String {
    if p.is_null() {
        return String::new();
    }
    std::ffi::CStr::from_ptr(p).to_string_lossy().into_owned()
}

/// Our `<hello>` for session `session_id`.
pub fn server_hello(session_id: u32) -> String {
    let mut s = String::with_capacity(4096);
    let _ = write!(
        s,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><hello xmlns=\"{NC_NS}\"><capabilities>"
    );
    for c in capabilities() {
        let _ = write!(s, "<capability>{}</capability>", escape_text(c));
    }
    let _ = write!(
        s,
        "</capabilities><session-id>{session_id}</session-id></hello>"
    );
    s
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HelloError {
    #[error("client hello is not XML: {0}")]
    Xml(String),
    #[error("expected <hello>, got <{0}>")]
    NotHello(String),
    #[error("client hello carries a session-id")]
    SessionId,
    #[error("client supports neither base:1.0 nor base:1.1")]
    NoBase,
}

/// What the client's hello tells us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientHello {
    /// Both sides speak base:1.1: chunked framing from now on.
    pub base11: bool,
    pub capabilities: Vec<String>,
}

/// Checks the client hello (RFC 6241 §8.1).
pub fn parse_client_hello(text: &str) -> Result<ClientHello, HelloError> {
    let doc = roxmltree::Document::parse(text).map_err(|e| HelloError::Xml(e.to_string()))?;
    let root = doc.root_element();
    if root.tag_name().name() != "hello" || root.tag_name().namespace().is_some_and(|n| n != NC_NS)
    {
        return Err(HelloError::NotHello(root.tag_name().name().to_string()));
    }
    if root
        .children()
        .any(|c| c.has_tag_name("session-id") || c.tag_name().name() == "session-id")
    {
        return Err(HelloError::SessionId);
    }
    let capabilities: Vec<String> = root
        .children()
        .filter(|c| c.tag_name().name() == "capabilities")
        .flat_map(|c| c.children())
        .filter(|c| c.tag_name().name() == "capability")
        .filter_map(|c| c.text())
        .map(|t| t.trim().to_string())
        .collect();
    let base10 = capabilities.iter().any(|c| c == BASE_1_0);
    let base11 = capabilities.iter().any(|c| c == BASE_1_1);
    if !base10 && !base11 {
        return Err(HelloError::NoBase);
    }
    Ok(ClientHello {
        base11,
        capabilities,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hello_lists_caps() {
        let h = server_hello(7);
        let doc = roxmltree::Document::parse(&h).unwrap();
        let caps: Vec<&str> = doc
            .descendants()
            .filter(|n| n.has_tag_name("capability"))
            .filter_map(|n| n.text())
            .collect();
        assert!(caps.contains(&BASE_1_1));
        assert!(caps.iter().any(|c| c.starts_with("urn:ietf:params:netconf:capability:with-defaults:1.0?basic-mode=explicit&also-supported=")));
        assert!(caps.iter().any(|c| c.starts_with(
            "urn:ietf:params:netconf:capability:yang-library:1.1?revision=2019-01-04&content-id="
        )));
        // YANG 1.0 modules are listed, YANG 1.1 ones (ours) are not.
        assert!(caps.iter().any(|c| c.starts_with("urn:ietf:params:xml:ns:yang:ietf-netconf-monitoring?module=ietf-netconf-monitoring&revision=2010-10-04")));
        let nc = caps
            .iter()
            .find(|c| c.contains("module=ietf-netconf&"))
            .unwrap();
        assert!(nc.contains("features=") && nc.contains("candidate"), "{nc}");
        assert!(!caps.iter().any(|c| c.contains("module=app-hosting")));
        assert!(doc
            .descendants()
            .any(|n| n.has_tag_name("session-id") && n.text() == Some("7")));
    }

    #[test]
    fn client_hello() {
        let h = format!(
            "<hello xmlns=\"{NC_NS}\"><capabilities><capability>{BASE_1_0}</capability><capability>\n {BASE_1_1} </capability></capabilities></hello>"
        );
        assert!(parse_client_hello(&h).unwrap().base11);
        let h = format!("<hello xmlns=\"{NC_NS}\"><capabilities><capability>urn:x</capability></capabilities></hello>");
        assert_eq!(parse_client_hello(&h), Err(HelloError::NoBase));
        assert!(matches!(
            parse_client_hello("<rpc/>"),
            Err(HelloError::NotHello(_))
        ));
        assert!(matches!(
            parse_client_hello("<hello"),
            Err(HelloError::Xml(_))
        ));
    }
}
