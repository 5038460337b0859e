//! `attach APP` over SSH (the seed's `attach`): an SSH `exec` request on the
//! same server as NETCONF runs the app's configured shell inside its running
//! container through the runtime's `exec`, on a pseudo-terminal when the
//! client asked for one (`ssh -t`), else on pipes (stderr as extended data).
//!
//! Authorised by NACM as the operation `attach` of module `app-hosting`.
//! Every refusal is one line on stderr and exit status 1, never a hung
//! channel. Closing the channel ends the shell.

use std::io::{self, Read as _, Write as _};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use nix::fcntl::OFlag;
use nix::pty::PtyMaster;
use russh::server::Msg;
use russh::{Channel, ChannelMsg, ChannelReadHalf, ChannelWriteHalf};
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::process::Child;

use crate::apphost::Apphost;
use crate::error::RpcError;
use crate::nacm::Principal;
use crate::netconf::agent::Agent;

/// The YANG module and operation NACM rules name to grant or deny attach.
pub const NACM_MODULE: &str = "app-hosting";
pub const NACM_RPC: &str = "attach";

/// Input waiting for the shell beyond this is not read from the channel
/// (backpressure instead of unbounded buffering).
const MAX_PENDING_INPUT: usize = 64 * 1024;
/// After the shell exits, output still in flight gets this long.
const DRAIN_TIME: Duration = Duration::from_secs(1);
/// After the channel closes, the runtime's exec gets this long to end the
/// shell (it forwards our SIGHUP) before it is killed.
const HANGUP_GRACE: Duration = Duration::from_secs(2);

/// What a `pty-req` asked for (RFC 4254 §6.2), kept until the exec request
/// and updated by `window-change` until then.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PtyRequest {
    pub term: String,
    pub cols: u32,
    pub rows: u32,
    pub pix_width: u32,
    pub pix_height: u32,
}

