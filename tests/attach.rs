//! `attach APP` over SSH against the in-process server (no root): the exec
//! request parsing, refusals (stderr line + exit status 1), NACM, and the
//! pty and pipe plumbing with the recording OS fake, whose runtime "exec"
//! is `echo ID SHELL` run for real. The real container shell is in
//! tests/attach_root.rs.

mod common;

use std::collections::HashMap;
use std::fs;
use std::time::Duration;

use apphost::apphost::fake::Fake;
use apphost::apphost::{Apphost, ApphostConfig};
use common::*;
use russh::ChannelMsg;

/// What an exec channel produced.
#[derive(Debug, Default)]
struct Outcome {
    stdout: String,
    stderr: String,
    exit: Option<u32>,
    closed: bool,
}

/// Runs one exec request (`command`, or a shell request when `None`) on a
/// new session channel, with a pty when `pty`; sends `input`, then EOF.
async fn exec(
    port: u16,
    login: Login<'_>,
    command: Option<&str>,
    pty: bool,
    input: &[u8],
) -> Outcome {
    let handle = ssh_connect(port, login).await.expect("login");
    let mut ch = handle.channel_open_session().await.unwrap();
    if pty {
        ch.request_pty(true, "xterm", 100, 30, 0, 0, &[])
            .await
            .unwrap();
    }
    match command {
        Some(c) => ch.exec(true, c).await.unwrap(),
        None => ch.request_shell(true).await.unwrap(),
    }
    if !input.is_empty() {
        ch.data(input).await.unwrap();
    }
    ch.eof().await.unwrap();
    let mut out = Outcome::default();
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), ch.wait())
            .await
            .unwrap_or_else(|_| panic!("channel hung; so far {out:?}"));
        match msg {
            Some(ChannelMsg::Data { data }) => out.stdout.push_str(&String::from_utf8_lossy(&data)),
            Some(ChannelMsg::ExtendedData { data, ext: 1 }) => {
                out.stderr.push_str(&String::from_utf8_lossy(&data))
            }
            Some(ChannelMsg::ExitStatus { exit_status }) => out.exit = Some(exit_status),
            Some(ChannelMsg::Close) | None => {
                out.closed = true;
                break;
            }
            Some(_) => {}
        }
    }
    let _ = handle
        .disconnect(russh::Disconnect::ByApplication, "", "en")
        .await;
    out
}

fn admin() -> Login<'static> {
    Login::Password("admin", "admin")
}

fn assert_refused(o: &Outcome, needle: &str) {
    assert_eq!(o.exit, Some(1), "{o:?}");
    assert!(o.closed, "{o:?}");
    assert!(o.stderr.contains(needle), "stderr lacks {needle:?}: {o:?}");
    assert!(o.stdout.is_empty(), "{o:?}");
}

/// An Apphost on the recording fake: app `web` running (shell `ash`), app
/// `idle` configured but not started.
fn fake_apphost(tmp: &tempfile::TempDir) -> (Fake, Apphost) {
    let images = tmp.path().join("ext/app/images");
    fs::create_dir_all(&images).unwrap();
    fs::write(images.join("a.img"), b"image a").unwrap();
    let mut media = HashMap::new();
    media.insert("external".to_string(), tmp.path().join("ext"));
    let mut cfg = ApphostConfig::new(tmp.path().join("state"), media);
    cfg.tick = Duration::from_secs(3600);
    let fake = Fake::new();
    let ah = Apphost::new(cfg, fake.os()).unwrap();
    ah.set_label("a.img", "web").unwrap();
    ah.apply(&tree(
        "<app><name>web</name><enable>true</enable><autostart>true</autostart><image>web</image><shell>ash</shell></app>\
         <app><name>idle</name><enable>true</enable><autostart>false</autostart><image>web</image></app>",
    ));
    ah.reconcile_now();
    (fake, ah)
}

