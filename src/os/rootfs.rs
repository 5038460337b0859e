//! Container root filesystems: the SquashFS image on a read-only loop device,
//! a size-limited tmpfs for the writable layer, and an overlay of the two.
//!
//! The loop device is configured with `LO_FLAGS_AUTOCLEAR`, so the kernel
//! detaches it when the squashfs is unmounted (or when the attach fails before
//! the mount): no loop device outlives its mount even if the agent dies.

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};

use super::{mountinfo, OsError, Rootfs};

// <linux/loop.h>; not in the libc crate.
const LOOP_SET_FD: libc::c_ulong = 0x4C00;
const LOOP_CLR_FD: libc::c_ulong = 0x4C01;
const LOOP_SET_STATUS64: libc::c_ulong = 0x4C04;
const LOOP_CONFIGURE: libc::c_ulong = 0x4C0A;
const LOOP_CTL_GET_FREE: libc::c_ulong = 0x4C82;
const LO_FLAGS_READ_ONLY: u32 = 1;
const LO_FLAGS_AUTOCLEAR: u32 = 4;
const LO_NAME_SIZE: usize = 64;

#[repr(C)]
#[derive(Clone, Copy)]
struct LoopInfo64 {
    lo_device: u64,
    lo_inode: u64,
    lo_rdevice: u64,
    lo_offset: u64,
    lo_sizelimit: u64,
    lo_number: u32,
    lo_encrypt_type: u32,
    lo_encrypt_key_size: u32,
    lo_flags: u32,
    lo_file_name: [u8; LO_NAME_SIZE],
    lo_crypt_name: [u8; LO_NAME_SIZE],
    lo_encrypt_key: [u8; 32],
    lo_init: [u64; 2],
}

#[repr(C)]
struct LoopConfig {
    fd: u32,
    block_size: u32,
    info: LoopInfo64,
    reserved: [u64; 8],
}

/// Attach attempts before giving up: another process may grab the device
/// `LOOP_CTL_GET_FREE` handed us before we configure it.
const ATTACH_RETRIES: usize = 16;

/// Loop + tmpfs + overlay, all through syscalls.
#[derive(Debug, Clone, Copy, Default)]
pub struct LoopOverlay;

fn last_os_error(op: String) -> OsError {
    OsError::io(op, std::io::Error::last_os_error())
}