/// Why an attach did not run (or broke). The text is what the user reads on
/// stderr.
#[derive(Debug, thiserror::Error)]
pub enum AttachError {
    #[error("apphostd runs no command '{0}': the only command is 'attach APP' (NETCONF is the 'netconf' subsystem)")]
    UnknownCommand(String),
    #[error("usage: attach APP")]
    Usage,
    #[error("apphostd has no login shell: use 'ssh -t USER@HOST attach APP' to attach to an application, or the 'netconf' subsystem")]
    NoShell,
    #[error("attach {app}: {message}")]
    Denied { app: String, message: String },
    #[error("attach {app}: application hosting is not available on this device")]
    Unavailable { app: String },
    #[error("attach {app}: {message}")]
    App { app: String, message: String },
    #[error("attach: cannot run the shell: {0}")]
    Io(#[from] io::Error),
    #[error("attach: SSH channel: {0}")]
    Ssh(#[from] russh::Error),
}

impl AttachError {
    fn from_rpc(app: &str, e: RpcError, denied: bool) -> Self {
        let message = e.message.unwrap_or_else(|| e.tag.as_str().to_string());
        if denied {
            AttachError::Denied {
                app: app.into(),
                message,
            }
        } else {
            AttachError::App {
                app: app.into(),
                message,
            }
        }
    }
}

/// Parses an exec request's command: `attach APP`, nothing else.
pub fn parse_command(raw: &[u8]) -> Result<String, AttachError> {
    let text = String::from_utf8_lossy(raw);
    let mut words = text.split_whitespace();
    match (words.next(), words.next(), words.next()) {
        (Some("attach"), Some(app), None) if is_app_name(app) => Ok(app.to_string()),
        // Not an app name (typedef app-name), so not configured; echoed
        // escaped, as below.
        (Some("attach"), Some(app), None) => {
            let app: String = app
                .chars()
                .take(64)
                .collect::<String>()
                .escape_default()
                .to_string();
            Err(AttachError::App {
                message: format!("no app '{app}' is configured"),
                app,
            })
        }
        (Some("attach"), _, _) => Err(AttachError::Usage),
        // Echoed back escaped: the client's terminal shows it, so no
        // control characters from the peer.
        _ => Err(AttachError::UnknownCommand(
            text.trim()
                .chars()
                .take(64)
                .collect::<String>()
                .escape_default()
                .to_string(),
        )),
    }
}

/// Whether `s` can be an app's name (typedef `app-name`:
/// `[A-Za-z0-9][A-Za-z0-9_.-]*`, 1..64 characters).
fn is_app_name(s: &str) -> bool {
    let mut chars = s.chars();
    s.len() <= 64
        && chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

/// NACM for attach: may `principal` run the operation `app-hosting:attach`?
/// (The rules of the current running, cached by the agent.)
pub fn authorize(agent: &Agent, principal: &Principal) -> Result<(), RpcError> {
    agent.nacm().check_rpc(principal, NACM_MODULE, NACM_RPC)
}

/// Everything checked before the shell runs: access, the app, its state.
/// `term` is the terminal type when the client asked for a pty. Returns the
/// command to run.
pub fn prepare(
    agent: &Agent,
    apphost: Option<&Apphost>,
    principal: &Principal,
    app: &str,
    term: Option<&str>,
) -> Result<std::process::Command, AttachError> {
    // Access first: a denied user learns nothing about which apps exist.
    authorize(agent, principal).map_err(|e| AttachError::from_rpc(app, e, true))?;
    let apphost = apphost.ok_or_else(|| AttachError::Unavailable { app: app.into() })?;
    apphost
        .attach_command(app, term)
        .map_err(|e| AttachError::from_rpc(app, e, false))
}

/// Tells the user why, on stderr, then exit status 1 and close.
pub async fn refuse(channel: Channel<Msg>, err: AttachError, tty: bool) {
    let (_rx, tx) = channel.split();
    refuse_on(&tx, &err, tty).await;
}

async fn refuse_on(tx: &ChannelWriteHalf<Msg>, err: &AttachError, tty: bool) {
    // A pty client has its terminal in raw mode: it needs the CR.
    let eol = if tty { "\r\n" } else { "\n" };
    let _ = tx
        .extended_data_bytes(1, format!("{err}{eol}").into_bytes())
        .await;
    finish(tx, 1).await;
}

async fn finish(tx: &ChannelWriteHalf<Msg>, status: u32) {
    let _ = tx.exit_status(status).await;
    let _ = tx.eof().await;
    let _ = tx.close().await;
}

/// Runs `cmd` for the channel until the shell exits (exit status sent, then
/// EOF and close) or the client closes the channel (the shell is ended).
pub async fn run(channel: Channel<Msg>, cmd: std::process::Command, pty: Option<PtyRequest>) {
    let tty = pty.is_some();
    let (mut rx, tx) = channel.split();
    let result = match pty {
        Some(p) => run_pty(&mut rx, &tx, cmd, &p).await,
        None => run_pipes(&mut rx, &tx, cmd).await,
    };
    match result {
        Ok(Some(status)) => {
            tracing::info!(status, "attach ended");
            finish(&tx, status).await;
        }
        Ok(None) => tracing::info!("attach: channel closed by the client"),
        Err(e) => {
            tracing::warn!(error = %e, "attach failed");
            refuse_on(&tx, &e, tty).await;
        }
    }
}

/// The SSH exit status of a process: its code, or 128 + signal like a shell.
fn exit_code(st: ExitStatus) -> u32 {
    use std::os::unix::process::ExitStatusExt;
    match (st.code(), st.signal()) {
        (Some(c), _) => c as u32,
        (None, Some(s)) => 128 + s as u32,
        _ => 1,
    }
}

/// Ends the shell after the client went away: SIGHUP (the runtime forwards
/// it into the container), then SIGKILL.
async fn hang_up(child: &mut Child) {
    if let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGHUP,
        );
    }
    if tokio::time::timeout(HANGUP_GRACE, child.wait())
        .await
        .is_err()
    {
        let _ = child.start_kill();
        let _ = child.wait().await;
    }
}

// ===== with a pseudo-terminal =====

/// The master side of a pty, non-blocking, driven by tokio.
struct Master(AsyncFd<PtyMaster>);

impl Master {
    async fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let mut guard = self.0.readable().await?;
            match guard.try_io(|fd| (&mut fd.get_ref()).read(buf)) {
                // EIO: every slave descriptor is closed, i.e. the shell side
                // is gone. That is the pty's end of file.
                Ok(Err(e)) if e.raw_os_error() == Some(libc::EIO) => return Ok(0),
                Ok(r) => return r,
                Err(_would_block) => continue,
            }
        }
    }

    async fn write(&self, buf: &[u8]) -> io::Result<usize> {
        loop {
            let mut guard = self.0.writable().await?;
            match guard.try_io(|fd| (&mut fd.get_ref()).write(buf)) {
                Ok(r) => return r,
                Err(_would_block) => continue,
            }
        }
    }

    fn resize(&self, cols: u32, rows: u32, pix_width: u32, pix_height: u32) {
        let ws = winsize(cols, rows, pix_width, pix_height);
        // SAFETY: TIOCSWINSZ reads one winsize from a valid pointer; the
        // kernel then sends SIGWINCH to the terminal's foreground group (the
        // runtime, which passes the size on into the container).
        let r = unsafe { libc::ioctl(self.0.get_ref().as_raw_fd(), libc::TIOCSWINSZ, &ws) };
        if r != 0 {
            tracing::debug!(error = %io::Error::last_os_error(), "TIOCSWINSZ");
        }
    }
}

