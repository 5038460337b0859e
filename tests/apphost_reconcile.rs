//! The reconciler against recording OS fakes (no root): real libyang trees,
//! real image/label files and logs in a temp dir.

use std::collections::HashMap;
use std::fs;
use std::path::PathBuf;
use std::time::Duration;

use apphost::apphost::fake::Fake;
use apphost::apphost::{AppEvent, Apphost, ApphostConfig, Status};
use apphost::error::ErrorTag;
use apphost::schema;
use yang2::data::{
    Data, DataFormat, DataParserFlags, DataPrinterFlags, DataTree, DataValidationFlags,
};

struct Env {
    tmp: tempfile::TempDir,
    fake: Fake,
    ah: Apphost,
}

fn tree(inner: &str) -> DataTree<'static> {
    let s = format!("<app-hosting xmlns=\"urn:apphost:yang:app-hosting\">{inner}</app-hosting>\0");
    DataTree::parse_string(
        schema::context(),
        s.as_bytes(),
        DataFormat::XML,
        DataParserFlags::NO_STATE | DataParserFlags::STRICT,
        DataValidationFlags::NO_STATE,
    )
    .expect("valid config")
}

fn images_dir(tmp: &tempfile::TempDir) -> PathBuf {
    tmp.path().join("ext/app/images")
}

fn config(tmp: &tempfile::TempDir) -> ApphostConfig {
    let mut media = HashMap::new();
    media.insert("external".to_string(), tmp.path().join("ext"));
    let mut cfg = ApphostConfig::new(tmp.path().join("state"), media);
    cfg.stop_grace = Duration::from_millis(200);
    // The tests drive passes themselves.
    cfg.tick = Duration::from_secs(3600);
    cfg
}

fn setup() -> Env {
    let tmp = tempfile::tempdir().unwrap();
    let dir = images_dir(&tmp);
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("a.img"), b"image a").unwrap();
    fs::write(dir.join("b.img"), b"image b").unwrap();
    let fake = Fake::new();
    {
        let mut w = fake.world();
        w.links.insert("eth3".into());
        w.links.insert("eth4".into());
        w.links.insert("br0".into());
    }
    let ah = Apphost::new(config(&tmp), fake.os()).unwrap();
    ah.set_label("a.img", "web").unwrap();
    ah.set_label("b.img", "other").unwrap();
    Env { tmp, fake, ah }
}

impl Env {
    fn apply(&self, inner: &str) {
        self.ah.apply(&tree(inner));
        self.ah.reconcile_now();
    }
    fn status(&self, app: &str) -> Status {
        self.ah
            .app_state(app)
            .map(|s| s.status)
            .expect("app has state")
    }
}

const WEB: &str = "<app><name>web</name><enable>true</enable><autostart>true</autostart><image>web</image>
    <share><port><name>eth3</name><as>lan</as></port><veth><name>vweb</name><as>eth0</as></veth></share></app>";

#[test]
fn autostart_app_starts_with_everything_and_second_pass_is_idle() {
    let e = setup();
    e.apply(WEB);
    assert_eq!(e.status("web"), Status::Running);
    let s = e.ah.app_state("web").unwrap();
    assert!(s.pid.is_some());
    assert_eq!(s.restart_count, 1);
    assert!(s.image_file.unwrap().ends_with("a.img"));
    assert_eq!(e.ah.apps_using_image("a.img"), vec!["web".to_string()]);
    assert!(e.ah.apps_using_image("b.img").is_empty());
    assert_eq!(e.ah.images_dir().unwrap(), images_dir(&e.tmp));
    assert!(s.image_sha256.is_some());
    let calls = e.fake.take_calls();
    for want in [
        "set_limits 25 25",
        "create_netns web",
        "add_veth vweb eth0 web",
        "move_port eth3 web lan",
        "run web",
    ] {
        assert!(
            calls.iter().any(|c| c == want),
            "missing {want} in {calls:?}"
        );
    }
    assert!(calls
        .iter()
        .any(|c| c.starts_with("mount ") && c.contains("a.img")));
    // Level-triggered and idempotent.
    e.ah.reconcile_now();
    e.ah.apply(&tree(WEB));
    e.ah.reconcile_now();
    assert_eq!(e.fake.take_calls(), Vec::<String>::new());
    // The bundle was written in the app dir and the log is the app's.
    let w = e.fake.world();
    let (_, bundle, log) = &w.runs[0];
    assert!(bundle.join("config.json").exists());
    assert_eq!(log, &e.ah.log_path("web"));
}

