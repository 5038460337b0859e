//! Crash test of the datastore persistence: a child process saves running in
//! a loop, alternating between two configurations, and is SIGKILLed at
//! random instants. After every kill the store must load one of the two
//! configurations, whole and valid, with no file set aside as corrupt.
//!
//! The child is this test binary itself, re-executed with
//! `--exact child_saver --ignored` and the state directory in an env var.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use apphost::datastore::persist::{parse_saved, Store};
use apphost::datastore::DsName;
use rand::Rng;
use yang2::data::{Data, DataFormat, DataPrinterFlags, DataTree};

/// Env var naming the state directory; set only for the child.
const CHILD_DIR_ENV: &str = "APPHOST_PERSIST_CRASH_CHILD_DIR";
const BOOT_ID: &str = "crash-test-boot";
const KILLS: usize = 200;
/// Printed by the child once its first save is done.
const READY: &str = "child-saver-ready";

const CONF_A: &str = r#"<app-hosting xmlns="urn:apphost:yang:app-hosting">
  <cpu>30</cpu>
  <storage><media>usb0</media></storage>
  <app>
    <name>a1</name>
    <enable>true</enable>
    <autostart>true</autostart>
    <capability>CAP_NET_ADMIN</capability>
    <image>busybox</image>
    <share><veth><name>veth-a1</name><as>eth0</as></veth></share>
    <environment><name>MODE</name><value>a</value></environment>
  </app>
</app-hosting>"#;

const CONF_B: &str = r#"<app-hosting xmlns="urn:apphost:yang:app-hosting">
  <ram>40</ram>
  <app><name>b1</name><description>the second configuration</description></app>
  <app>
    <name>b2</name>
    <netns>host-os</netns>
    <share><media><media>external</media><path>data/b2</path><as>/data</as></media></share>
  </app>
</app-hosting>"#;

fn tree(xml: &str) -> DataTree<'static> {
    parse_saved(xml.as_bytes()).expect("test configuration is valid")
}

fn xml(t: &DataTree<'static>) -> String {
    t.print_string(
        DataFormat::XML,
        DataPrinterFlags::WITH_SIBLINGS | DataPrinterFlags::WD_EXPLICIT,
    )
    .expect("print")
    .unwrap_or_default()
}

fn corrupt_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .expect("read state dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".corrupt-"))
        .collect()
}

/// The child: saves A and B alternately until killed. Ignored so a plain
/// `cargo test` does not run it; without the env var it returns at once.
#[test]
#[ignore = "child process of crash_during_save_leaves_old_or_new"]
fn child_saver() {
    let Ok(dir) = std::env::var(CHILD_DIR_ENV) else {
        return;
    };
    let (store, _) = Store::open_with_boot_id(Path::new(&dir), BOOT_ID).expect("child open");
    let trees = [tree(CONF_A), tree(CONF_B)];
    let mut i = 0usize;
    loop {
        store
            .save(DsName::Running, &trees[i % 2])
            .expect("child save");
        if i == 0 {
            // The parent starts its random delay only once saves run.
            println!("{READY}");
        }
        i += 1;
    }
}

#[test]
fn crash_during_save_leaves_old_or_new() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("state");
    let a = xml(&tree(CONF_A));
    let b = xml(&tree(CONF_B));
    assert_ne!(a, b);
    let exe = std::env::current_exe().expect("test binary path");
    let mut rng = rand::thread_rng();
    let (mut seen_a, mut seen_b) = (0, 0);
    let started = Instant::now();

    for round in 0..KILLS {
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "child_saver",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_DIR_ENV, &dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn child");
        let stdout = child.stdout.take().expect("child stdout");
        // Read in a thread so a child that never gets ready fails the test
        // instead of hanging it.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                match line {
                    // The harness may print "test child_saver ... " first.
                    Ok(l) if l.contains(READY) => {
                        let _ = tx.send(());
                        return;
                    }
                    Ok(_) => continue,
                    Err(_) => return,
                }
            }
        });
        if rx.recv_timeout(Duration::from_secs(30)).is_err() {
            let _ = child.kill();
            let _ = child.wait();
            panic!("round {round}: the child did not start saving");
        }
        // Each save takes a few ms (two fsyncs): a delay up to 15 ms lands
        // the kill at every step of a save across the rounds.
        std::thread::sleep(Duration::from_micros(rng.gen_range(0..15_000)));
        child.kill().expect("SIGKILL child");
        child.wait().expect("reap child");

        let (_store, loaded) = Store::open_with_boot_id(&dir, BOOT_ID).expect("open after kill");
        assert!(
            loaded.warnings.is_empty(),
            "round {round}: {:?}",
            loaded.warnings
        );
        let got = xml(&loaded.running);
        if got == a {
            seen_a += 1;
        } else if got == b {
            seen_b += 1;
        } else {
            panic!("round {round}: running is neither A nor B:\n{got}");
        }
        let corrupt = corrupt_files(&dir);
        assert!(corrupt.is_empty(), "round {round}: {corrupt:?}");
    }
    eprintln!(
        "{KILLS} kills in {:?}: A {seen_a} times, B {seen_b} times",
        started.elapsed()
    );
    // Both outcomes occur: the kills did land while the child was saving.
    assert!(seen_a > 0 && seen_b > 0, "A {seen_a}, B {seen_b}");
}
