//! The licence that enables the app-hosting feature (RPC `install-license`).
//!
//! A licence is a small text file signed by the vendor with Ed25519:
//!
//! ```text
//! -----BEGIN APPHOST LICENSE-----
//! payload: <base64 of the JSON payload>
//! signature: <base64 of the 64-byte Ed25519 signature of the payload bytes>
//! -----END APPHOST LICENSE-----
//! ```
//!
//! The payload is `{"product":"apphost","feature":"app-hosting",
//! "device-id":"…","issued":"RFC 3339","expires":"RFC 3339"}`. The signature
//! covers the exact decoded payload bytes, so no JSON canonicalisation is
//! needed. Keys are 32 raw bytes in base64, optionally armoured
//! (`-----BEGIN APPHOST PUBLIC KEY-----` … `-----END …-----`).
//!
//! The agent is built or configured with the vendor's public key. With no key
//! configured no licence is required. With a key, the feature is enabled when
//! a valid licence for this device was installed when the agent started; a
//! licence installed while running takes effect at the next start
//! (`pending-restart`).

use std::fmt;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use chrono::{DateTime, SecondsFormat, Utc};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

pub const PRODUCT: &str = "apphost";
pub const FEATURE: &str = "app-hosting";
/// File name of the installed licence in the state directory.
pub const LICENSE_FILE: &str = "license";
/// Where the device identity comes from by default.
pub const DEFAULT_DEVICE_ID_FILE: &str = "/etc/machine-id";

const BEGIN: &str = "-----BEGIN APPHOST LICENSE-----";
const END: &str = "-----END APPHOST LICENSE-----";
/// Largest licence text accepted (they are a few hundred bytes).
const MAX_LEN: usize = 64 * 1024;

/// A licence's content (the signed payload).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct License {
    pub product: String,
    pub feature: String,
    pub device_id: String,
    pub issued: DateTime<Utc>,
    pub expires: DateTime<Utc>,
}

/// The payload as JSON: dates as RFC 3339 strings.
#[derive(Serialize, Deserialize)]
struct Payload {
    product: String,
    feature: String,
    #[serde(rename = "device-id")]
    device_id: String,
    issued: String,
    expires: String,
}

