//! Notifications end to end (RFC 5277, RFC 6470): create-subscription over
//! SSH with our client, every event the agent sends, replay, stopTime,
//! filters, the rpc-errors, and a subscriber that stops reading.

mod common;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use apphost::apphost::{AppEvent, Status};
use apphost::netconf::rpc::{Response, RpcCtx, YangRpcs};
use common::*;

const AH: &str = "urn:apphost:yang:app-hosting";
const NOTIF: &str = "urn:ietf:params:xml:ns:netconf:notification:1.0";
const NCN: &str = "urn:ietf:params:xml:ns:yang:ietf-netconf-notifications";
const NCEVENT: &str = "urn:ietf:params:xml:ns:netmod:notification";

// ===== helpers =====

/// A client that may receive notifications between replies.
struct Sub {
    c: Client,
    /// Notifications read while waiting for a reply, not yet looked at.
    queued: VecDeque<String>,
}

static MID: AtomicU64 = AtomicU64::new(1);

impl Sub {
    fn new(c: Client) -> Sub {
        Sub {
            c,
            queued: VecDeque::new(),
        }
    }

    /// Sends an RPC and returns its reply; notifications that arrive
    /// before it are kept for [`Sub::next`].
    async fn rpc(&mut self, body: &str) -> String {
        let mid = MID.fetch_add(1, Ordering::Relaxed).to_string();
        let msg = format!("<rpc xmlns=\"{NC}\" message-id=\"{mid}\">{body}</rpc>");
        self.c.send_raw_framed(&msg).await.expect("send");
        loop {
            let m = self
                .c
                .read_message()
                .await
                .expect("read")
                .expect("session open");
            if root_name(&m) == "notification" {
                self.queued.push_back(m);
                continue;
            }
            assert_eq!(root_name(&m), "rpc-reply", "{m}");
            assert!(m.contains(&format!("message-id=\"{mid}\"")), "{m}");
            return m;
        }
    }

    /// The next notification (fails after 10 s without one).
    async fn next(&mut self) -> String {
        if let Some(m) = self.queued.pop_front() {
            return m;
        }
        let m = self
            .c
            .read_message()
            .await
            .expect("a notification within 10 s")
            .expect("session open");
        assert_eq!(root_name(&m), "notification", "{m}");
        m
    }

    /// The next notification named `name`, skipping others (events of
    /// sessions other tests in the binary do not cause: each test has its
    /// own agent, but sessions of this test come and go).
    async fn next_named(&mut self, name: &str) -> String {
        loop {
            let m = self.next().await;
            if event_name(&m) == name {
                return m;
            }
        }
    }

    async fn subscribe(&mut self, params: &str) -> String {
        self.rpc(&format!(
            "<create-subscription xmlns=\"{NOTIF}\">{params}</create-subscription>"
        ))
        .await
    }
}

fn root_name(xml: &str) -> String {
    roxmltree::Document::parse(xml)
        .map(|d| d.root_element().tag_name().name().to_string())
        .unwrap_or_default()
}

/// The name of the event inside `<notification>` (after `<eventTime>`).
fn event_name(xml: &str) -> String {
    let d = roxmltree::Document::parse(xml).expect("notification parses");
    let root = d.root_element();
    assert!(root.has_tag_name((NOTIF, "notification")), "{xml}");
    let mut kids = root.children().filter(|n| n.is_element());
    let t = kids.next().expect("eventTime");
    assert!(t.has_tag_name((NOTIF, "eventTime")), "{xml}");
    assert!(
        chrono::DateTime::parse_from_rfc3339(t.text().unwrap_or("")).is_ok(),
        "eventTime is RFC 3339: {xml}"
    );
    kids.next()
        .map(|n| n.tag_name().name().to_string())
        .unwrap_or_default()
}

/// Text of `name` inside the event, any namespace.
fn field(xml: &str, name: &str) -> Option<String> {
    text_of(xml, name)
}

fn rpc_error_tag(reply: &str) -> Option<String> {
    let d = roxmltree::Document::parse(reply).ok()?;
    let e = d
        .descendants()
        .find(|n| n.has_tag_name((NC, "error-tag")))?;
    e.text().map(str::to_string)
}

fn bad_element(reply: &str) -> Option<String> {
    let d = roxmltree::Document::parse(reply).ok()?;
    let e = d
        .descendants()
        .find(|n| n.tag_name().name() == "bad-element")?;
    e.text().map(str::to_string)
}

fn cpu_edit(ds: &str, cpu: u32) -> String {
    format!("<edit-config><target><{ds}/></target><config><app-hosting xmlns=\"{AH}\"><cpu>{cpu}</cpu></app-hosting></config></edit-config>")
}

