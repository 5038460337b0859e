//! Test harness: the agent in-process on 127.0.0.1 with a random port and
//! a temporary state dir, and our own NETCONF client over SSH (russh).
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use apphost::apphost::Apphost;
use apphost::config::UserConfig;
use apphost::datastore::Datastores;
use apphost::netconf::agent::{Agent, Limits};
use apphost::netconf::framing::{self, Decoder, Framing};
use apphost::reconciler::{NoopReconciler, Reconciler};
use apphost::server::{self, ServerOptions};
use apphost::ssh::{self, auth::Users, SshContext};
use russh::keys::ssh_key::private::Ed25519Keypair;
use russh::keys::{PrivateKey, PrivateKeyWithHashAlg};
use russh::ChannelMsg;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub const NC: &str = "urn:ietf:params:xml:ns:netconf:base:1.0";
pub const BASE10: &str = "urn:ietf:params:netconf:base:1.0";
pub const BASE11: &str = "urn:ietf:params:netconf:base:1.1";

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A loopback port that was free a moment ago (for a daemon to listen on).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// An app-hosting configuration tree of `inner` (children of
/// `/app-hosting`), parsed and validated by libyang.
pub fn tree(inner: &str) -> yang2::data::DataTree<'static> {
    use yang2::data::{DataFormat, DataParserFlags, DataTree, DataValidationFlags};
    let s = format!("<app-hosting xmlns=\"urn:apphost:yang:app-hosting\">{inner}</app-hosting>\0");
    DataTree::parse_string(
        apphost::schema::context(),
        s.as_bytes(),
        DataFormat::XML,
        DataParserFlags::NO_STATE | DataParserFlags::STRICT,
        DataValidationFlags::NO_STATE,
    )
    .expect("valid config")
}

/// A fixed client key (seeded), authorized for user "keyuser".
pub fn client_key() -> PrivateKey {
    PrivateKey::from(Ed25519Keypair::from_seed(&[7u8; 32]))
}

pub struct TestAgent {
    pub port: u16,
    pub agent: Arc<Agent>,
    pub state_dir: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

pub struct Options {
    pub max_message_size: usize,
    pub max_sessions: usize,
    pub idle_timeout: Option<Duration>,
    pub reconciler: Arc<dyn Reconciler>,
    /// The app-hosting domain `attach APP` reaches (none by default).
    pub apphost: Option<Apphost>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            max_message_size: 16 * 1024 * 1024,
            max_sessions: 16,
            idle_timeout: None,
            reconciler: Arc::new(NoopReconciler),
            apphost: None,
        }
    }
}

impl TestAgent {
    pub async fn start() -> TestAgent {
        Self::start_with(Options::default()).await
    }

    pub async fn start_with(opts: Options) -> TestAgent {
        let state_dir = tempfile::tempdir().unwrap();
        let host_key = ssh::hostkey::load_or_create(state_dir.path()).unwrap();
        let pubkey = client_key().public_key().to_openssh().unwrap();
        let users = Users::from_config(&[
            UserConfig {
                name: "admin".into(),
                password: Some("admin".into()),
                password_hash: None,
                authorized_keys: vec![],
                groups: vec!["admin".into()],
            },
            UserConfig {
                name: "keyuser".into(),
                password: None,
                password_hash: None,
                authorized_keys: vec![pubkey],
                groups: vec![],
            },
        ]);
        let limits = Limits {
            max_message_size: opts.max_message_size,
            idle_timeout: opts.idle_timeout,
        };
        let agent = Agent::new(Datastores::new_empty(), opts.reconciler, limits);
        let (shutdown, _) = tokio::sync::broadcast::channel(1);
        let ctx = Arc::new(SshContext {
            agent: agent.clone(),
            users,
            shutdown,
            apphost: opts.apphost,
        });
        let listeners = server::bind(&["127.0.0.1:0".parse().unwrap()])
            .await
            .unwrap();
        let port = listeners[0].local_addr().unwrap().port();
        let mut cfg = ssh::server_config(host_key);
        // Keep failing-auth tests fast.
        cfg.auth_rejection_time = Duration::from_millis(100);
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let sopts = ServerOptions {
            max_sessions: opts.max_sessions,
            login_grace: Duration::from_secs(30),
        };
        let task = tokio::spawn(async move {
            server::run(listeners, ctx, Arc::new(cfg), sopts, async {
                let _ = stop_rx.await;
            })
            .await;
        });
        TestAgent {
            port,
            agent,
            state_dir,
            stop: Some(stop_tx),
            task: Some(task),
        }
    }

