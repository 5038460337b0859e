//! Shared by the image tests: loopback servers, test images and archives.
#![allow(dead_code)] // each test crate uses a different part

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use sha2::{Digest, Sha256};

// ===== tools =====

/// Fails (never skips) when a tool the test needs is missing.
pub fn need(bin: &str, apt_package: &str) -> PathBuf {
    let found = if bin.contains('/') {
        Some(PathBuf::from(bin)).filter(|p| p.exists())
    } else {
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
                .map(|d| d.join(bin))
                .find(|p| p.is_file())
        })
    };
    found.unwrap_or_else(|| {
        panic!("{bin} not found: install the Debian package {apt_package} (tools/install-deps.sh)")
    })
}

/// A Python with pyftpdlib: $APPHOST_TEST_PYTHON, the repo's .venv, or python3.
pub fn python_with_pyftpdlib() -> PathBuf {
    let mut candidates = Vec::new();
    if let Some(p) = std::env::var_os("APPHOST_TEST_PYTHON") {
        candidates.push(PathBuf::from(p));
    }
    candidates.push(Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python3"));
    candidates.push(PathBuf::from("python3"));
    for c in &candidates {
        let ok = Command::new(c)
            .args(["-c", "import pyftpdlib"])
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if ok {
            return c.clone();
        }
    }
    panic!(
        "no Python with pyftpdlib (tried {candidates:?}): \
         python3 -m venv .venv && .venv/bin/pip install -r tools/images/requirements.txt"
    )
}

/// The busybox-static binary, checked to be the real thing.
pub fn busybox() -> Vec<u8> {
    let p = need("/bin/busybox", "busybox-static");
    let bytes = std::fs::read(&p).unwrap();
    assert!(
        bytes.starts_with(b"\x7fELF") && bytes.len() > 500_000,
        "/bin/busybox is not the busybox-static binary (reinstall busybox-static)"
    );
    bytes
}

// ===== servers =====

/// A server process on loopback, killed on drop.
pub struct Server {
    child: Child,
    pub port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn servers_py() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/image_support/servers.py")
}

/// Starts a process that prints its port on the first line of stdout.
pub fn spawn_port_printer(mut cmd: Command) -> Server {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {cmd:?}: {e}"));
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(Duration::from_secs(20)).unwrap_or_default();
    let port = line.trim().parse().unwrap_or_else(|_| {
        let _ = child.kill();
        panic!("{cmd:?} did not print its port (got {line:?})")
    });
    Server { child, port }
}

pub fn http_server(dir: &Path, tls: Option<(&Path, &Path)>) -> Server {
    let mut cmd = Command::new(need("python3", "python3"));
    cmd.arg(servers_py()).arg("http").arg(dir);
    if let Some((cert, key)) = tls {
        cmd.arg(cert).arg(key);
    }
    spawn_port_printer(cmd)
}

pub fn ftp_server(dir: &Path, user: &str, pass: &str) -> Server {
    let mut cmd = Command::new(python_with_pyftpdlib());
    cmd.arg(servers_py())
        .arg("ftp")
        .arg(dir)
        .arg(user)
        .arg(pass);
    spawn_port_printer(cmd)
}

/// A free port on 127.0.0.1 (for servers that cannot report theirs).
pub fn free_port(udp: bool) -> u16 {
    if udp {
        std::net::UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    } else {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }
}

/// Waits until a TCP port accepts connections.
pub fn wait_tcp(port: u16) {
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("nothing listens on 127.0.0.1:{port}");
}

/// A self-signed certificate for 127.0.0.1 made with the openssl CLI:
/// (cert, key), the cert doubling as the CA to trust.
pub fn self_signed_cert(dir: &Path) -> (PathBuf, PathBuf) {
    let openssl = need("openssl", "openssl");
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    let out = Command::new(openssl)
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .args([
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (cert, key)
}

// ===== images =====

/// A real SquashFS image holding busybox, built with mksquashfs.
pub fn make_squashfs(work: &Path, name: &str) -> PathBuf {
    let mksquashfs = need("mksquashfs", "squashfs-tools");
    let root = work.join(format!("{name}.root"));
    std::fs::create_dir_all(root.join("bin")).unwrap();
    std::fs::write(root.join("bin/busybox"), busybox()).unwrap();
    std::os::unix::fs::symlink("busybox", root.join("bin/sh")).unwrap();
    let out = work.join(name);
    let st = Command::new(mksquashfs)
        .arg(&root)
        .arg(&out)
        .args(["-noappend", "-no-progress", "-quiet"])
        .status()
        .unwrap();
    assert!(st.success());
    out
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// File names in `dir`, sorted (hidden ones too: a leftover temp file fails).
pub fn list_dir(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

// ===== OCI / docker archives =====

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// Builds a layer tar.
pub struct Layer(tar::Builder<Vec<u8>>);

impl Default for Layer {
    fn default() -> Self {
        Layer::new()
    }
}

impl Layer {
    pub fn new() -> Layer {
        Layer(tar::Builder::new(Vec::new()))
    }

    fn header(kind: tar::EntryType, mode: u32, uid: u64, gid: u64, size: u64) -> tar::Header {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_uid(uid);
        h.set_gid(gid);
        h.set_size(size);
        h.set_mtime(1_700_000_000);
        h
    }

    pub fn dir(mut self, path: &str, mode: u32, uid: u64, gid: u64) -> Self {
        let mut h = Self::header(tar::EntryType::Directory, mode, uid, gid, 0);
        self.0.append_data(&mut h, path, &[][..]).unwrap();
        self
    }

    pub fn file(mut self, path: &str, mode: u32, uid: u64, gid: u64, data: &[u8]) -> Self {
        let mut h = Self::header(tar::EntryType::Regular, mode, uid, gid, data.len() as u64);
        self.0.append_data(&mut h, path, data).unwrap();
        self
    }

    pub fn symlink(mut self, path: &str, target: &str) -> Self {
        let mut h = Self::header(tar::EntryType::Symlink, 0o777, 0, 0, 0);
        self.0.append_link(&mut h, path, target).unwrap();
        self
    }

    pub fn hardlink(mut self, path: &str, target: &str) -> Self {
        let mut h = Self::header(tar::EntryType::Link, 0o755, 0, 0, 0);
        self.0.append_link(&mut h, path, target).unwrap();
        self
    }

    pub fn finish(self) -> Vec<u8> {
        self.0.into_inner().unwrap()
    }
}

/// Layer 1: busybox with applet symlinks and a hard link, a setuid file,
/// files owned by other users, files that layer 2 whites out.
pub fn base_layer() -> Vec<u8> {
    Layer::new()
        .dir("bin/", 0o755, 0, 0)
        .file("bin/busybox", 0o755, 0, 0, &busybox())
        .symlink("bin/sh", "busybox")
        .symlink("bin/echo", "busybox")
        .hardlink("bin/ls", "bin/busybox")
        .file("bin/setuid-tool", 0o4755, 0, 0, b"#!/bin/sh\n")
        .dir("etc/", 0o755, 0, 0)
        .file("etc/remove-me", 0o644, 0, 0, b"bye\n")
        .file("etc/keep", 0o640, 0, 42, b"keep\n")
        .dir("opt/", 0o755, 0, 0)
        .dir("opt/data/", 0o755, 0, 0)
        .file("opt/data/a", 0o644, 0, 0, b"a\n")
        .file("opt/data/b", 0o644, 0, 0, b"b\n")
        .dir("home/", 0o755, 0, 0)
        .dir("home/user/", 0o700, 1000, 1000)
        .file("home/user/file", 0o600, 1000, 1000, b"mine\n")
        .finish()
}

/// Layer 2: a whiteout, an opaque directory (whose new file, listed before
/// the marker, must survive), a new file.
pub fn top_layer() -> Vec<u8> {
    Layer::new()
        .file("etc/.wh.remove-me", 0o644, 0, 0, b"")
        .file("opt/data/c", 0o644, 0, 0, b"c\n")
        .file("opt/data/.wh..wh..opq", 0o644, 0, 0, b"")
        .file("etc/hostname", 0o644, 0, 0, b"app\n")
        .finish()
}

pub fn image_config_json(diff_ids: &[String]) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "Env": ["PATH=/bin", "GREETING=hello"],
            "Entrypoint": ["/bin/sh", "-c"],
            "Cmd": ["echo $GREETING"],
            "WorkingDir": "/opt",
            "Labels": {"a": "b"}
        },
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }))
    .unwrap()
}

