//! create-subscription (RFC 5277 §2.1.1): a stream, an optional subtree or
//! XPath filter, and `startTime`/`stopTime` for replay. The subscription
//! itself is served by the session loop (see
//! [`session`](crate::netconf::session)); this file checks the request and
//! takes the replay and the live receiver from the bus in one step, so no
//! event is seen twice or missed.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use roxmltree::Node;
use tokio::sync::broadcast;

use super::{Response, RpcCtx};
use crate::error::{ErrorTag, RpcError};
use crate::netconf::filter::{self, Filter};
use crate::notify::{Event, NOTIF_NS, STREAM_APP_LOG, STREAM_NETCONF};

/// Why a create-subscription is refused (RFC 5277 §2.1.1).
#[derive(Debug, thiserror::Error)]
pub enum SubscribeError {
    #[error("the session already has a notification subscription")]
    AlreadySubscribed,
    #[error("unknown stream {0:?}")]
    UnknownStream(String),
    #[error("stopTime needs a startTime")]
    StopWithoutStart,
    #[error("startTime {0} is in the future")]
    StartInFuture(String),
    #[error("stopTime is earlier than startTime")]
    StopBeforeStart,
    #[error("{element}: {value:?} is not a date-and-time")]
    BadTime {
        element: &'static str,
        value: String,
    },
    #[error(transparent)]
    Filter(#[from] RpcError),
}

impl From<SubscribeError> for RpcError {
    fn from(e: SubscribeError) -> RpcError {
        let msg = e.to_string();
        match e {
            // RFC 5277 allows one subscription per session; netopeer2 answers
            // a second one with in-use too.
            SubscribeError::AlreadySubscribed => RpcError::protocol(ErrorTag::InUse, msg),
            SubscribeError::UnknownStream(_) => {
                RpcError::protocol(ErrorTag::InvalidValue, msg).with_info("bad-element", "stream")
            }
            SubscribeError::StopWithoutStart => RpcError::protocol(ErrorTag::MissingElement, msg)
                .with_info("bad-element", "startTime"),
            SubscribeError::StartInFuture(_) => {
                RpcError::protocol(ErrorTag::BadElement, msg).with_info("bad-element", "startTime")
            }
            SubscribeError::StopBeforeStart => {
                RpcError::protocol(ErrorTag::BadElement, msg).with_info("bad-element", "stopTime")
            }
            SubscribeError::BadTime { element, .. } => {
                RpcError::protocol(ErrorTag::BadElement, msg).with_info("bad-element", element)
            }
            SubscribeError::Filter(e) => e,
        }
    }
}

/// A live subscription, handed to the session loop with the `<ok/>`.
pub struct Subscription {
    pub stream: &'static str,
    pub filter: Option<Filter>,
    pub start: Option<DateTime<Utc>>,
    pub stop: Option<DateTime<Utc>>,
    /// Buffered events at or after `start`, oldest first.
    pub replay: Vec<Arc<Event>>,
    /// Events published after the subscription was taken (all streams).
    pub rx: broadcast::Receiver<Arc<Event>>,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("stream", &self.stream)
            .field("filter", &self.filter)
            .field("start", &self.start)
            .field("stop", &self.stop)
            .field("replay", &self.replay.len())
            .finish()
    }
}

/// What a subscription takes of an event.
pub enum Selected {
    /// The whole event (no filter, or a filter that selects all of it).
    Whole,
    /// The part of the event tree the filter selected.
    Part(yang2::data::DataTree<'static>),
}

impl Subscription {
    /// Whether `ev` goes to this subscriber (its stream, not past stopTime,
    /// selected by the filter), and what of it.
    pub fn select(&self, ev: &Event) -> Option<Selected> {
        if ev.stream != self.stream || self.stop.is_some_and(|s| ev.time > s) {
            return None;
        }
        let Some(f) = &self.filter else {
            return Some(Selected::Whole);
        };
        match filter::apply(&ev.tree, Some(f)) {
            Ok(t) if t.reference().is_some() => Some(Selected::Part(t)),
            Ok(_) => None,
            Err(e) => {
                // Checked at subscription time; an event that still trips
                // it is skipped, not fatal to the subscription.
                tracing::warn!(error = %e, event = %ev.name, "notification filter failed");
                None
            }
        }
    }
}

pub fn handle(ctx: &RpcCtx<'_>, op: Node<'_, '_>) -> Response {
    match subscribe(ctx, op) {
        Ok(s) => {
            tracing::info!(stream = s.stream, replay = s.replay.len(), start = ?s.start, stop = ?s.stop, "subscribed");
            Response::Subscribed(Box::new(s))
        }
        Err(e) => RpcError::from(e).into(),
    }
}

fn subscribe(ctx: &RpcCtx<'_>, op: Node<'_, '_>) -> Result<Subscription, SubscribeError> {
    if ctx.subscribed {
        return Err(SubscribeError::AlreadySubscribed);
    }
    let stream = match param(op, "stream").map(|n| n.text().unwrap_or("").trim()) {
        None => STREAM_NETCONF,
        Some(STREAM_NETCONF) => STREAM_NETCONF,
        Some(STREAM_APP_LOG) => STREAM_APP_LOG,
        Some(other) => return Err(SubscribeError::UnknownStream(other.to_string())),
    };
    // ncclient puts <filter> in the base namespace, RFC 5277 in its own.
    let filter = param(op, "filter")
        .or_else(|| super::nc_child(op, "filter"))
        .map(Filter::from_filter_element)
        .transpose()?;
    if let Some(f) = &filter {
        check_filter(f)?;
    }
    let start = param(op, "startTime")
        .map(|n| time(n, "startTime"))
        .transpose()?;
    let stop = param(op, "stopTime")
        .map(|n| time(n, "stopTime"))
        .transpose()?;
    let now = Utc::now();
    match (start, stop) {
        (None, Some(_)) => return Err(SubscribeError::StopWithoutStart),
        (Some(s), _) if s > now => return Err(SubscribeError::StartInFuture(s.to_rfc3339())),
        (Some(s), Some(e)) if e < s => return Err(SubscribeError::StopBeforeStart),
        _ => {}
    }
    let (replay, rx) = ctx.agent.bus.subscribe(stream, start);
    Ok(Subscription {
        stream,
        filter,
        start,
        stop,
        replay,
        rx,
    })
}

/// A parameter in the notification namespace (or unqualified).
fn param<'a, 'i>(op: Node<'a, 'i>, name: &str) -> Option<Node<'a, 'i>> {
    super::child(op, NOTIF_NS, name)
}

fn time(n: Node<'_, '_>, element: &'static str) -> Result<DateTime<Utc>, SubscribeError> {
    let text = n.text().unwrap_or("").trim();
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| SubscribeError::BadTime {
            element,
            value: text.to_string(),
        })
}

/// Refuses an XPath filter libyang cannot compile now, instead of
/// silently matching nothing for the whole subscription.
fn check_filter(f: &Filter) -> Result<(), RpcError> {
    if let Filter::XPath { select, namespaces } = f {
        let empty = yang2::data::DataTree::new(crate::schema::context());
        filter::xpath(&empty, select, namespaces)?;
    }
    Ok(())
}
