//! Recording fakes of the OS seams (youki style): every call is recorded as
//! a line (`"run web"`, `"kill web 15"`, ...), failures are injected per
//! operation, and a small in-memory world (containers, mounts, netns, links)
//! answers the queries, so the reconciler is tested without root.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::os::{Cgroups, ContainerState, Net, Os, OsError, Rootfs, Runtime};

#[derive(Debug, Default)]
pub struct World {
    pub calls: Vec<String>,
    /// op name (e.g. "run", "mount", "move_port") → error message.
    pub fail: HashMap<String, String>,
    pub containers: BTreeMap<String, ContainerState>,
    pub mounted: BTreeSet<PathBuf>,
    pub netns: BTreeSet<String>,
    /// Links in the host netns.
    pub links: BTreeSet<String>,
    /// Links inside each netns.
    pub ns_links: BTreeMap<String, BTreeSet<String>>,
    pub limits: Option<(u8, u8)>,
    /// Containers ignore SIGTERM (tests the SIGKILL after the grace time).
    pub ignore_sigterm: bool,
    pub next_pid: u32,
    /// (bundle, log) of each run.
    pub runs: Vec<(String, PathBuf, PathBuf)>,
}

/// Shared handle on the fake world; clones see the same world.
#[derive(Clone, Default)]
pub struct Fake(pub Arc<Mutex<World>>);

impl Fake {
    pub fn new() -> Self {
        let f = Fake::default();
        f.world().next_pid = 3_000_000;
        f
    }

    pub fn world(&self) -> MutexGuard<'_, World> {
        // A panicking test thread poisons the lock; the data is still fine
        // for the remaining assertions.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// An `Os` whose parts all act on this world.
    pub fn os(&self) -> Os {
        Os {
            runtime: Box::new(self.clone()),
            rootfs: Box::new(self.clone()),
            cgroups: Box::new(self.clone()),
            net: Box::new(self.clone()),
        }
    }

    pub fn fail(&self, op: &str, msg: &str) {
        self.world().fail.insert(op.into(), msg.into());
    }

    pub fn clear_fail(&self, op: &str) {
        self.world().fail.remove(op);
    }

    pub fn calls(&self) -> Vec<String> {
        self.world().calls.clone()
    }

    pub fn take_calls(&self) -> Vec<String> {
        std::mem::take(&mut self.world().calls)
    }

    /// Makes a container exit as if its init ended.
    pub fn exit(&self, id: &str) {
        if let Some(c) = self.world().containers.get_mut(id) {
            c.status = "stopped".into();
        }
    }

    fn rec(&self, op: &str, call: String) -> Result<MutexGuard<'_, World>, OsError> {
        let mut w = self.world();
        w.calls.push(call);
        if let Some(msg) = w.fail.get(op) {
            return Err(OsError::Command(format!("{op}: {msg}")));
        }
        Ok(w)
    }
}

impl Runtime for Fake {
    fn run(&self, id: &str, bundle: &Path, log: &Path) -> Result<u32, OsError> {
        let mut w = self.rec("run", format!("run {id}"))?;
        if w.containers.contains_key(id) {
            return Err(OsError::Command(format!("container {id} exists")));
        }
        w.next_pid += 1;
        let pid = w.next_pid;
        w.containers.insert(
            id.into(),
            ContainerState {
                id: id.into(),
                pid,
                status: "running".into(),
            },
        );
        w.runs
            .push((id.into(), bundle.to_path_buf(), log.to_path_buf()));
        Ok(pid)
    }
    fn state(&self, id: &str) -> Result<Option<ContainerState>, OsError> {
        let w = self.world();
        if let Some(msg) = w.fail.get("state") {
            return Err(OsError::Command(msg.clone()));
        }
        Ok(w.containers.get(id).cloned())
    }
    fn list(&self) -> Result<Vec<ContainerState>, OsError> {
        let w = self.world();
        if let Some(msg) = w.fail.get("list") {
            return Err(OsError::Command(msg.clone()));
        }
        Ok(w.containers.values().cloned().collect())
    }
    fn kill(&self, id: &str, signal: i32) -> Result<(), OsError> {
        let mut w = self.rec("kill", format!("kill {id} {signal}"))?;
        let ignore = w.ignore_sigterm && signal == libc::SIGTERM;
        match w.containers.get_mut(id) {
            Some(c) if !ignore => c.status = "stopped".into(),
            Some(_) => {}
            None => return Err(OsError::Command(format!("container {id} does not exist"))),
        }
        Ok(())
    }
    fn delete(&self, id: &str) -> Result<(), OsError> {
        let mut w = self.rec("delete", format!("delete {id}"))?;
        w.containers.remove(id);
        Ok(())
    }
    fn exec_command(
        &self,
        id: &str,
        _tty: bool,
        _env: &[(String, String)],
        argv: &[String],
    ) -> std::process::Command {
        let mut c = std::process::Command::new("echo");
        c.arg(id).args(argv);
        c
    }
}