    pub async fn connect(&self) -> Client {
        Client::connect(
            self.port,
            Login::Password("admin", "admin"),
            &[BASE10, BASE11],
        )
        .await
        .unwrap()
    }

    pub async fn connect_10(&self) -> Client {
        Client::connect(self.port, Login::Password("admin", "admin"), &[BASE10])
            .await
            .unwrap()
    }

    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), t).await;
        }
    }
}

pub struct ClientHandler;

impl russh::client::Handler for ClientHandler {
    type Error = russh::Error;
    async fn check_server_key(
        &mut self,
        _key: &russh::keys::PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        Ok(true)
    }
}

pub enum Login<'a> {
    Password(&'a str, &'a str),
    Key(&'a str, Box<PrivateKey>),
}

/// A minimal NETCONF client.
pub struct Client {
    pub handle: russh::client::Handle<ClientHandler>,
    stream: russh::ChannelStream<russh::client::Msg>,
    decoder: Decoder,
    pub framing: Framing,
    pub session_id: u32,
    pub server_hello: String,
    next_id: u64,
}

/// SSH-level connection (authenticated) without a subsystem.
pub async fn ssh_connect(
    port: u16,
    login: Login<'_>,
) -> Result<russh::client::Handle<ClientHandler>, BoxError> {
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    ssh_connect_stream(stream, login).await
}

/// SSH-level connection over an already connected socket (e.g. one made
/// inside another network namespace).
pub async fn ssh_connect_stream(
    stream: tokio::net::TcpStream,
    login: Login<'_>,
) -> Result<russh::client::Handle<ClientHandler>, BoxError> {
    let config = Arc::new(russh::client::Config::default());
    let mut handle = russh::client::connect_stream(config, stream, ClientHandler).await?;
    let ok = match login {
        Login::Password(u, p) => handle.authenticate_password(u, p).await?.success(),
        Login::Key(u, k) => handle
            .authenticate_publickey(u, PrivateKeyWithHashAlg::new(Arc::new(*k), None))
            .await?
            .success(),
    };
    if !ok {
        return Err("authentication failed".into());
    }
    Ok(handle)
}

/// Opens a session channel and requests `subsystem`; Err if refused.
pub async fn open_subsystem(
    handle: &russh::client::Handle<ClientHandler>,
    subsystem: &str,
) -> Result<russh::Channel<russh::client::Msg>, BoxError> {
    let mut ch = handle.channel_open_session().await?;
    ch.request_subsystem(true, subsystem).await?;
    loop {
        match tokio::time::timeout(Duration::from_secs(5), ch.wait()).await? {
            Some(ChannelMsg::Success) => return Ok(ch),
            Some(ChannelMsg::Failure) => return Err("subsystem refused".into()),
            Some(_) => continue,
            None => return Err("channel closed".into()),
        }
    }
}

impl Client {
    /// Connects, sends our hello with `caps`, reads the server's.
    pub async fn connect(port: u16, login: Login<'_>, caps: &[&str]) -> Result<Client, BoxError> {
        let handle = ssh_connect(port, login).await?;
        Self::over(handle, caps).await
    }

    /// As [`Client::connect`] over an already connected socket.
    pub async fn connect_stream(
        stream: tokio::net::TcpStream,
        login: Login<'_>,
        caps: &[&str],
    ) -> Result<Client, BoxError> {
        let handle = ssh_connect_stream(stream, login).await?;
        Self::over(handle, caps).await
    }

