//! Per-app log files `<state-dir>/logs/<app>.log`. The runtime is given the
//! file itself as the container's stdout/stderr: a file outlives the agent,
//! a pipe would not (the container would get SIGPIPE when the agent
//! restarts). A follower (`poll`, called by the reconcile loop) reads new
//! complete lines for `app-log` notifications, and caps the size by
//! copy-truncate rotation to `<app>.log.1` — the container keeps its file
//! descriptor, and with `O_APPEND` (how the runtime must open it) its
//! next write lands at the new end.

use std::collections::HashMap;
use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Default cap of one log file before rotation.
pub const DEFAULT_LOG_CAP: u64 = 1 << 20;

pub struct Logs {
    dir: PathBuf,
    cap: u64,
    /// Read position of the follower per app (bytes already broadcast).
    offsets: Mutex<HashMap<String, u64>>,
}

impl Logs {
    pub fn new(dir: PathBuf, cap: u64) -> std::io::Result<Self> {
        fs::create_dir_all(&dir)?;
        Ok(Logs {
            dir,
            cap,
            offsets: Mutex::new(HashMap::new()),
        })
    }

    pub fn path(&self, app: &str) -> PathBuf {
        self.dir.join(format!("{app}.log"))
    }

    fn rotated(&self, app: &str) -> PathBuf {
        self.dir.join(format!("{app}.log.1"))
    }

    /// Creates the log file if missing and makes the follower read it from
    /// its current end (a start must not replay earlier runs' lines).
    pub fn prepare(&self, app: &str) -> std::io::Result<PathBuf> {
        let p = self.path(app);
        let f = fs::OpenOptions::new().create(true).append(true).open(&p)?;
        let len = f.metadata()?.len();
        if let Ok(mut o) = self.offsets.lock() {
            o.insert(app.to_string(), len);
        }
        Ok(p)
    }

    /// Appends an agent-side line (e.g. "exited with status 1") to the log.
    pub fn note(&self, app: &str, line: &str) {
        use std::io::Write;
        let p = self.path(app);
        if let Ok(mut f) = fs::OpenOptions::new().create(true).append(true).open(&p) {
            let _ = writeln!(f, "[apphostd] {line}");
        }
    }