#[test]
fn not_autostart_waits_for_start_and_stop_sticks_across_commits() {
    let e = setup();
    let cfg = "<app><name>web</name><enable>true</enable><image>web</image></app>";
    e.apply(cfg);
    assert_eq!(e.status("web"), Status::Stopped);
    assert!(!e.fake.calls().iter().any(|c| c.starts_with("run")));
    e.ah.start("web").unwrap();
    assert_eq!(e.status("web"), Status::Running);
    // Started by RPC: kept running across commits.
    e.apply(&format!("{cfg}<cpu>30</cpu>"));
    assert_eq!(e.status("web"), Status::Running);
    e.ah.stop("web").unwrap();
    assert_eq!(e.status("web"), Status::Stopped);
    e.apply(cfg);
    assert_eq!(
        e.status("web"),
        Status::Stopped,
        "stop sticks across a commit"
    );
    e.ah.start("web").unwrap();
    assert_eq!(e.status("web"), Status::Running);
    assert_eq!(e.ah.app_state("web").unwrap().restart_count, 2);
}

#[test]
fn config_change_restarts_only_that_app_and_cpu_only_sets_limits() {
    let e = setup();
    let db = "<app><name>db</name><enable>true</enable><autostart>true</autostart><image>other</image></app>";
    e.apply(&format!("{WEB}{db}"));
    assert_eq!(
        (e.status("web"), e.status("db")),
        (Status::Running, Status::Running)
    );
    let db_pid = e.ah.app_state("db").unwrap().pid;
    e.fake.take_calls();
    let web2 = WEB.replace(
        "<image>web</image>",
        "<image>web</image><environment><name>X</name><value>1</value></environment>",
    );
    e.apply(&format!("{web2}{db}"));
    let calls = e.fake.take_calls();
    assert!(
        calls.contains(&"kill web 15".to_string()) && calls.contains(&"run web".to_string()),
        "{calls:?}"
    );
    assert!(
        !calls.iter().any(|c| c.contains("db")),
        "db untouched: {calls:?}"
    );
    assert_eq!(e.ah.app_state("db").unwrap().pid, db_pid);
    e.apply(&format!("<cpu>40</cpu><ram>20</ram>{web2}{db}"));
    assert_eq!(e.fake.take_calls(), vec!["set_limits 40 20".to_string()]);
}

#[test]
fn disabled_and_deleted_apps_are_torn_down() {
    let e = setup();
    e.apply(WEB);
    e.fake.take_calls();
    e.apply(&WEB.replace("<enable>true</enable>", "<enable>false</enable>"));
    assert_eq!(e.status("web"), Status::Disabled);
    let calls = e.fake.take_calls();
    for want in [
        "kill web 15",
        "delete web",
        "return_port web lan eth3",
        "del_link vweb",
        "delete_netns web",
        "remove_app web",
    ] {
        assert!(
            calls.iter().any(|c| c == want),
            "missing {want} in {calls:?}"
        );
    }
    assert!(calls.iter().any(|c| c.starts_with("unmount ")));
    {
        let w = e.fake.world();
        assert!(
            w.links.contains("eth3")
                && !w.links.contains("vweb")
                && w.netns.is_empty()
                && w.mounted.is_empty()
        );
    }
    e.apply(WEB);
    assert_eq!(e.status("web"), Status::Running);
    e.apply("");
    assert!(
        e.ah.app_state("web").is_none(),
        "deleted app has no state row"
    );
    let w = e.fake.world();
    assert!(w.containers.is_empty() && w.netns.is_empty() && w.links.contains("eth3"));
    assert!(!e.tmp.path().join("state/apps/web").exists());
}

