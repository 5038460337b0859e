//! Subtree and XPath filters and with-defaults printing on real libyang
//! trees of the app-hosting model (cases after RFC 6241 §6.4 and RFC 6243).

use apphost::netconf::filter::{self, Filter, SubtreeFilter};
use apphost::netconf::monitoring::{self, MonitoringInfo, SessionInfo};
use apphost::netconf::print::{complete_defaults, print_data, reply_data, WithDefaults};
use apphost::schema::{context, AH_NS};
use chrono::{TimeZone, Utc};
use yang2::data::{Data, DataFormat, DataParserFlags, DataTree, DataValidationFlags};

const NCM_NS: &str = "urn:ietf:params:xml:ns:yang:ietf-netconf-monitoring";
const NC_NS: &str = "urn:ietf:params:xml:ns:netconf:base:1.0";

fn data_xml(cpu: &str) -> String {
    format!(
        r#"<app-hosting xmlns="{AH_NS}">
  <cpu>{cpu}</cpu>
  <app>
    <name>web</name>
    <enable>true</enable>
    <capability>CAP_NET_ADMIN</capability>
    <capability>CAP_CHOWN</capability>
    <environment><name>A</name><value>1</value></environment>
    <image>busybox</image>
    <state><status>running</status><pid>42</pid></state>
  </app>
  <app>
    <name>db</name>
    <description>database</description>
    <image>pg</image>
  </app>
</app-hosting>"#
    )
}

/// A validated tree (so with its implicit default nodes), state included.
fn data_tree(cpu: &str) -> DataTree<'static> {
    let xml = format!("{}\0", data_xml(cpu));
    DataTree::parse_string(
        context(),
        xml.as_bytes(),
        DataFormat::XML,
        DataParserFlags::STRICT,
        DataValidationFlags::PRESENT,
    )
    .expect("sample data parses and validates")
}

fn run(tree: &DataTree<'static>, filter_xml: &str) -> String {
    let f = SubtreeFilter::parse(filter_xml).expect("filter parses");
    let out = filter::subtree(tree, &f).expect("filter applies");
    print_data(&out, WithDefaults::Explicit).expect("prints")
}

