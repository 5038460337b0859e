//! The parent cgroup shared by all apps, on cgroup v1, v2 and hybrid hosts.
//!
//! Limits sit on the parent (`/apphost`), so all apps together get at most
//! `cpu%` of the host's CPUs and `ram%` of its RAM; the runtimes create each
//! app's own group below it from `linux.cgroupsPath = /apphost/NAME`, in
//! every hierarchy, which is why [`Cgroups::remove_app`] walks them all.

use std::path::{Path, PathBuf};

use super::{mountinfo, validate_name, Cgroups, OsError};

/// CFS period used for the CPU limit (the kernel default, 100 ms).
pub const CPU_PERIOD_US: u64 = 100_000;
/// The kernel refuses quotas below 1 ms.
const MIN_QUOTA_US: u64 = 1_000;

/// Which cgroup layout the host has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CgroupMode {
    /// Pure v2: /sys/fs/cgroup is cgroup2.
    V2,
    /// v1 controllers; `hybrid` when a cgroup2 tree is mounted next to them
    /// (systemd's /sys/fs/cgroup/unified).
    V1 { hybrid: bool },
}

/// The host's hierarchies, found in mountinfo at construction.
#[derive(Debug, Clone)]
pub struct HostCgroups {
    parent: String,
    mode: CgroupMode,
    /// The cgroup2 mount (the only one on v2, the "unified" one on hybrid).
    unified: Option<PathBuf>,
    /// v1 mounts with the controllers (or `name=`) each carries.
    v1: Vec<(PathBuf, Vec<String>)>,
}

/// Host CPUs online; at least 1.
pub fn host_cpus() -> u64 {
    // SAFETY: sysconf has no memory-safety preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    u64::try_from(n).ok().filter(|n| *n > 0).unwrap_or(1)
}

/// Host RAM in bytes (MemTotal).
pub fn host_ram() -> Result<u64, OsError> {
    let text = std::fs::read_to_string("/proc/meminfo")
        .map_err(|e| OsError::io("read /proc/meminfo", e))?;
    text.lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .ok_or_else(|| OsError::Cgroup("no MemTotal in /proc/meminfo".into()))
}

/// CFS quota in µs for `pct` % of `ncpu` CPUs; None = unlimited (100 %).
pub fn cpu_quota_us(pct: u8, ncpu: u64) -> Option<u64> {
    if pct >= 100 {
        return None;
    }
    Some((u64::from(pct) * ncpu * CPU_PERIOD_US / 100).max(MIN_QUOTA_US))
}

/// Memory limit in bytes for `pct` % of `ram`, page aligned; None = unlimited.
pub fn memory_limit(pct: u8, ram: u64) -> Option<u64> {
    if pct >= 100 {
        return None;
    }
    // Never 0: the kernel would OOM-kill everything at once.
    Some(((ram / 100 * u64::from(pct)) & !4095).max(4096))
}

fn write(path: &Path, value: &str) -> Result<(), OsError> {
    std::fs::write(path, value)
        .map_err(|e| OsError::io(format!("write {value:?} to {}", path.display()), e))
}

fn read_u64(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Removes a cgroup directory and the groups below it (deepest first).
/// Cgroup directories hold only kernel files, which rmdir ignores.
fn remove_tree(dir: &Path) -> Result<(), OsError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(OsError::io(format!("read {}", dir.display()), e)),
    };
    for entry in entries.flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            remove_tree(&entry.path())?;
        }
    }
    match std::fs::remove_dir(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(OsError::io(format!("rmdir {}", dir.display()), e)),
    }
}

impl HostCgroups {
    /// Finds the hierarchies and creates the parent group where limits go.
    pub fn new(parent: &str) -> Result<Self, OsError> {
        validate_name(parent)?;
        let mounts = mountinfo::read();
        let mut unified = None;
        let mut v1 = Vec::new();
        for m in &mounts {
            match m.fs_type.as_str() {
                "cgroup2" => unified = Some(m.mount_point.clone()),
                "cgroup" => {
                    let ctrls: Vec<String> = m
                        .super_options
                        .split(',')
                        .filter(|o| *o != "rw" && *o != "ro")
                        .map(str::to_string)
                        .collect();
                    if !v1.iter().any(|(p, _)| *p == m.mount_point) {
                        v1.push((m.mount_point.clone(), ctrls));
                    }
                }
                _ => {}
            }
        }
        let mode = if v1.is_empty() {
            if unified.is_none() {
                return Err(OsError::Cgroup("no cgroup filesystem mounted".into()));
            }
            CgroupMode::V2
        } else {
            CgroupMode::V1 {
                hybrid: unified.is_some(),
            }
        };
        let cg = HostCgroups {
            parent: parent.to_string(),
            mode,
            unified,
            v1,
        };
        cg.create_parent()?;
        Ok(cg)
    }