fn rfc3339(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

impl License {
    fn to_payload(&self) -> Payload {
        Payload {
            product: self.product.clone(),
            feature: self.feature.clone(),
            device_id: self.device_id.clone(),
            issued: rfc3339(&self.issued),
            expires: rfc3339(&self.expires),
        }
    }

    fn from_payload(p: Payload) -> Result<License, LicenseError> {
        let date = |name: &str, s: &str| {
            DateTime::parse_from_rfc3339(s)
                .map(|d| d.with_timezone(&Utc))
                .map_err(|e| LicenseError::BadFormat(format!("{name} {s:?}: {e}")))
        };
        Ok(License {
            issued: date("issued", &p.issued)?,
            expires: date("expires", &p.expires)?,
            product: p.product,
            feature: p.feature,
            device_id: p.device_id,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LicenseError {
    #[error("malformed licence: {0}")]
    BadFormat(String),
    #[error("unusable licence key: {0}")]
    BadKey(String),
    #[error("licence signature is not valid")]
    BadSignature,
    #[error("licence is for device {got:?}, this device is {expected:?}")]
    WrongDevice { expected: String, got: String },
    #[error("licence expired at {at}")]
    Expired { at: String },
    #[error("no licence key is configured: this agent needs no licence")]
    NoKeyConfigured,
    #[error("cannot store the licence: {0}")]
    Io(String),
}

// ===== keys =====

/// Decodes a key: base64 of 32 bytes, optionally between `-----BEGIN …` and
/// `-----END …` lines (whitespace ignored).
fn decode_key(text: &str) -> Result<[u8; 32], LicenseError> {
    let b64: String = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let bytes = B64
        .decode(b64.as_bytes())
        .map_err(|e| LicenseError::BadKey(format!("not base64: {e}")))?;
    bytes
        .try_into()
        .map_err(|b: Vec<u8>| LicenseError::BadKey(format!("{} bytes, 32 expected", b.len())))
}

/// Parses the vendor's public key (base64 or armoured).
pub fn parse_public_key(text: &str) -> Result<VerifyingKey, LicenseError> {
    VerifyingKey::from_bytes(&decode_key(text)?)
        .map_err(|e| LicenseError::BadKey(format!("not an Ed25519 public key: {e}")))
}

/// Parses a private (signing) key as written by [`keygen`].
pub fn parse_private_key(text: &str) -> Result<SigningKey, LicenseError> {
    Ok(SigningKey::from_bytes(&decode_key(text)?))
}

fn armour(kind: &str, bytes: &[u8]) -> String {
    format!(
        "-----BEGIN APPHOST {kind}-----\n{}\n-----END APPHOST {kind}-----\n",
        B64.encode(bytes)
    )
}

/// A new key pair as armoured text: (private, public).
pub fn keygen() -> (String, String) {
    let mut seed = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut seed);
    let key = SigningKey::from_bytes(&seed);
    (
        armour("PRIVATE KEY", &seed),
        armour("PUBLIC KEY", key.verifying_key().as_bytes()),
    )
}

// ===== signing and verifying =====

/// Signs `license` with `key`, giving the licence text.
pub fn sign(license: &License, key: &SigningKey) -> Result<String, LicenseError> {
    let payload = serde_json::to_vec(&license.to_payload())
        .map_err(|e| LicenseError::BadFormat(e.to_string()))?;
    let sig = key.sign(&payload);
    Ok(format!(
        "{BEGIN}\npayload: {}\nsignature: {}\n{END}\n",
        B64.encode(&payload),
        B64.encode(sig.to_bytes())
    ))
}

/// A licence for `device_id` valid from `issued` until `expires`.
pub fn new_license(device_id: &str, issued: DateTime<Utc>, expires: DateTime<Utc>) -> License {
    License {
        product: PRODUCT.into(),
        feature: FEATURE.into(),
        device_id: device_id.into(),
        issued,
        expires,
    }
}

/// Checks a licence text: format, signature by `public_key`, product and
/// feature, device, expiry (in that order, so that each failure is told
/// apart: a forged licence is `BadSignature` whatever it claims).
pub fn verify(
    content: &str,
    public_key: &str,
    device_id: &str,
    now: DateTime<Utc>,
) -> Result<License, LicenseError> {
    let key = parse_public_key(public_key)?;
    if content.len() > MAX_LEN {
        return Err(LicenseError::BadFormat("too large".into()));
    }
    let lines: Vec<&str> = content
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let begin = lines
        .iter()
        .position(|l| *l == BEGIN)
        .ok_or_else(|| LicenseError::BadFormat(format!("no {BEGIN} line")))?;
    let end = lines
        .iter()
        .position(|l| *l == END)
        .filter(|e| *e > begin)
        .ok_or_else(|| LicenseError::BadFormat(format!("no {END} line")))?;
    let field = |name: &str| -> Result<Vec<u8>, LicenseError> {
        let prefix = format!("{name}:");
        let value = lines[begin + 1..end]
            .iter()
            .find_map(|l| l.strip_prefix(&prefix))
            .ok_or_else(|| LicenseError::BadFormat(format!("no {name} line")))?;
        B64.decode(value.trim().as_bytes())
            .map_err(|e| LicenseError::BadFormat(format!("{name} is not base64: {e}")))
    };
    let payload = field("payload")?;
    let sig_bytes = field("signature")?;
    let sig = Signature::from_slice(&sig_bytes)
        .map_err(|_| LicenseError::BadFormat("signature has the wrong length".into()))?;
    key.verify_strict(&payload, &sig)
        .map_err(|_| LicenseError::BadSignature)?;
    let lic = License::from_payload(
        serde_json::from_slice(&payload)
            .map_err(|e| LicenseError::BadFormat(format!("payload: {e}")))?,
    )?;
    if lic.product != PRODUCT || lic.feature != FEATURE {
        return Err(LicenseError::BadFormat(format!(
            "licence is for {}/{}, not {PRODUCT}/{FEATURE}",
            lic.product, lic.feature
        )));
    }
    if lic.device_id != device_id {
        return Err(LicenseError::WrongDevice {
            expected: device_id.to_string(),
            got: lic.device_id,
        });
    }
    if now >= lic.expires {
        return Err(LicenseError::Expired {
            at: rfc3339(&lic.expires),
        });
    }
    Ok(lic)
}

/// Parses `2027-12-31T23:59:59Z` (any RFC 3339) or a plain `2027-12-31`
/// (meaning the end of that day, UTC).
pub fn parse_date(s: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(d) = DateTime::parse_from_rfc3339(s) {
        return Ok(d.with_timezone(&Utc));
    }
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(23, 59, 59))
        .map(|dt| dt.and_utc())
        .ok_or_else(|| format!("{s:?} is not an RFC 3339 date-time or YYYY-MM-DD"))
}

// ===== device identity =====

/// The device identity: the first line of `path` (default `/etc/machine-id`),
/// trimmed.
pub fn device_id(path: &Path) -> io::Result<String> {
    let text = fs::read_to_string(path)?;
    let id = text.lines().next().unwrap_or("").trim().to_string();
    if id.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{} is empty", path.display()),
        ));
    }
    Ok(id)
}

