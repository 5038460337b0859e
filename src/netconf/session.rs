//! One NETCONF session over any byte stream (the SSH channel in the
//! daemon, a duplex pipe in tests): hello exchange, framing switch, the rpc
//! loop, notifications (RFC 5277, interleaved with replies), idle timeout,
//! kill and shutdown.
//!
//! The loop never blocks the runtime: each RPC runs on the blocking pool
//! (some take seconds: app start/stop, image import), one at a time so that
//! replies keep the order of the requests. Reading, writing, the running RPC
//! and the subscription are all branches of one `select!`: the peer's input
//! is read even while our output is stuck (russh stalls a whole connection
//! whose channel nobody reads), and a subscriber that stops reading only
//! fills its own bounded output and loses notifications, counted.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::Instrument;

use crate::error::{ErrorTag, RpcError};
use crate::nacm::Principal;
use crate::netconf::agent::{Agent, SessionGuard, SessionStats, NOTIF_QUEUE};
use crate::netconf::framing::{self, Decoder, FrameError, Framing};
use crate::netconf::hello;
use crate::netconf::reply::{self, ReplyAttrs};
use crate::netconf::rpc::create_subscription::{Selected, Subscription};
use crate::netconf::rpc::{self, Handled, RpcCtx};
use crate::notify::{control_notification, events, Event, SessionParms};

/// How long a client may take to send its hello.
const HELLO_TIMEOUT: Duration = Duration::from_secs(60);

/// Output waiting for the peer beyond which no new RPC is started and no
/// notification is taken from the bus: a peer that does not read holds at
/// most this much (plus one reply) here; its subscription lags instead.
const OUT_HIGH: usize = 256 * 1024;

/// Why a session ended (logged; also used by tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndReason {
    /// close-session.
    Closed,
    /// The peer closed the stream.
    Eof,
    Killed,
    Shutdown,
    IdleTimeout,
    HelloTimeout,
    BadHello(String),
    TooBig,
    BadFraming(String),
    MalformedMessage,
    Io(String),
}

impl EndReason {
    /// `termination-reason` of netconf-session-end (RFC 6470).
    pub fn termination_reason(&self) -> &'static str {
        match self {
            EndReason::Closed => "closed",
            EndReason::Killed => "killed",
            EndReason::Eof | EndReason::Io(_) => "dropped",
            EndReason::IdleTimeout | EndReason::HelloTimeout => "timeout",
            EndReason::BadHello(_) => "bad-hello",
            EndReason::Shutdown
            | EndReason::TooBig
            | EndReason::BadFraming(_)
            | EndReason::MalformedMessage => "other",
        }
    }
}

/// Runs a session to its end. The session's locks are released however it
/// ends (the registration guard's drop). `principal` is the authenticated
/// user with its configured groups; access control (NACM) is decided for it.
pub async fn run<S>(
    stream: S,
    agent: Arc<Agent>,
    principal: Principal,
    peer: Option<SocketAddr>,
    shutdown: broadcast::Receiver<()>,
) -> EndReason
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let guard = agent.register(&principal, peer);
    let span = tracing::info_span!("session", id = guard.id, user = %principal.name, peer = ?peer);
    let parms = guard.parms.clone();
    let reason = async {
        tracing::info!("session started");
        let session = Session {
            agent: agent.clone(),
            principal: Arc::new(principal),
            id: guard.id,
            parms: parms.clone(),
            stats: guard.stats.clone(),
        };
        let reason = session.serve(stream, &guard, shutdown).await;
        tracing::info!(reason = ?reason, "session ended");
        reason
    }
    .instrument(span)
    .await;
    let killed_by = match guard.killed_by.load(Ordering::Relaxed) {
        0 => None,
        k => Some(k),
    };
    agent.publish(events::session_end(
        &parms,
        killed_by.filter(|_| reason == EndReason::Killed),
        reason.termination_reason(),
    ));
    drop(guard);
    reason
}

struct Session {
    agent: Arc<Agent>,
    /// Shared with the RPC tasks on the blocking pool.
    principal: Arc<Principal>,
    id: u32,
    parms: SessionParms,
    stats: Arc<SessionStats>,
}

/// What woke the loop.
enum Wake {
    Read(std::io::Result<usize>),
    Wrote(std::io::Result<usize>),
    RpcDone(Result<Handled, tokio::task::JoinError>),
    Notification(Result<Arc<Event>, broadcast::error::RecvError>),
    StopTime,
    Killed,
    Shutdown,
    Timeout,
}

/// Bytes for the peer, written as it takes them.
struct Outbox {
    buf: Vec<u8>,
    /// Written so far.
    pos: usize,
    framing: Framing,
}

