//! The edit-config engine and datastore operations against real libyang,
//! with the test module `tests/yang/edit-test.yang` and `app-hosting`.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use apphost::datastore::{
    parse_config, ConfigSource, Datastores, DefaultOperation, DsName, EditOptions, EditOutcome,
    ErrorOption, TestOption,
};
use apphost::error::{ErrorTag, RpcError};
use apphost::schema::{self, ExtraModules};
use yang2::data::Data;

const NC: &str = "urn:ietf:params:xml:ns:netconf:base:1.0";
const ET: &str = "urn:apphost:test:edit";
const AH: &str = "urn:apphost:yang:app-hosting";

/// The context is process-global: build it once with the test module.
fn init() {
    static INIT: OnceLock<()> = OnceLock::new();
    INIT.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/yang");
        schema::init(&ExtraModules {
            dir: Some(dir),
            modules: vec!["edit-test".into()],
        })
        .expect("edit-test loads");
    });
}

fn store() -> Datastores {
    init();
    Datastores::new_empty()
}

/// `<config>` with `body` inside `<top>` of edit-test.
fn top(body: &str) -> String {
    format!(
        r#"<config xmlns="{NC}" xmlns:nc="{NC}" xmlns:yang="urn:ietf:params:xml:ns:yang:1"><top xmlns="{ET}" xmlns:et="{ET}">{body}</top></config>"#
    )
}

fn raw_edit(ds: &mut Datastores, target: DsName, xml: &str, opts: &EditOptions) -> EditOutcome {
    let doc = roxmltree::Document::parse(xml).expect("test XML parses");
    ds.edit(target, doc.root_element(), opts)
}

fn edit(ds: &mut Datastores, target: DsName, body: &str) -> EditOutcome {
    raw_edit(ds, target, &top(body), &EditOptions::default())
}

fn ok(ds: &mut Datastores, target: DsName, body: &str) -> EditOutcome {
    let out = edit(ds, target, body);
    assert!(
        out.errors.is_empty(),
        "edit {body} failed: {:?}",
        out.errors
    );
    out
}

/// The single error of a failed edit.
fn one_err(out: &EditOutcome) -> &RpcError {
    assert_eq!(
        out.errors.len(),
        1,
        "expected one error, got {:?}",
        out.errors
    );
    &out.errors[0]
}

fn info<'a>(e: &'a RpcError, name: &str) -> Option<&'a str> {
    e.info
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// Canonical value at a path, if the node exists.
fn val(ds: &Datastores, target: DsName, path: &str) -> Option<String> {
    let t = ds.tree(target);
    let n = t.find_path(path).ok()?;
    Some(n.value_canonical().unwrap_or_default())
}

fn exists(ds: &Datastores, target: DsName, path: &str) -> bool {
    ds.tree(target).find_path(path).is_ok()
}

/// Present and not a default node (libyang's default flag; `is_default()`
/// compares values, which an explicit `7` would also match).
fn explicit(ds: &Datastores, target: DsName, path: &str) -> bool {
    // SAFETY: the node belongs to a live tree borrowed for this call.
    ds.tree(target)
        .find_path(path)
        .map(|n| unsafe { (*n.as_raw()).flags } & yang2::ffi::LYD_DEFAULT == 0)
        .unwrap_or(false)
}

/// Values of all nodes matching an XPath, in document order.
fn values(ds: &Datastores, target: DsName, xpath: &str) -> Vec<String> {
    match ds.tree(target).find_xpath(xpath) {
        Ok(set) => set
            .map(|n| n.value_canonical().unwrap_or_default())
            .collect(),
        Err(_) => Vec::new(),
    }
}

const C: DsName = DsName::Candidate;
const R: DsName = DsName::Running;

// ===== operations per node kind =====

