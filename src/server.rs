//! The accept loop: one per listen address, a semaphore bounding the
//! connections, broadcast shutdown, and a drain of live connections.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use russh::Disconnect;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Semaphore};

use crate::ssh::{ConnHandler, SshContext};

/// Server settings beyond the SSH configuration.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    pub max_sessions: usize,
    /// Time to authenticate and start the `netconf` subsystem.
    pub login_grace: Duration,
}

/// Binds every address; fails if one cannot be bound.
pub async fn bind(addrs: &[SocketAddr]) -> std::io::Result<Vec<TcpListener>> {
    let mut v = Vec::new();
    for a in addrs {
        let l = TcpListener::bind(a)
            .await
            .map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen on {a}: {e}")))?;
        tracing::info!(addr = %l.local_addr()?, "listening");
        v.push(l);
    }
    Ok(v)
}

/// Serves until `shutdown` completes, then asks every session to end and
/// waits (bounded) for the connections to drain.
pub async fn run(
    listeners: Vec<TcpListener>,
    ctx: Arc<SshContext>,
    ssh_config: Arc<russh::server::Config>,
    opts: ServerOptions,
    shutdown: impl Future<Output = ()>,
) {
    let limit = Arc::new(Semaphore::new(opts.max_sessions));
    // Every connection task holds a sender; recv() returns None once all
    // are gone, i.e. the connections have drained.
    let (done_tx, mut done_rx) = mpsc::channel::<()>(1);
    let accepts = listeners.into_iter().map(|l| {
        let ctx = ctx.clone();
        let ssh_config = ssh_config.clone();
        let limit = limit.clone();
        let done_tx = done_tx.clone();
        let opts = opts.clone();
        Box::pin(async move { accept_loop(l, ctx, ssh_config, limit, done_tx, opts).await })
    });
    let accepts: Vec<_> = accepts.collect();
    tokio::select! {
        _ = futures::future::join_all(accepts) => {}
        _ = shutdown => tracing::info!("shutting down"),
    }
    let _ = ctx.shutdown.send(());
    ctx.agent.kill_all();
    drop(done_tx);
    if tokio::time::timeout(Duration::from_secs(5), done_rx.recv())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after 5 s; exiting anyway");
    }
}

async fn accept_loop(
    listener: TcpListener,
    ctx: Arc<SshContext>,
    ssh_config: Arc<russh::server::Config>,
    limit: Arc<Semaphore>,
    done_tx: mpsc::Sender<()>,
    opts: ServerOptions,
) {
    loop {
        // Taken before accept: beyond the limit, clients wait in the
        // kernel backlog instead of costing memory here.
        let Ok(permit) = limit.clone().acquire_owned().await else {
            return; // the semaphore is never closed
        };
        let (socket, peer) = match accept(&listener).await {
            Some(s) => s,
            None => return,
        };
        let ctx = ctx.clone();
        let ssh_config = ssh_config.clone();
        let done_tx = done_tx.clone();
        let grace = opts.login_grace;
        tokio::spawn(async move {
            let _permit = permit;
            let _done = done_tx;
            connection(socket, peer, ctx, ssh_config, grace).await;
        });
    }
}

/// Accepts with exponential backoff on errors (e.g. out of descriptors).
async fn accept(listener: &TcpListener) -> Option<(TcpStream, SocketAddr)> {
    let mut backoff = 1;
    loop {
        match listener.accept().await {
            Ok(s) => return Some(s),
            Err(e) => {
                if backoff > 64 {
                    tracing::error!(error = %e, "accept keeps failing; stopping this listener");
                    return None;
                }
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_secs(backoff)).await;
                backoff *= 2;
            }
        }
    }
}

async fn connection(
    socket: TcpStream,
    peer: SocketAddr,
    ctx: Arc<SshContext>,
    ssh_config: Arc<russh::server::Config>,
    grace: Duration,
) {
    let _ = socket.set_nodelay(true);
    let mut shutdown = ctx.shutdown.subscribe();
    let handler = ConnHandler::new(ctx, Some(peer));
    let started = handler.started.clone();
    tracing::debug!(%peer, "connection");
    let session = match russh::server::run_stream(ssh_config, socket, handler).await {
        Ok(s) => s,
        Err(e) => {
            tracing::debug!(%peer, error = %e, "SSH setup failed");
            return;
        }
    };
    let handle = session.handle();
    tokio::pin!(session);
    let grace_timer = tokio::time::sleep(grace);
    tokio::pin!(grace_timer);
    let mut grace_over = false;
    loop {
        tokio::select! {
            r = &mut session => {
                if let Err(e) = r {
                    tracing::debug!(%peer, error = %e, "connection ended with error");
                }
                return;
            }
            _ = shutdown.recv() => {
                let _ = handle.disconnect(Disconnect::ByApplication, "server shutting down".into(), "en".into()).await;
                return;
            }
            _ = &mut grace_timer, if !grace_over => {
                grace_over = true;
                if !started.load(Ordering::Relaxed) {
                    tracing::warn!(%peer, "no NETCONF session within the login grace time; disconnecting");
                    let _ = handle.disconnect(Disconnect::ByApplication, "login grace time exceeded".into(), "en".into()).await;
                    return;
                }
            }
        }
    }
}
