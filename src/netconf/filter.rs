//! NETCONF filters on libyang data trees: subtree filters (RFC 6241 §6) and
//! XPath filters (RFC 6241 §8.9).
//!
//! Both take a tree (a datastore's content, or operational state) and
//! return a new tree holding the selected nodes with their ancestors (and,
//! for list entries, their keys). Nodes are duplicated with their flags, so
//! default nodes stay marked as defaults for with-defaults printing.

use std::ffi::CString;

use roxmltree::Node;
use yang2::data::{DataNodeRef, DataTree};
use yang2::ffi;
use yang2::schema::{DataValueType, SchemaNode, SchemaNodeKind};
use yang2::utils::Binding;

use crate::error::{ErrorTag, RpcError};
use crate::schema::{context, NC_NS};

/// Deepest filter accepted: deeper than any data tree of ours, and bounded
/// so a hostile filter cannot exhaust the stack.
const MAX_FILTER_DEPTH: usize = 128;

// ===== subtree filter =====

/// One element of a subtree filter, owned (independent of the request
/// document).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterNode {
    /// Local name.
    pub name: String,
    /// Namespace URI; `None` when the element has none (or the NETCONF base
    /// namespace, which an unqualified element inherits from `<rpc>`): such
    /// an element matches nodes of any module.
    pub namespace: Option<String>,
    /// Attributes as (namespace, name, value). Attribute match expressions
    /// are optional in RFC 6241 §6.2.2 and our data carries no XML
    /// attributes, so they are kept but not matched.
    pub attributes: Vec<(Option<String>, String, String)>,
    /// Trimmed text of an element without element children, if not empty:
    /// such an element is a content match node.
    pub text: Option<String>,
    pub children: Vec<FilterNode>,
    /// Namespace declarations in scope (prefix, URI), kept for content
    /// match nodes to resolve prefixed identityref values.
    pub namespaces: Vec<(String, String)>,
}

impl FilterNode {
    fn from_element(node: Node<'_, '_>, depth: usize) -> Result<FilterNode, RpcError> {
        if depth > MAX_FILTER_DEPTH {
            return Err(RpcError::app(
                ErrorTag::InvalidValue,
                "subtree filter nested too deeply",
            ));
        }
        let tag = node.tag_name();
        let namespace = tag
            .namespace()
            .filter(|ns| !ns.is_empty() && *ns != NC_NS)
            .map(str::to_owned);
        let attributes = node
            .attributes()
            .map(|a| {
                (
                    a.namespace().map(str::to_owned),
                    a.name().to_owned(),
                    a.value().to_owned(),
                )
            })
            .collect();
        let mut children = Vec::new();
        for child in node.children().filter(|c| c.is_element()) {
            children.push(FilterNode::from_element(child, depth + 1)?);
        }
        let (text, namespaces) = if children.is_empty() {
            let text: String = node
                .children()
                .filter(|c| c.is_text())
                .filter_map(|c| c.text())
                .collect();
            let text = text.trim();
            if text.is_empty() {
                (None, Vec::new())
            } else {
                let namespaces = node
                    .namespaces()
                    .map(|ns| (ns.name().unwrap_or("").to_owned(), ns.uri().to_owned()))
                    .collect();
                (Some(text.to_owned()), namespaces)
            }
        } else {
            (None, Vec::new())
        };
        Ok(FilterNode {
            name: tag.name().to_owned(),
            namespace,
            attributes,
            text,
            children,
            namespaces,
        })
    }

    /// A leaf element with text: selects its parent only if it matches.
    fn is_content_match(&self) -> bool {
        self.text.is_some()
    }

    /// An empty element: selects the matching node with its whole subtree.
    fn is_selection(&self) -> bool {
        self.text.is_none() && self.children.is_empty()
    }

    fn matches_name(&self, node: &DataNodeRef<'_, '_>) -> bool {
        let Some(schema) = schema_of(node) else {
            return false;
        };
        if schema.name() != self.name {
            return false;
        }
        match &self.namespace {
            Some(ns) => schema.module().namespace() == ns,
            None => true,
        }
    }