#[test]
fn leaf_operations() {
    let mut ds = store();
    let out = ok(&mut ds, C, "<name>a</name>");
    assert_eq!(val(&ds, C, "/edit-test:top/name").as_deref(), Some("a"));
    assert!(
        out.changes
            .contains(&("/edit-test:top/name".into(), "create")),
        "{:?}",
        out.changes
    );
    let out = ok(&mut ds, C, "<name>b</name>");
    assert_eq!(val(&ds, C, "/edit-test:top/name").as_deref(), Some("b"));
    assert!(out
        .changes
        .contains(&("/edit-test:top/name".into(), "merge")));
    ok(&mut ds, C, r#"<name nc:operation="replace">c</name>"#);
    assert_eq!(val(&ds, C, "/edit-test:top/name").as_deref(), Some("c"));
    let e = edit(&mut ds, C, r#"<name nc:operation="create">d</name>"#);
    let e = one_err(&e);
    assert_eq!(e.tag, ErrorTag::DataExists);
    assert_eq!(e.path.as_deref(), Some("/edit-test:top/name"));
    assert_eq!(val(&ds, C, "/edit-test:top/name").as_deref(), Some("c"));
    let out = ok(&mut ds, C, r#"<name nc:operation="delete"/>"#);
    assert!(out
        .changes
        .contains(&("/edit-test:top/name".into(), "delete")));
    assert!(!exists(&ds, C, "/edit-test:top/name"));
    let e = edit(&mut ds, C, r#"<name nc:operation="delete"/>"#);
    let e = one_err(&e);
    assert_eq!(e.tag, ErrorTag::DataMissing);
    assert_eq!(e.path.as_deref(), Some("/edit-test:top/name"));
    ok(&mut ds, C, r#"<name nc:operation="remove"/>"#);
    ok(&mut ds, C, r#"<name nc:operation="create">e</name>"#);
    assert_eq!(val(&ds, C, "/edit-test:top/name").as_deref(), Some("e"));
}

#[test]
fn leaf_with_default() {
    let mut ds = store();
    // Running is validated: the default is there but only as a default.
    assert_eq!(val(&ds, R, "/edit-test:top/count").as_deref(), Some("7"));
    assert!(!explicit(&ds, R, "/edit-test:top/count"));
    let e = edit(&mut ds, R, r#"<count nc:operation="delete"/>"#);
    let e = one_err(&e);
    assert_eq!(e.tag, ErrorTag::DataMissing);
    assert_eq!(e.path.as_deref(), Some("/edit-test:top/count"));
    // create over a default is allowed: the default is no data.
    ok(&mut ds, R, r#"<count nc:operation="create">9</count>"#);
    assert!(explicit(&ds, R, "/edit-test:top/count"));
    assert_eq!(val(&ds, R, "/edit-test:top/count").as_deref(), Some("9"));
    // Setting the default value explicitly keeps it explicit.
    ok(&mut ds, R, "<count>7</count>");
    assert!(explicit(&ds, R, "/edit-test:top/count"));
    ok(&mut ds, R, r#"<count nc:operation="replace">11</count>"#);
    assert_eq!(val(&ds, R, "/edit-test:top/count").as_deref(), Some("11"));
    ok(&mut ds, R, r#"<count nc:operation="delete"/>"#);
    // Validation brought the default back.
    assert_eq!(val(&ds, R, "/edit-test:top/count").as_deref(), Some("7"));
    assert!(!explicit(&ds, R, "/edit-test:top/count"));
    ok(&mut ds, R, r#"<count nc:operation="remove"/>"#);
}

#[test]
fn presence_container_operations() {
    let mut ds = store();
    let out = ok(&mut ds, C, r#"<pres nc:operation="create"/>"#);
    assert!(exists(&ds, C, "/edit-test:top/pres"));
    assert!(out
        .changes
        .contains(&("/edit-test:top/pres".into(), "create")));
    let e = edit(&mut ds, C, r#"<pres nc:operation="create"/>"#);
    assert_eq!(one_err(&e).tag, ErrorTag::DataExists);
    assert_eq!(one_err(&e).path.as_deref(), Some("/edit-test:top/pres"));
    ok(&mut ds, C, "<pres><level>3</level></pres>");
    assert_eq!(
        val(&ds, C, "/edit-test:top/pres/level").as_deref(),
        Some("3")
    );
    // replace with an empty container drops the children.
    let out = ok(&mut ds, C, r#"<pres nc:operation="replace"/>"#);
    assert!(out
        .changes
        .contains(&("/edit-test:top/pres".into(), "replace")));
    assert!(exists(&ds, C, "/edit-test:top/pres"));
    assert!(!exists(&ds, C, "/edit-test:top/pres/level"));
    ok(&mut ds, C, r#"<pres nc:operation="delete"/>"#);
    assert!(!exists(&ds, C, "/edit-test:top/pres"));
    let e = edit(&mut ds, C, r#"<pres nc:operation="delete"/>"#);
    assert_eq!(one_err(&e).tag, ErrorTag::DataMissing);
    ok(&mut ds, C, r#"<pres nc:operation="remove"/>"#);
    // merge creates it.
    ok(&mut ds, C, "<pres><level>4</level></pres>");
    assert_eq!(
        val(&ds, C, "/edit-test:top/pres/level").as_deref(),
        Some("4")
    );
}

#[test]
fn np_container_operations() {
    let mut ds = store();
    ok(&mut ds, C, "<name>x</name><limits><low>1</low></limits>");
    ok(
        &mut ds,
        C,
        r#"<limits nc:operation="replace"><high>5</high></limits>"#,
    );
    assert!(!exists(&ds, C, "/edit-test:top/limits/low"));
    assert_eq!(
        val(&ds, C, "/edit-test:top/limits/high").as_deref(),
        Some("5")
    );
    let e = edit(
        &mut ds,
        C,
        r#"<limits nc:operation="create"><low>1</low></limits>"#,
    );
    assert_eq!(one_err(&e).tag, ErrorTag::DataExists);
    ok(&mut ds, C, r#"<limits nc:operation="delete"/>"#);
    assert!(!exists(&ds, C, "/edit-test:top/limits/high"));
    ok(
        &mut ds,
        C,
        r#"<limits nc:operation="create"><low>2</low></limits>"#,
    );
    assert_eq!(
        val(&ds, C, "/edit-test:top/limits/low").as_deref(),
        Some("2")
    );
    // Deleting the top container removes everything.
    let xml = format!(
        r#"<config xmlns="{NC}" xmlns:nc="{NC}"><top xmlns="{ET}" nc:operation="delete"/></config>"#
    );
    let out = raw_edit(&mut ds, C, &xml, &EditOptions::default());
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    assert!(!exists(&ds, C, "/edit-test:top/name"));
    assert!(!exists(&ds, C, "/edit-test:top/limits/low"));
}

#[test]
fn list_operations() {
    let mut ds = store();
    let out = ok(
        &mut ds,
        C,
        r#"<item nc:operation="create"><name>a</name><value>1</value></item>"#,
    );
    assert!(
        out.changes
            .contains(&("/edit-test:top/item[name='a']".into(), "create")),
        "{:?}",
        out.changes
    );
    assert_eq!(
        val(&ds, C, "/edit-test:top/item[name='a']/value").as_deref(),
        Some("1")
    );
    // The candidate gets the defaults of new entries.
    assert_eq!(
        val(&ds, C, "/edit-test:top/item[name='a']/weight").as_deref(),
        Some("1")
    );
    let e = edit(
        &mut ds,
        C,
        r#"<item nc:operation="create"><name>a</name></item>"#,
    );
    let e = one_err(&e);
    assert_eq!(e.tag, ErrorTag::DataExists);
    assert_eq!(e.path.as_deref(), Some("/edit-test:top/item[name='a']"));
    ok(
        &mut ds,
        C,
        "<item><name>a</name><weight>5</weight><tag>x</tag></item>",
    );
    assert_eq!(
        val(&ds, C, "/edit-test:top/item[name='a']/value").as_deref(),
        Some("1")
    );
    assert_eq!(
        val(&ds, C, "/edit-test:top/item[name='a']/weight").as_deref(),
        Some("5")
    );
    // replace: only what is sent stays.
    ok(
        &mut ds,
        C,
        r#"<item nc:operation="replace"><name>a</name><value>2</value></item>"#,
    );
    assert_eq!(
        val(&ds, C, "/edit-test:top/item[name='a']/value").as_deref(),
        Some("2")
    );
    assert!(!explicit(&ds, C, "/edit-test:top/item[name='a']/weight"));
    assert!(values(&ds, C, "/edit-test:top/item[name='a']/tag").is_empty());
    let e = edit(
        &mut ds,
        C,
        r#"<item nc:operation="delete"><name>b</name></item>"#,
    );
    let e = one_err(&e);
    assert_eq!(e.tag, ErrorTag::DataMissing);
    assert_eq!(e.path.as_deref(), Some("/edit-test:top/item[name='b']"));
    ok(
        &mut ds,
        C,
        r#"<item nc:operation="remove"><name>b</name></item>"#,
    );
    ok(
        &mut ds,
        C,
        r#"<item nc:operation="delete"><name>a</name></item>"#,
    );
    assert!(!exists(&ds, C, "/edit-test:top/item[name='a']"));
    // Merge creates.
    ok(&mut ds, C, "<item><name>c</name></item>");
    assert!(exists(&ds, C, "/edit-test:top/item[name='c']"));
    // A child leaf of an entry.
    ok(
        &mut ds,
        C,
        r#"<item><name>c</name><value nc:operation="create">3</value></item>"#,
    );
    let e = edit(
        &mut ds,
        C,
        r#"<item><name>c</name><value nc:operation="create">4</value></item>"#,
    );
    assert_eq!(
        one_err(&e).path.as_deref(),
        Some("/edit-test:top/item[name='c']/value")
    );
}

#[test]
fn two_key_list() {
    let mut ds = store();
    ok(
        &mut ds,
        C,
        "<pair><a>x</a><b>1</b><note>n1</note></pair><pair><b>2</b><a>x</a></pair>",
    );
    assert_eq!(
        val(&ds, C, "/edit-test:top/pair[a='x'][b='1']/note").as_deref(),
        Some("n1")
    );
    assert!(exists(&ds, C, "/edit-test:top/pair[a='x'][b='2']"));
    let e = edit(
        &mut ds,
        C,
        r#"<pair nc:operation="create"><a>x</a><b>1</b></pair>"#,
    );
    assert_eq!(one_err(&e).tag, ErrorTag::DataExists);
    assert_eq!(
        one_err(&e).path.as_deref(),
        Some("/edit-test:top/pair[a='x'][b='1']")
    );
    ok(
        &mut ds,
        C,
        r#"<pair nc:operation="delete"><a>x</a><b>1</b></pair>"#,
    );
    assert!(!exists(&ds, C, "/edit-test:top/pair[a='x'][b='1']"));
    assert!(exists(&ds, C, "/edit-test:top/pair[a='x'][b='2']"));
    // A missing key.
    let e = edit(&mut ds, C, "<pair><a>x</a><note>n</note></pair>");
    let e = one_err(&e);
    assert_eq!(e.tag, ErrorTag::MissingElement);
    assert_eq!(info(e, "bad-element"), Some("b"));
    assert_eq!(e.path.as_deref(), Some("/edit-test:top/pair"));
    // A bad key value.
    let e = edit(&mut ds, C, "<pair><a>x</a><b>seventy</b></pair>");
    let e = one_err(&e);
    assert_eq!(e.tag, ErrorTag::InvalidValue);
    assert!(
        e.message.as_deref().unwrap_or("").contains("seventy"),
        "libyang's message: {:?}",
        e.message
    );
    assert_eq!(info(e, "bad-element"), Some("b"));
    let e = edit(
        &mut ds,
        C,
        "<order>a</order><flags>ok</flags><item><name>i</name><value>1</value></item>",
    );
    assert!(e.errors.is_empty());
    let e = edit(
        &mut ds,
        C,
        "<rule><id>r</id></rule><order>b</order><item><name>i</name><value>x</value></item>",
    );
    assert!(
        e.errors[0]
            .message
            .as_deref()
            .unwrap_or("")
            .contains("\"x\""),
        "{:?}",
        e.errors
    );
    // A key given twice with different values.
    let e = edit(&mut ds, C, "<pair><a>x</a><a>y</a><b>2</b></pair>");
    assert_eq!(one_err(&e).tag, ErrorTag::BadElement);
}

#[test]
fn leaf_list_operations() {
    let mut ds = store();
    let out = ok(&mut ds, C, "<flags>a</flags><flags>b</flags>");
    assert_eq!(out.changes.len(), 2);
    assert_eq!(values(&ds, C, "/edit-test:top/flags"), vec!["a", "b"]);
    let e = edit(&mut ds, C, r#"<flags nc:operation="create">a</flags>"#);
    let e = one_err(&e);
    assert_eq!(e.tag, ErrorTag::DataExists);
    assert_eq!(e.path.as_deref(), Some("/edit-test:top/flags[.='a']"));
    ok(&mut ds, C, r#"<flags nc:operation="create">c</flags>"#);
    ok(&mut ds, C, r#"<flags nc:operation="replace">c</flags>"#);
    ok(&mut ds, C, r#"<flags nc:operation="delete">a</flags>"#);
    assert_eq!(values(&ds, C, "/edit-test:top/flags"), vec!["b", "c"]);
    let e = edit(&mut ds, C, r#"<flags nc:operation="delete">a</flags>"#);
    assert_eq!(one_err(&e).tag, ErrorTag::DataMissing);
    ok(
        &mut ds,
        C,
        r#"<flags nc:operation="remove">a</flags><flags nc:operation="remove">b</flags>"#,
    );
    assert_eq!(values(&ds, C, "/edit-test:top/flags"), vec!["c"]);
}

#[test]
fn choice_case_switch() {
    let mut ds = store();
    ok(
        &mut ds,
        C,
        "<tcp-port>80</tcp-port><tcp-opts><nodelay>true</nodelay></tcp-opts>",
    );
    assert!(exists(&ds, C, "/edit-test:top/tcp-port"));
    let out = ok(&mut ds, C, "<udp-port>53</udp-port>");
    assert_eq!(
        val(&ds, C, "/edit-test:top/udp-port").as_deref(),
        Some("53")
    );
    assert!(
        !exists(&ds, C, "/edit-test:top/tcp-port"),
        "other case's leaf dropped"
    );
    assert!(
        !exists(&ds, C, "/edit-test:top/tcp-opts"),
        "other case's container dropped"
    );
    assert!(
        out.changes
            .contains(&("/edit-test:top/tcp-port".into(), "delete")),
        "{:?}",
        out.changes
    );
    ok(
        &mut ds,
        C,
        r#"<tcp-opts nc:operation="create"><nodelay>false</nodelay></tcp-opts>"#,
    );
    assert!(!exists(&ds, C, "/edit-test:top/udp-port"));
    assert_eq!(
        val(&ds, C, "/edit-test:top/tcp-opts/nodelay").as_deref(),
        Some("false")
    );
    // The same on running (validated).
    ok(&mut ds, R, "<tcp-port>80</tcp-port>");
    ok(&mut ds, R, "<udp-port>53</udp-port>");
    assert!(!exists(&ds, R, "/edit-test:top/tcp-port"));
    ok(&mut ds, R, r#"<udp-port nc:operation="delete"/>"#);
    assert!(!exists(&ds, R, "/edit-test:top/udp-port"));
}

// ===== insert =====

fn rules(ds: &Datastores) -> Vec<String> {
    values(ds, C, "/edit-test:top/rule/id")
}

#[test]
fn insert_into_user_ordered_list() {
    let mut ds = store();
    ok(
        &mut ds,
        C,
        "<rule><id>a</id></rule><rule><id>b</id></rule><rule><id>c</id></rule>",
    );
    assert_eq!(rules(&ds), vec!["a", "b", "c"]);
    ok(&mut ds, C, r#"<rule yang:insert="first"><id>c</id></rule>"#);
    assert_eq!(rules(&ds), vec!["c", "a", "b"]);
    ok(&mut ds, C, r#"<rule yang:insert="last"><id>c</id></rule>"#);
    assert_eq!(rules(&ds), vec!["a", "b", "c"]);
    ok(
        &mut ds,
        C,
        r#"<rule yang:insert="before" yang:key="[et:id='a']"><id>c</id></rule>"#,
    );
    assert_eq!(rules(&ds), vec!["c", "a", "b"]);
    ok(
        &mut ds,
        C,
        r#"<rule yang:insert="after" yang:key="[et:id='b']"><id>c</id></rule>"#,
    );
    assert_eq!(rules(&ds), vec!["a", "b", "c"]);
    // A new entry placed after a.
    ok(
        &mut ds,
        C,
        r#"<rule nc:operation="create" yang:insert="after" yang:key="[et:id='a']"><id>n</id><action>x</action></rule>"#,
    );
    assert_eq!(rules(&ds), vec!["a", "n", "b", "c"]);
    ok(&mut ds, C, r#"<rule yang:insert="first"><id>f</id></rule>"#);
    assert_eq!(rules(&ds), vec!["f", "a", "n", "b", "c"]);
    // replace keeps the entry's place.
    ok(
        &mut ds,
        C,
        r#"<rule nc:operation="replace"><id>n</id></rule>"#,
    );
    assert_eq!(rules(&ds), vec!["f", "a", "n", "b", "c"]);
    assert!(!exists(&ds, C, "/edit-test:top/rule[id='n']/action"));
    ok(
        &mut ds,
        C,
        r#"<rule nc:operation="replace"><id>f</id><action>y</action></rule>"#,
    );
    ok(
        &mut ds,
        C,
        r#"<rule nc:operation="replace"><id>c</id></rule>"#,
    );
    assert_eq!(rules(&ds), vec!["f", "a", "n", "b", "c"]);
    // Errors.
    let e = edit(
        &mut ds,
        C,
        r#"<rule yang:insert="after" yang:key="[et:id='zz']"><id>c</id></rule>"#,
    );
    let e = one_err(&e);
    assert_eq!(e.tag, ErrorTag::BadAttribute);
    assert_eq!(e.app_tag.as_deref(), Some("missing-instance"));
    assert_eq!(info(e, "bad-attribute"), Some("key"));
    let e = edit(&mut ds, C, r#"<rule yang:insert="after"><id>c</id></rule>"#);
    let e = one_err(&e);
    assert_eq!(e.tag, ErrorTag::MissingAttribute);
    assert_eq!(info(e, "bad-attribute"), Some("key"));
    let e = edit(
        &mut ds,
        C,
        r#"<rule yang:insert="sideways"><id>c</id></rule>"#,
    );
    assert_eq!(one_err(&e).tag, ErrorTag::BadAttribute);
    let e = edit(
        &mut ds,
        C,
        r#"<item yang:insert="first"><name>c</name></item>"#,
    );
    assert_eq!(
        one_err(&e).tag,
        ErrorTag::BadAttribute,
        "insert on a system-ordered list"
    );
    let e = edit(
        &mut ds,
        C,
        r#"<rule yang:insert="before" yang:key="id=a"><id>c</id></rule>"#,
    );
    assert_eq!(one_err(&e).tag, ErrorTag::BadAttribute);
    assert_eq!(rules(&ds), vec!["f", "a", "n", "b", "c"]);
}

#[test]
fn insert_into_user_ordered_leaf_list() {
    let mut ds = store();
    let order = |ds: &Datastores| values(ds, C, "/edit-test:top/order");
    ok(
        &mut ds,
        C,
        "<order>a</order><order>b</order><order>c</order>",
    );
    assert_eq!(order(&ds), vec!["a", "b", "c"]);
    ok(&mut ds, C, r#"<order yang:insert="first">c</order>"#);
    assert_eq!(order(&ds), vec!["c", "a", "b"]);
    ok(&mut ds, C, r#"<order yang:insert="last">c</order>"#);
    assert_eq!(order(&ds), vec!["a", "b", "c"]);
    ok(
        &mut ds,
        C,
        r#"<order yang:insert="before" yang:value="a">c</order>"#,
    );
    assert_eq!(order(&ds), vec!["c", "a", "b"]);
    ok(
        &mut ds,
        C,
        r#"<order yang:insert="after" yang:value="a">d</order>"#,
    );
    assert_eq!(order(&ds), vec!["c", "a", "d", "b"]);
    let e = edit(
        &mut ds,
        C,
        r#"<order yang:insert="after" yang:value="zz">d</order>"#,
    );
    assert_eq!(one_err(&e).app_tag.as_deref(), Some("missing-instance"));
    let e = edit(&mut ds, C, r#"<order yang:insert="before">d</order>"#);
    let e = one_err(&e);
    assert_eq!(e.tag, ErrorTag::MissingAttribute);
    assert_eq!(info(e, "bad-attribute"), Some("value"));
    let e = edit(&mut ds, C, r#"<flags yang:insert="first">d</flags>"#);
    assert_eq!(one_err(&e).tag, ErrorTag::BadAttribute);
    assert_eq!(order(&ds), vec!["c", "a", "d", "b"]);
}

// ===== error tags =====

#[test]
fn error_tags_with_paths() {
    let mut ds = store();
    let e = edit(&mut ds, C, "<nosuch>1</nosuch>");
    let e = one_err(&e);
    assert_eq!(e.tag, ErrorTag::UnknownElement);
    assert_eq!(info(e, "bad-element"), Some("nosuch"));
    assert_eq!(e.path.as_deref(), Some("/edit-test:top/nosuch"));

    let e = edit(&mut ds, C, r#"<x xmlns="urn:nowhere">1</x>"#);
    let e = one_err(&e);
    assert_eq!(e.tag, ErrorTag::UnknownNamespace);
    assert_eq!(info(e, "bad-element"), Some("x"));
    assert_eq!(info(e, "bad-namespace"), Some("urn:nowhere"));
    assert_eq!(e.path.as_deref(), Some("/edit-test:top"));

    let e = edit(&mut ds, C, "<count>200</count>");
    let e = one_err(&e);
    assert_eq!(e.tag, ErrorTag::InvalidValue);
    assert_eq!(e.path.as_deref(), Some("/edit-test:top/count"));
    assert!(
        e.message.as_deref().unwrap_or("").contains("200"),
        "libyang's message: {:?}",
        e.message
    );

    let e = edit(&mut ds, C, "<item><name>a</name><value>big</value></item>");
    let e = one_err(&e);
    assert_eq!(e.tag, ErrorTag::InvalidValue);
    assert_eq!(
        e.path.as_deref(),
        Some("/edit-test:top/item[name='a']/value")
    );

    let e = edit(&mut ds, C, r#"<name nc:operation="frob">a</name>"#);
    let e = one_err(&e);
    assert_eq!(e.tag, ErrorTag::BadAttribute);
    assert_eq!(info(e, "bad-attribute"), Some("operation"));
    assert_eq!(info(e, "bad-element"), Some("name"));
    assert_eq!(e.path.as_deref(), Some("/edit-test:top/name"));

    let e = edit(&mut ds, C, r#"<name foo="x">a</name>"#);
    let e = one_err(&e);
    assert_eq!(e.tag, ErrorTag::UnknownAttribute);
    assert_eq!(info(e, "bad-attribute"), Some("foo"));

    let e = edit(&mut ds, C, "<stats><hits>1</hits></stats>");
    let e = one_err(&e);
    assert_eq!(e.tag, ErrorTag::BadElement);
    assert_eq!(e.path.as_deref(), Some("/edit-test:top/stats"));

    let e = edit(&mut ds, C, "<limits>text<low>1</low></limits>");
    let e = one_err(&e);
    assert_eq!(e.tag, ErrorTag::BadElement);
    assert_eq!(e.path.as_deref(), Some("/edit-test:top/limits"));

    let e = edit(&mut ds, C, "<name><sub/></name>");
    assert_eq!(one_err(&e).tag, ErrorTag::BadElement);

    // A top-level element of an unknown module has no path.
    let xml = format!(r#"<config xmlns="{NC}"><x xmlns="urn:nowhere"/></config>"#);
    let out = raw_edit(&mut ds, C, &xml, &EditOptions::default());
    assert_eq!(one_err(&out).tag, ErrorTag::UnknownNamespace);
    let xml = format!(r#"<config xmlns="{NC}"><nosuch xmlns="{ET}"/></config>"#);
    let out = raw_edit(&mut ds, C, &xml, &EditOptions::default());
    assert_eq!(one_err(&out).path.as_deref(), Some("/edit-test:nosuch"));

    // Nothing was applied by any of these.
    assert!(!ds.candidate_modified());
    assert!(!exists(&ds, C, "/edit-test:top/name"));
}

// ===== error-option =====

fn opts(error_option: ErrorOption) -> EditOptions {
    EditOptions {
        error_option,
        ..Default::default()
    }
}

const MIXED: &str = "<name>good</name><count>200</count><item><name>a</name></item><flags nc:operation=\"delete\">zz</flags><item><name>b</name></item>";

#[test]
fn stop_on_error_applies_nothing() {
    let mut ds = store();
    ok(&mut ds, R, "<name>orig</name>");
    let out = raw_edit(&mut ds, R, &top(MIXED), &opts(ErrorOption::StopOnError));
    assert_eq!(
        one_err(&out).tag,
        ErrorTag::InvalidValue,
        "stops at the first error"
    );
    assert!(out.commit.is_none());
    assert!(out.changes.is_empty());
    assert_eq!(val(&ds, R, "/edit-test:top/name").as_deref(), Some("orig"));
    assert!(!exists(&ds, R, "/edit-test:top/item[name='a']"));
}

#[test]
fn rollback_on_error_undoes_earlier_changes() {
    let mut ds = store();
    ok(&mut ds, R, "<name>orig</name><item><name>z</name></item>");
    // Everything before the failing delete succeeded in the walk and is undone.
    let body = "<name>new</name><item><name>a</name><value>1</value></item><item nc:operation=\"delete\"><name>z</name></item><pres/><flags nc:operation=\"delete\">zz</flags>";
    let out = raw_edit(&mut ds, R, &top(body), &opts(ErrorOption::RollbackOnError));
    let e = one_err(&out);
    assert_eq!(e.tag, ErrorTag::DataMissing);
    assert_eq!(e.path.as_deref(), Some("/edit-test:top/flags[.='zz']"));
    assert!(out.commit.is_none());
    assert_eq!(val(&ds, R, "/edit-test:top/name").as_deref(), Some("orig"));
    assert!(!exists(&ds, R, "/edit-test:top/item[name='a']"));
    assert!(exists(&ds, R, "/edit-test:top/item[name='z']"));
    assert!(!exists(&ds, R, "/edit-test:top/pres"));
}

#[test]
fn continue_on_error_applies_good_parts_and_reports_all() {
    let mut ds = store();
    let out = raw_edit(&mut ds, R, &top(MIXED), &opts(ErrorOption::ContinueOnError));
    assert_eq!(out.errors.len(), 2, "{:?}", out.errors);
    assert_eq!(out.errors[0].tag, ErrorTag::InvalidValue);
    assert_eq!(out.errors[0].path.as_deref(), Some("/edit-test:top/count"));
    assert_eq!(out.errors[1].tag, ErrorTag::DataMissing);
    assert_eq!(
        out.errors[1].path.as_deref(),
        Some("/edit-test:top/flags[.='zz']")
    );
    assert_eq!(val(&ds, R, "/edit-test:top/name").as_deref(), Some("good"));
    assert!(exists(&ds, R, "/edit-test:top/item[name='a']"));
    assert!(exists(&ds, R, "/edit-test:top/item[name='b']"));
    assert!(out.commit.is_some(), "running changed");
    assert_eq!(out.changes.len(), 3, "{:?}", out.changes);
}

// ===== default-operation =====

#[test]
fn default_operation_none() {
    let mut ds = store();
    ok(
        &mut ds,
        C,
        "<name>a</name><item><name>x</name><value>1</value></item>",
    );
    let none = EditOptions {
        default_operation: DefaultOperation::None,
        ..Default::default()
    };
    // Without operation attributes nothing changes.
    let out = raw_edit(
        &mut ds,
        C,
        &top("<name>b</name><item><name>x</name><value>2</value></item>"),
        &none,
    );
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    assert!(out.changes.is_empty());
    assert_eq!(val(&ds, C, "/edit-test:top/name").as_deref(), Some("a"));
    assert_eq!(
        val(&ds, C, "/edit-test:top/item[name='x']/value").as_deref(),
        Some("1")
    );
    // Operations below existing levels apply.
    let body = r#"<item><name>x</name><value nc:operation="replace">3</value></item><name nc:operation="delete"/>"#;
    let out = raw_edit(&mut ds, C, &top(body), &none);
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    assert_eq!(
        val(&ds, C, "/edit-test:top/item[name='x']/value").as_deref(),
        Some("3")
    );
    assert!(!exists(&ds, C, "/edit-test:top/name"));
    // A missing level on the way to an operation.
    let body = r#"<item><name>nope</name><value nc:operation="create">3</value></item>"#;
    let out = raw_edit(&mut ds, C, &top(body), &none);
    let e = one_err(&out);
    assert_eq!(e.tag, ErrorTag::DataMissing);
    assert_eq!(e.path.as_deref(), Some("/edit-test:top/item[name='nope']"));
    let out = raw_edit(
        &mut ds,
        C,
        &top(r#"<pres><level nc:operation="create">1</level></pres>"#),
        &none,
    );
    assert_eq!(one_err(&out).tag, ErrorTag::DataMissing);
    // A create of a new entry is fine.
    let out = raw_edit(
        &mut ds,
        C,
        &top(r#"<item nc:operation="create"><name>new</name></item>"#),
        &none,
    );
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    assert!(exists(&ds, C, "/edit-test:top/item[name='new']"));
}

#[test]
fn default_operation_replace_replaces_everything() {
    let mut ds = store();
    ok(
        &mut ds,
        R,
        "<name>a</name><item><name>x</name></item><item><name>y</name></item><pres/>",
    );
    let replace = EditOptions {
        default_operation: DefaultOperation::Replace,
        ..Default::default()
    };
    let out = raw_edit(
        &mut ds,
        R,
        &top("<item><name>y</name><value>5</value></item>"),
        &replace,
    );
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    assert!(out.commit.is_some());
    assert!(!exists(&ds, R, "/edit-test:top/name"));
    assert!(!exists(&ds, R, "/edit-test:top/item[name='x']"));
    assert!(!exists(&ds, R, "/edit-test:top/pres"));
    assert_eq!(
        val(&ds, R, "/edit-test:top/item[name='y']/value").as_deref(),
        Some("5")
    );
    // Other top-level containers (app-hosting) go too: only their defaults remain.
    ok(&mut ds, R, "<name>b</name>");
    let xml = format!(
        r#"<config xmlns="{NC}"><app-hosting xmlns="{AH}"><cpu>30</cpu></app-hosting></config>"#
    );
    let out = raw_edit(&mut ds, R, &xml, &replace);
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    assert!(!exists(&ds, R, "/edit-test:top/name"));
    assert_eq!(
        val(&ds, R, "/app-hosting:app-hosting/cpu").as_deref(),
        Some("30")
    );
}

// ===== validation: candidate vs running =====

#[test]
fn candidate_holds_must_violations_that_validate_and_commit_refuse() {
    let mut ds = store();
    let bad = "<limits><low>10</low><high>5</high></limits>";
    ok(&mut ds, C, bad);
    assert!(ds.candidate_modified());
    let errs = ds
        .validate(ConfigSource::Datastore(C))
        .expect_err("must violated");
    assert_eq!(errs[0].app_tag.as_deref(), Some("high-below-low"));
    assert_eq!(errs[0].path.as_deref(), Some("/edit-test:top/limits/high"));
    let errs = ds.commit().expect_err("commit refused");
    assert_eq!(errs[0].app_tag.as_deref(), Some("high-below-low"));
    assert!(
        !exists(&ds, R, "/edit-test:top/limits/low"),
        "running untouched"
    );
    assert!(ds.candidate_modified());
    // Running refuses the same edit at once.
    let out = edit(&mut ds, R, bad);
    let e = one_err(&out);
    assert_eq!(e.app_tag.as_deref(), Some("high-below-low"));
    assert!(out.commit.is_none());
    assert!(!exists(&ds, R, "/edit-test:top/limits/low"));
    // Fix the candidate, then commit works.
    ok(&mut ds, C, "<limits><high>20</high></limits>");
    let commit = ds.commit().expect("commit").expect("running changed");
    assert!(commit.old.find_path("/edit-test:top/limits/low").is_err());
    assert!(commit.new.find_path("/edit-test:top/limits/low").is_ok());
    assert_eq!(
        val(&ds, R, "/edit-test:top/limits/high").as_deref(),
        Some("20")
    );
    assert!(!ds.candidate_modified());
}

#[test]
fn mandatory_leaf_checked_at_commit_not_in_candidate() {
    let mut ds = store();
    ok(&mut ds, C, "<server><name>s</name></server>");
    let errs = ds.commit().expect_err("mandatory address missing");
    assert_eq!(errs[0].tag, ErrorTag::DataMissing, "{:?}", errs);
    let out = edit(&mut ds, R, "<server><name>s</name></server>");
    assert_eq!(one_err(&out).tag, ErrorTag::DataMissing);
    ok(
        &mut ds,
        C,
        "<server><name>s</name><address>h</address></server>",
    );
    ds.commit().expect("commit").expect("changed");
    assert_eq!(
        val(&ds, R, "/edit-test:top/server[name='s']/address").as_deref(),
        Some("h")
    );
}

#[test]
fn test_only_validates_and_changes_nothing() {
    let mut ds = store();
    let test_only = EditOptions {
        test_option: TestOption::TestOnly,
        ..Default::default()
    };
    let out = raw_edit(&mut ds, C, &top("<name>t</name>"), &test_only);
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    assert!(!exists(&ds, C, "/edit-test:top/name"));
    assert!(!ds.candidate_modified());
    let out = raw_edit(
        &mut ds,
        C,
        &top("<limits><low>10</low><high>5</high></limits>"),
        &test_only,
    );
    assert_eq!(one_err(&out).app_tag.as_deref(), Some("high-below-low"));
    let out = raw_edit(&mut ds, R, &top("<name>t</name>"), &test_only);
    assert!(out.errors.is_empty());
    assert!(out.commit.is_none());
    assert!(!exists(&ds, R, "/edit-test:top/name"));
}

// ===== datastore operations =====

#[test]
fn running_edit_returns_commit_and_candidate_follows() {
    let mut ds = store();
    let out = ok(&mut ds, R, "<name>r</name>");
    let c = out.commit.expect("running changed");
    assert!(c.old.find_path("/edit-test:top/name").is_err());
    assert!(c.new.find_path("/edit-test:top/name").is_ok());
    // An unmodified candidate mirrors running.
    assert_eq!(val(&ds, C, "/edit-test:top/name").as_deref(), Some("r"));
    // Merging the same value changes nothing: no commit.
    let out = ok(&mut ds, R, "<name>r</name>");
    assert!(out.commit.is_none());
    assert!(out.changes.is_empty());
}

#[test]
fn commit_and_discard() {
    let mut ds = store();
    assert!(ds.commit().expect("empty commit").is_none());
    ok(&mut ds, C, "<name>c</name>");
    assert!(ds.candidate_modified());
    assert!(!exists(&ds, R, "/edit-test:top/name"));
    ds.discard_changes();
    assert!(!ds.candidate_modified());
    assert!(!exists(&ds, C, "/edit-test:top/name"));
    ok(&mut ds, C, "<name>d</name>");
    let c = ds.commit().expect("commit").expect("changed");
    assert!(c.new.find_path("/edit-test:top/name").is_ok());
    assert_eq!(val(&ds, R, "/edit-test:top/name").as_deref(), Some("d"));
    // Running got the defaults by validation.
    assert_eq!(val(&ds, R, "/edit-test:top/count").as_deref(), Some("7"));
    assert!(!ds.candidate_modified());
}

#[test]
fn copy_config_semantics() {
    let mut ds = store();
    ok(&mut ds, R, "<name>r</name>");
    assert!(ds
        .copy_config(DsName::Startup, ConfigSource::Datastore(R))
        .expect("copy")
        .is_none());
    assert_eq!(
        val(&ds, DsName::Startup, "/edit-test:top/name").as_deref(),
        Some("r")
    );
    // Same source and target.
    assert!(ds.copy_config(R, ConfigSource::Datastore(R)).is_err());
    // Inline source to running.
    let xml = top("<name>inline</name><item><name>i</name></item>");
    let doc = roxmltree::Document::parse(&xml).expect("xml");
    let tree = parse_config(doc.root_element()).expect("parses");
    let c = ds
        .copy_config(R, ConfigSource::Inline(&tree))
        .expect("copy")
        .expect("running changed");
    assert!(c.old.find_path("/edit-test:top/item[name='i']").is_err());
    assert_eq!(
        val(&ds, R, "/edit-test:top/name").as_deref(),
        Some("inline")
    );
    assert!(exists(&ds, R, "/edit-test:top/item[name='i']"));
    assert_eq!(
        val(&ds, C, "/edit-test:top/name").as_deref(),
        Some("inline"),
        "candidate follows"
    );
    // Startup to candidate marks it modified; commit brings it to running.
    ds.copy_config(C, ConfigSource::Datastore(DsName::Startup))
        .expect("copy");
    assert!(ds.candidate_modified());
    assert_eq!(val(&ds, C, "/edit-test:top/name").as_deref(), Some("r"));
    ds.commit().expect("commit");
    assert_eq!(val(&ds, R, "/edit-test:top/name").as_deref(), Some("r"));
    // An invalid inline source is refused for running but fine for candidate.
    let xml = top("<limits><low>10</low><high>5</high></limits>");
    let doc = roxmltree::Document::parse(&xml).expect("xml");
    let tree = parse_config(doc.root_element()).expect("parses");
    let errs = ds
        .copy_config(R, ConfigSource::Inline(&tree))
        .expect_err("must");
    assert_eq!(errs[0].app_tag.as_deref(), Some("high-below-low"));
    assert!(ds.copy_config(C, ConfigSource::Inline(&tree)).is_ok());
    assert!(ds.validate(ConfigSource::Inline(&tree)).is_err());
}

#[test]
fn parse_config_refuses_operations_and_bad_data() {
    init();
    let xml = top(r#"<name nc:operation="delete"/>"#);
    let doc = roxmltree::Document::parse(&xml).expect("xml");
    let errs = parse_config(doc.root_element()).expect_err("operation refused");
    assert_eq!(errs[0].tag, ErrorTag::BadAttribute);
    let xml = top("<count>300</count><nosuch/>");
    let doc = roxmltree::Document::parse(&xml).expect("xml");
    let errs = parse_config(doc.root_element()).expect_err("bad");
    assert_eq!(errs.len(), 2);
    assert_eq!(errs[0].tag, ErrorTag::InvalidValue);
    assert_eq!(errs[1].tag, ErrorTag::UnknownElement);
}

#[test]
fn delete_config_semantics() {
    let mut ds = store();
    ok(&mut ds, R, "<name>r</name>");
    ds.copy_config(DsName::Startup, ConfigSource::Datastore(R))
        .expect("copy");
    ds.delete_config(DsName::Startup).expect("startup deleted");
    assert!(!exists(&ds, DsName::Startup, "/edit-test:top/name"));
    let e = ds.delete_config(R).expect_err("running cannot be deleted");
    assert_eq!(e.tag, ErrorTag::OperationNotSupported);
    assert!(ds.delete_config(C).is_err());
    assert!(exists(&ds, R, "/edit-test:top/name"));
}

#[test]
fn saver_failure_restores_running() {
    let mut ds = store();
    let calls = Arc::new(Mutex::new(Vec::new()));
    let fail = Arc::new(Mutex::new(false));
    let (c2, f2) = (calls.clone(), fail.clone());
    ds.set_saver(Box::new(move |name, _tree| {
        c2.lock().expect("lock").push(name);
        if *f2.lock().expect("lock") {
            Err("disk full".into())
        } else {
            Ok(())
        }
    }));
    ok(&mut ds, R, "<name>a</name>");
    assert_eq!(calls.lock().expect("lock").as_slice(), &[R]);
    *fail.lock().expect("lock") = true;
    let out = edit(&mut ds, R, "<name>b</name>");
    let e = one_err(&out);
    assert_eq!(e.tag, ErrorTag::OperationFailed);
    assert!(e.message.as_deref().unwrap_or("").contains("disk full"));
    assert!(out.commit.is_none());
    assert_eq!(val(&ds, R, "/edit-test:top/name").as_deref(), Some("a"));
    ok(&mut ds, C, "<name>c</name>");
    assert!(ds.commit().is_err());
    assert_eq!(val(&ds, R, "/edit-test:top/name").as_deref(), Some("a"));
    assert!(ds.candidate_modified(), "the change is still pending");
    assert!(ds.delete_config(DsName::Startup).is_err());
}

#[test]
fn replace_running_validates_and_swaps() {
    let mut ds = store();
    ok(&mut ds, R, "<name>a</name>");
    let snapshot = ds.tree(R).duplicate().expect("dup");
    ok(&mut ds, R, "<name>b</name>");
    let c = ds
        .replace_running(snapshot)
        .expect("valid")
        .expect("changed");
    assert!(c.old.find_path("/edit-test:top/name").is_ok());
    assert_eq!(val(&ds, R, "/edit-test:top/name").as_deref(), Some("a"));
}

// ===== app-hosting's own rules =====

fn ah(body: &str) -> String {
    format!(
        r#"<config xmlns="{NC}" xmlns:nc="{NC}"><app-hosting xmlns="{AH}">{body}</app-hosting></config>"#
    )
}

#[test]
fn app_hosting_rules_on_running() {
    let mut ds = store();
    let o = EditOptions::default();
    let out = raw_edit(
        &mut ds,
        R,
        &ah("<app><name>web</name><netns>host-os</netns><share><port><name>eth3</name></port></share></app>"),
        &o,
    );
    let e = one_err(&out);
    assert_eq!(e.app_tag.as_deref(), Some("host-os-share"));
    assert_eq!(
        e.path.as_deref(),
        Some("/app-hosting:app-hosting/app[name='web']")
    );

    let out = raw_edit(
        &mut ds,
        R,
        &ah("<app><name>a</name><share><port><name>eth3</name></port></share></app>"),
        &o,
    );
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    let out = raw_edit(
        &mut ds,
        R,
        &ah("<app><name>b</name><share><port><name>eth3</name></port></share></app>"),
        &o,
    );
    let e = one_err(&out);
    assert_eq!(e.app_tag.as_deref(), Some("port-in-use"));
    assert!(!exists(&ds, R, "/app-hosting:app-hosting/app[name='b']"));

    let out = raw_edit(
        &mut ds,
        R,
        &ah("<app><name>m</name><share><media><media>usb</media><path>a/../../etc</path></media></share></app>"),
        &o,
    );
    assert_eq!(one_err(&out).app_tag.as_deref(), Some("path-escapes-media"));

    let long = "x".repeat(256);
    let out = raw_edit(
        &mut ds,
        R,
        &ah(&format!(
            "<app><name>d</name><description>{long}</description></app>"
        )),
        &o,
    );
    let e = one_err(&out);
    assert_eq!(e.tag, ErrorTag::InvalidValue);
    assert_eq!(
        e.path.as_deref(),
        Some("/app-hosting:app-hosting/app[name='d']/description")
    );
    let ok255 = "x".repeat(255);
    let out = raw_edit(
        &mut ds,
        R,
        &ah(&format!(
            "<app><name>d</name><description>{ok255}</description></app>"
        )),
        &o,
    );
    assert!(out.errors.is_empty(), "{:?}", out.errors);

    // The candidate accepts the host-os share; commit refuses it.
    let out = raw_edit(
        &mut ds,
        C,
        &ah("<app><name>a</name><netns>host-os</netns></app>"),
        &o,
    );
    assert!(out.errors.is_empty());
    let errs = ds.commit().expect_err("host-os with port");
    assert_eq!(errs[0].app_tag.as_deref(), Some("host-os-share"));
    // Capabilities are a leaf-list of enums.
    ds.discard_changes();
    let out = raw_edit(
        &mut ds,
        R,
        &ah("<app><name>a</name><capability>CAP_NET_ADMIN</capability></app>"),
        &o,
    );
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    let out = raw_edit(
        &mut ds,
        R,
        &ah("<app><name>a</name><capability>CAP_NOPE</capability></app>"),
        &o,
    );
    assert_eq!(one_err(&out).tag, ErrorTag::InvalidValue);
}

// ===== performance =====

#[test]
#[ignore]
fn bench_merge_one_entry_and_commit_with_1000_stored() {
    let mut ds = store();
    let mut body = String::new();
    for i in 0..1000 {
        body.push_str(&format!(
            "<app><name>app{i}</name><enable>true</enable><description>d{i}</description></app>"
        ));
    }
    let out = raw_edit(&mut ds, R, &ah(&body), &EditOptions::default());
    assert!(out.errors.is_empty());
    let rounds = 50;
    let t0 = std::time::Instant::now();
    for r in 0..rounds {
        let out = raw_edit(
            &mut ds,
            C,
            &ah(&format!(
                "<app><name>new{r}</name><enable>true</enable></app>"
            )),
            &EditOptions::default(),
        );
        assert!(out.errors.is_empty());
        ds.commit().expect("commit").expect("changed");
    }
    let per = t0.elapsed() / rounds;
    println!("edit-config (merge 1 app) + commit, 1000 apps stored: {per:?} per round");
}

#[test]
#[ignore]
fn bench_parts() {
    let mut ds = store();
    let mut body = String::new();
    for i in 0..1000 {
        body.push_str(&format!(
            "<app><name>app{i}</name><enable>true</enable><description>d{i}</description></app>"
        ));
    }
    let out = raw_edit(&mut ds, R, &ah(&body), &EditOptions::default());
    assert!(out.errors.is_empty());
    let t = ds.tree(R);
    let t0 = std::time::Instant::now();
    let mut d = t.duplicate().expect("dup");
    println!("dup: {:?}", t0.elapsed());
    let t0 = std::time::Instant::now();
    d.validate(yang2::data::DataValidationFlags::NO_STATE)
        .expect("valid");
    println!("validate: {:?}", t0.elapsed());
    let t0 = std::time::Instant::now();
    let out = raw_edit(
        &mut ds,
        C,
        &ah("<app><name>x</name><enable>true</enable></app>"),
        &EditOptions::default(),
    );
    assert!(out.errors.is_empty());
    println!("edit candidate: {:?}", t0.elapsed());
    let t0 = std::time::Instant::now();
    let mut c = ds.tree(C).duplicate().expect("dup");
    println!("dup candidate: {:?}", t0.elapsed());
    let t0 = std::time::Instant::now();
    c.validate(yang2::data::DataValidationFlags::NO_STATE)
        .expect("valid");
    println!("validate candidate: {:?}", t0.elapsed());
    let t0 = std::time::Instant::now();
    ds.commit().expect("commit");
    println!("commit: {:?}", t0.elapsed());
}

#[test]
fn state_data_inside_config_list_refused() {
    let mut ds = store();
    let out = raw_edit(
        &mut ds,
        R,
        &ah("<app><name>a</name><state><pid>1</pid></state></app>"),
        &EditOptions::default(),
    );
    let e = one_err(&out);
    assert_eq!(e.tag, ErrorTag::BadElement);
    assert_eq!(
        e.path.as_deref(),
        Some("/app-hosting:app-hosting/app[name='a']/state")
    );
    assert!(!exists(&ds, R, "/app-hosting:app-hosting/app[name='a']"));
}

#[test]
fn continue_on_error_still_refuses_an_invalid_running() {
    let mut ds = store();
    let body = "<name>n</name><limits><low>10</low><high>5</high></limits>";
    let out = raw_edit(&mut ds, R, &top(body), &opts(ErrorOption::ContinueOnError));
    assert_eq!(one_err(&out).app_tag.as_deref(), Some("high-below-low"));
    assert!(out.commit.is_none());
    assert!(out.changes.is_empty());
    assert!(!exists(&ds, R, "/edit-test:top/name"));
}

#[test]
fn a_commit_carries_the_edits_made_to_candidate_when_known() {
    let mut ds = store();
    assert!(edit(&mut ds, C, "<name>a</name>").errors.is_empty());
    assert!(edit(&mut ds, C, "<limits><low>1</low></limits>")
        .errors
        .is_empty());
    let c = ds.commit().expect("commit").expect("changed");
    let edits = c.edits.expect("edits known");
    assert_eq!(edits.len(), 2, "{edits:?}");
    assert!(
        edits.iter().all(|(p, _)| p.starts_with("/edit-test:top")),
        "{edits:?}"
    );
    // Discarded edits are not reported by the next commit.
    assert!(edit(&mut ds, C, "<name>b</name>").errors.is_empty());
    ds.discard_changes();
    assert!(edit(&mut ds, C, "<limits><high>9</high></limits>")
        .errors
        .is_empty());
    let c = ds.commit().expect("commit").expect("changed");
    assert_eq!(c.edits.expect("edits known").len(), 1);
    // Candidate replaced wholesale: only a diff can tell.
    let src = ds.tree(R).duplicate().expect("dup");
    ds.copy_config(C, apphost::datastore::ConfigSource::Inline(&src))
        .expect("copy");
    assert!(edit(&mut ds, C, "<name>c</name>").errors.is_empty());
    let c = ds.commit().expect("commit").expect("changed");
    assert!(c.edits.is_none());
    // Running changed under a modified candidate: unknown as well.
    assert!(edit(&mut ds, C, "<name>d</name>").errors.is_empty());
    assert!(edit(&mut ds, R, "<limits><low>2</low></limits>")
        .errors
        .is_empty());
    let c = ds.commit().expect("commit").expect("changed");
    assert!(c.edits.is_none());
}
