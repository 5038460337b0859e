//! Printing data for `<data>` replies, with the with-defaults modes of
//! RFC 6243.
//!
//! Output is XML of all top-level siblings, without whitespace, and
//! byte-stable: the same tree always prints the same text (Ansible compares
//! the texts of two reads to detect a change).

use yang2::data::{Data, DataFormat, DataPrinterFlags, DataTree};
use yang2::ffi;
use yang2::utils::Binding;

use crate::error::{ErrorTag, RpcError};
use crate::netconf::filter::{apply, Filter};

/// The namespace RFC 6243 §6 gives the `default` attribute.
pub const WD_ATTR_NS: &str = "urn:ietf:params:xml:ns:netconf:default:1.0";

/// The namespace libyang 2.2 uses for that attribute: the module's own
/// namespace, which no NETCONF client recognizes.
const LIBYANG_WD_NS: &str = "urn:ietf:params:xml:ns:yang:ietf-netconf-with-defaults";

/// with-defaults retrieval mode (RFC 6243 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WithDefaults {
    /// Nodes set by a client (or state set by the server); our basic mode.
    Explicit,
    /// Every node, defaults included.
    ReportAll,
    /// Every node; default-valued ones carry `wd:default="true"`.
    ReportAllTagged,
    /// No node whose value equals its default.
    Trim,
}

impl WithDefaults {
    /// Parses the value of `<with-defaults>`.
    pub fn parse(s: &str) -> Option<WithDefaults> {
        match s.trim() {
            "explicit" => Some(WithDefaults::Explicit),
            "report-all" => Some(WithDefaults::ReportAll),
            "report-all-tagged" => Some(WithDefaults::ReportAllTagged),
            "trim" => Some(WithDefaults::Trim),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            WithDefaults::Explicit => "explicit",
            WithDefaults::ReportAll => "report-all",
            WithDefaults::ReportAllTagged => "report-all-tagged",
            WithDefaults::Trim => "trim",
        }
    }

    /// Whether the mode reports default nodes, so that a tree missing its
    /// implicit nodes must get them first (see [`complete_defaults`]).
    pub fn needs_implicit(self) -> bool {
        matches!(
            self,
            WithDefaults::ReportAll | WithDefaults::ReportAllTagged
        )
    }

    fn printer_flags(self) -> DataPrinterFlags {
        match self {
            WithDefaults::Explicit => DataPrinterFlags::WD_EXPLICIT,
            WithDefaults::ReportAll => DataPrinterFlags::WD_ALL,
            // yang2 has no constant for it; LYD_PRINT_WD_ALL_TAG tags
            // every default-valued node, explicit or implicit, as RFC 6243
            // §3.4 asks (WD_IMPL_TAG would tag implicit ones only).
            WithDefaults::ReportAllTagged => {
                DataPrinterFlags::from_bits_retain(yang2::ffi::LYD_PRINT_WD_ALL_TAG)
            }
            WithDefaults::Trim => DataPrinterFlags::WD_TRIM,
        }
    }
}