    /// The last `lines` lines of the app's log (rotated part included).
    pub fn tail(&self, app: &str, lines: usize) -> std::io::Result<String> {
        let mut text = String::new();
        let mut found = false;
        for p in [self.rotated(app), self.path(app)] {
            match fs::read(&p) {
                Ok(b) => {
                    found = true;
                    text.push_str(&String::from_utf8_lossy(&b));
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        if !found {
            return Ok(String::new());
        }
        Ok(last_lines(&text, lines))
    }

    /// New complete lines of every log since the last call, as (app, line);
    /// rotates files over the cap.
    pub fn poll(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let Ok(rd) = fs::read_dir(&self.dir) else {
            return out;
        };
        let Ok(mut offsets) = self.offsets.lock() else {
            return out;
        };
        for e in rd.flatten() {
            let Ok(name) = e.file_name().into_string() else {
                continue;
            };
            let Some(app) = name.strip_suffix(".log") else {
                continue;
            };
            let path = e.path();
            let Ok(len) = fs::metadata(&path).map(|m| m.len()) else {
                continue;
            };
            // A log first seen (agent start) is followed from its end.
            let off = *offsets.entry(app.to_string()).or_insert(len);
            let off = if len < off { 0 } else { off };
            let (lines, consumed) = read_lines(&path, off);
            for l in lines {
                out.push((app.to_string(), l));
            }
            let mut new_off = off + consumed;
            if len > self.cap && self.rotate(app, &path).is_ok() {
                new_off = 0;
            }
            offsets.insert(app.to_string(), new_off);
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// copy-truncate: the writer keeps its descriptor.
    fn rotate(&self, app: &str, path: &Path) -> std::io::Result<()> {
        fs::copy(path, self.rotated(app))?;
        fs::OpenOptions::new().write(true).open(path)?.set_len(0)
    }

    /// Removes an app's logs (app deleted from the configuration).
    pub fn remove(&self, app: &str) {
        let _ = fs::remove_file(self.path(app));
        let _ = fs::remove_file(self.rotated(app));
        if let Ok(mut o) = self.offsets.lock() {
            o.remove(app);
        }
    }
}

/// Complete lines from `off`, and the bytes they took.
fn read_lines(path: &Path, off: u64) -> (Vec<String>, u64) {
    let Ok(mut f) = fs::File::open(path) else {
        return (Vec::new(), 0);
    };
    if f.seek(SeekFrom::Start(off)).is_err() {
        return (Vec::new(), 0);
    }
    let mut buf = Vec::new();
    // Bounded: a writer flooding the log cannot make one poll read without
    // limit.
    if f.take(4 << 20).read_to_end(&mut buf).is_err() {
        return (Vec::new(), 0);
    }
    let Some(last_nl) = buf.iter().rposition(|b| *b == b'\n') else {
        return (Vec::new(), 0);
    };
    let lines = String::from_utf8_lossy(&buf[..last_nl])
        .split('\n')
        .map(|s| s.trim_end_matches('\r').to_string())
        .collect();
    (lines, last_nl as u64 + 1)
}

fn last_lines(text: &str, n: usize) -> String {
    let trimmed = text.strip_suffix('\n').unwrap_or(text);
    if trimmed.is_empty() || n == 0 {
        return String::new();
    }
    let all: Vec<&str> = trimmed.split('\n').collect();
    let start = all.len().saturating_sub(n);
    let mut s = all[start..].join("\n");
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn append(p: &Path, s: &str) {
        let mut f = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .unwrap();
        f.write_all(s.as_bytes()).unwrap();
    }

    #[test]
    fn tail_returns_last_lines() {
        let t = tempfile::tempdir().unwrap();
        let logs = Logs::new(t.path().join("logs"), DEFAULT_LOG_CAP).unwrap();
        assert_eq!(logs.tail("a", 10).unwrap(), "");
        let p = logs.prepare("a").unwrap();
        append(&p, "one\ntwo\nthree\n");
        assert_eq!(logs.tail("a", 2).unwrap(), "two\nthree\n");
        assert_eq!(logs.tail("a", 100).unwrap(), "one\ntwo\nthree\n");
    }

    #[test]
    fn follow_reads_complete_new_lines_only() {
        let t = tempfile::tempdir().unwrap();
        let logs = Logs::new(t.path().to_path_buf(), DEFAULT_LOG_CAP).unwrap();
        let p = logs.path("a");
        append(&p, "old line\n");
        let p = logs.prepare("a").unwrap();
        append(&p, "x1\nx2\npart");
        assert_eq!(
            logs.poll(),
            vec![("a".into(), "x1".into()), ("a".into(), "x2".into())]
        );
        assert_eq!(logs.poll(), vec![]);
        append(&p, "ial\n");
        assert_eq!(logs.poll(), vec![("a".into(), "partial".into())]);
    }

    #[test]
    fn rotation_caps_size_and_keeps_tail() {
        let t = tempfile::tempdir().unwrap();
        let logs = Logs::new(t.path().to_path_buf(), 100).unwrap();
        let p = logs.prepare("a").unwrap();
        // The writer keeps its O_APPEND descriptor across the rotation.
        let mut w = fs::OpenOptions::new().append(true).open(&p).unwrap();
        for i in 0..20 {
            writeln!(w, "line {i:02}").unwrap();
        }
        let got = logs.poll();
        assert_eq!(got.len(), 20);
        assert_eq!(fs::metadata(&p).unwrap().len(), 0, "rotated");
        assert!(fs::metadata(logs.rotated("a")).unwrap().len() > 100);
        writeln!(w, "after").unwrap();
        assert_eq!(
            fs::read_to_string(&p).unwrap(),
            "after\n",
            "writer continues at the new end"
        );
        assert_eq!(logs.poll(), vec![("a".into(), "after".into())]);
        assert_eq!(logs.tail("a", 2).unwrap(), "line 19\nafter\n");
    }

    #[test]
    fn logs_survive_a_new_instance() {
        let t = tempfile::tempdir().unwrap();
        let p = Logs::new(t.path().to_path_buf(), DEFAULT_LOG_CAP)
            .unwrap()
            .prepare("a")
            .unwrap();
        append(&p, "kept\n");
        let logs = Logs::new(t.path().to_path_buf(), DEFAULT_LOG_CAP).unwrap();
        assert_eq!(logs.tail("a", 5).unwrap(), "kept\n");
        // Followed from the end: nothing replayed.
        assert_eq!(logs.poll(), vec![]);
    }
}
