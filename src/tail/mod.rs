//! `kube-event-logger tail`: read (and follow) the output files, filter, and print raw lines or
//! one table row per occurrence. The files are read by [`crate::reader`]; this module renders.

mod render;

use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use jiff::Timestamp;

pub use render::{Format, age, header, render};

use crate::reader::{self, Block, ReadError, Selection, Source};

/// What `tail` does, validated.
pub struct TailConfig {
    pub source: Source,
    pub selection: Selection,
    pub format: Format,
    pub headers: bool,
    /// Highlight Warning rows (stdout is a terminal and NO_COLOR is unset).
    pub color: bool,
    /// What AGE and relative times count from: now, or `KUBE_EVENT_LOGGER_NOW`.
    pub now: Timestamp,
}

#[derive(Debug, thiserror::Error)]
pub enum TailError {
    #[error(transparent)]
    Read(#[from] ReadError),
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
fn process(block: &Block, config: &TailConfig) -> Rendered {
    let mut r = Rendered::default();
    reader::each_frame(block, &mut r.invalid, |line, frame| {
        r.frames += 1;
        if !config.selection.matches(&frame) {
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

/// Runs until the files are read (or, following, until `stop` is set). Blocks of lines are
/// parsed and filtered on all cores and printed in file order.
pub fn run(config: &TailConfig, stop: Arc<AtomicBool>) -> Result<(), TailError> {
    let older = reader::older_files(&config.source)?;
    let mut out = io::stdout().lock();
    if config.headers && config.format != Format::Json {
        writeln!(out, "{}", header(config.format)).map_err(TailError::Write)?;
    }
    let mut write_error: Option<io::Error> = None;
    let (mut frames, mut not_frames) = (0u64, 0u64);
    let work = |block: &Block| process(block, config);
    let (source, selection) = (&config.source, &config.selection);
    let read = reader::in_parallel(source, selection, &older, &stop, work, |rendered| {
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
        let written = out.write_all(&rendered.out).and_then(|()| {
            if config.source.follow {
                out.flush()
            } else {
                Ok(())
            }
        });
        if let Err(e) = written {
            write_error = Some(e);
            stop.store(true, Ordering::Relaxed);
        }
    });
    let flushed = out.flush();
    if frames == 0 && not_frames >= NOT_FRAMES_AFTER {
        return Err(TailError::NotFrames {
            path: config.source.path.clone(),
            lines: not_frames,
        });
    }
    match (write_error, read, flushed) {
        // A closed pipe (`| head`) is the reader's choice, not a failure.
        (Some(e), _, _) | (None, _, Err(e)) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        (Some(e), _, _) | (None, Ok(()), Err(e)) => Err(TailError::Write(e)),
        (None, Err(e), _) => Err(ReadError::Read {
            path: config.source.path.clone(),
            source: e,
        }
        .into()),
        (None, Ok(()), Ok(())) => Ok(()),
    }
}