// ===== installed licence =====

pub fn license_path(state_dir: &Path) -> PathBuf {
    state_dir.join(LICENSE_FILE)
}

/// Verifies `content` and stores it as `state_dir/license` atomically
/// (temporary file, fsync, rename). It takes effect at the next start.
pub fn install(
    state_dir: &Path,
    content: &str,
    public_key: Option<&str>,
    device_id: &str,
    now: DateTime<Utc>,
) -> Result<License, LicenseError> {
    let key = public_key.ok_or(LicenseError::NoKeyConfigured)?;
    let lic = verify(content, key, device_id, now)?;
    let io_err = |e: io::Error| LicenseError::Io(e.to_string());
    fs::create_dir_all(state_dir).map_err(io_err)?;
    let tmp = state_dir.join(format!(".{LICENSE_FILE}.tmp-{}", std::process::id()));
    let write = || -> io::Result<()> {
        let mut f = File::create(&tmp)?;
        f.write_all(content.as_bytes())?;
        f.sync_all()?;
        fs::rename(&tmp, license_path(state_dir))?;
        File::open(state_dir)?.sync_all()
    };
    write().map_err(|e| {
        let _ = fs::remove_file(&tmp);
        io_err(e)
    })?;
    Ok(lic)
}

/// What `show`/operational state reports about the licence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LicenseStatus {
    /// No key configured: the feature needs no licence.
    NotRequired,
    /// A key is configured but no licence is installed.
    Missing,
    /// A valid licence was present at start: the feature is on.
    Valid(License),
    /// A valid licence is installed but was not at start: restart the agent.
    PendingRestart(License),
    /// The installed licence does not verify (why).
    Invalid(LicenseError),
}

impl LicenseStatus {
    /// The word used in operational state.
    pub fn as_str(&self) -> &'static str {
        match self {
            LicenseStatus::NotRequired => "not-required",
            LicenseStatus::Missing => "missing",
            LicenseStatus::Valid(_) => "valid",
            LicenseStatus::PendingRestart(_) => "pending-restart",
            LicenseStatus::Invalid(_) => "invalid",
        }
    }
}

impl fmt::Display for LicenseStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LicenseStatus::Invalid(e) => write!(f, "invalid: {e}"),
            LicenseStatus::Valid(l) | LicenseStatus::PendingRestart(l) => {
                write!(f, "{} (expires {})", self.as_str(), rfc3339(&l.expires))
            }
            _ => f.write_str(self.as_str()),
        }
    }
}

/// The licence's status now. `enabled_at_start` is what
/// [`feature_enabled_at_start`] said when the agent started.
pub fn status(
    state_dir: &Path,
    public_key: Option<&str>,
    device_id: &str,
    enabled_at_start: bool,
    now: DateTime<Utc>,
) -> LicenseStatus {
    let Some(key) = public_key else {
        return LicenseStatus::NotRequired;
    };
    let content = match fs::read_to_string(license_path(state_dir)) {
        Ok(c) => c,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return LicenseStatus::Missing,
        Err(e) => return LicenseStatus::Invalid(LicenseError::Io(e.to_string())),
    };
    match verify(&content, key, device_id, now) {
        Ok(l) if enabled_at_start => LicenseStatus::Valid(l),
        Ok(l) => LicenseStatus::PendingRestart(l),
        Err(e) => LicenseStatus::Invalid(e),
    }
}

/// Decides once, at start, whether the app-hosting feature is on: with no
/// key configured always; otherwise when the installed licence verifies.
/// Returns the decision and the status to report.
pub fn feature_enabled_at_start(
    state_dir: &Path,
    public_key: Option<&str>,
    device_id: &str,
    now: DateTime<Utc>,
) -> (bool, LicenseStatus) {
    let st = status(state_dir, public_key, device_id, true, now);
    let on = matches!(st, LicenseStatus::NotRequired | LicenseStatus::Valid(_));
    (on, st)
}

// ===== the agent's licensing =====

/// The licence as one run of the agent sees it: whether the feature is on
/// was decided once, at start; the status is read anew each time.
#[derive(Debug, Clone)]
pub struct Licensing {
    state_dir: PathBuf,
    public_key: Option<String>,
    /// This device's identity, or why it could not be read.
    device_id: Result<String, String>,
    enabled: bool,
}

