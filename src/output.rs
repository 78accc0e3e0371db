//! The output: whole frame lines appended to a file (or stdout), by one writer thread.
//!
//! Watch tasks send batches of complete lines through a bounded channel; a full channel slows
//! the watch down, never drops a frame. The writer flushes whenever it has caught up with the
//! channel (or has 64 KiB pending), so the file trails the stream by one batch at most. Every
//! `write` ends on a line boundary; if one fails part-way the file is cut back to the last whole
//! line, so no reader ever sees a torn line.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;

use tokio::sync::mpsc;

use crate::health::Health;

/// Lines pending in memory before the writer flushes regardless.
const FLUSH_BYTES: usize = 64 * 1024;
/// Batches queued between the watch and the writer.
pub const CHANNEL_BATCHES: usize = 16;

/// One or more complete frame lines, each ending in `\n`.
pub type Batch = Vec<u8>;

#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("cannot create the output directory {path}: {source}")]
    CreateDir { path: PathBuf, source: io::Error },
    #[error("cannot open the output file {path}: {source}")]
    Open { path: PathBuf, source: io::Error },
    #[error("cannot write to {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
}

/// Where frames go.
pub enum Sink {
    File(OutputFile),
    Stdout,
}

impl Sink {
    fn append(&mut self, lines: &[u8]) -> Result<(), OutputError> {
        match self {
            Sink::File(f) => f.append(lines),
            Sink::Stdout => {
                let mut out = io::stdout().lock();
                out.write_all(lines)
                    .and_then(|()| out.flush())
                    .map_err(|source| OutputError::Write {
                        path: "stdout".into(),
                        source,
                    })
            }
        }
    }

    fn sync(&mut self) -> Result<(), OutputError> {
        match self {
            Sink::File(f) => f.sync(),
            Sink::Stdout => Ok(()),
        }
    }
}

/// The output file, opened for appending.
pub struct OutputFile {
    path: PathBuf,
    file: File,
    /// Length of the file as we wrote it: always a line boundary.
    len: u64,
}

impl OutputFile {
    /// Opens (or creates, mode 0640, with its parent directories) the output file.
    pub fn open(path: &Path) -> Result<Self, OutputError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| OutputError::CreateDir {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let open_err = |source| OutputError::Open {
            path: path.to_path_buf(),
            source,
        };
        let file = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o640)
            .open(path)
            .map_err(open_err)?;
        let len = file.metadata().map_err(open_err)?.len();
        Ok(Self {
            path: path.to_path_buf(),
            file,
            len,
        })
    }

    /// Appends whole lines. On failure the file is cut back to where it was, so that it still
    /// ends on a line boundary, and the lines may be offered again.
    pub fn append(&mut self, lines: &[u8]) -> Result<(), OutputError> {
        debug_assert!(lines.is_empty() || lines.ends_with(b"\n"));
        match self.file.write_all(lines) {
            Ok(()) => {
                self.len += lines.len() as u64;
                Ok(())
            }
            Err(source) => {
                if let Err(e) = self.file.set_len(self.len) {
                    tracing::error!(path = %self.path.display(), error = %e, "cannot cut a partly written batch back to the last whole line");
                }
                Err(OutputError::Write {
                    path: self.path.clone(),
                    source,
                })
            }
        }
    }

    /// Flushes file data to disk.
    pub fn sync(&mut self) -> Result<(), OutputError> {
        self.file.sync_data().map_err(|source| OutputError::Write {
            path: self.path.clone(),
            source,
        })
    }
}

/// What the writer did, reported when it ends.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct WriterStats {
    pub bytes: u64,
    pub writes: u64,
}

