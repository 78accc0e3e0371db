//! `kube-event-logger summary`: what the output files say happened, at a glance. Blocks of lines
//! are read and parsed on all cores as `tail` reads them ([`crate::tail::in_parallel`]); the
//! occurrences they hold are tallied in file order ([`Tally`], pure), then drawn for a terminal
//! or written as one JSON object ([`render`]).
//!
//! An occurrence is counted as the dashboards count it: one per frame, DELETED frames not
//! counted (they repeat an Event's last state when it expires), a frame repeated by a relist
//! (same uid and resourceVersion) counted once.

mod render;
mod tally;

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

pub use render::{Style, json, text};
pub use tally::{Counted, Occurrence, Summary, Tally};

use crate::tail::{
    TailConfig, TailError, each_frame, follow::Block, in_parallel, older_files, selected,
};

/// Distinct reasons, objects and namespaces kept (each up to twice this) before the least
/// counted are pruned.
pub const KEYS_KEPT: usize = 10_000;

/// What one block of lines holds, in order.
#[derive(Default)]
struct Parsed {
    occurrences: Vec<Occurrence>,
    deleted: u64,
    invalid: Vec<String>,
}

/// Parses and selects one block (pure: run on worker threads).
fn parse(block: &Block, config: &TailConfig) -> Parsed {
    let mut p = Parsed::default();
    each_frame(block, &mut p.invalid, |_, frame| {
        if !selected(config, &frame) {
            return;
        }
        if frame.frame_type == "DELETED" {
            p.deleted += 1;
        } else {
            p.occurrences.push(Occurrence::of(&frame));
        }
    });
    p
}

/// Reads every file of each path (its rotated files oldest first, then the file itself),
/// selected as `config` says (its `path` is set to each in turn), into one summary. Lines that
/// are not frames are told on stderr and skipped.
pub fn read(
    paths: &[PathBuf],
    config: &mut TailConfig,
    tally: &mut Tally,
) -> Result<(), TailError> {
    let stop = AtomicBool::new(false);
    for path in paths {
        config.path = path.clone();
        let config = &*config;
        let older = older_files(config)?;
        let work = |block: &Block| parse(block, config);
        in_parallel(config, &older, &stop, work, |parsed: Parsed| {
            for why in &parsed.invalid {
                eprintln!("{why}");
            }
            tally.skipped_invalid += parsed.invalid.len() as u64;
            tally.skipped_deleted += parsed.deleted;
            for o in parsed.occurrences {
                tally.add(o);
            }
        })
        .map_err(|source| TailError::Read {
            path: path.clone(),
            source,
        })?;
    }
    Ok(())
}

/// Columns to draw in: `COLUMNS` when set, else the terminal's width, else 100.
pub fn width() -> usize {
    if let Some(n) = std::env::var("COLUMNS").ok().and_then(|v| v.parse().ok()) {
        return n;
    }
    rustix::termios::tcgetwinsize(std::io::stdout())
        .ok()
        .map(|w| usize::from(w.ws_col))
        .filter(|&n| n > 0)
        .unwrap_or(100)
}
