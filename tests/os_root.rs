//! The real OS layer, exercised as root against the real kernel, crun and runc.
//!
//! Run: `cargo test --features test_as_root --test os_root`
//!
//! Every test uses names with the test process's pid in them, and a guard
//! whose Drop undoes everything it registered (containers, mounts, netns,
//! links, cgroups), so a failing assertion leaves nothing behind. On a
//! cgroup v1 hybrid host the crun tests first run `tools/hybrid-cgroup.sh
//! apply` (see there); that change is left in place on purpose.

use std::collections::HashSet;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use apphost::os::cgroup::{
    cpu_quota_us, host_cpus, host_ram, memory_limit, CgroupMode, HostCgroups,
};
use apphost::os::net::RealNet;
use apphost::os::oci::write_bundle;
use apphost::os::rootfs::{loop_backing_file, LoopOverlay};
use apphost::os::runtime::OciRuntime;
use apphost::os::{mountinfo, BindMount, BundleSpec, Cgroups, Net, Os, OsConfig, Rootfs, Runtime};

// ===== shared setup =====

fn pid() -> u32 {
    std::process::id()
}

/// Scratch directory of this test process.
fn scratch() -> PathBuf {
    PathBuf::from(format!("/tmp/apphost-os-test-{}", pid()))
}

/// Builds the two test images once per process, into a directory shared by
/// all runs; images of earlier runs (dead pids) are removed first, as a
/// static has no destructor to do it.
fn images() -> &'static (PathBuf, PathBuf) {
    static IMAGES: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    IMAGES.get_or_init(|| {
        let dir = PathBuf::from("/tmp/apphost-os-test-images");
        if let Ok(entries) = fs::read_dir(&dir) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                let owner = name.split('-').next().unwrap_or_default().to_string();
                if !Path::new(&format!("/proc/{owner}")).exists() {
                    let _ = fs::remove_file(e.path());
                }
            }
        }
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/build-test-image.sh");
        let mut out = Vec::new();
        for v in ["A", "B"] {
            let img = dir.join(format!("{}-{v}.img", pid()));
            let st = Command::new(&script).arg(&img).arg(v).status().unwrap();
            assert!(st.success(), "build-test-image.sh failed");
            out.push(img);
        }
        (out[0].clone(), out[1].clone())
    })
}

/// Lets crun run on a v1 hybrid host (no-op elsewhere); once per process,
/// before any cgroup hierarchy is looked up.
fn crun_ready() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/hybrid-cgroup.sh");
        let st = Command::new(&script).arg("apply").status().unwrap();
        assert!(st.success(), "hybrid-cgroup.sh apply failed");
    });
}

