//! A LIST put in resourceVersion order in bounded memory, whatever its size: items gather in a
//! run of at most the configured budget; a full run is sorted and spilled to a temp file; at the
//! end the runs are merged, oldest first. A LIST that fits in one run never touches the disk.
//!
//! Spill files are created dot-named beside the output and unlinked at once, so they never show
//! in the directory (a harvester's glob cannot see them) and vanish with the process, even on
//! `kill -9`. Only a crash between create and unlink can leave one; [`SpillDir::remove_leftovers`]
//! clears those at start-up. Their size is bounded by the LIST itself.
//!
//! Ordering is by (numeric resourceVersion, position in the LIST), so versions that are not
//! numbers keep their LIST order after the numeric ones. All file I/O here is blocking.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::frame::{Batch, ResourceVersion};

/// Runs merged at once; more are first merged in groups (each item is rewritten at most once
/// per level, and a LIST needs more than 64 runs before a second level exists).
const FAN_IN: usize = 64;
/// Read buffer per run while merging: FAN_IN of them at most.
const READ_BUFFER: usize = 16 * 1024;
/// Write buffer of a spill file.
const WRITE_BUFFER: usize = 64 * 1024;
/// Index entry per item, counted against the budget with the item's bytes.
const INDEX_ENTRY: usize = std::mem::size_of::<(u64, u64, usize)>();

/// Where spill files go, and their name prefix.
#[derive(Debug, Clone)]
pub struct SpillDir {
    dir: PathBuf,
    prefix: String,
}

impl SpillDir {
    pub fn new(dir: PathBuf, prefix: String) -> Self {
        Self { dir, prefix }
    }

    /// A new spill file, already unlinked: it lives as long as the handle.
    fn create(&self) -> io::Result<File> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = self
            .dir
            .join(format!("{}{}-{n}", self.prefix, std::process::id()));
        let file = File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| with_path(e, &path, "creating"))?;
        std::fs::remove_file(&path).map_err(|e| with_path(e, &path, "unlinking"))?;
        Ok(file)
    }

    /// Removes spill files a crash left behind; returns how many. Call it only while holding
    /// the output's lock: another process's files would go too.
    pub fn remove_leftovers(&self) -> io::Result<usize> {
        let mut removed = 0;
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(with_path(e, &self.dir, "reading")),
        };
        for entry in entries {
            let entry = entry?;
            if entry
                .file_name()
                .to_string_lossy()
                .starts_with(&self.prefix)
            {
                let path = entry.path();
                std::fs::remove_file(&path).map_err(|e| with_path(e, &path, "removing"))?;
                removed += 1;
            }
        }
        Ok(removed)
    }
}

fn with_path(e: io::Error, path: &Path, doing: &str) -> io::Error {
    io::Error::new(
        e.kind(),
        format!("{doing} the LIST sort file {}: {e}", path.display()),
    )
}

/// One item as a run holds it and a spill file stores it:
/// `key u64 | seq u64 | rv length u32 | line length u32 | rv | line`, little-endian.
struct Item<'a> {
    key: u64,
    seq: u64,
    rv: &'a [u8],
    line: &'a [u8],
}

const HEAD: usize = 24;

impl<'a> Item<'a> {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.key.to_le_bytes());
        out.extend_from_slice(&self.seq.to_le_bytes());
        out.extend_from_slice(&(self.rv.len() as u32).to_le_bytes());
        out.extend_from_slice(&(self.line.len() as u32).to_le_bytes());
        out.extend_from_slice(self.rv);
        out.extend_from_slice(self.line);
    }

    fn decode(bytes: &'a [u8]) -> (Item<'a>, usize) {
        let word = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
        let half =
            |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes")) as usize;
        let (rv_len, line_len) = (half(16), half(20));
        let rv = &bytes[HEAD..HEAD + rv_len];
        let line = &bytes[HEAD + rv_len..HEAD + rv_len + line_len];
        let item = Item {
            key: word(0),
            seq: word(8),
            rv,
            line,
        };
        (item, HEAD + rv_len + line_len)
    }
}

