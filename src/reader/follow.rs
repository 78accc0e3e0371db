//! Reading the output files: rotated ones (plain or `.gz`) oldest first, then the active file,
//! and with follow, new lines as they are written, across rotations (the active file renamed
//! and a new one created at the path).

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::output_files::{self, Form, Rotated};

/// Whole lines read from one file, and where they start.
pub struct Block {
    pub path: Arc<Path>,
    /// Line number (from 1) of the block's first line.
    pub first_line: u64,
    /// One or more complete lines, each ending in `\n`.
    pub bytes: Vec<u8>,
}

/// Bytes read at a time; a block is this much less any unfinished last line.
const BLOCK: usize = 1 << 20;

/// How often a followed file is polled for more.
const POLL: Duration = Duration::from_millis(100);

/// What to read.
pub struct From<'a> {
    /// Rotated files, oldest first, read whole.
    pub older: &'a [PathBuf],
    /// The active file.
    pub active: &'a Path,
    /// Start with the active file's last N lines that `shown` accepts (else its start).
    pub lines: Option<u64>,
    /// Whether a line becomes output (the filter and selectors): what `lines` counts.
    pub shown: &'a (dyn Fn(&[u8]) -> bool + Sync),
    /// Keep reading the active file as it grows and across rotations.
    pub follow: bool,
}

/// Reads the `older` files and then the active one; with `follow`, keeps reading it as it grows
/// and across rotations until `on_block` returns `false` or `stop` says so.
pub fn read(
    from: &From<'_>,
    stop: &dyn Fn() -> bool,
    on_block: &mut dyn FnMut(Block) -> bool,
) -> io::Result<()> {
    // The last line handed out, to name where a gap starts.
    let last_line = std::cell::RefCell::new(Vec::new());
    let on_block = &mut |block: Block| {
        keep_last_line(&block.bytes, &mut last_line.borrow_mut());
        on_block(block)
    };
    for path in from.older {
        let reader = output_files::open(path)?;
        let path: Arc<Path> = path.as_path().into();
        if !blocks(reader, &path, &mut 0, &mut Vec::new(), on_block)? {
            return Ok(());
        }
    }
    let Some((mut file, mut rotated_before)) = open_active(from, stop)? else {
        return Ok(());
    };
    let active: Arc<Path> = from.active.into();
    if output_files::is_gzip(from.active)? {
        if from.follow {
            eprintln!(
                "{} is compressed: reading it once, not following",
                from.active.display()
            );
        }
        let reader = output_files::open(from.active)?;
        return blocks(reader, &active, &mut 0, &mut Vec::new(), on_block).map(|_| ());
    }
    let mut number = match from.lines {
        Some(n) => skip_to_last_lines(&mut file, n, from.shown)?,
        None => 0,
    };
    let mut partial = Vec::new();
    loop {
        if !blocks(&file, &active, &mut number, &mut partial, on_block)? {
            return Ok(());
        }
        if !from.follow || stop() {
            return Ok(());
        }
        // At the end of the file. A rotation shows as another file at the path: read what is
        // left of ours, then every file rotated after it (several rotations can come between
        // two looks), then the new active file.
        if replaced(&file, &active) {
            if !blocks(&file, &active, &mut number, &mut partial, on_block)? {
                return Ok(());
            }
            let last_shown = version_of(&last_line.borrow());
            let Ok((next, newest)) = open_with_newest(&active) else {
                std::thread::sleep(POLL);
                continue;
            };
            // Ours became rotated_before + 1; the ones after it were never opened.
            let (unread, gone) =
                between(&output_files::beside(&active), rotated_before + 1, newest);
            report_gone(&active, &gone, last_shown.as_deref());
            for path in unread {
                let Ok(reader) = output_files::open(&path) else {
                    report_gone(&active, &[path.display().to_string()], None);
                    continue;
                };
                let path: Arc<Path> = path.as_path().into();
                if !blocks(reader, &path, &mut 0, &mut Vec::new(), on_block)? {
                    return Ok(());
                }
            }
            (file, rotated_before) = (next, newest);
            number = 0;
            partial.clear();
            continue;
        }
        std::thread::sleep(POLL);
    }
}

/// The newest rotated sequence number beside `active` (0 when there is none).
fn newest_rotated(active: &Path) -> u64 {
    output_files::beside(active)
        .first()
        .map_or(0, |(r, _)| r.seq)
}

/// Opens the active file together with the newest rotated sequence number at that moment
/// (looked at before and after, so that a rotation in between is not mistaken for none).
fn open_with_newest(active: &Path) -> io::Result<(File, u64)> {
    loop {
        let before = newest_rotated(active);
        let file = File::open(active)?;
        if newest_rotated(active) == before {
            return Ok((file, before));
        }
    }
}

/// Pure: of the rotated files `listing` (any order), the ones with sequence numbers in
/// `after+1 ..= upto`, oldest first (plain preferred to `.gz`; a compression in progress still
/// has its plain file), and the names of those no longer there.
fn between(listing: &[(Rotated, PathBuf)], after: u64, upto: u64) -> (Vec<PathBuf>, Vec<String>) {
    let (mut found, mut gone) = (Vec::new(), Vec::new());
    for seq in after + 1..=upto {
        let pick = |form| {
            listing
                .iter()
                .find(|(r, _)| r.seq == seq && r.form == form)
                .map(|(_, p)| p.clone())
        };
        match pick(Form::Plain).or_else(|| pick(Form::Gz)) {
            Some(path) => found.push(path),
            None => gone.push(format!("rotated file {seq:06}")),
        }
    }
    (found, gone)
}

