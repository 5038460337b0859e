//! Network namespaces and links, `ip netns`/`ip link` compatible.
//!
//! A namespace is a bind mount of a namespace file onto `/run/netns/NAME`,
//! exactly as iproute2 does it, so `ip netns exec NAME ...` and
//! `nsenter --net=/run/netns/NAME` work on ours and we can use theirs.
//!
//! Netlink sockets talk to the namespace of the thread that opened them, so
//! every operation runs on a short-lived thread that first `setns`es into the
//! namespace it works on (the agent's own one is captured at construction)
//! and drives rtnetlink on a current-thread tokio runtime. Callers stay
//! synchronous and their threads never change namespace.

use std::fs::{File, OpenOptions};
use std::future::Future;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use futures::TryStreamExt;
use netlink_packet_route::link::{InfoData, InfoVeth, LinkAttribute, LinkInfo};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};
use rtnetlink::Handle;

use super::{mountinfo, validate_ifname, validate_name, Net, OsError};

/// Where iproute2 keeps named network namespaces.
pub const NETNS_RUN_DIR: &str = "/run/netns";

/// The real thing.
#[derive(Debug)]
pub struct RealNet {
    /// The agent's network namespace, captured at start: ports return here.
    host_ns: File,
    run_dir: PathBuf,
}

fn nl_err(op: &str, e: rtnetlink::Error) -> OsError {
    OsError::Netlink(format!("{op}: {e}"))
}

fn is_errno(e: &rtnetlink::Error, errno: i32) -> bool {
    matches!(e, rtnetlink::Error::NetlinkError(m) if m.raw_code().abs() == errno)
}

