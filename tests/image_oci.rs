//! OCI and docker archives built here (tar crate), flattened into SquashFS,
//! and the result inspected with unsquashfs.

mod image_support;

use std::path::Path;
use std::process::Command;

use apphost::image::{self, oci, ConvertError};
use image_support::*;

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Everything the two layers say must be in the image, and nothing they
/// whited out.
fn check_flattened(img: &Path) {
    let l = list_squashfs(img);
    let get = |p: &str| {
        l.get(p)
            .unwrap_or_else(|| panic!("{p} missing from {l:#?}"))
    };

    assert_eq!(get("/bin/busybox").0, "-rwxr-xr-x");
    assert_eq!(get("/bin/sh").2.as_deref(), Some("busybox"), "symlink kept");
    assert_eq!(get("/bin/echo").2.as_deref(), Some("busybox"));
    assert_eq!(get("/bin/ls").0, "-rwxr-xr-x", "hard link kept");
    assert_eq!(get("/bin/setuid-tool").0, "-rwsr-xr-x", "setuid bit kept");
    assert_eq!(get("/etc/keep").0, "-rw-r-----");
    assert_eq!(get("/home/user").0, "drwx------");
    assert_eq!(get("/home/user/file").0, "-rw-------");
    if is_root() {
        // Ownership is kept (no -all-root).
        assert_eq!(get("/bin/busybox").1, "0/0");
        assert_eq!(get("/etc/keep").1, "0/42");
        assert_eq!(get("/home/user").1, "1000/1000");
        assert_eq!(get("/home/user/file").1, "1000/1000");
    }
    // Whiteouts applied; the markers themselves are not in the image.
    assert!(!l.contains_key("/etc/remove-me"), "whiteout not applied");
    assert!(!l.contains_key("/etc/.wh.remove-me"));
    assert!(
        !l.contains_key("/opt/data/a"),
        "opaque whiteout not applied"
    );
    assert!(
        !l.contains_key("/opt/data/b"),
        "opaque whiteout not applied"
    );
    assert!(!l.contains_key("/opt/data/.wh..wh..opq"));
    // What the upper layer adds survives, even next to its opaque marker.
    assert!(l.contains_key("/opt/data/c"), "same-layer file lost");
    assert!(l.contains_key("/etc/hostname"));

    // The config beside it.
    let cfg_path = image::config_path(img);
    let cfg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&cfg_path).unwrap()).unwrap();
    assert_eq!(
        cfg["Env"],
        serde_json::json!(["PATH=/bin", "GREETING=hello"])
    );
    assert_eq!(cfg["Entrypoint"], serde_json::json!(["/bin/sh", "-c"]));
    assert_eq!(cfg["Cmd"], serde_json::json!(["echo $GREETING"]));
    assert_eq!(cfg["WorkingDir"], "/opt");
    assert!(cfg.get("Labels").is_none());
    let typed = image::read_config(img).unwrap().unwrap();
    assert_eq!(typed.working_dir.as_deref(), Some("/opt"));

    // The flattened tree works: unpack it and run its shell.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("r");
    let st = Command::new("unsquashfs")
        .args(["-q", "-n", "-d"])
        .arg(&root)
        .arg(img)
        .status()
        .unwrap();
    assert!(st.success());
    let out = Command::new(root.join("bin/sh"))
        .args(["-c", "echo flattened-ok; cat /dev/null"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "flattened-ok");
    assert_eq!(std::fs::read(root.join("opt/data/c")).unwrap(), b"c\n");
}

#[test]
fn docker_archive_is_flattened() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("busybox.tar");
    std::fs::write(&archive, docker_archive()).unwrap();
    assert_eq!(
        oci::detect(&archive).unwrap(),
        Some(oci::ArchiveKind::Docker)
    );
    let img = dir.path().join("busybox.img");
    let cfg = oci::convert(&archive, &img).unwrap();
    assert_eq!(cfg.entrypoint, Some(vec!["/bin/sh".into(), "-c".into()]));
    check_flattened(&img);
    // Only the archive, the image and its config: no scratch left.
    assert_eq!(
        list_dir(dir.path()),
        ["busybox.img", "busybox.json", "busybox.tar"]
    );
}

/// The offline CLI: `apphostd image convert IN OUT` (no config, no agent).
#[test]
fn apphostd_image_convert_cli() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("busybox.tar");
    std::fs::write(&archive, oci_archive(false)).unwrap();
    let img = dir.path().join("out.img");
    let out = Command::new(env!("CARGO_BIN_EXE_apphostd"))
        .args(["image", "convert"])
        .arg(&archive)
        .arg(&img)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("out.img") && stdout.contains("Entrypoint"),
        "{stdout}"
    );
    check_flattened(&img);
    // Not an archive: a failure exit naming the input.
    let junk = dir.path().join("junk.tar");
    std::fs::write(&junk, b"junk").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_apphostd"))
        .args(["image", "convert"])
        .arg(&junk)
        .arg(dir.path().join("junk.img"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("junk.tar"));
    assert!(!dir.path().join("junk.img").exists());
}