async fn agent_with_fake() -> (TestAgent, tempfile::TempDir) {
    let tmp = tempfile::tempdir().unwrap();
    let (_fake, ah) = fake_apphost(&tmp);
    let agent = TestAgent::start_with(Options {
        apphost: Some(ah),
        ..Default::default()
    })
    .await;
    (agent, tmp)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_commands_and_shells_are_refused_with_a_message() {
    let t = TestAgent::start().await;
    let o = exec(t.port, admin(), Some("ls -l /"), false, b"").await;
    assert_refused(&o, "no command 'ls -l /'");
    assert!(o.stderr.contains("attach APP"), "{o:?}");
    let o = exec(t.port, admin(), Some("attach"), false, b"").await;
    assert_refused(&o, "usage: attach APP");
    let o = exec(t.port, admin(), None, false, b"").await;
    assert_refused(&o, "no login shell");
    // With a pty the line ends in CR LF (the client's terminal is raw).
    let o = exec(t.port, admin(), None, true, b"").await;
    assert_refused(&o, "no login shell");
    assert!(o.stderr.ends_with("\r\n"), "{o:?}");
    // The connection still serves NETCONF afterwards.
    let mut c = t.connect().await;
    assert!(c
        .rpc("<get-config><source><running/></source></get-config>")
        .await
        .unwrap()
        .contains("<data"));
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_app_hosting_attach_says_so() {
    let t = TestAgent::start().await;
    let o = exec(t.port, admin(), Some("attach web"), false, b"").await;
    assert_refused(&o, "application hosting is not available");
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attach_runs_the_runtime_exec_on_pipes_and_on_a_pty() {
    let (t, _tmp) = agent_with_fake().await;
    // The fake's exec is `echo web ash`: the app's id and its shell.
    let o = exec(t.port, admin(), Some("attach web"), false, b"").await;
    assert_eq!(o.exit, Some(0), "{o:?}");
    assert_eq!(o.stdout, "web ash\n", "{o:?}");
    assert!(o.stderr.is_empty() && o.closed, "{o:?}");
    // On a pty the terminal's line discipline turns LF into CR LF: the
    // output came through a real terminal.
    let o = exec(t.port, admin(), Some("attach web"), true, b"").await;
    assert_eq!(o.exit, Some(0), "{o:?}");
    assert_eq!(o.stdout, "web ash\r\n", "{o:?}");
    assert!(o.closed, "{o:?}");
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_and_stopped_apps_are_refused() {
    let (t, _tmp) = agent_with_fake().await;
    let o = exec(t.port, admin(), Some("attach nosuchapp"), true, b"").await;
    assert_refused(&o, "no app 'nosuchapp' is configured");
    let o = exec(t.port, admin(), Some("attach idle"), false, b"").await;
    assert_refused(&o, "app 'idle' is not running (status stopped)");
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nacm_decides_who_may_attach() {
    let (t, _tmp) = agent_with_fake().await;
    // `keyuser` is in no group: attach is default-deny-all for it.
    let o = exec(
        t.port,
        Login::Key("keyuser", Box::new(client_key())),
        Some("attach web"),
        false,
        b"",
    )
    .await;
    assert_refused(&o, "access denied");
    // Denied before the app is looked up: nothing about which apps exist.
    let o = exec(
        t.port,
        Login::Key("keyuser", Box::new(client_key())),
        Some("attach nosuchapp"),
        false,
        b"",
    )
    .await;
    assert_refused(&o, "access denied");

    // A rule in running denies `admin` the operation app-hosting:attach.
    let mut c = t.connect().await;
    let reply = c
        .rpc(
            "<edit-config><target><running/></target><config>\
             <nacm xmlns=\"urn:ietf:params:xml:ns:yang:ietf-netconf-acm\"><rule-list>\
             <name>no-attach</name><group>admin</group><rule><name>deny-attach</name>\
             <module-name>app-hosting</module-name><rpc-name>attach</rpc-name>\
             <access-operations>exec</access-operations><action>deny</action></rule>\
             </rule-list></nacm></config></edit-config>",
        )
        .await
        .unwrap();
    assert!(is_ok(&reply), "{reply}");
    let o = exec(t.port, admin(), Some("attach web"), false, b"").await;
    assert_refused(&o, "access denied");
    // The rule removed: admin attaches again.
    let reply = c
        .rpc(
            "<edit-config><target><running/></target><config>\
             <nacm xmlns=\"urn:ietf:params:xml:ns:yang:ietf-netconf-acm\" \
             xmlns:nc=\"urn:ietf:params:xml:ns:netconf:base:1.0\">\
             <rule-list nc:operation=\"delete\"><name>no-attach</name></rule-list>\
             </nacm></config></edit-config>",
        )
        .await
        .unwrap();
    assert!(is_ok(&reply), "{reply}");
    let o = exec(t.port, admin(), Some("attach web"), false, b"").await;
    assert_eq!((o.exit, o.stdout.as_str()), (Some(0), "web ash\n"), "{o:?}");
    t.stop().await;
}