fn wait_for(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn ns_of(pid: &str, ns: &str) -> String {
    fs::read_link(format!("/proc/{pid}/ns/{ns}"))
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

/// CapEff of a process as a bit mask.
fn cap_eff(pid: u32) -> u64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let hex = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .unwrap()
        .trim();
    u64::from_str_radix(hex, 16).unwrap()
}

fn ip(args: &[&str]) {
    let st = Command::new("ip").args(args).status().unwrap();
    assert!(st.success(), "ip {args:?} failed");
}

/// Links in a named netns as `ip` sees them: proves iproute2 compatibility.
fn ip_links_in(netns: &str) -> Vec<String> {
    let out = Command::new("nsenter")
        .arg(format!("--net=/run/netns/{netns}"))
        .args(["ip", "-o", "link"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "nsenter failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap_or(n).to_string())
        .collect()
}

fn loop_of(dir: &Path) -> Option<PathBuf> {
    let lower = fs::canonicalize(dir).ok()?.join("lower");
    mountinfo::read()
        .into_iter()
        .find(|m| m.mount_point == lower)
        .map(|m| PathBuf::from(m.source))
}

// ===== cleanup guard =====

/// Everything a test created; Drop removes it in dependency order and
/// never panics.
#[derive(Default)]
struct Guard {
    runtime: Option<OciRuntime>,
    containers: Vec<String>,
    rootfs_dirs: Vec<PathBuf>,
    netns: Vec<String>,
    links: Vec<String>,
    taps: Vec<String>,
    cgroups: Option<HostCgroups>,
    apps: Vec<String>,
    /// Scratch directories, removed last and only if nothing is mounted.
    dirs: Vec<PathBuf>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(rt) = &self.runtime {
            for id in &self.containers {
                let _ = rt.kill(id, 9);
                if let Err(e) = rt.delete(id) {
                    eprintln!("cleanup: delete {id}: {e}");
                }
            }
        }
        let mut unmounted = true;
        for dir in &self.rootfs_dirs {
            if let Err(e) = LoopOverlay.unmount(dir) {
                eprintln!("cleanup: unmount {}: {e}", dir.display());
                unmounted = false;
            }
        }
        if let Ok(net) = RealNet::new() {
            for l in &self.links {
                let _ = net.del_link(l);
            }
            for ns in &self.netns {
                if let Err(e) = net.delete_netns(ns) {
                    eprintln!("cleanup: netns {ns}: {e}");
                }
            }
        }
        for t in &self.taps {
            let _ = Command::new("ip")
                .args(["tuntap", "del", t, "mode", "tap"])
                .stderr(std::process::Stdio::null())
                .status();
        }
        if let Some(cg) = &self.cgroups {
            for app in &self.apps {
                // A killed container's group empties asynchronously.
                let start = Instant::now();
                while cg.remove_app(app).is_err() && start.elapsed() < Duration::from_secs(5) {
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
            if let Err(e) = cg.remove_parent() {
                eprintln!("cleanup: parent cgroup: {e}");
            }
        }
        if unmounted {
            for d in &self.dirs {
                let _ = fs::remove_dir_all(d);
            }
            // Whichever test finishes last removes the (then empty) parents.
            let _ = fs::remove_dir(scratch());
            let _ = fs::remove_dir(format!("/run/apphost-test-{}", pid()));
        } else {
            eprintln!("cleanup: left {:?} in place: mounts remain", self.dirs);
        }
    }
}

// ===== container tests =====

struct Started {
    pid: u32,
    log: PathBuf,
    rootfs_dir: PathBuf,
    share: PathBuf,
}

/// Mounts image A, writes a bundle and runs it; registers all in `g`.
fn start_container(
    g: &mut Guard,
    rt: &OciRuntime,
    cg: &HostCgroups,
    id: &str,
    netns: Option<PathBuf>,
    caps: &[&str],
) -> Started {
    let base = scratch().join(id);
    g.dirs.push(base.clone());
    let bundle = base.join("bundle");
    let rootfs_dir = base.join("fs");
    let share = base.join("share");
    fs::create_dir_all(&bundle).unwrap();
    fs::create_dir_all(&share).unwrap();
    fs::write(share.join("marker"), "shared-file\n").unwrap();

    g.rootfs_dirs.push(rootfs_dir.clone());
    let rootfs = LoopOverlay
        .mount(&images().0, &rootfs_dir, 16 << 20)
        .unwrap();

    let spec = BundleSpec {
        id: id.to_string(),
        rootfs,
        args: vec!["/sbin/init".into()],
        env: vec![("APP_GREETING".into(), format!("hello-{id}"))],
        cwd: "/".into(),
        capabilities: caps.iter().map(|c| c.to_string()).collect(),
        hostname: format!("h-{id}"),
        netns,
        cgroup_path: format!("/{}/{id}", cg.parent()),
        mounts: vec![BindMount {
            source: share.clone(),
            destination: "/mnt/share".into(),
            readonly: true,
        }],
    };
    write_bundle(&bundle, &spec).unwrap();

    let log = base.join("console.log");
    g.containers.push(id.to_string());
    g.apps.push(id.to_string());
    let pid = rt
        .run(id, &bundle, &log)
        .unwrap_or_else(|e| panic!("run {id}: {e}"));
    // `run` returns once the app runs: the init is no longer the runtime's
    // binary (crun re-execs itself through a bind mount whose
    // /proc/PID/exe reads "/", so compare the file, not the name).
    let exe = fs::metadata(format!("/proc/{pid}/exe")).unwrap();
    let bin = fs::metadata(&rt.binary).unwrap();
    assert_ne!(
        (exe.dev(), exe.ino()),
        (bin.dev(), bin.ino()),
        "run {id} returned while its init was still the runtime"
    );
    let link = fs::read_link(format!("/proc/{pid}/exe")).unwrap();
    assert!(!link.to_string_lossy().contains("memfd:"), "{link:?}");
    // ... and its exec is complete: the new argv is in place (the image's
    // /sbin/init is a script: "/bin/sh /sbin/init").
    let argv = fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    assert!(
        argv.split(|b| *b == 0).any(|w| w == b"/sbin/init"),
        "{}",
        String::from_utf8_lossy(&argv)
    );
    Started {
        pid,
        log,
        rootfs_dir,
        share,
    }
}

/// Checks shared by the crun and runc tests on a running container.
fn check_running(rt: &OciRuntime, id: &str, s: &Started, caps_mask: u64) {
    let pid = s.pid.to_string();
    assert!(
        Path::new(&format!("/proc/{pid}")).exists(),
        "pid {pid} not alive"
    );
    let st = rt.state(id).unwrap().expect("state of a running container");
    assert_eq!(st.pid, s.pid);
    assert_eq!(st.status, "running");
    assert!(rt
        .list()
        .unwrap()
        .iter()
        .any(|c| c.id == id && c.pid == s.pid));

    for ns in ["pid", "ipc", "uts", "mnt", "cgroup"] {
        assert_ne!(
            ns_of(&pid, ns),
            ns_of("self", ns),
            "{ns} namespace shared with us"
        );
    }
    assert_eq!(cap_eff(s.pid), caps_mask, "CapEff");

    let environ = fs::read(format!("/proc/{pid}/environ")).unwrap();
    let vars: Vec<String> = environ
        .split(|b| *b == 0)
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .collect();
    assert!(
        vars.contains(&format!("APP_GREETING=hello-{id}")),
        "{vars:?}"
    );

    // The share through the container's own mount namespace.
    let marker = fs::read_to_string(format!("/proc/{pid}/root/mnt/share/marker")).unwrap();
    assert_eq!(marker, "shared-file\n");
    // Read-only share: the container cannot write into it.
    let out = rt
        .exec_command(
            id,
            false,
            &[],
            &[
                "/bin/sh".into(),
                "-c".into(),
                "echo x > /mnt/share/new; echo rc=$?".into(),
            ],
        )
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("rc=") && !text.contains("rc=0"), "{out:?}");
    assert!(!s.share.join("new").exists());
    // The overlay is writable and the image is the one we mounted.
    let out = rt
        .exec_command(
            id,
            false,
            &[],
            &[
                "/bin/sh".into(),
                "-c".into(),
                "echo w > /written && cat /etc/variant && hostname".into(),
            ],
        )
        .output()
        .unwrap();
    assert!(out.status.success(), "exec: {out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), format!("A\nh-{id}\n"));
    assert!(s.rootfs_dir.join("upper/upper/written").exists());
}

/// SIGTERM, wait, delete, unmount; asserts each step's effect.
fn stop_and_clean(rt: &OciRuntime, id: &str, s: &Started) {
    rt.kill(id, libc::SIGTERM).unwrap();
    wait_for(
        "container exit",
        Duration::from_secs(5),
        || !matches!(rt.state(id), Ok(Some(st)) if st.status == "running"),
    );
    let log = fs::read_to_string(&s.log).unwrap();
    assert!(
        log.contains("apphost-test-image stopping"),
        "no clean stop in {log}"
    );
    rt.delete(id).unwrap();
    rt.delete(id).unwrap(); // idempotent
    assert!(rt.state(id).unwrap().is_none());
    assert!(!rt.list().unwrap().iter().any(|c| c.id == id));

    let dev = loop_of(&s.rootfs_dir).expect("lower is loop-mounted");
    assert!(loop_backing_file(&dev).is_some());
    LoopOverlay.unmount(&s.rootfs_dir).unwrap();
    LoopOverlay.unmount(&s.rootfs_dir).unwrap(); // idempotent
    assert!(!LoopOverlay.is_mounted(&s.rootfs_dir));
    wait_for("loop device detached", Duration::from_secs(3), || {
        loop_backing_file(&dev).as_deref() != Some(images().0.as_path())
    });
}

fn cap_mask(bits: &[u32]) -> u64 {
    bits.iter().fold(0, |m, b| m | (1u64 << b))
}

#[test]
#[cfg_attr(not(feature = "test_as_root"), ignore)]
fn crun_container_with_netns_ports_and_limits() {
    crun_ready();
    let p = pid();
    let id = format!("crun{p}");
    let mut g = Guard::default();

    let cg = HostCgroups::new(&format!("apphost-t{p}c")).unwrap();
    // After tools/hybrid-cgroup.sh apply, crun has nothing to refuse.
    assert!(
        cg.hybrid_v2_controllers().is_empty(),
        "{:?}",
        cg.hybrid_v2_controllers()
    );
    let rt = OciRuntime::crun(PathBuf::from(format!("/run/apphost-test-{p}/crun"))).unwrap();
    g.runtime = Some(rt.clone());
    g.dirs.push(rt.root.clone());

    // Network: netns, veth (peer eth0 inside), a tap standing in for a port.
    let net = RealNet::new().unwrap();
    let ns = format!("ns{p}c");
    let veth = format!("vh{p}c");
    let tap = format!("tp{p}c");
    g.netns.push(ns.clone());
    g.links.push(veth.clone());
    g.taps.push(tap.clone());
    net.create_netns(&ns).unwrap();
    net.add_veth(&veth, "eth0", &ns).unwrap();
    ip(&["tuntap", "add", &tap, "mode", "tap"]);
    net.move_port(&tap, &ns, "port0").unwrap();

    cg.set_limits(50, 50).unwrap();
    g.cgroups = Some(cg.clone());
    let caps = ["CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_KILL"];
    let s = start_container(&mut g, &rt, &cg, &id, Some(net.netns_path(&ns)), &caps);
    check_running(&rt, &id, &s, cap_mask(&[12, 13, 5]));

    // In the named netns: same namespace inode as /run/netns/NAME.
    let ino = fs::metadata(net.netns_path(&ns)).unwrap().ino();
    assert_eq!(ns_of(&s.pid.to_string(), "net"), format!("net:[{ino}]"));
    let inside = ip_links_in(&ns);
    for l in ["lo", "eth0", "port0"] {
        assert!(inside.iter().any(|x| x == l), "{l} not in {inside:?}");
    }
    // The container sees its interfaces (CAP_NET_ADMIN lets it set them).
    let out = rt
        .exec_command(
            &id,
            false,
            &[],
            &[
                "/bin/sh".into(),
                "-c".into(),
                "ip link set port0 down && ip -o link".into(),
            ],
        )
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("port0") && text.contains("eth0"),
        "{out:?}"
    );
    assert!(net.link_exists(&veth));
    assert!(!net.link_exists(&tap), "tap still in the host");

    // Cgroups: the app's group is below the parent, limits apply live.
    let cgline = fs::read_to_string(format!("/proc/{}/cgroup", s.pid)).unwrap();
    assert!(
        cgline.contains(&format!("/{}/{id}", cg.parent())),
        "{cgline}"
    );
    assert!(!cg.app_dirs(&id).is_empty());
    let (cpu, mem) = cg.raw_limits().unwrap();
    let q = cpu_quota_us(50, host_cpus()).unwrap();
    let m = memory_limit(50, host_ram().unwrap()).unwrap();
    match cg.mode() {
        CgroupMode::V2 => assert_eq!(cpu, format!("{q} 100000")),
        CgroupMode::V1 { .. } => assert_eq!(cpu, format!("{q} 100000")),
    }
    assert_eq!(mem, m.to_string());
    cg.set_limits(25, 30).unwrap();
    let (cpu, mem) = cg.raw_limits().unwrap();
    assert_eq!(
        cpu,
        format!("{} 100000", cpu_quota_us(25, host_cpus()).unwrap())
    );
    assert_eq!(
        mem,
        memory_limit(30, host_ram().unwrap()).unwrap().to_string()
    );
    assert_eq!(
        rt.state(&id).unwrap().unwrap().pid,
        s.pid,
        "update restarted the container"
    );
    let (mem_used, cpu_ns) = cg.usage(&id).expect("usage");
    assert!(mem_used > 0 && cpu_ns > 0, "usage {mem_used} {cpu_ns}");
    // The parent's CPU limit binds the container: a spinner gets at most
    // 10 % of the host's CPUs (load from elsewhere only lowers it).
    cg.set_limits(10, 30).unwrap();
    let before = cg.usage(&id).unwrap().1;
    let t0 = Instant::now();
    let out = rt
        .exec_command(
            &id,
            false,
            &[],
            &[
                "/bin/sh".into(),
                "-c".into(),
                "timeout 2 sh -c 'while :; do :; done'; true".into(),
            ],
        )
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let wall = t0.elapsed().as_secs_f64();
    let used = (cg.usage(&id).unwrap().1 - before) as f64 / 1e9;
    let allowed = 0.10 * host_cpus() as f64 * wall;
    eprintln!("spinner: {used:.2} s CPU in {wall:.2} s wall, allowed {allowed:.2} s");
    assert!(
        used < allowed * 1.5 + 0.05,
        "cpu limit not applied: {used} s used in {wall} s"
    );

    // ...and the RAM limit: 1 % of the host; a bigger buffer gets the
    // allocating process OOM-killed, a smaller one is fine, init lives on.
    let limit = memory_limit(1, host_ram().unwrap()).unwrap();
    cg.set_limits(100, 1).unwrap();
    let dd = |mib: u64| {
        rt.exec_command(
            &id,
            false,
            &[],
            &[
                "/bin/dd".into(),
                "if=/dev/zero".into(),
                "of=/dev/null".into(),
                format!("bs={mib}M"),
                "count=1".into(),
            ],
        )
        .output()
        .unwrap()
    };
    let big = dd(limit / (1 << 20) + 64);
    // 137 = 128 + SIGKILL: the OOM killer, not a dd error.
    assert_eq!(big.status.code(), Some(137), "{big:?}");
    assert!(
        !big.status.success(),
        "allocation above the limit survived: {big:?}"
    );
    let small = dd(16);
    assert!(small.status.success(), "{small:?}");
    assert_eq!(rt.state(&id).unwrap().unwrap().pid, s.pid);

    cg.set_limits(100, 100).unwrap();
    let (cpu, mem) = cg.raw_limits().unwrap();
    assert!(cpu.starts_with("-1 ") || cpu.starts_with("max "), "{cpu}");
    assert!(
        mem == "max" || mem.parse::<u64>().unwrap() > host_ram().unwrap(),
        "{mem}"
    );

    stop_and_clean(&rt, &id, &s);

    // Ports: back to the host under the original name, then the netns goes.
    net.return_port(&ns, "port0", &tap).unwrap();
    assert!(net.link_exists(&tap));
    assert!(!ip_links_in(&ns).contains(&"port0".to_string()));
    net.del_link(&veth).unwrap();
    net.del_link(&veth).unwrap(); // idempotent
    assert!(!net.link_exists(&veth));
    net.delete_netns(&ns).unwrap();
    net.delete_netns(&ns).unwrap(); // idempotent
    assert!(!net.netns_path(&ns).exists());

    wait_for("app cgroups removed", Duration::from_secs(5), || {
        cg.remove_app(&id).is_ok()
    });
    assert!(cg.app_dirs(&id).is_empty(), "{:?}", cg.app_dirs(&id));
    assert!(cg.usage(&id).is_none());
}

#[test]
#[cfg_attr(not(feature = "test_as_root"), ignore)]
fn runc_container_in_host_netns() {
    // runc needs no workaround, but the hierarchies must not change under
    // this test while the crun test applies it.
    crun_ready();
    let p = pid();
    let id = format!("runc{p}");
    let mut g = Guard::default();
    let cg = HostCgroups::new(&format!("apphost-t{p}r")).unwrap();
    g.cgroups = Some(cg.clone());
    let rt = OciRuntime::runc(PathBuf::from(format!("/run/apphost-test-{p}/runc"))).unwrap();
    g.runtime = Some(rt.clone());
    g.dirs.push(rt.root.clone());

    let s = start_container(&mut g, &rt, &cg, &id, None, &["CAP_CHOWN"]);
    check_running(&rt, &id, &s, cap_mask(&[0]));
    assert_eq!(ns_of(&s.pid.to_string(), "net"), ns_of("self", "net"));
    stop_and_clean(&rt, &id, &s);
    wait_for("app cgroups removed", Duration::from_secs(5), || {
        cg.remove_app(&id).is_ok()
    });
    assert!(cg.app_dirs(&id).is_empty());
}

#[test]
#[cfg_attr(not(feature = "test_as_root"), ignore)]
fn runtime_errors_carry_stderr_and_unknown_ids() {
    crun_ready();
    let p = pid();
    let mut g = Guard::default();
    let rt = OciRuntime::crun(PathBuf::from(format!("/run/apphost-test-{p}/crun-err"))).unwrap();
    g.dirs.push(rt.root.clone());
    g.dirs.push(scratch().join("empty-bundle"));
    assert!(rt.state(&format!("nope{p}")).unwrap().is_none());
    rt.delete(&format!("nope{p}")).unwrap();
    // A bundle without config.json: the error must say why.
    let bundle = scratch().join("empty-bundle");
    fs::create_dir_all(&bundle).unwrap();
    let err = rt
        .run(&format!("bad{p}"), &bundle, &bundle.join("bad.log"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("config.json"), "{err}");
    let _ = rt.delete(&format!("bad{p}"));
}

// ===== rootfs =====

#[test]
#[cfg_attr(not(feature = "test_as_root"), ignore)]
fn rootfs_overlay_on_loop_and_tmpfs() {
    let mut g = Guard::default();
    let dir = scratch().join("rootfs-only");
    g.rootfs_dirs.push(dir.clone());
    g.dirs.push(dir.clone());
    let (a, b) = images();

    let rootfs = LoopOverlay.mount(a, &dir, 1 << 20).unwrap();
    assert!(LoopOverlay.is_mounted(&dir));
    // Idempotent: a second mount returns the same rootfs, no second loop.
    assert_eq!(LoopOverlay.mount(a, &dir, 1 << 20).unwrap(), rootfs);
    let lowers = mountinfo::read()
        .iter()
        .filter(|m| m.mount_point == fs::canonicalize(&dir).unwrap().join("lower"))
        .count();
    assert_eq!(lowers, 1);
    // ...but not for another image while mounted.
    assert!(LoopOverlay.mount(b, &dir, 1 << 20).is_err());
    assert_eq!(
        fs::read_to_string(rootfs.join("etc/variant")).unwrap(),
        "A\n"
    );
    assert!(rootfs.join("bin/busybox").exists());

    // Writes land in the tmpfs upper layer; the squashfs is read-only.
    fs::write(rootfs.join("etc/variant"), "changed\n").unwrap();
    assert_eq!(
        fs::read_to_string(dir.join("lower/etc/variant")).unwrap(),
        "A\n"
    );
    assert!(fs::write(dir.join("lower/etc/x"), "x").is_err());
    // The tmpfs size caps the writable layer.
    let big = vec![0u8; 2 << 20];
    assert!(
        fs::write(rootfs.join("big"), &big).is_err(),
        "2 MiB fit in a 1 MiB upper"
    );

    let dev = loop_of(&dir).unwrap();
    assert_eq!(loop_backing_file(&dev).as_deref(), Some(a.as_path()));
    LoopOverlay.unmount(&dir).unwrap();
    assert!(!LoopOverlay.is_mounted(&dir));
    wait_for("loop detached", Duration::from_secs(3), || {
        loop_backing_file(&dev).as_deref() != Some(a.as_path())
    });

    // Remounting with image B gives B, with a fresh upper layer.
    let rootfs = LoopOverlay.mount(b, &dir, 1 << 20).unwrap();
    assert_eq!(
        fs::read_to_string(rootfs.join("etc/variant")).unwrap(),
        "B\n"
    );
    LoopOverlay.unmount(&dir).unwrap();

    // A missing image fails without leaving mounts.
    assert!(LoopOverlay
        .mount(&scratch().join("missing.img"), &dir, 1 << 20)
        .is_err());
    assert!(!LoopOverlay.is_mounted(&dir));
}

// ===== network =====

#[test]
#[cfg_attr(not(feature = "test_as_root"), ignore)]
fn netns_veth_and_port_moves() {
    let p = pid();
    let mut g = Guard::default();
    let net = RealNet::new().unwrap();
    let ns = format!("ns{p}n");
    let veth = format!("vh{p}n");
    let tap = format!("tp{p}n");
    g.netns.push(ns.clone());
    g.links.push(veth.clone());
    g.taps.push(tap.clone());

    net.create_netns(&ns).unwrap();
    net.create_netns(&ns).unwrap(); // idempotent
                                    // iproute2 sees it.
    let list = Command::new("ip").args(["netns", "list"]).output().unwrap();
    assert!(String::from_utf8_lossy(&list.stdout).contains(&ns));
    // The run dir is a shared mount like iproute2 makes it.
    let shared = fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .any(|l| l.split(' ').nth(4) == Some("/run/netns") && l.contains("shared:"));
    assert!(shared, "/run/netns is not a shared mount");

    net.add_veth(&veth, "eth0", &ns).unwrap();
    assert!(net.link_exists(&veth));
    let inside: HashSet<String> = net.links_in(&ns).unwrap().into_iter().collect();
    assert!(
        inside.contains("eth0") && inside.contains("lo"),
        "{inside:?}"
    );
    // Both ends up (lo too).
    let out = Command::new("nsenter")
        .arg(format!("--net=/run/netns/{ns}"))
        .args(["ip", "-o", "link", "show", "up"])
        .output()
        .unwrap();
    let up = String::from_utf8_lossy(&out.stdout);
    assert!(up.contains("eth0@") && up.contains("lo:"), "{up}");
    let host_up = Command::new("ip")
        .args(["-o", "link", "show", "up", "dev", &veth])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&host_up.stdout).contains(&veth));

    // A "physical" port: moved in renamed and up, and back again.
    ip(&["tuntap", "add", &tap, "mode", "tap"]);
    net.move_port(&tap, &ns, "eth1").unwrap();
    assert!(!net.link_exists(&tap));
    assert!(ip_links_in(&ns).contains(&"eth1".to_string()));
    let out = Command::new("nsenter")
        .arg(format!("--net=/run/netns/{ns}"))
        .args(["ip", "-o", "link", "show", "dev", "eth1"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(",UP"),
        "{out:?}"
    );
    net.return_port(&ns, "eth1", &tap).unwrap();
    assert!(net.link_exists(&tap));
    assert!(!ip_links_in(&ns).contains(&"eth1".to_string()));
    assert!(net.host_links().unwrap().contains(&tap));

    // Errors, not panics, for unknown things; idempotent deletes.
    assert!(net.move_port(&format!("nx{p}"), &ns, "eth2").is_err());
    assert!(net
        .add_veth(&format!("vx{p}"), "eth0", &format!("nons{p}"))
        .is_err());
    assert!(net.add_veth("bad/name", "eth0", &ns).is_err());
    net.del_link(&veth).unwrap();
    net.del_link(&veth).unwrap();
    assert!(!net.link_exists(&veth));
    assert!(
        !net.links_in(&ns).unwrap().contains(&"eth0".to_string()),
        "peer outlived its veth"
    );
    net.delete_netns(&ns).unwrap();
    net.delete_netns(&ns).unwrap();
    assert!(!net.netns_path(&ns).exists());
    let list = Command::new("ip").args(["netns", "list"]).output().unwrap();
    assert!(!String::from_utf8_lossy(&list.stdout).contains(&ns));
}

// ===== Os::real =====

#[test]
#[cfg_attr(not(feature = "test_as_root"), ignore)]
fn os_real_wires_the_real_parts() {
    crun_ready();
    let p = pid();
    let mut g = Guard::default();
    let cfg = OsConfig {
        runtime_binary: "/usr/bin/crun".into(),
        runtime_root: format!("/run/apphost-test-{p}/real").into(),
        cgroup_parent: format!("apphost-t{p}o"),
    };
    g.dirs.push(cfg.runtime_root.clone());
    g.cgroups = Some(HostCgroups::new(&cfg.cgroup_parent).unwrap());
    let os = Os::real(&cfg).unwrap();
    assert!(os.runtime.list().unwrap().is_empty());
    assert_eq!(os.cgroups.parent(), cfg.cgroup_parent);
    os.cgroups.set_limits(40, 40).unwrap();
    assert!(os.cgroups.usage("nothing-here").is_none());
    assert!(os.net.link_exists("lo"));
    assert_eq!(os.net.netns_path("x"), PathBuf::from("/run/netns/x"));
    assert!(!os.rootfs.is_mounted(&scratch().join("never")));
    // Relative paths are refused up front (FACTS: a relative --root breaks delete).
    let bad = OsConfig {
        runtime_root: "relative/root".into(),
        ..cfg.clone()
    };
    assert!(Os::real(&bad).is_err());
}

// ===== the guard itself =====

/// A test that fails half-way leaves nothing behind: container, mounts,
/// loop device, netns, links and cgroups all go in the guard's Drop.
#[test]
#[cfg_attr(not(feature = "test_as_root"), ignore)]
fn guard_cleans_up_after_a_failed_test() {
    crun_ready();
    let p = pid();
    let id = format!("fail{p}");
    let ns = format!("ns{p}f");
    let veth = format!("vh{p}f");
    let tap = format!("tp{p}f");
    let parent = format!("apphost-t{p}f");
    let rt = OciRuntime::crun(PathBuf::from(format!("/run/apphost-test-{p}/fail"))).unwrap();

    let mut seen: Option<(u32, PathBuf, PathBuf)> = None;
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut g = Guard::default();
        g.runtime = Some(rt.clone());
        g.dirs.push(rt.root.clone());
        let cg = HostCgroups::new(&parent).unwrap();
        g.cgroups = Some(cg.clone());
        let net = RealNet::new().unwrap();
        g.netns.push(ns.clone());
        g.links.push(veth.clone());
        g.taps.push(tap.clone());
        net.create_netns(&ns).unwrap();
        net.add_veth(&veth, "eth0", &ns).unwrap();
        ip(&["tuntap", "add", &tap, "mode", "tap"]);
        net.move_port(&tap, &ns, "port0").unwrap();
        cg.set_limits(50, 50).unwrap();
        let s = start_container(
            &mut g,
            &rt,
            &cg,
            &id,
            Some(net.netns_path(&ns)),
            &["CAP_KILL"],
        );
        let dev = loop_of(&s.rootfs_dir).unwrap();
        seen = Some((s.pid, dev, s.rootfs_dir.clone()));
        panic!("deliberate failure with everything set up");
    }));
    assert!(outcome.is_err());
    let (cpid, dev, rootfs_dir) = seen.expect("setup completed before the panic");

    wait_for("container process gone", Duration::from_secs(5), || {
        // Gone, or a zombie waiting for init to reap it.
        fs::read_to_string(format!("/proc/{cpid}/stat"))
            .map(|st| st.contains(") Z "))
            .unwrap_or(true)
    });
    assert!(rt.state(&id).unwrap().is_none());
    assert!(!LoopOverlay.is_mounted(&rootfs_dir));
    assert!(mountinfo::read()
        .iter()
        .all(|m| !m.mount_point.starts_with(&rootfs_dir)));
    wait_for("loop detached", Duration::from_secs(3), || {
        loop_backing_file(&dev).as_deref() != Some(images().0.as_path())
    });
    let net = RealNet::new().unwrap();
    assert!(!net.netns_path(&ns).exists());
    assert!(!net.link_exists(&veth));
    assert!(!net.link_exists(&tap));
    let leftovers: Vec<_> = fs::read_dir("/sys/fs/cgroup")
        .unwrap()
        .flatten()
        .map(|h| h.path().join(&parent))
        .filter(|p| p.exists())
        .collect();
    assert!(leftovers.is_empty(), "cgroups left: {leftovers:?}");
    assert!(!rootfs_dir.exists(), "scratch dir left");
    // `crun state` above recreated the runtime root.
    let _ = fs::remove_dir_all(&rt.root);
    let _ = fs::remove_dir(format!("/run/apphost-test-{p}"));
}