/// Attaches `image` read-only to a free loop device; returns the open device
/// (autoclear: closing it without a mount detaches) and its path.
pub fn attach_loop(image: &Path) -> Result<(File, PathBuf), OsError> {
    let backing =
        File::open(image).map_err(|e| OsError::io(format!("open image {}", image.display()), e))?;
    let ctl = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/loop-control")
        .map_err(|e| OsError::io("open /dev/loop-control", e))?;

    let mut info = LoopInfo64 {
        lo_device: 0,
        lo_inode: 0,
        lo_rdevice: 0,
        lo_offset: 0,
        lo_sizelimit: 0,
        lo_number: 0,
        lo_encrypt_type: 0,
        lo_encrypt_key_size: 0,
        lo_flags: LO_FLAGS_READ_ONLY | LO_FLAGS_AUTOCLEAR,
        lo_file_name: [0; LO_NAME_SIZE],
        lo_crypt_name: [0; LO_NAME_SIZE],
        lo_encrypt_key: [0; 32],
        lo_init: [0; 2],
    };
    // Informational only (shown by losetup); truncated like losetup does.
    let name = image.to_string_lossy();
    let n = name.len().min(LO_NAME_SIZE - 1);
    info.lo_file_name[..n].copy_from_slice(&name.as_bytes()[..n]);

    let mut last_err = None;
    for _ in 0..ATTACH_RETRIES {
        // SAFETY: LOOP_CTL_GET_FREE takes no argument and returns a number.
        let nr = unsafe { libc::ioctl(ctl.as_raw_fd(), LOOP_CTL_GET_FREE) };
        if nr < 0 {
            return Err(last_os_error("LOOP_CTL_GET_FREE".into()));
        }
        let dev_path = PathBuf::from(format!("/dev/loop{nr}"));
        let dev = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_CLOEXEC)
            .open(&dev_path)
            .map_err(|e| OsError::io(format!("open {}", dev_path.display()), e))?;
        let cfg = LoopConfig {
            fd: backing.as_raw_fd() as u32,
            block_size: 0,
            info,
            reserved: [0; 8],
        };
        // SAFETY: cfg is a valid struct loop_config living across the call.
        let rc = unsafe { libc::ioctl(dev.as_raw_fd(), LOOP_CONFIGURE, &cfg as *const LoopConfig) };
        if rc == 0 {
            return Ok((dev, dev_path));
        }
        let err = std::io::Error::last_os_error();
        match err.raw_os_error() {
            // Raced with another attacher: ask for the next free device.
            Some(libc::EBUSY) => last_err = Some(err),
            // Kernel older than 5.8: the two-step attach.
            Some(libc::EINVAL) | Some(libc::ENOTTY) => {
                // SAFETY: LOOP_SET_FD takes the backing fd by value.
                let rc = unsafe {
                    libc::ioctl(
                        dev.as_raw_fd(),
                        LOOP_SET_FD,
                        backing.as_raw_fd() as libc::c_ulong,
                    )
                };
                if rc != 0 {
                    let err = std::io::Error::last_os_error();
                    if err.raw_os_error() == Some(libc::EBUSY) {
                        last_err = Some(err);
                        continue;
                    }
                    return Err(OsError::io(
                        format!("LOOP_SET_FD {}", dev_path.display()),
                        err,
                    ));
                }
                // SAFETY: info is a valid struct loop_info64.
                let rc = unsafe {
                    libc::ioctl(
                        dev.as_raw_fd(),
                        LOOP_SET_STATUS64,
                        &info as *const LoopInfo64,
                    )
                };
                if rc != 0 {
                    let err = std::io::Error::last_os_error();
                    // SAFETY: LOOP_CLR_FD takes no argument.
                    unsafe { libc::ioctl(dev.as_raw_fd(), LOOP_CLR_FD) };
                    return Err(OsError::io(
                        format!("LOOP_SET_STATUS64 {}", dev_path.display()),
                        err,
                    ));
                }
                return Ok((dev, dev_path));
            }
            _ => {
                return Err(OsError::io(
                    format!("LOOP_CONFIGURE {}", dev_path.display()),
                    err,
                ))
            }
        }
    }
    Err(OsError::io(
        "attach loop device",
        last_err.unwrap_or_else(|| std::io::Error::from_raw_os_error(libc::EBUSY)),
    ))
}

/// The file a loop device is bound to, if any (`/sys/block/loopN/loop/backing_file`).
pub fn loop_backing_file(dev: &Path) -> Option<PathBuf> {
    let name = dev.file_name()?.to_str()?;
    let text = std::fs::read_to_string(format!("/sys/block/{name}/loop/backing_file")).ok()?;
    Some(PathBuf::from(text.trim_end_matches('\n')))
}

/// Detaches a loop device unless it is unbound already.
fn detach_loop(dev: &Path) -> Result<(), OsError> {
    if loop_backing_file(dev).is_none() {
        return Ok(());
    }
    let f = match File::open(dev) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(OsError::io(format!("open {}", dev.display()), e)),
    };
    // SAFETY: LOOP_CLR_FD takes no argument.
    let rc = unsafe { libc::ioctl(f.as_raw_fd(), LOOP_CLR_FD) };
    if rc != 0 {
        let err = std::io::Error::last_os_error();
        // ENXIO: not bound (autoclear got there first).
        if err.raw_os_error() != Some(libc::ENXIO) {
            return Err(OsError::io(format!("LOOP_CLR_FD {}", dev.display()), err));
        }
    }
    Ok(())
}

/// `dir` as mountinfo spells it: absolute, symlinks resolved.
fn canonical(dir: &Path) -> PathBuf {
    std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf())
}

fn mount_at(mounts: &[mountinfo::MountEntry], p: &Path) -> Option<mountinfo::MountEntry> {
    // The last entry wins: it is the one on top.
    mounts.iter().rev().find(|m| m.mount_point == p).cloned()
}

fn mkdir(p: &Path) -> Result<(), OsError> {
    std::fs::create_dir_all(p).map_err(|e| OsError::io(format!("mkdir {}", p.display()), e))
}

