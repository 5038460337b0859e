//! NETCONF over SSH end to end: our own client (russh) against the agent
//! running in-process on 127.0.0.1.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use apphost::datastore::Commit;
use apphost::reconciler::Reconciler;
use common::*;

const AH: &str = "urn:apphost:yang:app-hosting";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hello_capabilities_and_session_id() {
    let a = TestAgent::start().await;
    let c1 = a.connect().await;
    let c2 = a.connect().await;
    assert!(c1.session_id > 0);
    assert_ne!(c1.session_id, c2.session_id);
    let h = &c1.server_hello;
    for cap in [
        BASE10,
        BASE11,
        ":writable-running:1.0",
        ":candidate:1.0",
        ":rollback-on-error:1.0",
        ":validate:1.1",
        ":startup:1.0",
        ":xpath:1.0",
        ":with-defaults:1.0?basic-mode=explicit&amp;also-supported=report-all,report-all-tagged,trim",
        "urn:ietf:params:netconf:capability:yang-library:1.1?revision=2019-01-04&amp;content-id=",
        "urn:ietf:params:xml:ns:yang:ietf-netconf-monitoring?module=ietf-netconf-monitoring&amp;revision=2010-10-04",
    ] {
        assert!(h.contains(cap), "hello lacks {cap}: {h}");
    }
    // YANG 1.1 modules only in the yang-library.
    assert!(!h.contains("module=app-hosting"));
    c1.disconnect().await;
    c2.disconnect().await;
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn framing_10_and_11() {
    let a = TestAgent::start().await;
    let mut c10 = a.connect_10().await;
    assert_eq!(
        c10.framing,
        apphost::netconf::framing::Framing::EndOfMessage
    );
    let r = c10
        .rpc("<get-config><source><running/></source></get-config>")
        .await
        .unwrap();
    assert!(r.contains("<data"), "{r}");
    let mut c11 = a.connect().await;
    assert_eq!(c11.framing, apphost::netconf::framing::Framing::Chunked);
    let r = c11
        .rpc("<get-config><source><running/></source></get-config>")
        .await
        .unwrap();
    assert!(r.contains("<data"), "{r}");
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunked_rpc_in_same_write_as_hello() {
    // ncclient may send its first chunked rpc right behind its hello.
    let a = TestAgent::start().await;
    let handle = ssh_connect(a.port, Login::Password("admin", "admin"))
        .await
        .unwrap();
    let ch = open_subsystem(&handle, "netconf").await.unwrap();
    let mut stream = ch.into_stream();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rpc = format!("<rpc xmlns=\"{NC}\" message-id=\"1\"><get-config><source><running/></source></get-config></rpc>");
    let msg = format!(
        "<hello xmlns=\"{NC}\"><capabilities><capability>{BASE11}</capability></capabilities></hello>]]>]]>\n#{}\n{rpc}\n##\n",
        rpc.len()
    );
    stream.write_all(msg.as_bytes()).await.unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 8192];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !String::from_utf8_lossy(&got).contains("\n##\n") {
        let n = tokio::time::timeout_at(deadline, stream.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "closed");
        got.extend_from_slice(&buf[..n]);
    }
    let s = String::from_utf8_lossy(&got);
    assert!(s.contains("message-id=\"1\"") && s.contains("<data"), "{s}");
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_message_ends_only_that_session() {
    let a = TestAgent::start_with(Options {
        max_message_size: 4096,
        ..Default::default()
    })
    .await;
    let mut good = a.connect().await;
    let mut bad = a.connect().await;
    let big = format!("<rpc xmlns=\"{NC}\" message-id=\"1\"><get-config><source><running/></source></get-config>{}</rpc>", " ".repeat(10000));
    bad.send_raw_framed(&big).await.unwrap();
    assert!(bad.closed_by_server().await, "oversize session not closed");
    let r = good
        .rpc("<get-config><source><running/></source></get-config>")
        .await
        .unwrap();
    assert!(r.contains("<data"), "{r}");
    // EOM framing too: a message without terminator growing past the limit.
    let mut bad10 = a.connect_10().await;
    bad10.send_bytes(&vec![b' '; 8000]).await.unwrap();
    assert!(bad10.closed_by_server().await);
    assert!(is_ok(
        &good
            .rpc("<lock><target><running/></target></lock>")
            .await
            .unwrap()
    ));
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_xml_closes_only_that_session() {
    let a = TestAgent::start().await;
    let mut good = a.connect().await;
    let mut bad = a.connect().await;
    bad.send_raw_framed("<rpc message-id=\"1\"><get-config></rpc>")
        .await
        .unwrap();
    let reply = bad
        .read_message()
        .await
        .unwrap()
        .expect("an rpc-error before closing");
    assert!(reply.contains("malformed-message"), "{reply}");
    assert!(bad.closed_by_server().await);
    // Bad chunk framing.
    let mut bad2 = a.connect().await;
    bad2.send_bytes(b"\n#zz\n").await.unwrap();
    assert!(bad2.closed_by_server().await);
    let r = good
        .rpc("<get-config><source><running/></source></get-config>")
        .await
        .unwrap();
    assert!(r.contains("<data"));
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_password_key_and_refusals() {
    let a = TestAgent::start().await;
    // Public key.
    let c = Client::connect(
        a.port,
        Login::Key("keyuser", Box::new(client_key())),
        &[BASE11],
    )
    .await
    .unwrap();
    assert!(c.session_id > 0);
    // Wrong password, unknown user, unauthorized key.
    assert!(ssh_connect(a.port, Login::Password("admin", "wrong"))
        .await
        .is_err());
    assert!(ssh_connect(a.port, Login::Password("nobody", "admin"))
        .await
        .is_err());
    let other = russh::keys::PrivateKey::from(
        russh::keys::ssh_key::private::Ed25519Keypair::from_seed(&[9u8; 32]),
    );
    assert!(ssh_connect(a.port, Login::Key("keyuser", Box::new(other)))
        .await
        .is_err());
    assert!(
        ssh_connect(a.port, Login::Key("admin", Box::new(client_key())))
            .await
            .is_err()
    );
    // A retry with the right password on the same connection works: the
    // password method stays offered after a failure.
    let config = Arc::new(russh::client::Config::default());
    struct H;
    impl russh::client::Handler for H {
        type Error = russh::Error;
        async fn check_server_key(
            &mut self,
            _k: &russh::keys::PublicKeyOrCertificate,
        ) -> Result<bool, Self::Error> {
            Ok(true)
        }
    }
    let mut h = russh::client::connect(config, ("127.0.0.1", a.port), H)
        .await
        .unwrap();
    assert!(!h
        .authenticate_password("admin", "bad")
        .await
        .unwrap()
        .success());
    assert!(h
        .authenticate_password("admin", "admin")
        .await
        .unwrap()
        .success());
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_subsystems_refused() {
    let a = TestAgent::start().await;
    let h = ssh_connect(a.port, Login::Password("admin", "admin"))
        .await
        .unwrap();
    assert!(open_subsystem(&h, "sftp").await.is_err());
    // The connection is still usable for netconf.
    assert!(open_subsystem(&h, "netconf").await.is_ok());
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_unlock_and_lock_denied() {
    let a = TestAgent::start().await;
    let mut c1 = a.connect().await;
    let mut c2 = a.connect().await;
    for ds in ["running", "candidate", "startup"] {
        let lock = format!("<lock><target><{ds}/></target></lock>");
        let unlock = format!("<unlock><target><{ds}/></target></unlock>");
        assert!(is_ok(&c1.rpc(&lock).await.unwrap()));
        let r = c2.rpc(&lock).await.unwrap();
        assert_eq!(
            text_of(&r, "error-tag").as_deref(),
            Some("lock-denied"),
            "{r}"
        );
        assert_eq!(
            text_of(&r, "session-id"),
            Some(c1.session_id.to_string()),
            "{r}"
        );
        // Not the holder: unlock refused.
        let r = c2.rpc(&unlock).await.unwrap();
        assert!(!is_ok(&r), "{r}");
        assert!(is_ok(&c1.rpc(&unlock).await.unwrap()));
        assert!(is_ok(&c2.rpc(&lock).await.unwrap()));
        assert!(is_ok(&c2.rpc(&unlock).await.unwrap()));
    }
    // Edit of a datastore locked by another session.
    assert!(is_ok(
        &c1.rpc("<lock><target><running/></target></lock>")
            .await
            .unwrap()
    ));
    let r = c2
        .rpc(&format!(
            "<edit-config><target><running/></target><config><app-hosting xmlns=\"{AH}\"><cpu>30</cpu></app-hosting></config></edit-config>"
        ))
        .await
        .unwrap();
    assert_eq!(text_of(&r, "error-tag").as_deref(), Some("in-use"), "{r}");
    a.stop().await;
}

async fn wait_lock_free(c: &mut Client, ds: &str) -> bool {
    for _ in 0..50 {
        let r = c
            .rpc(&format!("<lock><target><{ds}/></target></lock>"))
            .await
            .unwrap();
        if is_ok(&r) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locks_released_on_tcp_drop_and_kill_session() {
    let a = TestAgent::start().await;
    let mut c1 = a.connect().await;
    assert!(is_ok(
        &c1.rpc("<lock><target><candidate/></target></lock>")
            .await
            .unwrap()
    ));
    c1.disconnect().await;
    let mut c2 = a.connect().await;
    assert!(
        wait_lock_free(&mut c2, "candidate").await,
        "lock not released after disconnect"
    );
    // kill-session: c2 holds candidate; c3 kills c2 and gets the lock at once.
    let mut c3 = a.connect().await;
    let r = c3
        .rpc(&format!(
            "<kill-session><session-id>{}</session-id></kill-session>",
            c3.session_id
        ))
        .await
        .unwrap();
    assert_eq!(
        text_of(&r, "error-tag").as_deref(),
        Some("invalid-value"),
        "{r}"
    );
    let r = c3
        .rpc("<kill-session><session-id>99999</session-id></kill-session>")
        .await
        .unwrap();
    assert_eq!(
        text_of(&r, "error-tag").as_deref(),
        Some("invalid-value"),
        "{r}"
    );
    let r = c3
        .rpc(&format!(
            "<kill-session><session-id>{}</session-id></kill-session>",
            c2.session_id
        ))
        .await
        .unwrap();
    assert!(is_ok(&r), "{r}");
    assert!(is_ok(
        &c3.rpc("<lock><target><candidate/></target></lock>")
            .await
            .unwrap()
    ));
    assert!(c2.closed_by_server().await, "killed session still open");
    // close-session ends the session (and releases its locks).
    let r = c3.rpc("<close-session/>").await.unwrap();
    assert!(is_ok(&r));
    assert!(c3.closed_by_server().await);
    let mut c4 = a.connect().await;
    assert!(wait_lock_free(&mut c4, "candidate").await);
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reply_echoes_attributes_and_missing_message_id() {
    let a = TestAgent::start().await;
    let mut c = a.connect().await;
    c.send_raw_framed(&format!(
        "<nc:rpc xmlns:nc=\"{NC}\" xmlns:x=\"urn:x\" message-id=\"m&amp;1\" x:user=\"u1\" other=\"o\"><nc:get-config><nc:source><nc:running/></nc:source></nc:get-config></nc:rpc>"
    ))
    .await
    .unwrap();
    let r = c.read_message().await.unwrap().unwrap();
    let d = roxmltree::Document::parse(&r).unwrap();
    let root = d.root_element();
    assert_eq!(root.attribute("message-id"), Some("m&1"));
    assert_eq!(root.attribute(("urn:x", "user")), Some("u1"));
    assert_eq!(root.attribute("other"), Some("o"));
    c.send_raw_framed(&format!(
        "<rpc xmlns=\"{NC}\"><get-config><source><running/></source></get-config></rpc>"
    ))
    .await
    .unwrap();
    let r = c.read_message().await.unwrap().unwrap();
    assert_eq!(
        text_of(&r, "error-tag").as_deref(),
        Some("missing-attribute"),
        "{r}"
    );
    assert_eq!(
        text_of(&r, "bad-attribute").as_deref(),
        Some("message-id"),
        "{r}"
    );
    // Unknown operation.
    let r = c.rpc("<frobnicate/>").await.unwrap();
    assert_eq!(
        text_of(&r, "error-tag").as_deref(),
        Some("operation-not-supported"),
        "{r}"
    );
    let r = c.rpc("<frob xmlns=\"urn:nowhere\"/>").await.unwrap();
    assert_eq!(
        text_of(&r, "error-tag").as_deref(),
        Some("unknown-namespace"),
        "{r}"
    );
    a.stop().await;
}

#[derive(Default)]
struct Counting(AtomicUsize);
impl Reconciler for Counting {
    fn apply(&self, _c: &Commit) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edit_commit_get_config_round_trip() {
    let rec = Arc::new(Counting::default());
    let a = TestAgent::start_with(Options {
        reconciler: rec.clone(),
        ..Default::default()
    })
    .await;
    let mut c = a.connect().await;
    // Unqualified <config> inside prefixed operation (ncclient, Ansible).
    c.send_raw_framed(&format!(
        "<nc:rpc xmlns:nc=\"{NC}\" message-id=\"5\"><nc:edit-config><nc:target><nc:candidate/></nc:target>\
         <config><app-hosting xmlns=\"{AH}\"><app><name>web</name><image>busybox</image></app></app-hosting></config>\
         </nc:edit-config></nc:rpc>"
    ))
    .await
    .unwrap();
    let r = c.read_message().await.unwrap().unwrap();
    assert!(is_ok(&r), "{r}");
    // Candidate has it, running not yet.
    let cand = c
        .rpc("<get-config><source><candidate/></source></get-config>")
        .await
        .unwrap();
    assert!(cand.contains("<name>web</name>"), "{cand}");
    let run = c
        .rpc("<get-config><source><running/></source></get-config>")
        .await
        .unwrap();
    assert!(!run.contains("web"), "{run}");
    // Lock on a modified candidate is refused.
    let r = c
        .rpc("<lock><target><candidate/></target></lock>")
        .await
        .unwrap();
    assert_eq!(
        text_of(&r, "error-tag").as_deref(),
        Some("lock-denied"),
        "{r}"
    );
    assert_eq!(rec.0.load(Ordering::SeqCst), 0);
    let r = c.rpc("<commit/>").await.unwrap();
    assert!(is_ok(&r), "{r}");
    assert_eq!(
        rec.0.load(Ordering::SeqCst),
        1,
        "reconciler called once per commit"
    );
    let run1 = c
        .rpc("<get-config><source><running/></source></get-config>")
        .await
        .unwrap();
    assert!(run1.contains("<name>web</name>"), "{run1}");
    // Byte-stable output when nothing changed.
    let run2 = c
        .rpc("<get-config><source><running/></source></get-config>")
        .await
        .unwrap();
    assert_eq!(data_of(&run1), data_of(&run2));
    // Direct edit of running applies at once and reaches the reconciler.
    let r = c
        .rpc(&format!(
            "<edit-config><target><running/></target><config><app-hosting xmlns=\"{AH}\"><cpu>30</cpu></app-hosting></config></edit-config>"
        ))
        .await
        .unwrap();
    assert!(is_ok(&r), "{r}");
    assert_eq!(rec.0.load(Ordering::SeqCst), 2);
    // An invalid value gives an rpc-error with a qualified error-path.
    let r = c
        .rpc(&format!(
            "<edit-config><target><running/></target><config><app-hosting xmlns=\"{AH}\"><cpu>99</cpu></app-hosting></config></edit-config>"
        ))
        .await
        .unwrap();
    assert_eq!(
        text_of(&r, "error-tag").as_deref(),
        Some("invalid-value"),
        "{r}"
    );
    let d = roxmltree::Document::parse(&r).unwrap();
    let p = d
        .descendants()
        .find(|n| n.has_tag_name((NC, "error-path")))
        .expect("error-path");
    assert_eq!(p.text(), Some("/ah:app-hosting/ah:cpu"), "{r}");
    assert_eq!(p.lookup_namespace_uri(Some("ah")), Some(AH));
    // copy-config running → startup, then get-config startup.
    assert!(is_ok(
        &c.rpc("<copy-config><target><startup/></target><source><running/></source></copy-config>")
            .await
            .unwrap()
    ));
    let st = c
        .rpc("<get-config><source><startup/></source></get-config>")
        .await
        .unwrap();
    assert!(st.contains("<cpu>30</cpu>"), "{st}");
    // validate, discard-changes.
    assert!(is_ok(
        &c.rpc("<validate><source><candidate/></source></validate>")
            .await
            .unwrap()
    ));
    assert!(is_ok(&c.rpc("<discard-changes/>").await.unwrap()));
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn candidate_lock_blocks_other_sessions_commit() {
    let a = TestAgent::start().await;
    let mut c1 = a.connect().await;
    let mut c2 = a.connect().await;
    assert!(is_ok(
        &c1.rpc("<lock><target><candidate/></target></lock>")
            .await
            .unwrap()
    ));
    let r = c2.rpc("<commit/>").await.unwrap();
    assert_eq!(text_of(&r, "error-tag").as_deref(), Some("in-use"), "{r}");
    let r = c2.rpc("<discard-changes/>").await.unwrap();
    assert_eq!(text_of(&r, "error-tag").as_deref(), Some("in-use"), "{r}");
    // The holder's uncommitted changes are dropped when its lock goes.
    let r = c1
        .rpc(&format!(
            "<edit-config><target><candidate/></target><config><app-hosting xmlns=\"{AH}\"><cpu>40</cpu></app-hosting></config></edit-config>"
        ))
        .await
        .unwrap();
    assert!(is_ok(&r), "{r}");
    c1.disconnect().await;
    assert!(wait_lock_free(&mut c2, "candidate").await);
    let cand = c2
        .rpc("<get-config><source><candidate/></source></get-config>")
        .await
        .unwrap();
    assert!(!cand.contains("<cpu>40</cpu>"), "{cand}");
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_schema_and_get() {
    let a = TestAgent::start().await;
    let mut c = a.connect().await;
    let r = c
        .rpc("<get-schema xmlns=\"urn:ietf:params:xml:ns:yang:ietf-netconf-monitoring\"><identifier>app-hosting</identifier></get-schema>")
        .await
        .unwrap();
    assert!(r.contains("module app-hosting"), "{r}");
    let r = c.rpc("<get/>").await.unwrap();
    assert!(r.contains("<data"), "{r}");
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_timeout_closes_session() {
    let a = TestAgent::start_with(Options {
        idle_timeout: Some(Duration::from_millis(500)),
        ..Default::default()
    })
    .await;
    let mut c = a.connect().await;
    assert!(c
        .rpc("<get-config><source><running/></source></get-config>")
        .await
        .is_ok());
    assert!(c.closed_by_server().await);
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_filters_monitoring_and_yang_library() {
    let a = TestAgent::start().await;
    let mut c1 = a.connect().await;
    let c2 = a.connect().await;
    assert!(is_ok(
        &c1.rpc("<lock><target><running/></target></lock>")
            .await
            .unwrap()
    ));
    // netconf-state lists both sessions and the lock.
    let r = c1
        .rpc("<get><filter type=\"subtree\"><netconf-state xmlns=\"urn:ietf:params:xml:ns:yang:ietf-netconf-monitoring\"/></filter></get>")
        .await
        .unwrap();
    let d = roxmltree::Document::parse(&r).unwrap();
    let ids: Vec<String> = d
        .descendants()
        .filter(|n| {
            n.tag_name().name() == "session-id"
                && n.parent().is_some_and(|p| p.tag_name().name() == "session")
        })
        .filter_map(|n| n.text().map(str::to_string))
        .collect();
    assert!(
        ids.contains(&c1.session_id.to_string()) && ids.contains(&c2.session_id.to_string()),
        "{r}"
    );
    assert!(
        d.descendants()
            .any(|n| n.tag_name().name() == "locked-by-session"
                && n.text() == Some(&c1.session_id.to_string())),
        "{r}"
    );
    // yang-library content-id equals the hello's.
    let r = c1
        .rpc("<get><filter type=\"xpath\" xmlns:yl=\"urn:ietf:params:xml:ns:yang:ietf-yang-library\" select=\"/yl:yang-library/yl:content-id\"/></get>")
        .await
        .unwrap();
    let id = text_of(&r, "content-id").expect("content-id");
    assert!(
        c1.server_hello.contains(&format!("content-id={id}<")),
        "{id}"
    );
    // get-config with a subtree filter selecting nothing that exists.
    let r = c1
        .rpc(&format!("<get-config><source><running/></source><filter><app-hosting xmlns=\"{AH}\"/></filter></get-config>"))
        .await
        .unwrap();
    assert!(r.contains("<data"), "{r}");
    // NMDA get-data of operational with an xpath filter.
    let r = c1
        .rpc("<get-data xmlns=\"urn:ietf:params:xml:ns:yang:ietf-netconf-nmda\" xmlns:ds=\"urn:ietf:params:xml:ns:yang:ietf-datastores\">\
              <datastore>ds:operational</datastore>\
              <xpath-filter xmlns:ncm=\"urn:ietf:params:xml:ns:yang:ietf-netconf-monitoring\">/ncm:netconf-state/ncm:sessions</xpath-filter></get-data>")
        .await
        .unwrap();
    assert!(r.contains("<sessions>") || r.contains("sessions"), "{r}");
    assert!(!r.contains("yang-library"), "{r}");
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_limit_queues_extra_connections() {
    let a = TestAgent::start_with(Options {
        max_sessions: 1,
        ..Default::default()
    })
    .await;
    let c1 = a.connect().await;
    let port = a.port;
    let pending = tokio::spawn(async move {
        Client::connect(port, Login::Password("admin", "admin"), &[BASE11]).await
    });
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(
        !pending.is_finished(),
        "second connection served beyond max-sessions"
    );
    c1.disconnect().await;
    let c2 = tokio::time::timeout(Duration::from_secs(5), pending)
        .await
        .expect("served after the first ended")
        .unwrap();
    assert!(c2.unwrap().session_id > 0);
    a.stop().await;
}

/// Rough latency figures (debug build numbers are pessimistic):
/// `cargo test --test netconf_ssh latency -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn latency() {
    let a = TestAgent::start().await;
    let mut c = a.connect().await;
    let n = 300;
    let t = std::time::Instant::now();
    for _ in 0..n {
        assert!(is_ok(
            &c.rpc("<lock><target><startup/></target></lock>")
                .await
                .unwrap()
        ));
        assert!(is_ok(
            &c.rpc("<unlock><target><startup/></target></unlock>")
                .await
                .unwrap()
        ));
    }
    println!(
        "lock/unlock round trip: {:?} per rpc",
        t.elapsed() / (2 * n)
    );
    let t = std::time::Instant::now();
    for i in 0..n {
        let r = c
            .rpc(&format!(
                "<edit-config><target><candidate/></target><config><app-hosting xmlns=\"{AH}\"><app><name>a{i}</name><image>busybox</image></app></app-hosting></config></edit-config>"
            ))
            .await
            .unwrap();
        assert!(is_ok(&r), "{r}");
        assert!(is_ok(&c.rpc("<commit/>").await.unwrap()));
    }
    println!(
        "edit-config + commit: {:?} per cycle ({n} apps at the end)",
        t.elapsed() / n
    );
    let t = std::time::Instant::now();
    for _ in 0..20 {
        c.rpc("<get-config><source><running/></source></get-config>")
            .await
            .unwrap();
    }
    println!("get-config of {n} apps: {:?}", t.elapsed() / 20);
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_client_hello_closes_session() {
    let a = TestAgent::start().await;
    for hello in [
        format!("<hello xmlns=\"{NC}\"><capabilities><capability>urn:x</capability></capabilities></hello>"),
        format!("<hello xmlns=\"{NC}\"><capabilities><capability>{BASE11}</capability></capabilities><session-id>4</session-id></hello>"),
        format!("<rpc xmlns=\"{NC}\" message-id=\"1\"><get/></rpc>"),
    ] {
        let handle = ssh_connect(a.port, Login::Password("admin", "admin")).await.unwrap();
        let ch = open_subsystem(&handle, "netconf").await.unwrap();
        let mut stream = ch.into_stream();
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        stream.write_all(format!("{hello}]]>]]>").as_bytes()).await.unwrap();
        let mut buf = [0u8; 65536];
        let closed = async {
            loop {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => return true,
                    Ok(_) => continue,
                }
            }
        };
        assert!(tokio::time::timeout(Duration::from_secs(5), closed).await.unwrap_or(false), "{hello}");
    }
    assert_eq!(a.agent.stats.in_bad_hellos.load(Ordering::Relaxed), 3);
    a.stop().await;
}

/// Refuses any running tree holding an app named "bad".
#[derive(Default)]
struct Picky(AtomicUsize);
impl Reconciler for Picky {
    fn check(
        &self,
        new: &yang2::data::DataTree<'static>,
    ) -> Result<(), Vec<apphost::error::RpcError>> {
        use yang2::data::Data;
        if new
            .find_path("/app-hosting:app-hosting/app[name='bad']")
            .is_ok()
        {
            return Err(vec![apphost::error::RpcError::app(
                apphost::error::ErrorTag::OperationFailed,
                "bad apps are refused",
            )
            .with_app_tag("picky")]);
        }
        Ok(())
    }
    fn apply(&self, _c: &Commit) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconciler_check_refuses_commit_and_edit() {
    let rec = Arc::new(Picky::default());
    let a = TestAgent::start_with(Options {
        reconciler: rec.clone(),
        ..Default::default()
    })
    .await;
    let mut c = a.connect().await;
    let app = |name: &str| {
        format!("<config><app-hosting xmlns=\"{AH}\"><app><name>{name}</name><image>busybox</image></app></app-hosting></config>")
    };
    let r = c
        .rpc(&format!(
            "<edit-config><target><candidate/></target>{}</edit-config>",
            app("bad")
        ))
        .await
        .unwrap();
    assert!(is_ok(&r), "{r}");
    let r = c.rpc("<commit/>").await.unwrap();
    assert_eq!(
        text_of(&r, "error-app-tag").as_deref(),
        Some("picky"),
        "{r}"
    );
    let run = c
        .rpc("<get-config><source><running/></source></get-config>")
        .await
        .unwrap();
    assert!(!run.contains("<name>bad</name>"), "{run}");
    // The refused content stays in candidate for the client to fix.
    let cand = c
        .rpc("<get-config><source><candidate/></source></get-config>")
        .await
        .unwrap();
    assert!(cand.contains("<name>bad</name>"), "{cand}");
    assert_eq!(rec.0.load(Ordering::SeqCst), 0);
    let r = c
        .rpc("<validate><source><candidate/></source></validate>")
        .await
        .unwrap();
    assert_eq!(
        text_of(&r, "error-app-tag").as_deref(),
        Some("picky"),
        "{r}"
    );
    assert!(is_ok(&c.rpc("<discard-changes/>").await.unwrap()));
    // Direct edit of running: refused and undone.
    let r = c
        .rpc(&format!(
            "<edit-config><target><running/></target>{}</edit-config>",
            app("bad")
        ))
        .await
        .unwrap();
    assert_eq!(
        text_of(&r, "error-app-tag").as_deref(),
        Some("picky"),
        "{r}"
    );
    let run = c
        .rpc("<get-config><source><running/></source></get-config>")
        .await
        .unwrap();
    assert!(!run.contains("<name>bad</name>"), "{run}");
    // A good one passes.
    let r = c
        .rpc(&format!(
            "<edit-config><target><running/></target>{}</edit-config>",
            app("good")
        ))
        .await
        .unwrap();
    assert!(is_ok(&r), "{r}");
    assert_eq!(rec.0.load(Ordering::SeqCst), 1);
    a.stop().await;
}
