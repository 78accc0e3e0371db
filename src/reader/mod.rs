//! Reading the output files for `tail` and `summary`: which files ([`older_files`]), in blocks
//! of whole lines read on one thread and worked on all cores, handed back in file order
//! ([`in_parallel`]); each line parsed as a frame ([`each_frame`]) and selected
//! ([`Selection`]). What is done with a frame (a table row, a count) is the caller's.
//!
//! - [`follow`]: the files themselves: rotated ones (plain or `.gz`) oldest first, then the
//!   active file, followed across rotations.

pub mod follow;

use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use jiff::Timestamp;

pub use follow::Block;

use crate::event::EventFrame;
use crate::filter::Filter;

/// Which frames are shown or counted: `--namespace`, `--since`, `--until`, `--filter`.
#[derive(Default)]
pub struct Selection {
    /// Only these namespaces (all when empty).
    pub namespaces: Vec<String>,
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
    pub filter: Option<Filter>,
}

impl Selection {
    /// Whether `frame` is selected. A frame with no time is outside any time window.
    pub fn matches(&self, frame: &EventFrame<'_>) -> bool {
        if !self.namespaces.is_empty() {
            let ns = frame.object.metadata.namespace.as_deref().unwrap_or("");
            if !self.namespaces.iter().any(|n| n == ns) {
                return false;
            }
        }
        if self.since.is_some() || self.until.is_some() {
            let Some(t) = frame
                .object
                .time()
                .and_then(|t| t.parse::<Timestamp>().ok())
            else {
                return false;
            };
            if self.since.is_some_and(|s| t < s) || self.until.is_some_and(|u| t > u) {
                return false;
            }
        }
        self.filter.as_ref().is_none_or(|f| f.matches(frame))
    }
}

/// What files to read, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// The active output file.
    pub path: PathBuf,
    /// Also read its rotated files (plain and `.gz`), oldest first.
    pub all: bool,
    /// Keep reading as it grows and across rotations.
    pub follow: bool,
    /// Start with the active file's last N selected lines (else its start).
    pub lines: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error(
        "{} is a directory: give the output file in it, e.g. {}",
        path.display(),
        path.join("events.json").display()
    )]
    Directory { path: PathBuf },
}

/// The rotated files to read before the active one (oldest first; none without `all`), once the
/// active file is known to be readable: an unreadable file is reported before anything is
/// printed.
pub fn older_files(source: &Source) -> Result<Vec<PathBuf>, ReadError> {
    if std::fs::metadata(&source.path).is_ok_and(|m| m.is_dir()) {
        return Err(ReadError::Directory {
            path: source.path.clone(),
        });
    }
    if !source.follow
        && let Err(e) = std::fs::File::open(&source.path)
    {
        return Err(ReadError::Read {
            path: source.path.clone(),
            source: e,
        });
    }
    if !source.all {
        return Ok(Vec::new());
    }
    let mut rotated: Vec<PathBuf> = crate::output_files::beside(&source.path)
        .into_iter()
        .map(|(_, p)| p)
        .collect();
    rotated.reverse();
    Ok(rotated)
}

/// Each line of a block parsed as a frame, in order; a line that is not one is told in
/// `invalid` as "path:line: why" and skipped.
pub fn each_frame<'b>(
    block: &'b Block,
    invalid: &mut Vec<String>,
    mut each: impl FnMut(&'b [u8], EventFrame<'b>),
) {
    for (at, line) in (block.first_line..).zip(block.bytes.split(|&b| b == b'\n')) {
        if line.is_empty() {
            continue;
        }
        match EventFrame::parse(line) {
            Ok(frame) => each(line, frame),
            Err(e) => invalid.push(format!(
                "{}:{at}: not a watch frame ({e}); skipped",
                block.path.display()
            )),
        }
    }
}

/// Reads `older` and then the source's active file in blocks on one thread, runs `work` on the
/// blocks on all cores, and hands the results to `print` in file order. `selection` decides
/// which lines count for `--lines`. Returns how reading ended.
pub fn in_parallel<R: Send>(
    source: &Source,
    selection: &Selection,
    older: &[PathBuf],
    stop: &AtomicBool,
    work: impl Fn(&Block) -> R + Sync,
    mut print: impl FnMut(R),
) -> io::Result<()> {
    let workers = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(1, 8);
    std::thread::scope(|scope| {
        let (work_tx, work_rx) = std::sync::mpsc::sync_channel::<(u64, Block)>(workers);
        let work_rx = Arc::new(std::sync::Mutex::new(work_rx));
        let (done_tx, done_rx) = std::sync::mpsc::sync_channel::<(u64, R)>(workers);
        let work = &work;
        for _ in 0..workers {
            let (work_rx, done_tx) = (work_rx.clone(), done_tx.clone());
            scope.spawn(move || {
                loop {
                    let job = work_rx.lock().unwrap_or_else(|e| e.into_inner()).recv();
                    let Ok((seq, block)) = job else { break };
                    if done_tx.send((seq, work(&block))).is_err() {
                        break;
                    }
                }
            });
        }
        drop(done_tx);
        let reader = scope.spawn(move || {
            let mut seq = 0;
            let stopped = || stop.load(Ordering::Relaxed);
            let shown = |line: &[u8]| EventFrame::parse(line).is_ok_and(|f| selection.matches(&f));
            let from = follow::From {
                older,
                active: &source.path,
                lines: source.lines,
                shown: &shown,
                follow: source.follow,
            };
            follow::read(&from, &stopped, &mut |block| {
                let sent = work_tx.send((seq, block)).is_ok();
                seq += 1;
                sent && !stopped()
            })
        });
        let mut waiting = std::collections::BTreeMap::new();
        let mut next = 0;
        for (seq, rendered) in done_rx {
            waiting.insert(seq, rendered);
            while let Some(r) = waiting.remove(&next) {
                next += 1;
                print(r);
            }
        }
        reader
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the reader thread panicked")))
    })
}
