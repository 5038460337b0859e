//! get-schema (RFC 6022 §3.1): the text of a YANG module we serve.

use roxmltree::Node;
use yang2::schema::{SchemaOutputFormat, SchemaPrinterFlags};

use super::{bad, child, missing, Response, RpcCtx, MONITORING_NS};
use crate::error::{ErrorTag, RpcError};
use crate::netconf::reply::escape_text;

pub fn handle(_ctx: &RpcCtx<'_>, op: Node<'_, '_>) -> Response {
    match run(op) {
        Ok(text) => Response::Body(format!(
            "<data xmlns=\"{MONITORING_NS}\">{}</data>",
            escape_text(&text)
        )),
        Err(e) => e.into(),
    }
}

fn run(op: Node<'_, '_>) -> Result<String, RpcError> {
    let text = |name: &str| {
        child(op, MONITORING_NS, name).map(|n| n.text().unwrap_or("").trim().to_string())
    };
    let identifier = text("identifier").ok_or_else(|| missing("identifier"))?;
    let version = text("version").filter(|v| !v.is_empty());
    let format = text("format").unwrap_or_else(|| "yang".into());
    let format = match format.rsplit(':').next().unwrap_or("") {
        "yang" => SchemaOutputFormat::YANG,
        "yin" => SchemaOutputFormat::YIN,
        _ => return Err(bad("format", format!("unsupported schema format {format}"))),
    };
    if identifier.contains('\0') || version.as_deref().is_some_and(|v| v.contains('\0')) {
        return Err(bad("identifier", "invalid identifier"));
    }
    let ctx = crate::schema::context();
    let module = match &version {
        Some(v) => ctx.get_module(&identifier, Some(v)),
        None => ctx
            .get_module_implemented(&identifier)
            .or_else(|| ctx.get_module_latest(&identifier)),
    };
    let Some(module) = module else {
        return Err(
            RpcError::protocol(ErrorTag::InvalidValue, format!("no schema {identifier}"))
                .with_info("bad-element", "identifier"),
        );
    };
    if format == SchemaOutputFormat::YANG {
        if let Some(src) = crate::schema::embedded_source(module.name(), module.revision()) {
            return Ok(src.to_string());
        }
    }
    module
        .print_string(format, SchemaPrinterFlags::empty())
        .map_err(|e| RpcError::from_yang(&e))
}