fn ah_filter(inner: &str) -> String {
    format!(r#"<filter type="subtree"><app-hosting xmlns="{AH_NS}">{inner}</app-hosting></filter>"#)
}

// ===== subtree =====

#[test]
fn select_one_app_by_key() {
    let tree = data_tree("30");
    let out = run(&tree, &ah_filter("<app><name>web</name></app>"));
    assert!(
        out.starts_with(&format!(
            "<app-hosting xmlns=\"{AH_NS}\"><app><name>web</name>"
        )),
        "{out}"
    );
    // Only content match nodes at that level: the whole entry is selected.
    assert!(out.contains("<image>busybox</image>"), "{out}");
    assert!(out.contains("<capability>CAP_CHOWN</capability>"), "{out}");
    assert!(out.contains("<status>running</status>"), "{out}");
    assert!(!out.contains("db"), "{out}");
    assert!(!out.contains("<cpu>"), "{out}");
}

#[test]
fn select_a_leaf() {
    let tree = data_tree("30");
    let out = run(&tree, &ah_filter("<cpu/>"));
    assert_eq!(
        out,
        format!("<app-hosting xmlns=\"{AH_NS}\"><cpu>30</cpu></app-hosting>")
    );
}

#[test]
fn content_match_that_matches_nothing_selects_nothing() {
    let tree = data_tree("30");
    assert_eq!(run(&tree, &ah_filter("<app><name>nope</name></app>")), "");
    assert_eq!(run(&tree, &ah_filter("<cpu>31</cpu><app/>")), "");
}

#[test]
fn content_match_compares_values_not_text() {
    let tree = data_tree("30");
    // "030" is the uint8 30; the sibling selection node is then selected.
    let out = run(&tree, &ah_filter("<cpu>030</cpu><app><name/></app>"));
    assert_eq!(
        out,
        format!(
            "<app-hosting xmlns=\"{AH_NS}\"><cpu>30</cpu><app><name>db</name></app><app><name>web</name></app></app-hosting>"
        )
    );
}

#[test]
fn namespace_mismatch_selects_nothing() {
    let tree = data_tree("30");
    let f = r#"<filter><app-hosting xmlns="urn:example:other"><cpu/></app-hosting></filter>"#;
    assert_eq!(run(&tree, f), "");
}

#[test]
fn unqualified_filter_matches_any_module() {
    let tree = data_tree("30");
    // Children of a filter in the base namespace inherit it: they are
    // unqualified for matching purposes.
    let f = format!(
        r#"<filter xmlns="{NC_NS}" type="subtree"><app-hosting><cpu/></app-hosting></filter>"#
    );
    assert_eq!(
        run(&tree, &f),
        format!("<app-hosting xmlns=\"{AH_NS}\"><cpu>30</cpu></app-hosting>")
    );
    let f = r#"<nc:filter xmlns:nc="urn:ietf:params:xml:ns:netconf:base:1.0"><app-hosting><cpu/></app-hosting></nc:filter>"#;
    assert_eq!(
        run(&tree, f),
        format!("<app-hosting xmlns=\"{AH_NS}\"><cpu>30</cpu></app-hosting>")
    );
}

#[test]
fn sibling_set_selects_only_named_nodes_with_keys() {
    let tree = data_tree("30");
    let out = run(
        &tree,
        &ah_filter("<app><name>web</name><image/><enable/></app>"),
    );
    assert_eq!(
        out,
        format!("<app-hosting xmlns=\"{AH_NS}\"><app><name>web</name><enable>true</enable><image>busybox</image></app></app-hosting>")
    );
    // Without a content match, every entry; the key comes along (libyang
    // keeps list entries sorted by key).
    let out = run(&tree, &ah_filter("<app><image/></app>"));
    assert_eq!(
        out,
        format!(
            "<app-hosting xmlns=\"{AH_NS}\"><app><name>db</name><image>pg</image></app><app><name>web</name><image>busybox</image></app></app-hosting>"
        )
    );
    // Deeper: a nested list's keys and its parents' keys.
    let out = run(
        &tree,
        &ah_filter("<app><environment><value/></environment></app>"),
    );
    assert_eq!(
        out,
        format!(
            "<app-hosting xmlns=\"{AH_NS}\"><app><name>web</name><environment><name>A</name><value>1</value></environment></app></app-hosting>"
        )
    );
}

#[test]
fn leaf_list_content_match_selects_matching_instances() {
    let tree = data_tree("30");
    let out = run(
        &tree,
        &ah_filter("<app><capability>CAP_CHOWN</capability><name/></app>"),
    );
    assert_eq!(
        out,
        format!(
            "<app-hosting xmlns=\"{AH_NS}\"><app><name>web</name><capability>CAP_CHOWN</capability></app></app-hosting>"
        )
    );
}

#[test]
fn empty_filter_selects_nothing_and_empty_container_selects_all() {
    let tree = data_tree("30");
    assert_eq!(run(&tree, "<filter type=\"subtree\"/>"), "");
    let all = run(&tree, &ah_filter(""));
    assert_eq!(
        all,
        print_data(&tree, WithDefaults::Explicit).expect("prints")
    );
    assert!(all.contains("<name>db</name>") && all.contains("<cpu>30</cpu>"));
}

fn monitoring_tree() -> DataTree<'static> {
    let mut info = MonitoringInfo::new(Utc.with_ymd_and_hms(2026, 12, 3, 20, 0, 0).unwrap());
    info.capabilities = vec!["urn:ietf:params:netconf:base:1.1".to_owned()];
    info.sessions.push(SessionInfo {
        session_id: 7,
        username: "alice".to_owned(),
        source_host: Some("127.0.0.1".to_owned()),
        login_time: Utc.with_ymd_and_hms(2026, 12, 3, 20, 1, 0).unwrap(),
        counters: Default::default(),
    });
    monitoring::state(&info).expect("monitoring state builds")
}

#[test]
fn multiple_top_level_filters_and_identityref_match() {
    let mut tree = data_tree("30");
    tree.merge(&monitoring_tree()).expect("merge");
    let f = format!(
        r#"<filter><app-hosting xmlns="{AH_NS}"><cpu/></app-hosting><netconf-state xmlns="{NCM_NS}" xmlns:x="{NCM_NS}"><sessions><session><transport>x:netconf-ssh</transport><username/></session></sessions></netconf-state></filter>"#
    );
    let out = run(&tree, &f);
    assert!(out.contains("<cpu>30</cpu>"), "{out}");
    assert!(out.contains("<session-id>7</session-id>"), "{out}");
    assert!(out.contains("<username>alice</username>"), "{out}");
    assert!(!out.contains("login-time"), "{out}");
    // Another identity does not match.
    let f = format!(
        r#"<filter><netconf-state xmlns="{NCM_NS}" xmlns:x="{NCM_NS}"><sessions><session><transport>x:netconf-tls</transport></session></sessions></netconf-state></filter>"#
    );
    assert_eq!(run(&tree, &f), "");
}

