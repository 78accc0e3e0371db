//! The output's files on disk, in one place: the rotated files beside the active one, their
//! names, finding them, and opening any of them for reading (plain or gzip).
//!
//! Beside the active file `events.json` sit rotated files `events.json.000001`, `…000002`, …
//! (higher = newer) and their compressed forms `events.json.000001.gz`. A file being compressed
//! is a dot-file, `.events.json.000001.gz.tmp`, so that no partial file ever matches the
//! harvester glob `events.json*`.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// What a rotated file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Form {
    Plain,
    Gz,
    /// A compression that did not finish.
    Temp,
}

/// One rotated file, as named on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Rotated {
    pub seq: u64,
    pub form: Form,
}

/// Names derived from the active file's name.
#[derive(Debug, Clone)]
pub struct Naming {
    name: String,
}

impl Naming {
    pub fn new(active_name: &str) -> Self {
        Self {
            name: active_name.to_string(),
        }
    }

    pub fn file_name(&self, r: Rotated) -> String {
        match r.form {
            Form::Plain => format!("{}.{:06}", self.name, r.seq),
            Form::Gz => format!("{}.{:06}.gz", self.name, r.seq),
            Form::Temp => format!(".{}.{:06}.gz.tmp", self.name, r.seq),
        }
    }

    /// The lock that keeps a second process off this output: a dot-file, never harvested.
    pub fn lock(&self) -> String {
        format!(".{}.lock", self.name)
    }

    /// The record of which scopes the output covers up to its end: a dot-file, never harvested.
    pub fn scopes(&self) -> String {
        format!(".{}.scopes", self.name)
    }

    /// The prefix of the files a LIST is sorted in: dot-files, never harvested, unlinked as soon
    /// as created.
    pub fn list_sort(&self) -> String {
        format!(".{}.list-", self.name)
    }

    /// Recognises our rotated files; anything else in the directory is not ours.
    pub fn parse(&self, file_name: &str) -> Option<Rotated> {
        let (rest, temp) = match file_name.strip_prefix('.') {
            Some(r) => (r.strip_suffix(".gz.tmp")?, true),
            None => (file_name, false),
        };
        let rest = rest.strip_prefix(&self.name)?.strip_prefix('.')?;
        let (digits, gz) = match rest.strip_suffix(".gz") {
            Some(d) if !temp => (d, true),
            _ => (rest, false),
        };
        if digits.len() < 6 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let seq = digits.parse().ok()?;
        let form = match (temp, gz) {
            (true, _) => Form::Temp,
            (false, true) => Form::Gz,
            (false, false) => Form::Plain,
        };
        Some(Rotated { seq, form })
    }
}

/// A file named by `naming` beside the active file `path`.
pub fn sibling(path: &Path, name: impl FnOnce(&Naming) -> String) -> Option<PathBuf> {
    let naming = Naming::new(path.file_name()?.to_str()?);
    Some(parent(path)?.join(name(&naming)))
}

/// The directory of `path` (`.` for a bare file name).
pub fn parent(path: &Path) -> Option<&Path> {
    match path.parent() {
        Some(p) if p.as_os_str().is_empty() => Some(Path::new(".")),
        other => other,
    }
}

/// The rotated files beside the active file `path`, newest first.
pub fn beside(path: &Path) -> Vec<(Rotated, PathBuf)> {
    match (parent(path), path.file_name().and_then(|n| n.to_str())) {
        (Some(dir), Some(name)) => in_dir(dir, &Naming::new(name)),
        _ => Vec::new(),
    }
}

/// The rotated files named by `naming` in `dir`, newest first.
pub fn in_dir(dir: &Path, naming: &Naming) -> Vec<(Rotated, PathBuf)> {
    let mut found: Vec<(Rotated, PathBuf)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Some((naming.parse(e.file_name().to_str()?)?, e.path())))
        .collect();
    found.sort_by_key(|r| std::cmp::Reverse(r.0));
    found
}

