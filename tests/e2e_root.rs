//! End to end, as an operator would do it: the real `apphostd` binary in its
//! own network namespace (a tap device stands in for a physical port: this
//! kernel has no dummy links), real crun, driven over NETCONF/SSH with our
//! own client. Root only (`--features test_as_root`).
//!
//! One app with a veth share, a port share, a media share, environment
//! variables and two capabilities; what the container sees; persistence of
//! the share across a restart; the shared cgroup limits changed live; a
//! label moved and reloaded; `kill -9` of the agent and adoption; and
//! deletion leaving nothing behind.

mod common;

use std::fs;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{is_ok, BoxError, Client, Login, BASE10, BASE11};

const AH: &str = "urn:apphost:yang:app-hosting";
const APP: &str = "ahe2e1";
const PORT_IF: &str = "ahe2ep0";
const VETH: &str = "ahe2ev0";
const CGROUP: &str = "apphost-e2e";
const NC_PORT: u16 = 18830;

// ===== fixtures =====

/// A network namespace for the agent; removed on drop.
struct Netns(String);

impl Netns {
    fn new(name: &str) -> Netns {
        let _ = Command::new("ip")
            .args(["netns", "del", name])
            .stderr(Stdio::null())
            .status();
        sh(&format!("ip netns add {name}"));
        sh(&format!("ip -n {name} link set lo up"));
        Netns(name.to_string())
    }
    fn path(&self) -> PathBuf {
        PathBuf::from("/run/netns").join(&self.0)
    }
    /// `ip -n NS ARGS` succeeded.
    fn ip_ok(&self, args: &str) -> bool {
        Command::new("sh")
            .arg("-c")
            .arg(format!("ip -n {} {args} >/dev/null 2>&1", self.0))
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.0])
            .stderr(Stdio::null())
            .status();
    }
}

/// The agent process inside the netns; SIGKILLed on drop (the test stops
/// it properly on success). Its log is printed when the test fails.
struct Agent {
    child: Option<Child>,
    log: PathBuf,
}

impl Agent {
    fn start(ns: &Netns, config: &Path, log: &Path) -> Agent {
        let out = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        let err = out.try_clone().unwrap();
        // nsenter, not `ip netns exec`: the latter remounts /sys and hides
        // the cgroup hierarchies (FACTS.md).
        let child = Command::new("nsenter")
            .arg(format!("--net={}", ns.path().display()))
            .arg("--")
            .arg(env!("CARGO_BIN_EXE_apphostd"))
            .arg("--config")
            .arg(config)
            .env("RUST_LOG", "info")
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap();
        Agent {
            child: Some(child),
            log: log.to_path_buf(),
        }
    }
    fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(c.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            let t0 = Instant::now();
            while t0.elapsed() < Duration::from_secs(15) {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if std::thread::panicking() {
            if let Ok(l) = fs::read_to_string(&self.log) {
                eprintln!("----- apphostd log -----\n{l}");
            }
        }
        self.kill9();
    }
}

/// Removes what a failed run may leave on the host: the app's container,
/// netns, mounts below the test's directory (with their loop devices), the
/// test's cgroups.
struct HostCleanup {
    runtime_root: PathBuf,
    dir: PathBuf,
}

impl Drop for HostCleanup {
    fn drop(&mut self) {
        let _ = Command::new("crun")
            .arg("--root")
            .arg(&self.runtime_root)
            .args(["delete", "-f", APP])
            .stderr(Stdio::null())
            .status();
        let _ = Command::new("ip")
            .args(["netns", "del", APP])
            .stderr(Stdio::null())
            .status();
        std::thread::sleep(Duration::from_millis(200));
        // Deepest first; loop devices are autoclear and go with their mount.
        let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mut points: Vec<&str> = mounts
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .filter(|p| Path::new(p).starts_with(&self.dir))
            .collect();
        points.sort_by_key(|p| std::cmp::Reverse(p.len()));
        for p in points {
            let _ = Command::new("umount").arg("-l").arg(p).status();
        }
        sh(&format!(
            "for d in /sys/fs/cgroup/*/{CGROUP}/{APP} /sys/fs/cgroup/{CGROUP}/{APP} \
                      /sys/fs/cgroup/*/{CGROUP} /sys/fs/cgroup/{CGROUP}; do \
               [ -d $d ] && rmdir $d; done; true"
        ));
    }
}

fn sh(cmd: &str) {
    let st = Command::new("sh").arg("-c").arg(cmd).status().unwrap();
    assert!(st.success(), "{cmd} failed");
}

fn output(cmd: &str) -> String {
    let o = Command::new("sh").arg("-c").arg(cmd).output().unwrap();
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn build_image(out: &Path, variant: &str) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/build-test-image.sh");
    let st = Command::new(script)
        .arg(out)
        .arg(variant)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success(), "build-test-image.sh failed");
}