// ===== XPath =====

fn ns(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(p, u)| (p.to_string(), u.to_string()))
        .collect()
}

#[test]
fn xpath_with_prefixes() {
    let tree = data_tree("30");
    let out = filter::xpath(
        &tree,
        "/a:app-hosting/a:app[a:name='db']/a:image",
        &ns(&[("a", AH_NS)]),
    )
    .expect("xpath applies");
    assert_eq!(
        print_data(&out, WithDefaults::Explicit).expect("prints"),
        format!("<app-hosting xmlns=\"{AH_NS}\"><app><name>db</name><image>pg</image></app></app-hosting>")
    );
    // A list entry comes with its whole subtree.
    let out = filter::xpath(
        &tree,
        "/a:app-hosting/a:app[a:name='web']",
        &ns(&[("a", AH_NS)]),
    )
    .expect("applies");
    let text = print_data(&out, WithDefaults::Explicit).expect("prints");
    assert!(
        text.contains("<environment><name>A</name><value>1</value></environment>"),
        "{text}"
    );
    assert!(!text.contains("db"), "{text}");
}

#[test]
fn xpath_root_descendants_and_predicates() {
    let tree = data_tree("30");
    let a = ns(&[("a", AH_NS)]);
    let all = print_data(&tree, WithDefaults::Explicit).expect("prints");
    for whole in ["/", "/*", "/a:app-hosting"] {
        let out = filter::xpath(&tree, whole, &a).expect("applies");
        assert_eq!(
            print_data(&out, WithDefaults::Explicit).expect("prints"),
            all,
            "{whole}"
        );
    }
    let out = filter::xpath(&tree, "//a:image", &a).expect("applies");
    assert_eq!(
        print_data(&out, WithDefaults::Explicit).expect("prints"),
        format!("<app-hosting xmlns=\"{AH_NS}\"><app><name>db</name><image>pg</image></app><app><name>web</name><image>busybox</image></app></app-hosting>")
    );
    let out =
        filter::xpath(&tree, "/a:app-hosting/a:app[a:enable='true']/a:name", &a).expect("applies");
    assert_eq!(
        print_data(&out, WithDefaults::Explicit).expect("prints"),
        format!("<app-hosting xmlns=\"{AH_NS}\"><app><name>web</name></app></app-hosting>")
    );
    let e = filter::xpath(&tree, "count(/a:app-hosting/a:app)", &a).expect_err("not a node set");
    assert_eq!(e.tag.as_str(), "invalid-value");
}

#[test]
fn xpath_identity_literal_uses_xml_prefix() {
    let tree = monitoring_tree();
    let m = ns(&[("m", NCM_NS)]);
    let out = filter::xpath(
        &tree,
        "/m:netconf-state/m:sessions/m:session[m:transport='m:netconf-ssh']/m:username",
        &m,
    )
    .expect("applies");
    let text = print_data(&out, WithDefaults::Explicit).expect("prints");
    assert!(text.contains("<username>alice</username>"), "{text}");
    let out = filter::xpath(
        &tree,
        "/m:netconf-state/m:sessions/m:session[m:transport='m:netconf-tls']",
        &m,
    )
    .expect("applies");
    assert_eq!(
        print_data(&out, WithDefaults::Explicit).expect("prints"),
        ""
    );
}

#[test]
fn xpath_union() {
    let mut tree = data_tree("30");
    tree.merge(&monitoring_tree()).expect("merge");
    let out = filter::xpath(
        &tree,
        "/a:app-hosting/a:cpu | /m:netconf-state/m:sessions/m:session/m:username",
        &ns(&[("a", AH_NS), ("m", NCM_NS)]),
    )
    .expect("union applies");
    let text = print_data(&out, WithDefaults::Explicit).expect("prints");
    assert!(text.contains("<cpu>30</cpu>"), "{text}");
    assert!(
        text.contains("<session-id>7</session-id><username>alice</username>"),
        "{text}"
    );
    assert!(!text.contains("<app>"), "{text}");
}