/// Runs `f` with a netlink handle bound to the namespace `ns`, on a fresh
/// thread so the caller's namespace never changes.
fn in_netns<T, F, Fut>(ns: BorrowedFd<'_>, f: F) -> Result<T, OsError>
where
    T: Send,
    F: FnOnce(Handle) -> Fut + Send,
    Fut: Future<Output = Result<T, OsError>>,
{
    std::thread::scope(|s| {
        s.spawn(move || {
            setns(ns, CloneFlags::CLONE_NEWNET).map_err(|e| OsError::sys("setns(net)", e))?;
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_io()
                .enable_time()
                .build()
                .map_err(|e| OsError::io("netlink runtime", e))?;
            rt.block_on(async move {
                let (conn, handle, _) =
                    rtnetlink::new_connection().map_err(|e| OsError::io("netlink socket", e))?;
                let task = tokio::spawn(conn);
                let result = f(handle).await;
                task.abort();
                result
            })
        })
        .join()
        .unwrap_or_else(|_| Err(OsError::Netlink("netlink thread panicked".into())))
    })
}

/// The index of link `name`, None if there is none.
async fn index_of(h: &Handle, name: &str) -> Result<Option<u32>, OsError> {
    let mut links = h.link().get().match_name(name.to_string()).execute();
    match links.try_next().await {
        Ok(Some(msg)) => Ok(Some(msg.header.index)),
        Ok(None) => Ok(None),
        Err(e) if is_errno(&e, libc::ENODEV) => Ok(None),
        Err(e) => Err(nl_err(&format!("get link {name}"), e)),
    }
}

async fn require_index(h: &Handle, name: &str) -> Result<u32, OsError> {
    index_of(h, name)
        .await?
        .ok_or_else(|| OsError::Netlink(format!("no link named {name}")))
}

async fn set_up(h: &Handle, name: &str) -> Result<(), OsError> {
    let idx = require_index(h, name).await?;
    h.link()
        .set(idx)
        .up()
        .execute()
        .await
        .map_err(|e| nl_err(&format!("set {name} up"), e))
}

/// Names of all links in the handle's namespace.
async fn link_names(h: &Handle) -> Result<Vec<String>, OsError> {
    let mut links = h.link().get().execute();
    let mut names = Vec::new();
    while let Some(msg) = links
        .try_next()
        .await
        .map_err(|e| nl_err("list links", e))?
    {
        for a in msg.attributes {
            if let LinkAttribute::IfName(n) = a {
                names.push(n);
            }
        }
    }
    Ok(names)
}

/// Moves link `name` into the namespace `target`, named `new_name` there.
/// The kernel applies IFLA_IFNAME as the name in the target namespace
/// (do_setlink passes it to __dev_change_net_namespace), so a link named
/// like one already in the target never clashes mid-move.
async fn move_link(
    h: &Handle,
    name: &str,
    target: BorrowedFd<'_>,
    new_name: &str,
) -> Result<(), OsError> {
    use std::os::fd::AsRawFd;
    let idx = require_index(h, name).await?;
    h.link()
        .set(idx)
        .setns_by_fd(target.as_raw_fd())
        .name(new_name.to_string())
        .execute()
        .await
        .map_err(|e| nl_err(&format!("move {name} as {new_name}"), e))
}

/// Inside a namespace after a move: makes sure the link is called
/// `new_name` (renaming from `old_name` if the kernel kept the old one and
/// `may_rename`) and, if `up`, up. Renaming is never done in the host
/// namespace: a link there named like the app-side name could be a real port.
async fn finish_move(
    h: &Handle,
    old_name: &str,
    new_name: &str,
    up: bool,
    may_rename: bool,
) -> Result<(), OsError> {
    if index_of(h, new_name).await?.is_none() {
        if !may_rename {
            return Err(OsError::Netlink(format!(
                "{new_name} missing after the move"
            )));
        }
        let idx = require_index(h, old_name).await?;
        h.link()
            .set(idx)
            .name(new_name.to_string())
            .execute()
            .await
            .map_err(|e| nl_err(&format!("rename {old_name} to {new_name}"), e))?;
    }
    if up {
        set_up(h, new_name).await?;
    }
    Ok(())
}

impl RealNet {
    /// Captures the calling process's network namespace as "the host".
    pub fn new() -> Result<Self, OsError> {
        Self::with_run_dir(PathBuf::from(NETNS_RUN_DIR))
    }

    /// Like [`RealNet::new`] with another directory for named namespaces.
    pub fn with_run_dir(run_dir: PathBuf) -> Result<Self, OsError> {
        let host_ns = File::open("/proc/self/ns/net")
            .map_err(|e| OsError::io("open /proc/self/ns/net", e))?;
        Ok(RealNet { host_ns, run_dir })
    }

    fn open_netns(&self, name: &str) -> Result<File, OsError> {
        validate_name(name)?;
        let p = self.netns_path(name);
        File::open(&p).map_err(|e| OsError::io(format!("open netns {}", p.display()), e))
    }

    /// Link names inside namespace `netns` (for observation and tests).
    pub fn links_in(&self, netns: &str) -> Result<Vec<String>, OsError> {
        let ns = self.open_netns(netns)?;
        in_netns(ns.as_fd(), |h| async move { link_names(&h).await })
    }

    /// Link names in the agent's namespace.
    pub fn host_links(&self) -> Result<Vec<String>, OsError> {
        in_netns(
            self.host_ns.as_fd(),
            |h| async move { link_names(&h).await },
        )
    }

    /// Is `path` a namespace bind mount (not just a leftover file)?
    fn is_ns_mount(path: &Path) -> bool {
        mountinfo::read()
            .iter()
            .any(|m| m.mount_point == path && m.fs_type == "nsfs")
    }

    /// Makes the run dir a shared mount point, like iproute2's netns_add:
    /// mounts of namespaces then propagate into mount namespaces created
    /// later (a container's, `ip netns exec`'s) and unmounts do too.
    fn prepare_run_dir(&self) -> Result<(), OsError> {
        // Two threads racing here would both see "not a mount point" and
        // stack two bind mounts.
        static PREPARE: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let _serial = PREPARE.lock().unwrap_or_else(|p| p.into_inner());
        std::fs::create_dir_all(&self.run_dir)
            .map_err(|e| OsError::io(format!("mkdir {}", self.run_dir.display()), e))?;
        let shared = MsFlags::MS_SHARED | MsFlags::MS_REC;
        match mount(
            None::<&str>,
            &self.run_dir,
            Some("none"),
            shared,
            None::<&str>,
        ) {
            Ok(()) => Ok(()),
            Err(nix::errno::Errno::EINVAL) => {
                // Not a mount point yet: bind it onto itself first.
                mount(
                    Some(&self.run_dir),
                    &self.run_dir,
                    Some("none"),
                    MsFlags::MS_BIND | MsFlags::MS_REC,
                    None::<&str>,
                )
                .map_err(|e| OsError::sys(format!("bind {}", self.run_dir.display()), e))?;
                mount(
                    None::<&str>,
                    &self.run_dir,
                    Some("none"),
                    shared,
                    None::<&str>,
                )
                .map_err(|e| OsError::sys(format!("make {} shared", self.run_dir.display()), e))
            }
            Err(e) => Err(OsError::sys(
                format!("make {} shared", self.run_dir.display()),
                e,
            )),
        }
    }
}

impl Net for RealNet {
    fn netns_path(&self, name: &str) -> PathBuf {
        self.run_dir.join(name)
    }

    fn create_netns(&self, name: &str) -> Result<(), OsError> {
        validate_name(name)?;
        let path = self.netns_path(name);
        if Self::is_ns_mount(&path) {
            return Ok(());
        }
        self.prepare_run_dir()?;
        // The mount target: an empty file, as iproute2 creates it.
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o444)
            .open(&path)
            .map_err(|e| OsError::io(format!("create {}", path.display()), e))?;
        let target = path.clone();
        // unshare() changes only this thread's namespace; the thread ends
        // right after, so nobody else ever runs in the new namespace.
        let made = std::thread::spawn(move || -> Result<(), OsError> {
            unshare(CloneFlags::CLONE_NEWNET).map_err(|e| OsError::sys("unshare(net)", e))?;
            mount(
                Some("/proc/thread-self/ns/net"),
                &target,
                Some("none"),
                MsFlags::MS_BIND,
                None::<&str>,
            )
            .map_err(|e| OsError::sys(format!("bind netns onto {}", target.display()), e))
        })
        .join()
        .unwrap_or_else(|_| Err(OsError::Netlink("netns thread panicked".into())));
        if let Err(e) = made {
            let _ = std::fs::remove_file(&path);
            return Err(e);
        }
        // Apps expect a working loopback; iproute2 leaves it down.
        let ns = self.open_netns(name)?;
        in_netns(ns.as_fd(), |h| async move { set_up(&h, "lo").await })
    }

    fn delete_netns(&self, name: &str) -> Result<(), OsError> {
        validate_name(name)?;
        let path = self.netns_path(name);
        while Self::is_ns_mount(&path) {
            // Detach: a process still inside keeps the namespace alive, the
            // name goes away regardless (what `ip netns del` does).
            umount2(&path, MntFlags::MNT_DETACH)
                .map_err(|e| OsError::sys(format!("umount {}", path.display()), e))?;
        }
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(OsError::io(format!("remove {}", path.display()), e)),
        }
    }

    fn add_veth(&self, host: &str, peer: &str, netns: &str) -> Result<(), OsError> {
        validate_ifname(host)?;
        validate_ifname(peer)?;
        let ns = self.open_netns(netns)?;
        let ns_fd = ns.as_fd();
        in_netns(self.host_ns.as_fd(), |h| async move {
            use std::os::fd::AsRawFd;
            // rtnetlink's veth(a, b) names the main link b and the peer a.
            let mut req = h.link().add().veth(peer.to_string(), host.to_string());
            // Create the peer directly in the namespace, so its name never
            // meets the host's links (it is often "eth0").
            let mut placed = false;
            for attr in req.message_mut().attributes.iter_mut() {
                if let LinkAttribute::LinkInfo(infos) = attr {
                    for info in infos.iter_mut() {
                        if let LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(p))) = info {
                            p.attributes.push(LinkAttribute::NetNsFd(ns_fd.as_raw_fd()));
                            placed = true;
                        }
                    }
                }
            }
            if !placed {
                return Err(OsError::Netlink("veth request without a peer".into()));
            }
            req.execute()
                .await
                .map_err(|e| nl_err(&format!("add veth {host} peer {peer}"), e))?;
            set_up(&h, host).await
        })?;
        in_netns(ns_fd, |h| async move { set_up(&h, peer).await })
    }

    fn del_link(&self, name: &str) -> Result<(), OsError> {
        validate_ifname(name)?;
        in_netns(self.host_ns.as_fd(), |h| async move {
            let Some(idx) = index_of(&h, name).await? else {
                return Ok(());
            };
            match h.link().del(idx).execute().await {
                Ok(()) => Ok(()),
                Err(e) if is_errno(&e, libc::ENODEV) => Ok(()),
                Err(e) => Err(nl_err(&format!("delete {name}"), e)),
            }
        })
    }

    fn move_port(&self, host_name: &str, netns: &str, new_name: &str) -> Result<(), OsError> {
        validate_ifname(host_name)?;
        validate_ifname(new_name)?;
        let ns = self.open_netns(netns)?;
        let ns_fd = ns.as_fd();
        in_netns(self.host_ns.as_fd(), |h| async move {
            move_link(&h, host_name, ns_fd, new_name).await
        })?;
        in_netns(ns_fd, |h| async move {
            finish_move(&h, host_name, new_name, true, true).await
        })
    }

    fn return_port(&self, netns: &str, app_name: &str, host_name: &str) -> Result<(), OsError> {
        validate_ifname(app_name)?;
        validate_ifname(host_name)?;
        let ns = self.open_netns(netns)?;
        let host_fd = self.host_ns.as_fd();
        in_netns(ns.as_fd(), |h| async move {
            move_link(&h, app_name, host_fd, host_name).await
        })?;
        in_netns(host_fd, |h| async move {
            finish_move(&h, app_name, host_name, false, false).await
        })
    }

    fn link_exists(&self, name: &str) -> bool {
        if validate_ifname(name).is_err() {
            return false;
        }
        in_netns(
            self.host_ns.as_fd(),
            |h| async move { index_of(&h, name).await },
        )
        .ok()
        .flatten()
        .is_some()
    }
}