fn ts(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

// ===== tests =====

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hello_and_streams_state() {
    let a = TestAgent::start().await;
    let mut c = a.connect().await;
    for cap in [
        "urn:ietf:params:netconf:capability:notification:1.0",
        "urn:ietf:params:netconf:capability:interleave:1.0",
    ] {
        assert!(c.server_hello.contains(cap), "hello lacks {cap}");
    }
    let r = c
        .rpc(&format!(
            "<get><filter type=\"subtree\"><netconf xmlns=\"{NCEVENT}\"/></filter></get>"
        ))
        .await
        .unwrap();
    let d = roxmltree::Document::parse(&r).unwrap();
    let names: Vec<_> = d
        .descendants()
        .filter(|n| n.has_tag_name((NCEVENT, "name")))
        .filter_map(|n| n.text())
        .collect();
    assert_eq!(names, ["NETCONF", "app-log"], "{r}");
    assert!(r.contains("<replaySupport>true</replaySupport>"), "{r}");
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_start_and_end_events() {
    let a = TestAgent::start().await;
    let mut s = Sub::new(a.connect().await);
    let r = s.subscribe("").await;
    assert!(is_ok(&r), "{r}");
    assert_eq!(
        a.agent.session_list()[0]
            .stats
            .subscriptions
            .load(Ordering::Relaxed),
        1
    );

    // close-session → closed
    let mut b = a.connect().await;
    let start = s.next_named("netconf-session-start").await;
    assert_eq!(field(&start, "username").as_deref(), Some("admin"));
    assert_eq!(
        field(&start, "session-id"),
        Some(b.session_id.to_string()),
        "{start}"
    );
    assert_eq!(field(&start, "source-host").as_deref(), Some("127.0.0.1"));
    assert!(is_ok(&b.rpc("<close-session/>").await.unwrap()));
    let end = s.next_named("netconf-session-end").await;
    assert_eq!(field(&end, "session-id"), Some(b.session_id.to_string()));
    assert_eq!(field(&end, "termination-reason").as_deref(), Some("closed"));
    assert_eq!(field(&end, "killed-by"), None);

    // kill-session → killed, killed-by the killer
    let c = a.connect().await;
    let victim = c.session_id;
    s.next_named("netconf-session-start").await;
    let r = s
        .rpc(&format!(
            "<kill-session><session-id>{victim}</session-id></kill-session>"
        ))
        .await;
    assert!(is_ok(&r), "{r}");
    let end = s.next_named("netconf-session-end").await;
    assert_eq!(field(&end, "session-id"), Some(victim.to_string()));
    assert_eq!(field(&end, "termination-reason").as_deref(), Some("killed"));
    assert_eq!(field(&end, "killed-by"), Some(s.c.session_id.to_string()));

    // transport closed → dropped
    let d = a.connect().await;
    let dropped = d.session_id;
    s.next_named("netconf-session-start").await;
    d.disconnect().await;
    let end = s.next_named("netconf-session-end").await;
    assert_eq!(field(&end, "session-id"), Some(dropped.to_string()));
    assert_eq!(
        field(&end, "termination-reason").as_deref(),
        Some("dropped")
    );

    // a hello without a base capability → bad-hello
    let _e = Client::connect(a.port, Login::Password("admin", "admin"), &[])
        .await
        .unwrap();
    let end = s.next_named("netconf-session-end").await;
    assert_eq!(
        field(&end, "termination-reason").as_deref(),
        Some("bad-hello")
    );
    drop(c);
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_timeout_is_reported_and_spares_subscribers() {
    let a = TestAgent::start_with(Options {
        idle_timeout: Some(Duration::from_secs(2)),
        ..Default::default()
    })
    .await;
    let mut s = Sub::new(a.connect().await);
    assert!(is_ok(&s.subscribe("").await));
    let b = a.connect().await;
    let end = s.next_named("netconf-session-end").await;
    assert_eq!(field(&end, "session-id"), Some(b.session_id.to_string()));
    assert_eq!(
        field(&end, "termination-reason").as_deref(),
        Some("timeout")
    );
    // The subscriber, idle as long, is still served.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let r = s
        .rpc("<get-config><source><running/></source></get-config>")
        .await;
    assert!(r.contains("<data"), "{r}");
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_change_for_every_change_of_running() {
    let a = TestAgent::start().await;
    let mut s = Sub::new(a.connect().await);
    assert!(is_ok(
        &s.subscribe(&format!(
            "<filter type=\"subtree\"><netconf-config-change xmlns=\"{NCN}\"/></filter>"
        ))
        .await
    ));
    let mut b = a.connect().await;

    // edit-config on running: the edit as requested.
    assert!(is_ok(&b.rpc(&cpu_edit("running", 30)).await.unwrap()));
    let ev = s.next().await;
    assert_eq!(event_name(&ev), "netconf-config-change", "{ev}");
    assert_eq!(field(&ev, "datastore").as_deref(), Some("running"));
    assert_eq!(field(&ev, "username").as_deref(), Some("admin"));
    assert_eq!(field(&ev, "session-id"), Some(b.session_id.to_string()));
    assert_eq!(
        field(&ev, "target").as_deref(),
        Some("/ah:app-hosting/ah:cpu"),
        "{ev}"
    );
    // cpu held only its default: the merge created it.
    assert_eq!(field(&ev, "operation").as_deref(), Some("create"));

    // An edit of candidate changes nothing in running: no event; its
    // commit does, listing the edits made to candidate.
    assert!(is_ok(&b.rpc(&cpu_edit("candidate", 40)).await.unwrap()));
    let r = b
        .rpc(&format!("<edit-config><target><candidate/></target><config><app-hosting xmlns=\"{AH}\"><app><name>web</name></app></app-hosting></config></edit-config>"))
        .await
        .unwrap();
    assert!(is_ok(&r), "{r}");
    assert!(is_ok(&b.rpc("<commit/>").await.unwrap()));
    let ev = s.next().await;
    assert_eq!(field(&ev, "session-id"), Some(b.session_id.to_string()));
    let d = roxmltree::Document::parse(&ev).unwrap();
    let edits: Vec<(String, String)> = d
        .descendants()
        .filter(|n| n.has_tag_name((NCN, "edit")))
        .map(|e| {
            let t = |name| {
                e.children()
                    .find(|c| c.tag_name().name() == name)
                    .and_then(|c| c.text())
                    .unwrap_or("")
                    .to_string()
            };
            (t("target"), t("operation"))
        })
        .collect();
    assert!(
        edits.contains(&("/ah:app-hosting/ah:cpu".into(), "merge".into())),
        "{edits:?}"
    );
    assert!(
        edits.contains(&(
            "/ah:app-hosting/ah:app[ah:name='web']".into(),
            "create".into()
        )),
        "{edits:?}"
    );
    // The target is an instance-identifier whose prefix is declared.
    let target = d
        .descendants()
        .find(|n| n.has_tag_name((NCN, "target")))
        .unwrap();
    assert_eq!(target.lookup_namespace_uri(Some("ah")), Some(AH));

    // copy-config to running.
    let r = b
        .rpc(&format!("<copy-config><target><running/></target><source><config><app-hosting xmlns=\"{AH}\"><cpu>20</cpu></app-hosting></config></source></copy-config>"))
        .await
        .unwrap();
    assert!(is_ok(&r), "{r}");
    let ev = s.next().await;
    let d = roxmltree::Document::parse(&ev).unwrap();
    let ops: Vec<_> = d
        .descendants()
        .filter(|n| n.has_tag_name((NCN, "operation")))
        .filter_map(|n| n.text())
        .collect();
    assert!(ops.contains(&"delete"), "web is gone: {ev}");
    assert!(ops.contains(&"replace"), "cpu changed: {ev}");

    // A commit with nothing to commit changes nothing: no event. The next
    // event is the next real change.
    assert!(is_ok(&b.rpc("<commit/>").await.unwrap()));
    assert!(is_ok(&b.rpc(&cpu_edit("running", 35)).await.unwrap()));
    let ev = s.next().await;
    assert_eq!(field(&ev, "operation").as_deref(), Some("merge"), "{ev}");

    b.disconnect().await;
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirmed_commit_events() {
    let a = TestAgent::start().await;
    let mut s = Sub::new(a.connect().await);
    assert!(is_ok(&s.subscribe("").await));
    let mut b = a.connect().await;
    let me = b.session_id.to_string();

    // start, then complete by a confirming commit.
    assert!(is_ok(&b.rpc(&cpu_edit("candidate", 41)).await.unwrap()));
    let r = b
        .rpc("<commit><confirmed/><confirm-timeout>60</confirm-timeout></commit>")
        .await
        .unwrap();
    assert!(is_ok(&r), "{r}");
    let ev = s.next_named("netconf-confirmed-commit").await;
    assert_eq!(
        field(&ev, "confirm-event").as_deref(),
        Some("start"),
        "{ev}"
    );
    assert_eq!(field(&ev, "timeout").as_deref(), Some("60"), "{ev}");
    assert_eq!(field(&ev, "session-id"), Some(me.clone()));
    assert!(is_ok(&b.rpc("<commit/>").await.unwrap()));
    let ev = s.next_named("netconf-confirmed-commit").await;
    assert_eq!(
        field(&ev, "confirm-event").as_deref(),
        Some("complete"),
        "{ev}"
    );

    // start, then the timeout: the server rolls running back.
    assert!(is_ok(&b.rpc(&cpu_edit("candidate", 42)).await.unwrap()));
    let r = b
        .rpc("<commit><confirmed/><confirm-timeout>1</confirm-timeout></commit>")
        .await
        .unwrap();
    assert!(is_ok(&r), "{r}");
    let ev = s.next_named("netconf-config-change").await;
    assert_eq!(
        field(&ev, "session-id"),
        Some(me.clone()),
        "the commit: {ev}"
    );
    let ev = s.next_named("netconf-confirmed-commit").await;
    assert_eq!(
        field(&ev, "confirm-event").as_deref(),
        Some("start"),
        "{ev}"
    );
    let ev = s.next_named("netconf-config-change").await;
    assert!(
        ev.contains("<server/>"),
        "the rollback is the server's: {ev}"
    );
    assert!(ev.contains("ah:cpu"), "{ev}");
    let ev = s.next_named("netconf-confirmed-commit").await;
    assert_eq!(
        field(&ev, "confirm-event").as_deref(),
        Some("timeout"),
        "{ev}"
    );
    assert_eq!(field(&ev, "session-id"), None, "the server did it: {ev}");
    let r = b
        .rpc("<get-config><source><running/></source></get-config>")
        .await
        .unwrap();
    assert!(r.contains("<cpu>41</cpu>"), "rolled back: {r}");

    // cancel-commit: the rollback is the cancelling session's change.
    assert!(is_ok(&b.rpc(&cpu_edit("candidate", 43)).await.unwrap()));
    let r = b
        .rpc("<commit><confirmed/><confirm-timeout>60</confirm-timeout></commit>")
        .await
        .unwrap();
    assert!(is_ok(&r), "{r}");
    s.next_named("netconf-confirmed-commit").await;
    assert!(is_ok(&b.rpc("<cancel-commit/>").await.unwrap()));
    let ev = s.next_named("netconf-config-change").await;
    assert_eq!(field(&ev, "session-id"), Some(me.clone()), "{ev}");
    let ev = s.next_named("netconf-confirmed-commit").await;
    assert_eq!(
        field(&ev, "confirm-event").as_deref(),
        Some("cancel"),
        "{ev}"
    );
    assert_eq!(field(&ev, "session-id"), Some(me.clone()), "{ev}");

    // The owning session ends: rolled back in its name, user included,
    // although it is gone from the session list.
    let mut c = a.connect().await;
    let gone = c.session_id.to_string();
    assert!(is_ok(&c.rpc(&cpu_edit("candidate", 44)).await.unwrap()));
    let r = c
        .rpc("<commit><confirmed/><confirm-timeout>60</confirm-timeout></commit>")
        .await
        .unwrap();
    assert!(is_ok(&r), "{r}");
    s.next_named("netconf-confirmed-commit").await;
    c.disconnect().await;
    let ev = s.next_named("netconf-confirmed-commit").await;
    assert_eq!(
        field(&ev, "confirm-event").as_deref(),
        Some("cancel"),
        "{ev}"
    );
    assert_eq!(field(&ev, "session-id"), Some(gone.clone()), "{ev}");
    assert_eq!(field(&ev, "username").as_deref(), Some("admin"), "{ev}");
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_events_on_their_streams() {
    let a = TestAgent::start().await;
    let (tx, rx) = tokio::sync::broadcast::channel(16);
    let forward = a.agent.forward_app_events(rx);
    let mut state = Sub::new(a.connect().await);
    assert!(is_ok(&state.subscribe("<stream>NETCONF</stream>").await));
    let mut logs = Sub::new(a.connect().await);
    assert!(is_ok(&logs.subscribe("<stream>app-log</stream>").await));
    tx.send(AppEvent::Log {
        app: "web".into(),
        line: "listening on :80 <ok> & ready".into(),
    })
    .unwrap();
    tx.send(AppEvent::StateChanged {
        app: "web".into(),
        status: Status::Running,
        previous: Status::Starting,
        reason: "started".into(),
    })
    .unwrap();
    let ev = state.next_named("app-state-changed").await;
    assert_eq!(field(&ev, "app").as_deref(), Some("web"));
    assert_eq!(field(&ev, "status").as_deref(), Some("running"));
    assert_eq!(field(&ev, "previous-status").as_deref(), Some("starting"));
    assert_eq!(field(&ev, "reason").as_deref(), Some("started"));
    // The log subscriber gets the line and nothing of stream NETCONF.
    let ev = logs.next().await;
    assert_eq!(event_name(&ev), "app-log", "{ev}");
    assert_eq!(
        field(&ev, "line").as_deref(),
        Some("listening on :80 <ok> & ready")
    );
    drop(tx);
    tokio::time::timeout(Duration::from_secs(5), forward)
        .await
        .expect("forwarder ends with its sender")
        .unwrap();
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_then_replay_complete_then_live() {
    let a = TestAgent::start().await;
    let t0 = chrono::Utc::now();
    let mut b = a.connect().await;
    for cpu in [11, 12, 13] {
        assert!(is_ok(&b.rpc(&cpu_edit("running", cpu)).await.unwrap()));
    }
    let filter =
        format!("<filter type=\"subtree\"><netconf-config-change xmlns=\"{NCN}\"/></filter>");

    // Without startTime: no replay, no replayComplete; the first event is
    // the next live one.
    let mut live = Sub::new(a.connect().await);
    assert!(is_ok(&live.subscribe(&filter).await));

    let mut s = Sub::new(a.connect().await);
    assert!(is_ok(
        &s.subscribe(&format!("{filter}<startTime>{}</startTime>", ts(t0)))
            .await
    ));
    for cpu in ["11", "12", "13"] {
        let ev = s.next().await;
        assert_eq!(event_name(&ev), "netconf-config-change", "{ev}");
        assert!(ev.contains("ah:cpu"), "{ev}");
        let _ = cpu;
    }
    let ev = s.next().await;
    assert_eq!(event_name(&ev), "replayComplete", "{ev}");
    assert!(is_ok(&b.rpc(&cpu_edit("running", 14)).await.unwrap()));
    let ev = s.next().await;
    assert_eq!(event_name(&ev), "netconf-config-change", "{ev}");
    let ev = live.next().await;
    assert_eq!(event_name(&ev), "netconf-config-change", "{ev}");
    assert_eq!(field(&ev, "session-id"), Some(b.session_id.to_string()));

    // A startTime after the events replays none of them.
    let mut late = Sub::new(a.connect().await);
    let r = late
        .subscribe(&format!(
            "{filter}<startTime>{}</startTime>",
            ts(chrono::Utc::now())
        ))
        .await;
    assert!(is_ok(&r), "{r}");
    assert_eq!(event_name(&late.next().await), "replayComplete");
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_time_ends_the_subscription() {
    let a = TestAgent::start().await;
    let t0 = chrono::Utc::now();
    let mut b = a.connect().await;
    assert!(is_ok(&b.rpc(&cpu_edit("running", 21)).await.unwrap()));
    let t1 = chrono::Utc::now();
    assert!(is_ok(&b.rpc(&cpu_edit("running", 22)).await.unwrap()));
    let filter =
        format!("<filter type=\"subtree\"><netconf-config-change xmlns=\"{NCN}\"/></filter>");

    // Both times in the past: what lies between, then both completions.
    let mut s = Sub::new(a.connect().await);
    let r = s
        .subscribe(&format!(
            "{filter}<startTime>{}</startTime><stopTime>{}</stopTime>",
            ts(t0),
            ts(t1)
        ))
        .await;
    assert!(is_ok(&r), "{r}");
    let ev = s.next().await;
    assert_eq!(event_name(&ev), "netconf-config-change");
    assert!(
        ev.contains("<operation>create</operation>"),
        "the first edit only: {ev}"
    );
    assert_eq!(event_name(&s.next().await), "replayComplete");
    assert_eq!(event_name(&s.next().await), "notificationComplete");
    // The subscription is over: a new one is allowed on the same session.
    let r = s.subscribe("").await;
    assert!(is_ok(&r), "{r}");

    // stopTime in the future: live events until then.
    let mut f = Sub::new(a.connect().await);
    let stop = chrono::Utc::now() + chrono::Duration::milliseconds(1500);
    let r = f
        .subscribe(&format!(
            "{filter}<startTime>{}</startTime><stopTime>{}</stopTime>",
            ts(chrono::Utc::now()),
            ts(stop)
        ))
        .await;
    assert!(is_ok(&r), "{r}");
    assert_eq!(event_name(&f.next().await), "replayComplete");
    assert!(is_ok(&b.rpc(&cpu_edit("running", 23)).await.unwrap()));
    assert_eq!(event_name(&f.next().await), "netconf-config-change");
    let ev = f.next().await;
    assert_eq!(event_name(&ev), "notificationComplete");
    assert!(chrono::Utc::now() >= stop, "not before stopTime");
    assert!(
        a.agent
            .session_list()
            .iter()
            .find(|x| x.id == f.c.session_id)
            .unwrap()
            .stats
            .subscriptions
            .load(Ordering::Relaxed)
            == 0
    );
    // Events after stopTime do not arrive; the session still answers.
    assert!(is_ok(&b.rpc(&cpu_edit("running", 24)).await.unwrap()));
    let r = f
        .rpc("<get-config><source><running/></source></get-config>")
        .await;
    assert!(r.contains("<cpu>24</cpu>"), "{r}");
    assert!(f.queued.is_empty(), "{:?}", f.queued);
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subtree_and_xpath_filters() {
    let a = TestAgent::start().await;
    let (tx, rx) = tokio::sync::broadcast::channel(16);
    a.agent.forward_app_events(rx);
    // Subtree content match: only app "web".
    let mut sub = Sub::new(a.connect().await);
    let r = sub
        .subscribe(&format!(
            "<filter type=\"subtree\"><app-state-changed xmlns=\"{AH}\"><app>web</app></app-state-changed></filter>"
        ))
        .await;
    assert!(is_ok(&r), "{r}");
    // XPath, as ncclient sends it (filter in the base namespace).
    let mut xp = Sub::new(a.connect().await);
    let r = xp
        .rpc(&format!(
            "<create-subscription xmlns=\"{NOTIF}\"><filter xmlns=\"{NC}\" xmlns:ah=\"{AH}\" type=\"xpath\" select=\"/ah:app-state-changed[ah:status='failed']\"/></create-subscription>"
        ))
        .await;
    assert!(is_ok(&r), "{r}");
    for (app, status) in [
        ("db", Status::Failed),
        ("web", Status::Running),
        ("cache", Status::Running),
        ("web", Status::Failed),
    ] {
        tx.send(AppEvent::StateChanged {
            app: app.into(),
            status,
            previous: Status::Starting,
            reason: "test".into(),
        })
        .unwrap();
    }
    // A session start in between matches neither filter.
    let other = a.connect().await;
    tx.send(AppEvent::StateChanged {
        app: "web".into(),
        status: Status::Stopped,
        previous: Status::Failed,
        reason: "last".into(),
    })
    .unwrap();
    let got: Vec<(String, String)> = {
        let mut v = Vec::new();
        for _ in 0..3 {
            let ev = sub.next().await;
            v.push((field(&ev, "app").unwrap(), field(&ev, "status").unwrap()));
        }
        v
    };
    assert_eq!(
        got,
        [
            ("web".into(), "running".into()),
            ("web".into(), "failed".into()),
            ("web".into(), "stopped".into())
        ]
    );
    let got: Vec<String> = {
        let mut v = Vec::new();
        for _ in 0..2 {
            let ev = xp.next().await;
            assert_eq!(event_name(&ev), "app-state-changed");
            v.push(field(&ev, "app").unwrap());
        }
        v
    };
    assert_eq!(got, ["db", "web"]);
    // Nothing else is waiting for them: the next reply comes first.
    let r = xp
        .rpc("<get-config><source><running/></source></get-config>")
        .await;
    assert!(r.contains("<data"), "{r}");
    assert!(xp.queued.is_empty(), "{:?}", xp.queued);
    drop(other);
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscription_errors() {
    let a = TestAgent::start().await;
    let mut s = Sub::new(a.connect().await);
    let now = chrono::Utc::now();
    let cases = [
        (
            "<stream>nope</stream>".to_string(),
            "invalid-value",
            "stream",
        ),
        (
            format!("<stopTime>{}</stopTime>", ts(now)),
            "missing-element",
            "startTime",
        ),
        (
            format!(
                "<startTime>{}</startTime>",
                ts(now + chrono::Duration::hours(1))
            ),
            "bad-element",
            "startTime",
        ),
        (
            format!(
                "<startTime>{}</startTime><stopTime>{}</stopTime>",
                ts(now),
                ts(now - chrono::Duration::hours(1))
            ),
            "bad-element",
            "stopTime",
        ),
        (
            "<startTime>yesterday</startTime>".to_string(),
            "bad-element",
            "startTime",
        ),
    ];
    for (params, tag, element) in &cases {
        let r = s.subscribe(params).await;
        assert_eq!(rpc_error_tag(&r).as_deref(), Some(*tag), "{params}: {r}");
        assert_eq!(bad_element(&r).as_deref(), Some(*element), "{params}: {r}");
        assert!(r.contains("<error-type>protocol</error-type>"), "{r}");
        assert!(r.contains("<error-message"), "{r}");
    }
    let r = s
        .subscribe("<filter type=\"xpath\" select=\"/nope:thing[\"/>")
        .await;
    assert_eq!(rpc_error_tag(&r).as_deref(), Some("invalid-value"), "{r}");
    // None of these left a subscription behind.
    assert_eq!(
        a.agent.session_list()[0]
            .stats
            .subscriptions
            .load(Ordering::Relaxed),
        0
    );
    assert!(is_ok(&s.subscribe("").await));
    let r = s.subscribe("").await;
    assert_eq!(rpc_error_tag(&r).as_deref(), Some("in-use"), "{r}");
    // The session and its subscription survive all of it.
    let mut b = a.connect().await;
    assert!(is_ok(&b.rpc(&cpu_edit("running", 33)).await.unwrap()));
    let ev = s.next_named("netconf-config-change").await;
    assert!(ev.contains("ah:cpu"), "{ev}");
    a.stop().await;
}

/// An RPC that takes a while (like app start or image import): `reload`
/// of app-hosting sleeps 1.5 s.
struct SlowRpc;

impl YangRpcs for SlowRpc {
    fn call(&self, _ctx: &RpcCtx<'_>, op: roxmltree::Node<'_, '_>) -> Option<Response> {
        if op.tag_name().namespace() == Some(AH) && op.tag_name().name() == "reload" {
            std::thread::sleep(Duration::from_millis(1500));
            return Some(Response::Ok);
        }
        None
    }
}

#[tokio::test(flavor = "current_thread")]
async fn slow_rpc_blocks_neither_runtime_nor_notifications_and_keeps_order() {
    // One runtime thread, as in the daemon.
    let a = TestAgent::start().await;
    a.agent.set_yang_rpcs(Arc::new(SlowRpc));
    let mut slow = Sub::new(a.connect().await);
    assert!(is_ok(&slow.subscribe("").await));
    // Two pipelined requests: the slow one, then a quick one.
    let m1 = format!("<rpc xmlns=\"{NC}\" message-id=\"slow\"><reload xmlns=\"{AH}\"/></rpc>");
    let m2 = format!("<rpc xmlns=\"{NC}\" message-id=\"quick\"><get-config><source><running/></source></get-config></rpc>");
    slow.c.send_raw_framed(&m1).await.unwrap();
    slow.c.send_raw_framed(&m2).await.unwrap();
    let started = Instant::now();
    // Meanwhile another session is served at once, and its change reaches
    // the busy session's subscription before the slow reply.
    let mut b = a.connect().await;
    assert!(is_ok(&b.rpc(&cpu_edit("running", 44)).await.unwrap()));
    assert!(
        started.elapsed() < Duration::from_millis(1200),
        "other session waited {:?}",
        started.elapsed()
    );
    let mut order = Vec::new();
    while order.len() < 2 {
        let m = slow.c.read_message().await.unwrap().unwrap();
        match root_name(&m).as_str() {
            "rpc-reply" => order.push(
                roxmltree::Document::parse(&m)
                    .unwrap()
                    .root_element()
                    .attribute("message-id")
                    .unwrap()
                    .to_string(),
            ),
            "notification" => {
                if event_name(&m) == "netconf-config-change" {
                    assert!(order.is_empty(), "notification after the slow reply");
                }
            }
            other => panic!("unexpected {other}: {m}"),
        }
    }
    assert_eq!(order, ["slow", "quick"]);
    assert!(started.elapsed() >= Duration::from_millis(1400));
    a.stop().await;
}

#[tokio::test(flavor = "current_thread")]
async fn subscriber_that_never_reads_does_not_delay_commits() {
    let a = TestAgent::start().await;
    // A subscribes and then never reads again.
    let mut stuck = Sub::new(a.connect().await);
    assert!(is_ok(&stuck.subscribe("").await));
    let stuck_id = stuck.c.session_id;
    // Enough big events to fill every buffer between A and the agent
    // (SSH window, TCP, russh queues) many times over.
    let reason = "x".repeat(8 * 1024);
    for i in 0..3000 {
        a.agent.publish(apphost::notify::events::app_state_changed(
            "web", "failed", "running", &reason,
        ));
        if i % 32 == 0 {
            // Let the session move what it can towards the stuck peer.
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    let mut b = a.connect().await;
    let started = Instant::now();
    for i in 0..300 {
        let r = b.rpc(&cpu_edit("candidate", 10 + (i % 40))).await.unwrap();
        assert!(is_ok(&r), "{r}");
        assert!(is_ok(&b.rpc("<commit/>").await.unwrap()));
    }
    let took = started.elapsed();
    eprintln!("300 commits: {took:?}");
    assert!(took < Duration::from_secs(60), "300 commits took {took:?}");
    // The agent is responsive to a new session too.
    let mut c = a.connect().await;
    let t = Instant::now();
    let r = c
        .rpc("<get-config><source><running/></source></get-config>")
        .await
        .unwrap();
    assert!(r.contains("<data"), "{r}");
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    let entry = a
        .agent
        .session_list()
        .into_iter()
        .find(|s| s.id == stuck_id)
        .expect("the stuck session is still there");
    let dropped = entry.stats.dropped_notifications.load(Ordering::Relaxed);
    eprintln!(
        "stuck session: sent {} dropped {dropped}; rss {}",
        entry.stats.out_notifications.load(Ordering::Relaxed),
        std::fs::read_to_string("/proc/self/status")
            .unwrap_or_default()
            .lines()
            .find(|l| l.starts_with("VmRSS"))
            .unwrap_or("")
    );
    assert!(dropped > 0, "no notification counted as dropped");
    assert!(a.agent.bus.dropped() >= dropped);
    // And it can still be killed while its output is stuck: its session
    // really ends (netconf-session-end comes after its task is done).
    let mut c = Sub::new(c);
    assert!(is_ok(&c.subscribe("").await));
    let r = c
        .rpc(&format!(
            "<kill-session><session-id>{stuck_id}</session-id></kill-session>"
        ))
        .await;
    assert!(is_ok(&r), "{r}");
    let end = c.next_named("netconf-session-end").await;
    assert_eq!(field(&end, "session-id"), Some(stuck_id.to_string()));
    assert_eq!(field(&end, "termination-reason").as_deref(), Some("killed"));
    drop(stuck);
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_domain_reports_app_state_changes_after_a_commit() {
    use apphost::apphost::fake::Fake;
    use apphost::apphost::{Apphost, ApphostConfig};
    // The real reconciler on recording OS fakes, wired as the daemon does.
    let tmp = tempfile::tempdir().unwrap();
    let images = tmp.path().join("ext/app/images");
    std::fs::create_dir_all(&images).unwrap();
    std::fs::write(images.join("a.img"), b"image a").unwrap();
    let mut media = std::collections::HashMap::new();
    media.insert("external".to_string(), tmp.path().join("ext"));
    let mut cfg = ApphostConfig::new(tmp.path().join("state"), media);
    cfg.stop_grace = Duration::from_millis(200);
    let fake = Fake::new();
    let ah = Apphost::new(cfg, fake.os()).unwrap();
    ah.set_label("a.img", "web").unwrap();
    let a = TestAgent::start_with(Options {
        reconciler: Arc::new(ah.clone()),
        ..Default::default()
    })
    .await;
    a.agent.forward_app_events(ah.subscribe());
    let mut s = Sub::new(a.connect().await);
    assert!(is_ok(&s.subscribe(&format!(
        "<filter type=\"subtree\"><app-state-changed xmlns=\"{AH}\"><app>web</app></app-state-changed></filter>"
    )).await));
    let mut b = a.connect().await;
    let r = b
        .rpc(&format!("<edit-config><target><running/></target><config><app-hosting xmlns=\"{AH}\"><app><name>web</name><enable>true</enable><autostart>true</autostart><image>web</image></app></app-hosting></config></edit-config>"))
        .await
        .unwrap();
    assert!(is_ok(&r), "{r}");
    // The reconciler converges in its own thread; each step is reported.
    let mut statuses = Vec::new();
    while statuses.last().map(String::as_str) != Some("running") {
        let ev = s.next().await;
        assert_eq!(event_name(&ev), "app-state-changed", "{ev}");
        statuses.push(field(&ev, "status").unwrap());
    }
    assert!(statuses.len() >= 2, "{statuses:?}");
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_change_for_startup() {
    let a = TestAgent::start().await;
    let mut s = Sub::new(a.connect().await);
    assert!(is_ok(
        &s.subscribe(&format!(
            "<filter type=\"subtree\"><netconf-config-change xmlns=\"{NCN}\"/></filter>"
        ))
        .await
    ));
    let mut b = a.connect().await;
    assert!(is_ok(&b.rpc(&cpu_edit("running", 33)).await.unwrap()));
    let ev = s.next().await;
    assert_eq!(field(&ev, "datastore").as_deref(), Some("running"), "{ev}");

    // Saving running: startup changed, with its edits.
    let save = "<copy-config><target><startup/></target><source><running/></source></copy-config>";
    assert!(is_ok(&b.rpc(save).await.unwrap()));
    let ev = s.next().await;
    assert_eq!(field(&ev, "datastore").as_deref(), Some("startup"), "{ev}");
    assert_eq!(field(&ev, "session-id"), Some(b.session_id.to_string()));
    assert!(ev.contains("/ah:app-hosting"), "{ev}");
    // Saving again changes nothing: no event.
    assert!(is_ok(&b.rpc(save).await.unwrap()));
    // delete-config of startup removes what it held.
    assert!(is_ok(
        &b.rpc("<delete-config><target><startup/></target></delete-config>")
            .await
            .unwrap()
    ));
    let ev = s.next().await;
    assert_eq!(field(&ev, "datastore").as_deref(), Some("startup"), "{ev}");
    assert_eq!(field(&ev, "operation").as_deref(), Some("delete"), "{ev}");
    a.stop().await;
}
