//! The licence gate, end to end with the built `apphostd` binary: started
//! with a `license-key` and no licence, Application Hosting is off (module
//! app-hosting absent from the YANG library, get-schema and netconf-state;
//! its namespace refused in edits, filters and RPCs) while install-license
//! and the licence status work; bad licences are refused with their
//! error-app-tag; a valid one is `pending-restart`, and after a restart the
//! module is served and an app can be configured.
//!
//! The device identity is this machine's /etc/machine-id, as the daemon
//! reads it.

mod common;
mod image_support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use apphost::license::{self, DEFAULT_DEVICE_ID_FILE};
use chrono::{Duration as Days, Utc};
use common::*;

const AH: &str = "urn:apphost:yang:app-hosting";
const AHL: &str = "urn:apphost:yang:app-hosting-license";
const YL: &str = "urn:ietf:params:xml:ns:yang:ietf-yang-library";
const MON: &str = "urn:ietf:params:xml:ns:yang:ietf-netconf-monitoring";

/// The daemon, killed on drop.
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Daemon {
    fn start(cfg: &Path) -> Daemon {
        Daemon(
            Command::new(env!("CARGO_BIN_EXE_apphostd"))
                .arg("--config")
                .arg(cfg)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        )
    }

    /// SIGTERM, and wait for the exit.
    async fn stop(mut self) {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.0.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        )
        .unwrap();
        for _ in 0..100 {
            if self.0.try_wait().unwrap().is_some() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("apphostd did not exit on SIGTERM");
    }
}