#[test]
fn run_failure_lands_in_state_and_is_cleaned_up_not_retried() {
    let e = setup();
    e.fake.fail("run", "crun exploded");
    e.apply(WEB);
    let s = e.ah.app_state("web").unwrap();
    assert_eq!(s.status, Status::Failed);
    assert!(
        s.last_error.as_deref().unwrap().contains("crun exploded"),
        "{s:?}"
    );
    {
        let w = e.fake.world();
        assert!(w.links.contains("eth3"), "port returned");
        assert!(!w.links.contains("vweb") && w.netns.is_empty() && w.mounted.is_empty());
    }
    e.fake.take_calls();
    e.ah.reconcile_now();
    assert!(
        !e.fake.calls().iter().any(|c| c.starts_with("run")),
        "no retry loop"
    );
    // The error is in the operational tree too.
    let xml =
        e.ah.state_tree()
            .unwrap()
            .print_string(DataFormat::XML, DataPrinterFlags::WITH_SIBLINGS)
            .unwrap()
            .unwrap();
    assert!(
        xml.contains("<status>failed</status>") && xml.contains("crun exploded"),
        "{xml}"
    );
    // And in the log.
    assert!(e.ah.show_log("web", 10).unwrap().contains("crun exploded"));
    // The RPC reports it; after the fault is gone, start works.
    let err = e.ah.start("web").unwrap_err();
    assert_eq!(err.tag, ErrorTag::OperationFailed);
    assert!(err.message.unwrap().contains("crun exploded"));
    e.fake.clear_fail("run");
    e.ah.start("web").unwrap();
    assert_eq!(e.status("web"), Status::Running);
    assert_eq!(e.ah.app_state("web").unwrap().last_error, None);
}

#[test]
fn missing_image_is_no_image_and_start_says_so() {
    let e = setup();
    e.apply("<app><name>x</name><enable>true</enable><autostart>true</autostart><image>nolabel</image></app>");
    assert_eq!(e.status("x"), Status::NoImage);
    let err = e.ah.start("x").unwrap_err();
    assert_eq!(err.tag, ErrorTag::OperationFailed);
    assert!(err.message.unwrap().contains("nolabel"));
    // Label it: the next pass starts it (autostart requested it).
    e.ah.set_label("b.img", "nolabel").unwrap();
    e.ah.start("x").unwrap();
    assert_eq!(e.status("x"), Status::Running);
}

#[test]
fn label_move_waits_for_reload() {
    let e = setup();
    e.apply(WEB);
    let pid = e.ah.app_state("web").unwrap().pid;
    e.ah.set_label("b.img", "web").unwrap();
    e.ah.reconcile_now();
    assert_eq!(
        e.ah.app_state("web").unwrap().pid,
        pid,
        "not restarted by the label move"
    );
    e.fake.take_calls();
    e.ah.reload(Some("web")).unwrap();
    let s = e.ah.app_state("web").unwrap();
    assert_ne!(s.pid, pid);
    assert!(s.image_file.unwrap().ends_with("b.img"));
    assert!(e
        .fake
        .calls()
        .iter()
        .any(|c| c.starts_with("mount ") && c.contains("b.img")));
    // reload of an unknown label is an error with the path.
    let err = e.ah.reload(Some("nope")).unwrap_err();
    assert_eq!(err.tag, ErrorTag::InvalidValue);
    assert_eq!(err.path.as_deref(), Some("/app-hosting:reload/label"));
    // reload without argument restarts every app with a label.
    e.fake.take_calls();
    e.ah.reload(None).unwrap();
    assert!(e.fake.calls().contains(&"run web".to_string()));
    // A failing restart makes reload fail, naming the app.
    e.fake.fail("run", "no memory");
    let err = e.ah.reload(Some("web")).unwrap_err();
    assert_eq!(err.tag, ErrorTag::OperationFailed);
    let msg = err.message.unwrap();
    assert!(msg.contains("web: start: run: run: no memory"), "{msg}");
    assert_eq!(e.status("web"), Status::Failed);
}

#[test]
fn adoption_after_agent_restart_keeps_the_container() {
    let e = setup();
    e.apply(WEB);
    let pid = e.ah.app_state("web").unwrap().pid;
    let Env { tmp, fake, ah } = e;
    drop(ah);
    fake.take_calls();
    let ah2 = Apphost::new(config(&tmp), fake.os()).unwrap();
    assert_eq!(ah2.app_state("web").unwrap().status, Status::Running);
    ah2.apply(&tree(WEB));
    ah2.reconcile_now();
    let s = ah2.app_state("web").unwrap();
    assert_eq!((s.status, s.pid), (Status::Running, pid));
    let calls = fake.take_calls();
    assert!(
        !calls
            .iter()
            .any(|c| c.starts_with("run") || c.starts_with("kill")),
        "{calls:?}"
    );
    // A config changed while the agent was down: restarted.
    ah2.apply(&tree(&WEB.replace(
        "<image>web</image>",
        "<image>web</image><capability>CAP_NET_ADMIN</capability>",
    )));
    ah2.reconcile_now();
    assert_ne!(ah2.app_state("web").unwrap().pid, pid);
}

