//! The output: whole frame lines appended to a rotating file (or stdout), by one writer thread.
//!
//! Watch tasks send batches of complete lines through a bounded channel; a full channel slows
//! the watch down, never drops a frame. The writer flushes whenever it has caught up with the
//! channel (or has 64 KiB pending), so the file trails the stream by one batch at most. Every
//! `write` ends on a line boundary; if one fails part-way the file is cut back to the last whole
//! line, the output is reported not ready, and the same lines are retried with backoff — the
//! channel is not read meanwhile, so the watch stops consuming until space returns.

mod compress;
mod file;
mod retention;

use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use file::{Limits, OutputFile};

use crate::backoff::Backoff;
use crate::frame::{ResourceVersion, Scope, Write as Message};
use crate::health::Health;
use crate::metrics::Metrics;

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

/// What the writer did, reported when it ends.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct WriterStats {
    pub bytes: u64,
    pub writes: u64,
    pub failures: u64,
}

/// What the writer reports as it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress<'a> {
    /// Everything sent before a [`Message::Position`] is written: the scope's write position.
    Written(&'a Scope, &'a ResourceVersion),
    /// Everything sent for the scope before its [`Message::Covered`] is written and synced.
    Covered(&'a Scope),
}

/// Called with the writer's [`Progress`], on the writer thread.
pub type OnProgress = Box<dyn FnMut(Progress<'_>) + Send>;

/// Starts the writer thread. It ends when every sender is dropped, after writing and syncing all
/// it received; or, once `cancel` fires, at a write that still fails.
pub fn spawn_writer(
    sink: impl Sink,
    health: Arc<Health>,
    metrics: Arc<Metrics>,
    cancel: CancellationToken,
    retry: Backoff,
    on_progress: OnProgress,
) -> (
    mpsc::Sender<Message>,
    JoinHandle<Result<WriterStats, OutputError>>,
) {
    let (tx, rx) = mpsc::channel::<Message>(CHANNEL_BATCHES);
    let handle = std::thread::Builder::new()
        .name("output-writer".into())
        .spawn(move || {
            let mut writer = Writer {
                sink,
                health,
                metrics,
                cancel,
                retry,
                stats: WriterStats::default(),
                on_progress,
                positions: Vec::new(),
            };
            writer.run(rx)
        })
        .expect("spawning the writer thread");
    (tx, handle)
}

struct Writer<S> {
    sink: S,
    health: Arc<Health>,
    metrics: Arc<Metrics>,
    cancel: CancellationToken,
    retry: Backoff,
    stats: WriterStats,
    on_progress: OnProgress,
    /// Positions whose lines are still pending: reported once those are written.
    positions: Vec<(Scope, ResourceVersion)>,
}

impl<S: Sink> Writer<S> {
    fn run(&mut self, mut rx: mpsc::Receiver<Message>) -> Result<WriterStats, OutputError> {
        let mut pending: Vec<u8> = Vec::with_capacity(FLUSH_BYTES * 2);
        self.health.set_output_ok(true);
        loop {
            let message = match rx.try_recv() {
                Ok(message) => message,
                Err(mpsc::error::TryRecvError::Empty) => {
                    // Caught up: put what we have in the file before waiting.
                    self.flush(&mut pending)?;
                    match rx.blocking_recv() {
                        Some(message) => message,
                        None => break,
                    }
                }
                Err(mpsc::error::TryRecvError::Disconnected) => break,
            };
            let batch = match message {
                Message::Lines(batch) => batch,
                Message::Covered(scope) => {
                    self.flush(&mut pending)?;
                    self.sink.sync()?;
                    (self.on_progress)(Progress::Covered(&scope));
                    continue;
                }
                Message::Position(scope, rv) => {
                    if pending.is_empty() {
                        (self.on_progress)(Progress::Written(&scope, &rv));
                    } else {
                        self.positions.retain(|(s, _)| *s != scope);
                        self.positions.push((scope, rv));
                    }
                    continue;
                }
            };
            if pending.is_empty() && batch.len() >= FLUSH_BYTES {
                // Large enough on its own: write it without a copy.
                let mut batch = batch;
                self.flush(&mut batch)?;
                continue;
            }
            pending.extend_from_slice(&batch);
            if pending.len() >= FLUSH_BYTES {
                self.flush(&mut pending)?;
            }
        }
        self.flush(&mut pending)?;
        self.sink.sync()?;
        Ok(self.stats)
    }

    /// Writes `pending` whole, retrying with backoff while the sink fails (disk full, I/O
    /// errors). Gives up only when shutdown was asked for.
    fn flush(&mut self, pending: &mut Vec<u8>) -> Result<(), OutputError> {
        if pending.is_empty() {
            return Ok(());
        }
        let mut done = 0;
        while done < pending.len() {
            let rest = &pending[done..];
            let piece = self
                .sink
                .room()
                .map_or(rest.len(), |room| fitting(rest, room));
            match self.sink.append(&rest[..piece]) {
                Ok(()) => done += piece,
                Err(e) => {
                    self.stats.failures += 1;
                    self.metrics.output.write_error();
                    self.health.set_output_ok(false);
                    if self.cancel.is_cancelled() {
                        tracing::error!(error = %e, bytes = pending.len() - done, "giving up at shutdown; these frames were read but not written and will be read again from the API at the next start");
                        return Err(e);
                    }
                    let delay = self.retry.next_delay();
                    tracing::error!(error = %e, retry_in_ms = delay.as_millis() as u64, "cannot write the output; the watch waits until this write succeeds");
                    self.sleep(delay);
                }
            }
        }
        if !self.health.output_ok() {
            tracing::info!("the output is writable again");
            self.health.set_output_ok(true);
        }
        self.retry.reset();
        self.metrics.output.bytes_written(pending.len() as u64);
        self.stats.bytes += pending.len() as u64;
        self.stats.writes += 1;
        pending.clear();
        for (scope, rv) in std::mem::take(&mut self.positions) {
            (self.on_progress)(Progress::Written(&scope, &rv));
        }
        if pending.capacity() > FLUSH_BYTES * 4 {
            pending.shrink_to(FLUSH_BYTES * 2);
        }
        Ok(())
    }

    /// Sleeps, waking early on shutdown.
    fn sleep(&self, delay: Duration) {
        let until = Instant::now() + delay;
        while !self.cancel.is_cancelled() {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            std::thread::sleep(left.min(Duration::from_millis(50)));
        }
    }
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
            Box::new(|_| {}),
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
            Box::new(|_| {}),
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
            Box::new(|_| {}),
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
                Err(mpsc::error::TrySendError::Full(_)) => break,
                Err(e) => panic!("{e}"),
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
            Box::new(|_| {}),
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
}
