//! `kube-event-logger tail`: read (and follow) the output files, filter, and print raw lines or
//! one table row per occurrence. The files are read by [`crate::reader`]; this module renders.

mod render;

use std::io::{self, Write};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use jiff::Timestamp;

pub use render::{Format, Row, Table, age};

use crate::reader::{self, Block, Lines, ReadError, Selection, Source};

/// What `tail` does, validated.
pub struct TailConfig {
    /// The files, read in the order given (following only the last).
    pub sources: Vec<Source>,
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
    #[error("cannot write to stdout: {0}")]
    Write(io::Error),
}

/// What one block of lines became.
#[derive(Default)]
struct Rendered {
    /// Raw lines (`-o json`).
    out: Vec<u8>,
    /// Table rows, laid out in file order by the printer.
    rows: Vec<Row>,
}

/// Parses, filters and renders one block (pure: run on worker threads).
fn process(block: &Block, config: &TailConfig) -> (Lines, Rendered) {
    let (mut lines, mut r) = (Lines::default(), Rendered::default());
    reader::each_frame(block, &mut lines, |line, frame| {
        if !config.selection.matches(&frame) {
            return;
        }
        match config.format {
            Format::Json => {
                r.out.extend_from_slice(line);
                r.out.push(b'\n');
            }
            f => r.rows.push(render::row(&frame, f, config.now)),
        }
    });
    (lines, r)
}

/// Runs until the files are read (or, following, until `stop` is set). Blocks of lines are
/// parsed and filtered on all cores and printed in file order. Nothing is printed before every
/// file is known readable, and a table's header waits for its first rows (or the end).
pub fn run(config: &TailConfig, stop: Arc<AtomicBool>) -> Result<(), TailError> {
    let mut out = io::stdout().lock();
    let follow = config.sources.iter().any(|s| s.follow);
    let mut table = (config.format != Format::Json)
        .then(|| Table::new(config.format, config.headers, config.color, follow));
    let mut failed: Option<io::Error> = None;
    let work = |block: &Block| process(block, config);
    reader::read(&config.sources, &config.selection, &stop, work, |r| {
        let mut bytes = r.out;
        if let Some(table) = &mut table {
            for row in r.rows {
                table.push(row, &mut bytes);
            }
        }
        let written = out
            .write_all(&bytes)
            .and_then(|()| if follow { out.flush() } else { Ok(()) });
        failed = written.err();
        failed.is_none()
    })?;
    if failed.is_none()
        && let Some(table) = &mut table
    {
        let mut rest = Vec::new();
        table.finish(&mut rest);
        failed = out.write_all(&rest).err();
    }
    if let Err(e) = out.flush()
        && failed.is_none()
    {
        failed = Some(e);
    }
    match failed {
        // A closed pipe (`| head`) is the reader's choice, not a failure.
        Some(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        Some(e) => Err(TailError::Write(e)),
        None => Ok(()),
    }
}
