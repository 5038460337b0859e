//! crun/runc driven through their command line.
//!
//! Both runtimes share the verbs used here (`run -d`, `state`, `list -f json`,
//! `kill`, `delete -f`, `exec`). Paths handed to them are absolute: a relative
//! `--root` is resolved after the runtime chdirs into the bundle, and then
//! `delete -f` "succeeds" while the container lives on.

use std::fs::OpenOptions;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::Deserialize;

use super::{validate_name, ContainerState, OsError, Runtime};

/// How much of a failing runtime's output an error carries.
const ERR_TAIL: u64 = 4096;

/// An OCI runtime binary plus its state directory.
#[derive(Debug, Clone)]
pub struct OciRuntime {
    /// Absolute path of crun (default) or runc.
    pub binary: PathBuf,
    /// Absolute `--root` state directory, private to the agent so its
    /// containers never mix with other users of the runtime.
    pub root: PathBuf,
}

#[derive(Deserialize)]
struct StateJson {
    id: String,
    #[serde(default)]
    pid: u32,
    status: String,
}

impl OciRuntime {
    /// Both paths must be absolute; creates `root` if missing.
    pub fn new(binary: PathBuf, root: PathBuf) -> Result<Self, OsError> {
        for (what, p) in [("runtime binary", &binary), ("runtime root", &root)] {
            if !p.is_absolute() {
                return Err(OsError::Command(format!(
                    "{what} {} must be an absolute path",
                    p.display()
                )));
            }
        }
        std::fs::create_dir_all(&root)
            .map_err(|e| OsError::io(format!("create {}", root.display()), e))?;
        Ok(OciRuntime { binary, root })
    }

    /// crun at its Debian location.
    pub fn crun(root: PathBuf) -> Result<Self, OsError> {
        Self::new(PathBuf::from("/usr/bin/crun"), root)
    }

    /// runc at its Debian location.
    pub fn runc(root: PathBuf) -> Result<Self, OsError> {
        Self::new(PathBuf::from("/usr/sbin/runc"), root)
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new(&self.binary);
        c.arg("--root").arg(&self.root);
        c
    }