impl Licensing {
    /// Decides at start (config `license-key`, `state-dir`; the device
    /// identity from `device_id_file`). An unreadable identity with a key
    /// configured leaves the feature off.
    pub fn at_start(
        state_dir: &Path,
        public_key: Option<String>,
        device_id_file: &Path,
        now: DateTime<Utc>,
    ) -> Licensing {
        let device_id = device_id(device_id_file)
            .map_err(|e| format!("device identity {}: {e}", device_id_file.display()));
        let enabled = match (&public_key, &device_id) {
            (None, _) => true,
            (Some(_), Err(_)) => false,
            (Some(k), Ok(id)) => feature_enabled_at_start(state_dir, Some(k), id, now).0,
        };
        Licensing {
            state_dir: state_dir.to_path_buf(),
            public_key,
            device_id,
            enabled,
        }
    }

    /// Whether Application Hosting is on in this run.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    pub fn device_id(&self) -> Option<&str> {
        self.device_id.as_deref().ok()
    }

    /// The status now (a licence installed since start is `pending-restart`;
    /// one that expired since start is `invalid`).
    pub fn status(&self, now: DateTime<Utc>) -> LicenseStatus {
        if self.public_key.is_none() {
            return LicenseStatus::NotRequired;
        }
        match &self.device_id {
            Ok(id) => status(
                &self.state_dir,
                self.public_key.as_deref(),
                id,
                self.enabled,
                now,
            ),
            Err(e) => LicenseStatus::Invalid(LicenseError::Io(e.clone())),
        }
    }

    /// Verifies and stores a licence (RPC `install-license`).
    pub fn install(&self, content: &str, now: DateTime<Utc>) -> Result<License, LicenseError> {
        let id = self
            .device_id
            .as_deref()
            .map_err(|e| LicenseError::Io(e.clone()))?;
        install(
            &self.state_dir,
            content,
            self.public_key.as_deref(),
            id,
            now,
        )
    }

    /// `/app-hosting-license:license` (state data).
    pub fn state_tree(
        &self,
        now: DateTime<Utc>,
    ) -> Result<yang2::data::DataTree<'static>, crate::error::RpcError> {
        use crate::error::RpcError;
        let st = self.status(now);
        let mut tree = yang2::data::DataTree::new(crate::schema::context());
        let mut set = |leaf: &str, v: &str| {
            tree.new_path(
                &format!("/app-hosting-license:license/{leaf}"),
                Some(v),
                false,
            )
            .map(|_| ())
            .map_err(|e| RpcError::from_yang(&e))
        };
        set("status", st.as_str())?;
        set("enabled", if self.enabled { "true" } else { "false" })?;
        if let Ok(id) = &self.device_id {
            set("device-id", id)?;
        }
        match &st {
            LicenseStatus::Valid(l) | LicenseStatus::PendingRestart(l) => {
                set("expires", &rfc3339(&l.expires))?;
            }
            LicenseStatus::Invalid(e) => set("reason", &e.to_string())?,
            LicenseStatus::NotRequired | LicenseStatus::Missing => {}
        }
        Ok(tree)
    }
}

// ===== rpc-errors =====

impl LicenseError {
    /// The `<rpc-error>` for RPC `install-license`.
    pub fn rpc_error(&self) -> crate::error::RpcError {
        use crate::error::{ErrorTag, RpcError};
        let (tag, app_tag) = match self {
            LicenseError::BadFormat(_) => (ErrorTag::InvalidValue, "license-bad-format"),
            LicenseError::BadKey(_) => (ErrorTag::OperationFailed, "license-bad-key"),
            LicenseError::BadSignature => (ErrorTag::InvalidValue, "license-bad-signature"),
            LicenseError::WrongDevice { .. } => (ErrorTag::InvalidValue, "license-wrong-device"),
            LicenseError::Expired { .. } => (ErrorTag::InvalidValue, "license-expired"),
            LicenseError::NoKeyConfigured => {
                (ErrorTag::OperationNotSupported, "license-not-required")
            }
            LicenseError::Io(_) => (ErrorTag::OperationFailed, "storage-error"),
        };
        RpcError::app(tag, self.to_string()).with_app_tag(app_tag)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(
            parse_date("2027-01-02").unwrap().to_rfc3339(),
            "2027-01-02T23:59:59+00:00"
        );
        assert!(parse_date("2027-01-02T03:04:05+02:00").is_ok());
        assert!(parse_date("tomorrow").is_err());
    }

    #[test]
    fn keys_round_trip() {
        let (priv_text, pub_text) = keygen();
        let sk = parse_private_key(&priv_text).unwrap();
        let pk = parse_public_key(&pub_text).unwrap();
        assert_eq!(sk.verifying_key(), pk);
        // A bare base64 line works too.
        let bare = pub_text.lines().nth(1).unwrap();
        assert_eq!(parse_public_key(bare).unwrap(), pk);
        assert!(matches!(
            parse_public_key("AAAA"),
            Err(LicenseError::BadKey(_))
        ));
    }
}