/// Whether a file is gzip, by its magic bytes (whatever its name says).
fn starts_gzip(file: &mut File) -> io::Result<bool> {
    let mut magic = [0u8; 2];
    let gzip = match file.read_exact(&mut magic) {
        Ok(()) => magic == [0x1f, 0x8b],
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => false,
        Err(e) => return Err(e),
    };
    file.seek(SeekFrom::Start(0))?;
    Ok(gzip)
}

/// Whether the file at `path` is gzip, by its magic bytes.
pub fn is_gzip(path: &Path) -> io::Result<bool> {
    starts_gzip(&mut File::open(path)?)
}

/// Opens an output file for reading, decompressing a gzipped one (known by its magic bytes).
pub fn open(path: &Path) -> io::Result<Box<dyn Read + Send>> {
    let mut file = File::open(path)?;
    Ok(if starts_gzip(&mut file)? {
        Box::new(flate2::read::GzDecoder::new(file))
    } else {
        Box::new(file)
    })
}

const CHUNK: u64 = 64 * 1024;

/// Reads a file's lines from the end towards the start.
pub struct ReverseLines<'f> {
    file: &'f mut File,
    /// File offset of `buf[0]`.
    start: u64,
    buf: Vec<u8>,
}

impl<'f> ReverseLines<'f> {
    pub fn new(file: &'f mut File) -> io::Result<Self> {
        let start = file.metadata()?.len();
        Ok(Self {
            file,
            start,
            buf: Vec::new(),
        })
    }

    /// The file offset where the lines not yet returned end: after `next_line` gave a line,
    /// the offset at which that line starts.
    pub fn offset(&self) -> u64 {
        self.start + self.buf.len() as u64
    }

    /// Forgets everything from `end` on (a torn last line that `next_line` must not return).
    pub fn cut_at(&mut self, end: u64) {
        self.buf.truncate(end.saturating_sub(self.start) as usize);
    }

    /// Prepends the previous chunk; false at the start of the file.
    fn read_back(&mut self) -> io::Result<bool> {
        if self.start == 0 {
            return Ok(false);
        }
        let n = CHUNK.min(self.start);
        self.start -= n;
        let mut chunk = vec![0; n as usize];
        self.file.seek(SeekFrom::Start(self.start))?;
        self.file.read_exact(&mut chunk)?;
        chunk.extend_from_slice(&self.buf);
        self.buf = chunk;
        Ok(true)
    }

    /// The offset just past the file's last `\n` (0 when it has none).
    pub fn end_of_last_line(&mut self) -> io::Result<u64> {
        loop {
            if let Some(i) = memchr_rev(&self.buf) {
                return Ok(self.start + i as u64 + 1);
            }
            if !self.read_back()? {
                return Ok(0);
            }
        }
    }

    /// The previous complete line (without `\n`), skipping empty ones. Assumes the file ends at a
    /// line boundary (see `position::recover`).
    pub fn next_line(&mut self) -> io::Result<Option<Vec<u8>>> {
        loop {
            // Drop the trailing newline of the line we are about to take.
            if self.buf.last() == Some(&b'\n') {
                self.buf.pop();
                continue;
            }
            match memchr_rev(&self.buf) {
                Some(i) => {
                    let line = self.buf.split_off(i + 1);
                    return Ok(Some(line));
                }
                None => {
                    if !self.read_back()? {
                        return Ok((!self.buf.is_empty()).then(|| std::mem::take(&mut self.buf)));
                    }
                }
            }
        }
    }
}

fn memchr_rev(buf: &[u8]) -> Option<usize> {
    buf.iter().rposition(|&b| b == b'\n')
}

/// Where the last `n` lines of a file start (0 when it has no more than `n`).
pub fn start_of_last_lines(file: &mut File, n: u64) -> io::Result<u64> {
    start_of_last_matching(file, n, &|_| true)
}