/// Starts the writer thread. It ends when every sender is dropped, after writing and syncing all
/// it received, or at the first write error.
pub fn spawn_writer(
    mut sink: Sink,
    health: Arc<Health>,
) -> (
    mpsc::Sender<Batch>,
    JoinHandle<Result<WriterStats, OutputError>>,
) {
    let (tx, mut rx) = mpsc::channel::<Batch>(CHANNEL_BATCHES);
    let handle = std::thread::Builder::new()
        .name("output-writer".into())
        .spawn(move || {
            let result = write_loop(&mut rx, &mut sink, &health);
            health.set_output_ok(result.is_ok());
            result
        })
        .expect("spawning the writer thread");
    (tx, handle)
}

fn write_loop(
    rx: &mut mpsc::Receiver<Batch>,
    sink: &mut Sink,
    health: &Health,
) -> Result<WriterStats, OutputError> {
    let mut stats = WriterStats::default();
    let mut pending: Vec<u8> = Vec::with_capacity(FLUSH_BYTES * 2);
    let mut flush = |pending: &mut Vec<u8>, stats: &mut WriterStats| -> Result<(), OutputError> {
        if pending.is_empty() {
            return Ok(());
        }
        sink.append(pending)?;
        stats.bytes += pending.len() as u64;
        stats.writes += 1;
        pending.clear();
        if pending.capacity() > FLUSH_BYTES * 4 {
            pending.shrink_to(FLUSH_BYTES * 2);
        }
        Ok(())
    };
    health.set_output_ok(true);
    loop {
        let batch = match rx.try_recv() {
            Ok(batch) => batch,
            Err(mpsc::error::TryRecvError::Empty) => {
                // Caught up: put what we have in the file before waiting.
                flush(&mut pending, &mut stats)?;
                match rx.blocking_recv() {
                    Some(batch) => batch,
                    None => break,
                }
            }
            Err(mpsc::error::TryRecvError::Disconnected) => break,
        };
        if pending.is_empty() && batch.len() >= FLUSH_BYTES {
            // Large enough on its own: write it without a copy.
            let mut batch = batch;
            flush(&mut batch, &mut stats)?;
            continue;
        }
        pending.extend_from_slice(&batch);
        if pending.len() >= FLUSH_BYTES {
            flush(&mut pending, &mut stats)?;
        }
    }
    flush(&mut pending, &mut stats)?;
    sink.sync()?;
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn creates_parent_dirs_with_mode_0640_and_appends() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/events.json");
        let mut f = OutputFile::open(&path).unwrap();
        f.append(b"{\"x\":1}\n").unwrap();
        let mut f = OutputFile::open(&path).unwrap();
        f.append(b"{\"x\":2}\n").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"{\"x\":1}\n{\"x\":2}\n");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode & !0o640, 0, "mode {mode:o}");
    }

    #[test]
    fn writer_drains_everything_before_it_ends() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.json");
        let health = Arc::new(Health::default());
        let (tx, handle) =
            spawn_writer(Sink::File(OutputFile::open(&path).unwrap()), health.clone());
        let mut expected = Vec::new();
        for i in 0..10_000 {
            let line = format!("{{\"n\":{i}}}\n").into_bytes();
            expected.extend_from_slice(&line);
            tx.blocking_send(line).unwrap();
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
        let (tx, handle) = spawn_writer(Sink::File(OutputFile::open(&path).unwrap()), health);
        tx.blocking_send(b"{\"n\":1}\n".to_vec()).unwrap();
        // The channel stays open: nothing else will come, yet the line must be in the file.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::fs::read(&path).unwrap() != b"{\"n\":1}\n" {
            assert!(
                std::time::Instant::now() < deadline,
                "the line was held back"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        drop(tx);
        handle.join().unwrap().unwrap();
    }

    #[test]
    fn a_failed_write_leaves_no_torn_line() {
        // /dev/full fails every write with ENOSPC.
        let Ok(file) = OpenOptions::new().append(true).open("/dev/full") else {
            return;
        };
        let mut out = OutputFile {
            path: "/dev/full".into(),
            file,
            len: 0,
        };
        let err = out.append(b"{\"x\":1}\n").unwrap_err();
        assert!(err.to_string().contains("/dev/full"), "{err}");
        assert_eq!(out.len, 0);
    }
}