fn winsize(cols: u32, rows: u32, pix_width: u32, pix_height: u32) -> libc::winsize {
    let clamp = |v: u32| u16::try_from(v).unwrap_or(u16::MAX);
    libc::winsize {
        ws_row: clamp(rows),
        ws_col: clamp(cols),
        ws_xpixel: clamp(pix_width),
        ws_ypixel: clamp(pix_height),
    }
}

/// A new pty: (master, slave). Both close on exec, so neither leaks into
/// the runtime except as the slave given as its stdio.
fn open_pty(p: &PtyRequest) -> io::Result<(PtyMaster, OwnedFd)> {
    let master = nix::pty::posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)?;
    nix::pty::grantpt(&master)?;
    nix::pty::unlockpt(&master)?;
    let name = nix::pty::ptsname_r(&master)?;
    let slave = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY)
        .open(&name)?;
    let flags = nix::fcntl::fcntl(master.as_raw_fd(), nix::fcntl::F_GETFL)?;
    nix::fcntl::fcntl(
        master.as_raw_fd(),
        nix::fcntl::F_SETFL(OFlag::from_bits_retain(flags) | OFlag::O_NONBLOCK),
    )?;
    let ws = winsize(p.cols, p.rows, p.pix_width, p.pix_height);
    // SAFETY: as in `Master::resize`.
    unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
    Ok((master, OwnedFd::from(slave)))
}

