//! Image import over every protocol against real servers on loopback started
//! here (python http.server, TLS with an openssl-made certificate, pyftpdlib,
//! in.tftpd, a private OpenSSH sshd), and the failure paths: truncated
//! transfer, wrong checksum, not an image, full media, busy name. Every
//! failure must leave the destination directory as it was.

mod image_support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc;
use std::time::Duration;

use apphost::image::{self, import, ImportError, ImportRequest, Progress};
use image_support::*;

struct Fixture {
    _tmp: tempfile::TempDir,
    /// What the servers serve.
    srv: PathBuf,
    /// Where images are imported to.
    dest: PathBuf,
    /// The test squashfs, and its checksum.
    img: Vec<u8>,
    sha: String,
}

fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let srv = tmp.path().join("srv");
    let dest = tmp.path().join("dest");
    std::fs::create_dir_all(&srv).unwrap();
    std::fs::create_dir_all(&dest).unwrap();
    let work = tmp.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let img_path = make_squashfs(&work, "busybox-a.img");
    std::fs::copy(&img_path, srv.join("busybox-a.img")).unwrap();
    let img = std::fs::read(&img_path).unwrap();
    let sha = sha256_hex(&img);
    Fixture {
        _tmp: tmp,
        srv,
        dest,
        img,
        sha,
    }
}

fn run(req: &ImportRequest, dest: &Path) -> (Result<image::Imported, ImportError>, Vec<Progress>) {
    let mut seen = Vec::new();
    let r = import(req, dest, &mut |p| seen.push(p));
    (r, seen)
}

/// A successful import stored exactly the served bytes under `name`, alone.
fn assert_imported(f: &Fixture, r: Result<image::Imported, ImportError>, name: &str) {
    let got = r.unwrap_or_else(|e| panic!("import failed: {e}"));
    assert_eq!(got.name, name);
    assert_eq!(got.sha256, f.sha);
    assert_eq!(got.size, f.img.len() as u64);
    assert_eq!(std::fs::read(f.dest.join(name)).unwrap(), f.img);
    assert_eq!(list_dir(&f.dest), [name]);
}

// ===== http / https =====

#[test]
fn http_import_with_checksum_and_progress() {
    let f = fixture();
    let http = http_server(&f.srv, None);
    let mut req = ImportRequest::new(format!("http://127.0.0.1:{}/busybox-a.img", http.port));
    req.sha256 = Some(f.sha.to_uppercase());
    let (r, seen) = run(&req, &f.dest);
    assert_imported(&f, r, "busybox-a.img");
    // Progress: with a known size, percents rise to 100, and several steps
    // were reported along the way (~1 MB image, a step every 5 %).
    assert!(seen.len() >= 5, "{seen:?}");
    let last = seen.last().unwrap();
    assert_eq!(last.percent, Some(100));
    assert_eq!(last.bytes, f.img.len() as u64);
    assert_eq!(last.total, Some(f.img.len() as u64));
    assert!(seen.windows(2).all(|w| w[0].bytes <= w[1].bytes));
    assert!(seen.iter().all(|p| p.name == "busybox-a.img"));
}

#[test]
fn http_explicit_name_and_unknown_size() {
    let f = fixture();
    let http = http_server(&f.srv, None);
    let mut req = ImportRequest::new(format!(
        "http://127.0.0.1:{}/nolength/busybox-a.img",
        http.port
    ));
    req.name = Some("mine.img".into());
    let (r, seen) = run(&req, &f.dest);
    assert_imported(&f, r, "mine.img");
    let last = seen.last().unwrap();
    assert_eq!((last.percent, last.bytes), (None, f.img.len() as u64));
}

