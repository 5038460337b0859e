//! copy-config (RFC 6241 §7.3).

use roxmltree::Node;

use super::{datastore, ds_param, DsParam, Response, RpcCtx};
use crate::datastore::{self as store, ConfigSource, DsName};
use crate::netconf::output;

pub fn handle(ctx: &RpcCtx<'_>, op: Node<'_, '_>) -> Response {
    let target = match datastore(op, "target") {
        Ok(t) => t,
        Err(e) => return e.into(),
    };
    let source = match ds_param(op, "source", true) {
        Ok(s) => s,
        Err(e) => return e.into(),
    };
    // Parse inline config before taking the lock.
    let inline = match source {
        DsParam::Config(node) => match store::parse_config(node) {
            Ok(t) => Some(t),
            Err(errs) => return Response::Errors(errs),
        },
        DsParam::Datastore(_) => None,
    };
    let span = tracing::info_span!(
        "commit",
        session = ctx.session_id,
        target = target.as_str(),
        op = "copy-config"
    );
    let _g = span.enter();
    let result = {
        let mut core = ctx.agent.core();
        if let Err(e) = core.check_writable(target, ctx.session_id) {
            return e.into();
        }
        // RFC 8341 §3.2.6: saving running to startup needs only the right
        // to run copy-config. Otherwise, what the user may not read of a
        // source datastore is left out of the copy, and every node of the
        // target that then changes needs write access.
        let nacm = core.nacm();
        let saving =
            matches!(source, DsParam::Datastore(DsName::Running)) && target == DsName::Startup;
        let visible = match &source {
            DsParam::Datastore(ds) if !saving && *ds != target => {
                match output::readable(&nacm, ctx.principal, core.ds.tree(*ds)) {
                    Ok(v) => v,
                    Err(e) => return e.into(),
                }
            }
            _ => None,
        };
        let src = match (visible.as_ref().or(inline.as_ref()), &source) {
            (Some(t), _) => ConfigSource::Inline(t),
            (None, DsParam::Datastore(ds)) => ConfigSource::Datastore(*ds),
            (None, DsParam::Config(_)) => unreachable!("inline config was parsed above"),
        };
        if !saving {
            let new = match &src {
                ConfigSource::Inline(t) => *t,
                ConfigSource::Datastore(ds) => core.ds.tree(*ds),
            };
            if let Err(e) = nacm.check_write(ctx.principal, core.ds.tree(target), new) {
                return e.into();
            }
        }
        let before = core.ds.shared(target);
        core.ds
            .copy_config(target, src)
            .and_then(|c| super::vet_running(ctx, &mut core, c))
            .map(|c| (c, (before, core.ds.shared(target))))
    };
    match result {
        Ok((commit, (old, new))) => {
            if target == DsName::Startup {
                ctx.agent.publish_startup(ctx.session_id, old, new);
            }
            ctx.after_commit(commit);
            Response::Ok
        }
        Err(errs) => Response::Errors(errs),
    }
}