    /// A layout given explicitly instead of found in mountinfo: for hosts
    /// with unusual mounts, and for testing the v1/v2 paths on plain
    /// directories. Creates the parent group like [`HostCgroups::new`].
    pub fn with_layout(
        parent: &str,
        mode: CgroupMode,
        unified: Option<PathBuf>,
        v1: Vec<(PathBuf, Vec<String>)>,
    ) -> Result<Self, OsError> {
        validate_name(parent)?;
        let cg = HostCgroups {
            parent: parent.to_string(),
            mode,
            unified,
            v1,
        };
        cg.create_parent()?;
        Ok(cg)
    }

    pub fn mode(&self) -> &CgroupMode {
        &self.mode
    }

    /// On a hybrid host, the controllers the cgroup2 tree still holds. crun
    /// 1.8 refuses to run while this is non-empty ("cgroups in hybrid mode
    /// not supported"); `tools/hybrid-cgroup.sh apply` empties it. Empty on
    /// pure v1 and v2 hosts.
    pub fn hybrid_v2_controllers(&self) -> Vec<String> {
        match (&self.mode, &self.unified) {
            (CgroupMode::V1 { hybrid: true }, Some(u)) => {
                std::fs::read_to_string(u.join("cgroup.controllers"))
                    .map(|s| s.split_whitespace().map(str::to_string).collect())
                    .unwrap_or_default()
            }
            _ => Vec::new(),
        }
    }

    /// The mount point of the hierarchy carrying `controller` ("cpu",
    /// "memory", "cpuacct", ...), v2 or v1 as the mode says.
    pub fn controller_root(&self, controller: &str) -> Option<&Path> {
        match self.mode {
            CgroupMode::V2 => self.unified.as_deref(),
            CgroupMode::V1 { .. } => self
                .v1
                .iter()
                .find(|(_, c)| c.iter().any(|x| x == controller))
                .map(|(p, _)| p.as_path()),
        }
    }

    /// The parent group's directory in the hierarchy carrying `controller`.
    pub fn parent_dir(&self, controller: &str) -> Option<PathBuf> {
        self.controller_root(controller)
            .map(|r| r.join(&self.parent))
    }

    /// Every existing directory of `app`'s group, in all hierarchies.
    pub fn app_dirs(&self, app: &str) -> Vec<PathBuf> {
        self.all_roots()
            .map(|r| r.join(&self.parent).join(app))
            .filter(|p| p.is_dir())
            .collect()
    }

    fn all_roots(&self) -> impl Iterator<Item = &Path> {
        self.v1
            .iter()
            .map(|(p, _)| p.as_path())
            .chain(self.unified.as_deref())
    }

    fn create_parent(&self) -> Result<(), OsError> {
        if self.mode == CgroupMode::V2 {
            if let Some(root) = &self.unified {
                // The parent's cpu.max/memory.max exist only when the root
                // delegates those controllers. Failing here is reported by
                // set_limits, which cannot find the files.
                if let Err(e) = write(&root.join("cgroup.subtree_control"), "+cpu +memory") {
                    tracing::warn!(error = %e, "cannot enable cpu/memory controllers");
                }
            }
        }
        for ctrl in ["cpu", "memory"] {
            if let Some(dir) = self.parent_dir(ctrl) {
                std::fs::create_dir_all(&dir)
                    .map_err(|e| OsError::io(format!("mkdir {}", dir.display()), e))?;
            }
        }
        if self.mode == CgroupMode::V2 {
            if let Some(dir) = self.parent_dir("cpu") {
                // Lets the runtimes set per-app limits below us as well.
                if let Err(e) = write(&dir.join("cgroup.subtree_control"), "+cpu +memory") {
                    tracing::warn!(error = %e, "cannot delegate cpu/memory below the parent");
                }
            }
        }
        Ok(())
    }

