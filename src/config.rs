//! The agent configuration file (`apphostd --config FILE`), TOML.
//!
//! Unknown keys are refused (`deny_unknown_fields`) so that a typo such as
//! `max_sessions` does not silently fall back to a default; the error names
//! the key and its line.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// Default NETCONF over SSH port (RFC 6242 §3).
pub const DEFAULT_LISTEN: &str = "[::]:830";
/// Default maximum NETCONF message size: 16 MiB (DESIGN.md contract).
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 16 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

/// The whole file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Config {
    /// Where the host key and the datastores live.
    #[serde(default = "default_state_dir")]
    pub state_dir: PathBuf,
    #[serde(default)]
    pub netconf: NetconfConfig,
    /// NETCONF users (`[[user]]` tables).
    #[serde(default, rename = "user")]
    pub users: Vec<UserConfig>,
    pub media: Option<MediaConfig>,
    pub yang: Option<YangConfig>,
    pub runtime: Option<RuntimeConfig>,
    /// Licence key enabling the feature (checked by the domain layer).
    pub license_key: Option<String>,
    /// Default tracing filter when `RUST_LOG` is unset (e.g. "info").
    pub log_level: Option<String>,
}

/// `[netconf]`: the SSH listener and session limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct NetconfConfig {
    #[serde(default = "default_listen")]
    pub listen: Vec<SocketAddr>,
    /// Concurrent SSH connections; more wait in the kernel backlog.
    #[serde(default = "default_max_sessions")]
    pub max_sessions: usize,
    /// Seconds without an RPC after which a session is closed (0 = never).
    /// Sessions with a notification subscription are never closed for
    /// idleness.
    #[serde(default = "default_idle_timeout")]
    pub idle_timeout: u64,
    /// Largest accepted NETCONF message in bytes.
    #[serde(default = "default_max_message_size")]
    pub max_message_size: usize,
    /// Seconds a connection may take to authenticate and start the
    /// `netconf` subsystem (like sshd's LoginGraceTime).
    #[serde(default = "default_login_grace")]
    pub login_grace_time: u64,
}

impl Default for NetconfConfig {
    fn default() -> Self {
        NetconfConfig {
            listen: default_listen(),
            max_sessions: default_max_sessions(),
            idle_timeout: default_idle_timeout(),
            max_message_size: default_max_message_size(),
            login_grace_time: default_login_grace(),
        }
    }
}

impl NetconfConfig {
    pub fn idle_timeout(&self) -> Option<Duration> {
        (self.idle_timeout > 0).then(|| Duration::from_secs(self.idle_timeout))
    }
}

/// `[[user]]`: one NETCONF user.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct UserConfig {
    pub name: String,
    /// Plaintext password (development setups).
    pub password: Option<String>,
    /// crypt(3) hash (`$6$`, `$5$`, `$1$`) or an argon2 PHC string.
    pub password_hash: Option<String>,
    /// OpenSSH public key lines.
    #[serde(default)]
    pub authorized_keys: Vec<String>,
    /// NACM groups; may be omitted or empty.
    #[serde(default)]
    pub groups: Vec<String>,
}

/// `[media]`: where media names point to.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct MediaConfig {
    pub external: Option<PathBuf>,
    pub internal: Option<PathBuf>,
    pub usb: Option<PathBuf>,
}

/// `[yang]`: extra YANG modules served as plain datastores.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct YangConfig {
    pub dir: Option<PathBuf>,
    #[serde(default)]
    pub modules: Vec<String>,
}

/// `[runtime]`: the OCI runtime.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RuntimeConfig {
    /// Path of `crun` or `runc`.
    pub binary: Option<PathBuf>,
    /// Runtime state directory (`--root`); absolute.
    pub root: Option<PathBuf>,
    /// Name of the one parent cgroup of all apps (default "apphost").
    pub cgroup: Option<String>,
}

fn default_state_dir() -> PathBuf {
    PathBuf::from("/var/lib/apphostd")
}
fn default_listen() -> Vec<SocketAddr> {
    // A constant that parses: covered by the `defaults` test.
    vec![DEFAULT_LISTEN
        .parse()
        .expect("valid default listen address")]
}
fn default_max_sessions() -> usize {
    32
}
fn default_idle_timeout() -> u64 {
    3600
}
fn default_max_message_size() -> usize {
    DEFAULT_MAX_MESSAGE_SIZE
}
fn default_login_grace() -> u64 {
    120
}

