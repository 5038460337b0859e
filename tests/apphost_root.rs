//! The reconciler against the real OS layer (runc/crun, loop + overlay,
//! cgroups, netns/veth): root only, `--features test_as_root`.
//!
//! Builds a tiny busybox SquashFS image, shares a tap device (stand-in for
//! a port: this kernel has no dummy links), a veth and a media directory,
//! and checks start, log, teardown and adoption across an agent restart.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use apphost::apphost::{Apphost, ApphostConfig, Status};
use apphost::os::{Os, OsConfig};
use apphost::schema;
use yang2::data::{DataFormat, DataParserFlags, DataTree, DataValidationFlags};

const APP: &str = "ahroot1";
const TAP: &str = "ahrtap0";
const VETH: &str = "ahrveth0";

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

/// A statically linked busybox: `APPHOST_BUSYBOX`, else Debian's.
fn busybox() -> PathBuf {
    let p = std::env::var_os("APPHOST_BUSYBOX")
        .map(PathBuf::from)
        .unwrap_or_else(|| "/bin/busybox".into());
    let head = fs::read(&p)
        .map(|b| b[..4.min(b.len())].to_vec())
        .unwrap_or_default();
    assert_eq!(
        head,
        b"\x7fELF",
        "{} is not a busybox binary; set APPHOST_BUSYBOX",
        p.display()
    );
    p
}

fn build_image(out: &Path) {
    let root = out.with_extension("root");
    for d in [
        "bin", "sbin", "proc", "sys", "dev", "tmp", "etc", "data", "run",
    ] {
        fs::create_dir_all(root.join(d)).unwrap();
    }
    fs::copy(busybox(), root.join("bin/busybox")).unwrap();
    for app in ["sh", "sleep", "echo", "cat", "ip", "ls"] {
        // Relative links: never resolved against the host.
        std::os::unix::fs::symlink("busybox", root.join("bin").join(app)).unwrap();
    }
    fs::write(
        root.join("sbin/init"),
        "#!/bin/sh\ntrap 'echo bye; exit 0' TERM\necho hello-from-app GREETING=$GREETING\n\
         ip link show lan1 >/dev/null 2>&1 && echo has-lan1\n\
         ip link show eth0 >/dev/null 2>&1 && echo has-eth0\n\
         cat /data/in.txt\n\
         while true; do sleep 1 & wait $!; done\n",
    )
    .unwrap();
    Command::new("chmod")
        .arg("755")
        .arg(root.join("sbin/init"))
        .status()
        .unwrap();
    let st = Command::new("mksquashfs")
        .arg(&root)
        .arg(out)
        .args(["-noappend", "-all-root", "-quiet"])
        .status()
        .unwrap();
    assert!(st.success());
}