impl LoopOverlay {
    fn mount_all(&self, image: &Path, dir: &Path, tmpfs_size: u64) -> Result<PathBuf, OsError> {
        let lower = dir.join("lower");
        let upper = dir.join("upper");
        let rootfs = dir.join("rootfs");
        for p in [&lower, &upper, &rootfs] {
            mkdir(p)?;
        }

        let (dev, dev_path) = attach_loop(image)?;
        mount(
            Some(&dev_path),
            &lower,
            Some("squashfs"),
            MsFlags::MS_RDONLY | MsFlags::MS_NODEV | MsFlags::MS_NOSUID,
            None::<&str>,
        )
        .map_err(|e| {
            OsError::sys(
                format!("mount {} on {}", dev_path.display(), lower.display()),
                e,
            )
        })?;
        // The mount holds the device now; with autoclear, unmounting detaches it.
        drop(dev);

        let opts = format!("size={tmpfs_size},mode=0755");
        mount(
            Some("tmpfs"),
            &upper,
            Some("tmpfs"),
            MsFlags::MS_NODEV | MsFlags::MS_NOSUID,
            Some(opts.as_str()),
        )
        .map_err(|e| OsError::sys(format!("mount tmpfs on {}", upper.display()), e))?;
        let up = upper.join("upper");
        let work = upper.join("work");
        mkdir(&up)?;
        mkdir(&work)?;

        let opts = format!(
            "lowerdir={},upperdir={},workdir={}",
            lower.display(),
            up.display(),
            work.display()
        );
        mount(
            Some("overlay"),
            &rootfs,
            Some("overlay"),
            MsFlags::empty(),
            Some(opts.as_str()),
        )
        .map_err(|e| OsError::sys(format!("mount overlay on {}", rootfs.display()), e))?;
        Ok(rootfs)
    }
}

impl Rootfs for LoopOverlay {
    fn mount(&self, image: &Path, dir: &Path, tmpfs_size: u64) -> Result<PathBuf, OsError> {
        if !image.is_file() {
            return Err(OsError::io(
                format!("image {}", image.display()),
                std::io::Error::from(std::io::ErrorKind::NotFound),
            ));
        }
        mkdir(dir)?;
        let dir = canonical(dir);
        // The overlay option string is comma/colon separated.
        let s = dir.to_string_lossy();
        if s.contains(',') || s.contains(':') {
            return Err(OsError::InvalidName {
                name: s.into_owned(),
                reason: "rootfs directory must not contain ',' or ':'",
            });
        }
        if self.is_mounted(&dir) {
            // Idempotent for the same image only: another image below a
            // live overlay would need an unmount first (and lose the
            // writable layer), which is the caller's decision.
            let image = canonical(image);
            let lower = mount_at(&mountinfo::read(), &dir.join("lower"))
                .and_then(|m| loop_backing_file(Path::new(&m.source)));
            if lower.as_deref() != Some(image.as_path()) {
                return Err(OsError::io(
                    format!(
                        "{} is mounted from {:?}, not {}",
                        dir.display(),
                        lower,
                        image.display()
                    ),
                    std::io::Error::from_raw_os_error(libc::EBUSY),
                ));
            }
            return Ok(dir.join("rootfs"));
        }
        // Leftovers of a half-done earlier attempt would stack below us.
        self.unmount(&dir)?;
        self.mount_all(image, &dir, tmpfs_size).inspect_err(|e| {
            tracing::warn!(dir = %dir.display(), error = %e, "rootfs mount failed, rolling back");
            if let Err(e2) = self.unmount(&dir) {
                tracing::error!(dir = %dir.display(), error = %e2, "rootfs rollback failed");
            }
        })
    }

    fn unmount(&self, dir: &Path) -> Result<(), OsError> {
        let dir = canonical(dir);
        let mut loops = Vec::new();
        for sub in ["rootfs", "upper", "lower"] {
            let p = dir.join(sub);
            // Unmount every layer stacked on the point (normally one).
            while let Some(m) = mount_at(&mountinfo::read(), &p) {
                if m.source.starts_with("/dev/loop") {
                    let dev = PathBuf::from(&m.source);
                    if let Some(backing) = loop_backing_file(&dev) {
                        loops.push((dev, backing));
                    }
                }
                umount2(&p, MntFlags::empty())
                    .map_err(|e| OsError::sys(format!("umount {}", p.display()), e))?;
            }
        }
        // Autoclear detaches on the last unmount; make sure anyway, as a
        // device still bound here would leak. Only if it still holds the same
        // file: once free, another process may have attached something else.
        for (dev, backing) in loops {
            if loop_backing_file(&dev).as_deref() == Some(backing.as_path()) {
                detach_loop(&dev)?;
            }
        }
        Ok(())
    }

