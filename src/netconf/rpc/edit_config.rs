//! edit-config (RFC 6241 §7.2). Writing running applies at once, like a
//! commit (:writable-running).

use roxmltree::Node;

use super::{bad, datastore, missing, nc_child, Response, RpcCtx};
use crate::datastore::{DefaultOperation, DsName, EditOptions, ErrorOption, TestOption};
use crate::error::{ErrorTag, RpcError};

pub fn handle(ctx: &RpcCtx<'_>, op: Node<'_, '_>) -> Response {
    let (target, opts, config) = match parse(op) {
        Ok(p) => p,
        Err(e) => return e.into(),
    };
    edit(ctx, target, config, &opts)
}

/// Runs an edit against `target` (edit-config and edit-data).
pub fn edit(
    ctx: &RpcCtx<'_>,
    target: DsName,
    config: Node<'_, '_>,
    opts: &EditOptions,
) -> Response {
    let span = tracing::info_span!("commit", session = ctx.session_id, target = target.as_str());
    let _g = span.enter();
    let outcome = {
        let mut core = ctx.agent.core();
        if let Err(e) = core.check_writable(target, ctx.session_id) {
            return e.into();
        }
        // Write access (RFC 8341 §3.2.5) is checked on what the edit
        // changes, before the change is installed.
        let nacm = core.nacm();
        let guard = |old: &_, new: &_| nacm.check_write(ctx.principal, old, new);
        let mut outcome = core.ds.edit_guarded(target, config, opts, &guard);
        if let Err(errs) =
            super::vet_running(ctx, &mut core, outcome.commit.take()).map(|c| outcome.commit = c)
        {
            outcome.errors.extend(errs);
        }
        outcome
    };
    if outcome.commit.is_some() {
        tracing::info!(changes = outcome.changes.len(), "running changed");
    }
    ctx.after_edit(outcome.commit, &outcome.changes);
    if outcome.errors.is_empty() {
        Response::Ok
    } else {
        Response::Errors(outcome.errors)
    }
}

fn parse<'a, 'i>(op: Node<'a, 'i>) -> Result<(DsName, EditOptions, Node<'a, 'i>), RpcError> {
    let target = datastore(op, "target")?;
    let mut opts = EditOptions::default();
    if let Some(n) = nc_child(op, "default-operation") {
        opts.default_operation = match n.text().unwrap_or("").trim() {
            "merge" => DefaultOperation::Merge,
            "replace" => DefaultOperation::Replace,
            "none" => DefaultOperation::None,
            v => {
                return Err(bad(
                    "default-operation",
                    format!("unknown default-operation {v:?}"),
                ))
            }
        };
    }
    if let Some(n) = nc_child(op, "test-option") {
        opts.test_option = match n.text().unwrap_or("").trim() {
            "test-then-set" => TestOption::TestThenSet,
            "set" => TestOption::Set,
            "test-only" => TestOption::TestOnly,
            v => return Err(bad("test-option", format!("unknown test-option {v:?}"))),
        };
    }
    if let Some(n) = nc_child(op, "error-option") {
        opts.error_option = match n.text().unwrap_or("").trim() {
            "stop-on-error" => ErrorOption::StopOnError,
            "continue-on-error" => ErrorOption::ContinueOnError,
            "rollback-on-error" => ErrorOption::RollbackOnError,
            v => return Err(bad("error-option", format!("unknown error-option {v:?}"))),
        };
    }
    if nc_child(op, "url").is_some() {
        return Err(RpcError::protocol(
            ErrorTag::OperationNotSupported,
            "the :url capability is not supported",
        )
        .with_info("bad-element", "url"));
    }
    let config = nc_child(op, "config").ok_or_else(|| missing("config"))?;
    Ok((target, opts, config))
}