/// Says on stderr which rotated files were removed before they could be read: their frames are
/// not shown. Never silent.
fn report_gone(active: &Path, gone: &[String], after: Option<&str>) {
    if gone.is_empty() {
        return;
    }
    let after = after.map_or(String::new(), |rv| {
        format!(" (the frames after resourceVersion {rv})")
    });
    eprintln!(
        "tail: {} of {} rotated away and removed before it could be read: its frames are not shown{after}. Keep more rotated files (run --max-files, --compress-after) or read them while they last with `tail --all`",
        gone.join(", "),
        active.display(),
    );
}

/// The resourceVersion of a frame line, for reporting a gap after it.
fn version_of(line: &[u8]) -> Option<String> {
    match crate::frame::Frame::parse_head(line) {
        Ok(crate::frame::Frame::Data {
            resource_version, ..
        }) => Some(resource_version.as_str().to_owned()),
        _ => None,
    }
}

/// Keeps the last line of a block (without its `\n`).
fn keep_last_line(bytes: &[u8], into: &mut Vec<u8>) {
    let body = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    let start = memchr::memrchr(b'\n', body).map_or(0, |i| i + 1);
    into.clear();
    into.extend_from_slice(&body[start..]);
}

/// Opens the active file (with the newest rotated sequence number then); following, waits for
/// it to appear (saying so once). `None` when stopped while waiting.
fn open_active(from: &From<'_>, stop: &dyn Fn() -> bool) -> io::Result<Option<(File, u64)>> {
    let mut said = false;
    loop {
        match open_with_newest(from.active) {
            Ok(opened) => return Ok(Some(opened)),
            Err(e) if from.follow && e.kind() == io::ErrorKind::NotFound => {
                if !said {
                    eprintln!("waiting for {}", from.active.display());
                    said = true;
                }
                if stop() {
                    return Ok(None);
                }
                std::thread::sleep(POLL);
            }
            Err(e) => return Err(e),
        }
    }
}

/// Positions `file` at its last `n` whole lines that `shown` accepts; returns how many lines
/// come before them.
fn skip_to_last_lines(file: &mut File, n: u64, shown: &dyn Fn(&[u8]) -> bool) -> io::Result<u64> {
    use std::io::{Seek, SeekFrom};
    let start = output_files::start_of_last_matching(file, n, shown)?;
    file.seek(SeekFrom::Start(0))?;
    let mut before = 0u64;
    let mut left = start;
    let mut buf = vec![0u8; 64 * 1024];
    while left > 0 {
        let want = buf.len().min(left as usize);
        file.read_exact(&mut buf[..want])?;
        before += memchr::memchr_iter(b'\n', &buf[..want]).count() as u64;
        left -= want as u64;
    }
    Ok(before)
}

fn replaced(file: &File, path: &Path) -> bool {
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(ours), Ok(now)) => ours.ino() != now.ino() || ours.dev() != now.dev(),
        _ => false,
    }
}

/// Hands out the complete lines read until the end of `reader`, in blocks; an incomplete last
/// line stays in `partial` for later.
fn blocks(
    mut reader: impl Read,
    path: &Arc<Path>,
    number: &mut u64,
    partial: &mut Vec<u8>,
    on_block: &mut dyn FnMut(Block) -> bool,
) -> io::Result<bool> {
    loop {
        let start = partial.len();
        partial.resize(start + BLOCK, 0);
        let n = loop {
            match reader.read(&mut partial[start..]) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => break other,
            }
        };
        let n = match n {
            Ok(n) => n,
            Err(e) => {
                partial.truncate(start);
                return Err(e);
            }
        };
        partial.truncate(start + n);
        if n == 0 {
            return Ok(true);
        }
        let Some(end) = memchr::memrchr(b'\n', partial) else {
            continue;
        };
        let rest = partial.split_off(end + 1);
        let bytes = std::mem::replace(partial, rest);
        let lines = memchr::memchr_iter(b'\n', &bytes).count() as u64;
        let block = Block {
            path: path.clone(),
            first_line: *number + 1,
            bytes,
        };
        *number += lines;
        if !on_block(block) {
            return Ok(false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(seq: u64, form: Form) -> (Rotated, PathBuf) {
        (
            Rotated { seq, form },
            PathBuf::from(format!("f.{seq}.{form:?}")),
        )
    }

    #[test]
    fn the_files_rotated_after_ours_are_read_oldest_first_and_the_removed_ones_named() {
        // Ours became 5; 6 is compressed, 7 plain (its compression under way), 8 was removed,
        // 9 is plain.
        let listing = [
            r(9, Form::Plain),
            r(7, Form::Temp),
            r(7, Form::Plain),
            r(6, Form::Gz),
            r(5, Form::Plain),
            r(4, Form::Gz),
        ];
        let (read, gone) = between(&listing, 5, 9);
        let names: Vec<String> = read.iter().map(|p| p.display().to_string()).collect();
        assert_eq!(names, ["f.6.Gz", "f.7.Plain", "f.9.Plain"]);
        assert_eq!(gone, ["rotated file 000008"]);
        // One rotation: nothing in between.
        assert_eq!(between(&listing, 9, 9), (vec![], vec![]));
    }

    #[test]
    fn the_last_line_of_a_block_names_where_a_gap_starts() {
        let mut last = Vec::new();
        keep_last_line(
            b"{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"resourceVersion\":\"41\"}}}\n{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"resourceVersion\":\"42\"}}}\n",
            &mut last,
        );
        assert_eq!(version_of(&last).as_deref(), Some("42"));
        assert_eq!(version_of(b"not a frame"), None);
    }
}
