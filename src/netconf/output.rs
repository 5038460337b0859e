//! Data selection and printing for get, get-config and get-data:
//! with-defaults (RFC 6243) and filters (RFC 6241 §6, §8.9).
//!
//! Filters proper live in the `filter` module (another branch); until it
//! is merged a filter is refused with operation-not-supported rather than
//! answered with unfiltered data.

use roxmltree::Node;
use yang2::data::{Data, DataFormat, DataPrinterFlags, DataTree};

use crate::error::{ErrorTag, RpcError};
use crate::netconf::rpc::{bad, child, WITH_DEFAULTS_NS};

/// with-defaults retrieval mode (RFC 6243 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WithDefaults {
    /// Our basic mode.
    #[default]
    Explicit,
    ReportAll,
    ReportAllTagged,
    Trim,
}

/// Reads the optional `<with-defaults>` parameter of `op`.
pub fn with_defaults(op: Node<'_, '_>) -> Result<WithDefaults, RpcError> {
    let Some(n) = child(op, WITH_DEFAULTS_NS, "with-defaults") else {
        return Ok(WithDefaults::default());
    };
    match n.text().unwrap_or("").trim() {
        "explicit" => Ok(WithDefaults::Explicit),
        "report-all" => Ok(WithDefaults::ReportAll),
        "report-all-tagged" => Ok(WithDefaults::ReportAllTagged),
        "trim" => Ok(WithDefaults::Trim),
        other => Err(bad(
            "with-defaults",
            format!("unknown with-defaults mode {other:?}"),
        )),
    }
}

/// Prints a tree (all top-level siblings) as the content of `<data>`.
/// The output is stable: same tree, same bytes (Ansible compares texts).
pub fn print(tree: &DataTree<'_>, wd: WithDefaults) -> Result<String, RpcError> {
    let wd_flag = match wd {
        WithDefaults::Explicit => DataPrinterFlags::WD_EXPLICIT,
        WithDefaults::ReportAll => DataPrinterFlags::WD_ALL,
        WithDefaults::ReportAllTagged => {
            DataPrinterFlags::from_bits_retain(yang2::ffi::LYD_PRINT_WD_ALL_TAG)
        }
        WithDefaults::Trim => DataPrinterFlags::WD_TRIM,
    };
    if tree.reference().is_none() {
        return Ok(String::new());
    }
    tree.print_string(
        DataFormat::XML,
        DataPrinterFlags::WITH_SIBLINGS | DataPrinterFlags::SHRINK | wd_flag,
    )
    .map(|s| s.unwrap_or_default())
    .map_err(|e| RpcError::from_yang(&e).with_message(format!("printing data: {e}")))
}

/// What a `<filter>` parameter selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selection {
    All,
    Nothing,
}

/// Reads the `<filter>` parameter of `op` (namespace `ns`).
pub fn filter(op: Node<'_, '_>, ns: &str) -> Result<Selection, RpcError> {
    let Some(f) = child(op, ns, "filter") else {
        return Ok(Selection::All);
    };
    let subtree = f
        .attributes()
        .find(|a| a.name() == "type")
        .is_none_or(|a| a.value() == "subtree");
    // An empty subtree filter selects nothing (RFC 6241 §6.4.2).
    if subtree && !f.children().any(|c| c.is_element()) {
        return Ok(Selection::Nothing);
    }
    Err(RpcError::protocol(
        ErrorTag::OperationNotSupported,
        "filters are not supported yet",
    )
    .with_info("bad-element", "filter"))
}
