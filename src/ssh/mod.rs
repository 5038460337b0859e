//! The SSH side (RFC 6242): authentication, the `netconf` subsystem and the
//! `attach APP` exec request. Each accepted `netconf` channel becomes a
//! NETCONF session task reading the channel as a byte stream; each `attach`
//! channel a task proxying a shell in the app's container ([`attach`]).

pub mod attach;
pub mod auth;
pub mod hostkey;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use russh::keys::PrivateKey;
use std::borrow::Cow;

use russh::server::{
    Auth, ChannelOpenHandle, Msg, PublicKeyOffer, Response, Session, VerifiedPublicKey,
};
use russh::{Channel, ChannelId, Disconnect, MethodKind, MethodSet};
use tokio::sync::broadcast;

use crate::apphost::Apphost;
use crate::nacm::Principal;
use crate::netconf::agent::Agent;
use attach::PtyRequest;
use auth::Users;

/// What every connection handler shares.
pub struct SshContext {
    pub agent: Arc<Agent>,
    pub users: Users,
    /// Sessions listen here for the daemon's shutdown.
    pub shutdown: broadcast::Sender<()>,
    /// The app-hosting domain, for `attach APP`; `None` when it could not be
    /// set up (attach then says so).
    pub apphost: Option<Apphost>,
}

/// The russh server configuration for our use.
pub fn server_config(host_key: PrivateKey) -> russh::server::Config {
    russh::server::Config {
        server_id: russh::SshId::Standard(
            concat!("SSH-2.0-apphostd_", env!("CARGO_PKG_VERSION")).into(),
        ),
        methods: methods(),
        // Every failed attempt costs the client this long.
        auth_rejection_time: Duration::from_secs(1),
        // OpenSSH probes with "none" first; that is not a failed guess.
        auth_rejection_time_initial: Some(Duration::from_millis(0)),
        keys: vec![host_key],
        max_auth_attempts: 6,
        // Idle sessions are ended by the NETCONF session's own timer, which
        // spares sessions holding a notification subscription.
        inactivity_timeout: None,
        // Dead peers (and the locks they hold) are noticed by keepalives.
        keepalive_interval: Some(Duration::from_secs(60)),
        keepalive_max: 3,
        nodelay: true,
        ..Default::default()
    }
}

fn methods() -> MethodSet {
    MethodSet::from(
        &[
            MethodKind::PublicKey,
            MethodKind::Password,
            MethodKind::KeyboardInteractive,
        ][..],
    )
}

/// A rejection that keeps offering every method: `Auth::reject()` would
/// remove the failed method and keep the client from retrying.
fn reject() -> Auth {
    Auth::Reject {
        proceed_with_methods: Some(methods()),
        partial_success: false,
    }
}

/// Per-connection state.
pub struct ConnHandler {
    ctx: Arc<SshContext>,
    peer: Option<SocketAddr>,
    user: Option<String>,
    /// Session channels opened but not yet given a subsystem or command.
    channels: HashMap<ChannelId, Channel<Msg>>,
    /// Terminals asked for (`pty-req`) on channels not yet given a command.
    ptys: HashMap<ChannelId, PtyRequest>,
    /// Set once a `netconf` subsystem or an attach runs (ends the login
    /// grace period).
    pub started: Arc<AtomicBool>,
    /// Running NETCONF sessions on this connection.
    active: Arc<AtomicUsize>,
}

