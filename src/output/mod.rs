//! The output: whole frame lines appended to a rotating file (or stdout).
//!
//! Watch tasks hand batches of complete lines to the [`writer`]: written at once on the watch's
//! own thread when nothing is queued and the file needs nothing slow (the usual case on a quiet
//! cluster: one wake-up per event, not two), else through a bounded channel to the writer
//! thread; a full channel slows the watch down, never drops a frame. Every `write` ends on a
//! line boundary; if one fails part-way the file is cut back to the last whole line, the output
//! is reported not ready, and the same lines are retried with backoff on the writer thread —
//! the channel is not read meanwhile, so the watch stops consuming until space returns.

mod compress;
mod file;
mod pending;
mod retention;
mod writer;

use std::io::{self, Write};
use std::path::PathBuf;

pub use file::{Limits, OutputFile};
pub use writer::{OutputHandle, Progress, WriterStats, spawn_writer};

/// Lines pending in memory before the writer flushes regardless.
const FLUSH_BYTES: usize = 64 * 1024;
/// Batches queued between the watch and the writer.
pub const CHANNEL_BATCHES: usize = 8;

#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("cannot create the output directory {path}: {source}")]
    CreateDir { path: PathBuf, source: io::Error },
    #[error(
        "{} is a file, not a directory: the output {} needs a directory there; give \
         --output-file a path in a directory",
        file.display(),
        path.display()
    )]
    NotADirectory { path: PathBuf, file: PathBuf },
    #[error(
        "cannot write in {}, the directory of the output {}: {source}. Make it writable for this \
         user (UID {uid}; `kube-event-logger prepare-dir DIR` as root does), or give another \
         --output-file",
        dir.display(),
        path.display()
    )]
    Unwritable {
        path: PathBuf,
        dir: PathBuf,
        uid: u32,
        source: io::Error,
    },
    #[error("cannot open the output file {path}: {source}")]
    Open { path: PathBuf, source: io::Error },
    #[error("cannot write to {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
    #[error(
        "another kube-event-logger{} is writing to {path} (lock {lock}); stop it, or give this \
         one another --output-file",
        holder.map(|pid| format!(" (pid {pid})")).unwrap_or_default()
    )]
    Locked {
        path: PathBuf,
        lock: PathBuf,
        holder: Option<u32>,
    },
}

/// Where the writer puts lines.
pub trait Sink: Send + 'static {
    /// Appends whole lines, all or nothing.
    fn append(&mut self, lines: &[u8]) -> Result<(), OutputError>;
    /// How many bytes the current file takes before it must rotate (`None`: no limit). The
    /// writer hands over no more whole lines than that at once, so a rotated file does not
    /// overshoot the size limit by a batch.
    fn room(&self) -> Option<u64> {
        None
    }
    /// Makes what was appended durable.
    fn sync(&mut self) -> Result<(), OutputError>;
}

impl Sink for OutputFile {
    fn append(&mut self, lines: &[u8]) -> Result<(), OutputError> {
        OutputFile::append(self, lines)
    }
    fn room(&self) -> Option<u64> {
        Some(OutputFile::room(self))
    }
    fn sync(&mut self) -> Result<(), OutputError> {
        OutputFile::sync(self)
    }
}

/// `--output -`.
pub struct Stdout;

impl Sink for Stdout {
    fn append(&mut self, lines: &[u8]) -> Result<(), OutputError> {
        let mut out = io::stdout().lock();
        out.write_all(lines)
            .and_then(|()| out.flush())
            .map_err(|source| OutputError::Write {
                path: "stdout".into(),
                source,
            })
    }
    fn sync(&mut self) -> Result<(), OutputError> {
        Ok(())
    }
}

/// Held while a process writes an output file: an exclusive `flock` on a dot-file beside it
/// (`.events.json.lock`, never matched by the harvester glob), released when the process ends,
/// however it ends.
#[derive(Debug)]
pub struct Lock {
    _file: std::fs::File,
}

/// This process's user id (for messages).
fn uid() -> u32 {
    std::fs::metadata("/proc/self").map_or(0, |m| std::os::unix::fs::MetadataExt::uid(&m))
}

