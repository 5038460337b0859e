//! NACM (RFC 8341) enforced over SSH, driven with our own NETCONF client:
//! user `admin` (config group `admin`) and user `keyuser` (no groups, the
//! "reader"). The app RPCs run on the real domain (`Apphost`) with
//! recording OS fakes, so a permitted `stop` really runs.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use apphost::apphost::fake::Fake;
use apphost::apphost::{Apphost, ApphostConfig};
use apphost::netconf::rpc::app::AppRpcs;
use common::*;

const AH: &str = "urn:apphost:yang:app-hosting";
const ACM: &str = "urn:ietf:params:xml:ns:yang:ietf-netconf-acm";

struct Env {
    a: TestAgent,
    _tmp: tempfile::TempDir,
}

/// The agent with the app-hosting domain on fakes as reconciler, state
/// provider and RPC handler.
async fn start() -> Env {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tmp.path().join("ext/app/images")).unwrap();
    let mut media = HashMap::new();
    media.insert("external".to_string(), tmp.path().join("ext"));
    let mut cfg = ApphostConfig::new(tmp.path().join("state"), media);
    cfg.stop_grace = Duration::from_millis(200);
    cfg.tick = Duration::from_secs(3600);
    let ah = Arc::new(Apphost::new(cfg, Fake::new().os()).unwrap());
    let a = TestAgent::start_with(Options {
        reconciler: ah.clone(),
        ..Default::default()
    })
    .await;
    a.agent.set_yang_rpcs(Arc::new(AppRpcs(ah.clone())));
    a.agent.set_state_provider(ah);
    Env { a, _tmp: tmp }
}

async fn reader(a: &TestAgent) -> Client {
    Client::connect(
        a.port,
        Login::Key("keyuser", Box::new(client_key())),
        &[BASE10, BASE11],
    )
    .await
    .unwrap()
}

fn edit(target: &str, inner: &str) -> String {
    format!("<edit-config><target><{target}/></target><config>{inner}</config></edit-config>")
}

fn app_web() -> String {
    format!(
        "<app-hosting xmlns=\"{AH}\"><app><name>web</name><description>web server</description>\
         <environment><name>SECRET</name><value>hunter2</value></environment></app></app-hosting>"
    )
}

fn stop(app: &str) -> String {
    format!("<stop xmlns=\"{AH}\"><app>{app}</app></stop>")
}

/// Asserts an access-denied rpc-error of error-type application.
fn assert_denied(r: &str) {
    assert_eq!(
        text_of(r, "error-tag").as_deref(),
        Some("access-denied"),
        "{r}"
    );
    assert_eq!(
        text_of(r, "error-type").as_deref(),
        Some("application"),
        "{r}"
    );
}

async fn get_config(c: &mut Client, ds: &str) -> String {
    let r = c
        .rpc(&format!(
            "<get-config><source><{ds}/></source></get-config>"
        ))
        .await
        .unwrap();
    assert!(r.contains("<data"), "{r}");
    r
}