    /// Whether a terminal node's value equals this content match node's
    /// text, compared as values (so `025` matches the uint8 `25`, and an
    /// identityref's XML prefix is resolved).
    fn matches_value(&self, node: &DataNodeRef<'_, '_>) -> bool {
        let Some(text) = &self.text else {
            return false;
        };
        let Some(schema) = schema_of(node) else {
            return false;
        };
        if !matches!(
            schema.kind(),
            SchemaNodeKind::Leaf | SchemaNodeKind::LeafList
        ) {
            return false;
        }
        let value = match schema.leaf_type().map(|t| t.base_type()) {
            Some(DataValueType::IdentityRef) => self.json_identity(text),
            _ => text.clone(),
        };
        if node.value_canonical().as_deref() == Some(value.as_str()) {
            return true;
        }
        // Not textually canonical: let libyang compare as typed values.
        let Ok(c) = CString::new(value.as_str()) else {
            return false;
        };
        // SAFETY: `node` is a live terminal node (checked above), and the
        // string outlives the call.
        let ret = unsafe {
            ffi::lyd_value_compare(
                node.as_raw() as *const ffi::lyd_node_term,
                c.as_ptr(),
                value.len(),
            )
        };
        ret == ffi::LY_ERR::LY_SUCCESS
    }

    /// Turns `xmlprefix:identity` into libyang's `module:identity`.
    fn json_identity(&self, text: &str) -> String {
        let Some((prefix, local)) = text.split_once(':') else {
            return text.to_owned();
        };
        let uri = self
            .namespaces
            .iter()
            .find(|(p, _)| p == prefix)
            .map(|(_, u)| u.as_str());
        match uri.and_then(|u| context().get_module_latest_ns(u)) {
            Some(module) => format!("{}:{}", module.name(), local),
            None => text.to_owned(),
        }
    }
}

/// A parsed subtree filter: its top-level elements.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SubtreeFilter {
    pub nodes: Vec<FilterNode>,
}

impl SubtreeFilter {
    /// Reads the filter from the `<filter type="subtree">` element (or
    /// get-data's `<subtree-filter>`): its element children are the
    /// filter's top-level nodes.
    pub fn from_node(node: Node<'_, '_>) -> Result<SubtreeFilter, RpcError> {
        let mut nodes = Vec::new();
        for child in node.children().filter(|c| c.is_element()) {
            nodes.push(FilterNode::from_element(child, 1)?);
        }
        Ok(SubtreeFilter { nodes })
    }

    /// Parses a filter from XML text whose root element plays the role of
    /// `<filter>` (for tests and for callers holding text).
    pub fn parse(xml: &str) -> Result<SubtreeFilter, RpcError> {
        let doc = roxmltree::Document::parse(xml)
            .map_err(|e| RpcError::rpc(ErrorTag::MalformedMessage, format!("filter: {e}")))?;
        SubtreeFilter::from_node(doc.root_element())
    }

    /// An empty filter selects nothing (RFC 6241 §6.4.2).
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }
}

/// What one sibling set of a filter selects under one parent instance.
enum Level<'t> {
    /// A content match node did not match: the parent is not selected.
    Fail,
    /// Only content match nodes, all matching: the whole parent.
    All,
    /// These nodes, each with its whole subtree.
    Nodes(Vec<DataNodeRef<'t, 'static>>),
}

fn eval_level<'t>(children: &[DataNodeRef<'t, 'static>], filters: &[FilterNode]) -> Level<'t> {
    // RFC 6241 §6.2.5: every content match node of the sibling set must
    // match some child, or the parent instance is not selected at all.
    let content: Vec<&FilterNode> = filters.iter().filter(|f| f.is_content_match()).collect();
    for cm in &content {
        if !children
            .iter()
            .any(|c| cm.matches_name(c) && cm.matches_value(c))
        {
            return Level::Fail;
        }
    }
    if !content.is_empty() && content.len() == filters.len() {
        return Level::All;
    }
    let mut out = Vec::new();
    for child in children {
        for f in filters.iter().filter(|f| f.matches_name(child)) {
            if f.is_content_match() {
                if f.matches_value(child) {
                    out.push(child.clone());
                }
            } else if f.is_selection() {
                out.push(child.clone());
            } else {
                // Containment node: only inner nodes have children to match.
                let is_inner = schema_of(child).is_some_and(|s| {
                    matches!(s.kind(), SchemaNodeKind::Container | SchemaNodeKind::List)
                });
                if !is_inner {
                    continue;
                }
                let grandchildren: Vec<_> = child.children().collect();
                match eval_level(&grandchildren, &f.children) {
                    Level::Fail => {}
                    Level::All => out.push(child.clone()),
                    Level::Nodes(nodes) => out.extend(nodes),
                }
            }
        }
    }
    Level::Nodes(out)
}

