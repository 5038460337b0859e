//! Seams to the operating system (OCI runtime, rootfs mounts, cgroups,
//! netlink). This file holds only the agreed declarations so the `apphost`
//! domain compiles on its own branch; the `os` branch provides the real
//! implementations and a fuller version of this module.

pub mod oci;

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum OsError {
    #[error("{op}: {source}")]
    Io {
        op: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Command(String),
    #[error("netlink: {0}")]
    Netlink(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindMount {
    pub source: PathBuf,
    pub destination: String,
    pub readonly: bool,
}

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
    /// "CAP_NET_ADMIN", ... exactly these, in all sets.
    pub capabilities: Vec<String>,
    pub hostname: String,
    /// Some(/run/netns/NAME) or None = host netns.
    pub netns: Option<PathBuf>,
    /// e.g. "/apphost/NAME" (below the shared parent group).
    pub cgroup_path: String,
    /// Media shares.
    pub mounts: Vec<BindMount>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerState {
    pub id: String,
    pub pid: u32,
    /// "created" | "running" | "stopped" | "paused"
    pub status: String,
}

pub trait Runtime: Send + Sync {
    /// `run -d`, stdout/stderr to log; returns host pid.
    fn run(&self, id: &str, bundle: &Path, log: &Path) -> Result<u32, OsError>;
    /// None: unknown id.
    fn state(&self, id: &str) -> Result<Option<ContainerState>, OsError>;
    fn list(&self) -> Result<Vec<ContainerState>, OsError>;
    fn kill(&self, id: &str, signal: i32) -> Result<(), OsError>;
    /// Force; idempotent.
    fn delete(&self, id: &str) -> Result<(), OsError>;
    /// For attach.
    fn exec_command(&self, id: &str, tty: bool, argv: &[String]) -> std::process::Command;
}

pub trait Rootfs: Send + Sync {
    /// dir/lower: image loop-mounted ro; dir/upper: tmpfs (size bytes)
    /// holding upper+work; dir/rootfs: overlay. Returns the rootfs path.
    fn mount(&self, image: &Path, dir: &Path, tmpfs_size: u64) -> Result<PathBuf, OsError>;
    /// Idempotent; detaches the loop device.
    fn unmount(&self, dir: &Path) -> Result<(), OsError>;
    fn is_mounted(&self, dir: &Path) -> bool;
}

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

pub trait Net: Send + Sync {
    /// /run/netns/NAME (ip-netns compatible)
    fn netns_path(&self, name: &str) -> PathBuf;
    /// Idempotent.
    fn create_netns(&self, name: &str) -> Result<(), OsError>;
    /// Idempotent.
    fn delete_netns(&self, name: &str) -> Result<(), OsError>;
    /// Both ends up.
    fn add_veth(&self, host: &str, peer: &str, netns: &str) -> Result<(), OsError>;
    /// Host netns; idempotent.
    fn del_link(&self, name: &str) -> Result<(), OsError>;
    /// Renamed, up.
    fn move_port(&self, host_name: &str, netns: &str, new_name: &str) -> Result<(), OsError>;
    fn return_port(&self, netns: &str, app_name: &str, host_name: &str) -> Result<(), OsError>;
    /// In the agent's netns.
    fn link_exists(&self, name: &str) -> bool;
}

pub struct Os {
    pub runtime: Box<dyn Runtime>,
    pub rootfs: Box<dyn Rootfs>,
    pub cgroups: Box<dyn Cgroups>,
    pub net: Box<dyn Net>,
}

#[derive(Debug, Clone)]
pub struct OsConfig {
    pub runtime_binary: PathBuf,
    pub runtime_root: PathBuf,
    pub cgroup_parent: String,
}

impl Os {
    /// Placeholder on the `domain` branch: the `os` branch implements it.
    pub fn real(_cfg: &OsConfig) -> Result<Os, OsError> {
        Err(OsError::Command(
            "Os::real is implemented on the os branch".into(),
        ))
    }
}