#[test]
fn container_exit_is_noticed_cleaned_and_not_restarted() {
    let e = setup();
    e.apply(WEB);
    e.fake.exit("web");
    e.fake.take_calls();
    e.ah.reconcile_now();
    assert_eq!(e.status("web"), Status::Stopped);
    let calls = e.fake.take_calls();
    assert!(
        calls.contains(&"delete_netns web".to_string()),
        "leftovers removed: {calls:?}"
    );
    assert!(!calls.iter().any(|c| c.starts_with("run")));
    assert!(e
        .ah
        .show_log("web", 5)
        .unwrap()
        .contains("container exited"));
    // The next commit restarts an autostart app.
    e.apply(WEB);
    assert_eq!(e.status("web"), Status::Running);
}

#[test]
fn stop_escalates_to_sigkill_after_grace() {
    let e = setup();
    e.apply(WEB);
    e.fake.world().ignore_sigterm = true;
    e.fake.take_calls();
    let t0 = std::time::Instant::now();
    e.ah.stop("web").unwrap();
    assert!(t0.elapsed() >= Duration::from_millis(200));
    let calls = e.fake.take_calls();
    let t = calls.iter().position(|c| c == "kill web 15").unwrap();
    let k = calls.iter().position(|c| c == "kill web 9").unwrap();
    assert!(t < k);
    assert_eq!(e.status("web"), Status::Stopped);
}

#[test]
fn teardown_error_is_reported_and_retried() {
    let e = setup();
    e.apply(WEB);
    e.fake.fail("unmount", "device busy");
    e.ah.stop("web").unwrap_err();
    let s = e.ah.app_state("web").unwrap();
    assert_eq!(s.status, Status::Failed);
    assert!(s.last_error.unwrap().contains("device busy"));
    e.fake.clear_fail("unmount");
    e.fake.take_calls();
    e.ah.reconcile_now();
    assert!(
        e.fake.calls().iter().any(|c| c.starts_with("unmount")),
        "retried"
    );
    assert!(e.fake.world().mounted.is_empty());
    assert!(
        !e.fake.calls().iter().any(|c| c.starts_with("return_port")),
        "steps done are not redone: {:?}",
        e.fake.calls()
    );
    // Stopping an app whose earlier stop failed is not an error now.
    e.ah.stop("web").unwrap();
    assert_eq!(
        e.ah.app_state("web").unwrap().status,
        Status::Failed,
        "the failure stays visible"
    );
}

#[test]
fn rpc_errors() {
    let e = setup();
    e.apply("<app><name>off</name><image>web</image></app>");
    let err = e.ah.start("nope").unwrap_err();
    assert_eq!(err.tag, ErrorTag::InvalidValue);
    assert_eq!(err.path.as_deref(), Some("/app-hosting:start/app"));
    assert_eq!(
        e.ah.stop("nope").unwrap_err().path.as_deref(),
        Some("/app-hosting:stop/app")
    );
    let err = e.ah.start("off").unwrap_err();
    assert_eq!(err.tag, ErrorTag::OperationFailed);
    assert!(err.message.unwrap().contains("not enabled"));
    assert_eq!(
        e.ah.restart("off").unwrap_err().tag,
        ErrorTag::OperationFailed
    );
    assert_eq!(
        e.ah.show_log("nope", 5).unwrap_err().tag,
        ErrorTag::InvalidValue
    );
    let err = e.ah.set_label("missing.img", "x").unwrap_err();
    assert_eq!(err.path.as_deref(), Some("/app-hosting:set-label/image"));
    let err = e.ah.remove_label("nolabel").unwrap_err();
    assert_eq!(err.path.as_deref(), Some("/app-hosting:remove-label/label"));
}

#[test]
fn restart_restarts() {
    let e = setup();
    e.apply(WEB);
    let pid = e.ah.app_state("web").unwrap().pid;
    e.ah.restart("web").unwrap();
    let s = e.ah.app_state("web").unwrap();
    assert_ne!(s.pid, pid);
    assert_eq!(s.restart_count, 2);
}