    fn name(&self) -> String {
        self.binary
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| self.binary.display().to_string())
    }

    /// Runs a short verb with piped output (never `run -d`: see [`Runtime::run`]).
    fn output(&self, args: &[&str]) -> Result<std::process::Output, OsError> {
        self.cmd()
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| {
                OsError::io(
                    format!("spawn {} {}", self.binary.display(), args.join(" ")),
                    e,
                )
            })
    }

    fn failed(&self, args: &[&str], out: &std::process::Output) -> OsError {
        OsError::Command(format!(
            "{} {} failed ({}): {}",
            self.name(),
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Does the runtime's complaint mean "no such container"?
fn is_not_found(stderr: &[u8]) -> bool {
    let s = String::from_utf8_lossy(stderr).to_ascii_lowercase();
    s.contains("does not exist") || s.contains("no such file") || s.contains("not found")
}

fn parse_state(json: &[u8]) -> Result<ContainerState, OsError> {
    let s: StateJson = serde_json::from_slice(json)
        .map_err(|e| OsError::Command(format!("cannot parse runtime state: {e}")))?;
    Ok(ContainerState {
        id: s.id,
        pid: s.pid,
        status: s.status,
    })
}

fn parse_list(json: &[u8]) -> Result<Vec<ContainerState>, OsError> {
    // runc prints `null` when it has no containers.
    let list: Option<Vec<StateJson>> = serde_json::from_slice(json)
        .map_err(|e| OsError::Command(format!("cannot parse runtime list: {e}")))?;
    Ok(list
        .unwrap_or_default()
        .into_iter()
        .map(|s| ContainerState {
            id: s.id,
            pid: s.pid,
            status: s.status,
        })
        .collect())
}

impl OciRuntime {
    /// Waits (bounded) until the container's init has exec'd the app's
    /// command: `run -d` returns once the init was told to start, while it
    /// may still be the runtime's own binary (runc always; crun while it
    /// reads a cold image), and "running" must mean the app runs.
    ///
    /// The init is recognised by file identity, not by name: crun re-execs
    /// itself through a detached bind mount of its binary, whose
    /// `/proc/PID/exe` reads as "/", and runc through a memfd copy. Done
    /// means the new argv is readable too (the pid's environ, cmdline).
    fn wait_exec(&self, pid: u32) {
        use std::os::unix::fs::MetadataExt;
        let runtime = std::fs::metadata(&self.binary)
            .ok()
            .map(|m| (m.dev(), m.ino()));
        let exe = format!("/proc/{pid}/exe");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
        while std::time::Instant::now() < deadline {
            let same_file = std::fs::metadata(&exe)
                .ok()
                .map(|m| (m.dev(), m.ino()))
                .is_some_and(|id| Some(id) == runtime);
            let memfd =
                std::fs::read_link(&exe).is_ok_and(|p| p.to_string_lossy().contains("memfd:"));
            // The exe link switches early in an exec; the new argv (never
            // empty for an OCI process) is in place only when the exec is
            // done, and a cold image can keep it in between for ms. An
            // unreadable link or cmdline means gone: the caller's state
            // checks report that.
            if !same_file && !memfd {
                match std::fs::read(format!("/proc/{pid}/cmdline")) {
                    Ok(argv) if argv.is_empty() => {}
                    _ => return,
                }
            }
            std::thread::sleep(std::time::Duration::from_micros(200));
        }
    }
}

impl Runtime for OciRuntime {
    /// `run -d`: the runtime hands its own stdio to the container, so stdin is
    /// null and stdout/stderr are the log file; waiting for the runtime itself
    /// is then safe (it exits once the container started). Errors carry what
    /// the runtime wrote to the log during this call.
    fn run(&self, id: &str, bundle: &Path, log: &Path) -> Result<u32, OsError> {
        validate_name(id)?;
        if !bundle.is_absolute() {
            return Err(OsError::Command(format!(
                "bundle {} must be an absolute path",
                bundle.display()
            )));
        }
        let out = OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map_err(|e| OsError::io(format!("open log {}", log.display()), e))?;
        let start = out
            .metadata()
            .map_err(|e| OsError::io(format!("stat log {}", log.display()), e))?
            .len();
        let err = out.try_clone().map_err(|e| OsError::io("dup log fd", e))?;
        // The pid file saves a `state` call (a process spawn) per start.
        let pid_file = bundle.join("init.pid");
        let _ = std::fs::remove_file(&pid_file);
        let status = self
            .cmd()
            .arg("run")
            .arg("-d")
            .arg("--pid-file")
            .arg(&pid_file)
            .arg("--bundle")
            .arg(bundle)
            .arg(id)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .status()
            .map_err(|e| OsError::io(format!("spawn {}", self.binary.display()), e))?;
        if !status.success() {
            let tail = read_tail(log, start);
            // crun 1.8 on a systemd "hybrid" host: say what fixes it.
            let hint = if tail.contains("hybrid mode not supported") {
                " (a cgroup v1 hybrid host whose cgroup2 tree still holds controllers: \
                 mount them as v1 hierarchies, see tools/hybrid-cgroup.sh, or use runc)"
            } else {
                ""
            };
            return Err(OsError::Command(format!(
                "{} run {id} failed ({status}): {}{hint}",
                self.name(),
                tail.trim()
            )));
        }
        let from_file = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|t| t.trim().parse::<u32>().ok())
            .filter(|p| *p != 0);
        let _ = std::fs::remove_file(&pid_file);
        if let Some(pid) = from_file {
            self.wait_exec(pid);
            return Ok(pid);
        }
        match self.state(id)? {
            Some(s) if s.pid != 0 => Ok(s.pid),
            Some(s) => Err(OsError::Command(format!(
                "{} run {id}: container is {} without a pid",
                self.name(),
                s.status
            ))),
            None => Err(OsError::Command(format!(
                "{} run {id}: container vanished right after start: {}",
                self.name(),
                read_tail(log, start).trim()
            ))),
        }
    }

    fn state(&self, id: &str) -> Result<Option<ContainerState>, OsError> {
        validate_name(id)?;
        let args = ["state", id];
        let out = self.output(&args)?;
        if !out.status.success() {
            if is_not_found(&out.stderr) {
                return Ok(None);
            }
            return Err(self.failed(&args, &out));
        }
        parse_state(&out.stdout).map(Some)
    }

    fn list(&self) -> Result<Vec<ContainerState>, OsError> {
        let args = ["list", "--format", "json"];
        let out = self.output(&args)?;
        if !out.status.success() {
            return Err(self.failed(&args, &out));
        }
        parse_list(&out.stdout)
    }

    fn kill(&self, id: &str, signal: i32) -> Result<(), OsError> {
        validate_name(id)?;
        let sig = signal.to_string();
        let args = ["kill", id, sig.as_str()];
        let out = self.output(&args)?;
        if !out.status.success() {
            return Err(self.failed(&args, &out));
        }
        Ok(())
    }

    fn delete(&self, id: &str) -> Result<(), OsError> {
        validate_name(id)?;
        let args = ["delete", "-f", id];
        let out = self.output(&args)?;
        if out.status.success() {
            return Ok(());
        }
        // Idempotent: an unknown id is already deleted.
        if is_not_found(&out.stderr) || self.state(id)?.is_none() {
            return Ok(());
        }
        Err(self.failed(&args, &out))
    }

    fn exec_command(
        &self,
        id: &str,
        tty: bool,
        env: &[(String, String)],
        argv: &[String],
    ) -> Command {
        let mut c = self.cmd();
        c.arg("exec");
        if tty {
            c.arg("--tty");
        }
        // crun and runc both take `--env K=V` for exec.
        for (k, v) in env {
            c.arg("--env").arg(format!("{k}={v}"));
        }
        c.arg(id).args(argv);
        c
    }
}

/// The log's bytes written after `start`, at most [`ERR_TAIL`] of them.
fn read_tail(log: &Path, start: u64) -> String {
    let Ok(mut f) = std::fs::File::open(log) else {
        return String::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(start);
    let from = start.max(len.saturating_sub(ERR_TAIL));
    if f.seek(SeekFrom::Start(from)).is_err() {
        return String::new();
    }
    let mut buf = Vec::new();
    let _ = f.take(ERR_TAIL).read_to_end(&mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_state_and_list() {
        let s = parse_state(
            br#"{"ociVersion":"1.0.2","id":"web","pid":42,"status":"running","bundle":"/b"}"#,
        )
        .unwrap();
        assert_eq!(
            s,
            ContainerState {
                id: "web".into(),
                pid: 42,
                status: "running".into()
            }
        );
        assert!(parse_list(b"null").unwrap().is_empty());
        assert!(parse_list(b"[]").unwrap().is_empty());
        let l = parse_list(br#"[{"id":"a","pid":0,"status":"stopped"},{"id":"b","pid":7,"status":"running","created":"x"}]"#).unwrap();
        assert_eq!(l.len(), 2);
        assert_eq!(l[1].pid, 7);
        assert!(parse_state(b"garbage").is_err());
    }

    #[test]
    fn not_found_messages() {
        assert!(is_not_found(b"container does not exist"));
        assert!(is_not_found(
            b"error opening file `/run/x/web/status`: No such file or directory"
        ));
        assert!(!is_not_found(b"permission denied"));
    }

    #[test]
    fn relative_paths_refused() {
        assert!(OciRuntime::new("crun".into(), "/tmp/x".into()).is_err());
        assert!(OciRuntime::new("/usr/bin/crun".into(), "state".into()).is_err());
    }

    #[test]
    fn exec_command_line() {
        let rt = OciRuntime {
            binary: "/usr/bin/crun".into(),
            root: "/run/r".into(),
        };
        let c = rt.exec_command("web", true, &[], &["/bin/sh".into()]);
        let args: Vec<_> = c
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            args,
            ["--root", "/run/r", "exec", "--tty", "web", "/bin/sh"]
        );
        let c = rt.exec_command(
            "web",
            true,
            &[("TERM".into(), "xterm".into())],
            &["sh".into()],
        );
        let args: Vec<_> = c
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            args,
            [
                "--root",
                "/run/r",
                "exec",
                "--tty",
                "--env",
                "TERM=xterm",
                "web",
                "sh"
            ]
        );
    }
}