/// A TCP connection made from inside `netns` (the socket stays there).
fn connect_in(netns: &Path, port: u16) -> std::io::Result<std::net::TcpStream> {
    let path = netns.to_path_buf();
    std::thread::spawn(move || {
        let f = fs::File::open(&path)?;
        nix::sched::setns(f.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET)
            .map_err(std::io::Error::from)?;
        std::net::TcpStream::connect(("127.0.0.1", port))
    })
    .join()
    .expect("connect thread")
}

async fn netconf(ns: &Netns) -> Client {
    let t0 = Instant::now();
    loop {
        let r: Result<Client, BoxError> = async {
            let s = connect_in(&ns.path(), NC_PORT)?;
            s.set_nonblocking(true)?;
            let s = tokio::net::TcpStream::from_std(s)?;
            Client::connect_stream(s, Login::Password("admin", "admin"), &[BASE10, BASE11]).await
        }
        .await;
        match r {
            Ok(c) => return c,
            Err(e) if t0.elapsed() > Duration::from_secs(20) => {
                panic!("apphostd does not accept NETCONF sessions: {e}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

async fn ok(c: &mut Client, body: &str) {
    let r = c.rpc(body).await.unwrap();
    assert!(is_ok(&r), "{body}\n=> {r}");
}

async fn edit_commit(c: &mut Client, inner: &str) {
    ok(
        c,
        &format!(
            "<edit-config><target><candidate/></target><config><app-hosting xmlns=\"{AH}\">{inner}</app-hosting></config></edit-config>"
        ),
    )
    .await;
    ok(c, "<commit/>").await;
}

/// (status, pid) of the app from operational state.
async fn app_state(c: &mut Client) -> (Option<String>, Option<u32>) {
    let r = c
        .rpc(&format!(
            "<get><filter type=\"subtree\"><app-hosting xmlns=\"{AH}\"><app><name>{APP}</name><state/></app></app-hosting></filter></get>"
        ))
        .await
        .unwrap();
    let doc = roxmltree::Document::parse(&r).unwrap();
    let leaf = |name: &str| {
        doc.descendants()
            .find(|n| n.has_tag_name((AH, "state")))
            .and_then(|s| s.children().find(|n| n.has_tag_name((AH, name))))
            .and_then(|n| n.text())
            .map(str::to_string)
    };
    (leaf("status"), leaf("pid").and_then(|p| p.parse().ok()))
}

/// Waits for status running with a pid other than `not`; returns the pid.
async fn wait_running(c: &mut Client, not: Option<u32>) -> u32 {
    let t0 = Instant::now();
    loop {
        let (status, pid) = app_state(c).await;
        if let (Some("running"), Some(p)) = (status.as_deref(), pid) {
            if Some(p) != not && Path::new(&format!("/proc/{p}")).exists() {
                return p;
            }
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "app never ran (status {status:?}, pid {pid:?})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn links_in_app(pid: u32) -> Vec<String> {
    let out = output(&format!("nsenter --net=/proc/{pid}/ns/net ip -o link show"));
    let mut names: Vec<String> = out
        .lines()
        .filter_map(|l| l.split(':').nth(1))
        .map(|n| n.trim().split('@').next().unwrap_or("").to_string())
        .collect();
    names.sort();
    names
}

fn cap_eff(pid: u32) -> u64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let hex = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .unwrap()
        .trim()
        .to_string();
    u64::from_str_radix(&hex, 16).unwrap()
}

fn environ(pid: u32) -> Vec<String> {
    fs::read(format!("/proc/{pid}/environ"))
        .unwrap()
        .split(|b| *b == 0)
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .collect()
}

/// The parent cgroup's CPU limit as % of all CPUs, and memory limit bytes.
fn parent_limits() -> (f64, u64) {
    let cg = apphost::os::cgroup::HostCgroups::new(CGROUP).unwrap();
    let (cpu, mem) = cg.raw_limits().unwrap();
    let mut it = cpu.split_whitespace();
    let quota: f64 = it.next().unwrap().parse().expect("a CPU quota is set");
    let period: f64 = it.next().unwrap().parse().unwrap();
    let ncpu = std::thread::available_parallelism().unwrap().get() as f64;
    (quota / period / ncpu * 100.0, mem.parse().unwrap())
}

fn mem_total() -> u64 {
    let m = fs::read_to_string("/proc/meminfo").unwrap();
    let kb: u64 = m
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .unwrap()
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .unwrap();
    kb * 1024
}

// ===== the test =====

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(feature = "test_as_root"), ignore)]
async fn operator_story_over_netconf() {
    // crun on this VM's hybrid cgroup layout (no-op elsewhere).
    let st = Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/hybrid-cgroup.sh"))
        .arg("apply")
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());

    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let images = t.join("media/app/images");
    fs::create_dir_all(&images).unwrap();
    fs::create_dir_all(t.join("media/appdata")).unwrap();
    fs::write(t.join("media/appdata/in.txt"), "from-the-media\n").unwrap();
    build_image(&images.join("bb-a.img"), "A");
    build_image(&images.join("bb-b.img"), "B");
    let runtime_root = t.join("runtime");
    let _cleanup = HostCleanup {
        runtime_root: runtime_root.clone(),
        dir: t.to_path_buf(),
    };
    let ns = Netns::new("ahe2e-agent");
    // The port the app gets exclusively, in the agent's namespace.
    sh(&format!("ip -n {} tuntap add {PORT_IF} mode tap", ns.0));
    let config = t.join("apphostd.toml");
    fs::write(
        &config,
        format!(
            "state-dir = \"{t}/state\"\n[netconf]\nlisten = [\"127.0.0.1:{NC_PORT}\"]\n\
             [[user]]\nname = \"admin\"\npassword = \"admin\"\ngroups = [\"admin\"]\n\
             [media]\nexternal = \"{t}/media\"\n\
             [runtime]\nbinary = \"/usr/bin/crun\"\nroot = \"{root}\"\ncgroup = \"{CGROUP}\"\n",
            t = t.display(),
            root = runtime_root.display()
        ),
    )
    .unwrap();
    let log = t.join("apphostd.log");
    let mut agent = Agent::start(&ns, &config, &log);
    let mut c = netconf(&ns).await;

    // ----- label, configure, commit: the app runs -----
    ok(
        &mut c,
        &format!("<set-label xmlns=\"{AH}\"><image>bb-a.img</image><label>bb</label></set-label>"),
    )
    .await;
    edit_commit(
        &mut c,
        &format!(
            "<cpu>20</cpu><ram>10</ram><app><name>{APP}</name><enable>true</enable><autostart>true</autostart>\
             <capability>CAP_NET_ADMIN</capability><capability>CAP_NET_RAW</capability>\
             <share><port><name>{PORT_IF}</name><as>lan1</as></port>\
             <veth><name>{VETH}</name><as>eth0</as></veth>\
             <media><media>external</media><path>appdata</path><as>/data</as></media></share>\
             <environment><name>FOO</name><value>foo</value></environment>\
             <environment><name>FOOBAR</name><value>foo bar</value></environment>\
             <image>bb</image></app>"
        ),
    )
    .await;
    let pid = wait_running(&mut c, None).await;

    // Exactly the shared interfaces, the variables, the capabilities.
    assert_eq!(links_in_app(pid), ["eth0", "lan1", "lo"]);
    assert!(
        !ns.ip_ok(&format!("link show {PORT_IF}")),
        "port moved away"
    );
    assert!(ns.ip_ok(&format!("link show {VETH}")), "veth host end");
    let env = environ(pid);
    assert!(env.contains(&"FOO=foo".to_string()), "{env:?}");
    assert!(env.contains(&"FOOBAR=foo bar".to_string()), "{env:?}");
    assert_eq!(
        cap_eff(pid),
        (1 << 12) | (1 << 13),
        "CAP_NET_ADMIN|CAP_NET_RAW"
    );
    assert_eq!(
        fs::read_to_string(format!("/proc/{pid}/root/etc/variant")).unwrap(),
        "A\n"
    );
    let root = format!("/proc/{pid}/root");
    assert_eq!(
        fs::read_to_string(format!("{root}/data/in.txt")).unwrap(),
        "from-the-media\n"
    );
    fs::write(format!("{root}/data/out.txt"), "kept\n").unwrap();
    fs::write(format!("{root}/tmp/scratch.txt"), "lost\n").unwrap();

    // ----- restart: the share persists, the RAM overlay does not -----
    ok(
        &mut c,
        &format!("<restart xmlns=\"{AH}\"><app>{APP}</app></restart>"),
    )
    .await;
    let pid = wait_running(&mut c, Some(pid)).await;
    let root = format!("/proc/{pid}/root");
    assert_eq!(
        fs::read_to_string(t.join("media/appdata/out.txt")).unwrap(),
        "kept\n"
    );
    assert_eq!(
        fs::read_to_string(format!("{root}/data/out.txt")).unwrap(),
        "kept\n"
    );
    assert!(!Path::new(&format!("{root}/tmp/scratch.txt")).exists());

    // ----- the shared budget, changed live -----
    let (cpu, mem) = parent_limits();
    assert!((cpu - 20.0).abs() < 0.5, "cpu limit {cpu} %");
    let want = mem_total() / 10;
    assert!(mem.abs_diff(want) < want / 100 + 4096, "{mem} vs {want}");
    edit_commit(&mut c, "<cpu>40</cpu><ram>30</ram>").await;
    // Applied by the reconcile loop right after the commit.
    let want = mem_total() * 3 / 10;
    let t0 = Instant::now();
    loop {
        let (cpu, mem) = parent_limits();
        if (cpu - 40.0).abs() < 0.5 && mem.abs_diff(want) < want / 100 + 4096 {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "limits not updated: cpu {cpu} %, memory {mem} (want {want})"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let cg = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    assert!(cg.contains(&format!("{CGROUP}/{APP}")), "{cg}");
    assert_eq!(app_state(&mut c).await.1, Some(pid), "not restarted");

    // ----- a label moves to another image; reload runs it -----
    ok(
        &mut c,
        &format!("<set-label xmlns=\"{AH}\"><image>bb-b.img</image><label>bb</label></set-label>"),
    )
    .await;
    assert_eq!(
        app_state(&mut c).await.1,
        Some(pid),
        "label alone restarts nothing"
    );
    ok(
        &mut c,
        &format!("<reload xmlns=\"{AH}\"><label>bb</label></reload>"),
    )
    .await;
    let pid = wait_running(&mut c, Some(pid)).await;
    assert_eq!(
        fs::read_to_string(format!("/proc/{pid}/root/etc/variant")).unwrap(),
        "B\n"
    );

    // ----- kill -9 of the agent: the app is adopted, not restarted -----
    c.disconnect().await;
    agent.kill9();
    assert!(
        Path::new(&format!("/proc/{pid}")).exists(),
        "app outlives the agent"
    );
    let mut agent = Agent::start(&ns, &config, &log);
    let mut c = netconf(&ns).await;
    let t0 = Instant::now();
    loop {
        let s = app_state(&mut c).await;
        if s == (Some("running".into()), Some(pid)) {
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(20), "not adopted: {s:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(app_state(&mut c).await.1, Some(pid), "adopted, same pid");

    // ----- delete the app: nothing left behind -----
    ok(
        &mut c,
        &format!(
            "<edit-config><target><candidate/></target><config><app-hosting xmlns=\"{AH}\" \
             xmlns:nc=\"urn:ietf:params:xml:ns:netconf:base:1.0\"><app nc:operation=\"delete\">\
             <name>{APP}</name></app></app-hosting></config></edit-config>"
        ),
    )
    .await;
    ok(&mut c, "<commit/>").await;
    let t0 = Instant::now();
    while Path::new(&format!("/proc/{pid}")).exists()
        && !fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| s.contains(") Z"))
            .unwrap_or(true)
    {
        assert!(t0.elapsed() < Duration::from_secs(30), "app still runs");
        std::thread::sleep(Duration::from_millis(100));
    }
    let t0 = Instant::now();
    while app_state(&mut c).await.0.is_some() {
        assert!(t0.elapsed() < Duration::from_secs(10), "state still listed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        !Path::new(&format!("/run/netns/{APP}")).exists(),
        "netns left"
    );
    assert!(!ns.ip_ok(&format!("link show {VETH}")), "veth left");
    assert!(ns.ip_ok(&format!("link show {PORT_IF}")), "port returned");
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(&t.display().to_string()),
        "mounts left: {mounts}"
    );
    for img in ["bb-a.img", "bb-b.img"] {
        let loops = output(&format!("losetup -j {}", images.join(img).display()));
        assert!(loops.trim().is_empty(), "loop device left: {loops}");
    }
    let groups = output(&format!(
        "ls -d /sys/fs/cgroup/*/{CGROUP}/{APP} /sys/fs/cgroup/{CGROUP}/{APP} 2>/dev/null"
    ));
    assert!(groups.trim().is_empty(), "cgroups left: {groups}");
    assert!(
        !t.join(format!("state/apps/{APP}")).exists(),
        "app state dir left"
    );

    c.disconnect().await;
    agent.stop();
}