    /// Removes the parent group from every hierarchy (fails while app
    /// groups with processes remain below it). For uninstall and tests.
    pub fn remove_parent(&self) -> Result<(), OsError> {
        let mut errors = Vec::new();
        for root in self.all_roots() {
            if let Err(e) = remove_tree(&root.join(&self.parent)) {
                errors.push(e.to_string());
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(OsError::Cgroup(errors.join("; ")))
        }
    }

    /// Raw limit file contents of the parent: (cpu, memory), as the kernel
    /// shows them (v2 `cpu.max`/`memory.max`; v1 "quota period"/limit).
    pub fn raw_limits(&self) -> Result<(String, String), OsError> {
        let read = |p: PathBuf| {
            std::fs::read_to_string(&p)
                .map(|s| s.trim().to_string())
                .map_err(|e| OsError::io(format!("read {}", p.display()), e))
        };
        let cpu = self
            .parent_dir("cpu")
            .ok_or_else(|| OsError::Cgroup("no cpu hierarchy".into()))?;
        let mem = self
            .parent_dir("memory")
            .ok_or_else(|| OsError::Cgroup("no memory hierarchy".into()))?;
        match self.mode {
            CgroupMode::V2 => Ok((read(cpu.join("cpu.max"))?, read(mem.join("memory.max"))?)),
            CgroupMode::V1 { .. } => Ok((
                format!(
                    "{} {}",
                    read(cpu.join("cpu.cfs_quota_us"))?,
                    read(cpu.join("cpu.cfs_period_us"))?
                ),
                read(mem.join("memory.limit_in_bytes"))?,
            )),
        }
    }
}

impl Cgroups for HostCgroups {
    fn parent(&self) -> &str {
        &self.parent
    }

    fn set_limits(&self, cpu_percent: u8, ram_percent: u8) -> Result<(), OsError> {
        if cpu_percent == 0 || cpu_percent > 100 || ram_percent == 0 || ram_percent > 100 {
            return Err(OsError::Cgroup(format!(
                "limits must be 1..=100 %, got cpu {cpu_percent} ram {ram_percent}"
            )));
        }
        self.create_parent()?;
        let quota = cpu_quota_us(cpu_percent, host_cpus());
        let mem = memory_limit(ram_percent, host_ram()?);
        let cpu_dir = self
            .parent_dir("cpu")
            .ok_or_else(|| OsError::Cgroup("no cpu controller mounted".into()))?;
        let mem_dir = self
            .parent_dir("memory")
            .ok_or_else(|| OsError::Cgroup("no memory controller mounted".into()))?;
        match self.mode {
            CgroupMode::V2 => {
                let cpu = match quota {
                    Some(q) => format!("{q} {CPU_PERIOD_US}"),
                    None => format!("max {CPU_PERIOD_US}"),
                };
                write(&cpu_dir.join("cpu.max"), &cpu)?;
                let m = mem.map_or_else(|| "max".to_string(), |b| b.to_string());
                write(&mem_dir.join("memory.max"), &m)?;
            }
            CgroupMode::V1 { .. } => {
                write(
                    &cpu_dir.join("cpu.cfs_period_us"),
                    &CPU_PERIOD_US.to_string(),
                )?;
                let q = quota.map_or_else(|| "-1".to_string(), |q| q.to_string());
                write(&cpu_dir.join("cpu.cfs_quota_us"), &q)?;
                let m = mem.map_or_else(|| "-1".to_string(), |b| b.to_string());
                write(&mem_dir.join("memory.limit_in_bytes"), &m)?;
            }
        }
        Ok(())
    }