    fn is_mounted(&self, dir: &Path) -> bool {
        let p = canonical(dir).join("rootfs");
        mount_at(&mountinfo::read(), &p).is_some_and(|m| m.fs_type == "overlay")
    }
}

// ===== prefetch of the entry binary =====

/// Most of the entry binary [`Prefetch`] reads: exec faults in only what it
/// touches, so reading far beyond that would be work the start waits for.
const PREFETCH_MAX: u64 = 8 << 20;

/// Reads the container's entry binary from a freshly mounted rootfs in a
/// background thread, while the runtime sets the container up.
///
/// Why: every start mounts the SquashFS anew, so its page cache is empty and
/// the first exec of the entry binary decompresses it (measured: ~12 ms for
/// the 2 MB busybox of a gzip image, against ~1.5 ms warm; the kernel has a
/// single squashfs decompressor). That work is needed anyway; done here it
/// overlaps with the runtime's own ~8 ms of namespace and mount setup
/// instead of following it. The pages land in the lower layer's cache, which
/// the overlay shares.
///
/// Dropping it joins the thread, so no open file of ours keeps the rootfs
/// busy when a failed start unmounts it.
#[must_use = "dropping it at once waits for the read"]
pub struct Prefetch(Option<std::thread::JoinHandle<()>>);

impl Prefetch {
    /// Starts reading `exe` (a path inside the container, absolute; others
    /// are resolved through `PATH` by the runtime and are skipped) below
    /// `rootfs`.
    pub fn start(rootfs: &Path, exe: &str) -> Prefetch {
        if !exe.starts_with('/') {
            return Prefetch(None);
        }
        let (rootfs, exe) = (rootfs.to_path_buf(), exe.to_string());
        let spawned = std::thread::Builder::new()
            .name("apphost-prefetch".into())
            .spawn(move || {
                // Only an optimisation: a failure costs the start nothing but
                // the time it would have taken anyway.
                if let Err(e) = read_in_root(&rootfs, &exe, PREFETCH_MAX) {
                    tracing::debug!(rootfs = %rootfs.display(), exe, error = %e, "prefetch skipped");
                }
            });
        Prefetch(spawned.ok())
    }
}

impl Drop for Prefetch {
    fn drop(&mut self) {
        if let Some(h) = self.0.take() {
            let _ = h.join();
        }
    }
}

/// Script interpreters followed (`#!`), as the kernel does (it allows 4).
const MAX_INTERPRETERS: usize = 4;

/// Reads up to `max` bytes of `path`, resolved inside `root` as the container
/// will see it (`RESOLVE_IN_ROOT`: absolute symlinks and `..` stay below
/// `root`), then the interpreter a `#!` line names, which is what an exec of
/// a script (busybox images: `/sbin/init` is often one) loads. Only regular
/// files are read, so a FIFO or device never blocks or acts. Returns the
/// bytes read.
pub fn read_in_root(root: &Path, path: &str, max: u64) -> std::io::Result<u64> {
    let dir = File::open(root)?;
    let mut total = 0;
    let mut path = path.to_string();
    for _ in 0..=MAX_INTERPRETERS {
        let (n, interpreter) = read_one(&dir, &path, max)?;
        total += n;
        match interpreter {
            Some(p) => path = p,
            None => break,
        }
    }
    Ok(total)
}

