//! Confirmed commit (RFC 6241 §8.4) over SSH with our own client: timeout,
//! confirmation, cancel-commit, the owning session ending, persist / persist-id
//! and the errors of each. The state machine itself is tested in
//! tests/confirmed.rs; these check the NETCONF wiring.

mod common;

use std::time::Duration;

use common::{is_ok, text_of, Client, TestAgent};

fn ah() -> &'static str {
    apphost::schema::AH_NS
}

async fn set_cpu(c: &mut Client, cpu: u8) {
    let r = c
        .rpc(&format!(
            "<edit-config><target><candidate/></target><config><app-hosting xmlns=\"{}\"><cpu>{cpu}</cpu></app-hosting></config></edit-config>",
            ah()
        ))
        .await
        .unwrap();
    assert!(is_ok(&r), "{r}");
}

async fn running_cpu(c: &mut Client) -> Option<String> {
    let r = c
        .rpc(&format!(
            "<get-config><source><running/></source><filter type=\"subtree\"><app-hosting xmlns=\"{}\"><cpu/></app-hosting></filter></get-config>",
            ah()
        ))
        .await
        .unwrap();
    text_of(&r, "cpu")
}

fn error_tag(reply: &str) -> Option<String> {
    text_of(reply, "error-tag")
}

async fn base(c: &mut Client) {
    set_cpu(c, 30).await;
    assert!(is_ok(&c.rpc("<commit/>").await.unwrap()));
}

async fn wait_cpu(c: &mut Client, want: &str, limit: Duration) {
    let t0 = tokio::time::Instant::now();
    loop {
        if running_cpu(c).await.as_deref() == Some(want) {
            return;
        }
        assert!(t0.elapsed() < limit, "running cpu never became {want}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn hello_announces_confirmed_commit() {
    let a = TestAgent::start().await;
    let c = a.connect().await;
    assert!(
        c.server_hello
            .contains("urn:ietf:params:netconf:capability:confirmed-commit:1.1"),
        "{}",
        c.server_hello
    );
    a.stop().await;
}

#[tokio::test]
async fn timeout_rolls_running_back() {
    let a = TestAgent::start().await;
    let mut c = a.connect().await;
    base(&mut c).await;
    set_cpu(&mut c, 40).await;
    let r = c
        .rpc("<commit><confirmed/><confirm-timeout>1</confirm-timeout></commit>")
        .await
        .unwrap();
    assert!(is_ok(&r), "{r}");
    assert_eq!(running_cpu(&mut c).await.as_deref(), Some("40"));
    wait_cpu(&mut c, "30", Duration::from_secs(5)).await;
    // Candidate follows the rollback, and nothing is pending any more.
    let r = c.rpc("<cancel-commit/>").await.unwrap();
    assert_eq!(error_tag(&r).as_deref(), Some("operation-failed"), "{r}");
    a.stop().await;
}

#[tokio::test]
async fn plain_commit_confirms() {
    let a = TestAgent::start().await;
    let mut c = a.connect().await;
    base(&mut c).await;
    set_cpu(&mut c, 40).await;
    let r = c
        .rpc("<commit><confirmed/><confirm-timeout>2</confirm-timeout></commit>")
        .await
        .unwrap();
    assert!(is_ok(&r), "{r}");
    assert!(is_ok(&c.rpc("<commit/>").await.unwrap()));
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(running_cpu(&mut c).await.as_deref(), Some("40"));
    a.stop().await;
}

#[tokio::test]
async fn cancel_commit_and_its_errors() {
    let a = TestAgent::start().await;
    let mut c = a.connect().await;
    base(&mut c).await;
    // Nothing pending.
    let r = c.rpc("<cancel-commit/>").await.unwrap();
    assert_eq!(error_tag(&r).as_deref(), Some("operation-failed"), "{r}");
    set_cpu(&mut c, 45).await;
    assert!(is_ok(
        &c.rpc("<commit><confirmed/></commit>").await.unwrap()
    ));
    // Another session may neither cancel nor confirm it.
    let mut other = a.connect().await;
    let r = other.rpc("<cancel-commit/>").await.unwrap();
    assert_eq!(error_tag(&r).as_deref(), Some("in-use"), "{r}");
    let r = other.rpc("<commit/>").await.unwrap();
    assert_eq!(error_tag(&r).as_deref(), Some("in-use"), "{r}");
    assert_eq!(running_cpu(&mut other).await.as_deref(), Some("45"));
    let r = c.rpc("<cancel-commit/>").await.unwrap();
    assert!(is_ok(&r), "{r}");
    assert_eq!(running_cpu(&mut c).await.as_deref(), Some("30"));
    a.stop().await;
}

#[tokio::test]
async fn session_end_rolls_back_without_persist() {
    let a = TestAgent::start().await;
    let mut c = a.connect().await;
    base(&mut c).await;
    set_cpu(&mut c, 41).await;
    assert!(is_ok(
        &c.rpc("<commit><confirmed/></commit>").await.unwrap()
    ));
    c.disconnect().await;
    let mut d = a.connect().await;
    wait_cpu(&mut d, "30", Duration::from_secs(5)).await;
    a.stop().await;
}

#[tokio::test]
async fn persist_survives_the_session_and_persist_id_confirms() {
    let a = TestAgent::start().await;
    let mut c = a.connect().await;
    base(&mut c).await;
    set_cpu(&mut c, 42).await;
    let r = c
        .rpc("<commit><confirmed/><persist>tok-1</persist></commit>")
        .await
        .unwrap();
    assert!(is_ok(&r), "{r}");
    c.disconnect().await;
    let mut d = a.connect().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(running_cpu(&mut d).await.as_deref(), Some("42"));
    // Without or with a wrong persist-id: refused, still pending.
    let r = d.rpc("<commit/>").await.unwrap();
    assert_eq!(error_tag(&r).as_deref(), Some("in-use"), "{r}");
    let r = d
        .rpc("<commit><persist-id>nope</persist-id></commit>")
        .await
        .unwrap();
    assert_eq!(error_tag(&r).as_deref(), Some("invalid-value"), "{r}");
    let r = d
        .rpc("<commit><persist-id>tok-1</persist-id></commit>")
        .await
        .unwrap();
    assert!(is_ok(&r), "{r}");
    let r = d.rpc("<cancel-commit/>").await.unwrap();
    assert_eq!(error_tag(&r).as_deref(), Some("operation-failed"), "{r}");
    assert_eq!(running_cpu(&mut d).await.as_deref(), Some("42"));
    a.stop().await;
}

#[tokio::test]
async fn bad_parameters_are_refused_and_change_nothing() {
    let a = TestAgent::start().await;
    let mut c = a.connect().await;
    base(&mut c).await;
    set_cpu(&mut c, 43).await;
    for (body, what) in [
        (
            "<commit><confirmed/><confirm-timeout>0</confirm-timeout></commit>",
            "zero timeout",
        ),
        (
            "<commit><confirmed/><confirm-timeout>soon</confirm-timeout></commit>",
            "not a number",
        ),
        (
            "<commit><confirm-timeout>5</confirm-timeout></commit>",
            "timeout without confirmed",
        ),
        (
            "<commit><persist>x</persist></commit>",
            "persist without confirmed",
        ),
    ] {
        let r = c.rpc(body).await.unwrap();
        assert_eq!(
            error_tag(&r).as_deref(),
            Some("invalid-value"),
            "{what}: {r}"
        );
        assert!(
            r.contains("<error-type>protocol</error-type>"),
            "{what}: {r}"
        );
        assert_eq!(running_cpu(&mut c).await.as_deref(), Some("30"), "{what}");
    }
    a.stop().await;
}