#[test]
fn xpath_errors_are_invalid_value() {
    let tree = data_tree("30");
    let e = filter::xpath(&tree, "/a:app-hosting/[", &ns(&[("a", AH_NS)])).expect_err("bad syntax");
    assert_eq!(e.tag.as_str(), "invalid-value");
    let e =
        filter::xpath(&tree, "/zz:app-hosting", &ns(&[("a", AH_NS)])).expect_err("unknown prefix");
    assert_eq!(e.tag.as_str(), "invalid-value");
    assert!(e.message.unwrap_or_default().contains("zz"));
    let empty = DataTree::new(context());
    assert!(filter::xpath(&empty, "/a:app-hosting/[", &ns(&[("a", AH_NS)])).is_err());
    assert!(filter::xpath(&empty, "/a:app-hosting", &ns(&[("a", AH_NS)])).is_ok());
}

#[test]
fn xpath_yang_library_wildcard_like_netopeer2_cli() {
    let mut tree = apphost::netconf::yanglib::state().expect("yang library");
    tree.merge(&data_tree("30")).expect("merge");
    // libnetconf2 prints module names as the prefixes and declares them.
    let nss = ns(&[
        (
            "ietf-yang-library",
            "urn:ietf:params:xml:ns:yang:ietf-yang-library",
        ),
        (
            "ietf-yang-schema-mount",
            "urn:ietf:params:xml:ns:yang:ietf-yang-schema-mount",
        ),
        ("or", "urn:ietf:params:xml:ns:yang:ietf-origin"),
    ]);
    let out = filter::xpath(
        &tree,
        "/ietf-yang-library:* | /ietf-yang-schema-mount:*",
        &nss,
    )
    .expect("applies");
    let text = print_data(&out, WithDefaults::Explicit).expect("prints");
    assert!(
        text.contains("<modules-state"),
        "{}",
        &text[..200.min(text.len())]
    );
    assert!(text.contains("<yang-library"));
    assert!(!text.contains("<app-hosting"));
    // ietf-origin is in the context but not implemented: its branch is empty.
    let out = filter::xpath(
        &tree,
        "/or:anything | /ietf-yang-library:modules-state/ietf-yang-library:module-set-id",
        &nss,
    )
    .expect("applies");
    let text = print_data(&out, WithDefaults::Explicit).expect("prints");
    assert!(text.contains("<module-set-id>"), "{text}");
}

// ===== with-defaults =====

#[test]
fn with_defaults_modes() {
    let tree = data_tree("25");
    let explicit = print_data(&tree, WithDefaults::Explicit).expect("prints");
    let all = print_data(&tree, WithDefaults::ReportAll).expect("prints");
    let tagged = print_data(&tree, WithDefaults::ReportAllTagged).expect("prints");
    let trim = print_data(&tree, WithDefaults::Trim).expect("prints");

    // cpu was set to its default value: explicit keeps it, trim drops it.
    assert!(explicit.contains("<cpu>25</cpu>"), "{explicit}");
    assert!(!trim.contains("<cpu>"), "{trim}");
    // ram was never set: only the report-all modes show it.
    assert!(!explicit.contains("<ram>"), "{explicit}");
    assert!(!trim.contains("<ram>"), "{trim}");
    assert!(all.contains("<ram>25</ram>"), "{all}");
    assert!(all.contains("<cmd>/sbin/init</cmd>"), "{all}");
    assert!(!all.contains("default=\"true\""), "{all}");

    // Tagged: every default-valued node, explicit or not, with RFC 6243's
    // namespace.
    assert!(tagged.contains(":default=\"true\">25</ram>"), "{tagged}");
    assert!(tagged.contains(":default=\"true\">25</cpu>"), "{tagged}");
    assert!(
        tagged.contains("\"urn:ietf:params:xml:ns:netconf:default:1.0\""),
        "{tagged}"
    );
    assert!(
        !tagged.contains("yang:ietf-netconf-with-defaults"),
        "{tagged}"
    );
    assert!(tagged.contains("<image>busybox</image>"), "{tagged}");
    // A non-default value is reported untagged.
    let tree30 = data_tree("30");
    let tagged30 = print_data(&tree30, WithDefaults::ReportAllTagged).expect("prints");
    assert!(tagged30.contains("<cpu>30</cpu>"), "{tagged30}");
    let trim30 = print_data(&tree30, WithDefaults::Trim).expect("prints");
    assert!(trim30.contains("<cpu>30</cpu>"), "{trim30}");
}