async fn run_pty(
    rx: &mut ChannelReadHalf,
    tx: &ChannelWriteHalf<Msg>,
    mut cmd: std::process::Command,
    p: &PtyRequest,
) -> Result<Option<u32>, AttachError> {
    let (master, slave) = open_pty(p)?;
    cmd.stdin(Stdio::from(slave.try_clone()?))
        .stdout(Stdio::from(slave.try_clone()?))
        .stderr(Stdio::from(slave));
    // SAFETY: only async-signal-safe calls between fork and exec. The
    // runtime gets its own session with the pty as controlling terminal, so
    // the shell sees a real terminal (job control, ^C) and a hang-up when
    // the pty goes away.
    unsafe {
        cmd.pre_exec(|| {
            nix::unistd::setsid()?;
            if libc::ioctl(0, libc::TIOCSCTTY, 0) != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut cmd = tokio::process::Command::from(cmd);
    cmd.kill_on_drop(true);
    let mut child = cmd.spawn()?;
    // Our copies of the slave close with the command: the master reads EOF
    // (EIO) once the runtime and the shell are gone.
    drop(cmd);
    tracing::info!(pid = child.id(), term = %p.term, "attach started with a pty");
    // SAFETY: PtyMaster owns its descriptor and always returns that one;
    // it closes only when the AsyncFd is dropped.
    let master = Master(unsafe { AsyncFd::register(master) }.map_err(|e| e.into_parts().1)?);

    let mut buf = vec![0u8; 16 * 1024];
    let mut input: Vec<u8> = Vec::new();
    let mut output_done = false;
    let mut exit: Option<ExitStatus> = None;
    let drain = tokio::time::sleep(Duration::from_secs(0));
    tokio::pin!(drain);
    loop {
        if output_done && exit.is_some() {
            break;
        }
        tokio::select! {
            msg = rx.wait(), if input.len() < MAX_PENDING_INPUT => match msg {
                Some(ChannelMsg::Data { data }) => input.extend_from_slice(&data),
                Some(ChannelMsg::WindowChange { col_width, row_height, pix_width, pix_height }) => {
                    master.resize(col_width, row_height, pix_width, pix_height);
                }
                // Like OpenSSH's sshd: a terminal cannot be half-closed; the
                // user ends the shell (exit, ^D).
                Some(ChannelMsg::Eof) => {}
                Some(ChannelMsg::Close) | None => {
                    if exit.is_none() {
                        hang_up(&mut child).await;
                    }
                    return Ok(None);
                }
                Some(_) => {}
            },
            n = master.write(&input), if !input.is_empty() => match n {
                Ok(n) => {
                    input.drain(..n);
                }
                // The shell side is gone (EIO) while input was pending: the
                // exit status is what matters now, not this input.
                Err(e) => {
                    tracing::debug!(error = %e, "pty write; input dropped");
                    input.clear();
                }
            },
            n = master.read(&mut buf), if !output_done => {
                let n = n?;
                if n == 0 {
                    output_done = true;
                } else {
                    tx.data_bytes(buf[..n].to_vec()).await?;
                }
            }
            st = child.wait(), if exit.is_none() => {
                exit = Some(st?);
                drain.as_mut().reset(tokio::time::Instant::now() + DRAIN_TIME);
            }
            _ = &mut drain, if exit.is_some() && !output_done => {
                // Something still holds the slave open; the shell is gone.
                output_done = true;
            }
        }
    }
    Ok(exit.map(exit_code))
}

// ===== without a pseudo-terminal =====

/// Reads `r` into `buf`, or never returns once `r` is done.
async fn read_some<R: AsyncRead + Unpin>(r: &mut Option<R>, buf: &mut [u8]) -> io::Result<usize> {
    match r {
        Some(r) => r.read(buf).await,
        None => std::future::pending().await,
    }
}

/// Writes some of `buf` to `w`, or never returns once `w` is closed.
async fn write_some<W: AsyncWrite + Unpin>(w: &mut Option<W>, buf: &[u8]) -> io::Result<usize> {
    match w {
        Some(w) => w.write(buf).await,
        None => std::future::pending().await,
    }
}

async fn run_pipes(
    rx: &mut ChannelReadHalf,
    tx: &ChannelWriteHalf<Msg>,
    cmd: std::process::Command,
) -> Result<Option<u32>, AttachError> {
    let mut cmd = tokio::process::Command::from(cmd);
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn()?;
    tracing::info!(pid = child.id(), "attach started without a pty");
    let mut stdin = child.stdin.take();
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    let mut out_buf = vec![0u8; 16 * 1024];
    let mut err_buf = vec![0u8; 16 * 1024];
    let mut input: Vec<u8> = Vec::new();
    let mut input_eof = false;
    let mut exit: Option<ExitStatus> = None;
    let drain = tokio::time::sleep(Duration::from_secs(0));
    tokio::pin!(drain);
    loop {
        if stdout.is_none() && stderr.is_none() && exit.is_some() {
            break;
        }
        if input_eof && input.is_empty() {
            // The client is done sending: the shell reads end of file.
            stdin = None;
        }
        tokio::select! {
            msg = rx.wait(), if input.len() < MAX_PENDING_INPUT => match msg {
                Some(ChannelMsg::Data { data }) => {
                    if stdin.is_some() {
                        input.extend_from_slice(&data);
                    }
                }
                Some(ChannelMsg::Eof) => input_eof = true,
                Some(ChannelMsg::Close) | None => {
                    if exit.is_none() {
                        hang_up(&mut child).await;
                    }
                    return Ok(None);
                }
                Some(_) => {}
            },
            r = write_some(&mut stdin, &input), if !input.is_empty() => match r {
                Ok(n) => {
                    input.drain(..n);
                }
                // The shell closed its stdin: drop what it will not read.
                Err(_) => {
                    stdin = None;
                    input.clear();
                }
            },
            n = read_some(&mut stdout, &mut out_buf) => match n? {
                0 => stdout = None,
                n => tx.data_bytes(out_buf[..n].to_vec()).await?,
            },
            n = read_some(&mut stderr, &mut err_buf) => match n? {
                0 => stderr = None,
                n => tx.extended_data_bytes(1, err_buf[..n].to_vec()).await?,
            },
            st = child.wait(), if exit.is_none() => {
                exit = Some(st?);
                drain.as_mut().reset(tokio::time::Instant::now() + DRAIN_TIME);
            }
            _ = &mut drain, if exit.is_some() => {
                // A process left in the background holds the pipes open.
                stdout = None;
                stderr = None;
            }
        }
    }
    Ok(exit.map(exit_code))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_attach_and_refuses_the_rest() {
        assert_eq!(parse_command(b"attach web").unwrap(), "web");
        assert_eq!(parse_command(b"  attach   web \n").unwrap(), "web");
        assert!(matches!(parse_command(b"attach"), Err(AttachError::Usage)));
        assert!(matches!(
            parse_command(b"attach a b"),
            Err(AttachError::Usage)
        ));
        assert_eq!(parse_command(b"attach a.b_c-9").unwrap(), "a.b_c-9");
        let e = parse_command(b"attach x\x1b[2J").unwrap_err();
        let text = e.to_string();
        assert!(matches!(e, AttachError::App { .. }), "{e:?}");
        assert!(
            text.contains("no app 'x\\u{1b}[2J' is configured"),
            "{text}"
        );
        assert!(parse_command(b"attach -x").is_err());
        assert!(parse_command(&[b"attach ".as_slice(), &[b'a'; 65]].concat()).is_err());
        let e = parse_command(b"rm -rf /\x1b[2J").unwrap_err();
        assert!(matches!(e, AttachError::UnknownCommand(_)));
        let text = e.to_string();
        assert!(text.contains("rm -rf /\\u{1b}[2J"), "{text}");
        assert!(!text.contains('\x1b'));
        assert!(text.contains("attach APP"));
    }

    #[test]
    fn exit_codes_like_a_shell() {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(exit_code(ExitStatus::from_raw(0)), 0);
        assert_eq!(exit_code(ExitStatus::from_raw(3 << 8)), 3);
        assert_eq!(exit_code(ExitStatus::from_raw(9)), 137);
    }

    #[test]
    fn window_sizes_clamp() {
        let w = winsize(80, 24, 0, 70000);
        assert_eq!((w.ws_col, w.ws_row, w.ws_ypixel), (80, 24, u16::MAX));
    }
}