#[test]
fn https_with_ca_file() {
    let f = fixture();
    let (cert, key) = self_signed_cert(f.dest.parent().unwrap());
    let https = http_server(&f.srv, Some((&cert, &key)));
    let url = format!("https://127.0.0.1:{}/busybox-a.img", https.port);

    // Not trusted without the CA: refused, nothing stored.
    let (r, _) = run(&ImportRequest::new(&url), &f.dest);
    let e = r.unwrap_err();
    assert!(matches!(e, ImportError::Transfer(_)), "{e}");
    assert!(e.to_string().to_lowercase().contains("certificate"), "{e}");
    assert!(list_dir(&f.dest).is_empty());

    let mut req = ImportRequest::new(&url);
    req.ca_file = Some(cert);
    let (r, _) = run(&req, &f.dest);
    assert_imported(&f, r, "busybox-a.img");
}

#[test]
fn http_not_found() {
    let f = fixture();
    let http = http_server(&f.srv, None);
    let (r, _) = run(
        &ImportRequest::new(format!("http://127.0.0.1:{}/nope.img", http.port)),
        &f.dest,
    );
    let e = r.unwrap_err();
    assert!(e.to_string().contains("HTTP 404"), "{e}");
    assert!(list_dir(&f.dest).is_empty());
}

#[test]
fn truncated_transfer_leaves_nothing() {
    let f = fixture();
    let http = http_server(&f.srv, None);
    let (r, _) = run(
        &ImportRequest::new(format!(
            "http://127.0.0.1:{}/truncated/busybox-a.img",
            http.port
        )),
        &f.dest,
    );
    let e = r.unwrap_err();
    assert!(matches!(e, ImportError::Transfer(_)), "{e}");
    assert!(e.to_string().contains("ended early"), "{e}");
    assert!(list_dir(&f.dest).is_empty());
}

#[test]
fn wrong_checksum_leaves_nothing() {
    let f = fixture();
    let http = http_server(&f.srv, None);
    let mut req = ImportRequest::new(format!("http://127.0.0.1:{}/busybox-a.img", http.port));
    req.sha256 = Some("0".repeat(64));
    let (r, _) = run(&req, &f.dest);
    match r.unwrap_err() {
        ImportError::ChecksumMismatch { expected, actual } => {
            assert_eq!(expected, "0".repeat(64));
            assert_eq!(actual, f.sha);
        }
        e => panic!("{e}"),
    }
    assert!(list_dir(&f.dest).is_empty());
}

#[test]
fn not_an_image_leaves_nothing() {
    let f = fixture();
    std::fs::write(f.srv.join("readme.txt"), "just text\n".repeat(100)).unwrap();
    let http = http_server(&f.srv, None);
    let (r, _) = run(
        &ImportRequest::new(format!("http://127.0.0.1:{}/readme.txt", http.port)),
        &f.dest,
    );
    let e = r.unwrap_err();
    assert!(matches!(e, ImportError::NotAnImage(_)), "{e}");
    assert!(list_dir(&f.dest).is_empty());
}

#[test]
fn second_import_of_same_name_is_busy() {
    let f = fixture();
    let http = http_server(&f.srv, None);
    let slow = format!("http://127.0.0.1:{}/slow/busybox-a.img", http.port);
    let dest = f.dest.clone();
    let (tx, rx) = mpsc::channel();
    let first = std::thread::spawn(move || {
        let mut sent = false;
        import(&ImportRequest::new(slow), &dest, &mut |_| {
            if !sent {
                let _ = tx.send(());
                sent = true;
            }
        })
    });
    // The first is transferring (it reported progress): a second is refused.
    rx.recv_timeout(Duration::from_secs(30)).unwrap();
    let (r, _) = run(
        &ImportRequest::new(format!("http://127.0.0.1:{}/busybox-a.img", http.port)),
        &f.dest,
    );
    let e = r.unwrap_err();
    assert!(matches!(e, ImportError::Busy(_)), "{e}");
    // A different name is fine meanwhile.
    let mut other = ImportRequest::new(format!("http://127.0.0.1:{}/busybox-a.img", http.port));
    other.name = Some("other.img".into());
    run(&other, &f.dest).0.unwrap();
    // Deleting the name being imported is refused too.
    let e = image::delete(&f.dest, "busybox-a.img", &|_| false).unwrap_err();
    assert!(matches!(e, image::DeleteError::Busy(_)), "{e}");
    let done = first.join().unwrap().unwrap();
    assert_eq!(done.sha256, f.sha);
    assert_eq!(list_dir(&f.dest), ["busybox-a.img", "other.img"]);
}