#[test]
fn events_report_transitions_and_log_lines() {
    let e = setup();
    let mut rx = e.ah.subscribe();
    e.apply(WEB);
    let mut seen = Vec::new();
    while let Ok(ev) = rx.try_recv() {
        if let AppEvent::StateChanged { app, status, .. } = ev {
            seen.push((app, status));
        }
    }
    assert!(seen.contains(&("web".into(), Status::Starting)));
    assert_eq!(seen.last(), Some(&("web".into(), Status::Running)));
    // A line the container writes reaches subscribers via the loop thread.
    let log = e.ah.log_path("web");
    let mut f = fs::OpenOptions::new().append(true).open(&log).unwrap();
    use std::io::Write;
    writeln!(f, "hello from web").unwrap();
    e.ah.apply(&tree(WEB)); // wakes the loop
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let mut got = false;
    while std::time::Instant::now() < deadline && !got {
        match rx.try_recv() {
            Ok(AppEvent::Log { app, line }) => got = app == "web" && line == "hello from web",
            Ok(_) => {}
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
    assert!(got, "log line event");
    assert_eq!(e.ah.show_log("web", 1).unwrap(), "hello from web\n");
}

#[test]
fn state_tree_lists_apps_media_images() {
    let e = setup();
    e.apply(&format!(
        "{WEB}<app><name>off</name><image>other</image></app>"
    ));
    let t = e.ah.state_tree().unwrap();
    let xml = t
        .print_string(DataFormat::XML, DataPrinterFlags::WITH_SIBLINGS)
        .unwrap()
        .unwrap();
    for want in [
        "<status>running</status>",
        "<status>disabled</status>",
        "<restart-count>1</restart-count>",
        "<name>external</name>",
        "<available>true</available>",
        "<name>a.img</name>",
        "<label>web</label>",
        "<used-by>web</used-by>",
        "<used-by>off</used-by>",
    ] {
        assert!(xml.contains(want), "missing {want} in {xml}");
    }
    // It validates as operational data and merges with running.
    let mut running = tree(&format!(
        "{WEB}<app><name>off</name><image>other</image></app>"
    ));
    running.merge(&t).unwrap();
}

#[test]
fn check_refuses_what_would_fail_at_run_time() {
    let e = setup();
    fs::create_dir_all(e.tmp.path().join("outside")).unwrap();
    std::os::unix::fs::symlink(
        e.tmp.path().join("outside"),
        e.tmp.path().join("ext/escape"),
    )
    .unwrap();
    let ok = "<app><name>a</name><share><port><name>eth4</name></port><veth><name>va</name></veth>
        <media><media>external</media><path>data</path></media></share></app>";
    e.ah.check(&tree(ok)).unwrap();
    assert!(
        !e.tmp.path().join("ext/data").exists(),
        "check has no side effects"
    );
    let bad = "<app><name>a</name><share>
        <port><name>eth9</name></port>
        <port><name>eth4</name><as>eth0</as></port>
        <veth><name>br0</name></veth>
        <veth><name>va</name><as>eth0</as></veth>
        <media><media>usb</media><path>x</path></media>
        <media><media>external</media><path>escape/x</path></media>
      </share></app>";
    let errs = e.ah.check(&tree(bad)).unwrap_err();
    let tags: Vec<_> = errs
        .iter()
        .map(|e| (e.app_tag.clone().unwrap(), e.path.clone().unwrap()))
        .collect();
    let base = "/app-hosting:app-hosting/app[name='a']/share";
    for (tag, path) in [
        ("port-not-found", format!("{base}/port[name='eth9']/name")),
        ("veth-exists", format!("{base}/veth[name='br0']/name")),
        ("name-collision", format!("{base}/veth[name='va']/as")),
        (
            "unknown-media",
            format!("{base}/media[media='usb'][path='x']/media"),
        ),
        (
            "path-escapes-media",
            format!("{base}/media[media='external'][path='escape/x']/path"),
        ),
    ] {
        assert!(
            tags.contains(&(tag.to_string(), path.clone())),
            "missing {tag} at {path} in {tags:?}"
        );
    }
    assert!(errs.iter().all(|e| e.tag == ErrorTag::InvalidValue));
    // A port held by a running app of ours is not "missing".
    e.apply(WEB);
    let moved = "<app><name>b</name><share><port><name>eth3</name></port><veth><name>vweb</name></veth></share></app>";
    e.ah.check(&tree(moved)).unwrap();
}

#[test]
fn apply_does_not_wait_for_a_slow_stop() {
    let e = setup();
    e.apply(WEB);
    e.fake.world().ignore_sigterm = true;
    let ah = e.ah.clone();
    let stopper = std::thread::spawn(move || ah.stop("web"));
    std::thread::sleep(Duration::from_millis(50));
    let t0 = std::time::Instant::now();
    e.ah.apply(&tree(WEB));
    // state_tree and show_log do not wait either.
    e.ah.state_tree().unwrap();
    e.ah.show_log("web", 1).unwrap();
    assert!(
        t0.elapsed() < Duration::from_millis(150),
        "{:?}",
        t0.elapsed()
    );
    stopper.join().unwrap().unwrap();
}