#[test]
fn oci_archive_is_flattened() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("busybox-oci.tar");
    std::fs::write(&archive, oci_archive(false)).unwrap();
    assert_eq!(oci::detect(&archive).unwrap(), Some(oci::ArchiveKind::Oci));
    let img = dir.path().join("app.img");
    oci::convert(&archive, &img).unwrap();
    check_flattened(&img);
    assert_eq!(
        list_dir(dir.path()),
        ["app.img", "app.json", "busybox-oci.tar"]
    );
}

#[test]
fn gzipped_oci_archive_is_flattened() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("busybox-oci.tar.gz");
    std::fs::write(&archive, gzip(&oci_archive(false))).unwrap();
    let img = dir.path().join("app.img");
    oci::convert(&archive, &img).unwrap();
    check_flattened(&img);
}

#[test]
fn corrupt_layer_fails_digest_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("bad.tar");
    std::fs::write(&archive, oci_archive(true)).unwrap();
    let e = oci::convert(&archive, &dir.path().join("bad.img")).unwrap_err();
    assert!(matches!(e, ConvertError::DigestMismatch { .. }), "{e}");
    assert_eq!(list_dir(dir.path()), ["bad.tar"]);
}

#[test]
fn not_an_archive() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("x.tar");
    // A valid tar, but no image layout in it.
    std::fs::write(
        &archive,
        Layer::new().file("hello", 0o644, 0, 0, b"hi").finish(),
    )
    .unwrap();
    let e = oci::convert(&archive, &dir.path().join("x.img")).unwrap_err();
    assert!(matches!(e, ConvertError::NotAnArchive(_)), "{e}");
    assert_eq!(list_dir(dir.path()), ["x.tar"]);
}

#[test]
fn layer_escaping_the_root_is_refused() {
    // A layer whose member climbs out with "..": the tar crate's builder
    // refuses such names, so write the header bytes by hand.
    let mut h = tar::Header::new_old();
    {
        let name = b"../../escaped";
        h.as_old_mut().name[..name.len()].copy_from_slice(name);
    }
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o644);
    h.set_size(2);
    h.set_cksum();
    let mut layer = h.as_bytes().to_vec();
    layer.extend_from_slice(b"x\n");
    layer.resize(layer.len() + 510, 0);
    layer.extend_from_slice(&[0u8; 1024]);

    let config = image_config_json(&[]);
    let manifest = serde_json::to_vec(&serde_json::json!([
        {"Config": "c.json", "Layers": ["l/layer.tar"]}
    ]))
    .unwrap();
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in [
        ("c.json", config),
        ("l/layer.tar", layer),
        ("manifest.json", manifest),
    ] {
        let mut h = tar::Header::new_ustar();
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        b.append_data(&mut h, name, &data[..]).unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("a/b");
    std::fs::create_dir_all(&work).unwrap();
    let archive = work.join("evil.tar");
    std::fs::write(&archive, b.into_inner().unwrap()).unwrap();
    let e = oci::convert(&archive, &work.join("evil.img")).unwrap_err();
    assert!(matches!(e, ConvertError::Format(_)), "{e}");
    assert!(!dir.path().join("escaped").exists());
    assert!(!dir.path().join("a/escaped").exists());
    assert_eq!(list_dir(&work), ["evil.tar"]);
}

#[test]
fn absolute_symlink_cannot_reach_the_host() {
    // Layer 1 points bin at a host directory; layer 2 whites out a file
    // there and adds one. Neither may touch the host.
    let dir = tempfile::tempdir().unwrap();
    let host = dir.path().join("host");
    std::fs::create_dir_all(&host).unwrap();
    std::fs::write(host.join("canary"), b"alive").unwrap();
    let l1 = Layer::new().symlink("bin", host.to_str().unwrap()).finish();
    let l2 = Layer::new()
        .file("bin/.wh.canary", 0o644, 0, 0, b"")
        .file("bin/new", 0o644, 0, 0, b"x")
        .finish();
    let manifest = serde_json::to_vec(&serde_json::json!([
        {"Config": "c.json", "Layers": ["1/layer.tar", "2/layer.tar"]}
    ]))
    .unwrap();
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in [
        ("c.json", image_config_json(&[])),
        ("1/layer.tar", l1),
        ("2/layer.tar", l2),
        ("manifest.json", manifest),
    ] {
        let mut h = tar::Header::new_ustar();
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        b.append_data(&mut h, name, &data[..]).unwrap();
    }
    let work = dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let archive = work.join("evil.tar");
    std::fs::write(&archive, b.into_inner().unwrap()).unwrap();
    let r = oci::convert(&archive, &work.join("evil.img"));
    assert!(r.is_err(), "writing through an absolute symlink must fail");
    assert_eq!(list_dir(&host), ["canary"]);
    assert_eq!(std::fs::read(host.join("canary")).unwrap(), b"alive");
    assert_eq!(list_dir(&work), ["evil.tar"]);
}