fn archive(members: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in members {
        let mut h = tar::Header::new_ustar();
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        h.set_mtime(1_700_000_000);
        b.append_data(&mut h, name, &data[..]).unwrap();
    }
    b.into_inner().unwrap()
}

/// `docker save` layout; layer 2 gzip-compressed to cover both.
pub fn docker_archive() -> Vec<u8> {
    let l1 = base_layer();
    let l2 = top_layer();
    let diff_ids = vec![
        format!("sha256:{}", sha256_hex(&l1)),
        format!("sha256:{}", sha256_hex(&l2)),
    ];
    let config = image_config_json(&diff_ids);
    let config_name = format!("{}.json", sha256_hex(&config));
    let manifest = serde_json::to_vec(&serde_json::json!([{
        "Config": config_name,
        "RepoTags": ["test/busybox:latest"],
        "Layers": ["aaa/layer.tar", "bbb/layer.tar"],
    }]))
    .unwrap();
    archive(&[
        (config_name.clone(), config),
        ("aaa/layer.tar".into(), l1),
        ("bbb/layer.tar".into(), gzip(&l2)),
        ("manifest.json".into(), manifest),
    ])
}

/// OCI image layout; layer 1 gzip (`tar+gzip`), layer 2 plain. `corrupt`
/// flips a byte of layer 2 after its digest was taken.
pub fn oci_archive(corrupt: bool) -> Vec<u8> {
    let l1 = gzip(&base_layer());
    let l2_plain = top_layer();
    let diff_ids = vec![
        format!("sha256:{}", sha256_hex(&base_layer())),
        format!("sha256:{}", sha256_hex(&l2_plain)),
    ];
    let config = image_config_json(&diff_ids);
    let d = |b: &[u8]| format!("sha256:{}", sha256_hex(b));
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": d(&config), "size": config.len()},
        "layers": [
            {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d(&l1), "size": l1.len()},
            {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d(&l2_plain), "size": l2_plain.len()},
        ],
    }))
    .unwrap();
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": d(&manifest), "size": manifest.len(),
             "platform": {"architecture": "amd64", "os": "linux"}},
        ],
    }))
    .unwrap();
    let blob = |b: &[u8]| format!("blobs/sha256/{}", sha256_hex(b));
    let mut l2 = l2_plain.clone();
    if corrupt {
        l2[600] ^= 0x55;
    }
    archive(&[
        (
            "oci-layout".into(),
            br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
        ),
        ("index.json".into(), index),
        (blob(&manifest), manifest.clone()),
        (blob(&config), config.clone()),
        (blob(&l1), l1.clone()),
        (blob(&l2_plain), l2),
    ])
}

/// `unsquashfs -lln` of an image: path (without `squashfs-root`) → the
/// listing line's fields (mode string, "uid/gid", link target).
pub fn list_squashfs(img: &Path) -> BTreeMap<String, (String, String, Option<String>)> {
    let out = Command::new(need("unsquashfs", "squashfs-tools"))
        .arg("-lln")
        .arg(img)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut map = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 6 || !f[5].starts_with("squashfs-root") {
            continue;
        }
        let path = f[5].trim_start_matches("squashfs-root").to_string();
        let target = (f.len() >= 8 && f[6] == "->").then(|| f[7].to_string());
        map.insert(path, (f[0].to_string(), f[1].to_string(), target));
    }
    map
}
