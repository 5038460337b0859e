//! RFC 6022 monitoring state and get-schema, and the YANG library, on the
//! real libyang context.

use apphost::datastore::DsName;
use apphost::netconf::monitoring::{self, Counters, LockInfo, MonitoringInfo, SessionInfo};
use apphost::netconf::print::{print_data, WithDefaults};
use apphost::netconf::yanglib;
use apphost::schema::{AH_MODULE, AH_NS, AH_REVISION};
use chrono::{TimeZone, Utc};
use yang2::data::{Data, DataValidationFlags};

fn info() -> MonitoringInfo {
    let t0 = Utc.with_ymd_and_hms(2026, 12, 3, 20, 0, 0).unwrap();
    let mut info = MonitoringInfo::new(t0);
    info.capabilities = vec![
        "urn:ietf:params:netconf:base:1.0".to_owned(),
        "urn:ietf:params:netconf:base:1.1".to_owned(),
        "urn:ietf:params:netconf:capability:with-defaults:1.0?basic-mode=explicit&also-supported=report-all,report-all-tagged,trim".to_owned(),
    ];
    info.sessions = vec![
        SessionInfo {
            session_id: 7,
            username: "alice".to_owned(),
            source_host: Some("127.0.0.1".to_owned()),
            login_time: Utc.with_ymd_and_hms(2026, 12, 3, 20, 1, 2).unwrap(),
            counters: Counters {
                in_rpcs: 5,
                in_bad_rpcs: 1,
                out_rpc_errors: 2,
                out_notifications: 0,
            },
        },
        SessionInfo {
            session_id: 9,
            username: "bob".to_owned(),
            source_host: Some("::1".to_owned()),
            login_time: Utc.with_ymd_and_hms(2026, 12, 3, 20, 5, 0).unwrap(),
            counters: Counters::default(),
        },
    ];
    info.locks = vec![LockInfo {
        datastore: DsName::Candidate,
        session_id: 7,
        locked_time: Utc.with_ymd_and_hms(2026, 12, 3, 20, 2, 0).unwrap(),
    }];
    info.stats.in_sessions = 12;
    info.stats.totals.in_rpcs = 40;
    info
}

const NCM: &str = "/ietf-netconf-monitoring:netconf-state";

#[test]
fn monitoring_state_validates_and_holds_sessions() {
    let mut tree = monitoring::state(&info()).expect("builds");
    tree.validate(DataValidationFlags::PRESENT)
        .expect("netconf-state is valid against RFC 6022's schema");

    let user = tree
        .find_path(&format!("{NCM}/sessions/session[session-id='7']/username"))
        .expect("session 7");
    assert_eq!(user.value_canonical().as_deref(), Some("alice"));
    let host = tree
        .find_path(&format!(
            "{NCM}/sessions/session[session-id='9']/source-host"
        ))
        .expect("host");
    assert_eq!(host.value_canonical().as_deref(), Some("::1"));
    // libyang's canonical form of a UTC yang:date-and-time is `+00:00`.
    let t = tree
        .find_path(&format!(
            "{NCM}/sessions/session[session-id='7']/login-time"
        ))
        .expect("login");
    assert_eq!(
        t.value_canonical().as_deref(),
        Some("2026-12-03T20:01:02+00:00")
    );
    let bad = tree
        .find_path(&format!(
            "{NCM}/sessions/session[session-id='7']/in-bad-rpcs"
        ))
        .expect("counter");
    assert_eq!(bad.value_canonical().as_deref(), Some("1"));
    let tr = tree
        .find_path(&format!("{NCM}/sessions/session[session-id='7']/transport"))
        .expect("transport");
    assert_eq!(
        tr.value_canonical().as_deref(),
        Some("ietf-netconf-monitoring:netconf-ssh")
    );

    let lock = tree
        .find_path(&format!(
            "{NCM}/datastores/datastore[name='candidate']/locks/global-lock/locked-by-session"
        ))
        .expect("candidate lock");
    assert_eq!(lock.value_canonical().as_deref(), Some("7"));
    assert!(tree
        .find_path(&format!("{NCM}/datastores/datastore[name='running']"))
        .is_ok());
    assert!(tree
        .find_path(&format!("{NCM}/datastores/datastore[name='running']/locks"))
        .is_err());

    let ns = tree
        .find_path(&format!(
            "{NCM}/schemas/schema[identifier='{AH_MODULE}'][version='{AH_REVISION}'][format='ietf-netconf-monitoring:yang']/namespace"
        ))
        .expect("app-hosting schema listed");
    assert_eq!(ns.value_canonical().as_deref(), Some(AH_NS));
    // Imported-only modules are listed too (clients need them to compile).
    assert!(tree
        .find_path(&format!(
            "{NCM}/schemas/schema[identifier='ietf-yang-types'][version='2013-07-15'][format='ietf-netconf-monitoring:yang']"
        ))
        .is_ok());

    let caps = tree
        .find_xpath(&format!("{NCM}/capabilities/capability"))
        .expect("caps")
        .count();
    assert_eq!(caps, 3);
    let start = tree
        .find_path(&format!("{NCM}/statistics/netconf-start-time"))
        .expect("start");
    assert_eq!(
        start.value_canonical().as_deref(),
        Some("2026-12-03T20:00:00+00:00")
    );

    let xml = print_data(&tree, WithDefaults::Explicit).expect("prints");
    assert!(xml.contains("<location>NETCONF</location>"), "{xml}");
    assert!(
        xml.contains("also-supported=report-all,report-all-tagged,trim"),
        "{xml}"
    );
}

