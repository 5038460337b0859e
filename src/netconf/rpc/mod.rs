//! `<rpc>` handling: envelope checks, dispatch to one file per operation,
//! and the shared parsing helpers of the base operations.

pub mod app;
pub mod cancel_commit;
pub mod close_session;
pub mod commit;
pub mod copy_config;
pub mod create_subscription;
pub mod delete_config;
pub mod delete_image;
pub mod discard_changes;
pub mod edit_config;
pub mod edit_data;
pub mod get;
pub mod get_config;
pub mod get_data;
pub mod get_schema;
pub mod import_image;
pub mod install_license;
pub mod kill_session;
pub mod lock;
pub mod unlock;
pub mod validate;

use std::sync::atomic::Ordering;
use std::sync::Arc;

use roxmltree::Node;

use crate::datastore::{Commit, DsName};
use crate::error::{ErrorTag, ErrorType, RpcError};
use crate::nacm::Principal;
use crate::netconf::agent::{Agent, Core};
use crate::netconf::reply::{self, ReplyAttrs};
use crate::notify::NOTIF_NS;
use crate::schema::NC_NS;

pub const NMDA_NS: &str = "urn:ietf:params:xml:ns:yang:ietf-netconf-nmda";
pub const DATASTORES_NS: &str = "urn:ietf:params:xml:ns:yang:ietf-datastores";
pub const MONITORING_NS: &str = "urn:ietf:params:xml:ns:yang:ietf-netconf-monitoring";
pub const WITH_DEFAULTS_NS: &str = "urn:ietf:params:xml:ns:yang:ietf-netconf-with-defaults";

/// What one operation produced.
#[derive(Debug)]
pub enum Response {
    Ok,
    /// Printed data, wrapped into `<data>` (get, get-config, get-data).
    Data(String),
    /// Reply content other than `<data>`, already XML (RPC output).
    Body(String),
    Errors(Vec<RpcError>),
    /// `<ok/>`, then the session ends (close-session).
    CloseSession,
    /// `<ok/>`, then the session sends this subscription's notifications.
    Subscribed(Box<create_subscription::Subscription>),
}

impl From<RpcError> for Response {
    fn from(e: RpcError) -> Self {
        Response::Errors(vec![e])
    }
}

impl From<Result<(), RpcError>> for Response {
    fn from(r: Result<(), RpcError>) -> Self {
        match r {
            Ok(()) => Response::Ok,
            Err(e) => e.into(),
        }
    }
}

/// Who is asking.
pub struct RpcCtx<'a> {
    pub agent: &'a Arc<Agent>,
    pub session_id: u32,
    /// The user name (`principal.name`).
    pub user: &'a str,
    /// The user and its configured groups, for access control.
    pub principal: &'a Principal,
    /// The session already has a notification subscription (RFC 5277
    /// allows one per session).
    pub subscribed: bool,
}