#[test]
fn report_all_on_a_tree_without_implicit_nodes() {
    let xml = format!("{}\0", data_xml("30"));
    let parsed = DataTree::parse_string(
        context(),
        xml.as_bytes(),
        DataFormat::XML,
        DataParserFlags::NO_VALIDATION,
        DataValidationFlags::PRESENT,
    )
    .expect("parses");
    assert!(!print_data(&parsed, WithDefaults::ReportAll)
        .expect("prints")
        .contains("<ram>"));
    let full = complete_defaults(&parsed).expect("implicit nodes added");
    let all = print_data(&full, WithDefaults::ReportAll).expect("prints");
    assert!(all.contains("<ram>25</ram>"), "{all}");
    // Explicit output is unchanged by the added defaults.
    assert_eq!(
        print_data(&full, WithDefaults::Explicit).expect("prints"),
        print_data(&parsed, WithDefaults::Explicit).expect("prints")
    );
}

#[test]
fn filter_then_print_keeps_default_flags() {
    let tree = data_tree("30");
    let out = filter::subtree(
        &tree,
        &SubtreeFilter::parse(&ah_filter("<ram/><cpu/>")).expect("parses"),
    )
    .expect("applies");
    assert_eq!(
        print_data(&out, WithDefaults::Explicit).expect("prints"),
        format!("<app-hosting xmlns=\"{AH_NS}\"><cpu>30</cpu></app-hosting>")
    );
    let all = print_data(&out, WithDefaults::ReportAll).expect("prints");
    assert_eq!(
        all,
        format!("<app-hosting xmlns=\"{AH_NS}\"><cpu>30</cpu><ram>25</ram></app-hosting>")
    );
}

#[test]
fn printing_is_byte_stable() {
    let tree = data_tree("30");
    for wd in [
        WithDefaults::Explicit,
        WithDefaults::ReportAll,
        WithDefaults::ReportAllTagged,
        WithDefaults::Trim,
    ] {
        let a = print_data(&tree, wd).expect("prints");
        let b = print_data(&tree, wd).expect("prints");
        assert_eq!(a, b);
        let dup = tree.duplicate().expect("dup");
        assert_eq!(a, print_data(&dup, wd).expect("prints"));
        assert!(!a.contains('\n'), "shrunk output: {a}");
    }
    // Parsing the output back gives the same text again (Ansible's
    // before/after comparison).
    let a = print_data(&tree, WithDefaults::Explicit).expect("prints");
    let again = DataTree::parse_string(
        context(),
        format!("{a}\0").as_bytes(),
        DataFormat::XML,
        DataParserFlags::STRICT,
        DataValidationFlags::PRESENT,
    )
    .expect("reparses");
    assert_eq!(
        a,
        print_data(&again, WithDefaults::Explicit).expect("prints")
    );
    assert_eq!(
        print_data(&DataTree::new(context()), WithDefaults::Explicit).expect("prints"),
        ""
    );
    // A Data-trait search still works on the printed-and-reparsed tree.
    assert!(again
        .find_path("/app-hosting:app-hosting/app[name='db']/image")
        .is_ok());
}

#[test]
fn sibling_instances_with_different_selections() {
    // RFC 6241 §6.4.6 shape: two instances of the same list, each with its
    // own content match and selection.
    let tree = data_tree("30");
    let out = run(
        &tree,
        &ah_filter("<app><name>web</name><image/></app><app><name>db</name><description/></app>"),
    );
    assert_eq!(
        out,
        format!(
            "<app-hosting xmlns=\"{AH_NS}\"><app><name>db</name><description>database</description></app><app><name>web</name><image>busybox</image></app></app-hosting>"
        )
    );
}

#[test]
fn tagged_output_is_namespace_well_formed() {
    let tree = data_tree("25");
    let f = SubtreeFilter::parse(&ah_filter("<cpu/><ram/><storage/>")).expect("parses");
    let out = filter::subtree(&tree, &f).expect("applies");
    let tagged = print_data(&out, WithDefaults::ReportAllTagged).expect("prints");
    // Parsed as XML, the attribute is `default` in RFC 6243's namespace,
    // on all four default-valued leaves.
    let doc = roxmltree::Document::parse(&tagged).expect("well-formed XML");
    let tagged_leaves: Vec<&str> = doc
        .descendants()
        .filter(|n| {
            n.attribute(("urn:ietf:params:xml:ns:netconf:default:1.0", "default")) == Some("true")
        })
        .map(|n| n.tag_name().name())
        .collect();
    assert_eq!(
        tagged_leaves,
        vec!["cpu", "ram", "media", "path"],
        "{tagged}"
    );
    // Explicit mode: cpu only (storage holds only defaults).
    assert_eq!(
        print_data(&out, WithDefaults::Explicit).expect("prints"),
        format!("<app-hosting xmlns=\"{AH_NS}\"><cpu>25</cpu></app-hosting>")
    );
}