#[test]
fn get_schema_returns_module_text() {
    let text = monitoring::get_schema(AH_MODULE, None, None).expect("app-hosting text");
    assert!(text.starts_with("module app-hosting {"), "{}", &text[..40]);
    assert_eq!(
        text,
        apphost::schema::embedded_source(AH_MODULE, Some(AH_REVISION)).unwrap_or_default()
    );
    let same = monitoring::get_schema(AH_MODULE, Some(AH_REVISION), Some("ncm:yang"))
        .expect("with version");
    assert_eq!(text, same);
    // An empty version means "any" (RFC 6022 §3.1).
    assert!(monitoring::get_schema(AH_MODULE, Some(""), Some("yang")).is_ok());

    // libyang's internal modules have no embedded text: printed from the context.
    let types = monitoring::get_schema("ietf-yang-types", None, None).expect("ietf-yang-types");
    assert!(types.contains("module ietf-yang-types"), "{types}");

    let yin = monitoring::get_schema(AH_MODULE, None, Some("yin")).expect("yin");
    assert!(
        yin.contains("<module name=\"app-hosting\""),
        "{}",
        &yin[..200.min(yin.len())]
    );
}

#[test]
fn get_schema_refuses_unknown() {
    let e = monitoring::get_schema("no-such-module", None, None).expect_err("unknown refused");
    assert_eq!(e.tag.as_str(), "invalid-value");
    assert_eq!(e.error_type.as_str(), "application");
    let e =
        monitoring::get_schema(AH_MODULE, Some("1999-01-01"), None).expect_err("unknown version");
    assert_eq!(e.tag.as_str(), "invalid-value");
    let e = monitoring::get_schema(AH_MODULE, None, Some("xsd")).expect_err("format not served");
    assert_eq!(e.tag.as_str(), "invalid-value");
}

#[test]
fn yang_library_lists_modules_in_both_forms() {
    let mut tree = yanglib::state().expect("yang library");
    tree.validate(DataValidationFlags::PRESENT)
        .expect("valid against ietf-yang-library");

    let rev = tree
        .find_path(&format!(
            "/ietf-yang-library:yang-library/module-set[name='complete']/module[name='{AH_MODULE}']/revision"
        ))
        .expect("app-hosting in the module set");
    assert_eq!(rev.value_canonical().as_deref(), Some(AH_REVISION));
    let cid = tree
        .find_path("/ietf-yang-library:yang-library/content-id")
        .expect("content-id");
    assert_eq!(cid.value_canonical(), Some(yanglib::content_id()));
    assert!(tree
        .find_path(
            "/ietf-yang-library:yang-library/datastore[name='ietf-datastores:candidate']/schema"
        )
        .is_ok());

    // RFC 7895 form, read by netopeer2-cli.
    let ns = tree
        .find_path(&format!(
            "/ietf-yang-library:modules-state/module[name='{AH_MODULE}'][revision='{AH_REVISION}']/namespace"
        ))
        .expect("app-hosting in modules-state");
    assert_eq!(ns.value_canonical().as_deref(), Some(AH_NS));
    let ct = tree
        .find_path(&format!(
            "/ietf-yang-library:modules-state/module[name='{AH_MODULE}'][revision='{AH_REVISION}']/conformance-type"
        ))
        .expect("conformance");
    assert_eq!(ct.value_canonical().as_deref(), Some("implement"));
    let set_id = tree
        .find_path("/ietf-yang-library:modules-state/module-set-id")
        .expect("module-set-id");
    assert_eq!(set_id.value_canonical(), Some(yanglib::content_id()));
    let feature = tree
        .find_path("/ietf-yang-library:modules-state/module[name='ietf-netconf'][revision='2011-06-01']/feature[.='candidate']");
    assert!(feature.is_ok(), "ietf-netconf features listed");

    let xml = print_data(&tree, WithDefaults::Explicit).expect("prints");
    assert!(!xml.contains("file://"), "no server paths leak");
}