/// Applies a subtree filter (RFC 6241 §6) to `tree`.
pub fn subtree(
    tree: &DataTree<'static>,
    filter: &SubtreeFilter,
) -> Result<DataTree<'static>, RpcError> {
    let mut result = DataTree::new(context());
    let Some(first) = tree.reference() else {
        return Ok(result);
    };
    if filter.is_empty() {
        return Ok(result);
    }
    let top: Vec<_> = first.inclusive_siblings().collect();
    let selected = match eval_level(&top, &filter.nodes) {
        Level::Fail => Vec::new(),
        Level::All => top,
        Level::Nodes(nodes) => nodes,
    };
    for node in selected {
        add_with_parents(&mut result, &node)?;
    }
    Ok(result)
}

/// Copies `node` (its whole subtree), its ancestors and their list keys into
/// `result`.
fn add_with_parents(
    result: &mut DataTree<'static>,
    node: &DataNodeRef<'_, 'static>,
) -> Result<(), RpcError> {
    let dup = node.duplicate(true).map_err(|e| RpcError::from_yang(&e))?;
    if result.reference().is_none() {
        *result = dup;
    } else {
        result.merge(&dup).map_err(|e| RpcError::from_yang(&e))?;
    }
    Ok(())
}

/// The schema node of a data node; `None` for opaque nodes, which have none.
fn schema_of<'n>(node: &'n DataNodeRef<'_, '_>) -> Option<SchemaNode<'n>> {
    // SAFETY: the node is live; a null schema marks an opaque node, for
    // which `DataNodeRef::schema` would build an invalid reference.
    let raw = unsafe { (*node.as_raw()).schema };
    if raw.is_null() {
        None
    } else {
        Some(node.schema())
    }
}

// ===== either filter =====

/// A `<get>`/`<get-config>`/`<get-data>` filter of either kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    Subtree(SubtreeFilter),
    XPath {
        /// The expression, with the client's XML prefixes.
        select: String,
        /// Namespace declarations (prefix, URI) in scope of the element.
        namespaces: Vec<(String, String)>,
    },
}

/// Namespace declarations in scope of an element, as (prefix, URI); the
/// default namespace has prefix "".
pub fn namespaces_in_scope(node: Node<'_, '_>) -> Vec<(String, String)> {
    node.namespaces()
        .map(|ns| (ns.name().unwrap_or("").to_owned(), ns.uri().to_owned()))
        .collect()
}

impl Filter {
    /// Reads RFC 6241's `<filter>` element: `type` is `subtree` (the
    /// default) or `xpath` with a `select` attribute.
    pub fn from_filter_element(node: Node<'_, '_>) -> Result<Filter, RpcError> {
        // `type` and `select` are unqualified; accept them qualified with the
        // base namespace too (some clients prefix every attribute).
        let attr = |name: &str| {
            node.attribute(name)
                .or_else(|| node.attribute((NC_NS, name)))
        };
        match attr("type").unwrap_or("subtree") {
            "subtree" => Ok(Filter::Subtree(SubtreeFilter::from_node(node)?)),
            "xpath" => {
                let Some(select) = attr("select") else {
                    return Err(RpcError::protocol(
                        ErrorTag::MissingAttribute,
                        "an XPath filter needs a select attribute",
                    )
                    .with_info("bad-attribute", "select")
                    .with_info("bad-element", "filter"));
                };
                Ok(Filter::XPath {
                    select: select.to_owned(),
                    namespaces: namespaces_in_scope(node),
                })
            }
            other => Err(RpcError::protocol(
                ErrorTag::BadAttribute,
                format!("unknown filter type \"{other}\""),
            )
            .with_info("bad-attribute", "type")
            .with_info("bad-element", "filter")),
        }
    }

    /// Reads RFC 8526's `<xpath-filter>` element (the expression is its
    /// text).
    pub fn from_xpath_filter_element(node: Node<'_, '_>) -> Filter {
        let select: String = node.children().filter_map(|c| c.text()).collect();
        Filter::XPath {
            select: select.trim().to_owned(),
            namespaces: namespaces_in_scope(node),
        }
    }

    /// Reads RFC 8526's `<subtree-filter>` element.
    pub fn from_subtree_filter_element(node: Node<'_, '_>) -> Result<Filter, RpcError> {
        Ok(Filter::Subtree(SubtreeFilter::from_node(node)?))
    }
}

