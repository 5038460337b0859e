//! Reading data for get, get-config and get-data: the request parameters
//! (`<filter>`, with-defaults) and the trees to read from (datastores,
//! operational state, monitoring, yang-library). Filtering and printing
//! themselves are in [`filter`](crate::netconf::filter) and
//! [`print`](crate::netconf::print).

use std::sync::atomic::Ordering;
use std::sync::OnceLock;

use roxmltree::Node;
use yang2::data::DataTree;

use crate::datastore::DsName;
use crate::error::RpcError;
use crate::nacm::{Nacm, Principal};
use crate::netconf::filter::Filter;
use crate::netconf::monitoring::{self, Counters, MonitoringInfo, SessionInfo, Stats};
use crate::netconf::print::{self, WithDefaults};
use crate::netconf::rpc::{bad, child, RpcCtx, WITH_DEFAULTS_NS};
use crate::netconf::{hello, yanglib};

/// Reads the optional `<with-defaults>` parameter of `op`.
pub fn with_defaults(op: Node<'_, '_>) -> Result<WithDefaults, RpcError> {
    match child(op, WITH_DEFAULTS_NS, "with-defaults") {
        None => Ok(WithDefaults::Explicit),
        Some(n) => {
            let v = n.text().unwrap_or("");
            WithDefaults::parse(v)
                .ok_or_else(|| bad("with-defaults", format!("unknown with-defaults mode {v:?}")))
        }
    }
}

/// Reads the optional RFC 6241 `<filter>` of get / get-config.
pub fn filter(op: Node<'_, '_>, ns: &str) -> Result<Option<Filter>, RpcError> {
    child(op, ns, "filter")
        .map(Filter::from_filter_element)
        .transpose()
}

/// Which trees make up the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parts {
    pub config: bool,
    pub state: bool,
}

/// The operational data (domain state, netconf-state, yang-library),
/// merged into `tree`.
pub fn merge_state(ctx: &RpcCtx<'_>, tree: &mut DataTree<'static>) -> Result<(), RpcError> {
    let yerr = |e: yang2::Error| RpcError::from_yang(&e);
    if let Some(p) = ctx.agent.state_provider() {
        if let Some(state) = p.state()? {
            tree.merge(&state).map_err(yerr)?;
        }
    }
    tree.merge(&monitoring::state(&monitoring_info(ctx))?)
        .map_err(yerr)?;
    tree.merge(yanglib_state()?).map_err(yerr)?;
    tree.merge(&ctx.agent.bus.streams_state()?).map_err(yerr)?;
    Ok(())
}

/// Read access control (RFC 8341 §3.4.5) on a stored tree: `None` when the
/// user may read all of it (print it as is, no copy), else a copy without
/// the nodes it may not read, which are left out silently.
pub fn readable(
    nacm: &Nacm,
    principal: &Principal,
    tree: &DataTree<'static>,
) -> Result<Option<DataTree<'static>>, RpcError> {
    if nacm.unrestricted(principal) {
        return Ok(None);
    }
    let mut copy = tree.duplicate().map_err(|e| RpcError::from_yang(&e))?;
    nacm.filter_read(principal, &mut copy);
    Ok(Some(copy))
}

/// Prints `tree` of datastore `ds` as the user may read it.
pub fn reply_datastore(
    ctx: &RpcCtx<'_>,
    ds: DsName,
    filter: Option<&Filter>,
    wd: WithDefaults,
) -> Result<String, RpcError> {
    let mut core = ctx.agent.core();
    let nacm = core.nacm();
    let tree = core.ds.tree(ds);
    match readable(&nacm, ctx.principal, tree)? {
        // The access filter runs before the request's filter, so a
        // content match cannot probe hidden values.
        Some(visible) => print::reply_data(&visible, filter, wd),
        // Straight from the stored tree: without a filter and in explicit
        // mode nothing is copied.
        None => print::reply_data(tree, filter, wd),
    }
}

/// Running config and/or state, as one tree, without what the user may
/// not read.
pub fn operational(ctx: &RpcCtx<'_>, parts: Parts) -> Result<DataTree<'static>, RpcError> {
    let nacm = ctx.agent.nacm();
    let mut tree = if parts.config {
        ctx.agent
            .core()
            .ds
            .tree(DsName::Running)
            .duplicate()
            .map_err(|e| RpcError::from_yang(&e))?
    } else {
        DataTree::new(crate::schema::context())
    };
    if parts.state {
        merge_state(ctx, &mut tree)?;
    }
    nacm.filter_read(ctx.principal, &mut tree);
    Ok(tree)
}

/// The yang-library never changes while the agent runs: built once.
fn yanglib_state() -> Result<&'static DataTree<'static>, RpcError> {
    static TREE: OnceLock<DataTree<'static>> = OnceLock::new();
    if let Some(t) = TREE.get() {
        return Ok(t);
    }
    let t = yanglib::state()?;
    Ok(TREE.get_or_init(|| t))
}

/// A snapshot of sessions, locks and counters for netconf-state.
pub fn monitoring_info(ctx: &RpcCtx<'_>) -> MonitoringInfo {
    let agent = ctx.agent;
    let mut info = MonitoringInfo::new(agent.start_time);
    let n = |a: &std::sync::atomic::AtomicU64| {
        u32::try_from(a.load(Ordering::Relaxed)).unwrap_or(u32::MAX)
    };
    info.sessions = agent
        .session_list()
        .into_iter()
        .map(|s| SessionInfo {
            session_id: s.id,
            username: s.user.clone(),
            source_host: s.peer.map(|p| p.ip().to_string()),
            login_time: s.login_time,
            counters: Counters {
                in_rpcs: n(&s.stats.in_rpcs),
                in_bad_rpcs: n(&s.stats.in_bad_rpcs),
                out_rpc_errors: n(&s.stats.out_rpc_errors),
                out_notifications: n(&s.stats.out_notifications),
            },
        })
        .collect();
    {
        let core = agent.core();
        for ds in [DsName::Running, DsName::Candidate, DsName::Startup] {
            if let Some(l) = core.locks.get(ds) {
                info.locks.push(monitoring::LockInfo {
                    datastore: ds,
                    session_id: l.session,
                    locked_time: l.since,
                });
            }
        }
    }
    info.capabilities = hello::capabilities().to_vec();
    let g = &agent.stats;
    info.stats = Stats {
        in_bad_hellos: n(&g.in_bad_hellos),
        in_sessions: n(&g.in_sessions),
        dropped_sessions: n(&g.dropped_sessions),
        totals: Counters {
            in_rpcs: n(&g.in_rpcs),
            in_bad_rpcs: n(&g.in_bad_rpcs),
            out_rpc_errors: n(&g.out_rpc_errors),
            out_notifications: n(&g.out_notifications),
        },
    };
    info
}