impl RpcCtx<'_> {
    /// A change of running by commit or copy-config: netconf-config-change
    /// (edits from the diff), then the reconciler (outside the core lock).
    pub fn after_commit(&self, commit: Option<Commit>) {
        if let Some(c) = commit {
            self.agent.reconcile(&c);
            self.agent.publish_commit(Some(self.session_id), c);
        }
    }

    /// A change of running by edit-config / edit-data: netconf-config-change
    /// with the edits as requested, then the reconciler.
    pub fn after_edit(&self, commit: Option<Commit>, changes: &[(String, &'static str)]) {
        if let Some(c) = commit {
            self.agent.reconcile(&c);
            self.agent.publish_edit(self.session_id, changes, c);
        }
    }
}

/// The reply to one message and whether the session ends after it.
pub struct Handled {
    pub reply: String,
    pub close: bool,
    /// The message was not a usable `<rpc>`; the session ends.
    pub malformed: bool,
    /// create-subscription succeeded: notifications follow the reply.
    pub subscription: Option<Box<create_subscription::Subscription>>,
}

/// Handles one received message (an `<rpc>`, in theory).
pub fn handle_message(ctx: &RpcCtx<'_>, text: &str) -> Handled {
    let stats = &ctx.agent.stats;
    let doc = match roxmltree::Document::parse(text.trim()) {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!(error = %e, "malformed XML message; closing the session");
            stats.in_bad_rpcs.fetch_add(1, Ordering::Relaxed);
            let err = RpcError::rpc(ErrorTag::MalformedMessage, format!("malformed XML: {e}"));
            return Handled {
                reply: reply::errors(&ReplyAttrs::none(), &[err]),
                close: true,
                malformed: true,
                subscription: None,
            };
        }
    };
    let rpc = doc.root_element();
    if rpc.tag_name().name() != "rpc" || rpc.tag_name().namespace().is_some_and(|n| n != NC_NS) {
        tracing::warn!(
            element = rpc.tag_name().name(),
            "message is not an <rpc>; closing the session"
        );
        stats.in_bad_rpcs.fetch_add(1, Ordering::Relaxed);
        let err = RpcError::rpc(ErrorTag::MalformedMessage, "expected an <rpc> element")
            .with_info("bad-element", rpc.tag_name().name());
        return Handled {
            reply: reply::errors(&ReplyAttrs::none(), &[err]),
            close: true,
            malformed: true,
            subscription: None,
        };
    }
    let attrs = ReplyAttrs::from_rpc(rpc);
    stats.in_rpcs.fetch_add(1, Ordering::Relaxed);
    let response = if rpc.attribute("message-id").is_none() {
        RpcError::rpc(
            ErrorTag::MissingAttribute,
            "the <rpc> element has no message-id attribute",
        )
        .with_info("bad-attribute", "message-id")
        .with_info("bad-element", "rpc")
        .into()
    } else {
        dispatch(ctx, rpc)
    };
    let mut subscription = None;
    let (reply, close) = match response {
        Response::Ok => (reply::ok(&attrs), false),
        Response::CloseSession => (reply::ok(&attrs), true),
        Response::Subscribed(s) => {
            subscription = Some(s);
            (reply::ok(&attrs), false)
        }
        Response::Data(d) => (reply::data(&attrs, &d), false),
        Response::Body(b) => (reply::with_body(&attrs, &b), false),
        Response::Errors(errs) => {
            stats.out_rpc_errors.fetch_add(1, Ordering::Relaxed);
            for e in &errs {
                tracing::info!(error = %e, "rpc-error");
            }
            (reply::errors(&attrs, &errs), false)
        }
    };
    Handled {
        reply,
        close,
        malformed: false,
        subscription,
    }
}

/// Finds the operation and runs it.
fn dispatch(ctx: &RpcCtx<'_>, rpc: Node<'_, '_>) -> Response {
    let mut ops = rpc.children().filter(Node::is_element);
    let Some(op) = ops.next() else {
        return RpcError::rpc(
            ErrorTag::MissingElement,
            "the <rpc> element holds no operation",
        )
        .with_info("bad-element", "rpc")
        .into();
    };
    if let Some(extra) = ops.next() {
        return RpcError::rpc(
            ErrorTag::UnknownElement,
            "an <rpc> holds exactly one operation",
        )
        .with_info("bad-element", extra.tag_name().name())
        .into();
    }
    let name = op.tag_name().name();
    let ns = op.tag_name().namespace();
    let span = tracing::debug_span!(
        "rpc",
        op = name,
        message_id = rpc.attribute("message-id").unwrap_or("")
    );
    let _g = span.enter();
    // Unqualified operations are taken as base operations: some clients
    // leave the prefix off children of a prefixed <rpc>.
    let ns = ns.unwrap_or(NC_NS);
    if let Err(e) = check_exec(ctx, ns, name) {
        tracing::info!(
            user = ctx.user,
            op = name,
            "operation denied by access control"
        );
        return e.into();
    }
    match (ns, name) {
        (NC_NS, "get") => get::handle(ctx, op),
        (NC_NS, "get-config") => get_config::handle(ctx, op),
        (NC_NS, "edit-config") => edit_config::handle(ctx, op),
        (NC_NS, "copy-config") => copy_config::handle(ctx, op),
        (NC_NS, "delete-config") => delete_config::handle(ctx, op),
        (NC_NS, "lock") => lock::handle(ctx, op),
        (NC_NS, "unlock") => unlock::handle(ctx, op),
        (NC_NS, "close-session") => close_session::handle(ctx, op),
        (NC_NS, "kill-session") => kill_session::handle(ctx, op),
        (NC_NS, "validate") => validate::handle(ctx, op),
        (NC_NS, "commit") => commit::handle(ctx, op),
        (NC_NS, "cancel-commit") => cancel_commit::handle(ctx, op),
        (NC_NS, "discard-changes") => discard_changes::handle(ctx, op),
        (NMDA_NS, "get-data") => get_data::handle(ctx, op),
        (NMDA_NS, "edit-data") => edit_data::handle(ctx, op),
        (MONITORING_NS, "get-schema") => get_schema::handle(ctx, op),
        (NOTIF_NS, "create-subscription") => create_subscription::handle(ctx, op),
        (ns, name) => {
            if let Some(h) = ctx.agent.yang_rpcs() {
                if let Some(r) = h.call(ctx, op) {
                    return r;
                }
            }
            unsupported(ns, name)
        }
    }
}