/// Gathers a LIST's items and sorts them, spilling full runs.
pub struct Sorter {
    spill: SpillDir,
    budget: usize,
    /// The current run: encoded items, and (key, seq, offset) per item.
    bytes: Vec<u8>,
    index: Vec<(u64, u64, usize)>,
    seq: u64,
    runs: Vec<File>,
}

impl Sorter {
    pub fn new(spill: SpillDir, budget: usize) -> Self {
        Self {
            spill,
            budget,
            bytes: Vec::new(),
            index: Vec::new(),
            seq: 0,
            runs: Vec::new(),
        }
    }

    pub fn push(&mut self, rv: &ResourceVersion, line: &[u8]) {
        let item = Item {
            key: rv.sort_key(),
            seq: self.seq,
            rv: rv.as_str().as_bytes(),
            line,
        };
        self.index.push((item.key, item.seq, self.bytes.len()));
        item.encode(&mut self.bytes);
        self.seq += 1;
    }

    /// Whether the current run has reached the budget and should be spilled.
    pub fn is_full(&self) -> bool {
        self.bytes.len() + self.index.len() * INDEX_ENTRY >= self.budget
    }

    /// Sorts the current run and writes it to a new spill file.
    pub fn spill(&mut self) -> io::Result<()> {
        if self.index.is_empty() {
            return Ok(());
        }
        self.index.sort_unstable_by_key(|&(key, seq, _)| (key, seq));
        let mut out = BufWriter::with_capacity(WRITE_BUFFER, self.spill.create()?);
        for &(_, _, at) in &self.index {
            let (_, len) = Item::decode(&self.bytes[at..]);
            out.write_all(&self.bytes[at..at + len])?;
        }
        let file = finish_run(out)?;
        self.runs.push(file);
        self.bytes.clear();
        self.index.clear();
        Ok(())
    }

    /// Everything pushed, oldest first.
    pub fn finish(mut self) -> io::Result<Sorted> {
        if self.runs.is_empty() {
            self.index.sort_unstable_by_key(|&(key, seq, _)| (key, seq));
            return Ok(Sorted::new(Order::Memory {
                bytes: self.bytes,
                index: self.index,
                next: 0,
            }));
        }
        self.spill()?;
        let mut runs = self.runs;
        while runs.len() > FAN_IN {
            // Merge the oldest (smallest) runs just enough that FAN_IN remain.
            let k = FAN_IN.min(runs.len() - FAN_IN + 1);
            let mut merge = Merge::new(runs.drain(..k).collect())?;
            let mut out = BufWriter::with_capacity(WRITE_BUFFER, self.spill.create()?);
            let mut buf = Vec::new();
            while let Some(item) = merge.next()? {
                buf.clear();
                item.encode(&mut buf);
                out.write_all(&buf)?;
            }
            runs.push(finish_run(out)?);
        }
        Ok(Sorted::new(Order::Merge(Merge::new(runs)?)))
    }
}

fn finish_run(out: BufWriter<File>) -> io::Result<File> {
    let mut file = out.into_inner().map_err(io::IntoInnerError::into_error)?;
    file.rewind()?;
    Ok(file)
}

/// One spilled run being read back.
struct Run {
    reader: BufReader<File>,
    /// The run's current item, encoded.
    head: Vec<u8>,
}

impl Run {
    /// Reads the next item into `head`; false at the end of the run.
    fn advance(&mut self) -> io::Result<bool> {
        self.head.resize(HEAD, 0);
        match self.reader.read_exact(&mut self.head) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(false),
            Err(e) => return Err(e),
        }
        let half = |at: usize| u32::from_le_bytes(self.head[at..at + 4].try_into().expect("4"));
        let rest = half(16) as usize + half(20) as usize;
        self.head.resize(HEAD + rest, 0);
        self.reader.read_exact(&mut self.head[HEAD..])?;
        Ok(true)
    }

    fn item(&self) -> Item<'_> {
        Item::decode(&self.head).0
    }
}

/// A k-way merge of sorted runs.
pub struct Merge {
    runs: Vec<Run>,
    /// (key, seq, run) of each run's head.
    heap: BinaryHeap<Reverse<(u64, u64, usize)>>,
    /// The run whose head was handed out last: advanced on the next call.
    taken: Option<usize>,
}

