//! `<rpc-reply>` rendering: the one boundary where [`RpcError`] values
//! become XML (RFC 6241 §4.2, §4.3, Appendix A).

use std::fmt::Write as _;

use crate::error::RpcError;
use crate::schema::NC_NS;

/// The attributes of an `<rpc>` element, echoed on its reply.
#[derive(Debug, Clone, Default)]
pub struct ReplyAttrs {
    /// Rendered ` name="value"` text, namespace declarations included.
    text: String,
}

impl ReplyAttrs {
    /// Collects every attribute of `rpc` (RFC 6241 §4.2: "the <rpc-reply>
    /// element MUST contain all attributes of the <rpc> element"),
    /// declaring the prefixes of qualified ones.
    pub fn from_rpc(rpc: roxmltree::Node<'_, '_>) -> Self {
        let mut text = String::new();
        let mut declared: Vec<(String, &str)> = Vec::new();
        for a in rpc.attributes() {
            match a.namespace() {
                None => {
                    let _ = write!(text, " {}=\"{}\"", a.name(), escape_attr(a.value()));
                }
                Some(ns) => {
                    let prefix = match rpc.lookup_prefix(ns) {
                        Some(p) if !p.is_empty() && p != "xmlns" => p.to_string(),
                        _ => format!("a{}", declared.len()),
                    };
                    if prefix == "xml" {
                        let _ = write!(text, " xml:{}=\"{}\"", a.name(), escape_attr(a.value()));
                        continue;
                    }
                    if !declared.iter().any(|(p, _)| *p == prefix) {
                        let _ = write!(text, " xmlns:{}=\"{}\"", prefix, escape_attr(ns));
                        declared.push((prefix.clone(), ns));
                    }
                    let _ = write!(
                        text,
                        " {}:{}=\"{}\"",
                        prefix,
                        a.name(),
                        escape_attr(a.value())
                    );
                }
            }
        }
        ReplyAttrs { text }
    }

    /// Attributes for a reply to a message that had none we could read.
    pub fn none() -> Self {
        ReplyAttrs::default()
    }
}

/// `<rpc-reply …><ok/></rpc-reply>`
pub fn ok(attrs: &ReplyAttrs) -> String {
    format!(
        "<rpc-reply xmlns=\"{NC_NS}\"{}><ok/></rpc-reply>",
        attrs.text
    )
}

/// `<rpc-reply …>BODY</rpc-reply>`; `body` is already XML.
pub fn with_body(attrs: &ReplyAttrs, body: &str) -> String {
    let mut s = String::with_capacity(body.len() + 128);
    let _ = write!(s, "<rpc-reply xmlns=\"{NC_NS}\"{}>", attrs.text);
    s.push_str(body);
    s.push_str("</rpc-reply>");
    s
}

/// `<rpc-reply …><data>DATA</data></rpc-reply>`; `data` is printed XML.
pub fn data(attrs: &ReplyAttrs, data: &str) -> String {
    let mut s = String::with_capacity(data.len() + 160);
    let _ = write!(s, "<rpc-reply xmlns=\"{NC_NS}\"{}><data>", attrs.text);
    s.push_str(data);
    s.push_str("</data></rpc-reply>");
    s
}

/// A reply carrying one or more `<rpc-error>`s.
pub fn errors(attrs: &ReplyAttrs, errors: &[RpcError]) -> String {
    let mut s = format!("<rpc-reply xmlns=\"{NC_NS}\"{}>", attrs.text);
    for e in errors {
        render_error(e, &mut s);
    }
    s.push_str("</rpc-reply>");
    s
}

/// One `<rpc-error>` element (RFC 6241 §4.3).
pub fn render_error(e: &RpcError, out: &mut String) {
    out.push_str("<rpc-error>");
    let _ = write!(out, "<error-type>{}</error-type>", e.error_type.as_str());
    let _ = write!(out, "<error-tag>{}</error-tag>", e.tag.as_str());
    out.push_str("<error-severity>error</error-severity>");
    if let Some(t) = &e.app_tag {
        let _ = write!(out, "<error-app-tag>{}</error-app-tag>", escape_text(t));
    }
    if let Some(p) = &e.path {
        let (xpath, nss) = qualify_path(p);
        out.push_str("<error-path");
        for (prefix, ns) in &nss {
            let _ = write!(out, " xmlns:{prefix}=\"{}\"", escape_attr(ns));
        }
        let _ = write!(out, ">{}</error-path>", escape_text(&xpath));
    }
    if let Some(m) = &e.message {
        let _ = write!(
            out,
            "<error-message xml:lang=\"en\">{}</error-message>",
            escape_text(m)
        );
    }
    if !e.info.is_empty() {
        out.push_str("<error-info>");
        for (name, value) in &e.info {
            // Names are ours (bad-element, session-id, …), never input.
            let _ = write!(out, "<{name}>{}</{name}>", escape_text(value));
        }
        out.push_str("</error-info>");
    }
    out.push_str("</rpc-error>");
}

