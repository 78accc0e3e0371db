//! Reading the output files: rotated ones (plain or `.gz`) oldest first, then the active file,
//! and with follow, new lines as they are written, across rotations (the active file renamed
//! and a new one created at the path).

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A complete line and where it came from.
pub struct Located<'a> {
    pub path: &'a Path,
    pub number: u64,
    pub line: &'a [u8],
}

/// How often a followed file is polled for more.
const POLL: Duration = Duration::from_millis(100);

/// Reads `older` files (whole) and then `active`; with `follow`, keeps reading `active` as it
/// grows and across rotations until `on_line` returns `false` or `stop` says so.
pub fn read(
    older: &[PathBuf],
    active: &Path,
    follow: bool,
    stop: &dyn Fn() -> bool,
    on_line: &mut dyn FnMut(Located<'_>) -> bool,
) -> io::Result<()> {
    for path in older {
        let file = File::open(path)?;
        let reader: Box<dyn Read> = if path.extension().is_some_and(|e| e == "gz") {
            Box::new(flate2::read::GzDecoder::new(file))
        } else {
            Box::new(file)
        };
        let mut reader = BufReader::with_capacity(256 * 1024, reader);
        if !whole_lines(&mut reader, path, &mut 0, &mut Vec::new(), on_line)? {
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
    loop {
        let mut reader = BufReader::with_capacity(256 * 1024, &file);
        if !whole_lines(&mut reader, active, &mut number, &mut partial, on_line)? {
            return Ok(());
        }
        if !follow || stop() {
            return Ok(());
        }
        // At the end of the file. A rotation shows as another file at the path: read what is
        // left of ours, then move on to the new one.
        if replaced(&file, active) {
            let mut reader = BufReader::new(&file);
            if !whole_lines(&mut reader, active, &mut number, &mut partial, on_line)? {
                return Ok(());
            }
            if let Ok(next) = File::open(active) {
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

/// Hands out every complete line; an incomplete last one stays in `partial` for later.
fn whole_lines(
    reader: &mut dyn BufRead,
    path: &Path,
    number: &mut u64,
    partial: &mut Vec<u8>,
    on_line: &mut dyn FnMut(Located<'_>) -> bool,
) -> io::Result<bool> {
    loop {
        let n = reader.read_until(b'\n', partial)?;
        if n == 0 || partial.last() != Some(&b'\n') {
            return Ok(true);
        }
        *number += 1;
        partial.pop();
        let go_on = on_line(Located {
            path,
            number: *number,
            line: partial,
        });
        partial.clear();
        if !go_on {
            return Ok(false);
        }
    }
}