    fn remove_app(&self, app: &str) -> Result<(), OsError> {
        validate_name(app)?;
        let mut errors = Vec::new();
        for root in self.all_roots() {
            if let Err(e) = remove_tree(&root.join(&self.parent).join(app)) {
                errors.push(e.to_string());
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(OsError::Cgroup(errors.join("; ")))
        }
    }

    fn usage(&self, app: &str) -> Option<(u64, u64)> {
        validate_name(app).ok()?;
        let mem_dir = self.controller_root("memory")?.join(&self.parent).join(app);
        if !mem_dir.is_dir() {
            return None;
        }
        match self.mode {
            CgroupMode::V2 => {
                let mem = read_u64(&mem_dir.join("memory.current")).unwrap_or(0);
                let cpu = std::fs::read_to_string(mem_dir.join("cpu.stat"))
                    .ok()
                    .and_then(|s| {
                        s.lines()
                            .find_map(|l| l.strip_prefix("usage_usec "))
                            .and_then(|v| v.trim().parse::<u64>().ok())
                    })
                    .map_or(0, |us| us * 1000);
                Some((mem, cpu))
            }
            CgroupMode::V1 { .. } => {
                let mem = read_u64(&mem_dir.join("memory.usage_in_bytes")).unwrap_or(0);
                let cpu = self
                    .controller_root("cpuacct")
                    .and_then(|r| read_u64(&r.join(&self.parent).join(app).join("cpuacct.usage")))
                    .unwrap_or(0);
                Some((mem, cpu))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_quota() {
        assert_eq!(cpu_quota_us(50, 2), Some(100_000));
        assert_eq!(cpu_quota_us(25, 4), Some(100_000));
        assert_eq!(cpu_quota_us(10, 1), Some(10_000));
        assert_eq!(cpu_quota_us(1, 1), Some(1_000));
        assert_eq!(cpu_quota_us(100, 8), None);
    }

    /// The v2 code path on plain files (this CI host is v1 hybrid).
    #[test]
    fn v2_layout_on_plain_directories() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path().to_path_buf();
        let cg =
            HostCgroups::with_layout("apphost", CgroupMode::V2, Some(r.clone()), vec![]).unwrap();
        assert_eq!(
            std::fs::read_to_string(r.join("cgroup.subtree_control")).unwrap(),
            "+cpu +memory"
        );
        cg.set_limits(50, 25).unwrap();
        let (cpu, mem) = cg.raw_limits().unwrap();
        let q = cpu_quota_us(50, host_cpus()).unwrap();
        assert_eq!(cpu, format!("{q} 100000"));
        assert_eq!(
            mem,
            memory_limit(25, host_ram().unwrap()).unwrap().to_string()
        );
        cg.set_limits(100, 100).unwrap();
        assert_eq!(
            cg.raw_limits().unwrap(),
            ("max 100000".into(), "max".into())
        );
        assert!(cg.set_limits(0, 50).is_err());
        assert!(cg.set_limits(50, 101).is_err());

        // usage: memory.current and cpu.stat of the app group.
        let app = r.join("apphost/web");
        std::fs::create_dir_all(&app).unwrap();
        std::fs::write(app.join("memory.current"), "4096\n").unwrap();
        std::fs::write(app.join("cpu.stat"), "usage_usec 1500\nuser_usec 1000\n").unwrap();
        assert_eq!(cg.usage("web"), Some((4096, 1_500_000)));
        assert_eq!(cg.usage("nope"), None);
        assert_eq!(cg.app_dirs("web"), vec![app.clone()]);
    }

    /// The v1 code path on plain files.
    #[test]
    fn v1_layout_on_plain_directories() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        let mut v1 = Vec::new();
        for c in ["cpu", "cpuacct", "memory", "pids"] {
            std::fs::create_dir_all(r.join(c)).unwrap();
            v1.push((r.join(c), vec![c.to_string()]));
        }
        let cg = HostCgroups::with_layout("apphost", CgroupMode::V1 { hybrid: false }, None, v1)
            .unwrap();
        cg.set_limits(30, 40).unwrap();
        let (cpu, mem) = cg.raw_limits().unwrap();
        assert_eq!(
            cpu,
            format!("{} 100000", cpu_quota_us(30, host_cpus()).unwrap())
        );
        assert_eq!(
            mem,
            memory_limit(40, host_ram().unwrap()).unwrap().to_string()
        );
        cg.set_limits(100, 100).unwrap();
        assert_eq!(cg.raw_limits().unwrap(), ("-1 100000".into(), "-1".into()));

        std::fs::create_dir_all(r.join("memory/apphost/web")).unwrap();
        std::fs::create_dir_all(r.join("cpuacct/apphost/web")).unwrap();
        std::fs::create_dir_all(r.join("pids/apphost/web")).unwrap();
        std::fs::write(r.join("memory/apphost/web/memory.usage_in_bytes"), "8192\n").unwrap();
        std::fs::write(r.join("cpuacct/apphost/web/cpuacct.usage"), "777\n").unwrap();
        assert_eq!(cg.usage("web"), Some((8192, 777)));
        assert_eq!(cg.app_dirs("web").len(), 3);
        assert!(cg.hybrid_v2_controllers().is_empty());
        assert!(cg.remove_app("../x").is_err());
    }

    #[test]
    fn memory() {
        let ram = 2 * 1024 * 1024 * 1024u64;
        let half = memory_limit(50, ram).unwrap();
        assert_eq!(half % 4096, 0);
        assert!(half <= ram / 2 && half > ram / 2 - 8192);
        assert_eq!(memory_limit(100, ram), None);
        assert!(host_ram().unwrap() > 0);
        assert!(host_cpus() >= 1);
    }
}
