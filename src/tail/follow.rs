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

/// Reads `older` files (whole) and then `active`; with `follow`, keeps reading `active` as it
/// grows and across rotations until `on_line` returns `false` or `stop` says so.
pub fn read(
    older: &[PathBuf],
    active: &Path,
    follow: bool,
    stop: &dyn Fn() -> bool,
    on_block: &mut dyn FnMut(Block) -> bool,
) -> io::Result<()> {
    for path in older {
        let reader = crate::rotated::open(path)?;
        let path: Arc<Path> = path.as_path().into();
        if !blocks(reader, &path, &mut 0, &mut Vec::new(), on_block)? {
            return Ok(());
        }
    }
    let mut file = loop {
        match File::open(active) {
            Ok(f) => break f,
            Err(e) if follow && e.kind() == io::ErrorKind::NotFound => {
                if stop() {
                    return Ok(());
                }
                std::thread::sleep(POLL);
            }
            Err(e) => return Err(e),
        }
    };
    let mut number = 0;
    let mut partial = Vec::new();
    let active: Arc<Path> = active.into();
    loop {
        if !blocks(&file, &active, &mut number, &mut partial, on_block)? {
            return Ok(());
        }
        if !follow || stop() {
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