impl Lock {
    /// Takes the output's lock (creating its directory), or says who holds it.
    pub fn acquire(path: &std::path::Path) -> Result<Lock, OutputError> {
        use std::io::{Read, Seek};
        use std::os::unix::fs::OpenOptionsExt;
        let lock = crate::output_files::sibling(path, crate::output_files::Naming::lock)
            .ok_or_else(|| OutputError::Open {
                path: path.to_path_buf(),
                source: io::Error::other("the output path needs a UTF-8 file name"),
            })?;
        let dir = crate::output_files::parent(path)
            .unwrap_or(std::path::Path::new("."))
            .to_path_buf();
        // The lock is ours, not the user's: its failures are told as the output's directory's.
        let failed = |source| OutputError::Unwritable {
            path: path.to_path_buf(),
            dir: dir.clone(),
            uid: uid(),
            source,
        };
        if let Err(source) = std::fs::create_dir_all(&dir) {
            if let Some(file) = dir.ancestors().find(|a| a.is_file()) {
                return Err(OutputError::NotADirectory {
                    path: path.to_path_buf(),
                    file: file.to_path_buf(),
                });
            }
            return Err(OutputError::CreateDir { path: dir, source });
        }
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o640)
            .open(&lock)
            .map_err(failed)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut pid = String::new();
                let _ = file.read_to_string(&mut pid);
                return Err(OutputError::Locked {
                    path: path.to_path_buf(),
                    lock,
                    holder: pid.trim().parse().ok(),
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(failed(e)),
        }
        let pid = std::process::id().to_string();
        file.set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| file.write_all(pid.as_bytes()))
            .map_err(failed)?;
        Ok(Lock { _file: file })
    }
}

/// Creates the output directory and gives it to `uid:gid` with mode 2750: the daemon writes,
/// the group (a non-root Filebeat, say) reads, new files inherit the group, others see nothing.
pub fn prepare_dir(dir: &std::path::Path, uid: u32, gid: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir)?;
    std::os::unix::fs::chown(dir, Some(uid), Some(gid))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o2750))
}

/// Pure: how many bytes of whole lines from the start of `lines` fit in `room` — at least the
/// first line (a file takes one line larger than its limit rather than none).
fn fitting(lines: &[u8], room: u64) -> usize {
    let room = usize::try_from(room).unwrap_or(usize::MAX);
    if lines.len() <= room {
        return lines.len();
    }
    match memchr::memrchr(b'\n', &lines[..room]) {
        Some(i) => i + 1,
        None => memchr::memchr(b'\n', lines).map_or(lines.len(), |i| i + 1),
    }
}

#[cfg(test)]
mod tests {
    use super::file::BIG;
    use super::*;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use tokio_util::sync::CancellationToken;

    use crate::backoff::Backoff;
    use crate::frame::{ResourceVersion, Scope, Write as Message};
    use crate::health::Health;
    use std::sync::Mutex;

    fn fast_retry() -> Backoff {
        Backoff::new(Duration::from_millis(2), Duration::from_millis(20))
    }

    #[test]
    fn prepare_dir_creates_and_hands_over_the_directory() {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("a/kube-event-logger");
        // Our own uid and gid, as a file we create gets them.
        let mine = std::fs::metadata(dir.path()).unwrap();
        let (uid, gid) = (mine.uid(), mine.gid());
        prepare_dir(&target, uid, gid).unwrap();
        let meta = std::fs::metadata(&target).unwrap();
        assert_eq!((meta.uid(), meta.gid()), (uid, gid));
        assert_eq!(meta.permissions().mode() & 0o7777, 0o2750);
        prepare_dir(&target, uid, gid).unwrap();
        assert!(prepare_dir(&dir.path().join("f\0"), uid, gid).is_err());
    }

