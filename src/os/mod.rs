//! The OS layer: everything that touches the kernel or an external program on
//! behalf of the reconciler. Each concern is a trait so the domain layer can
//! be tested with fakes; the real implementations live in the submodules and
//! are exercised as root by `tests/os_root.rs`.
//!
//! - [`oci`]: OCI `config.json` generation (pure).
//! - [`runtime`]: crun/runc driven through `std::process::Command`.
//! - [`rootfs`]: SquashFS loop mount + tmpfs + overlay.
//! - [`cgroup`]: the shared parent group and its CPU/RAM limits, v1 and v2.
//! - [`net`]: `ip netns`-compatible namespaces, veth pairs, port moves.

use std::path::{Path, PathBuf};

pub mod cgroup;
pub mod mountinfo;
pub mod net;
pub mod oci;
pub mod rootfs;
pub mod runtime;

/// Errors of the OS layer. Every variant says what was being done, so a
/// message reaching an operator names the failing step.
#[derive(Debug, thiserror::Error)]
pub enum OsError {
    #[error("{op}: {source}")]
    Io {
        op: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{op}: {source}")]
    Sys {
        op: String,
        #[source]
        source: nix::Error,
    },
    /// An external program (crun/runc) failed; carries its stderr.
    #[error("{0}")]
    Command(String),
    #[error("netlink: {0}")]
    Netlink(String),
    #[error("OCI spec: {0}")]
    Spec(String),
    /// A name that would become a path or an interface name is unusable.
    #[error("invalid name {name:?}: {reason}")]
    InvalidName { name: String, reason: &'static str },
    #[error("cgroup: {0}")]
    Cgroup(String),
}

impl OsError {
    pub(crate) fn io(op: impl Into<String>, source: std::io::Error) -> Self {
        OsError::Io {
            op: op.into(),
            source,
        }
    }

    pub(crate) fn sys(op: impl Into<String>, source: nix::Error) -> Self {
        OsError::Sys {
            op: op.into(),
            source,
        }
    }
}

/// A host directory shared into the container (media shares).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindMount {
    pub source: PathBuf,
    pub destination: String,
    pub readonly: bool,
}

/// Everything [`oci::write_bundle`] needs to describe one container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleSpec {
    /// Container id = app name.
    pub id: String,
    /// The overlay mount point.
    pub rootfs: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// "/" unless the image config says otherwise.
    pub cwd: String,
    /// "CAP_NET_ADMIN", ...: exactly these end up effective in the container.
    pub capabilities: Vec<String>,
    pub hostname: String,
    /// Some(/run/netns/NAME) or None = the host's network namespace.
    pub netns: Option<PathBuf>,
    /// e.g. "/apphost/NAME" (below the shared parent group).
    pub cgroup_path: String,
    /// Media shares.
    pub mounts: Vec<BindMount>,
}

/// One container as the runtime reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerState {
    pub id: String,
    pub pid: u32,
    /// "created" | "running" | "stopped" | "paused"
    pub status: String,
}

/// An OCI runtime (crun, runc).
pub trait Runtime: Send + Sync {
    /// `run -d`, stdout/stderr to `log`; returns the host pid.
    fn run(&self, id: &str, bundle: &Path, log: &Path) -> Result<u32, OsError>;
    /// None: unknown id.
    fn state(&self, id: &str) -> Result<Option<ContainerState>, OsError>;
    fn list(&self) -> Result<Vec<ContainerState>, OsError>;
    fn kill(&self, id: &str, signal: i32) -> Result<(), OsError>;
    /// Force; idempotent.
    fn delete(&self, id: &str) -> Result<(), OsError>;
    /// The command that attaches to a shell or program in the container,
    /// with `env` added to its environment there (`TERM` of an attached
    /// terminal).
    fn exec_command(
        &self,
        id: &str,
        tty: bool,
        env: &[(String, String)],
        argv: &[String],
    ) -> std::process::Command;
}

/// The container's root filesystem: image read-only below a tmpfs overlay.
pub trait Rootfs: Send + Sync {
    /// dir/lower: image loop-mounted ro; dir/upper: tmpfs (size bytes)
    /// holding upper+work; dir/rootfs: overlay. Returns the rootfs path.
    fn mount(&self, image: &Path, dir: &Path, tmpfs_size: u64) -> Result<PathBuf, OsError>;
    /// Idempotent; detaches the loop device.
    fn unmount(&self, dir: &Path) -> Result<(), OsError>;
    fn is_mounted(&self, dir: &Path) -> bool;
}