/// Turns a libyang data path (`/app-hosting:app-hosting/app[name='x']/cpu`,
/// module names as prefixes, inherited by children) into an XPath whose
/// every node is qualified with the module's own prefix
/// (`/ah:app-hosting/ah:app[ah:name='x']/ah:cpu`), plus the namespace
/// declarations it needs. Unknown modules keep their name as prefix and get
/// no declaration.
pub fn qualify_path(path: &str) -> (String, Vec<(String, String)>) {
    let ctx = crate::schema::context();
    let mut out = String::with_capacity(path.len() + 16);
    let mut nss: Vec<(String, String)> = Vec::new();
    let mut module: Option<String> = None;
    let bytes = path.as_bytes();
    let mut i = 0;
    // Depth inside predicates; names at predicate start are key names.
    let mut pred_depth = 0usize;
    let prefix_of = |m: &str, nss: &mut Vec<(String, String)>| -> String {
        match ctx
            .get_module_implemented(m)
            .or_else(|| ctx.get_module_latest(m))
        {
            Some(sm) => {
                let p = sm.prefix().to_string();
                if !nss.iter().any(|(q, _)| *q == p) {
                    nss.push((p.clone(), sm.namespace().to_string()));
                }
                p
            }
            None => m.to_string(),
        }
    };
    while i < bytes.len() {
        let c = bytes[i] as char;
        match c {
            '\'' | '"' => {
                // Copy a quoted literal verbatim.
                let end = path[i + 1..]
                    .find(c)
                    .map(|j| i + 1 + j + 1)
                    .unwrap_or(path.len());
                out.push_str(&path[i..end]);
                i = end;
            }
            '[' => {
                pred_depth += 1;
                out.push('[');
                i += 1;
            }
            ']' => {
                pred_depth = pred_depth.saturating_sub(1);
                out.push(']');
                i += 1;
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                let start = i;
                while i < bytes.len()
                    && (bytes[i].is_ascii_alphanumeric()
                        || matches!(bytes[i], b'_' | b'-' | b'.' | b':'))
                {
                    i += 1;
                }
                let tok = &path[start..i];
                // A name token is a node name unless it is a function or
                // follows something that makes it a value; libyang paths
                // only hold node names, keys and literals.
                let (m, name) = match tok.split_once(':') {
                    Some((m, n)) => {
                        if pred_depth == 0 {
                            module = Some(m.to_string());
                        }
                        (Some(m.to_string()), n)
                    }
                    None => (module.clone(), tok),
                };
                match m {
                    Some(m) => {
                        let p = prefix_of(&m, &mut nss);
                        let _ = write!(out, "{p}:{name}");
                    }
                    None => out.push_str(name),
                }
            }
            _ => {
                out.push(c);
                i += c.len_utf8();
                // Keep multi-byte characters intact.
                while i < bytes.len() && !path.is_char_boundary(i) {
                    i += 1;
                }
            }
        }
    }
    (out, nss)
}

/// Escapes text content.
pub fn escape_text(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            c => o.push(c),
        }
    }
    o
}

/// Escapes an attribute value (double-quoted).
pub fn escape_attr(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\n' => o.push_str("&#10;"),
            '\t' => o.push_str("&#9;"),
            '\r' => o.push_str("&#13;"),
            c => o.push(c),
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{ErrorTag, RpcError};

    #[test]
    fn path_is_qualified() {
        let (x, ns) = qualify_path("/app-hosting:app-hosting/app[name='x/y:z']/cpu");
        assert_eq!(x, "/ah:app-hosting/ah:app[ah:name='x/y:z']/ah:cpu");
        assert_eq!(
            ns,
            vec![("ah".to_string(), crate::schema::AH_NS.to_string())]
        );
        let (x, _) =
            qualify_path("/ietf-netconf-acm:nacm/groups/group[name=\"a\"]/user-name[.='b']");
        assert_eq!(
            x,
            "/nacm:nacm/nacm:groups/nacm:group[nacm:name=\"a\"]/nacm:user-name[.='b']"
        );
    }

    #[test]
    fn attrs_echoed() {
        let doc = roxmltree::Document::parse(
            r#"<nc:rpc xmlns:nc="urn:ietf:params:xml:ns:netconf:base:1.0" xmlns:x="urn:x" message-id="1&amp;" x:foo="b"/>"#,
        )
        .unwrap();
        let a = ReplyAttrs::from_rpc(doc.root_element());
        let r = ok(&a);
        assert_eq!(
            r,
            r#"<rpc-reply xmlns="urn:ietf:params:xml:ns:netconf:base:1.0" message-id="1&amp;" xmlns:x="urn:x" x:foo="b"><ok/></rpc-reply>"#
        );
        roxmltree::Document::parse(&r).unwrap();
    }

    #[test]
    fn error_rendering_parses() {
        let e = RpcError::app(ErrorTag::InvalidValue, "a < b & c")
            .with_path("/app-hosting:app-hosting/app[name='w']/cpu")
            .with_app_tag("too-big")
            .with_info("bad-element", "cpu");
        let r = errors(&ReplyAttrs::none(), &[e]);
        let doc = roxmltree::Document::parse(&r).unwrap();
        let path = doc
            .descendants()
            .find(|n| n.has_tag_name("error-path"))
            .unwrap();
        assert_eq!(
            path.text(),
            Some("/ah:app-hosting/ah:app[ah:name='w']/ah:cpu")
        );
        assert_eq!(
            path.lookup_namespace_uri(Some("ah")),
            Some(crate::schema::AH_NS)
        );
        let msg = doc
            .descendants()
            .find(|n| n.has_tag_name("error-message"))
            .unwrap();
        assert_eq!(msg.text(), Some("a < b & c"));
        assert!(doc
            .descendants()
            .any(|n| n.has_tag_name("bad-element") && n.text() == Some("cpu")));
    }
}
