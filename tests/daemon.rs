//! The built `apphostd` binary: config file, host key on first start,
//! NETCONF over SSH, graceful SIGTERM.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_serves_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = dir.path().join("apphostd.toml");
    std::fs::write(
        &cfg,
        format!(
            "state-dir = \"{}/state\"\nlog-level = \"info\"\n[netconf]\nlisten = [\"127.0.0.1:{port}\"]\n[[user]]\nname = \"admin\"\npassword = \"admin\"\n[runtime]\nroot = \"{}/runtime\"\ncgroup = \"apphost-daemontest\"\n",
            dir.path().display(),
            dir.path().display()
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_apphostd"))
        .arg("--config")
        .arg(&cfg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut client = None;
    for _ in 0..100 {
        if let Ok(c) =
            Client::connect(port, Login::Password("admin", "admin"), &[BASE10, BASE11]).await
        {
            client = Some(c);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut c = client.expect("apphostd accepts NETCONF sessions");
    assert!(c
        .rpc("<get-config><source><running/></source></get-config>")
        .await
        .unwrap()
        .contains("<data"));
    let key = dir.path().join("state/ssh_host_ed25519_key");
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    assert!(c.closed_by_server().await, "session not ended at shutdown");
    let mut status = None;
    for _ in 0..100 {
        if let Some(s) = child.try_wait().unwrap() {
            status = Some(s);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let status = status.unwrap_or_else(|| {
        let _ = child.kill();
        panic!("apphostd did not exit on SIGTERM")
    });
    assert!(status.success(), "{status:?}");
    // As root the agent set up its (empty) parent cgroup; it outlives the
    // agent by design.
    for d in glob_cgroups("apphost-daemontest") {
        let _ = std::fs::remove_dir(d);
    }
}

fn glob_cgroups(name: &str) -> Vec<std::path::PathBuf> {
    let mut v = vec![std::path::Path::new("/sys/fs/cgroup").join(name)];
    if let Ok(rd) = std::fs::read_dir("/sys/fs/cgroup") {
        v.extend(rd.flatten().map(|e| e.path().join(name)));
    }
    v.into_iter().filter(|p| p.is_dir()).collect()
}

#[test]
fn unknown_config_key_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bad.toml");
    std::fs::write(&cfg, "[netconf]\nmax-sesions = 3\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_apphostd"))
        .arg("--config")
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("max-sesions"), "{err}");
}