/// Applies `filter` to `tree`; no filter gives a copy of the whole tree.
pub fn apply(
    tree: &DataTree<'static>,
    filter: Option<&Filter>,
) -> Result<DataTree<'static>, RpcError> {
    match filter {
        None => tree.duplicate().map_err(|e| RpcError::from_yang(&e)),
        Some(Filter::Subtree(f)) => subtree(tree, f),
        Some(Filter::XPath { select, namespaces }) => xpath(tree, select, namespaces),
    }
}

// ===== XPath filter =====

/// Applies an XPath filter (RFC 6241 §8.9). `namespaces` are the XML
/// namespace declarations (prefix, URI) in scope of the filter element; the
/// expression's prefixes are resolved through them (NETCONF XPath), while
/// libyang wants module names, so they are rewritten.
///
/// Each selected node is copied with its ancestors (and their keys) and its
/// whole subtree.
pub fn xpath(
    tree: &DataTree<'static>,
    expr: &str,
    namespaces: &[(String, String)],
) -> Result<DataTree<'static>, RpcError> {
    let mut result = DataTree::new(context());
    for branch in split_union(expr)? {
        let Some(translated) = translate_prefixes(branch, namespaces)? else {
            // Names a module without data here: selects nothing.
            continue;
        };
        if translated == "/" {
            // The document root: the whole datastore.
            for node in tree.reference().iter().flat_map(|r| r.inclusive_siblings()) {
                add_with_parents(&mut result, &node)?;
            }
            continue;
        }
        select_xpath(tree, &translated, expr, &mut result)?;
    }
    Ok(result)
}

fn invalid_xpath(expr: &str, why: impl std::fmt::Display) -> RpcError {
    RpcError::app(
        ErrorTag::InvalidValue,
        format!("invalid XPath filter \"{expr}\": {why}"),
    )
}

/// Evaluates a libyang XPath on `tree` and merges every selected node into
/// `result`.
fn select_xpath(
    tree: &DataTree<'static>,
    expr: &str,
    original: &str,
    result: &mut DataTree<'static>,
) -> Result<(), RpcError> {
    let cexpr = CString::new(expr).map_err(|_| invalid_xpath(original, "NUL character"))?;
    let Some(first) = tree.reference() else {
        // Nothing to select from; still refuse an expression libyang cannot
        // compile, as we would with data.
        return context()
            .find_xpath(expr)
            .map(|_| ())
            .map_err(|e| invalid_xpath(original, yang_msg(&e)));
    };
    let mut set: *mut ffi::ly_set = std::ptr::null_mut();
    // SAFETY: `first` is a live node of `tree`; `set` receives a new set
    // that is freed below (yang2's `find_xpath` never frees it).
    let ret = unsafe { ffi::lyd_find_xpath(first.as_raw(), cexpr.as_ptr(), &mut set) };
    if ret != ffi::LY_ERR::LY_SUCCESS {
        let err = yang2::Error::new(context());
        if !set.is_null() {
            // SAFETY: set came from libyang and is not used after this.
            unsafe { ffi::ly_set_free(set, None) };
        }
        return Err(invalid_xpath(original, yang_msg(&err)));
    }
    // SAFETY: on success `set` is a valid node set of `tree`'s nodes.
    let nodes: Vec<*mut ffi::lyd_node> = unsafe {
        let count = (*set).count as usize;
        if count == 0 {
            Vec::new()
        } else {
            std::slice::from_raw_parts((*set).__bindgen_anon_1.dnodes, count).to_vec()
        }
    };
    // SAFETY: the pointers were copied out; the set itself is not used again.
    unsafe { ffi::ly_set_free(set, None) };
    let mut outcome = Ok(());
    for raw in nodes {
        // SAFETY: every pointer in the set is a node of `tree`, alive while
        // `tree` is borrowed.
        let node = unsafe { DataNodeRef::from_raw(tree, raw) };
        if let Err(e) = add_with_parents(result, &node) {
            outcome = Err(e);
            break;
        }
    }
    outcome
}

fn yang_msg(e: &yang2::Error) -> String {
    e.msg
        .clone()
        .unwrap_or_else(|| format!("libyang error {:?}", e.errcode))
}