#[test]
fn oci_archive_over_http_is_converted() {
    let f = fixture();
    std::fs::write(f.srv.join("busybox.tar"), docker_archive()).unwrap();
    let http = http_server(&f.srv, None);
    let (r, _) = run(
        &ImportRequest::new(format!("http://127.0.0.1:{}/busybox.tar", http.port)),
        &f.dest,
    );
    let got = r.unwrap();
    assert_eq!(got.name, "busybox.img");
    assert_eq!(got.converted_from, Some(image::oci::ArchiveKind::Docker));
    assert_eq!(list_dir(&f.dest), ["busybox.img", "busybox.json"]);
    assert_eq!(
        sha256_hex(&std::fs::read(f.dest.join("busybox.img")).unwrap()),
        got.sha256
    );
    let cfg = image::read_config(&f.dest.join("busybox.img"))
        .unwrap()
        .unwrap();
    assert_eq!(cfg.env.unwrap(), ["PATH=/bin", "GREETING=hello"]);
    assert!(list_squashfs(&f.dest.join("busybox.img")).contains_key("/bin/busybox"));

    // A plain SquashFS imported over it replaces it and drops the stale config.
    let mut req = ImportRequest::new(format!("http://127.0.0.1:{}/busybox-a.img", http.port));
    req.name = Some("busybox.img".into());
    run(&req, &f.dest).0.unwrap();
    assert_eq!(list_dir(&f.dest), ["busybox.img"]);
    image::delete(&f.dest, "busybox.img", &|_| false).unwrap();
    assert!(list_dir(&f.dest).is_empty());
}

// ===== ftp =====

#[test]
fn ftp_import_anonymous_and_with_password() {
    let f = fixture();
    let ftp = ftp_server(&f.srv, "alice", "s3cret-pw");
    let (r, seen) = run(
        &ImportRequest::new(format!("ftp://127.0.0.1:{}/busybox-a.img", ftp.port)),
        &f.dest,
    );
    assert_imported(&f, r, "busybox-a.img");
    assert_eq!(
        seen.last().unwrap().percent,
        Some(100),
        "ftp SIZE gives a total"
    );

    let mut req = ImportRequest::new(format!(
        "ftp://alice:s3cret-pw@127.0.0.1:{}/busybox-a.img",
        ftp.port
    ));
    req.name = Some("b.img".into());
    run(&req, &f.dest).0.unwrap();

    // A wrong password fails, and the error does not show it.
    let req = ImportRequest::new(format!(
        "ftp://alice:wrong-pw-123@127.0.0.1:{}/busybox-a.img",
        ftp.port
    ));
    let (r, _) = run(&req, &f.dest.join("..").join("dest"));
    let e = r.unwrap_err().to_string();
    assert!(!e.contains("wrong-pw-123"), "{e}");
    assert!(!e.contains("alice:"), "{e}");
    assert_eq!(list_dir(&f.dest), ["b.img", "busybox-a.img"]);
}

// ===== tftp (root: in.tftpd chroots) =====

#[test]
#[cfg_attr(not(feature = "test_as_root"), ignore)]
fn tftp_import() {
    let f = fixture();
    let tftpd = need("in.tftpd", "tftpd-hpa");
    // in.tftpd drops to its own user inside the chroot: let it read.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&f.srv, std::fs::Permissions::from_mode(0o755)).unwrap();
    let port = free_port(true);
    let child = Command::new(tftpd)
        .args(["-L", "-s"])
        .arg(&f.srv)
        .args(["-a", &format!("127.0.0.1:{port}")])
        .spawn()
        .unwrap();
    let _server = KillOnDrop(child);
    std::thread::sleep(Duration::from_millis(300));
    let mut req = ImportRequest::new(format!("tftp://127.0.0.1:{port}/busybox-a.img"));
    req.sha256 = Some(f.sha.clone());
    let (r, _) = run(&req, &f.dest);
    assert_imported(&f, r, "busybox-a.img");

    let (r, _) = run(
        &ImportRequest::new(format!("tftp://127.0.0.1:{port}/missing.img")),
        &f.dest,
    );
    assert!(matches!(r.unwrap_err(), ImportError::Transfer(_)));
    assert_eq!(list_dir(&f.dest), ["busybox-a.img"]);
}

struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

// ===== scp / sftp (root: a private sshd logging in root by key) =====

struct Sshd {
    _child: KillOnDrop,
    port: u16,
    client_key: PathBuf,
    known_hosts: PathBuf,
    wrong_known_hosts: PathBuf,
}

fn ssh_keygen(path: &Path) {
    let st = Command::new(need("ssh-keygen", "openssh-client"))
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(path)
        .status()
        .unwrap();
    assert!(st.success());
}

fn start_sshd(dir: &Path) -> Sshd {
    let sshd = need("/usr/sbin/sshd", "openssh-server");
    need("scp", "openssh-client"); // libcurl's scp runs `scp -f` on the server
    std::fs::create_dir_all(dir).unwrap();
    let host_key = dir.join("host_key");
    let other_key = dir.join("other_host_key");
    let client_key = dir.join("client_key");
    ssh_keygen(&host_key);
    ssh_keygen(&other_key);
    ssh_keygen(&client_key);
    std::fs::copy(dir.join("client_key.pub"), dir.join("authorized_keys")).unwrap();
    let port = free_port(false);
    let config = dir.join("sshd_config");
    std::fs::write(
        &config,
        format!(
            "ListenAddress 127.0.0.1:{port}\n\
             HostKey {hk}\n\
             PidFile none\n\
             AuthorizedKeysFile {dir}/authorized_keys\n\
             PermitRootLogin prohibit-password\n\
             PasswordAuthentication no\n\
             KbdInteractiveAuthentication no\n\
             UsePAM no\n\
             StrictModes no\n\
             Subsystem sftp internal-sftp\n",
            hk = host_key.display(),
            dir = dir.display()
        ),
    )
    .unwrap();
    // sshd's privilege separation directory (made by the service unit, which
    // we do not use).
    std::fs::create_dir_all("/run/sshd").unwrap();
    // Its log (-e: to stderr) goes to a file beside the config.
    let log = std::fs::File::create(dir.join("sshd.log")).unwrap();
    let child = Command::new(sshd)
        .arg("-D")
        .arg("-e")
        .arg("-f")
        .arg(&config)
        .stderr(log)
        .spawn()
        .unwrap();
    let child = KillOnDrop(child);
    wait_tcp(port);
    let known = |key: &Path, file: &str| {
        let pubkey = std::fs::read_to_string(key.with_extension("pub")).unwrap();
        let fields: Vec<&str> = pubkey.split_whitespace().collect();
        let p = dir.join(file);
        std::fs::write(
            &p,
            format!("[127.0.0.1]:{port} {} {}\n", fields[0], fields[1]),
        )
        .unwrap();
        p
    };
    Sshd {
        port,
        client_key,
        known_hosts: known(&host_key, "known_hosts"),
        wrong_known_hosts: known(&other_key, "wrong_known_hosts"),
        _child: child,
    }
}