impl Merge {
    fn new(files: Vec<File>) -> io::Result<Self> {
        let mut merge = Merge {
            runs: Vec::with_capacity(files.len()),
            heap: BinaryHeap::with_capacity(files.len()),
            taken: None,
        };
        for file in files {
            let mut run = Run {
                reader: BufReader::with_capacity(READ_BUFFER, file),
                head: Vec::new(),
            };
            if run.advance()? {
                let item = run.item();
                let at = merge.runs.len();
                merge.heap.push(Reverse((item.key, item.seq, at)));
                merge.runs.push(run);
            }
        }
        Ok(merge)
    }

    fn next(&mut self) -> io::Result<Option<Item<'_>>> {
        if let Some(at) = self.taken.take() {
            let run = &mut self.runs[at];
            if run.advance()? {
                let item = run.item();
                self.heap.push(Reverse((item.key, item.seq, at)));
            }
        }
        let Some(Reverse((_, _, at))) = self.heap.pop() else {
            return Ok(None);
        };
        self.taken = Some(at);
        Ok(Some(self.runs[at].item()))
    }
}

/// What [`Sorted::fill`] added to a batch.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Filled {
    pub lines: u64,
    /// The resourceVersion of the last line added.
    pub last: Option<ResourceVersion>,
}

/// Where the sorted items come from.
enum Order {
    Memory {
        bytes: Vec<u8>,
        index: Vec<(u64, u64, usize)>,
        next: usize,
    },
    Merge(Merge),
}

/// A sorted LIST, read oldest first, each object version once: an item a LIST repeated on
/// two pages (a server that builds pages from live state) meets its copy here, next to it in
/// resourceVersion order, and is dropped.
pub struct Sorted {
    order: Order,
    /// The resourceVersion and line of the last item handed out.
    previous: (Vec<u8>, Vec<u8>),
    /// Items dropped as repeats of the one before.
    pub repeated: u64,
}

impl Sorted {
    fn new(order: Order) -> Self {
        Self {
            order,
            previous: (Vec::new(), Vec::new()),
            repeated: 0,
        }
    }

    /// Appends the next lines (each with `\n`) until the batch holds at least `max` bytes or
    /// the LIST is done (then nothing is added).
    pub fn fill(&mut self, batch: &mut Batch, max: usize) -> io::Result<Filled> {
        let mut lines = 0;
        let mut last = Vec::new();
        while batch.len() < max {
            let item = match &mut self.order {
                Order::Memory { bytes, index, next } => {
                    let Some(&(_, _, at)) = index.get(*next) else {
                        break;
                    };
                    *next += 1;
                    Item::decode(&bytes[at..]).0
                }
                Order::Merge(merge) => match merge.next()? {
                    Some(item) => item,
                    None => break,
                },
            };
            let (prev_rv, prev_line) = &mut self.previous;
            if item.rv == prev_rv.as_slice() && item.line == prev_line.as_slice() {
                self.repeated += 1;
                continue;
            }
            prev_rv.clear();
            prev_rv.extend_from_slice(item.rv);
            prev_line.clear();
            prev_line.extend_from_slice(item.line);
            batch.extend_from_slice(item.line);
            batch.push(b'\n');
            lines += 1;
            last.clear();
            last.extend_from_slice(item.rv);
        }
        Ok(Filled {
            lines,
            last: (lines > 0).then(|| rv_of(&last)),
        })
    }
}