impl Outbox {
    fn pending(&self) -> usize {
        self.buf.len() - self.pos
    }
    fn push(&mut self, msg: &str) {
        framing::encode(self.framing, msg.as_bytes(), &mut self.buf);
    }
    fn advance(&mut self, n: usize) {
        self.pos += n;
        if self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
            if self.buf.capacity() > 1 << 20 {
                // Do not keep a big reply's buffer for an idle session.
                self.buf = Vec::with_capacity(8192);
            }
        }
    }
}

/// A subscription being served, counted in the session's `subscriptions`
/// while it lives (which suspends the idle timeout).
struct Active {
    sub: Subscription,
    /// Replayed events still to send, oldest first.
    replay: VecDeque<Arc<Event>>,
    replay_complete_sent: bool,
    /// Live events selected for this subscriber and not yet written; at
    /// most [`NOTIF_QUEUE`], the oldest give way.
    queue: VecDeque<(Arc<Event>, Selected)>,
    /// When stopTime comes, on the runtime's clock.
    stop_at: Option<Instant>,
    /// stopTime has come: send what is queued, then notificationComplete.
    stopped: bool,
    /// Dropping since the last notification went out (logged once).
    dropping: bool,
    stats: Arc<SessionStats>,
}

impl Active {
    fn new(mut sub: Subscription, stats: Arc<SessionStats>) -> Active {
        stats.subscriptions.fetch_add(1, Ordering::Relaxed);
        let stop_at = sub.stop.map(|s| {
            let left = (s - chrono::Utc::now()).to_std().unwrap_or(Duration::ZERO);
            Instant::now() + left
        });
        let replay = std::mem::take(&mut sub.replay).into();
        Active {
            sub,
            replay,
            replay_complete_sent: false,
            queue: VecDeque::new(),
            stop_at,
            stopped: false,
            dropping: false,
            stats,
        }
    }

    /// Replay is over (or there was none): stopTime applies.
    fn live(&self) -> bool {
        self.replay.is_empty() && (self.sub.start.is_none() || self.replay_complete_sent)
    }
}

