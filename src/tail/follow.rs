//! Reading the output files: rotated ones (plain or `.gz`) oldest first, then the active file,
//! and with follow, new lines as they are written, across rotations (the active file renamed
//! and a new one created at the path).

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

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
    /// Start with the active file's last N lines (else its start).
    pub lines: Option<u64>,
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
    for path in from.older {
        let reader = crate::output_files::open(path)?;
        let path: Arc<Path> = path.as_path().into();
        if !blocks(reader, &path, &mut 0, &mut Vec::new(), on_block)? {
            return Ok(());
        }
    }
    let Some(mut file) = open_active(from, stop)? else {
        return Ok(());
    };
    let active: Arc<Path> = from.active.into();
    if crate::output_files::is_gzip(from.active)? {
        if from.follow {
            eprintln!(
                "{} is compressed: reading it once, not following",
                from.active.display()
            );
        }
        let reader = crate::output_files::open(from.active)?;
        return blocks(reader, &active, &mut 0, &mut Vec::new(), on_block).map(|_| ());
    }
    let mut number = match from.lines {
        Some(n) => skip_to_last_lines(&mut file, n)?,
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
        // left of ours, then move on to the new one.
        if replaced(&file, &active) {
            if !blocks(&file, &active, &mut number, &mut partial, on_block)? {
                return Ok(());
            }
            if let Ok(next) = File::open(&active) {
                file = next;
                number = 0;
                partial.clear();
                continue;
            }
        }
        std::thread::sleep(POLL);
    }
}

/// Opens the active file; following, waits for it to appear (saying so once). `None` when
/// stopped while waiting.
fn open_active(from: &From<'_>, stop: &dyn Fn() -> bool) -> io::Result<Option<File>> {
    let mut said = false;
    loop {
        match File::open(from.active) {
            Ok(f) => return Ok(Some(f)),
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

/// Positions `file` at its last `n` whole lines; returns how many lines come before them.
fn skip_to_last_lines(file: &mut File, n: u64) -> io::Result<u64> {
    use std::io::{Seek, SeekFrom};
    let start = crate::output_files::start_of_last_lines(file, n)?;
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