/// The parent cgroup shared by all apps.
pub trait Cgroups: Send + Sync {
    /// e.g. "apphost"
    fn parent(&self) -> &str;
    /// Live, on the parent group, v1 and v2.
    fn set_limits(&self, cpu_percent: u8, ram_percent: u8) -> Result<(), OsError>;
    /// Leftover app groups, every hierarchy.
    fn remove_app(&self, app: &str) -> Result<(), OsError>;
    /// (memory bytes, cpu ns)
    fn usage(&self, app: &str) -> Option<(u64, u64)>;
}

/// Network namespaces and links.
pub trait Net: Send + Sync {
    /// /run/netns/NAME (ip-netns compatible)
    fn netns_path(&self, name: &str) -> PathBuf;
    /// Idempotent.
    fn create_netns(&self, name: &str) -> Result<(), OsError>;
    /// Idempotent.
    fn delete_netns(&self, name: &str) -> Result<(), OsError>;
    /// Both ends up; `peer` is created directly inside `netns`.
    fn add_veth(&self, host: &str, peer: &str, netns: &str) -> Result<(), OsError>;
    /// Host netns; idempotent.
    fn del_link(&self, name: &str) -> Result<(), OsError>;
    /// Renamed, up.
    fn move_port(&self, host_name: &str, netns: &str, new_name: &str) -> Result<(), OsError>;
    fn return_port(&self, netns: &str, app_name: &str, host_name: &str) -> Result<(), OsError>;
    /// In the agent's netns.
    fn link_exists(&self, name: &str) -> bool;
}

/// The real OS, or fakes, bundled for the reconciler.
pub struct Os {
    pub runtime: Box<dyn Runtime>,
    pub rootfs: Box<dyn Rootfs>,
    pub cgroups: Box<dyn Cgroups>,
    pub net: Box<dyn Net>,
}

/// What [`Os::real`] needs to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OsConfig {
    /// Absolute path of crun or runc.
    pub runtime_binary: PathBuf,
    /// Absolute state directory for the runtime (`--root`).
    pub runtime_root: PathBuf,
    /// Name of the parent cgroup, e.g. "apphost".
    pub cgroup_parent: String,
}

impl Default for OsConfig {
    fn default() -> Self {
        OsConfig {
            runtime_binary: PathBuf::from("/usr/bin/crun"),
            runtime_root: PathBuf::from("/run/apphost/crun"),
            cgroup_parent: "apphost".to_string(),
        }
    }
}

impl Os {
    /// The real implementations. Captures the agent's network namespace now,
    /// so ports can be returned to it later from any thread.
    pub fn real(cfg: &OsConfig) -> Result<Os, OsError> {
        Ok(Os {
            runtime: Box::new(runtime::OciRuntime::new(
                cfg.runtime_binary.clone(),
                cfg.runtime_root.clone(),
            )?),
            rootfs: Box::new(rootfs::LoopOverlay),
            cgroups: Box::new(cgroup::HostCgroups::new(&cfg.cgroup_parent)?),
            net: Box::new(net::RealNet::new()?),
        })
    }
}

/// Checks a name that becomes a path component, container id or cgroup name:
/// `[A-Za-z0-9_.+-]`, not `.`/`..`, at most 64 bytes (like youki's
/// `validate_id`).
pub fn validate_name(name: &str) -> Result<(), OsError> {
    let bad = |reason| {
        Err(OsError::InvalidName {
            name: name.to_string(),
            reason,
        })
    };
    if name.is_empty() {
        return bad("empty");
    }
    if name == "." || name == ".." {
        return bad("'.' and '..' are not names");
    }
    if name.len() > 64 {
        return bad("longer than 64 bytes");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'+'))
    {
        return bad("only letters, digits, '_', '-', '.', '+' are allowed");
    }
    Ok(())
}

/// Checks a network interface name: 1..=15 bytes, no '/', ':' or whitespace.
pub fn validate_ifname(name: &str) -> Result<(), OsError> {
    let bad = |reason| {
        Err(OsError::InvalidName {
            name: name.to_string(),
            reason,
        })
    };
    if name.is_empty() || name.len() > 15 {
        return bad("interface names are 1 to 15 bytes");
    }
    if name == "." || name == ".." {
        return bad("'.' and '..' are not interface names");
    }
    if name
        .bytes()
        .any(|b| b == b'/' || b == b':' || b.is_ascii_whitespace() || !b.is_ascii_graphic())
    {
        return bad("no '/', ':', whitespace or control characters");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(validate_name("web-1.a_b+c").is_ok());
        for n in ["", ".", "..", "a/b", "a b", &"x".repeat(65)] {
            assert!(validate_name(n).is_err(), "{n:?}");
        }
        assert!(validate_ifname("eth0").is_ok());
        assert!(validate_ifname("veth-web-12345").is_ok());
        for n in ["", "0123456789abcdef", "a/b", "a:b", "a b", ".."] {
            assert!(validate_ifname(n).is_err(), "{n:?}");
        }
    }
}