    #[test]
    fn one_lock_per_output() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/events.json");
        let held = Lock::acquire(&path).unwrap();
        let err = Lock::acquire(&path).unwrap_err();
        assert!(
            matches!(&err, OutputError::Locked { holder: Some(pid), .. } if *pid == std::process::id()),
            "{err}"
        );
        assert!(err.to_string().contains(".events.json.lock"), "{err}");
        // Another output in the same directory has its own lock.
        let _other = Lock::acquire(&dir.path().join("sub/other.json")).unwrap();
        drop(held);
        Lock::acquire(&path).unwrap();
    }

    #[test]
    fn writer_drains_everything_before_it_ends() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.json");
        let health = Arc::new(Health::default());
        let (tx, handle) = spawn_writer(
            OutputFile::open(&path, BIG).unwrap(),
            health.clone(),
            Arc::default(),
            CancellationToken::new(),
            fast_retry(),
            Untracked,
        );
        let mut expected = Vec::new();
        for i in 0..10_000 {
            let line = format!("{{\"n\":{i}}}\n").into_bytes();
            expected.extend_from_slice(&line);
            tx.blocking_send(line.into()).unwrap();
        }
        drop(tx);
        let stats = handle.join().unwrap().unwrap();
        assert_eq!(stats.bytes, expected.len() as u64);
        assert_eq!(std::fs::read(&path).unwrap(), expected);
        assert!(health.output_ok());
    }

    #[test]
    fn lines_reach_the_file_as_soon_as_the_writer_has_caught_up() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.json");
        let health = Arc::new(Health::default());
        let (tx, handle) = spawn_writer(
            OutputFile::open(&path, BIG).unwrap(),
            health,
            Arc::default(),
            CancellationToken::new(),
            fast_retry(),
            Untracked,
        );
        tx.blocking_send(b"{\"n\":1}\n".to_vec().into()).unwrap();
        // The channel stays open: nothing else will come, yet the line must be in the file.
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::fs::read(&path).unwrap() != b"{\"n\":1}\n" {
            assert!(Instant::now() < deadline, "the line was held back");
            std::thread::sleep(Duration::from_millis(5));
        }
        drop(tx);
        handle.join().unwrap().unwrap();
    }

    /// A sink that fails while `failing` is set, recording what it accepted.
    #[derive(Clone, Default)]
    struct Flaky {
        failing: Arc<Mutex<bool>>,
        written: Arc<Mutex<Vec<u8>>>,
    }

    impl Sink for Flaky {
        fn append(&mut self, lines: &[u8]) -> Result<(), OutputError> {
            if *self.failing.lock().unwrap() {
                return Err(OutputError::Write {
                    path: "flaky".into(),
                    source: io::Error::new(io::ErrorKind::StorageFull, "No space left on device"),
                });
            }
            self.written.lock().unwrap().extend_from_slice(lines);
            Ok(())
        }
        fn sync(&mut self) -> Result<(), OutputError> {
            Ok(())
        }
    }

    #[test]
    fn a_full_disk_stops_consumption_reports_not_ready_and_resumes_without_loss() {
        let sink = Flaky::default();
        *sink.failing.lock().unwrap() = true;
        let health = Arc::new(Health::default());
        let (tx, handle) = spawn_writer(
            sink.clone(),
            health.clone(),
            Arc::default(),
            CancellationToken::new(),
            fast_retry(),
            Untracked,
        );
        let mut expected = Vec::new();
        let mut sent = 0;
        // While failing, the writer stops reading: the channel fills and sending blocks.
        loop {
            let line = format!("{{\"n\":{sent}}}\n").into_bytes();
            match tx.try_send(line.clone().into()) {
                Ok(()) => {
                    expected.extend_from_slice(&line);
                    sent += 1;
                }
                Err(tokio::sync::mpsc::error::TrySendError::Full(_)) => break,
                Err(e) => panic!("{e:?}"),
            }
            assert!(
                sent < 1000,
                "the writer kept consuming while the disk was full"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(!health.output_ok());
        assert!(sink.written.lock().unwrap().is_empty());
        *sink.failing.lock().unwrap() = false;
        drop(tx);
        let stats = handle.join().unwrap().unwrap();
        assert!(stats.failures > 0);
        assert_eq!(
            *sink.written.lock().unwrap(),
            expected,
            "every line once, in order"
        );
        assert!(health.output_ok());
    }

    #[test]
    fn shutdown_during_a_failing_write_gives_up_with_the_error() {
        let sink = Flaky::default();
        *sink.failing.lock().unwrap() = true;
        let cancel = CancellationToken::new();
        let (tx, handle) = spawn_writer(
            sink,
            Arc::new(Health::default()),
            Arc::default(),
            cancel.clone(),
            Backoff::default(),
            Untracked,
        );
        tx.blocking_send(b"{}\n".to_vec().into()).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        cancel.cancel();
        drop(tx);
        let err = handle.join().unwrap().unwrap_err();
        assert!(err.to_string().contains("flaky"), "{err}");
    }

    #[test]
    fn a_batch_is_cut_at_the_last_whole_line_that_fits_the_file() {
        let lines = b"aaaa\nbbbb\ncccc\n";
        assert_eq!(fitting(lines, 100), 15, "all fits");
        assert_eq!(fitting(lines, 12), 10, "two lines, not two and a half");
        assert_eq!(fitting(lines, 10), 10);
        assert_eq!(
            fitting(lines, 4),
            5,
            "at least one line, even past the room"
        );
        assert_eq!(fitting(lines, 0), 5);
    }

    /// Progress nobody reads.
    struct Untracked;

    impl Progress for Untracked {
        fn written(&mut self, _: &Scope, _: &ResourceVersion) {}
        fn covers(&self, _: &Scope) -> bool {
            false
        }
        fn covered(&mut self, _: &Scope) {}
    }

    /// Records the write positions reported.
    struct Positions(Arc<Mutex<Vec<String>>>);

    impl Progress for Positions {
        fn written(&mut self, _: &Scope, rv: &ResourceVersion) {
            self.0.lock().unwrap().push(rv.as_str().to_owned());
        }
        fn covers(&self, _: &Scope) -> bool {
            false
        }
        fn covered(&mut self, _: &Scope) {}
    }

    #[tokio::test]
    async fn an_idle_writer_is_bypassed_and_a_failed_inline_write_is_retried_in_order() {
        let sink = Flaky::default();
        let health = Arc::new(Health::default());
        let writes: Arc<Mutex<Vec<String>>> = Arc::default();
        let log = writes.clone();
        let (out, handle) = spawn_writer(
            sink.clone(),
            health.clone(),
            Arc::default(),
            CancellationToken::new(),
            fast_retry(),
            Positions(log),
        );
        let rv = |s: &str| ResourceVersion::new(s);
        // Idle: written by the sender itself, at once (the writer thread never saw it), and
        // its position reported at once.
        out.send(b"{\"n\":1}\n".to_vec().into()).await.unwrap();
        assert_eq!(*sink.written.lock().unwrap(), b"{\"n\":1}\n");
        out.send(Message::Position(Scope::All, rv("1")))
            .await
            .unwrap();
        assert_eq!(*writes.lock().unwrap(), ["1"]);
        // The disk fails: the inline write keeps the lines pending and the writer thread
        // retries; later sends queue behind them, nothing reordered, nothing lost.
        *sink.failing.lock().unwrap() = true;
        out.send(b"{\"n\":2}\n".to_vec().into()).await.unwrap();
        assert!(!health.output_ok(), "not ready while writes fail");
        out.send(Message::Position(Scope::All, rv("2")))
            .await
            .unwrap();
        out.send(b"{\"n\":3}\n".to_vec().into()).await.unwrap();
        out.send(Message::Position(Scope::All, rv("3")))
            .await
            .unwrap();
        assert_eq!(
            *writes.lock().unwrap(),
            ["1"],
            "no position before its lines"
        );
        tokio::time::sleep(Duration::from_millis(30)).await;
        *sink.failing.lock().unwrap() = false;
        let deadline = Instant::now() + Duration::from_secs(10);
        while sink.written.lock().unwrap().len() < 24 {
            assert!(Instant::now() < deadline, "the retry never came");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(
            *sink.written.lock().unwrap(),
            b"{\"n\":1}\n{\"n\":2}\n{\"n\":3}\n"
        );
        drop(out);
        let stats = tokio::task::spawn_blocking(move || handle.join().unwrap())
            .await
            .unwrap()
            .unwrap();
        assert!(stats.failures >= 1);
        // Each position after its lines, in order (positions pending together are reported as
        // the newest per scope).
        let reported = writes.lock().unwrap().clone();
        assert!(
            reported == ["1", "3"] || reported == ["1", "2", "3"],
            "{reported:?}"
        );
        assert!(health.output_ok());
    }
}