    async fn over(
        handle: russh::client::Handle<ClientHandler>,
        caps: &[&str],
    ) -> Result<Client, BoxError> {
        let ch = open_subsystem(&handle, "netconf").await?;
        let mut c = Client {
            handle,
            stream: ch.into_stream(),
            decoder: Decoder::new(64 * 1024 * 1024),
            framing: Framing::EndOfMessage,
            session_id: 0,
            server_hello: String::new(),
            next_id: 100,
        };
        let hello = c.read_message().await?.ok_or("no server hello")?;
        let mut h = format!("<hello xmlns=\"{NC}\"><capabilities>");
        for cap in caps {
            h.push_str(&format!("<capability>{cap}</capability>"));
        }
        h.push_str("</capabilities></hello>");
        c.send_raw_framed(&h).await?;
        {
            let doc = roxmltree::Document::parse(&hello)?;
            c.session_id = doc
                .descendants()
                .find(|n| n.has_tag_name((NC, "session-id")))
                .and_then(|n| n.text())
                .ok_or("no session-id")?
                .parse()?;
            let server11 = doc.descendants().any(|n| n.text() == Some(BASE11));
            if server11 && caps.contains(&BASE11) {
                c.framing = Framing::Chunked;
                c.decoder.set_framing(Framing::Chunked);
            }
        }
        c.server_hello = hello;
        Ok(c)
    }

    /// Sends `text` framed with the session's current framing.
    pub async fn send_raw_framed(&mut self, text: &str) -> Result<(), BoxError> {
        let mut out = Vec::new();
        framing::encode(self.framing, text.as_bytes(), &mut out);
        self.send_bytes(&out).await
    }

    pub async fn send_bytes(&mut self, bytes: &[u8]) -> Result<(), BoxError> {
        self.stream.write_all(bytes).await?;
        self.stream.flush().await?;
        Ok(())
    }

    /// The next whole message; `Ok(None)` when the server closed.
    pub async fn read_message(&mut self) -> Result<Option<String>, BoxError> {
        let mut buf = vec![0u8; 65536];
        loop {
            if let Some(m) = self.decoder.next_message()? {
                return Ok(Some(String::from_utf8(m)?));
            }
            let n =
                tokio::time::timeout(Duration::from_secs(10), self.stream.read(&mut buf)).await??;
            if n == 0 {
                return Ok(None);
            }
            self.decoder.extend(&buf[..n]);
        }
    }

    /// Sends `<rpc message-id=N>BODY</rpc>` and returns the reply.
    pub async fn rpc(&mut self, body: &str) -> Result<String, BoxError> {
        self.next_id += 1;
        let msg = format!(
            "<rpc xmlns=\"{NC}\" message-id=\"{}\">{body}</rpc>",
            self.next_id
        );
        self.send_raw_framed(&msg).await?;
        let reply = self.read_message().await?.ok_or("session closed")?;
        let doc = roxmltree::Document::parse(&reply)?;
        let mid = doc.root_element().attribute("message-id");
        if mid != Some(self.next_id.to_string().as_str()) {
            return Err(format!(
                "reply message-id {mid:?}, expected {}: {reply}",
                self.next_id
            )
            .into());
        }
        Ok(reply)
    }

    /// Waits until the server closes the stream (`true`) or 5 s pass.
    pub async fn closed_by_server(&mut self) -> bool {
        let mut buf = vec![0u8; 4096];
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            match tokio::time::timeout_at(deadline, self.stream.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return true,
                Ok(Ok(_)) => continue,
                Err(_) => return false,
            }
        }
    }

    pub async fn disconnect(self) {
        let _ = self
            .handle
            .disconnect(russh::Disconnect::ByApplication, "", "en")
            .await;
    }
}

/// Whether `reply` is `<rpc-reply><ok/></rpc-reply>`.
pub fn is_ok(reply: &str) -> bool {
    roxmltree::Document::parse(reply)
        .is_ok_and(|d| d.descendants().any(|n| n.has_tag_name((NC, "ok"))))
}

/// The text of the first element named `name` (any namespace).
pub fn text_of(reply: &str, name: &str) -> Option<String> {
    let d = roxmltree::Document::parse(reply).ok()?;
    let t = d
        .descendants()
        .find(|n| n.tag_name().name() == name)?
        .text()
        .map(str::to_string);
    t
}

/// The inner XML of `<data>` as sent.
pub fn data_of(reply: &str) -> Option<String> {
    let start = reply.find("<data>")? + "<data>".len();
    let end = reply.rfind("</data>")?;
    Some(reply[start..end].to_string())
}
