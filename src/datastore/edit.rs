//! The edit-config engine (RFC 6241 §7.2, RFC 7950 §7.7.9, §7.8.6).
//!
//! libyang has no NETCONF edit semantics, so we walk the `<config>` XML
//! ourselves: each element is resolved (namespace → implemented module,
//! name → schema node, through choice/case) and applied to a libyang data
//! tree node by node with merge / replace / create / delete / remove and
//! the `insert` attributes of ordered-by user lists and leaf-lists.
//!
//! The walk works on raw `lyd_node` pointers through `yang2::ffi`: the safe
//! API has no way to hold a mutable cursor into a tree. All raw access is in
//! this file. Invariant kept throughout: `Walk::first` is the first
//! top-level sibling of the tree the walk owns (or null when empty); every
//! pointer handed around is a node of that tree, used only until the next
//! call that may free it.

use std::collections::HashSet;
use std::ffi::{CStr, CString};
use std::os::raw::c_char;
use std::ptr;

use yang2::context::Context;
use yang2::data::DataTree;
use yang2::ffi;
use yang2::schema::SchemaModule;
use yang2::utils::Binding;

use crate::error::{ErrorTag, RpcError};
use crate::schema::NC_NS;

/// Namespace of the YANG `insert`, `key` and `value` attributes.
pub const YANG_NS: &str = "urn:ietf:params:xml:ns:yang:1";
/// Namespace of the with-defaults `default` attribute (RFC 6243 §6), which
/// clients may echo back from a report-all-tagged get-config.
const WD_NS: &str = "urn:ietf:params:xml:ns:netconf:default:1.0";

type Node = *mut ffi::lyd_node;
type SNode = *const ffi::lysc_node;

/// An edit operation (RFC 6241 §7.2), with `None` for default-operation none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Merge,
    Replace,
    Create,
    Delete,
    Remove,
    None,
}

impl Op {
    fn parse(s: &str) -> Option<Op> {
        Some(match s {
            "merge" => Op::Merge,
            "replace" => Op::Replace,
            "create" => Op::Create,
            "delete" => Op::Delete,
            "remove" => Op::Remove,
            _ => return None,
        })
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Merge => "merge",
            Op::Replace => "replace",
            Op::Create => "create",
            Op::Delete => "delete",
            Op::Remove => "remove",
            Op::None => "none",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum InsertHow {
    First,
    Last,
    Before,
    After,
}

/// The insert attributes of one element.
struct Insert<'x> {
    how: InsertHow,
    /// `key` (lists) or `value` (leaf-lists) attribute, as sent.
    anchor: Option<&'x str>,
}

/// Returned up the walk to stop it (stop-on-error, rollback-on-error).
pub struct Stop;

type Step = Result<(), Stop>;

/// One walk of a `<config>` over a tree it owns.
pub struct Walk {
    ctx: &'static Context,
    first: Node,
    continue_on_error: bool,
    /// parse_config mode: operation and insert attributes are refused.
    plain: bool,
    pub errors: Vec<RpcError>,
    pub changes: Vec<(String, &'static str)>,
    /// Top-level nodes named by the config (default-operation replace).
    touched_top: HashSet<usize>,
}

impl Drop for Walk {
    fn drop(&mut self) {
        // SAFETY: `first` is the owned tree (or null), see module doc.
        unsafe { ffi::lyd_free_all(self.first) };
    }
}

impl Walk {
    /// Takes ownership of `tree` for the walk.
    pub fn new(
        ctx: &'static Context,
        tree: DataTree<'static>,
        continue_on_error: bool,
        plain: bool,
    ) -> Walk {
        Walk {
            ctx,
            first: tree.into_raw(),
            continue_on_error,
            plain,
            errors: Vec::new(),
            changes: Vec::new(),
            touched_top: HashSet::new(),
        }
    }

    /// Hands the (edited) tree back.
    pub fn into_tree(mut self) -> DataTree<'static> {
        let raw = std::mem::replace(&mut self.first, ptr::null_mut());
        // SAFETY: `raw` is the owned tree; ownership moves to the DataTree.
        unsafe { DataTree::from_raw(self.ctx, raw) }
    }

    /// Records an error; tells the caller whether to go on.
    fn fail(&mut self, e: RpcError) -> Step {
        self.errors.push(e);
        if self.continue_on_error {
            Ok(())
        } else {
            Err(Stop)
        }
    }

    fn yang_err(&self, path: &str) -> RpcError {
        let e = yang2::Error::new(self.ctx);
        let mut r = RpcError::from_yang(&e);
        if r.path.is_none() || r.path.as_deref() == Some("") {
            r.path = Some(path.to_string());
        }
        if r.tag == ErrorTag::OperationFailed && e.errcode == ffi::LY_ERR::LY_EVALID {
            r.tag = ErrorTag::InvalidValue;
        }
        r
    }

    /// Applies every element child of `config` at the top level.
    pub fn apply(&mut self, config: roxmltree::Node<'_, '_>, default_op: Op) -> Step {
        self.children(
            config,
            ptr::null_mut(),
            ptr::null(),
            "",
            default_op,
            true,
            &[],
        )
    }