/// Incoming RPC validation (RFC 8341 §3.4.4): may this user invoke this
/// operation at all? Runs before the operation, so a denied one has no
/// effect. Operations that no loaded module defines are left to the usual
/// unknown-namespace / operation-not-supported errors.
fn check_exec(ctx: &RpcCtx<'_>, ns: &str, name: &str) -> Result<(), RpcError> {
    if crate::schema::is_hidden_ns(ns) && name != "install-license" {
        // Hidden by the licence gate: answered as unknown-namespace below,
        // as for a module we do not have. install-license is served (see
        // rpc/app.rs), and so checked, also then.
        return Ok(());
    }
    let Some(module) = crate::schema::context().get_module_implemented_ns(ns) else {
        return Ok(());
    };
    let module = module.name();
    if !crate::nacm::is_rpc(module, name) {
        return Ok(());
    }
    ctx.agent.nacm().check_rpc(ctx.principal, module, name)
}

fn unsupported(ns: &str, name: &str) -> Response {
    let ctx = crate::schema::context();
    if crate::schema::is_hidden_ns(ns) {
        return crate::schema::hidden_ns_error(ns, name).into();
    }
    if ns != NC_NS && ctx.get_module_implemented_ns(ns).is_none() {
        return RpcError::new(ErrorType::Protocol, ErrorTag::UnknownNamespace)
            .with_message(format!("no YANG module with namespace {ns}"))
            .with_info("bad-element", name)
            .with_info("bad-namespace", ns)
            .into();
    }
    RpcError::protocol(
        ErrorTag::OperationNotSupported,
        format!("operation {name} is not supported"),
    )
    .with_info("bad-element", name)
    .into()
}