impl Rootfs for Fake {
    fn mount(&self, image: &Path, dir: &Path, tmpfs_size: u64) -> Result<PathBuf, OsError> {
        let mut w = self.rec(
            "mount",
            format!("mount {} {} {tmpfs_size}", image.display(), dir.display()),
        )?;
        w.mounted.insert(dir.to_path_buf());
        let rootfs = dir.join("rootfs");
        std::fs::create_dir_all(&rootfs).map_err(|source| OsError::Io {
            op: "mkdir rootfs".into(),
            source,
        })?;
        Ok(rootfs)
    }
    fn unmount(&self, dir: &Path) -> Result<(), OsError> {
        let mut w = self.rec("unmount", format!("unmount {}", dir.display()))?;
        w.mounted.remove(dir);
        Ok(())
    }
    fn is_mounted(&self, dir: &Path) -> bool {
        self.world().mounted.contains(dir)
    }
}

impl Cgroups for Fake {
    fn parent(&self) -> &str {
        "apphost"
    }
    fn set_limits(&self, cpu_percent: u8, ram_percent: u8) -> Result<(), OsError> {
        let mut w = self.rec(
            "set_limits",
            format!("set_limits {cpu_percent} {ram_percent}"),
        )?;
        w.limits = Some((cpu_percent, ram_percent));
        Ok(())
    }
    fn remove_app(&self, app: &str) -> Result<(), OsError> {
        drop(self.rec("remove_app", format!("remove_app {app}"))?);
        Ok(())
    }
    fn usage(&self, app: &str) -> Option<(u64, u64)> {
        self.world()
            .containers
            .contains_key(app)
            .then_some((1 << 20, 1_000_000))
    }
}

impl Net for Fake {
    fn netns_path(&self, name: &str) -> PathBuf {
        PathBuf::from(format!("/nonexistent/fake/netns/{name}"))
    }
    fn create_netns(&self, name: &str) -> Result<(), OsError> {
        let mut w = self.rec("create_netns", format!("create_netns {name}"))?;
        w.netns.insert(name.into());
        Ok(())
    }
    fn delete_netns(&self, name: &str) -> Result<(), OsError> {
        let mut w = self.rec("delete_netns", format!("delete_netns {name}"))?;
        w.netns.remove(name);
        w.ns_links.remove(name);
        Ok(())
    }
    fn add_veth(&self, host: &str, peer: &str, netns: &str) -> Result<(), OsError> {
        let mut w = self.rec("add_veth", format!("add_veth {host} {peer} {netns}"))?;
        if w.links.contains(host) {
            return Err(OsError::Netlink(format!("{host} exists")));
        }
        w.links.insert(host.into());
        w.ns_links
            .entry(netns.into())
            .or_default()
            .insert(peer.into());
        Ok(())
    }
    fn del_link(&self, name: &str) -> Result<(), OsError> {
        let mut w = self.rec("del_link", format!("del_link {name}"))?;
        w.links.remove(name);
        Ok(())
    }
    fn move_port(&self, host_name: &str, netns: &str, new_name: &str) -> Result<(), OsError> {
        let mut w = self.rec(
            "move_port",
            format!("move_port {host_name} {netns} {new_name}"),
        )?;
        if !w.links.remove(host_name) {
            return Err(OsError::Netlink(format!("no link {host_name}")));
        }
        w.ns_links
            .entry(netns.into())
            .or_default()
            .insert(new_name.into());
        Ok(())
    }
    fn return_port(&self, netns: &str, app_name: &str, host_name: &str) -> Result<(), OsError> {
        let mut w = self.rec(
            "return_port",
            format!("return_port {netns} {app_name} {host_name}"),
        )?;
        let removed = w
            .ns_links
            .get_mut(netns)
            .is_some_and(|s| s.remove(app_name));
        if !removed {
            return Err(OsError::Netlink(format!("no link {app_name} in {netns}")));
        }
        w.links.insert(host_name.into());
        Ok(())
    }
    fn link_exists(&self, name: &str) -> bool {
        self.world().links.contains(name)
    }
}