fn sh(cmd: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

fn link_on_host(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

fn wait_for(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !f() {
        assert!(t0.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn os_config(state: &Path) -> OsConfig {
    // runc: crun refuses this VM's hybrid cgroup layout (see FACTS.md).
    let runtime = std::env::var_os("APPHOST_RUNTIME")
        .map(PathBuf::from)
        .unwrap_or_else(|| "/usr/sbin/runc".into());
    OsConfig {
        runtime_binary: runtime,
        runtime_root: state.join("runtime"),
        cgroup_parent: "apphost-roottest".into(),
    }
}

fn apphost(tmp: &Path) -> Apphost {
    let mut media = HashMap::new();
    media.insert("external".to_string(), tmp.join("ext"));
    let mut cfg = ApphostConfig::new(tmp.join("state"), media);
    cfg.stop_grace = Duration::from_secs(3);
    cfg.tick = Duration::from_millis(300);
    let os = Os::real(&os_config(&tmp.join("state"))).expect("real os");
    Apphost::new(cfg, os).unwrap()
}

const CONFIG: &str = "<app><name>ahroot1</name><enable>true</enable><autostart>true</autostart>
  <cmd>/sbin/init</cmd><image>bb</image>
  <share><port><name>ahrtap0</name><as>lan1</as></port><veth><name>ahrveth0</name><as>eth0</as></veth>
  <media><media>external</media><path>appdata</path><as>/data</as></media></share>
  <environment><name>GREETING</name><value>hi</value></environment></app>";

#[test]
#[cfg_attr(not(feature = "test_as_root"), ignore)]
fn real_start_log_teardown_and_adoption() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    fs::create_dir_all(t.join("ext/app/images")).unwrap();
    fs::create_dir_all(t.join("ext/appdata")).unwrap();
    fs::write(t.join("ext/appdata/in.txt"), "from-the-media\n").unwrap();
    build_image(&t.join("ext/app/images/bb.img"));
    sh(&format!(
        "ip link del {TAP} 2>/dev/null; ip tuntap add {TAP} mode tap"
    ));
    assert!(link_on_host(TAP));

    let ah = apphost(t);
    ah.set_label("bb.img", "bb").unwrap();
    ah.check(&tree(CONFIG)).unwrap();
    ah.apply(&tree(CONFIG));
    ah.reconcile_now();
    let s = ah.app_state(APP).unwrap();
    assert_eq!(s.status, Status::Running, "{s:?}");
    let pid = s.pid.unwrap();
    assert!(Path::new(&format!("/proc/{pid}")).exists());
    assert!(!link_on_host(TAP), "port moved into the app");
    assert!(link_on_host(VETH), "veth host end");
    let cg = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    assert!(
        cg.contains(&format!("apphost-roottest/{APP}")),
        "app cgroup below the parent: {cg}"
    );
    wait_for("log lines", Duration::from_secs(10), || {
        let log = ah.show_log(APP, 50).unwrap();
        log.contains("hello-from-app GREETING=hi")
            && log.contains("has-lan1")
            && log.contains("has-eth0")
            && log.contains("from-the-media")
    });

    // Agent restart: the container is adopted, same pid.
    drop(ah);
    let ah = apphost(t);
    ah.apply(&tree(CONFIG));
    ah.reconcile_now();
    let s = ah.app_state(APP).unwrap();
    assert_eq!((s.status, s.pid), (Status::Running, Some(pid)));

    // Stop: everything returned.
    ah.stop(APP).unwrap();
    assert_eq!(ah.app_state(APP).unwrap().status, Status::Stopped);
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists()
            || fs::read_to_string(format!("/proc/{pid}/stat"))
                .map(|s| s.contains(") Z"))
                .unwrap_or(true)
    );
    assert!(link_on_host(TAP), "port returned");
    assert!(!link_on_host(VETH), "veth deleted");
    assert!(
        !Path::new(&format!("/run/netns/{APP}")).exists(),
        "netns deleted"
    );
    assert!(
        ah.show_log(APP, 5).unwrap().contains("bye"),
        "SIGTERM handled by the app"
    );

    // Delete the app: nothing left.
    ah.apply(&tree(""));
    ah.reconcile_now();
    assert!(ah.app_state(APP).is_none());
    assert!(
        !t.join(format!("state/apps/{APP}")).exists(),
        "app dir removed"
    );
    drop(ah);
    sh(&format!("ip link del {TAP}"));
    // The shared parent group outlives apps by design; the test removes it.
    sh("for d in /sys/fs/cgroup/*/apphost-roottest /sys/fs/cgroup/apphost-roottest; do [ -d $d ] && rmdir $d; done; true");
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(&t.display().to_string()),
        "mounts left: {mounts}"
    );
}

#[test]
#[cfg_attr(not(feature = "test_as_root"), ignore)]
fn real_exit_is_noticed_with_its_status() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    fs::create_dir_all(t.join("ext/app/images")).unwrap();
    build_image(&t.join("ext/app/images/bb.img"));
    let ah = apphost(t);
    ah.set_label("bb.img", "bb").unwrap();
    let cfg = "<app><name>ahroot2</name><enable>true</enable><autostart>true</autostart><netns>host-os</netns>
      <cmd>/bin/sh -c 'echo short-lived; sleep 1; exit 3'</cmd><image>bb</image></app>";
    ah.apply(&tree(cfg));
    ah.reconcile_now();
    assert_eq!(ah.app_state("ahroot2").unwrap().status, Status::Running);
    // The loop thread notices the exit (the agent is the subreaper and
    // reaps the container's init, so the exit status is known).
    wait_for("exit noticed", Duration::from_secs(10), || {
        ah.app_state("ahroot2").unwrap().status != Status::Running
    });
    let s = ah.app_state("ahroot2").unwrap();
    assert_eq!(s.status, Status::Failed, "{s:?}");
    assert!(
        s.last_error.as_deref().unwrap_or("").contains("status 3"),
        "{s:?}"
    );
    let log = ah.show_log("ahroot2", 10).unwrap();
    assert!(
        log.contains("short-lived") && log.contains("exited with status 3"),
        "{log}"
    );
    // Not restarted by itself; leftovers are gone.
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(ah.app_state("ahroot2").unwrap().status, Status::Failed);
    let left: Vec<_> = fs::read_dir(t.join("state/apps/ahroot2"))
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(!t.join("state/apps/ahroot2").exists(), "left: {left:?}");
    ah.apply(&tree(""));
    ah.reconcile_now();
    drop(ah);
    sh("for d in /sys/fs/cgroup/*/apphost-roottest /sys/fs/cgroup/apphost-roottest; do [ -d $d ] && rmdir $d; done; true");
}