// ===== whole replies =====

fn parse_only(cpu: &str) -> DataTree<'static> {
    let xml = format!("{}\0", data_xml(cpu));
    DataTree::parse_string(
        context(),
        xml.as_bytes(),
        DataFormat::XML,
        DataParserFlags::NO_VALIDATION,
        DataValidationFlags::empty(),
    )
    .expect("parses")
}

#[test]
fn filter_element_kinds() {
    let tree = data_tree("30");
    let doc = format!(
        r#"<get xmlns="{NC_NS}"><filter type="xpath" xmlns:a="{AH_NS}" select="/a:app-hosting/a:cpu"/></get>"#
    );
    let doc = roxmltree::Document::parse(&doc).expect("xml");
    let el = doc
        .root_element()
        .first_element_child()
        .expect("filter element");
    let f = Filter::from_filter_element(el).expect("xpath filter");
    let out = filter::apply(&tree, Some(&f)).expect("applies");
    assert_eq!(
        print_data(&out, WithDefaults::Explicit).expect("prints"),
        format!("<app-hosting xmlns=\"{AH_NS}\"><cpu>30</cpu></app-hosting>")
    );

    let doc = format!(
        r#"<get xmlns="{NC_NS}"><filter><app-hosting xmlns="{AH_NS}"><cpu/></app-hosting></filter></get>"#
    );
    let doc = roxmltree::Document::parse(&doc).expect("xml");
    let el = doc
        .root_element()
        .first_element_child()
        .expect("filter element");
    assert!(matches!(
        Filter::from_filter_element(el),
        Ok(Filter::Subtree(_))
    ));

    let doc = format!(r#"<get xmlns="{NC_NS}"><filter type="xpath"/><filter type="regex"/></get>"#);
    let doc = roxmltree::Document::parse(&doc).expect("xml");
    let mut els = doc.root_element().children().filter(|n| n.is_element());
    let e = Filter::from_filter_element(els.next().expect("first")).expect_err("no select");
    assert_eq!(e.tag.as_str(), "missing-attribute");
    let e = Filter::from_filter_element(els.next().expect("second")).expect_err("bad type");
    assert_eq!(e.tag.as_str(), "bad-attribute");

    // get-data's xpath-filter: the expression is the element text.
    let doc = format!(
        r#"<get-data xmlns="urn:ietf:params:xml:ns:yang:ietf-netconf-nmda"><xpath-filter xmlns:a="{AH_NS}"> /a:app-hosting/a:app/a:image </xpath-filter></get-data>"#
    );
    let doc = roxmltree::Document::parse(&doc).expect("xml");
    let el = doc
        .root_element()
        .first_element_child()
        .expect("xpath-filter");
    let f = Filter::from_xpath_filter_element(el);
    let out = filter::apply(&tree, Some(&f)).expect("applies");
    assert!(print_data(&out, WithDefaults::Explicit)
        .expect("prints")
        .contains("<image>pg</image>"));
}

#[test]
fn reply_data_adds_defaults_before_filtering() {
    let tree = parse_only("30");
    let f = Filter::Subtree(SubtreeFilter::parse(&ah_filter("<cpu/><ram/>")).expect("parses"));
    assert_eq!(
        reply_data(&tree, Some(&f), WithDefaults::ReportAll).expect("reply"),
        format!("<app-hosting xmlns=\"{AH_NS}\"><cpu>30</cpu><ram>25</ram></app-hosting>")
    );
    assert_eq!(
        reply_data(&tree, Some(&f), WithDefaults::Explicit).expect("reply"),
        format!("<app-hosting xmlns=\"{AH_NS}\"><cpu>30</cpu></app-hosting>")
    );
    let all = reply_data(&tree, None, WithDefaults::ReportAllTagged).expect("reply");
    assert!(all.contains(":default=\"true\">/sbin/init</cmd>"), "{all}");
    assert_eq!(
        reply_data(&tree, None, WithDefaults::Explicit).expect("reply"),
        print_data(&tree, WithDefaults::Explicit).expect("prints")
    );
}
