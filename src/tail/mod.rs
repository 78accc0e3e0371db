//! `kube-event-logger tail`: read (and follow) the output files, filter, and print raw lines or
//! one table row per occurrence.

pub mod follow;
mod render;

use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use jiff::Timestamp;

pub use render::{Format, age, header, render};

use crate::event::EventFrame;
use crate::filter::Filter;

/// What `tail` does, validated.
pub struct TailConfig {
    pub path: PathBuf,
    pub follow: bool,
    /// Also read the rotated files (plain and `.gz`), oldest first.
    pub all: bool,
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
    /// Only these namespaces (all when empty).
    pub namespaces: Vec<String>,
    /// Start with the active file's last N lines.
    pub lines: Option<u64>,
    pub filter: Option<Filter>,
    pub format: Format,
    pub headers: bool,
    /// Highlight Warning rows (stdout is a terminal and NO_COLOR is unset).
    pub color: bool,
    /// What AGE and relative times count from: now, or `KUBE_EVENT_LOGGER_NOW`.
    pub now: Timestamp,
}

impl TailConfig {
    /// Colors only for a person: a terminal, and no NO_COLOR.
    pub fn color_default() -> bool {
        io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TailError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error(
        "{} is a directory: give the output file in it, e.g. {}",
        path.display(),
        path.join("events.json").display()
    )]
    Directory { path: PathBuf },
    #[error(
        "{} does not hold watch frames (its first {lines} lines are not): is it a kube-event-logger output file?",
        path.display()
    )]
    NotFrames { path: PathBuf, lines: u64 },
    #[error("cannot write to stdout: {0}")]
    Write(io::Error),
}

/// Lines that are not frames, with no frame before them, after which a file is taken for
/// something else than our output.
const NOT_FRAMES_AFTER: u64 = 5;

/// What one block of lines became.
#[derive(Default)]
struct Rendered {
    out: Vec<u8>,
    /// Lines that parsed as frames (shown or not).
    frames: u64,
    /// Lines that are not frames: "path:line: why".
    invalid: Vec<String>,
}

/// Parses, filters and renders one block (pure: run on worker threads).
fn process(block: &follow::Block, config: &TailConfig) -> Rendered {
    let mut r = Rendered::default();
    each_frame(block, &mut r.invalid, |line, frame| {
        r.frames += 1;
        if !selected(config, &frame) {
            return;
        }
        match config.format {
            Format::Json => r.out.extend_from_slice(line),
            f => r
                .out
                .extend_from_slice(render(&frame, f, config.color, config.now).as_bytes()),
        }
        r.out.push(b'\n');
    });
    r
}

/// Each line of a block parsed as a frame, in order; a line that is not one is told in
/// `invalid` as "path:line: why" and skipped.
pub fn each_frame<'b>(
    block: &'b follow::Block,
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

/// Runs until the files are read (or, following, until `stop` is set). Blocks of lines are
/// parsed and filtered on all cores and printed in file order.
pub fn run(config: &TailConfig, stop: Arc<AtomicBool>) -> Result<(), TailError> {
    let older = older_files(config)?;
    let mut out = io::stdout().lock();
    if config.headers && config.format != Format::Json {
        writeln!(out, "{}", header(config.format)).map_err(TailError::Write)?;
    }
    let mut write_error: Option<io::Error> = None;
    let (mut frames, mut not_frames) = (0u64, 0u64);
    let work = |block: &follow::Block| process(block, config);
    let read = in_parallel(config, &older, &stop, work, |rendered: Rendered| {
        if frames == 0 && not_frames >= NOT_FRAMES_AFTER {
            return;
        }
        // A file whose lines are not frames at all says so after a few, not after every line.
        let foreign = frames == 0 && rendered.frames == 0;
        for why in &rendered.invalid {
            if foreign && not_frames >= NOT_FRAMES_AFTER {
                break;
            }
            eprintln!("{why}");
            not_frames += 1;
        }
        frames += rendered.frames;
        if frames == 0 && not_frames >= NOT_FRAMES_AFTER {
            stop.store(true, Ordering::Relaxed);
            return;
        }
        if write_error.is_some() {
            return;
        }
        let written = out
            .write_all(&rendered.out)
            .and_then(|()| if config.follow { out.flush() } else { Ok(()) });
        if let Err(e) = written {
            write_error = Some(e);
            stop.store(true, Ordering::Relaxed);
        }
    });
    let flushed = out.flush();
    if frames == 0 && not_frames >= NOT_FRAMES_AFTER {
        return Err(TailError::NotFrames {
            path: config.path.clone(),
            lines: not_frames,
        });
    }
    match (write_error, read, flushed) {
        // A closed pipe (`| head`) is the reader's choice, not a failure.
        (Some(e), _, _) | (None, _, Err(e)) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        (Some(e), _, _) | (None, Ok(()), Err(e)) => Err(TailError::Write(e)),
        (None, Err(e), _) => Err(TailError::Read {
            path: config.path.clone(),
            source: e,
        }),
        (None, Ok(()), Ok(())) => Ok(()),
    }
}

/// The rotated files to read before the active one (oldest first; none without `all`), once the
/// active file is known to be readable: an unreadable file is reported before anything is
/// printed.
pub fn older_files(config: &TailConfig) -> Result<Vec<PathBuf>, TailError> {
    if std::fs::metadata(&config.path).is_ok_and(|m| m.is_dir()) {
        return Err(TailError::Directory {
            path: config.path.clone(),
        });
    }
    if !config.follow
        && let Err(source) = std::fs::File::open(&config.path)
    {
        return Err(TailError::Read {
            path: config.path.clone(),
            source,
        });
    }
    if !config.all {
        return Ok(Vec::new());
    }
    let mut rotated: Vec<PathBuf> = crate::output_files::beside(&config.path)
        .into_iter()
        .map(|(_, p)| p)
        .collect();
    rotated.reverse();
    Ok(rotated)
}

/// Reads the files in blocks on one thread, runs `work` on the blocks on all cores, and hands
/// the results to `print` in file order. Returns how reading ended.
pub fn in_parallel<R: Send>(
    config: &TailConfig,
    older: &[PathBuf],
    stop: &AtomicBool,
    work: impl Fn(&follow::Block) -> R + Sync,
    mut print: impl FnMut(R),
) -> io::Result<()> {
    let workers = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(1, 8);
    std::thread::scope(|scope| {
        let (work_tx, work_rx) = std::sync::mpsc::sync_channel::<(u64, follow::Block)>(workers);
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
            let shown = |line: &[u8]| EventFrame::parse(line).is_ok_and(|f| selected(config, &f));
            let from = follow::From {
                older,
                active: &config.path,
                lines: config.lines,
                shown: &shown,
                follow: config.follow,
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

pub fn selected(config: &TailConfig, frame: &EventFrame<'_>) -> bool {
    if !config.namespaces.is_empty() {
        let ns = frame.object.metadata.namespace.as_deref().unwrap_or("");
        if !config.namespaces.iter().any(|n| n == ns) {
            return false;
        }
    }
    if config.since.is_some() || config.until.is_some() {
        let Some(t) = frame
            .object
            .time()
            .and_then(|t| t.parse::<Timestamp>().ok())
        else {
            return false;
        };
        if config.since.is_some_and(|s| t < s) || config.until.is_some_and(|u| t > u) {
            return false;
        }
    }
    config.filter.as_ref().is_none_or(|f| f.matches(frame))
}
