//! One NETCONF session over any byte stream (the SSH channel in the
//! daemon, a duplex pipe in tests): hello exchange, framing switch, the rpc
//! loop, idle timeout, kill and shutdown.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::broadcast;
use tokio::time::Instant;
use tracing::Instrument;

use crate::nacm::Principal;
use crate::netconf::agent::Agent;
use crate::netconf::framing::{self, Decoder, FrameError, Framing};
use crate::netconf::hello;
use crate::netconf::rpc::{self, RpcCtx};

/// How long a client may take to send its hello.
const HELLO_TIMEOUT: Duration = Duration::from_secs(60);

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
    let id = guard.id;
    let reason = async {
        tracing::info!("session started");
        let reason = Session {
            stream,
            agent: agent.clone(),
            principal: &principal,
            id,
            shutdown,
        }
        .serve(&guard.kill, &guard.stats)
        .await;
        tracing::info!(reason = ?reason, "session ended");
        reason
    }
    .instrument(span)
    .await;
    drop(guard);
    reason
}

struct Session<'a, S> {
    stream: S,
    agent: Arc<Agent>,
    principal: &'a Principal,
    id: u32,
    shutdown: broadcast::Receiver<()>,
}

/// What the next input event was.
enum Event {
    Data(usize),
    Killed,
    Shutdown,
    Timeout,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Session<'_, S> {
    async fn serve(
        mut self,
        kill: &tokio::sync::Notify,
        stats: &crate::netconf::agent::SessionStats,
    ) -> EndReason {
        let limits = self.agent.limits.clone();
        let mut decoder = Decoder::new(limits.max_message_size);
        let mut out_framing = Framing::EndOfMessage;
        let mut out = Vec::with_capacity(8192);
        framing::encode(
            out_framing,
            hello::server_hello(self.id).as_bytes(),
            &mut out,
        );
        if let Err(e) = self.write(&out).await {
            return EndReason::Io(e.to_string());
        }
        let mut hello_done = false;
        let mut buf = vec![0u8; 16 * 1024];
        let mut deadline = Instant::now() + HELLO_TIMEOUT;
        loop {
            // Drain every whole message already buffered.
            loop {
                let msg = match decoder.next_message() {
                    Ok(Some(m)) => m,
                    Ok(None) => break,
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
                let Ok(text) = std::str::from_utf8(&msg) else {
                    tracing::warn!("message is not UTF-8; closing the session");
                    return EndReason::MalformedMessage;
                };
                if !hello_done {
                    match hello::parse_client_hello(text.trim()) {
                        Ok(h) => {
                            hello_done = true;
                            if h.base11 {
                                decoder.set_framing(Framing::Chunked);
                                out_framing = Framing::Chunked;
                            }
                            tracing::debug!(base11 = h.base11, "client hello");
                            deadline = idle_deadline(limits.idle_timeout);
                            continue;
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
                }
                stats.in_rpcs.fetch_add(1, Ordering::Relaxed);
                let handled = {
                    let ctx = RpcCtx {
                        agent: &self.agent,
                        session_id: self.id,
                        user: &self.principal.name,
                        principal: self.principal,
                    };
                    rpc::handle_message(&ctx, text)
                };
                drop(msg);
                out.clear();
                framing::encode(out_framing, handled.reply.as_bytes(), &mut out);
                if let Err(e) = self.write(&out).await {
                    return EndReason::Io(e.to_string());
                }
                if out.capacity() > 1 << 20 {
                    // Do not keep a big reply's buffer for an idle session.
                    out = Vec::with_capacity(8192);
                }
                if handled.close {
                    // close-session, or a message so broken that the
                    // stream cannot be trusted any more.
                    return if handled.malformed {
                        EndReason::MalformedMessage
                    } else {
                        EndReason::Closed
                    };
                }
                deadline = idle_deadline(limits.idle_timeout);
            }
            // A notification subscription keeps an idle session open; the
            // idle time counts from when the subscription ends.
            let subscribed = stats.subscriptions.load(Ordering::Relaxed) > 0;
            if hello_done && subscribed {
                deadline = idle_deadline(limits.idle_timeout);
            }
            let sleep_until = if hello_done && (subscribed || limits.idle_timeout.is_none()) {
                None
            } else {
                Some(deadline)
            };
            let ev = tokio::select! {
                r = self.stream.read(&mut buf) => match r {
                    Ok(n) => Event::Data(n),
                    Err(e) => return EndReason::Io(e.to_string()),
                },
                _ = kill.notified() => Event::Killed,
                _ = self.shutdown.recv() => Event::Shutdown,
                _ = sleep_opt(sleep_until) => Event::Timeout,
            };
            match ev {
                Event::Data(0) => return EndReason::Eof,
                Event::Data(n) => decoder.extend(&buf[..n]),
                Event::Killed => return EndReason::Killed,
                Event::Shutdown => return EndReason::Shutdown,
                Event::Timeout if !hello_done => {
                    tracing::warn!("no client hello in time; closing the session");
                    return EndReason::HelloTimeout;
                }
                Event::Timeout => {
                    tracing::info!("idle timeout; closing the session");
                    return EndReason::IdleTimeout;
                }
            }
        }
    }

    async fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes).await?;
        self.stream.flush().await
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
