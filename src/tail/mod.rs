//! `kube-event-logger tail`: read (and follow) the output files, filter, and print raw lines or
//! one table row per occurrence.

mod follow;
mod render;

use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use jiff::Timestamp;

pub use render::{Format, header, render};

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
    pub filter: Option<Filter>,
    pub format: Format,
    pub headers: bool,
    /// Highlight Warning rows (stdout is a terminal and NO_COLOR is unset).
    pub color: bool,
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
    #[error("cannot write to stdout: {0}")]
    Write(io::Error),
}

/// What `tail` saw.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct TailStats {
    pub printed: u64,
    pub invalid: u64,
}

/// Runs until the files are read (or, following, until `stop` is set).
pub fn run(config: &TailConfig, stop: Arc<AtomicBool>) -> Result<TailStats, TailError> {
    let older: Vec<PathBuf> = if config.all {
        let mut rotated: Vec<PathBuf> = crate::output::rotated_files(&config.path)
            .into_iter()
            .map(|(_, p)| p)
            .collect();
        rotated.reverse();
        rotated
    } else {
        Vec::new()
    };
    let stdout = io::stdout();
    let mut out = io::BufWriter::with_capacity(256 * 1024, stdout.lock());
    let mut stats = TailStats::default();
    let mut write_error: Option<io::Error> = None;
    if config.headers && config.format != Format::Json {
        writeln!(out, "{}", header(config.format)).map_err(TailError::Write)?;
    }
    let follow = config.follow;
    let mut on_line = |l: follow::Located<'_>| -> bool {
        if l.line.is_empty() {
            return true;
        }
        let frame = match EventFrame::parse(l.line) {
            Ok(f) => f,
            Err(e) => {
                stats.invalid += 1;
                tracing::warn!(
                    "{}:{}: not a watch frame ({e}); skipped",
                    l.path.display(),
                    l.number
                );
                return true;
            }
        };
        if !selected(config, &frame) {
            return true;
        }
        let written = match config.format {
            Format::Json => out.write_all(l.line).and_then(|()| out.write_all(b"\n")),
            f => writeln!(out, "{}", render(&frame, f, config.color)),
        };
        let written = written.and_then(|()| if follow { out.flush() } else { Ok(()) });
        if let Err(e) = written {
            write_error = Some(e);
            return false;
        }
        stats.printed += 1;
        true
    };
    let stop_now = || stop.load(Ordering::Relaxed);
    let read = follow::read(&older, &config.path, config.follow, &stop_now, &mut on_line);
    let flushed = out.flush();
    match (write_error, read, flushed) {
        // A closed pipe (`| head`) is the reader's choice, not a failure.
        (Some(e), _, _) | (None, _, Err(e)) if e.kind() == io::ErrorKind::BrokenPipe => Ok(stats),
        (Some(e), _, _) | (None, Ok(()), Err(e)) => Err(TailError::Write(e)),
        (None, Err(e), _) => Err(TailError::Read {
            path: config.path.clone(),
            source: e,
        }),
        (None, Ok(()), Ok(())) => Ok(stats),
    }
}

fn selected(config: &TailConfig, frame: &EventFrame<'_>) -> bool {
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