impl ConnHandler {
    pub fn new(ctx: Arc<SshContext>, peer: Option<SocketAddr>) -> Self {
        ConnHandler {
            ctx,
            peer,
            user: None,
            channels: HashMap::new(),
            ptys: HashMap::new(),
            started: Arc::new(AtomicBool::new(false)),
            active: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// The authenticated user with the groups the agent config gives it,
    /// as access control sees it.
    fn principal(&self, user: &str) -> Principal {
        Principal {
            name: user.to_string(),
            groups: self
                .ctx
                .users
                .get(user)
                .map(|u| u.groups.clone())
                .unwrap_or_default(),
        }
    }

    fn accepted(&mut self, user: &str, method: &str) -> Auth {
        tracing::info!(peer = ?self.peer, user, method, "authenticated");
        self.user = Some(user.to_string());
        Auth::Accept
    }
}

impl russh::server::Handler for ConnHandler {
    type Error = russh::Error;

    async fn auth_password(&mut self, user: &str, password: &str) -> Result<Auth, Self::Error> {
        if self.ctx.users.check_password(user, password) {
            return Ok(self.accepted(user, "password"));
        }
        tracing::warn!(peer = ?self.peer, user, "failed password authentication");
        Ok(reject())
    }

    /// The password asked as a keyboard-interactive prompt (netopeer2-cli
    /// and other libssh clients prefer it).
    async fn auth_keyboard_interactive<'a>(
        &'a mut self,
        user: &str,
        _submethods: &str,
        response: Option<Response<'a>>,
    ) -> Result<Auth, Self::Error> {
        let Some(mut response) = response else {
            return Ok(Auth::Partial {
                name: Cow::Borrowed(""),
                instructions: Cow::Borrowed(""),
                prompts: Cow::Owned(vec![(Cow::Borrowed("Password: "), false)]),
            });
        };
        let password = response
            .next()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        if self.ctx.users.check_password(user, &password) {
            return Ok(self.accepted(user, "keyboard-interactive"));
        }
        tracing::warn!(peer = ?self.peer, user, "failed keyboard-interactive authentication");
        Ok(reject())
    }

    async fn auth_publickey_offered(
        &mut self,
        user: &str,
        offer: PublicKeyOffer<'_>,
    ) -> Result<Auth, Self::Error> {
        if self.ctx.users.check_key(user, offer.public_key) {
            Ok(Auth::Accept)
        } else {
            tracing::debug!(peer = ?self.peer, user, "offered public key not authorized");
            Ok(reject())
        }
    }

    async fn auth_publickey(
        &mut self,
        user: &str,
        key: VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        if self.ctx.users.check_key(user, key.public_key) {
            return Ok(self.accepted(user, "publickey"));
        }
        tracing::warn!(peer = ?self.peer, user, "failed public key authentication");
        Ok(reject())
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        // Kept until the subsystem request hands it to the session task.
        self.channels.insert(channel.id(), channel);
        reply.accept().await;
        Ok(())
    }

    async fn data(
        &mut self,
        _channel: ChannelId,
        _data: &[u8],
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        // russh delivers channel data here too; the session task reads the
        // same bytes from the channel stream.
        Ok(())
    }

    async fn subsystem_request(
        &mut self,
        channel_id: ChannelId,
        name: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let (Some(user), true) = (self.user.clone(), name == "netconf") else {
            tracing::info!(peer = ?self.peer, subsystem = name, "subsystem refused");
            // Dropping the channel would leave its buffer unread.
            self.channels.remove(&channel_id);
            session.channel_failure(channel_id)?;
            return Ok(());
        };
        let Some(channel) = self.channels.remove(&channel_id) else {
            session.channel_failure(channel_id)?;
            return Ok(());
        };
        session.channel_success(channel_id)?;
        self.started.store(true, Ordering::Relaxed);
        self.active.fetch_add(1, Ordering::Relaxed);
        let principal = self.principal(&user);
        let agent = self.ctx.agent.clone();
        let shutdown = self.ctx.shutdown.subscribe();
        let peer = self.peer;
        let handle = session.handle();
        let active = self.active.clone();
        tokio::spawn(async move {
            let stream = channel.into_stream();
            let _ = crate::netconf::session::run(stream, agent, principal, peer, shutdown).await;
            // One NETCONF session per connection is the norm: when the last
            // one ends, end the connection too (and free its slot).
            if active.fetch_sub(1, Ordering::Relaxed) == 1 {
                let _ = handle
                    .disconnect(
                        Disconnect::ByApplication,
                        "NETCONF session ended".into(),
                        "en".into(),
                    )
                    .await;
            }
        });
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn pty_request(
        &mut self,
        channel: ChannelId,
        term: &str,
        col_width: u32,
        row_height: u32,
        pix_width: u32,
        pix_height: u32,
        _modes: &[(russh::Pty, u32)],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        if !self.channels.contains_key(&channel) {
            session.channel_failure(channel)?;
            return Ok(());
        }
        self.ptys.insert(
            channel,
            PtyRequest {
                term: term.to_string(),
                cols: col_width,
                rows: row_height,
                pix_width,
                pix_height,
            },
        );
        session.channel_success(channel)?;
        Ok(())
    }

    async fn window_change_request(
        &mut self,
        channel: ChannelId,
        col_width: u32,
        row_height: u32,
        pix_width: u32,
        pix_height: u32,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        // Before the command runs, the size is remembered for the pty to
        // come; afterwards the attach task sees the same request on its
        // channel and resizes the pty itself.
        if let Some(p) = self.ptys.get_mut(&channel) {
            (p.cols, p.rows, p.pix_width, p.pix_height) =
                (col_width, row_height, pix_width, pix_height);
        }
        Ok(())
    }

    async fn exec_request(
        &mut self,
        channel_id: ChannelId,
        data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let pty = self.ptys.remove(&channel_id);
        let (Some(user), Some(channel)) = (self.user.clone(), self.channels.remove(&channel_id))
        else {
            session.channel_failure(channel_id)?;
            return Ok(());
        };
        // Accepted in every case: a refusal is a line on stderr and exit
        // status 1, which ssh shows, rather than a bare channel failure.
        session.channel_success(channel_id)?;
        let tty = pty.is_some();
        let app = match attach::parse_command(data) {
            Ok(app) => app,
            Err(e) => {
                tracing::info!(peer = ?self.peer, user, error = %e, "exec request refused");
                tokio::spawn(attach::refuse(channel, e, tty));
                return Ok(());
            }
        };
        let principal = self.principal(&user);
        let agent = self.ctx.agent.clone();
        let apphost = self.ctx.apphost.clone();
        let started = self.started.clone();
        let span = tracing::info_span!("attach", user = %user, app = %app, peer = ?self.peer, tty);
        let task = async move {
            // Blocking: NACM reads running, the app's state waits for the
            // reconciler's table lock.
            let prepared = {
                let app = app.clone();
                let term = pty.as_ref().map(|p| p.term.clone());
                tokio::task::spawn_blocking(move || {
                    attach::prepare(&agent, apphost.as_ref(), &principal, &app, term.as_deref())
                })
                .await
            };
            match prepared {
                Ok(Ok(cmd)) => {
                    // An attached shell is a session: the login grace timer
                    // must not end it (a refused attach does not count).
                    started.store(true, Ordering::Relaxed);
                    attach::run(channel, cmd, pty).await
                }
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "attach refused");
                    attach::refuse(channel, e, tty).await;
                }
                Err(e) => {
                    tracing::error!(error = %e, "attach preparation panicked");
                    let e = attach::AttachError::Io(std::io::Error::other("internal error"));
                    attach::refuse(channel, e, tty).await;
                }
            }
        };
        tokio::spawn(tracing::Instrument::instrument(task, span));
        Ok(())
    }

    async fn shell_request(
        &mut self,
        channel_id: ChannelId,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let tty = self.ptys.remove(&channel_id).is_some();
        let Some(channel) = self.channels.remove(&channel_id) else {
            session.channel_failure(channel_id)?;
            return Ok(());
        };
        session.channel_success(channel_id)?;
        tracing::info!(peer = ?self.peer, user = ?self.user, "shell request refused");
        tokio::spawn(attach::refuse(channel, attach::AttachError::NoShell, tty));
        Ok(())
    }

    async fn channel_close(
        &mut self,
        channel: ChannelId,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.channels.remove(&channel);
        self.ptys.remove(&channel);
        Ok(())
    }
}
