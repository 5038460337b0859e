//! Licence: signatures, device binding, expiry, install and status, and the
//! vendor tool end to end.

use std::process::Command;

use apphost::license::{self, LicenseError, LicenseStatus};
use chrono::{DateTime, Duration, Utc};

fn now() -> DateTime<Utc> {
    license::parse_date("2026-12-03T12:00:00Z").unwrap()
}

struct Vendor {
    sk: ed25519_dalek::SigningKey,
    pub_text: String,
}

fn vendor() -> Vendor {
    let (priv_text, pub_text) = license::keygen();
    Vendor {
        sk: license::parse_private_key(&priv_text).unwrap(),
        pub_text,
    }
}

fn signed(v: &Vendor, device: &str, expires: DateTime<Utc>) -> String {
    let lic = license::new_license(device, now() - Duration::days(1), expires);
    license::sign(&lic, &v.sk).unwrap()
}

#[test]
fn valid_licence_verifies() {
    let v = vendor();
    let text = signed(&v, "dev-1", now() + Duration::days(30));
    let lic = license::verify(&text, &v.pub_text, "dev-1", now()).unwrap();
    assert_eq!(lic.device_id, "dev-1");
    assert_eq!(lic.product, "apphost");
    assert_eq!(lic.feature, "app-hosting");
    assert_eq!(lic.expires, now() + Duration::days(30));
}

#[test]
fn other_vendor_key_is_bad_signature() {
    let v = vendor();
    let other = vendor();
    let text = signed(&other, "dev-1", now() + Duration::days(30));
    assert_eq!(
        license::verify(&text, &v.pub_text, "dev-1", now()),
        Err(LicenseError::BadSignature)
    );
}

#[test]
fn edited_payload_is_bad_signature() {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let v = vendor();
    let text = signed(&v, "dev-1", now() - Duration::days(1));
    // Push the expiry out by editing the payload: the signature must fail.
    let payload_line = text.lines().find(|l| l.starts_with("payload: ")).unwrap();
    let payload = b64.decode(&payload_line["payload: ".len()..]).unwrap();
    let forged = String::from_utf8(payload)
        .unwrap()
        .replace("2026-12-02", "2099-12-02");
    let forged_text = text.replace(payload_line, &format!("payload: {}", b64.encode(forged)));
    assert_ne!(forged_text, text);
    assert_eq!(
        license::verify(&forged_text, &v.pub_text, "dev-1", now()),
        Err(LicenseError::BadSignature)
    );
}

#[test]
fn wrong_device() {
    let v = vendor();
    let text = signed(&v, "dev-1", now() + Duration::days(30));
    assert_eq!(
        license::verify(&text, &v.pub_text, "dev-2", now()),
        Err(LicenseError::WrongDevice {
            expected: "dev-2".into(),
            got: "dev-1".into()
        })
    );
}

#[test]
fn expired() {
    let v = vendor();
    let text = signed(&v, "dev-1", now() - Duration::hours(1));
    let e = license::verify(&text, &v.pub_text, "dev-1", now()).unwrap_err();
    assert_eq!(
        e,
        LicenseError::Expired {
            at: "2026-12-03T11:00:00Z".into()
        }
    );
    assert!(e.to_string().contains("expired"), "{e}");
}

#[test]
fn garbage_is_bad_format() {
    let v = vendor();
    for text in [
        "",
        "hello",
        "-----BEGIN APPHOST LICENSE-----\npayload: !!!\nsignature: AA==\n-----END APPHOST LICENSE-----\n",
        "-----BEGIN APPHOST LICENSE-----\npayload: AA==\n-----END APPHOST LICENSE-----\n",
    ] {
        let e = license::verify(text, &v.pub_text, "dev-1", now()).unwrap_err();
        assert!(matches!(e, LicenseError::BadFormat(_)), "{text:?}: {e}");
    }
}

#[test]
fn install_and_status() {
    let v = vendor();
    let dir = tempfile::tempdir().unwrap();
    let key = Some(v.pub_text.as_str());

    assert_eq!(
        license::status(dir.path(), None, "dev-1", true, now()),
        LicenseStatus::NotRequired
    );
    assert!(license::feature_enabled_at_start(dir.path(), None, "dev-1", now()).0);
    assert_eq!(
        license::status(dir.path(), key, "dev-1", false, now()),
        LicenseStatus::Missing
    );
    assert!(!license::feature_enabled_at_start(dir.path(), key, "dev-1", now()).0);

    // A bad licence is refused and nothing is stored.
    let bad = signed(&v, "dev-2", now() + Duration::days(1));
    assert!(matches!(
        license::install(dir.path(), &bad, key, "dev-1", now()),
        Err(LicenseError::WrongDevice { .. })
    ));
    assert!(!license::license_path(dir.path()).exists());
    assert_eq!(
        license::install(dir.path(), &bad, None, "dev-1", now()),
        Err(LicenseError::NoKeyConfigured)
    );

    let good = signed(&v, "dev-1", now() + Duration::days(1));
    license::install(dir.path(), &good, key, "dev-1", now()).unwrap();
    assert_eq!(
        std::fs::read_to_string(license::license_path(dir.path())).unwrap(),
        good
    );
    // Installed while running: takes effect at the next start.
    let st = license::status(dir.path(), key, "dev-1", false, now());
    assert_eq!(st.as_str(), "pending-restart");
    // At the next start it is on.
    let (on, st) = license::feature_enabled_at_start(dir.path(), key, "dev-1", now());
    assert!(on);
    assert_eq!(st.as_str(), "valid");
    // Two days later it has expired.
    let later = now() + Duration::days(2);
    let st = license::status(dir.path(), key, "dev-1", true, later);
    assert!(
        matches!(st, LicenseStatus::Invalid(LicenseError::Expired { .. })),
        "{st}"
    );
    assert!(!license::feature_enabled_at_start(dir.path(), key, "dev-1", later).0);
    // Only the licence file is left (no temporary files).
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn device_id_from_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("machine-id");
    std::fs::write(&p, "0123456789abcdef\n").unwrap();
    assert_eq!(license::device_id(&p).unwrap(), "0123456789abcdef");
    std::fs::write(&p, "\n").unwrap();
    assert!(license::device_id(&p).is_err());
}

/// The vendor tool: keygen, sign, verify, and the agent's verify accepts it.
#[test]
fn vendor_tool_round_trip() {
    let tool = env!("CARGO_BIN_EXE_apphost-license");
    let dir = tempfile::tempdir().unwrap();
    let sk = dir.path().join("vendor.key");
    let pk = dir.path().join("vendor.pub");
    let st = Command::new(tool)
        .arg("keygen")
        .arg(&sk)
        .arg(&pk)
        .status()
        .unwrap();
    assert!(st.success());
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&sk).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let out = Command::new(tool)
        .args(["sign", "--key"])
        .arg(&sk)
        .args(["--device", "dev-9", "--expires", "2099-01-01"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let pub_text = std::fs::read_to_string(&pk).unwrap();
    let lic = license::verify(&text, &pub_text, "dev-9", now()).unwrap();
    assert_eq!(lic.expires.to_rfc3339(), "2099-01-01T23:59:59+00:00");

    let lf = dir.path().join("license.txt");
    std::fs::write(&lf, &text).unwrap();
    let out = Command::new(tool)
        .args(["verify", "--pub"])
        .arg(&pk)
        .args(["--device", "dev-8"])
        .arg(&lf)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("dev-9"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
