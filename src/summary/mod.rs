//! `kube-event-logger summary`: what the output files say happened, at a glance. Blocks of lines
//! are read and parsed on all cores by [`crate::reader`], as `tail` reads them; the
//! occurrences they hold are tallied in file order ([`Tally`], pure), then drawn for a terminal
//! or written as one JSON object (`render`).
//!
//! Occurrences are counted by [the occurrence rule](crate::occurrence): a frame stands for the
//! growth of its Event's count since the Event's previous frame (its first frame for its whole
//! count); DELETED frames (the Event expiring), relist repeats and decreases count nothing.
//! Frames before `--since` are read for that baseline but not counted.

mod render;
mod tally;

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

pub use render::{Style, json, text};
pub use tally::{Counted, Occurrence, Summary, Tally};

use crate::frame::DataKind;
use crate::occurrence::Update;
use crate::reader::{self, Block, Lines, ReadError, Selection, Source, Window};

/// What `summary` reads, selects and shows, validated.
pub struct SummaryConfig {
    /// Output files, each read with its rotated files.
    pub paths: Vec<PathBuf>,
    pub selection: Selection,
    /// Rows in each top list.
    pub top: usize,
    /// Bars in the timeline.
    pub buckets: usize,
    /// One JSON object instead of text for a terminal.
    pub json: bool,
    /// How the text is drawn (width, colour, what "now" is).
    pub style: Style,
}

/// Distinct reasons, objects and namespaces kept (each up to twice this) before the least
/// counted are pruned.
pub const KEYS_KEPT: usize = 10_000;

/// What one block of lines holds, in order.
#[derive(Default)]
struct Parsed {
    items: Vec<Item>,
    deleted: u64,
}

/// A selected frame, for the tally.
enum Item {
    /// Inside the window: counted by the rule.
    Count(Occurrence),
    /// Before `--since` (or DELETED): the baseline for the Event's later frames, not counted.
    Baseline(Update),
}

/// Parses and selects one block (pure: run on worker threads).
fn parse(block: &Block, selection: &Selection) -> (Lines, Parsed) {
    let (mut lines, mut p) = (Lines::default(), Parsed::default());
    reader::each_frame(block, &mut lines, |_, frame| {
        if !selection.matches_besides_time(&frame) {
            return;
        }
        match selection.window(&frame) {
            Window::Outside => {}
            Window::Before => p.items.push(Item::Baseline(Update::of(&frame))),
            Window::Inside if frame.kind() == Some(DataKind::Deleted) => {
                p.deleted += 1;
                p.items.push(Item::Baseline(Update::of(&frame)));
            }
            Window::Inside => p.items.push(Item::Count(Occurrence::of(&frame))),
        }
    });
    (lines, p)
}

#[derive(Debug, thiserror::Error)]
pub enum SummaryError {
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error("cannot write to stdout: {0}")]
    Write(std::io::Error),
}

/// `summary`: reads the files, tallies, and writes the text or JSON to stdout.
pub fn run(config: &SummaryConfig) -> Result<(), SummaryError> {
    use std::io::Write;
    let mut tally = Tally::new(KEYS_KEPT);
    read(config, &mut tally)?;
    let result = tally.finish(config.top, config.buckets);
    let shown = if config.json {
        json(&result)
    } else {
        text(&result, &config.style)
    };
    match std::io::stdout().lock().write_all(shown.as_bytes()) {
        // A closed pipe (`| head`) is the reader's choice, not a failure.
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(SummaryError::Write(e)),
        _ => Ok(()),
    }
}

/// Reads every file of each path (its rotated files oldest first, then the file itself),
/// selected as `config` says, into one summary. Lines that are not frames are told on stderr and
/// skipped.
pub fn read(config: &SummaryConfig, tally: &mut Tally) -> Result<(), ReadError> {
    let sources: Vec<Source> = config
        .paths
        .iter()
        .map(|path| Source {
            path: path.clone(),
            all: true,
            follow: false,
            lines: None,
        })
        .collect();
    let selection = &config.selection;
    let work = |block: &Block| parse(block, selection);
    let stop = AtomicBool::new(false);
    let invalid = reader::read(&sources, selection, &stop, work, |p: Parsed| {
        tally.skipped_deleted += p.deleted;
        for item in p.items {
            match item {
                Item::Count(o) => tally.add(o),
                Item::Baseline(update) => tally.baseline(update),
            }
        }
        true
    })?;
    tally.skipped_invalid = invalid;
    Ok(())
}