#[test]
#[cfg_attr(not(feature = "test_as_root"), ignore)]
fn scp_and_sftp_import() {
    let f = fixture();
    let sshd = start_sshd(&f.dest.parent().unwrap().join("ssh"));
    let path = f.srv.join("busybox-a.img");
    for scheme in ["scp", "sftp"] {
        let mut req = ImportRequest::new(format!(
            "{scheme}://root@127.0.0.1:{}{}",
            sshd.port,
            path.display()
        ));
        req.name = Some(format!("{scheme}.img"));
        req.sha256 = Some(f.sha.clone());
        req.ssh_private_key = Some(sshd.client_key.clone());
        req.ssh_known_hosts = Some(sshd.known_hosts.clone());
        let (r, _) = run(&req, &f.dest);
        let got = r.unwrap_or_else(|e| panic!("{scheme}: {e}"));
        assert_eq!(got.sha256, f.sha);
        assert_eq!(
            std::fs::read(f.dest.join(format!("{scheme}.img"))).unwrap(),
            f.img
        );

        // A host key that is not the one known: refused, nothing stored.
        req.name = Some(format!("{scheme}-mitm.img"));
        req.ssh_known_hosts = Some(sshd.wrong_known_hosts.clone());
        let (r, _) = run(&req, &f.dest);
        let e = r.unwrap_err();
        assert!(matches!(e, ImportError::Transfer(_)), "{scheme}: {e}");
        assert!(e.to_string().contains("remote key"), "{scheme}: {e}");
    }
    assert_eq!(list_dir(&f.dest), ["scp.img", "sftp.img"]);
}

// ===== full media (root: mounts a 1 MiB tmpfs) =====

struct Unmount(PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
    }
}

#[test]
#[cfg_attr(not(feature = "test_as_root"), ignore)]
fn full_media_leaves_nothing() {
    let f = fixture();
    // 3 MiB that looks like a SquashFS: more than the media holds.
    let mut big = b"hsqs".to_vec();
    big.resize(3 << 20, 0xA5);
    std::fs::write(f.srv.join("big.img"), &big).unwrap();
    let media = f.dest.parent().unwrap().join("media");
    std::fs::create_dir_all(&media).unwrap();
    nix::mount::mount(
        Some("tmpfs"),
        &media,
        Some("tmpfs"),
        nix::mount::MsFlags::empty(),
        Some("size=1m"),
    )
    .unwrap();
    let _unmount = Unmount(media.clone());
    let http = http_server(&f.srv, None);

    // Size announced: refused as soon as it is known.
    let (r, _) = run(
        &ImportRequest::new(format!("http://127.0.0.1:{}/big.img", http.port)),
        &media,
    );
    match r.unwrap_err() {
        ImportError::NoSpace { needed, available } => {
            assert!(needed > available, "{needed} {available}");
        }
        e => panic!("{e}"),
    }
    assert!(list_dir(&media).is_empty());

    // Size unknown: the media fills up during the transfer.
    let (r, _) = run(
        &ImportRequest::new(format!("http://127.0.0.1:{}/nolength/big.img", http.port)),
        &media,
    );
    let e = r.unwrap_err();
    assert!(matches!(e, ImportError::NoSpace { .. }), "{e}");
    assert!(list_dir(&media).is_empty());

    // What fits still imports.
    let (r, _) = run(
        &ImportRequest::new(format!("http://127.0.0.1:{}/busybox-a.img", http.port)),
        &media,
    );
    r.unwrap();
    assert_eq!(list_dir(&media), ["busybox-a.img"]);
}

// ===== small documents (licence by URL) =====

#[test]
fn fetch_small_document() {
    let f = fixture();
    std::fs::write(f.srv.join("license.txt"), "LICENCE TEXT\n").unwrap();
    let http = http_server(&f.srv, None);
    let req = ImportRequest::new(format!("http://127.0.0.1:{}/license.txt", http.port));
    assert_eq!(image::fetch(&req, 1024).unwrap(), b"LICENCE TEXT\n");
    let e = image::fetch(&req, 4).unwrap_err();
    assert!(e.to_string().contains("more than 4 bytes"), "{e}");
    let req = ImportRequest::new(format!("http://127.0.0.1:{}/nope.txt", http.port));
    let e = image::fetch(&req, 1024).unwrap_err();
    assert!(e.to_string().contains("HTTP 404"), "{e}");
    assert!(matches!(
        image::fetch(&ImportRequest::new("file:///etc/passwd"), 1024),
        Err(ImportError::UnsupportedScheme(_))
    ));
}