/// Splits a union expression `a | b` at its top level (outside literals,
/// predicates and parentheses). Evaluating the branches one by one gives
/// the union, and lets a branch naming a module without data select nothing
/// instead of failing the whole filter.
fn split_union(expr: &str) -> Result<Vec<&str>, RpcError> {
    let mut branches = Vec::new();
    let mut depth: i32 = 0;
    let mut quote: Option<char> = None;
    let mut start = 0;
    for (i, ch) in expr.char_indices() {
        match quote {
            Some(q) => {
                if ch == q {
                    quote = None;
                }
            }
            None => match ch {
                '\'' | '"' => quote = Some(ch),
                '[' | '(' => depth += 1,
                ']' | ')' => {
                    depth -= 1;
                    if depth < 0 {
                        return Err(invalid_xpath(expr, "unbalanced brackets"));
                    }
                }
                '|' if depth == 0 => {
                    branches.push(expr[start..i].trim());
                    start = i + 1;
                }
                _ => {}
            },
        }
    }
    if quote.is_some() {
        return Err(invalid_xpath(expr, "unterminated string literal"));
    }
    if depth != 0 {
        return Err(invalid_xpath(expr, "unbalanced brackets"));
    }
    branches.push(expr[start..].trim());
    if branches.iter().any(|b| b.is_empty()) {
        return Err(invalid_xpath(expr, "empty expression"));
    }
    Ok(branches)
}

fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || !c.is_ascii()
}

fn is_name_char(c: char) -> bool {
    is_name_start(c) || c.is_ascii_digit() || c == '-' || c == '.'
}

/// Rewrites the XML prefixes of `expr` into module names. `Ok(None)` when a
/// prefix names a module that is in the context but not implemented (it
/// has no data, so the expression selects nothing). String literals are
/// copied unchanged.
fn translate_prefixes(
    expr: &str,
    namespaces: &[(String, String)],
) -> Result<Option<String>, RpcError> {
    let ctx = context();
    let chars: Vec<char> = expr.chars().collect();
    let mut out = String::with_capacity(expr.len() + 32);
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' || c == '"' {
            let end = chars[i + 1..]
                .iter()
                .position(|&x| x == c)
                .map(|p| i + 1 + p);
            let end = end.ok_or_else(|| invalid_xpath(expr, "unterminated string literal"))?;
            let literal: String = chars[i + 1..end].iter().collect();
            out.push(c);
            out.push_str(&translate_identity_literal(&literal, namespaces));
            out.push(c);
            i = end + 1;
            continue;
        }
        if !is_name_start(c) {
            out.push(c);
            i += 1;
            continue;
        }
        let start = i;
        while i < chars.len() && is_name_char(chars[i]) {
            i += 1;
        }
        let name: String = chars[start..i].iter().collect();
        // `prefix:local` or `prefix:*`, but not an axis (`child::`).
        let is_prefix = i + 1 < chars.len()
            && chars[i] == ':'
            && chars[i + 1] != ':'
            && (is_name_start(chars[i + 1]) || chars[i + 1] == '*');
        if !is_prefix {
            out.push_str(&name);
            continue;
        }
        let uri = namespaces
            .iter()
            .find(|(p, _)| *p == name)
            .map(|(_, u)| u.as_str());
        let module = match uri {
            Some(uri) => {
                if let Some(m) = ctx.get_module_implemented_ns(uri) {
                    m.name().to_owned()
                } else if ctx.get_module_latest_ns(uri).is_some() {
                    return Ok(None);
                } else {
                    // A namespace we do not know has no data here.
                    return Ok(None);
                }
            }
            // Not declared: accept a module name as libyang writes it.
            None if ctx.get_module_implemented(&name).is_some() => name.clone(),
            None if ctx.get_module_latest(&name).is_some() => return Ok(None),
            None => return Err(invalid_xpath(expr, format!("unknown prefix \"{name}\""))),
        };
        out.push_str(&module);
    }
    Ok(Some(out))
}

/// A literal `prefix:name` whose prefix is a declared XML prefix is an
/// identity written with that prefix (`[transport='x:netconf-ssh']`);
/// libyang compares identities written with module names. Anything else is
/// left as it is.
fn translate_identity_literal(literal: &str, namespaces: &[(String, String)]) -> String {
    let Some((prefix, local)) = literal.split_once(':') else {
        return literal.to_owned();
    };
    let well_formed =
        |s: &str| s.chars().next().is_some_and(is_name_start) && s.chars().all(is_name_char);
    if !well_formed(prefix) || !well_formed(local) {
        return literal.to_owned();
    }
    let uri = namespaces
        .iter()
        .find(|(p, _)| p == prefix)
        .map(|(_, u)| u.as_str());
    match uri.and_then(|u| context().get_module_latest_ns(u)) {
        Some(m) => format!("{}:{}", m.name(), local),
        None => literal.to_owned(),
    }
}