impl Config {
    /// Reads and checks a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses configuration text; `path` is only used in messages.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        // toml's message names the unknown key, its line and the expected ones.
        let cfg: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        cfg.check().map_err(|message| ConfigError::Invalid {
            path: path.to_owned(),
            message,
        })?;
        Ok(cfg)
    }

    fn check(&self) -> Result<(), String> {
        if self.netconf.listen.is_empty() {
            return Err("netconf.listen: at least one address is needed".into());
        }
        if self.netconf.max_sessions == 0 {
            return Err("netconf.max-sessions: must be at least 1".into());
        }
        if self.netconf.max_message_size < 1024 {
            return Err("netconf.max-message-size: must be at least 1024".into());
        }
        if let Some(rt) = &self.runtime {
            for (key, p) in [("runtime.binary", &rt.binary), ("runtime.root", &rt.root)] {
                if p.as_ref().is_some_and(|p| !p.is_absolute()) {
                    return Err(format!("{key}: must be an absolute path"));
                }
            }
            if let Some(c) = &rt.cgroup {
                crate::os::validate_name(c).map_err(|e| format!("runtime.cgroup: {e}"))?;
            }
        }
        let mut seen = std::collections::HashSet::new();
        for u in &self.users {
            if u.name.is_empty() {
                return Err("user.name: must not be empty".into());
            }
            if !seen.insert(u.name.as_str()) {
                return Err(format!("user {}: defined twice", u.name));
            }
            if u.password.is_some() && u.password_hash.is_some() {
                return Err(format!(
                    "user {}: give either password or password-hash",
                    u.name
                ));
            }
            if let Some(h) = &u.password_hash {
                if !crate::ssh::auth::hash_supported(h) {
                    return Err(format!(
                        "user {}: password-hash must be a crypt $6$, $5$, $1$ hash or an argon2 PHC string",
                        u.name
                    ));
                }
            }
            for k in &u.authorized_keys {
                russh::keys::PublicKey::from_openssh(k.trim())
                    .map_err(|e| format!("user {}: authorized-keys entry: {e}", u.name))?;
            }
        }
        Ok(())
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            state_dir: default_state_dir(),
            netconf: NetconfConfig::default(),
            users: Vec::new(),
            media: None,
            yang: None,
            runtime: None,
            license_key: None,
            log_level: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("test.toml"))
    }

    #[test]
    fn defaults() {
        let c = parse("").unwrap();
        assert_eq!(
            c.netconf.listen,
            vec!["[::]:830".parse::<SocketAddr>().unwrap()]
        );
        assert_eq!(c.netconf.max_sessions, 32);
        assert_eq!(c.netconf.max_message_size, 16 * 1024 * 1024);
        assert_eq!(c.state_dir, PathBuf::from("/var/lib/apphostd"));
    }

    #[test]
    fn full_example() {
        let c = parse(
            r#"
state-dir = "/tmp/x"
log-level = "debug"
[netconf]
listen = ["127.0.0.1:830"]
max-sessions = 4
idle-timeout = 0
max-message-size = 65536
[[user]]
name = "admin"
password = "admin"
groups = ["admin"]
[[user]]
name = "oper"
password-hash = "$5$rounds=5000$abc$Xy"
authorized-keys = ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJtSCPi55ytisBSpDzyaQPZCGxDVIciqVOTCKd9EHRJl test"]
[media]
external = "/media/external"
[yang]
dir = "/path"
modules = ["site-model"]
[runtime]
binary = "/usr/bin/crun"
"#,
        )
        .unwrap();
        assert_eq!(c.netconf.max_sessions, 4);
        assert_eq!(c.netconf.idle_timeout(), None);
        assert_eq!(c.users.len(), 2);
        assert!(c.users[1].groups.is_empty());
        assert_eq!(c.users[1].authorized_keys.len(), 1);
        assert_eq!(c.yang.unwrap().modules, vec!["site-model".to_string()]);
    }

    #[test]
    fn unknown_key_is_named() {
        let e = parse("[netconf]\nmax_sessions = 3\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("max_sessions"), "{e}");
        let e = parse("bogus = 1\n").unwrap_err().to_string();
        assert!(e.contains("bogus"), "{e}");
    }

    #[test]
    fn bad_values_refused() {
        assert!(parse("[[user]]\nname=\"a\"\npassword-hash=\"plain\"\n").is_err());
        assert!(parse("[[user]]\nname=\"a\"\nauthorized-keys=[\"ssh-ed25519 nope\"]\n").is_err());
        assert!(parse("[[user]]\nname=\"a\"\n[[user]]\nname=\"a\"\n").is_err());
        assert!(parse("[netconf]\nlisten = []\n").is_err());
    }
}