async fn connect(port: u16) -> Client {
    for _ in 0..100 {
        if let Ok(c) =
            Client::connect(port, Login::Password("admin", "admin"), &[BASE10, BASE11]).await
        {
            return c;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("apphostd does not accept NETCONF sessions on {port}");
}

/// Removes the parent cgroup the agent may have made (every hierarchy).
fn remove_cgroup(name: &str) {
    let root = Path::new("/sys/fs/cgroup");
    let mut dirs = vec![root.join(name)];
    if let Ok(rd) = std::fs::read_dir(root) {
        dirs.extend(rd.flatten().map(|e| e.path().join(name)));
    }
    for d in dirs {
        let _ = std::fs::remove_dir(d);
    }
}

struct Setup {
    _tmp: tempfile::TempDir,
    cfg: PathBuf,
    port: u16,
    cgroup: String,
    signing: ed25519_dalek::SigningKey,
    device: String,
}

impl Drop for Setup {
    fn drop(&mut self) {
        remove_cgroup(&self.cgroup);
    }
}

fn setup() -> Setup {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::create_dir_all(d.join("ext")).unwrap();
    let (private, public) = license::keygen();
    let signing = license::parse_private_key(&private).unwrap();
    // The bare base64 line of the armoured key.
    let public_b64 = public
        .lines()
        .find(|l| !l.starts_with("-----"))
        .unwrap()
        .trim()
        .to_string();
    let port = free_port();
    let cgroup = format!("apphost-lic-test-{}", std::process::id());
    let cfg = d.join("apphostd.toml");
    std::fs::write(
        &cfg,
        format!(
            "state-dir = \"{dir}/state\"\nlicense-key = \"{public_b64}\"\n\
             [netconf]\nlisten = [\"127.0.0.1:{port}\"]\n\
             [media]\nexternal = \"{dir}/ext\"\n\
             [runtime]\nroot = \"{dir}/runtime\"\ncgroup = \"{cgroup}\"\n\
             [[user]]\nname = \"admin\"\npassword = \"admin\"\ngroups = [\"admin\"]\n\
             [[user]]\nname = \"reader\"\npassword = \"reader\"\n",
            dir = d.display()
        ),
    )
    .unwrap();
    let device = license::device_id(Path::new(DEFAULT_DEVICE_ID_FILE))
        .expect("this test needs /etc/machine-id");
    Setup {
        _tmp: tmp,
        cfg,
        port,
        cgroup,
        signing,
        device,
    }
}

impl Setup {
    fn licence(&self, device: &str, expires_in_days: i64) -> String {
        let now = Utc::now();
        let l = license::new_license(
            device,
            now - Days::days(1),
            now + Days::days(expires_in_days),
        );
        license::sign(&l, &self.signing).unwrap()
    }
}

fn install(content: &str) -> String {
    format!(
        "<install-license xmlns=\"{AH}\"><content>{}</content></install-license>",
        apphost::netconf::reply::escape_text(content)
    )
}

fn tags(reply: &str) -> (String, String) {
    assert!(reply.contains("<rpc-error>"), "not an rpc-error: {reply}");
    (
        text_of(reply, "error-tag").unwrap_or_default(),
        text_of(reply, "error-app-tag").unwrap_or_default(),
    )
}

/// Module names of the RFC 8525 YANG library.
async fn library_modules(c: &mut Client) -> Vec<String> {
    let r = c
        .rpc(&format!(
            "<get><filter type=\"subtree\"><yang-library xmlns=\"{YL}\"><module-set><module><name/></module></module-set></yang-library></filter></get>"
        ))
        .await
        .unwrap();
    let doc = roxmltree::Document::parse(&r).unwrap();
    doc.descendants()
        .filter(|n| n.has_tag_name((YL, "module")))
        .filter_map(|m| {
            m.children()
                .find(|n| n.has_tag_name((YL, "name")))
                .and_then(|n| n.text())
                .map(str::to_string)
        })
        .collect()
}

/// `(status, enabled)` of `/app-hosting-license:license`.
async fn licence_status(c: &mut Client) -> (String, String) {
    let r = c
        .rpc(&format!(
            "<get><filter type=\"subtree\"><license xmlns=\"{AHL}\"/></filter></get>"
        ))
        .await
        .unwrap();
    (
        text_of(&r, "status").unwrap_or_else(|| panic!("no status: {r}")),
        text_of(&r, "enabled").unwrap_or_default(),
    )
}

fn content_id(hello: &str) -> String {
    let i = hello.find("content-id=").expect("yang-library capability");
    hello[i + "content-id=".len()..]
        .chars()
        .take_while(|c| c.is_ascii_hexdigit())
        .collect()
}

const APP: &str = "<app-hosting xmlns=\"urn:apphost:yang:app-hosting\"><app><name>web</name><description>licensed</description></app></app-hosting>";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn licence_gate_over_netconf() {
    let s = setup();
    let daemon = Daemon::start(&s.cfg);
    let mut c = connect(s.port).await;

    // --- off: app-hosting hidden, the licence module served ---
    let off_id = content_id(&c.server_hello);
    let modules = library_modules(&mut c).await;
    assert!(
        modules.iter().any(|m| m == "app-hosting-license"),
        "{modules:?}"
    );
    assert!(!modules.iter().any(|m| m == "app-hosting"), "{modules:?}");
    assert_eq!(
        licence_status(&mut c).await,
        ("missing".into(), "false".into())
    );

    let r = c
        .rpc(&format!(
            "<get-schema xmlns=\"{MON}\"><identifier>app-hosting</identifier></get-schema>"
        ))
        .await
        .unwrap();
    assert!(r.contains("<rpc-error>"), "{r}");
    let r = c
        .rpc(&format!(
            "<get-schema xmlns=\"{MON}\"><identifier>app-hosting-license</identifier></get-schema>"
        ))
        .await
        .unwrap();
    assert!(r.contains("module app-hosting-license"), "{r}");
    let r = c
        .rpc(&format!(
            "<get><filter type=\"subtree\"><netconf-state xmlns=\"{MON}\"><schemas/></netconf-state></filter></get>"
        ))
        .await
        .unwrap();
    assert!(
        r.contains("<identifier>app-hosting-license</identifier>"),
        "{r}"
    );
    assert!(!r.contains("<identifier>app-hosting</identifier>"), "{r}");

    let r = c
        .rpc(&format!(
            "<edit-config><target><running/></target><config>{APP}</config></edit-config>"
        ))
        .await
        .unwrap();
    assert_eq!(tags(&r).0, "unknown-namespace");
    assert_eq!(text_of(&r, "bad-namespace").as_deref(), Some(AH));
    let r = c
        .rpc(&format!(
            "<get><filter type=\"subtree\"><app-hosting xmlns=\"{AH}\"/></filter></get>"
        ))
        .await
        .unwrap();
    assert_eq!(tags(&r).0, "unknown-namespace");
    let r = c
        .rpc(&format!(
            "<get-config><source><running/></source><filter type=\"xpath\" xmlns:x=\"{AH}\" select=\"/x:app-hosting\"/></get-config>"
        ))
        .await
        .unwrap();
    assert_eq!(tags(&r).0, "unknown-namespace");
    // By module name, libyang style, in get-data.
    let r = c
        .rpc("<get-data xmlns=\"urn:ietf:params:xml:ns:yang:ietf-netconf-nmda\" xmlns:ds=\"urn:ietf:params:xml:ns:yang:ietf-datastores\"><datastore>ds:operational</datastore><xpath-filter>/app-hosting:app-hosting/cpu</xpath-filter></get-data>")
        .await
        .unwrap();
    assert_eq!(tags(&r).0, "unknown-namespace");
    // No app-hosting data shows, not even its defaults.
    let r = c
        .rpc("<get-config><source><running/></source><with-defaults xmlns=\"urn:ietf:params:xml:ns:yang:ietf-netconf-with-defaults\">report-all</with-defaults></get-config>")
        .await
        .unwrap();
    assert!(r.contains("<data") && !r.contains(AH), "{r}");
    let r = c
        .rpc(&format!("<start xmlns=\"{AH}\"><app>web</app></start>"))
        .await
        .unwrap();
    assert_eq!(tags(&r).0, "unknown-namespace");

    // --- install-license stays under access control while the rest of the
    // module is hidden: a user outside group admin may not (NACM) ---
    let good = s.licence(&s.device, 365);
    {
        let mut rd = Client::connect(
            s.port,
            Login::Password("reader", "reader"),
            &[BASE10, BASE11],
        )
        .await
        .unwrap();
        let r = rd.rpc(&install(&good)).await.unwrap();
        assert_eq!(tags(&r).0, "access-denied", "{r}");
        let r = rd
            .rpc(&format!("<start xmlns=\"{AH}\"><app>web</app></start>"))
            .await
            .unwrap();
        assert_eq!(tags(&r).0, "unknown-namespace", "{r}");
        rd.disconnect().await;
    }

    // --- bad licences: refused by kind, nothing stored ---
    let mut forged = good.clone();
    {
        // Flip one character of the signature.
        let i = forged.find("signature: ").unwrap() + "signature: ".len() + 3;
        let ch = if &forged[i..i + 1] == "A" { "B" } else { "A" };
        forged.replace_range(i..i + 1, ch);
    }
    let other_key = license::parse_private_key(&license::keygen().0).unwrap();
    let other_signer = license::sign(
        &license::new_license(&s.device, Utc::now(), Utc::now() + Days::days(9)),
        &other_key,
    )
    .unwrap();
    for (text, app_tag) in [
        (forged.as_str(), "license-bad-signature"),
        (other_signer.as_str(), "license-bad-signature"),
        (
            s.licence("00000000000000000000000000000000", 365).as_str(),
            "license-wrong-device",
        ),
        (s.licence(&s.device, -1).as_str(), "license-expired"),
        ("not a licence", "license-bad-format"),
    ] {
        let r = c.rpc(&install(text)).await.unwrap();
        assert_eq!(
            tags(&r),
            ("invalid-value".to_string(), app_tag.to_string()),
            "{r}"
        );
    }
    let r = c
        .rpc(&format!("<install-license xmlns=\"{AH}\"/>"))
        .await
        .unwrap();
    assert_eq!(tags(&r).0, "missing-element");
    assert_eq!(licence_status(&mut c).await.0, "missing");

    // A URL that cannot be fetched: the transfer error, nothing stored.
    let srv = s._tmp.path().join("srv");
    std::fs::create_dir_all(&srv).unwrap();
    std::fs::write(srv.join("dev.lic"), &good).unwrap();
    let http = image_support::http_server(&srv, None);
    let by_url = |path: &str| {
        format!(
            "<install-license xmlns=\"{AH}\"><url>http://user:pw-secret@127.0.0.1:{}/{path}</url></install-license>",
            http.port
        )
    };
    let r = c.rpc(&by_url("missing.lic")).await.unwrap();
    assert_eq!(tags(&r).1, "transfer-failed");
    assert!(!r.contains("pw-secret"), "{r}");
    assert_eq!(licence_status(&mut c).await.0, "missing");

    // --- a valid licence (fetched over http): pending until the restart ---
    let r = c.rpc(&by_url("dev.lic")).await.unwrap();
    assert!(is_ok(&r), "{r}");
    assert_eq!(
        licence_status(&mut c).await,
        ("pending-restart".into(), "false".into())
    );
    assert!(!library_modules(&mut c)
        .await
        .iter()
        .any(|m| m == "app-hosting"));
    c.disconnect().await;
    daemon.stop().await;

    // --- restarted: on ---
    // A crash during an import left a partial file: removed at start.
    let images = s._tmp.path().join("ext/app/images");
    std::fs::create_dir_all(&images).unwrap();
    let partial = images.join(".a.img.partial-0123456789ab");
    std::fs::write(&partial, b"half").unwrap();
    let daemon = Daemon::start(&s.cfg);
    let mut c = connect(s.port).await;
    assert!(!partial.exists(), "leftover of an interrupted import kept");
    assert_ne!(content_id(&c.server_hello), off_id);
    assert!(library_modules(&mut c)
        .await
        .iter()
        .any(|m| m == "app-hosting"));
    assert_eq!(
        licence_status(&mut c).await,
        ("valid".into(), "true".into())
    );
    let r = c
        .rpc(&format!(
            "<get-schema xmlns=\"{MON}\"><identifier>app-hosting</identifier></get-schema>"
        ))
        .await
        .unwrap();
    assert!(r.contains("module app-hosting"), "{r}");
    let r = c
        .rpc(&format!(
            "<edit-config><target><running/></target><config>{APP}</config></edit-config>"
        ))
        .await
        .unwrap();
    assert!(is_ok(&r), "{r}");
    let r = c
        .rpc(&format!(
            "<get-config><source><running/></source><filter type=\"subtree\"><app-hosting xmlns=\"{AH}\"/></filter></get-config>"
        ))
        .await
        .unwrap();
    assert!(r.contains("<description>licensed</description>"), "{r}");
    c.disconnect().await;
    daemon.stop().await;
}