/// A copy of `tree` with every implicit node (defaults, non-presence
/// containers) added. Trees straight from validation already have them; a
/// tree that was only parsed does not. Call this on the *whole* tree
/// before filtering when the mode [`needs_implicit`](WithDefaults::needs_implicit):
/// adding defaults after a filter would add nodes the filter did not select.
pub fn complete_defaults(tree: &DataTree<'static>) -> Result<DataTree<'static>, RpcError> {
    let dup = tree.duplicate().map_err(|e| RpcError::from_yang(&e))?;
    let Some(first) = dup.reference() else {
        return Ok(dup);
    };
    // Only the modules that have data here: `add_implicit` would add the
    // state containers and counters of every module of the context.
    let mut modules: Vec<*mut ffi::lys_module> = Vec::new();
    for node in first.inclusive_siblings() {
        let m = node.owner_module().as_raw();
        if !modules.contains(&m) {
            modules.push(m);
        }
    }
    let ctx = crate::schema::context();
    let mut raw = dup.into_raw();
    for m in modules {
        // SAFETY: `raw` is the first sibling of a tree we own; libyang may
        // insert siblings and updates `raw`; `m` is a live module.
        let ret = unsafe { ffi::lyd_new_implicit_module(&mut raw, m, 0, std::ptr::null_mut()) };
        if ret != ffi::LY_ERR::LY_SUCCESS {
            let err = yang2::Error::new(ctx);
            // SAFETY: the tree is ours and not used after this.
            unsafe { ffi::lyd_free_all(raw) };
            return Err(RpcError::from_yang(&err));
        }
    }
    // SAFETY: `raw` is a node of the tree we own; the DataTree takes it over
    // from its first sibling, as yang2 expects.
    Ok(unsafe { DataTree::from_raw(ctx, ffi::lyd_first_sibling(raw)) })
}

/// Prints `tree` (all top-level siblings) as the content of `<data>`.
///
/// The tree is printed as it is: for report-all modes it should hold its
/// implicit nodes (see [`complete_defaults`]).
pub fn print_data(tree: &DataTree<'_>, wd: WithDefaults) -> Result<String, RpcError> {
    if tree.reference().is_none() {
        return Ok(String::new());
    }
    let flags = DataPrinterFlags::WITH_SIBLINGS | DataPrinterFlags::SHRINK | wd.printer_flags();
    let text = tree
        .print_string(DataFormat::XML, flags)
        .map_err(|e| {
            RpcError::app(
                ErrorTag::OperationFailed,
                format!("printing data: {}", e.msg.clone().unwrap_or_default()),
            )
        })?
        .unwrap_or_default();
    if wd == WithDefaults::ReportAllTagged {
        Ok(fix_wd_namespace(&text))
    } else {
        Ok(text)
    }
}

/// The content of a `<data>` reply: `tree` (a datastore or state), its
/// defaults completed when `wd` reports them, then filtered, then printed.
/// This is the order RFC 6243 needs: defaults are part of the data the
/// filter selects from.
pub fn reply_data(
    tree: &DataTree<'static>,
    filter: Option<&Filter>,
    wd: WithDefaults,
) -> Result<String, RpcError> {
    // The licence gate: a hidden module's data is neither selectable nor
    // shown (configuration stored while it was licensed stays stored).
    if let Some(f) = filter {
        crate::netconf::filter::check_hidden(f)?;
    }
    let completed = if wd.needs_implicit() {
        Some(complete_defaults(tree)?)
    } else {
        None
    };
    let tree = completed.as_ref().unwrap_or(tree);
    let visible = crate::netconf::filter::without_hidden(tree)?;
    let tree = visible.as_ref().unwrap_or(tree);
    match filter {
        None => print_data(tree, wd),
        filter => print_data(&apply(tree, filter)?, wd),
    }
}

/// Replaces libyang's namespace of the `default` attribute by RFC 6243's,
/// in markup only: a text node holding the same string is left alone.
/// Inside a tag, attribute values are quoted and `"` is escaped, so the
/// pattern `="URI"` there can only be a namespace declaration.
fn fix_wd_namespace(xml: &str) -> String {
    let needle = format!("=\"{LIBYANG_WD_NS}\"");
    let replacement = format!("=\"{WD_ATTR_NS}\"");
    let mut out = String::with_capacity(xml.len());
    let mut rest = xml;
    // Alternate between text (outside tags) and markup (inside `<...>`).
    while let Some(open) = rest.find('<') {
        out.push_str(&rest[..open]);
        let tag_and_more = &rest[open..];
        let close = tag_and_more
            .find('>')
            .map(|i| i + 1)
            .unwrap_or(tag_and_more.len());
        out.push_str(&tag_and_more[..close].replace(&needle, &replacement));
        rest = &tag_and_more[close..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_modes() {
        assert_eq!(
            WithDefaults::parse("report-all-tagged"),
            Some(WithDefaults::ReportAllTagged)
        );
        assert_eq!(WithDefaults::parse("trim"), Some(WithDefaults::Trim));
        assert_eq!(
            WithDefaults::parse("explicit"),
            Some(WithDefaults::Explicit)
        );
        assert_eq!(
            WithDefaults::parse("report-all"),
            Some(WithDefaults::ReportAll)
        );
        assert_eq!(WithDefaults::parse("all"), None);
    }

    #[test]
    fn namespace_fixed_in_markup_only() {
        let xml = format!(
            "<a xmlns=\"x\" xmlns:ncwd=\"{LIBYANG_WD_NS}\"><b ncwd:default=\"true\">=\"{LIBYANG_WD_NS}\"</b></a>"
        );
        let fixed = fix_wd_namespace(&xml);
        assert_eq!(
            fixed,
            format!("<a xmlns=\"x\" xmlns:ncwd=\"{WD_ATTR_NS}\"><b ncwd:default=\"true\">=\"{LIBYANG_WD_NS}\"</b></a>")
        );
    }
}
