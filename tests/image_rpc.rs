//! import-image and delete-image over NETCONF: our SSH client against an
//! in-process agent whose app-hosting domain runs on the recording OS fakes,
//! with a media directory in a temp dir and images served by python
//! http.server on loopback (tests/image_support). Every failure must be an
//! `<rpc-error>` with its app-tag, leave no file behind, and keep the session.

mod common;
mod image_support;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use apphost::apphost::fake::Fake;
use apphost::apphost::{Apphost, ApphostConfig, Status};
use apphost::license::Licensing;
use apphost::netconf::agent::StateProvider;
use apphost::netconf::rpc::app::AppHostingRpcs;
use apphost::notify::Event;
use apphost::reconciler::States;
use common::*;
use image_support::*;

const AH: &str = "urn:apphost:yang:app-hosting";

struct Env {
    _tmp: tempfile::TempDir,
    agent: TestAgent,
    ah: Apphost,
    /// `<media external>/app/images`, the default storage.
    images: PathBuf,
    /// What the http server serves.
    srv: PathBuf,
    img: Vec<u8>,
    sha: String,
    http: Server,
    /// Notifications the RPCs published: (name, XML).
    events: Arc<Mutex<Vec<(String, String)>>>,
}

async fn setup() -> Env {
    let tmp = tempfile::tempdir().unwrap();
    let ext = tmp.path().join("ext");
    let srv = tmp.path().join("srv");
    let work = tmp.path().join("work");
    for d in [&ext, &srv, &work] {
        std::fs::create_dir_all(d).unwrap();
    }
    let img_path = make_squashfs(&work, "busybox-a.img");
    std::fs::copy(&img_path, srv.join("busybox-a.img")).unwrap();
    let img = std::fs::read(&img_path).unwrap();
    let sha = sha256_hex(&img);
    let http = http_server(&srv, None);

    let mut media = HashMap::new();
    media.insert("external".to_string(), ext.clone());
    let mut cfg = ApphostConfig::new(tmp.path().join("state"), media);
    cfg.stop_grace = Duration::from_millis(200);
    cfg.tick = Duration::from_millis(100);
    let fake = Fake::new();
    let ah = Apphost::new(cfg, fake.os()).unwrap();
    let agent = TestAgent::start_with(Options {
        reconciler: Arc::new(ah.clone()),
        ..Options::default()
    })
    .await;
    // No licence key: the feature needs no licence.
    let licensing = Arc::new(Licensing::at_start(
        agent.state_dir.path(),
        None,
        std::path::Path::new("/etc/machine-id"),
        chrono::Utc::now(),
    ));
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    agent.agent.set_yang_rpcs(Arc::new(AppHostingRpcs::new(
        Some(Arc::new(ah.clone())),
        licensing.clone(),
        Arc::new(move |ev: Event| {
            sink.lock().unwrap().push((ev.name.clone(), ev.to_xml()));
        }),
    )));
    let states: Vec<Arc<dyn StateProvider>> = vec![licensing, Arc::new(ah.clone())];
    agent.agent.set_state_provider(Arc::new(States(states)));
    Env {
        images: ext.join("app/images"),
        _tmp: tmp,
        agent,
        ah,
        srv,
        img,
        sha,
        http,
        events,
    }
}

impl Env {
    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}/{path}", self.http.port)
    }
    /// Image names in the storage directory, temporary files included.
    fn stored(&self) -> Vec<String> {
        if !self.images.exists() {
            return Vec::new();
        }
        list_dir(&self.images)
    }
}

fn import_rpc(url: &str, extra: &str) -> String {
    format!("<import-image xmlns=\"{AH}\"><url>{url}</url>{extra}</import-image>")
}

/// error-tag and error-app-tag of an rpc-error reply.
fn tags(reply: &str) -> (String, String) {
    assert!(reply.contains("<rpc-error>"), "not an rpc-error: {reply}");
    (
        text_of(reply, "error-tag").unwrap_or_default(),
        text_of(reply, "error-app-tag").unwrap_or_default(),
    )
}