fn rv_of(bytes: &[u8]) -> ResourceVersion {
    ResourceVersion::new(&String::from_utf8_lossy(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spill_dir(dir: &Path) -> SpillDir {
        SpillDir::new(dir.to_path_buf(), ".events.json.list-".into())
    }

    /// Pushes `rvs` in order with a tiny budget (so most items are runs of their own), sorts,
    /// and returns the lines read back.
    fn sort(rvs: &[String], budget: usize) -> (Vec<String>, usize) {
        let dir = tempfile::tempdir().unwrap();
        let mut sorter = Sorter::new(spill_dir(dir.path()), budget);
        for (i, rv) in rvs.iter().enumerate() {
            sorter.push(&ResourceVersion::new(rv), format!("{rv}#{i}").as_bytes());
            if sorter.is_full() {
                sorter.spill().unwrap();
            }
        }
        let runs = sorter.runs.len();
        let mut sorted = sorter.finish().unwrap();
        let mut batch = Batch::new();
        let mut lines = 0;
        loop {
            let max = batch.len() + 100;
            let filled = sorted.fill(&mut batch, max).unwrap();
            if filled.lines == 0 {
                break;
            }
            lines += filled.lines;
            let text = String::from_utf8_lossy(&batch);
            let last_line = text.lines().last().unwrap();
            assert_eq!(
                filled.last.unwrap().as_str(),
                last_line.split('#').next().unwrap()
            );
        }
        let text = String::from_utf8(batch).unwrap();
        let out: Vec<String> = text.lines().map(str::to_owned).collect();
        assert_eq!(out.len() as u64, lines);
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "spill files never show in the directory"
        );
        (out, runs)
    }

    /// What sorting must give: numeric versions ascending, then the others, each in LIST order.
    fn expected(rvs: &[String]) -> Vec<String> {
        let mut v: Vec<(u64, usize, String)> = rvs
            .iter()
            .enumerate()
            .map(|(i, rv)| (rv.parse().unwrap_or(u64::MAX), i, format!("{rv}#{i}")))
            .collect();
        v.sort();
        v.into_iter().map(|(_, _, l)| l).collect()
    }

    #[test]
    fn a_list_that_fits_is_sorted_in_memory() {
        let rvs: Vec<String> = ["30", "x", "4", "100", "y", "4"].map(String::from).to_vec();
        let (out, runs) = sort(&rvs, 1 << 20);
        assert_eq!(runs, 0);
        assert_eq!(out, expected(&rvs));
    }

    #[test]
    fn a_list_larger_than_the_budget_is_merged_from_runs_in_levels() {
        // A permutation of versions with repeats and a few opaque ones, ~3 items per run:
        // ~700 runs, so the merge needs a second level (FAN_IN is 64).
        let rvs: Vec<String> = (0..2000u64)
            .map(|i| match i % 97 {
                0 => format!("opaque-{i}"),
                _ => ((i * 7919) % 1500).to_string(),
            })
            .collect();
        let (out, runs) = sort(&rvs, 150);
        assert!(runs > FAN_IN * 2, "{runs} runs");
        assert_eq!(out, expected(&rvs));
    }

    #[test]
    fn leftovers_with_the_prefix_are_removed_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let spill = spill_dir(dir.path());
        for name in [
            ".events.json.list-1-0",
            ".events.json.list-9-3",
            "events.json",
        ] {
            std::fs::write(dir.path().join(name), "x").unwrap();
        }
        assert_eq!(spill.remove_leftovers().unwrap(), 2);
        let left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(left, ["events.json"]);
        let gone = SpillDir::new(dir.path().join("missing"), "x".into());
        assert_eq!(gone.remove_leftovers().unwrap(), 0);
    }

    #[test]
    fn an_unwritable_spill_directory_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let spill = SpillDir::new(dir.path().join("missing"), ".x-".into());
        let mut sorter = Sorter::new(spill, 10);
        sorter.push(&ResourceVersion::new("1"), b"line");
        let e = sorter.spill().unwrap_err();
        assert!(e.to_string().contains("creating the LIST sort file"), "{e}");
        assert!(e.to_string().contains("missing"), "{e}");
    }

    #[test]
    fn an_item_repeated_in_another_run_is_handed_out_once() {
        let dir = tempfile::tempdir().unwrap();
        for budget in [1 << 20, 1] {
            let mut sorter = Sorter::new(spill_dir(dir.path()), budget);
            for (rv, line) in [("5", "five"), ("7", "seven"), ("5", "five"), ("6", "six")] {
                sorter.push(&ResourceVersion::new(rv), line.as_bytes());
                if sorter.is_full() {
                    sorter.spill().unwrap();
                }
            }
            let spilled = !sorter.runs.is_empty();
            assert_eq!(spilled, budget == 1, "budget {budget}");
            let mut sorted = sorter.finish().unwrap();
            let mut batch = Batch::new();
            while sorted.fill(&mut batch, usize::MAX).unwrap().lines > 0 {}
            assert_eq!(String::from_utf8(batch).unwrap(), "five\nsix\nseven\n");
            assert_eq!(sorted.repeated, 1);
        }
    }
}