/// Admin installs NACM config (merged into running through candidate).
async fn admin_set_nacm(admin: &mut Client, nacm_inner: &str) {
    let r = admin
        .rpc(&edit(
            "candidate",
            &format!("<nacm xmlns=\"{ACM}\">{nacm_inner}</nacm>"),
        ))
        .await
        .unwrap();
    assert!(is_ok(&r), "{r}");
    let r = admin.rpc("<commit/>").await.unwrap();
    assert!(is_ok(&r), "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reader_may_read_but_not_write_or_run_operations() {
    let env = start().await;
    let mut admin = env.a.connect().await;
    let mut rd = reader(&env.a).await;

    let r = admin.rpc(&edit("running", &app_web())).await.unwrap();
    assert!(is_ok(&r), "{r}");

    // Reads work, and show the config.
    let run = get_config(&mut rd, "running").await;
    assert!(run.contains("<name>web</name>"), "{run}");
    assert!(run.contains("hunter2"), "{run}");
    let r = rd.rpc("<get/>").await.unwrap();
    assert!(r.contains("<name>web</name>"), "{r}");
    // The NACM config itself is default-deny-all: not shown to the reader
    // (its defaults are asked for, so the admin sees it).
    let get_all =
        "<get><with-defaults xmlns=\"urn:ietf:params:xml:ns:yang:ietf-netconf-with-defaults\">\
                   report-all</with-defaults></get>";
    let r = rd.rpc(get_all).await.unwrap();
    assert!(r.contains("<cpu>25</cpu>"), "{r}");
    assert!(!r.contains("enable-nacm"), "{r}");
    let r = admin.rpc(get_all).await.unwrap();
    assert!(
        r.contains("<enable-nacm>true</enable-nacm>"),
        "the admin sees the nacm container"
    );

    // edit-config to candidate and to running: refused, with the path of
    // the first node it may not write; nothing changed.
    for target in ["candidate", "running"] {
        let r = rd
            .rpc(&edit(
                target,
                &format!("<app-hosting xmlns=\"{AH}\"><cpu>40</cpu></app-hosting>"),
            ))
            .await
            .unwrap();
        assert_denied(&r);
        assert_eq!(
            text_of(&r, "error-path").as_deref(),
            Some("/ah:app-hosting/ah:cpu"),
            "{r}"
        );
    }
    let r = rd
        .rpc(&edit(
            "candidate",
            &format!("<app-hosting xmlns=\"{AH}\"><app><name>evil</name></app></app-hosting>"),
        ))
        .await
        .unwrap();
    assert_denied(&r);
    assert!(
        text_of(&r, "error-path").is_some_and(|p| p.contains("evil")),
        "{r}"
    );
    // edit-data (NMDA) goes through the same check.
    let r = rd
        .rpc(&format!(
            "<edit-data xmlns=\"urn:ietf:params:xml:ns:yang:ietf-netconf-nmda\" \
             xmlns:ds=\"urn:ietf:params:xml:ns:yang:ietf-datastores\">\
             <datastore>ds:running</datastore><config>\
             <app-hosting xmlns=\"{AH}\"><cpu>40</cpu></app-hosting></config></edit-data>"
        ))
        .await
        .unwrap();
    assert_denied(&r);
    for ds in ["candidate", "running"] {
        let c = get_config(&mut admin, ds).await;
        assert!(!c.contains("<cpu>40</cpu>"), "{c}");
        assert!(!c.contains("evil"), "{c}");
    }

    // The app RPC stop (nacm:default-deny-all) is refused.
    let r = rd.rpc(&stop("web")).await.unwrap();
    assert_denied(&r);
    // kill-session is default-deny-all: the admin session lives on.
    let r = rd
        .rpc(&format!(
            "<kill-session><session-id>{}</session-id></kill-session>",
            admin.session_id
        ))
        .await
        .unwrap();
    assert_denied(&r);
    let c = get_config(&mut admin, "running").await;
    assert!(c.contains("web"), "{c}");
    // delete-config too.
    let r = rd
        .rpc("<delete-config><target><startup/></target></delete-config>")
        .await
        .unwrap();
    assert_denied(&r);

    // commit checks the nodes of running that change (RFC 8341 §3.2.8): the
    // reader cannot commit what the admin staged.
    let r = admin
        .rpc(&edit(
            "candidate",
            &format!("<app-hosting xmlns=\"{AH}\"><cpu>45</cpu></app-hosting>"),
        ))
        .await
        .unwrap();
    assert!(is_ok(&r), "{r}");
    let r = rd.rpc("<commit/>").await.unwrap();
    assert_denied(&r);
    assert_eq!(
        text_of(&r, "error-path").as_deref(),
        Some("/ah:app-hosting/ah:cpu"),
        "{r}"
    );
    let run = get_config(&mut admin, "running").await;
    assert!(!run.contains("<cpu>45</cpu>"), "{run}");
    // copy-config onto running is a write as well.
    let r = rd
        .rpc("<copy-config><target><running/></target><source><candidate/></source></copy-config>")
        .await
        .unwrap();
    assert_denied(&r);
    let run = get_config(&mut admin, "running").await;
    assert!(!run.contains("<cpu>45</cpu>"), "{run}");
    // The admin may.
    let r = admin.rpc("<commit/>").await.unwrap();
    assert!(is_ok(&r), "{r}");
    let run = get_config(&mut rd, "running").await;
    assert!(run.contains("<cpu>45</cpu>"), "{run}");

    // Saving running to startup needs only the right to run copy-config
    // (RFC 8341 §3.2.6), which the reader has.
    let r = rd
        .rpc("<copy-config><target><startup/></target><source><running/></source></copy-config>")
        .await
        .unwrap();
    assert!(is_ok(&r), "{r}");
    let st = get_config(&mut admin, "startup").await;
    assert!(st.contains("<cpu>45</cpu>"), "{st}");

    // close-session is always allowed.
    let r = rd.rpc("<close-session/>").await.unwrap();
    assert!(is_ok(&r), "{r}");
    env.a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_rule_hides_nodes_at_once() {
    let env = start().await;
    let mut admin = env.a.connect().await;
    let mut rd = reader(&env.a).await;
    let r = admin.rpc(&edit("running", &app_web())).await.unwrap();
    assert!(is_ok(&r), "{r}");
    let r = get_config(&mut rd, "running").await;
    assert!(r.contains("hunter2"), "{r}");

    // Deny every user ("*" rule-list) read access to app environments.
    admin_set_nacm(
        &mut admin,
        "<rule-list><name>hide-env</name><group>*</group>\
         <rule><name>no-env</name><module-name>app-hosting</module-name>\
         <path xmlns:ah=\"urn:apphost:yang:app-hosting\">/ah:app-hosting/ah:app/ah:environment</path>\
         <access-operations>read</access-operations><action>deny</action></rule></rule-list>",
    )
    .await;

    // The very next reads of the reader leave the environment out.
    for ds in ["running", "candidate"] {
        let r = get_config(&mut rd, ds).await;
        assert!(!r.contains("hunter2") && !r.contains("SECRET"), "{r}");
        assert!(r.contains("<description>web server</description>"), "{r}");
    }
    let r = rd.rpc("<get/>").await.unwrap();
    assert!(!r.contains("hunter2"), "{r}");
    assert!(r.contains("<name>web</name>"), "{r}");
    let r = rd
        .rpc(
            "<get-data xmlns=\"urn:ietf:params:xml:ns:yang:ietf-netconf-nmda\" \
             xmlns:ds=\"urn:ietf:params:xml:ns:yang:ietf-datastores\">\
             <datastore>ds:operational</datastore></get-data>",
        )
        .await
        .unwrap();
    assert!(!r.contains("hunter2"), "{r}");
    assert!(r.contains("<name>web</name>"), "{r}");
    // A filter cannot probe a hidden value.
    let r = rd
        .rpc(&format!(
            "<get-config><source><running/></source><filter type=\"subtree\">\
             <app-hosting xmlns=\"{AH}\"><app><environment><value>hunter2</value></environment></app></app-hosting>\
             </filter></get-config>"
        ))
        .await
        .unwrap();
    assert!(!r.contains("hunter2"), "{r}");

    // The rule-list names group "*", so it holds for the admin too: the
    // configured rules come before the factory default.
    let r = get_config(&mut admin, "running").await;
    assert!(!r.contains("hunter2"), "{r}");
    // Removing the rule restores the reads at once.
    let r = admin
        .rpc(&edit(
            "running",
            &format!(
                "<nacm xmlns=\"{ACM}\"><rule-list xmlns:nc=\"{NC}\" nc:operation=\"delete\">\
                 <name>hide-env</name></rule-list></nacm>"
            ),
        ))
        .await
        .unwrap();
    assert!(is_ok(&r), "{r}");
    let r = get_config(&mut rd, "running").await;
    assert!(r.contains("hunter2"), "{r}");
    env.a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_rule_permits_stop_for_a_group_at_once() {
    let env = start().await;
    let mut admin = env.a.connect().await;
    let mut rd = reader(&env.a).await;
    let r = admin.rpc(&edit("running", &app_web())).await.unwrap();
    assert!(is_ok(&r), "{r}");
    let r = rd.rpc(&stop("web")).await.unwrap();
    assert_denied(&r);

    // NACM group "ops" holds keyuser; its rule-list permits stop.
    admin_set_nacm(
        &mut admin,
        "<groups><group><name>ops</name><user-name>keyuser</user-name></group></groups>\
         <rule-list><name>ops</name><group>ops</group>\
         <rule><name>may-stop</name><module-name>app-hosting</module-name><rpc-name>stop</rpc-name>\
         <access-operations>exec</access-operations><action>permit</action></rule></rule-list>",
    )
    .await;
    let r = rd.rpc(&stop("web")).await.unwrap();
    assert!(is_ok(&r), "stop now permitted and run: {r}");
    // The operation ran: an unknown app is the domain's error, not NACM's.
    let r = rd.rpc(&stop("nosuch")).await.unwrap();
    let tag = text_of(&r, "error-tag");
    assert!(
        tag.is_some() && tag.as_deref() != Some("access-denied"),
        "{r}"
    );
    // Only stop: start stays denied, and so do writes.
    let r = rd
        .rpc(&format!("<start xmlns=\"{AH}\"><app>web</app></start>"))
        .await
        .unwrap();
    assert_denied(&r);
    let r = rd
        .rpc(&edit(
            "running",
            &format!("<app-hosting xmlns=\"{AH}\"><cpu>40</cpu></app-hosting>"),
        ))
        .await
        .unwrap();
    assert_denied(&r);
    env.a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enable_nacm_false_lets_everyone_write() {
    let env = start().await;
    let mut admin = env.a.connect().await;
    let mut rd = reader(&env.a).await;
    let r = rd.rpc(&edit("running", &app_web())).await.unwrap();
    assert_denied(&r);

    admin_set_nacm(&mut admin, "<enable-nacm>false</enable-nacm>").await;
    let r = rd.rpc(&edit("running", &app_web())).await.unwrap();
    assert!(is_ok(&r), "{r}");
    let r = rd.rpc(&stop("web")).await.unwrap();
    assert!(is_ok(&r), "{r}");
    // The reader now sees (and could change) the NACM config itself.
    let r = rd.rpc("<get/>").await.unwrap();
    assert!(r.contains("<enable-nacm>false</enable-nacm>"), "{r}");
    let r = rd
        .rpc(&edit(
            "running",
            &format!("<nacm xmlns=\"{ACM}\"><enable-nacm>true</enable-nacm></nacm>"),
        ))
        .await
        .unwrap();
    assert!(is_ok(&r), "{r}");
    // ... and with that the checks are back, at once.
    let r = rd
        .rpc(&edit(
            "running",
            &format!("<app-hosting xmlns=\"{AH}\"><cpu>40</cpu></app-hosting>"),
        ))
        .await
        .unwrap();
    assert_denied(&r);
    let run = get_config(&mut admin, "running").await;
    assert!(run.contains("<name>web</name>"), "{run}");
    env.a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_config_leaves_out_what_the_user_cannot_read() {
    let env = start().await;
    let mut admin = env.a.connect().await;
    let mut rd = reader(&env.a).await;
    let r = admin.rpc(&edit("running", &app_web())).await.unwrap();
    assert!(is_ok(&r), "{r}");
    // keyuser (group ops) may write all of app-hosting and read the NACM
    // config, but not read environments.
    admin_set_nacm(
        &mut admin,
        "<groups><group><name>ops</name><user-name>keyuser</user-name></group></groups>\
         <rule-list><name>ops</name><group>ops</group>\
         <rule><name>no-env</name><module-name>app-hosting</module-name>\
         <path xmlns:ah=\"urn:apphost:yang:app-hosting\">/ah:app-hosting/ah:app/ah:environment</path>\
         <access-operations>read</access-operations><action>deny</action></rule>\
         <rule><name>write-ah</name><module-name>app-hosting</module-name>\
         <access-operations>create update delete</access-operations><action>permit</action></rule>\
         <rule><name>read-nacm</name><module-name>ietf-netconf-acm</module-name>\
         <access-operations>read</access-operations><action>permit</action></rule>\
         </rule-list>",
    )
    .await;
    let r = admin
        .rpc("<copy-config><target><startup/></target><source><running/></source></copy-config>")
        .await
        .unwrap();
    assert!(is_ok(&r), "{r}");
    let r = rd
        .rpc("<copy-config><target><candidate/></target><source><startup/></source></copy-config>")
        .await
        .unwrap();
    assert!(is_ok(&r), "{r}");
    // The environment it cannot read was not copied; the rest was.
    let cand = get_config(&mut admin, "candidate").await;
    assert!(cand.contains("<name>web</name>"), "{cand}");
    assert!(cand.contains("<name>ops</name>"), "{cand}");
    assert!(!cand.contains("hunter2"), "{cand}");
    let st = get_config(&mut admin, "startup").await;
    assert!(st.contains("hunter2"), "the source is untouched: {st}");
    // Without read access to /nacm, copying startup would delete it from
    // candidate, which the reader may not: refused, nothing changed.
    let r = admin
        .rpc(&edit(
            "running",
            &format!(
                "<nacm xmlns=\"{ACM}\"><rule-list><name>ops</name><rule xmlns:nc=\"{NC}\" \
                 nc:operation=\"delete\"><name>read-nacm</name></rule></rule-list></nacm>"
            ),
        ))
        .await
        .unwrap();
    assert!(is_ok(&r), "{r}");
    let r = rd
        .rpc("<copy-config><target><candidate/></target><source><startup/></source></copy-config>")
        .await
        .unwrap();
    assert_denied(&r);
    assert_eq!(
        text_of(&r, "error-path").as_deref(),
        Some("/nacm:nacm"),
        "{r}"
    );
    env.a.stop().await;
}

/// A rule path as clients write it (XML prefixes of their own choosing, in
/// predicates too) is stored and matched; an unknown prefix is refused.
#[test]
fn rule_paths_with_xml_prefixes_are_stored_and_matched() {
    use apphost::datastore::{Datastores, DsName, EditOptions};
    use apphost::nacm::{Nacm, Principal};
    use yang2::data::{Data, DataFormat, DataPrinterFlags};

    let mut ds = Datastores::new_empty();
    let edit = |ds: &mut Datastores, xml: &str| {
        let doc = roxmltree::Document::parse(xml).unwrap();
        ds.edit(DsName::Running, doc.root_element(), &EditOptions::default())
    };
    let rule = |path: &str| {
        format!(
            "<config xmlns=\"{NC}\"><nacm xmlns=\"{ACM}\"><rule-list><name>r</name><group>*</group>\
             <rule><name>env-of-w</name><module-name>app-hosting</module-name>\
             <path xmlns:x=\"{AH}\">{path}</path>\
             <access-operations>read</access-operations><action>deny</action></rule>\
             </rule-list></nacm>\
             <app-hosting xmlns=\"{AH}\">\
             <app><name>w</name><environment><name>A</name><value>hidden</value></environment></app>\
             <app><name>v</name><environment><name>B</name><value>shown</value></environment></app>\
             </app-hosting></config>"
        )
    };
    let out = edit(&mut ds, &rule("/y:app-hosting/y:app"));
    assert_eq!(
        out.errors.first().map(|e| e.tag),
        Some(apphost::error::ErrorTag::InvalidValue),
        "unknown prefix y: {:?}",
        out.errors
    );
    let out = edit(
        &mut ds,
        &rule("/x:app-hosting/x:app[x:name='w']/x:environment"),
    );
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    let running = ds.tree(DsName::Running);
    let stored = running
        .find_path("/ietf-netconf-acm:nacm/rule-list[name='r']/rule[name='env-of-w']/path")
        .unwrap()
        .value_canonical();
    assert_eq!(
        stored.as_deref(),
        Some("/app-hosting:app-hosting/app[name='w']/environment")
    );
    let nacm = Nacm::from_running(running);
    let mut view = running.duplicate().unwrap();
    let p = Principal {
        name: "anyone".into(),
        groups: vec![],
    };
    nacm.filter_read(&p, &mut view);
    let out = view
        .print_string(DataFormat::XML, DataPrinterFlags::WITH_SIBLINGS)
        .unwrap()
        .unwrap_or_default();
    assert!(!out.contains("hidden"), "{out}");
    assert!(out.contains("shown"), "{out}");
}

/// A confirmed commit that is cancelled rolls running back, and with it the
/// rules: what it permitted is denied again at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirmed_commit_rollback_restores_the_rules() {
    let env = start().await;
    let mut admin = env.a.connect().await;
    let mut rd = reader(&env.a).await;
    let r = admin.rpc(&edit("running", &app_web())).await.unwrap();
    assert!(is_ok(&r), "{r}");
    let r = admin
        .rpc(&edit(
            "candidate",
            &format!(
                "<nacm xmlns=\"{ACM}\"><rule-list><name>all-stop</name><group>*</group>\
                 <rule><name>may-stop</name><module-name>app-hosting</module-name>\
                 <rpc-name>stop</rpc-name><action>permit</action></rule></rule-list></nacm>"
            ),
        ))
        .await
        .unwrap();
    assert!(is_ok(&r), "{r}");
    let r = admin
        .rpc("<commit><confirmed/><confirm-timeout>60</confirm-timeout></commit>")
        .await
        .unwrap();
    assert!(is_ok(&r), "{r}");
    let r = rd.rpc(&stop("web")).await.unwrap();
    assert!(is_ok(&r), "permitted by the pending commit: {r}");
    let r = admin.rpc("<cancel-commit/>").await.unwrap();
    assert!(is_ok(&r), "{r}");
    let r = rd.rpc(&stop("web")).await.unwrap();
    assert_denied(&r);
    env.a.stop().await;
}

/// The name of the event in a `<notification>` (None for other messages).
fn event_name(xml: &str) -> Option<String> {
    let d = roxmltree::Document::parse(xml).ok()?;
    let root = d.root_element();
    if root.tag_name().name() != "notification" {
        return None;
    }
    root.children()
        .filter(|n| n.is_element())
        .find(|n| n.tag_name().name() != "eventTime")
        .map(|n| n.tag_name().name().to_string())
}

/// Event names received up to and including the first `last`.
async fn events_until(c: &mut Client, last: &str) -> Vec<String> {
    let mut seen = Vec::new();
    loop {
        let m = c
            .read_message()
            .await
            .expect("a notification within 10 s")
            .expect("session open");
        let name = event_name(&m).unwrap_or_else(|| panic!("not a notification: {m}"));
        seen.push(name.clone());
        if name == last {
            return seen;
        }
    }
}

/// A notification rule (RFC 8341 §3.4.6) keeps denied events from a
/// subscriber; the others still arrive, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notification_rule_filters_what_a_subscriber_gets() {
    const SUB: &str =
        "<create-subscription xmlns=\"urn:ietf:params:xml:ns:netconf:notification:1.0\"/>";
    let env = start().await;
    let mut admin = env.a.connect().await;
    let cpu = |v: u32| {
        edit(
            "running",
            &format!("<app-hosting xmlns=\"{AH}\"><cpu>{v}</cpu></app-hosting>"),
        )
    };

    // By default the reader gets config changes.
    let mut before = reader(&env.a).await;
    let r = before.rpc(SUB).await.unwrap();
    assert!(is_ok(&r), "{r}");
    let r = admin.rpc(&cpu(30)).await.unwrap();
    assert!(is_ok(&r), "{r}");
    let seen = events_until(&mut before, "netconf-config-change").await;
    assert_eq!(
        seen.last().map(String::as_str),
        Some("netconf-config-change")
    );
    before.disconnect().await;

    admin_set_nacm(
        &mut admin,
        "<rule-list><name>quiet</name><group>*</group>\
         <rule><name>no-config-change</name><module-name>ietf-netconf-notifications</module-name>\
         <notification-name>netconf-config-change</notification-name>\
         <access-operations>read</access-operations><action>deny</action></rule></rule-list>",
    )
    .await;
    let mut rd = reader(&env.a).await;
    let r = rd.rpc(SUB).await.unwrap();
    assert!(is_ok(&r), "{r}");
    let r = admin.rpc(&cpu(35)).await.unwrap();
    assert!(is_ok(&r), "{r}");
    // A later event of another kind: everything before it has been sent.
    let other = env.a.connect().await;
    let seen = events_until(&mut rd, "netconf-session-start").await;
    assert!(
        !seen.iter().any(|n| n == "netconf-config-change"),
        "denied event delivered: {seen:?}"
    );
    other.disconnect().await;
    env.a.stop().await;
}