impl Drop for Active {
    fn drop(&mut self) {
        self.stats.subscriptions.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Session {
    async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        stream: S,
        guard: &SessionGuard,
        mut shutdown: broadcast::Receiver<()>,
    ) -> EndReason {
        let stats = self.stats.clone();
        let limits = self.agent.limits.clone();
        // Input is read ahead (also while an RPC runs or output is stuck)
        // up to about one whole message; beyond that the peer waits (SSH
        // flow control) instead of costing memory here.
        let in_high = limits.max_message_size.saturating_add(64 * 1024);
        let (mut rd, mut wr) = tokio::io::split(stream);
        let mut decoder = Decoder::new(limits.max_message_size);
        let mut out = Outbox {
            buf: Vec::with_capacity(8192),
            pos: 0,
            framing: Framing::EndOfMessage,
        };
        out.push(&hello::server_hello(self.id));
        let mut hello_done = false;
        let mut buf = vec![0u8; 16 * 1024];
        let mut deadline = Instant::now() + HELLO_TIMEOUT;
        let mut in_flight: Option<JoinHandle<Handled>> = None;
        let mut active: Option<Active> = None;
        // Set once the session is to end after the output is written
        // (close-session, a malformed message).
        let mut closing: Option<EndReason> = None;
        loop {
            if let Some(reason) = &closing {
                if out.pending() == 0 {
                    return reason.clone();
                }
            }
            // Start the next request if we are free to.
            if closing.is_none() && in_flight.is_none() && out.pending() < OUT_HIGH {
                let msg = match decoder.next_message() {
                    Ok(m) => m,
                    Err(FrameError::TooBig { max }) => {
                        tracing::warn!(
                            max,
                            "message exceeds max-message-size; closing the session"
                        );
                        return EndReason::TooBig;
                    }
                    Err(FrameError::Invalid(why)) => {
                        tracing::warn!(why, "invalid framing; closing the session");
                        return EndReason::BadFraming(why.to_string());
                    }
                };
                if let Some(msg) = msg {
                    let Ok(text) = String::from_utf8(msg) else {
                        tracing::warn!("message is not UTF-8; closing the session");
                        return EndReason::MalformedMessage;
                    };
                    if !hello_done {
                        match hello::parse_client_hello(text.trim()) {
                            Ok(h) => {
                                hello_done = true;
                                if h.base11 {
                                    decoder.set_framing(Framing::Chunked);
                                    out.framing = Framing::Chunked;
                                }
                                tracing::debug!(base11 = h.base11, "client hello");
                                self.agent.publish(events::session_start(&self.parms));
                                deadline = idle_deadline(limits.idle_timeout);
                            }
                            Err(e) => {
                                tracing::warn!(error = %e, "bad client hello; closing the session");
                                self.agent
                                    .stats
                                    .in_bad_hellos
                                    .fetch_add(1, Ordering::Relaxed);
                                return EndReason::BadHello(e.to_string());
                            }
                        }
                    } else {
                        stats.in_rpcs.fetch_add(1, Ordering::Relaxed);
                        in_flight = Some(self.spawn_rpc(text, active.is_some()));
                    }
                    continue;
                }
            }
            if let Some(a) = active.as_mut() {
                if !self.pump(a, &mut out) {
                    active = None;
                }
            }

            // A notification subscription keeps an idle session open; the
            // idle time counts from when the subscription ends. So does a
            // running RPC.
            let busy = active.is_some() || in_flight.is_some();
            if hello_done && busy {
                deadline = idle_deadline(limits.idle_timeout);
            }
            let sleep_until = if hello_done && (busy || limits.idle_timeout.is_none()) {
                None
            } else {
                Some(deadline)
            };
            let reading = closing.is_none() && decoder.buffered() < in_high;
            let receiving = active.as_ref().is_some_and(|a| !a.stopped);
            let stop_at = active
                .as_ref()
                .filter(|a| a.live() && !a.stopped)
                .and_then(|a| a.stop_at);
            let pending = out.pending();
            let wake = tokio::select! {
                r = rd.read(&mut buf), if reading => Wake::Read(r),
                r = write_some(&mut wr, &out.buf[out.pos..]), if pending > 0 => Wake::Wrote(r),
                r = join_opt(&mut in_flight) => Wake::RpcDone(r),
                r = recv_opt(&mut active), if receiving => Wake::Notification(r),
                _ = sleep_opt(stop_at) => Wake::StopTime,
                _ = guard.kill.notified() => Wake::Killed,
                _ = shutdown.recv() => Wake::Shutdown,
                _ = sleep_opt(sleep_until) => Wake::Timeout,
            };
            match wake {
                Wake::Read(Ok(0)) => return EndReason::Eof,
                Wake::Read(Ok(n)) => decoder.extend(&buf[..n]),
                Wake::Read(Err(e)) => return EndReason::Io(e.to_string()),
                Wake::Wrote(Ok(0)) => return EndReason::Io("stream closed for writing".into()),
                Wake::Wrote(Ok(n)) => out.advance(n),
                Wake::Wrote(Err(e)) => return EndReason::Io(e.to_string()),
                Wake::RpcDone(r) => {
                    in_flight = None;
                    let handled = r.unwrap_or_else(|e| {
                        // The request is lost with the panic: answer so the
                        // client is not left waiting, without a message-id
                        // we no longer have.
                        tracing::error!(error = %e, "RPC handler panicked");
                        let err = RpcError::app(ErrorTag::OperationFailed, "internal error");
                        Handled {
                            reply: reply::errors(&ReplyAttrs::none(), &[err]),
                            close: false,
                            malformed: false,
                            subscription: None,
                        }
                    });
                    out.push(&handled.reply);
                    if let Some(sub) = handled.subscription {
                        active = Some(Active::new(*sub, stats.clone()));
                    }
                    if handled.close {
                        // close-session, or a message so broken that the
                        // stream cannot be trusted any more.
                        closing = Some(if handled.malformed {
                            EndReason::MalformedMessage
                        } else {
                            EndReason::Closed
                        });
                    }
                    deadline = idle_deadline(limits.idle_timeout);
                }
                Wake::Notification(Ok(ev)) => {
                    if let Some(a) = active.as_mut() {
                        self.enqueue(a, ev);
                    }
                }
                Wake::Notification(Err(broadcast::error::RecvError::Lagged(n))) => {
                    // The session task itself fell behind the bus.
                    if let Some(a) = active.as_mut() {
                        self.note_dropped(a, n);
                    }
                }
                Wake::Notification(Err(broadcast::error::RecvError::Closed)) => {
                    // The agent owns the sender; only at teardown.
                    active = None;
                }
                Wake::StopTime => {
                    if let Some(a) = active.as_mut() {
                        // What was published up to stopTime is delivered
                        // first (later events are not selected).
                        while let Ok(ev) = a.sub.rx.try_recv() {
                            self.enqueue(a, ev);
                        }
                        a.stopped = true;
                    }
                }
                Wake::Killed => return EndReason::Killed,
                Wake::Shutdown => return EndReason::Shutdown,
                Wake::Timeout if !hello_done => {
                    tracing::warn!("no client hello in time; closing the session");
                    return EndReason::HelloTimeout;
                }
                Wake::Timeout => {
                    tracing::info!("idle timeout; closing the session");
                    return EndReason::IdleTimeout;
                }
            }
        }
    }

    /// Runs one RPC on the blocking pool.
    fn spawn_rpc(&self, text: String, subscribed: bool) -> JoinHandle<Handled> {
        let agent = self.agent.clone();
        let principal = self.principal.clone();
        let id = self.id;
        let span = tracing::Span::current();
        tokio::task::spawn_blocking(move || {
            let _g = span.enter();
            let ctx = RpcCtx {
                agent: &agent,
                session_id: id,
                user: &principal.name,
                principal: &principal,
                subscribed,
            };
            rpc::handle_message(&ctx, &text)
        })
    }

    /// Takes a live event for this subscriber, if it selects it. A full
    /// queue loses its oldest event: the peer is not reading, and the
    /// agent must not hold more for it.
    fn enqueue(&self, a: &mut Active, ev: Arc<Event>) {
        if !self.may_receive(&ev) {
            return;
        }
        let Some(sel) = a.sub.select(&ev) else {
            return;
        };
        if a.queue.len() >= NOTIF_QUEUE {
            a.queue.pop_front();
            self.note_dropped(a, 1);
        }
        a.queue.push_back((ev, sel));
    }

    fn note_dropped(&self, a: &mut Active, n: u64) {
        if !a.dropping {
            tracing::warn!("subscriber not keeping up; dropping its oldest notifications");
            a.dropping = true;
        }
        self.stats
            .dropped_notifications
            .fetch_add(n, Ordering::Relaxed);
        self.agent.bus.note_dropped(n);
    }

    /// Moves notifications into the output while there is room: replayed
    /// events, `replayComplete`, queued live events, and after stopTime
    /// `notificationComplete`. Returns false when the subscription is over.
    fn pump(&self, a: &mut Active, out: &mut Outbox) -> bool {
        loop {
            if out.pending() >= OUT_HIGH {
                return true;
            }
            if let Some(ev) = a.replay.pop_front() {
                if self.may_receive(&ev) {
                    if let Some(sel) = a.sub.select(&ev) {
                        self.write_event(&ev, &sel, out);
                    }
                }
                continue;
            }
            if a.sub.start.is_some() && !a.replay_complete_sent {
                out.push(&control_notification("replayComplete"));
                self.count_sent();
                a.replay_complete_sent = true;
                continue;
            }
            if let Some((ev, sel)) = a.queue.pop_front() {
                self.write_event(&ev, &sel, out);
                a.dropping = false;
                continue;
            }
            break;
        }
        if a.stopped {
            out.push(&control_notification("notificationComplete"));
            self.count_sent();
            tracing::info!("subscription reached its stopTime");
            return false;
        }
        true
    }

    fn write_event(&self, ev: &Event, sel: &Selected, out: &mut Outbox) {
        match sel {
            Selected::Whole => out.push(&ev.to_xml()),
            Selected::Part(t) => out.push(&ev.to_xml_with(t)),
        }
        self.count_sent();
    }

    /// NACM for notifications (RFC 8341 §3.4.6): whether this session's
    /// user may receive `ev`; a denied one is silently not sent.
    fn may_receive(&self, ev: &Event) -> bool {
        self.agent
            .allow_notification_for(&self.principal, &ev.module, &ev.name)
    }

    fn count_sent(&self) {
        self.stats.out_notifications.fetch_add(1, Ordering::Relaxed);
        self.agent
            .stats
            .out_notifications
            .fetch_add(1, Ordering::Relaxed);
    }
}

/// Writes some of `buf`, flushing when all of it went out.
async fn write_some<W: AsyncWrite + Unpin>(wr: &mut W, buf: &[u8]) -> std::io::Result<usize> {
    let n = wr.write(buf).await?;
    if n == buf.len() {
        wr.flush().await?;
    }
    Ok(n)
}

async fn join_opt(h: &mut Option<JoinHandle<Handled>>) -> Result<Handled, tokio::task::JoinError> {
    match h {
        Some(h) => h.await,
        None => std::future::pending().await,
    }
}

async fn recv_opt(a: &mut Option<Active>) -> Result<Arc<Event>, broadcast::error::RecvError> {
    match a {
        Some(a) => a.sub.rx.recv().await,
        None => std::future::pending().await,
    }
}

fn idle_deadline(idle: Option<Duration>) -> Instant {
    // Far future when there is no idle timeout (the timer is then unused).
    Instant::now() + idle.unwrap_or(Duration::from_secs(86400 * 365))
}

async fn sleep_opt(until: Option<Instant>) {
    match until {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}
