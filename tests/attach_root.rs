//! `attach APP` for real (root, `--features test_as_root`): the built
//! `apphostd` with a media dir holding the test image, an app committed over
//! NETCONF and run by runc, then OpenSSH's `ssh -tt ... attach APP` typing
//! into the app's shell, and a terminal resize seen inside the container.
//!
//! Run: `cargo test --features test_as_root --test attach_root`

mod common;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use russh::ChannelMsg;

const AH: &str = "urn:apphost:yang:app-hosting";

/// The daemon and what it may leave behind; Drop cleans up even after a
/// failed assertion.
struct Daemon {
    child: std::process::Child,
    dir: tempfile::TempDir,
    port: u16,
    apps: Vec<String>,
    cgroup: String,
}

impl Daemon {
    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    fn start(apps: &[&str]) -> Daemon {
        let dir = tempfile::tempdir().unwrap();
        let t = dir.path();
        let images = t.join("ext/app/images");
        std::fs::create_dir_all(&images).unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/build-test-image.sh");
        let st = Command::new(&script)
            .arg(images.join("bb.img"))
            .arg("A")
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(st.success(), "build-test-image.sh failed");
        let st = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", ""])
            .arg("-f")
            .arg(t.join("key"))
            .status()
            .unwrap();
        assert!(st.success());
        let pubkey = std::fs::read_to_string(t.join("key.pub")).unwrap();
        let port = free_port();
        let cgroup = format!("apphost-attach{}", std::process::id());
        let cfg = t.join("apphostd.toml");
        std::fs::write(
            &cfg,
            format!(
                "state-dir = \"{t}/state\"\nlog-level = \"info\"\n\
                 [netconf]\nlisten = [\"127.0.0.1:{port}\"]\nlogin-grace-time = 2\n\
                 [[user]]\nname = \"admin\"\npassword = \"admin\"\ngroups = [\"admin\"]\n\
                 authorized-keys = [\"{key}\"]\n\
                 [media]\nexternal = \"{t}/ext\"\n\
                 [runtime]\nbinary = \"/usr/sbin/runc\"\nroot = \"{t}/state/runc\"\ncgroup = \"{cgroup}\"\n",
                t = t.display(),
                key = pubkey.trim(),
            ),
        )
        .unwrap();
        let log = std::fs::File::create(t.join("apphostd.log")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_apphostd"))
            .arg("--config")
            .arg(&cfg)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        Daemon {
            child,
            dir,
            port,
            apps: apps.iter().map(|a| a.to_string()).collect(),
            cgroup,
        }
    }

    async fn connect(&self) -> Client {
        for _ in 0..100 {
            if let Ok(c) =
                Client::connect(self.port, Login::Password("admin", "admin"), &[BASE10]).await
            {
                return c;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("apphostd does not accept NETCONF sessions: {}", self.log());
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.path("apphostd.log")).unwrap_or_default()
    }

    /// `ssh -tt` (OpenSSH, key auth) running `command`, `input` on stdin;
    /// (exit code, stdout, stderr).
    fn ssh(&self, command: &str, input: &str) -> (Option<i32>, String, String) {
        self.ssh_with("-tt", command, input)
    }

    /// `ssh` with `tty_flag` ("-tt": a pty; "-T": none).
    fn ssh_with(
        &self,
        tty_flag: &str,
        command: &str,
        input: &str,
    ) -> (Option<i32>, String, String) {
        let mut child = Command::new("ssh")
            .args(["-F", "/dev/null", tty_flag, "-p", &self.port.to_string()])
            .arg("-i")
            .arg(self.path("key"))
            .args([
                "-o",
                "IdentitiesOnly=yes",
                "-o",
                "BatchMode=yes",
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "UserKnownHostsFile=/dev/null",
                "-o",
                "LogLevel=ERROR",
                "admin@127.0.0.1",
                command,
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("ssh {command} hung; agent log:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let mut out = String::new();
        let mut err = String::new();
        child.stdout.unwrap().read_to_string(&mut out).unwrap();
        child.stderr.unwrap().read_to_string(&mut err).unwrap();
        (status.code(), out, err)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Containers outlive the agent by design (adoption): remove ours.
        let root = self.path("state/runc");
        for app in &self.apps {
            let _ = Command::new("/usr/sbin/runc")
                .arg("--root")
                .arg(&root)
                .args(["delete", "-f", app])
                .stderr(Stdio::null())
                .status();
            let _ = Command::new("ip")
                .args(["netns", "del", app])
                .stderr(Stdio::null())
                .status();
        }
        let dir = self.dir.path().display().to_string();
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mut ours: Vec<&str> = mounts
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .filter(|m| m.starts_with(&dir))
            .collect();
        ours.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for m in ours {
            let _ = Command::new("umount").args(["-l", m]).status();
        }
        let _ = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "for d in /sys/fs/cgroup/*/{c}/* /sys/fs/cgroup/{c}/* /sys/fs/cgroup/*/{c} /sys/fs/cgroup/{c}; do [ -d $d ] && rmdir $d; done 2>/dev/null; true",
                c = self.cgroup
            ))
            .status();
    }
}

fn status_of(reply: &str) -> Option<String> {
    text_of(reply, "status")
}

async fn app_status(c: &mut Client, app: &str) -> Option<String> {
    let reply = c
        .rpc(&format!(
            "<get><filter type=\"subtree\"><app-hosting xmlns=\"{AH}\"><app><name>{app}</name><state/></app></app-hosting></filter></get>"
        ))
        .await
        .unwrap();
    status_of(&reply)
}

/// Output of the russh client's pty channel until it contains `needle`.
async fn read_until(ch: &mut russh::Channel<russh::client::Msg>, out: &mut String, needle: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while !out.contains(needle) {
        match tokio::time::timeout_at(deadline, ch.wait()).await {
            Ok(Some(ChannelMsg::Data { data })) => out.push_str(&String::from_utf8_lossy(&data)),
            Ok(Some(ChannelMsg::ExtendedData { data, .. })) => {
                out.push_str(&String::from_utf8_lossy(&data))
            }
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => panic!("no {needle:?} in {out:?}"),
        }
    }
}

/// Runs `cmd` in the attached shell until its output contains `expect`: a
/// terminal size travels by signal (SIGWINCH to runc, which resizes the
/// container's terminal), so it arrives a little later. Returns the output
/// that had it. Marks are computed by the shell, so the echoed input never
/// matches them.
async fn ask_until(
    ch: &mut russh::Channel<russh::client::Msg>,
    cmd: &str,
    expect: &str,
    first_mark: u32,
) -> String {
    for round in first_mark..first_mark + 50 {
        ch.data(format!("{cmd}; echo mark-$(({round}*1000+1))\n").as_bytes())
            .await
            .unwrap();
        let mut got = String::new();
        read_until(ch, &mut got, &format!("mark-{}", round * 1000 + 1)).await;
        if got.contains(expect) {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("{expect:?} never seen in the container for {cmd:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(feature = "test_as_root"), ignore)]
async fn attach_to_a_running_app_over_openssh() {
    let app = format!("at{}", std::process::id() % 100_000);
    let idle = format!("{app}i");
    let d = Daemon::start(&[&app, &idle]);
    let mut c = d.connect().await;

    // Label the image, commit a running app and one that is not started.
    let reply = c
        .rpc(&format!(
            "<set-label xmlns=\"{AH}\"><image>bb.img</image><label>bb</label></set-label>"
        ))
        .await
        .unwrap();
    assert!(is_ok(&reply), "{reply}");
    let reply = c
        .rpc(&format!(
            "<edit-config><target><candidate/></target><config><app-hosting xmlns=\"{AH}\">\
             <app><name>{app}</name><enable>true</enable><autostart>true</autostart><image>bb</image></app>\
             <app><name>{idle}</name><enable>true</enable><autostart>false</autostart><image>bb</image></app>\
             </app-hosting></config></edit-config>"
        ))
        .await
        .unwrap();
    assert!(is_ok(&reply), "{reply}");
    let reply = c.rpc("<commit/>").await.unwrap();
    assert!(is_ok(&reply), "{reply}");
    let t0 = Instant::now();
    loop {
        let s = app_status(&mut c, &app).await;
        if s.as_deref() == Some("running") {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "app not running (status {s:?}); agent log:\n{}",
            d.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The user's session: a command, the hostname (= the app name), exit.
    let (code, out, err) = {
        let d = &d;
        let app = app.clone();
        tokio::task::block_in_place(move || {
            d.ssh(&format!("attach {app}"), "echo $((6*7)); hostname; exit\n")
        })
    };
    let lines: Vec<&str> = out.lines().map(str::trim).collect();
    assert!(lines.contains(&"42"), "no 42 in {out:?} (stderr {err:?})");
    assert!(
        lines.contains(&app.as_str()),
        "hostname {app} not in {out:?}"
    );
    assert_eq!(code, Some(0), "out {out:?} err {err:?}");

    // The shell's exit status is the session's.
    let (code, out, _) =
        tokio::task::block_in_place(|| d.ssh(&format!("attach {app}"), "exit 7\n"));
    assert_eq!(code, Some(7), "{out:?}");

    // Without a terminal: pipes, stderr apart, the end of input ends the
    // shell (no `exit`).
    let (code, out, err) = tokio::task::block_in_place(|| {
        d.ssh_with(
            "-T",
            &format!("attach {app}"),
            "echo $((6*7)); hostname; echo oops >&2\n",
        )
    });
    assert_eq!(
        (code, out.as_str(), err.as_str()),
        (Some(0), format!("42\n{app}\n").as_str(), "oops\n")
    );

    // Refusals: a line on stderr, exit status 1.
    let (code, _, err) = tokio::task::block_in_place(|| d.ssh("attach nosuchapp", ""));
    assert_eq!(code, Some(1), "{err:?}");
    assert!(err.contains("no app 'nosuchapp' is configured"), "{err:?}");
    let (code, _, err) = tokio::task::block_in_place(|| d.ssh(&format!("attach {idle}"), ""));
    assert_eq!(code, Some(1), "{err:?}");
    assert!(
        err.contains(&format!("app '{idle}' is not running")),
        "{err:?}"
    );

    // A resize reaches the container's terminal (SIGWINCH through runc).
    let handle = ssh_connect(d.port, Login::Password("admin", "admin"))
        .await
        .unwrap();
    let mut ch = handle.channel_open_session().await.unwrap();
    ch.request_pty(true, "xterm", 100, 30, 0, 0, &[])
        .await
        .unwrap();
    ch.exec(true, format!("attach {app}")).await.unwrap();
    // Typed only at the prompt: runc sets up the container's terminal (its
    // size, ONLCR) after the shell has started, racing typed-ahead input.
    let mut out = String::new();
    read_until(&mut ch, &mut out, "/ # ").await;
    let got = ask_until(&mut ch, "stty size; echo term-$TERM", "30 100", 1).await;
    // The client's terminal type is the shell's TERM. (Output may end in
    // CR CR LF while runc has not yet cleared the container terminal's
    // ONLCR: its own race, invisible on a screen.)
    assert!(got.replace('\r', "").contains("term-xterm\n"), "{got:?}");
    // Past the login grace time (2 s): an attached shell is a session.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    ch.window_change(120, 40, 0, 0).await.unwrap();
    ask_until(&mut ch, "stty size", "40 120", 100).await;

    // Closing the channel ends the shell in the container.
    let shells = || -> usize {
        let out = Command::new("/usr/sbin/runc")
            .arg("--root")
            .arg(d.path("state/runc"))
            .args(["ps", &app])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.ends_with(" sh"))
            .count()
    };
    assert_eq!(shells(), 1, "the attached shell runs in the container");
    ch.close().await.unwrap();
    let t0 = Instant::now();
    while shells() != 0 {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "shell survived the channel"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = handle
        .disconnect(russh::Disconnect::ByApplication, "", "en")
        .await;

    // Remove the apps so nothing outlives the test (Drop is the fallback).
    let reply = c
        .rpc(&format!(
            "<edit-config><target><candidate/></target><config><app-hosting xmlns=\"{AH}\" \
             xmlns:nc=\"{NC}\"><app nc:operation=\"delete\"><name>{app}</name></app>\
             <app nc:operation=\"delete\"><name>{idle}</name></app></app-hosting></config></edit-config>"
        ))
        .await
        .unwrap();
    assert!(is_ok(&reply), "{reply}");
    let reply = c.rpc("<commit/>").await.unwrap();
    assert!(is_ok(&reply), "{reply}");
    let t0 = Instant::now();
    while app_status(&mut c, &app).await.is_some() {
        assert!(t0.elapsed() < Duration::from_secs(20), "app not removed");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