/// Where the last `n` lines that `counts` accepts start (0 when there are no more than `n`):
/// `tail --lines N --filter …` shows the last N rows that match, as `journalctl -n` does.
pub fn start_of_last_matching(
    file: &mut File,
    n: u64,
    counts: &dyn Fn(&[u8]) -> bool,
) -> io::Result<u64> {
    let mut lines = ReverseLines::new(file)?;
    let end = lines.end_of_last_line()?;
    lines.cut_at(end);
    let mut at = end;
    let mut found = 0;
    while found < n {
        let Some(line) = lines.next_line()? else {
            return Ok(0);
        };
        at = lines.offset();
        if counts(&line) {
            found += 1;
        }
    }
    Ok(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(seq: u64, form: Form) -> Rotated {
        Rotated { seq, form }
    }

    #[test]
    fn names_round_trip_and_strangers_are_ignored() {
        let n = Naming::new("events.json");
        for rot in [
            r(1, Form::Plain),
            r(42, Form::Gz),
            r(7, Form::Temp),
            r(1234567, Form::Plain),
        ] {
            assert_eq!(
                n.parse(&n.file_name(rot)),
                Some(rot),
                "{}",
                n.file_name(rot)
            );
        }
        assert_eq!(n.file_name(r(3, Form::Plain)), "events.json.000003");
        assert_eq!(n.file_name(r(3, Form::Gz)), "events.json.000003.gz");
        assert_eq!(n.file_name(r(3, Form::Temp)), ".events.json.000003.gz.tmp");
        for other in [
            "events.json",
            "events.json.1",
            "events.json.abcdef",
            "events.jsonx.000001",
            "other.000001",
            ".events.json.000001",
            "events.json.000001.gz.tmp",
        ] {
            assert_eq!(n.parse(other), None, "{other}");
        }
    }

    #[test]
    fn only_temp_names_hide_from_the_harvester_glob() {
        let n = Naming::new("events.json");
        for form in [Form::Plain, Form::Gz] {
            assert!(n.file_name(r(9, form)).starts_with("events.json"));
        }
        assert!(!n.file_name(r(9, Form::Temp)).starts_with("events.json"));
    }

    #[test]
    fn reverse_lines_across_chunk_edges() {
        let lines: Vec<String> = (0..20_000).map(|i| "x".repeat(i % 97)).collect();
        let content = lines.join("\n") + "\n";
        let mut f = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut f, content.as_bytes()).unwrap();
        let mut file = File::open(f.path()).unwrap();
        let mut rev = ReverseLines::new(&mut file).unwrap();
        let mut got = Vec::new();
        while let Some(l) = rev.next_line().unwrap() {
            got.push(String::from_utf8(l).unwrap());
        }
        got.reverse();
        let expected: Vec<String> = lines.into_iter().filter(|l| !l.is_empty()).collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn the_last_lines_start_where_tail_would_start() {
        use std::io::Write;
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(b"a\nbb\nccc\ntorn").unwrap();
        assert_eq!(start_of_last_lines(&mut f, 1).unwrap(), 5);
        assert_eq!(start_of_last_lines(&mut f, 2).unwrap(), 2);
        assert_eq!(start_of_last_lines(&mut f, 3).unwrap(), 0);
        assert_eq!(start_of_last_lines(&mut f, 9).unwrap(), 0);
        assert_eq!(start_of_last_lines(&mut f, 0).unwrap(), 9);
    }

    #[test]
    fn opens_plain_and_gzip_alike() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("events.json.000001");
        let gz = dir.path().join("events.json.000002.gz");
        std::fs::write(&plain, "a\n").unwrap();
        let mut enc = flate2::write::GzEncoder::new(File::create(&gz).unwrap(), Default::default());
        enc.write_all(b"a\n").unwrap();
        enc.finish().unwrap();
        // A renamed gzip file is still gzip.
        let renamed = dir.path().join("copy.json");
        std::fs::copy(&gz, &renamed).unwrap();
        assert!(is_gzip(&renamed).unwrap() && !is_gzip(&plain).unwrap());
        for path in [&plain, &gz, &renamed] {
            let mut text = String::new();
            open(path).unwrap().read_to_string(&mut text).unwrap();
            assert_eq!(text, "a\n", "{}", path.display());
        }
        let names: Vec<u64> = beside(&dir.path().join("events.json"))
            .iter()
            .map(|(r, _)| r.seq)
            .collect();
        assert_eq!(names, [2, 1], "newest first");
    }
}