/// Names listed in `/app-hosting/image` by `<get>`.
async fn listed_images(c: &mut Client) -> Vec<String> {
    let r = c
        .rpc(&format!(
            "<get><filter type=\"subtree\"><app-hosting xmlns=\"{AH}\"><image><name/></image></app-hosting></filter></get>"
        ))
        .await
        .unwrap();
    let doc = roxmltree::Document::parse(&r).unwrap();
    doc.descendants()
        .filter(|n| n.has_tag_name((AH, "image")))
        .filter_map(|i| {
            i.children()
                .find(|n| n.has_tag_name((AH, "name")))
                .and_then(|n| n.text())
                .map(str::to_string)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn import_over_http_lists_the_image_and_notifies() {
    let env = setup().await;
    let mut c = env.agent.connect().await;
    let r = c
        .rpc(&import_rpc(
            &env.url("busybox-a.img"),
            &format!("<sha256>{}</sha256>", env.sha.to_uppercase()),
        ))
        .await
        .unwrap();
    assert_eq!(text_of(&r, "name").as_deref(), Some("busybox-a.img"), "{r}");
    assert_eq!(
        text_of(&r, "sha256").as_deref(),
        Some(env.sha.as_str()),
        "{r}"
    );
    assert_eq!(
        std::fs::read(env.images.join("busybox-a.img")).unwrap(),
        env.img
    );
    assert_eq!(env.stored(), ["busybox-a.img"]);
    assert_eq!(listed_images(&mut c).await, ["busybox-a.img"]);

    let events = env.events.lock().unwrap().clone();
    let progress: Vec<&String> = events
        .iter()
        .filter(|(n, _)| n == "image-import-progress")
        .map(|(_, x)| x)
        .collect();
    // ~1 MB with a known size: a step every 5 %, the last one at 100 %.
    assert!(progress.len() >= 5, "{events:?}");
    assert!(
        progress.last().unwrap().contains("<percent>100</percent>"),
        "{progress:?}"
    );
    let (last_name, last) = events.last().unwrap();
    assert_eq!(last_name, "image-imported");
    assert!(
        last.contains(&format!("<sha256>{}</sha256>", env.sha)),
        "{last}"
    );

    // The explicit name wins over the URL's.
    let r = c
        .rpc(&import_rpc(
            &env.url("busybox-a.img"),
            "<name>copy.img</name>",
        ))
        .await
        .unwrap();
    assert_eq!(text_of(&r, "name").as_deref(), Some("copy.img"), "{r}");
    assert_eq!(listed_images(&mut c).await, ["busybox-a.img", "copy.img"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failed_imports_are_rpc_errors_and_leave_nothing() {
    let env = setup().await;
    let mut c = env.agent.connect().await;

    let wrong = "0".repeat(64);
    let r = c
        .rpc(&import_rpc(
            &env.url("busybox-a.img"),
            &format!("<sha256>{wrong}</sha256>"),
        ))
        .await
        .unwrap();
    assert_eq!(
        tags(&r),
        ("operation-failed".into(), "checksum-mismatch".into())
    );
    // Printed with XML prefixes declared on the element (ah: = app-hosting).
    let path = text_of(&r, "error-path").unwrap_or_default();
    assert!(
        path.contains("import-image/") && path.ends_with(":sha256"),
        "{path}"
    );
    assert!(env.stored().is_empty(), "{:?}", env.stored());

    let r = c
        .rpc(&import_rpc(&env.url("truncated/busybox-a.img"), ""))
        .await
        .unwrap();
    assert_eq!(
        tags(&r),
        ("operation-failed".into(), "transfer-failed".into())
    );
    assert!(env.stored().is_empty(), "{:?}", env.stored());
    let failed = env.events.lock().unwrap().last().cloned().unwrap();
    assert_eq!(failed.0, "image-imported");
    assert!(failed.1.contains("<error>"), "{}", failed.1);

    // Credentials in the URL never come back in the error.
    let r = c
        .rpc(&import_rpc(
            &format!(
                "http://admin:s3cr3t-pw@127.0.0.1:{}/missing.img",
                env.http.port
            ),
            "",
        ))
        .await
        .unwrap();
    assert_eq!(tags(&r).1, "transfer-failed");
    assert!(!r.contains("s3cr3t-pw"), "{r}");
    assert!(env
        .events
        .lock()
        .unwrap()
        .iter()
        .all(|(_, x)| !x.contains("s3cr3t-pw")));

    // Input errors name the element.
    let r = c
        .rpc(&import_rpc(&env.url("busybox-a.img"), "<name>../x</name>"))
        .await
        .unwrap();
    assert_eq!(tags(&r), ("invalid-value".into(), "invalid-name".into()));
    assert_eq!(text_of(&r, "bad-element").as_deref(), Some("name"));
    let r = c
        .rpc(&import_rpc("file:///etc/passwd", "<name>p.img</name>"))
        .await
        .unwrap();
    assert_eq!(
        tags(&r),
        ("invalid-value".into(), "unsupported-scheme".into())
    );
    let r = c
        .rpc(&format!("<import-image xmlns=\"{AH}\"/>"))
        .await
        .unwrap();
    assert_eq!(tags(&r).0, "missing-element");
    // Not a squashfs nor an archive.
    std::fs::write(env.srv.join("junk.img"), vec![b'x'; 4096]).unwrap();
    let r = c.rpc(&import_rpc(&env.url("junk.img"), "")).await.unwrap();
    assert_eq!(tags(&r), ("operation-failed".into(), "not-an-image".into()));

    assert!(env.stored().is_empty(), "{:?}", env.stored());
    // The session and server are fine.
    assert!(listed_images(&mut c).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_import_of_one_name_is_refused() {
    let env = setup().await;
    let mut first = env.agent.connect().await;
    let mut second = env.agent.connect().await;
    let slow = import_rpc(&env.url("slow/busybox-a.img"), "");
    let task = tokio::spawn(async move {
        let r = first.rpc(&slow).await.unwrap();
        (first, r)
    });
    // Wait until the first import is transferring (it reported progress).
    let mut started = false;
    for _ in 0..200 {
        if env
            .events
            .lock()
            .unwrap()
            .iter()
            .any(|(n, _)| n == "image-import-progress")
        {
            started = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(started, "the slow import never reported progress");
    let r = second
        .rpc(&import_rpc(&env.url("busybox-a.img"), ""))
        .await
        .unwrap();
    assert_eq!(tags(&r), ("in-use".into(), "image-busy".into()));
    let r = second
        .rpc(&format!(
            "<delete-image xmlns=\"{AH}\"><name>busybox-a.img</name></delete-image>"
        ))
        .await
        .unwrap();
    assert_eq!(tags(&r), ("in-use".into(), "image-busy".into()));
    let (_first, r) = task.await.unwrap();
    assert_eq!(
        text_of(&r, "sha256").as_deref(),
        Some(env.sha.as_str()),
        "{r}"
    );
    assert_eq!(env.stored(), ["busybox-a.img"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn delete_image_unless_a_running_app_uses_it() {
    let env = setup().await;
    let mut c = env.agent.connect().await;
    for name in ["a.img", "b.img"] {
        let r = c
            .rpc(&import_rpc(
                &env.url("busybox-a.img"),
                &format!("<name>{name}</name>"),
            ))
            .await
            .unwrap();
        assert!(r.contains("<sha256"), "{r}");
    }
    // An app runs from a.img (through label web), on the fake OS.
    let r = c
        .rpc(&format!(
            "<set-label xmlns=\"{AH}\"><image>a.img</image><label>web</label></set-label>"
        ))
        .await
        .unwrap();
    assert!(is_ok(&r), "{r}");
    let r = c
        .rpc(&format!(
            "<edit-config><target><running/></target><config><app-hosting xmlns=\"{AH}\"><app><name>web</name><enable>true</enable><autostart>true</autostart><image>web</image></app></app-hosting></config></edit-config>"
        ))
        .await
        .unwrap();
    assert!(is_ok(&r), "{r}");
    let mut running = false;
    for _ in 0..100 {
        if env.ah.app_state("web").map(|s| s.status) == Some(Status::Running) {
            running = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(running, "{:?}", env.ah.app_state("web"));

    let del = |n: &str| format!("<delete-image xmlns=\"{AH}\"><name>{n}</name></delete-image>");
    let r = c.rpc(&del("a.img")).await.unwrap();
    assert_eq!(tags(&r), ("in-use".into(), "image-in-use".into()));
    assert!(text_of(&r, "error-message").unwrap().contains("web"), "{r}");
    assert!(env.images.join("a.img").exists());

    let r = c.rpc(&del("b.img")).await.unwrap();
    assert!(is_ok(&r), "{r}");
    assert!(!env.images.join("b.img").exists());
    assert_eq!(listed_images(&mut c).await, ["a.img"]);

    let r = c.rpc(&del("b.img")).await.unwrap();
    assert_eq!(tags(&r), ("data-missing".into(), "no-such-image".into()));
    let r = c.rpc(&del("../a.img")).await.unwrap();
    assert_eq!(tags(&r), ("invalid-value".into(), "invalid-name".into()));

    // Once the app is stopped, its image can go.
    let r = c
        .rpc(&format!("<stop xmlns=\"{AH}\"><app>web</app></stop>"))
        .await
        .unwrap();
    assert!(is_ok(&r), "{r}");
    let r = c.rpc(&del("a.img")).await.unwrap();
    assert!(is_ok(&r), "{r}");
    assert!(listed_images(&mut c).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn import_refused_while_the_media_is_not_mounted() {
    let env = setup().await;
    let mut c = env.agent.connect().await;
    // The external media's mount point is gone (stick unplugged).
    let media = env.images.parent().unwrap().parent().unwrap().to_path_buf();
    std::fs::remove_dir_all(&media).unwrap();
    let r = c
        .rpc(&import_rpc(&env.url("busybox-a.img"), ""))
        .await
        .unwrap();
    assert_eq!(
        tags(&r),
        ("operation-failed".into(), "storage-error".into())
    );
    assert!(
        text_of(&r, "error-message")
            .unwrap()
            .contains("not mounted"),
        "{r}"
    );
    // Not created on the root filesystem instead.
    assert!(!media.exists());
}