/// RPCs of other YANG modules (the app-hosting actions), plugged in by
/// the daemon.
pub trait YangRpcs: Send + Sync {
    /// Handles `op`, or returns `None` if it is not one of ours.
    fn call(&self, ctx: &RpcCtx<'_>, op: Node<'_, '_>) -> Option<Response>;
}

// ===== helper functions =====

/// Runs the reconciler's check on a new running tree written directly
/// (edit-config / copy-config to running); on refusal the old running is
/// put back. (commit checks candidate before anything changes.)
///
/// The check runs after the datastore installed (and persisted) the new
/// tree because `Datastores` offers no pre-install hook; the core lock is
/// held throughout, so no other session sees the refused tree.
pub fn vet_running(
    ctx: &RpcCtx<'_>,
    core: &mut Core,
    commit: Option<Commit>,
) -> Result<Option<Commit>, Vec<RpcError>> {
    let Some(c) = commit else {
        return Ok(None);
    };
    let Err(errs) = ctx.agent.check(&c.new) else {
        return Ok(Some(c));
    };
    tracing::info!(
        errors = errs.len(),
        "new running refused by the reconciler check; undone"
    );
    if let Err(e) = core.ds.restore_running(c.old) {
        tracing::error!(errors = ?e, "cannot restore the previous running configuration");
    }
    Err(errs)
}

/// An element child named `name` in namespace `ns`, or unqualified (taken
/// as `ns`: ncclient and Ansible send unqualified `<config>`).
pub fn child<'a, 'i>(node: Node<'a, 'i>, ns: &str, name: &str) -> Option<Node<'a, 'i>> {
    node.children().find(|c| {
        c.is_element()
            && c.tag_name().name() == name
            && c.tag_name().namespace().is_none_or(|n| n == ns)
    })
}

/// A base-namespace child.
pub fn nc_child<'a, 'i>(node: Node<'a, 'i>, name: &str) -> Option<Node<'a, 'i>> {
    child(node, NC_NS, name)
}

/// `missing-element` for a mandatory parameter.
pub fn missing(name: &str) -> RpcError {
    RpcError::protocol(
        ErrorTag::MissingElement,
        format!("missing parameter <{name}>"),
    )
    .with_info("bad-element", name)
}

/// `bad-element` / `invalid-value` for a parameter with a wrong value.
pub fn bad(name: &str, why: impl Into<String>) -> RpcError {
    RpcError::protocol(ErrorTag::InvalidValue, why).with_info("bad-element", name)
}

/// A `<source>` or `<target>` parameter.
pub enum DsParam<'a, 'i> {
    Datastore(DsName),
    /// Inline `<config>` (copy-config and validate sources).
    Config(Node<'a, 'i>),
}

/// Parses `<source>`/`<target>` (`param`) of a base operation.
pub fn ds_param<'a, 'i>(
    op: Node<'a, 'i>,
    param: &str,
    allow_config: bool,
) -> Result<DsParam<'a, 'i>, RpcError> {
    let p = nc_child(op, param).ok_or_else(|| missing(param))?;
    let inner = p
        .children()
        .find(|c| c.is_element())
        .ok_or_else(|| missing(param))?;
    let in_nc = inner.tag_name().namespace().is_none_or(|n| n == NC_NS);
    match (in_nc, inner.tag_name().name()) {
        (true, "running") => Ok(DsParam::Datastore(DsName::Running)),
        (true, "candidate") => Ok(DsParam::Datastore(DsName::Candidate)),
        (true, "startup") => Ok(DsParam::Datastore(DsName::Startup)),
        (true, "config") if allow_config => Ok(DsParam::Config(inner)),
        (true, "url") => Err(RpcError::protocol(
            ErrorTag::OperationNotSupported,
            "the :url capability is not supported",
        )
        .with_info("bad-element", "url")),
        (_, other) => Err(bad(param, format!("<{other}> is not a datastore here"))
            .with_info("bad-element", other)),
    }
}

/// A `<source>`/`<target>` that must be a datastore.
pub fn datastore(op: Node<'_, '_>, param: &str) -> Result<DsName, RpcError> {
    match ds_param(op, param, false)? {
        DsParam::Datastore(ds) => Ok(ds),
        DsParam::Config(_) => Err(bad(param, "a datastore is required")),
    }
}

/// An NMDA datastore identity (`ds:running`), RFC 8342 / RFC 8526.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NmdaDs {
    Conventional(DsName),
    Operational,
}

pub fn nmda_datastore(node: Node<'_, '_>) -> Result<NmdaDs, RpcError> {
    let text = node.text().unwrap_or("").trim();
    let (prefix, name) = match text.split_once(':') {
        Some((p, n)) => (Some(p), n),
        None => (None, text),
    };
    let ns = node.lookup_namespace_uri(prefix);
    if ns != Some(DATASTORES_NS) {
        return Err(bad("datastore", format!("unknown datastore {text}")));
    }
    match name {
        "running" => Ok(NmdaDs::Conventional(DsName::Running)),
        "candidate" => Ok(NmdaDs::Conventional(DsName::Candidate)),
        "startup" => Ok(NmdaDs::Conventional(DsName::Startup)),
        "operational" => Ok(NmdaDs::Operational),
        _ => Err(bad("datastore", format!("unknown datastore {text}"))),
    }
}