// ===== the licence gate =====

/// Refuses a filter that names a module hidden by the licence gate
/// ([`crate::schema::is_hidden_ns`]) with unknown-namespace.
pub fn check_hidden(filter: &Filter) -> Result<(), RpcError> {
    if crate::schema::app_hosting_enabled() {
        return Ok(());
    }
    match filter {
        Filter::Subtree(f) => {
            fn walk(nodes: &[FilterNode]) -> Result<(), RpcError> {
                for n in nodes {
                    if let Some(ns) = n.namespace.as_deref() {
                        if crate::schema::is_hidden_ns(ns) {
                            return Err(crate::schema::hidden_ns_error(ns, &n.name));
                        }
                    }
                    walk(&n.children)?;
                }
                Ok(())
            }
            walk(&f.nodes)
        }
        Filter::XPath { select, namespaces } => {
            let hidden = crate::schema::AH_NS;
            // Prefixes bound to the hidden namespace, and the module name
            // itself (libyang-style paths).
            let mut prefixes: Vec<&str> = namespaces
                .iter()
                .filter(|(_, u)| crate::schema::is_hidden_ns(u))
                .map(|(p, _)| p.as_str())
                .collect();
            prefixes.push(crate::schema::AH_MODULE);
            let chars: Vec<char> = select.chars().collect();
            for p in prefixes {
                let needle: Vec<char> = p.chars().chain([':']).collect();
                let found = chars.windows(needle.len()).enumerate().any(|(i, w)| {
                    w == needle.as_slice()
                        && (i == 0 || !is_name_char(chars[i - 1]))
                        && chars.get(i + needle.len()) != Some(&':')
                });
                if found {
                    return Err(crate::schema::hidden_ns_error(hidden, "filter"));
                }
            }
            Ok(())
        }
    }
}

/// `tree` without the top-level nodes of modules hidden by the licence
/// gate; `None` when it has none (the common case: no copy).
pub fn without_hidden(tree: &DataTree<'static>) -> Result<Option<DataTree<'static>>, RpcError> {
    if crate::schema::app_hosting_enabled() {
        return Ok(None);
    }
    let top: Vec<DataNodeRef<'_, 'static>> = tree
        .reference()
        .iter()
        .flat_map(|r| r.inclusive_siblings())
        .collect();
    let hidden =
        |n: &DataNodeRef<'_, 'static>| crate::schema::is_hidden_module(n.schema().module().name());
    if !top.iter().any(hidden) {
        return Ok(None);
    }
    let yerr = |e: yang2::Error| RpcError::from_yang(&e);
    let mut out = DataTree::new(context());
    for n in top.iter().filter(|n| !hidden(n)) {
        out.merge(&n.duplicate(false).map_err(yerr)?)
            .map_err(yerr)?;
    }
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns(p: &str, u: &str) -> Vec<(String, String)> {
        vec![(p.to_owned(), u.to_owned())]
    }

    #[test]
    fn prefixes_become_module_names() {
        let t = translate_prefixes(
            "/x:app-hosting/x:app[x:name='x:y']/child::x:image",
            &ns("x", crate::schema::AH_NS),
        )
        .unwrap_or_default();
        assert_eq!(
            t.as_deref(),
            Some("/app-hosting:app-hosting/app-hosting:app[app-hosting:name='app-hosting:y']/child::app-hosting:image")
        );
    }

    #[test]
    fn unknown_prefix_is_invalid_value() {
        let e = translate_prefixes("/nope:a", &[]).expect_err("unknown prefix refused");
        assert_eq!(e.tag, ErrorTag::InvalidValue);
    }

    #[test]
    fn union_split_respects_literals_and_predicates() {
        let b = split_union("/a:b[c='x|y'] | /d:e[f or (g|h)]").unwrap_or_default();
        assert_eq!(b, vec!["/a:b[c='x|y']", "/d:e[f or (g|h)]"]);
        assert!(split_union("/a:b |").is_err());
        assert!(split_union("/a:b['x]").is_err());
    }
}