    /// default-operation replace: every top-level node the config did not
    /// name goes (RFC 6241 §7.2: the config replaces the datastore).
    pub fn drop_untouched_top(&mut self) {
        let mut n = self.first;
        let mut doomed = Vec::new();
        while !n.is_null() {
            if !self.touched_top.contains(&(n as usize)) {
                doomed.push(n);
            }
            // SAFETY: n is a node of the owned tree.
            n = unsafe { (*n).next };
        }
        for n in doomed {
            // SAFETY: distinct top-level nodes of the owned tree.
            unsafe {
                if (*n).flags & ffi::LYD_DEFAULT == 0 {
                    let p = data_path(n);
                    self.changes.push((p, "delete"));
                }
                self.free(n);
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn children(
        &mut self,
        x: roxmltree::Node<'_, '_>,
        dparent: Node,
        sparent: SNode,
        ppath: &str,
        op: Op,
        record: bool,
        skip: &[roxmltree::NodeId],
    ) -> Step {
        for c in x.children() {
            if c.is_text() {
                if c.text().is_some_and(|t| !t.trim().is_empty()) {
                    let name = x.tag_name().name();
                    let mut e = RpcError::app(
                        ErrorTag::BadElement,
                        format!("unexpected text content in '{name}'"),
                    )
                    .with_info("bad-element", name);
                    if !ppath.is_empty() {
                        e = e.with_path(ppath);
                    }
                    self.fail(e)?;
                }
                continue;
            }
            if !c.is_element() || skip.contains(&c.id()) {
                continue;
            }
            self.node(c, dparent, sparent, ppath, op, record)?;
        }
        Ok(())
    }

    /// Applies one element.
    fn node(
        &mut self,
        x: roxmltree::Node<'_, '_>,
        dparent: Node,
        sparent: SNode,
        ppath: &str,
        inherited: Op,
        record: bool,
    ) -> Step {
        let name = x.tag_name().name();
        let ns = x.tag_name().namespace().unwrap_or("");
        if crate::schema::is_hidden_ns(ns) {
            // The licence gate: the module is loaded but not ours to edit.
            let mut e = crate::schema::hidden_ns_error(ns, name);
            if !ppath.is_empty() {
                e = e.with_path(ppath);
            }
            return self.fail(e);
        }
        let Some(module) = self.ctx.get_module_implemented_ns(ns) else {
            let mut e = RpcError::app(
                ErrorTag::UnknownNamespace,
                format!("unknown namespace '{ns}' of element '{name}'"),
            )
            .with_info("bad-element", name)
            .with_info("bad-namespace", ns);
            if !ppath.is_empty() {
                e = e.with_path(ppath);
            }
            return self.fail(e);
        };
        let cname = cstring(name);
        // SAFETY: sparent is a schema node of the static context or null.
        let snode =
            unsafe { ffi::lys_find_child(sparent, module.as_raw(), cname.as_ptr(), 0, 0, 0) };
        let seg = segment(&module, sparent, name);
        let path = format!("{ppath}/{seg}");
        if snode.is_null() {
            let e = RpcError::app(
                ErrorTag::UnknownElement,
                format!("unknown element '{name}'"),
            )
            .with_info("bad-element", name)
            .with_path(path);
            return self.fail(e);
        }
        // SAFETY: snode is a valid schema node.
        let (nodetype, sflags) =
            unsafe { (u32::from((*snode).nodetype), u32::from((*snode).flags)) };
        if sflags & ffi::LYS_CONFIG_R != 0 {
            let e = RpcError::app(
                ErrorTag::BadElement,
                format!("'{name}' is state data (config false) and cannot be edited"),
            )
            .with_info("bad-element", name)
            .with_path(path);
            return self.fail(e);
        }

        // Attributes.
        let mut own_op = None;
        let mut insert = None;
        let mut key_attr = None;
        let mut value_attr = None;
        for a in x.attributes() {
            let ans = a.namespace().unwrap_or("");
            match (ans, a.name()) {
                (NC_NS, "operation") if !self.plain => match Op::parse(a.value()) {
                    Some(o) => own_op = Some(o),
                    None => {
                        return self.fail(bad_attr(
                            &path,
                            "operation",
                            name,
                            format!("bad operation '{}'", a.value()),
                        ))
                    }
                },
                (YANG_NS, "insert") if !self.plain => {
                    let how = match a.value() {
                        "first" => InsertHow::First,
                        "last" => InsertHow::Last,
                        "before" => InsertHow::Before,
                        "after" => InsertHow::After,
                        v => {
                            return self.fail(bad_attr(
                                &path,
                                "insert",
                                name,
                                format!("bad insert value '{v}'"),
                            ))
                        }
                    };
                    insert = Some(how);
                }
                (YANG_NS, "key") if !self.plain => key_attr = Some(a.value()),
                (YANG_NS, "value") if !self.plain => value_attr = Some(a.value()),
                (WD_NS, "default") => {}
                (NC_NS, "operation") | (YANG_NS, "insert" | "key" | "value") => {
                    return self.fail(bad_attr(
                        &path,
                        a.name(),
                        name,
                        format!("attribute '{}' not allowed here", a.name()),
                    ))
                }
                (_, an) => {
                    let e = RpcError::app(
                        ErrorTag::UnknownAttribute,
                        format!("unknown attribute '{an}'"),
                    )
                    .with_info("bad-attribute", an)
                    .with_info("bad-element", name)
                    .with_path(path);
                    return self.fail(e);
                }
            }
        }
        let op = own_op.unwrap_or(inherited);
        let insert = match insert {
            None => None,
            Some(how) => {
                if nodetype & (ffi::LYS_LIST | ffi::LYS_LEAFLIST) == 0
                    || sflags & ffi::LYS_ORDBY_USER == 0
                {
                    return self.fail(bad_attr(
                        &path,
                        "insert",
                        name,
                        format!("'{name}' is not an ordered-by user list or leaf-list"),
                    ));
                }
                let (attr, anchor) = if nodetype == ffi::LYS_LIST {
                    ("key", key_attr)
                } else {
                    ("value", value_attr)
                };
                if matches!(how, InsertHow::Before | InsertHow::After) && anchor.is_none() {
                    let e = RpcError::app(
                        ErrorTag::MissingAttribute,
                        format!("insert before/after needs the '{attr}' attribute"),
                    )
                    .with_info("bad-attribute", attr)
                    .with_info("bad-element", name)
                    .with_path(path);
                    return self.fail(e);
                }
                Some(Insert { how, anchor })
            }
        };

        let r = match nodetype {
            ffi::LYS_CONTAINER => self.container(x, dparent, snode, &path, op, record),
            ffi::LYS_LIST => self.list(x, dparent, sparent, snode, &path, op, record, insert),
            ffi::LYS_LEAF => self.leaf(x, dparent, snode, &path, op, record),
            ffi::LYS_LEAFLIST => self.leaflist(x, dparent, snode, &path, op, record, insert),
            _ => {
                let e = RpcError::app(
                    ErrorTag::OperationNotSupported,
                    format!("editing '{name}' (anydata/anyxml) is not supported"),
                )
                .with_path(path.clone());
                self.fail(e)
            }
        };
        if dparent.is_null() && nodetype & (ffi::LYS_LEAF | ffi::LYS_LEAFLIST) != 0 {
            // Top-level terms (rare): keep every instance of the schema node.
            self.touch_top(snode);
        }
        r
    }

    /// Remembers a top-level node the config named (default-operation
    /// replace keeps only those).
    fn touch(&mut self, dparent: Node, node: Node) {
        if dparent.is_null() {
            self.touched_top.insert(node as usize);
        }
    }

    /// Marks every top-level instance of `snode` touched.
    fn touch_top(&mut self, snode: SNode) {
        let mut n = self.first;
        while !n.is_null() {
            // SAFETY: owned tree nodes.
            unsafe {
                if (*n).schema == snode {
                    self.touched_top.insert(n as usize);
                }
                n = (*n).next;
            }
        }
    }

    fn container(
        &mut self,
        x: roxmltree::Node<'_, '_>,
        dparent: Node,
        snode: SNode,
        path: &str,
        op: Op,
        record: bool,
    ) -> Step {
        let existing = match self.find(dparent, snode, None) {
            Ok(n) => n,
            Err(e) => return self.fail(e.with_path(path)),
        };
        // SAFETY: existing is null or a node of the owned tree.
        let exists = !existing.is_null() && unsafe { (*existing).flags } & ffi::LYD_DEFAULT == 0;
        // SAFETY: valid schema node.
        let presence = unsafe { u32::from((*snode).flags) } & ffi::LYS_PRESENCE != 0;
        match op {
            Op::Delete | Op::Remove => self.delete(existing, exists, op, path, record),
            Op::None => {
                let node = if existing.is_null() {
                    if presence {
                        return self.fail(data_missing(
                            path,
                            "the container does not exist (default-operation none)",
                        ));
                    }
                    // A non-presence container has no existence of its own:
                    // create it silently as a level to descend through.
                    match self.create(dparent, snode, &[], None) {
                        Ok(n) => n,
                        Err(e) => return self.fail(e.with_path(path)),
                    }
                } else {
                    existing
                };
                self.touch(dparent, node);
                self.children(x, node, snode, path, Op::None, record, &[])
            }
            Op::Create if exists => self.fail(data_exists(path)),
            Op::Create | Op::Replace | Op::Merge => {
                // Merge descends into what is there; create (over a default
                // container) and replace start from a fresh node.
                let reuse = op == Op::Merge && !existing.is_null();
                let node = if reuse {
                    existing
                } else {
                    if !existing.is_null() {
                        // SAFETY: existing is a node of the owned tree.
                        unsafe { self.free(existing) };
                    }
                    match self.create(dparent, snode, &[], None) {
                        Ok(n) => n,
                        Err(e) => return self.fail(e.with_path(path)),
                    }
                };
                if !reuse {
                    self.drop_other_cases(dparent, snode, record);
                    if record {
                        let what = if op == Op::Replace && exists {
                            "replace"
                        } else {
                            "create"
                        };
                        self.changes.push((path.to_string(), what));
                    }
                }
                self.touch(dparent, node);
                self.children(x, node, snode, path, op, record && reuse, &[])
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn list(
        &mut self,
        x: roxmltree::Node<'_, '_>,
        dparent: Node,
        _sparent: SNode,
        snode: SNode,
        base: &str,
        op: Op,
        record: bool,
        insert: Option<Insert<'_>>,
    ) -> Step {
        // SAFETY: valid schema node; lists carry LYS_KEYLESS when keyless.
        if unsafe { u32::from((*snode).flags) } & ffi::LYS_KEYLESS != 0 {
            let e = RpcError::app(
                ErrorTag::OperationNotSupported,
                "editing keyless lists is not supported",
            )
            .with_path(base);
            return self.fail(e);
        }
        // SAFETY: valid schema node.
        let ns = unsafe { cstr_str((*(*snode).module).ns) };
        let lname = x.tag_name().name();
        // Keys, in schema order.
        let mut keys: Vec<CString> = Vec::new();
        let mut pred = String::new();
        let mut skip = Vec::new();
        // SAFETY: keys are the first children of a list schema node.
        let mut k = unsafe { ffi::lysc_node_child(snode) };
        while !k.is_null() && unsafe { u32::from((*k).flags) } & ffi::LYS_KEY != 0 {
            // SAFETY: valid schema node.
            let kname = unsafe { cstr_str((*k).name) };
            let mut found = x.children().filter(|c| {
                c.is_element()
                    && c.tag_name().name() == kname
                    && c.tag_name().namespace() == Some(ns)
            });
            let Some(kx) = found.next() else {
                let e = RpcError::app(
                    ErrorTag::MissingElement,
                    format!("list '{lname}' entry without its key '{kname}'"),
                )
                .with_info("bad-element", kname)
                .with_path(base);
                return self.fail(e);
            };
            let kval = text_of(kx);
            if let Some(other) = found.next() {
                if text_of(other) != kval {
                    let e = RpcError::app(
                        ErrorTag::BadElement,
                        format!("key '{kname}' given twice with different values"),
                    )
                    .with_info("bad-element", kname)
                    .with_path(base);
                    return self.fail(e);
                }
                skip.push(other.id());
            }
            if let Some(kop) = kx.attribute((NC_NS, "operation")) {
                if Op::parse(kop).is_some_and(|o| o != op && o != Op::Merge) {
                    return self.fail(bad_attr(
                        base,
                        "operation",
                        kname,
                        "a key cannot have its own operation",
                    ));
                }
            }
            let kval = match self
                .xml_value(kx, k, kval)
                .and_then(|v| self.check_value(k, &v).map(|_| v))
            {
                Ok(v) => v,
                Err(e) => return self.fail(e.with_path(base).with_info("bad-element", kname)),
            };
            let Some(q) = quote(&kval) else {
                let e = RpcError::app(
                    ErrorTag::OperationFailed,
                    "key values holding both quote characters are not supported",
                )
                .with_path(base);
                return self.fail(e);
            };
            pred.push_str(&format!("[{kname}={q}]"));
            skip.push(kx.id());
            keys.push(cstring(&kval));
            // SAFETY: siblings of a valid schema node.
            k = unsafe { (*k).next };
        }
        let path = format!("{base}{pred}");
        let existing = match self.find(dparent, snode, Some(&pred)) {
            Ok(n) => n,
            Err(e) => return self.fail(e.with_path(&path)),
        };
        let exists = !existing.is_null();
        match op {
            Op::Delete | Op::Remove => self.delete(existing, exists, op, &path, record),
            Op::None => {
                if !exists {
                    return self.fail(data_missing(
                        &path,
                        "the list entry does not exist (default-operation none)",
                    ));
                }
                self.touch(dparent, existing);
                self.children(x, existing, snode, &path, Op::None, record, &skip)
            }
            Op::Create if exists => self.fail(data_exists(&path)),
            Op::Create | Op::Replace | Op::Merge => {
                // Replace keeps the entry's place in an ordered-by user list:
                // remember a neighbour to put the new entry next to.
                let mut neighbour: Option<(Node, bool)> = None;
                if op == Op::Replace && exists {
                    // SAFETY: owned tree nodes.
                    unsafe {
                        if u32::from((*snode).flags) & ffi::LYS_ORDBY_USER != 0 {
                            let prev = (*existing).prev;
                            let next = (*existing).next;
                            if prev != existing
                                && (*prev).next == existing
                                && (*prev).schema == snode
                            {
                                neighbour = Some((prev, true));
                            } else if !next.is_null() && (*next).schema == snode {
                                neighbour = Some((next, false));
                            }
                        }
                        self.free(existing);
                    }
                }
                let (node, fresh) = if op != Op::Replace && exists {
                    (existing, false)
                } else {
                    match self.create(dparent, snode, &keys, None) {
                        Ok(n) => (n, true),
                        Err(e) => return self.fail(e.with_path(&path)),
                    }
                };
                if fresh {
                    if let (Some((nb, after)), None) = (neighbour, &insert) {
                        // SAFETY: both in the owned tree, same user-ordered list.
                        unsafe {
                            if after {
                                ffi::lyd_insert_after(nb, node);
                            } else {
                                ffi::lyd_insert_before(nb, node);
                                if dparent.is_null() {
                                    self.first = ffi::lyd_first_sibling(node);
                                }
                            }
                        }
                    }
                    self.drop_other_cases(dparent, snode, record);
                }
                if let Some(ins) = insert {
                    if let Err(e) = self.move_node(x, node, snode, &ins, &path) {
                        return self.fail(e);
                    }
                    if record && !fresh {
                        self.changes.push((path.clone(), op.as_str()));
                    }
                }
                if record && fresh {
                    self.changes
                        .push((path.clone(), if exists { "replace" } else { "create" }));
                }
                self.touch(dparent, node);
                self.children(x, node, snode, &path, op, record && !fresh, &skip)
            }
        }
    }

    fn leaf(
        &mut self,
        x: roxmltree::Node<'_, '_>,
        dparent: Node,
        snode: SNode,
        path: &str,
        op: Op,
        record: bool,
    ) -> Step {
        if let Some(c) = x.children().find(|c| c.is_element()) {
            let e = RpcError::app(
                ErrorTag::BadElement,
                format!("leaf '{}' cannot have child elements", x.tag_name().name()),
            )
            .with_info("bad-element", c.tag_name().name())
            .with_path(path);
            return self.fail(e);
        }
        let existing = match self.find(dparent, snode, None) {
            Ok(n) => n,
            Err(e) => return self.fail(e.with_path(path)),
        };
        // SAFETY: owned tree node.
        let exists = !existing.is_null() && unsafe { (*existing).flags } & ffi::LYD_DEFAULT == 0;
        match op {
            Op::Delete | Op::Remove => self.delete(existing, exists, op, path, record),
            Op::None => Ok(()),
            Op::Create if exists => self.fail(data_exists(path)),
            Op::Create | Op::Replace | Op::Merge => {
                let value = match self.xml_value(x, snode, text_of(x)) {
                    Ok(v) => v,
                    Err(e) => return self.fail(e.with_path(path)),
                };
                if existing.is_null() {
                    if let Err(e) = self.create(dparent, snode, &[], Some(&value)) {
                        return self.fail(e.with_path(path));
                    }
                    self.drop_other_cases(dparent, snode, record);
                    if record {
                        self.changes.push((path.to_string(), "create"));
                    }
                    return Ok(());
                }
                let v = cstring(&value);
                // SAFETY: existing is a term node of the owned tree.
                let r = unsafe { ffi::lyd_change_term(existing, v.as_ptr()) };
                match r {
                    ffi::LY_ERR::LY_SUCCESS | ffi::LY_ERR::LY_EEXIST => {
                        if record {
                            self.changes.push((
                                path.to_string(),
                                if exists { op.as_str() } else { "create" },
                            ));
                        }
                        Ok(())
                    }
                    ffi::LY_ERR::LY_ENOT => Ok(()),
                    _ => {
                        let e = self.yang_err(path);
                        self.fail(e.with_path(path))
                    }
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn leaflist(
        &mut self,
        x: roxmltree::Node<'_, '_>,
        dparent: Node,
        snode: SNode,
        base: &str,
        op: Op,
        record: bool,
        insert: Option<Insert<'_>>,
    ) -> Step {
        if let Some(c) = x.children().find(|c| c.is_element()) {
            let e = RpcError::app(
                ErrorTag::BadElement,
                format!(
                    "leaf-list '{}' cannot have child elements",
                    x.tag_name().name()
                ),
            )
            .with_info("bad-element", c.tag_name().name())
            .with_path(base);
            return self.fail(e);
        }
        let value = match self
            .xml_value(x, snode, text_of(x))
            .and_then(|v| self.check_value(snode, &v).map(|_| v))
        {
            Ok(v) => v,
            Err(e) => return self.fail(e.with_path(base)),
        };
        let Some(q) = quote(&value) else {
            let e = RpcError::app(
                ErrorTag::OperationFailed,
                "values holding both quote characters are not supported",
            )
            .with_path(base);
            return self.fail(e);
        };
        let path = format!("{base}[.={q}]");
        let existing = match self.find(dparent, snode, Some(&value)) {
            Ok(n) => n,
            Err(e) => return self.fail(e.with_path(&path)),
        };
        // SAFETY: owned tree node.
        let exists = !existing.is_null() && unsafe { (*existing).flags } & ffi::LYD_DEFAULT == 0;
        match op {
            Op::Delete | Op::Remove => self.delete(existing, exists, op, &path, record),
            Op::None => Ok(()),
            Op::Create if exists => self.fail(data_exists(&path)),
            Op::Create | Op::Replace | Op::Merge => {
                let node = if exists {
                    existing
                } else {
                    // Explicit instances replace the default ones.
                    self.drop_default_instances(dparent, snode);
                    match self.create(dparent, snode, &[], Some(&value)) {
                        Ok(n) => {
                            self.drop_other_cases(dparent, snode, record);
                            if record {
                                self.changes.push((path.clone(), "create"));
                            }
                            n
                        }
                        Err(e) => return self.fail(e.with_path(&path)),
                    }
                };
                if let Some(ins) = insert {
                    if let Err(e) = self.move_node(x, node, snode, &ins, &path) {
                        return self.fail(e);
                    }
                    if record && exists {
                        self.changes.push((path.clone(), op.as_str()));
                    }
                }
                Ok(())
            }
        }
    }

    fn delete(&mut self, existing: Node, exists: bool, op: Op, path: &str, record: bool) -> Step {
        if !exists {
            if op == Op::Delete {
                return self.fail(data_missing(path, "the data to delete does not exist"));
            }
            return Ok(());
        }
        // SAFETY: existing is a node of the owned tree.
        unsafe { self.free(existing) };
        if record {
            self.changes.push((path.to_string(), op.as_str()));
        }
        Ok(())
    }

    /// Moves a user-ordered entry per its insert attributes.
    fn move_node(
        &mut self,
        x: roxmltree::Node<'_, '_>,
        node: Node,
        snode: SNode,
        ins: &Insert<'_>,
        path: &str,
    ) -> Result<(), RpcError> {
        let name = x.tag_name().name();
        // SAFETY: node and every sibling reached are nodes of the owned tree.
        unsafe {
            match ins.how {
                InsertHow::First => {
                    let mut first = ptr::null_mut();
                    ffi::lyd_find_sibling_val(node, snode, ptr::null(), 0, &mut first);
                    if !first.is_null() && first != node {
                        ffi::lyd_insert_before(first, node);
                    }
                }
                InsertHow::Last => {
                    let mut last = node;
                    while !(*last).next.is_null() && (*(*last).next).schema == snode {
                        last = (*last).next;
                    }
                    if last != node {
                        ffi::lyd_insert_after(last, node);
                    }
                }
                InsertHow::Before | InsertHow::After => {
                    let raw = ins.anchor.unwrap_or("");
                    let key = if u32::from((*snode).nodetype) == ffi::LYS_LIST {
                        convert_key_pred(x, snode, raw).ok_or_else(|| {
                            bad_attr(path, "key", name, format!("bad key attribute '{raw}'"))
                        })?
                    } else {
                        self.xml_value(x, snode, raw.to_string())?
                    };
                    let ck = cstring(&key);
                    let mut anchor = ptr::null_mut();
                    let r = ffi::lyd_find_sibling_val(node, snode, ck.as_ptr(), 0, &mut anchor);
                    if r != ffi::LY_ERR::LY_SUCCESS || anchor.is_null() {
                        let attr = if u32::from((*snode).nodetype) == ffi::LYS_LIST {
                            "key"
                        } else {
                            "value"
                        };
                        return Err(bad_attr(
                            path,
                            attr,
                            name,
                            format!("the entry '{raw}' to insert next to does not exist"),
                        )
                        .with_app_tag("missing-instance"));
                    }
                    if anchor != node {
                        if ins.how == InsertHow::Before {
                            ffi::lyd_insert_before(anchor, node);
                        } else {
                            ffi::lyd_insert_after(anchor, node);
                        }
                    }
                }
            }
            if (*node).parent.is_null() {
                self.first = ffi::lyd_first_sibling(node);
            }
        }
        Ok(())
    }

    /// Converts an XML value to libyang's JSON form: identityref prefixes,
    /// and the prefixes inside instance-identifier and node-instance-
    /// identifier values (NACM rule paths), are XML namespace prefixes and
    /// become module names.
    fn xml_value(
        &self,
        x: roxmltree::Node<'_, '_>,
        snode: SNode,
        v: String,
    ) -> Result<String, RpcError> {
        // SAFETY: leaf and leaf-list schema nodes have a type.
        let (base, plugin) = unsafe {
            let t = match u32::from((*snode).nodetype) {
                ffi::LYS_LEAF => (*(snode as *const ffi::lysc_node_leaf)).type_,
                ffi::LYS_LEAFLIST => (*(snode as *const ffi::lysc_node_leaflist)).type_,
                _ => return Ok(v),
            };
            ((*t).basetype, (*t).plugin as usize)
        };
        if base == ffi::LY_DATA_TYPE::LY_TYPE_INST || Some(plugin) == node_instanceid_plugin() {
            return self.xml_path_value(x, &v);
        }
        if base != ffi::LY_DATA_TYPE::LY_TYPE_IDENT {
            return Ok(v);
        }
        let t = v.trim();
        let (prefix, ident) = match t.split_once(':') {
            Some((p, i)) => (Some(p), i),
            None => (None, t),
        };
        let Some(ns) = x.lookup_namespace_uri(prefix) else {
            return Err(RpcError::app(
                ErrorTag::InvalidValue,
                format!("unknown prefix in identity '{t}'"),
            ));
        };
        let Some(m) = self.ctx.get_module_latest_ns(ns) else {
            return Err(RpcError::app(
                ErrorTag::InvalidValue,
                format!("identity '{t}' of an unknown module"),
            ));
        };
        Ok(format!("{}:{ident}", m.name()))
    }

    /// Rewrites a path value from XML to JSON form: the `prefix:` of every
    /// qualified name (outside string literals) is an XML namespace prefix
    /// in scope at `x` and becomes the module name, written only where the
    /// module changes (libyang's JSON paths refuse a repeated prefix).
    fn xml_path_value(&self, x: roxmltree::Node<'_, '_>, v: &str) -> Result<String, RpcError> {
        let is_start = |c: char| c.is_ascii_alphabetic() || c == '_';
        let is_name = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.');
        let mut out = String::with_capacity(v.len() + 16);
        let mut quote: Option<char> = None;
        let mut rest = v;
        let mut prev: Option<char> = None;
        let mut last_module: Option<String> = None;
        while let Some(c) = rest.chars().next() {
            if let Some(q) = quote {
                if c == q {
                    quote = None;
                }
                out.push(c);
                prev = Some(c);
                rest = &rest[c.len_utf8()..];
                continue;
            }
            if c == '\'' || c == '"' {
                quote = Some(c);
            } else if is_start(c) && !prev.is_some_and(is_name) {
                let end = rest.find(|ch: char| !is_name(ch)).unwrap_or(rest.len());
                let (name, after) = rest.split_at(end);
                if let Some(local) = after.strip_prefix(':').filter(|l| !l.starts_with(':')) {
                    let module = x
                        .lookup_namespace_uri(Some(name))
                        .and_then(|ns| self.ctx.get_module_latest_ns(ns))
                        .ok_or_else(|| {
                            RpcError::app(
                                ErrorTag::InvalidValue,
                                format!("unknown prefix '{name}' in '{v}'"),
                            )
                        })?;
                    if last_module.as_deref() != Some(module.name()) {
                        out.push_str(module.name());
                        out.push(':');
                        last_module = Some(module.name().to_string());
                    }
                    prev = Some(':');
                    rest = local;
                } else {
                    out.push_str(name);
                    prev = name.chars().last();
                    rest = after;
                }
                continue;
            }
            out.push(c);
            prev = Some(c);
            rest = &rest[c.len_utf8()..];
        }
        Ok(out)
    }

    /// Checks a key or leaf-list value before it is used in a lookup, so a
    /// bad value gets libyang's own message.
    fn check_value(&self, snode: SNode, v: &str) -> Result<(), RpcError> {
        let cv = cstring(v);
        // SAFETY: valid schema node of the context; cv outlives the call.
        let r = unsafe {
            let ctx = (*(*snode).module).ctx;
            ffi::lyd_value_validate(
                ctx,
                snode,
                cv.as_ptr(),
                cv.as_bytes().len(),
                ptr::null(),
                ptr::null_mut(),
                ptr::null_mut(),
            )
        };
        match r {
            // Incomplete: a leafref or instance-identifier, resolved only
            // against the whole tree at validation.
            ffi::LY_ERR::LY_SUCCESS | ffi::LY_ERR::LY_EINCOMPLETE => Ok(()),
            _ => {
                let mut e = self.yang_err("");
                e.path = None;
                e.tag = ErrorTag::InvalidValue;
                Err(e)
            }
        }
    }

    /// Finds the instance of `snode` under `dparent` (top level when null).
    fn find(&self, dparent: Node, snode: SNode, key: Option<&str>) -> Result<Node, RpcError> {
        // SAFETY: dparent is null or a node of the owned tree.
        let siblings = if dparent.is_null() {
            self.first
        } else {
            unsafe { ffi::lyd_child_no_keys(dparent) }
        };
        if siblings.is_null() {
            return Ok(ptr::null_mut());
        }
        let ck = key.map(cstring);
        let mut m = ptr::null_mut();
        // SAFETY: siblings are owned tree nodes; ck outlives the call.
        let r = unsafe {
            ffi::lyd_find_sibling_val(
                siblings,
                snode,
                ck.as_ref().map_or(ptr::null(), |c| c.as_ptr()),
                0,
                &mut m,
            )
        };
        match r {
            ffi::LY_ERR::LY_SUCCESS => Ok(m),
            ffi::LY_ERR::LY_ENOTFOUND => Ok(ptr::null_mut()),
            _ => {
                let mut e = self.yang_err("");
                e.path = None;
                e.tag = ErrorTag::InvalidValue;
                Err(e)
            }
        }
    }

    /// Creates one node under `dparent` (top level when null).
    fn create(
        &mut self,
        dparent: Node,
        snode: SNode,
        keys: &[CString],
        value: Option<&str>,
    ) -> Result<Node, RpcError> {
        let mut n = ptr::null_mut();
        // SAFETY: valid schema node; dparent null or an owned tree node; the
        // CStrings outlive the calls.
        unsafe {
            let module = (*snode).module;
            let name = (*snode).name;
            let r = match u32::from((*snode).nodetype) {
                ffi::LYS_CONTAINER => ffi::lyd_new_inner(dparent, module, name, 0, &mut n),
                ffi::LYS_LIST => {
                    let mut ptrs: Vec<*const c_char> = keys.iter().map(|k| k.as_ptr()).collect();
                    ffi::lyd_new_list3(
                        dparent,
                        module,
                        name,
                        ptrs.as_mut_ptr(),
                        ptr::null_mut(),
                        0,
                        &mut n,
                    )
                }
                _ => {
                    let v = cstring(value.unwrap_or(""));
                    ffi::lyd_new_term(dparent, module, name, v.as_ptr(), 0, &mut n)
                }
            };
            if r != ffi::LY_ERR::LY_SUCCESS || n.is_null() {
                let mut e = self.yang_err("");
                e.path = None;
                if e.tag == ErrorTag::OperationFailed {
                    e.tag = ErrorTag::InvalidValue;
                }
                return Err(e);
            }
            if dparent.is_null() {
                let mut first = self.first;
                ffi::lyd_insert_sibling(first, n, &mut first);
                self.first = first;
            }
            // New inner nodes get their defaults now, so the candidate (never
            // validated on edit) shows them too; only this subtree is
            // walked, not the whole tree.
            if u32::from((*snode).nodetype) & (ffi::LYS_CONTAINER | ffi::LYS_LIST) != 0 {
                ffi::lyd_new_implicit_tree(n, ffi::LYD_IMPLICIT_NO_STATE, ptr::null_mut());
            }
        }
        Ok(n)
    }

    /// Frees a subtree, keeping `first` right.
    ///
    /// # Safety
    /// `n` must be a node of the owned tree.
    unsafe fn free(&mut self, n: Node) {
        if (*n).parent.is_null() && n == self.first {
            self.first = (*n).next;
        }
        ffi::lyd_free_tree(n);
    }

    /// Frees default instances of a leaf-list before the first explicit one.
    fn drop_default_instances(&mut self, dparent: Node, snode: SNode) {
        loop {
            let Ok(n) = self.find(dparent, snode, None) else {
                return;
            };
            // SAFETY: owned tree node.
            if n.is_null() || unsafe { (*n).flags } & ffi::LYD_DEFAULT == 0 {
                return;
            }
            // SAFETY: owned tree node.
            unsafe { self.free(n) };
        }
    }

    /// A node created in one case of a choice drops the data of the other
    /// cases (RFC 7950 §7.9.2), at every choice level between it and its
    /// data parent.
    fn drop_other_cases(&mut self, dparent: Node, snode: SNode, record: bool) {
        // SAFETY: schema nodes of the static context; data nodes of the owned tree.
        unsafe {
            let stop = if dparent.is_null() {
                ptr::null()
            } else {
                (*dparent).schema
            };
            let mut s = snode;
            while !(*s).parent.is_null() && !ptr::eq((*s).parent, stop) {
                let p = (*s).parent as SNode;
                if u32::from((*p).nodetype) == ffi::LYS_CASE {
                    let choice = (*p).parent as SNode;
                    let mut c = ffi::lysc_node_child(choice);
                    while !c.is_null() {
                        if c != p {
                            let mut d = ffi::lys_getnext(ptr::null(), c, ptr::null(), 0);
                            while !d.is_null() {
                                self.drop_instances(dparent, d, record);
                                d = ffi::lys_getnext(d, c, ptr::null(), 0);
                            }
                        }
                        c = (*c).next;
                    }
                }
                s = p;
            }
        }
    }

    fn drop_instances(&mut self, dparent: Node, snode: SNode, record: bool) {
        loop {
            let Ok(n) = self.find(dparent, snode, None) else {
                return;
            };
            if n.is_null() {
                return;
            }
            // SAFETY: owned tree node.
            unsafe {
                if record && (*n).flags & ffi::LYD_DEFAULT == 0 {
                    self.changes.push((data_path(n), "delete"));
                }
                self.free(n);
            }
        }
    }
}

// ===== helper functions =====

fn cstring(s: &str) -> CString {
    // XML text cannot hold NUL; strip any to stay total.
    CString::new(s.replace('\0', "")).unwrap_or_default()
}

/// # Safety
/// `p` must be a NUL-terminated string of the static context.
unsafe fn cstr_str<'a>(p: *const c_char) -> &'a str {
    if p.is_null() {
        return "";
    }
    CStr::from_ptr(p).to_str().unwrap_or("")
}

/// The libyang data path of a node (for changes and errors).
///
/// # Safety
/// `n` must be a valid data node.
pub(crate) unsafe fn data_path(n: Node) -> String {
    let p = ffi::lyd_path(n, ffi::LYD_PATH_TYPE::LYD_PATH_STD, ptr::null_mut(), 0);
    if p.is_null() {
        return String::new();
    }
    let s = CStr::from_ptr(p).to_string_lossy().into_owned();
    libc::free(p as *mut libc::c_void);
    s
}

/// Path segment of a node: `mod:name` at the top or when the module
/// changes, as libyang prints data paths.
fn segment(module: &SchemaModule<'_>, sparent: SNode, name: &str) -> String {
    // SAFETY: sparent is null or a schema node of the static context.
    let same = !sparent.is_null() && unsafe { (*sparent).module } == module.as_raw();
    if same {
        name.to_string()
    } else {
        format!("{}:{name}", module.name())
    }
}

fn text_of(x: roxmltree::Node<'_, '_>) -> String {
    let mut s = String::new();
    for c in x.children().filter(|c| c.is_text()) {
        s.push_str(c.text().unwrap_or(""));
    }
    s
}

/// XPath literal for a predicate value.
fn quote(v: &str) -> Option<String> {
    if !v.contains('\'') {
        Some(format!("'{v}'"))
    } else if !v.contains('"') {
        Some(format!("\"{v}\""))
    } else {
        None
    }
}

/// libyang's type plugin of `nacm:node-instance-identifier` (as a number,
/// for comparing), taken from a leaf known to use it: NACM's rule `path`.
fn node_instanceid_plugin() -> Option<usize> {
    static PLUGIN: std::sync::OnceLock<Option<usize>> = std::sync::OnceLock::new();
    *PLUGIN.get_or_init(|| {
        let node = crate::schema::context()
            .find_path("/ietf-netconf-acm:nacm/rule-list/rule/path")
            .ok()?;
        let raw = node.as_raw();
        // SAFETY: a leaf of the static context; leaves have a type.
        unsafe {
            if raw.is_null() || u32::from((*raw).nodetype) != ffi::LYS_LEAF {
                return None;
            }
            Some((*(*(raw as *const ffi::lysc_node_leaf)).type_).plugin as usize)
        }
    })
}

/// `[ex:name='b'][ex:k='c']` with XML prefixes → `[name='b'][k='c']`.
fn convert_key_pred(x: roxmltree::Node<'_, '_>, snode: SNode, raw: &str) -> Option<String> {
    // SAFETY: valid schema node.
    let ns = unsafe { cstr_str((*(*snode).module).ns) };
    let mut out = String::new();
    let mut rest = raw.trim();
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        rest = rest.strip_prefix('[')?.trim_start();
        let eq = rest.find('=')?;
        let qname = rest[..eq].trim();
        let local = match qname.split_once(':') {
            Some((p, l)) => {
                if x.lookup_namespace_uri(Some(p)) != Some(ns) {
                    return None;
                }
                l
            }
            None => qname,
        };
        rest = rest[eq + 1..].trim_start();
        let q = rest.chars().next()?;
        if q != '\'' && q != '"' {
            return None;
        }
        let end = rest[1..].find(q)? + 1;
        let val = &rest[1..end];
        rest = rest[end + 1..].trim_start().strip_prefix(']')?.trim_start();
        out.push_str(&format!("[{local}={q}{val}{q}]"));
    }
    Some(out)
}

fn bad_attr(path: &str, attr: &str, elem: &str, msg: impl Into<String>) -> RpcError {
    let mut e = RpcError::app(ErrorTag::BadAttribute, msg)
        .with_info("bad-attribute", attr)
        .with_info("bad-element", elem);
    if !path.is_empty() {
        e = e.with_path(path);
    }
    e
}

fn data_missing(path: &str, msg: &str) -> RpcError {
    RpcError::app(ErrorTag::DataMissing, msg).with_path(path)
}

fn data_exists(path: &str) -> RpcError {
    RpcError::app(ErrorTag::DataExists, "the data to create already exists").with_path(path)
}