/// One file of [`read_in_root`]: bytes read, and the `#!` interpreter.
fn read_one(dir: &File, path: &str, max: u64) -> std::io::Result<(u64, Option<String>)> {
    use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
    use std::io::Read;
    use std::os::fd::{FromRawFd, OwnedFd};

    let how = OpenHow::new()
        .flags(OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let fd = openat2(dir.as_raw_fd(), path, how).map_err(std::io::Error::from)?;
    // SAFETY: openat2 returned a new descriptor that nothing else owns.
    let file = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    let mut file = file.take(max);
    // The kernel reads at most this much of a `#!` line (BINPRM_BUF_SIZE).
    let mut head = Vec::with_capacity(256);
    (&mut file).take(256).read_to_end(&mut head)?;
    let rest = std::io::copy(&mut file, &mut std::io::sink())?;
    let interpreter = head
        .strip_prefix(b"#!")
        .and_then(|l| l.split(|b| *b == b'\n').next())
        .and_then(|l| {
            l.split(|b| *b == b' ' || *b == b'\t')
                .find(|w| !w.is_empty())
        })
        .and_then(|w| std::str::from_utf8(w).ok())
        .filter(|w| w.starts_with('/'))
        .map(str::to_string);
    Ok((head.len() as u64 + rest, interpreter))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_in_root_follows_symlinks_inside_the_root_only() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        std::fs::create_dir_all(root.join("bin")).unwrap();
        std::fs::create_dir_all(root.join("sbin")).unwrap();
        std::fs::write(root.join("bin/busybox"), vec![7u8; 3000]).unwrap();
        // As in a busybox image: an absolute link, meant inside the root.
        std::os::unix::fs::symlink("/bin/busybox", root.join("sbin/init")).unwrap();
        assert_eq!(read_in_root(root, "/sbin/init", 1 << 20).unwrap(), 3000);
        assert_eq!(read_in_root(root, "/sbin/init", 1000).unwrap(), 1000);
        // Escapes stay in the root: the host's /etc/passwd is not read.
        assert!(Path::new("/etc/passwd").exists());
        std::os::unix::fs::symlink("/../../../etc/passwd", root.join("sbin/up")).unwrap();
        assert_eq!(
            read_in_root(root, "/sbin/up", 1 << 20).unwrap_err().kind(),
            std::io::ErrorKind::NotFound
        );
        assert!(read_in_root(root, "/../../etc/passwd", 1 << 20).is_err());
    }

    #[test]
    fn read_in_root_reads_the_interpreter_of_a_script() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        std::fs::create_dir_all(root.join("bin")).unwrap();
        std::fs::create_dir_all(root.join("sbin")).unwrap();
        std::fs::write(root.join("bin/busybox"), vec![7u8; 5000]).unwrap();
        std::os::unix::fs::symlink("busybox", root.join("bin/sh")).unwrap();
        let script = "#!/bin/sh -e\necho hi\n";
        std::fs::write(root.join("sbin/init"), script).unwrap();
        assert_eq!(
            read_in_root(root, "/sbin/init", 1 << 20).unwrap(),
            script.len() as u64 + 5000
        );
        // A script naming itself stops after the kernel's limit.
        std::fs::write(root.join("loop"), "#!/loop\n").unwrap();
        assert_eq!(
            read_in_root(root, "/loop", 1 << 20).unwrap(),
            8 * (MAX_INTERPRETERS as u64 + 1)
        );
        // A relative or missing interpreter: the script alone, or the error.
        std::fs::write(root.join("rel"), "#!sh\n").unwrap();
        assert_eq!(read_in_root(root, "/rel", 1 << 20).unwrap(), 5);
        std::fs::write(root.join("gone"), "#!/bin/none\n").unwrap();
        assert!(read_in_root(root, "/gone", 1 << 20).is_err());
    }

    #[test]
    fn read_in_root_refuses_what_is_not_a_regular_file() {
        let t = tempfile::tempdir().unwrap();
        let fifo = t.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        // A FIFO without a writer would block a plain open: this returns.
        let e = read_in_root(t.path(), "/fifo", 1 << 20).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
        assert!(read_in_root(t.path(), "/", 1 << 20).is_err());
    }

    #[test]
    fn prefetch_skips_relative_commands_and_joins_on_drop() {
        let t = tempfile::tempdir().unwrap();
        assert!(Prefetch::start(t.path(), "sh").0.is_none());
        std::fs::write(t.path().join("init"), b"x").unwrap();
        let p = Prefetch::start(t.path(), "/init");
        assert!(p.0.is_some());
        drop(p);
    }
}
