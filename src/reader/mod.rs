//! Reading the output files for `tail` and `summary` ([`read`]): which files, in blocks of
//! whole lines read on one thread and worked on all cores, handed back in file order, lines that
//! are not frames told and a foreign file refused; each line parsed as a frame ([`each_frame`])
//! and selected ([`Selection`]). What is done with a frame (a table row, a count) is the
//! caller's.
//!
//! - [`follow`]: the files themselves: rotated ones (plain or `.gz`) oldest first, then the
//!   active file, followed across rotations.

pub mod follow;

use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use jiff::Timestamp;

pub use follow::Block;

use crate::event::EventFrame;
use crate::filter::Filter;

/// Which frames are shown or counted: `--namespace`, `--since`, `--until`, `--filter`.
#[derive(Default)]
pub struct Selection {
    /// Only these namespaces (all when empty).
    pub namespaces: Vec<String>,
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
    pub filter: Option<Filter>,
}

/// Where a frame's time falls against `--since` and `--until`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    Before,
    Inside,
    /// After `--until`, or no time while a bound is given.
    Outside,
}

impl Selection {
    /// Whether `frame` is selected. A frame with no time is outside any time window.
    pub fn matches(&self, frame: &EventFrame<'_>) -> bool {
        self.window(frame) == Window::Inside && self.matches_besides_time(frame)
    }

    /// `--namespace` and `--filter`, the time left aside.
    pub fn matches_besides_time(&self, frame: &EventFrame<'_>) -> bool {
        if !self.namespaces.is_empty() {
            let ns = frame.object.metadata.namespace.as_deref().unwrap_or("");
            if !self.namespaces.iter().any(|n| n == ns) {
                return false;
            }
        }
        self.filter.as_ref().is_none_or(|f| f.matches(frame))
    }

    /// Where the frame's time falls.
    pub fn window(&self, frame: &EventFrame<'_>) -> Window {
        if self.since.is_none() && self.until.is_none() {
            return Window::Inside;
        }
        let Some(t) = frame
            .object
            .time()
            .and_then(|t| t.parse::<Timestamp>().ok())
        else {
            return Window::Outside;
        };
        if self.since.is_some_and(|s| t < s) {
            Window::Before
        } else if self.until.is_some_and(|u| t > u) {
            Window::Outside
        } else {
            Window::Inside
        }
    }
}

/// What files to read, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// The active output file.
    pub path: PathBuf,
    /// Also read its rotated files (plain and `.gz`), oldest first.
    pub all: bool,
    /// Keep reading as it grows and across rotations.
    pub follow: bool,
    /// Start with the active file's last N selected lines (else its start).
    pub lines: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error(
        "{} is a directory: give the output file in it, e.g. {}",
        path.display(),
        path.join("events.json").display()
    )]
    Directory { path: PathBuf },
    #[error(
        "{} does not hold watch frames (its first {lines} lines are not): is it a kube-event-logger output file?",
        path.display()
    )]
    NotFrames { path: PathBuf, lines: u64 },
}

/// Lines that are not frames, with no frame before them, after which a file is taken for
/// something else than our output.
pub const NOT_FRAMES_AFTER: u64 = 5;

/// Lines that are not frames told one by one on stderr before the rest are only counted.
pub const TOLD_AT_MOST: u64 = 20;

/// What `tail` and `summary` say of lines that are not frames: the first few, each with where
/// and why, then a count; and a file whose first lines are none is refused
/// ([`ReadError::NotFrames`]) instead of reported line by line.
#[derive(Debug, Default)]
pub struct NotFrames {
    /// Frames in the file read now.
    frames: u64,
    /// Lines that are not frames in the file read now.
    in_file: u64,
    /// Lines that are not frames, in every file.
    total: u64,
}

impl NotFrames {
    /// Starts on another file.
    pub fn next_file(&mut self) {
        self.frames = 0;
        self.in_file = 0;
    }

    /// A block's frames and its lines that are not ("path:line: why"), in file order: tells
    /// what it should and says whether the file is refused.
    pub fn take(&mut self, frames: u64, invalid: &[String], tell: &mut dyn FnMut(&str)) -> bool {
        self.frames += frames;
        for why in invalid {
            if self.frames == 0 && self.in_file >= NOT_FRAMES_AFTER {
                break;
            }
            if self.total < TOLD_AT_MOST {
                tell(why);
            }
            self.in_file += 1;
            self.total += 1;
        }
        self.refused()
    }

    /// The file read now holds no frame in its first lines.
    pub fn refused(&self) -> bool {
        self.frames == 0 && self.in_file >= NOT_FRAMES_AFTER
    }

    /// The error for a refused file.
    pub fn error(&self, path: &std::path::Path) -> ReadError {
        ReadError::NotFrames {
            path: path.to_path_buf(),
            lines: self.in_file,
        }
    }

    /// The closing line when more were skipped than told, if any.
    pub fn untold(&self) -> Option<String> {
        (self.total > TOLD_AT_MOST).then(|| {
            format!(
                "… and {} more lines that are not watch frames were skipped ({} in all)",
                self.total - TOLD_AT_MOST,
                self.total
            )
        })
    }

    /// Lines that are not frames, in every file.
    pub fn total(&self) -> u64 {
        self.total
    }
}

/// The rotated files to read before the active one (oldest first; none without `all`), once the
/// active file is known to be readable: an unreadable file is reported before anything is
/// printed.
fn older_files(source: &Source) -> Result<Vec<PathBuf>, ReadError> {
    if std::fs::metadata(&source.path).is_ok_and(|m| m.is_dir()) {
        return Err(ReadError::Directory {
            path: source.path.clone(),
        });
    }
    if !source.follow
        && let Err(e) = std::fs::File::open(&source.path)
    {
        return Err(ReadError::Read {
            path: source.path.clone(),
            source: e,
        });
    }
    if !source.all {
        return Ok(Vec::new());
    }
    let mut rotated: Vec<PathBuf> = crate::output_files::beside(&source.path)
        .into_iter()
        .map(|(_, p)| p)
        .collect();
    rotated.reverse();
    Ok(rotated)
}

/// What a block's lines were: how many are frames, and each that is not ("path:line: why").
#[derive(Debug, Default)]
pub struct Lines {
    pub frames: u64,
    pub invalid: Vec<String>,
}

/// Each line of a block parsed as a frame, in order, counted in `lines`; a line that is not one
/// of ours (an ADDED, MODIFIED or DELETED frame whose object has a resourceVersion) is told in
/// `lines.invalid` as "path:line: why" and skipped.
pub fn each_frame<'b>(
    block: &'b Block,
    lines: &mut Lines,
    mut each: impl FnMut(&'b [u8], EventFrame<'b>),
) {
    for (at, line) in (block.first_line..).zip(block.bytes.split(|&b| b == b'\n')) {
        if line.is_empty() {
            continue;
        }
        let why = match EventFrame::parse(line) {
            Ok(frame) if frame.kind().is_none() => format!(
                "its type {:?} is not ADDED, MODIFIED or DELETED",
                frame.frame_type
            ),
            Ok(frame) if frame.object.metadata.resource_version.is_none() => {
                "it has no object with a metadata.resourceVersion".to_string()
            }
            Ok(frame) => {
                lines.frames += 1;
                each(line, frame);
                continue;
            }
            Err(e) => e.to_string(),
        };
        lines.invalid.push(format!(
            "{}:{at}: not a watch frame ({why}); skipped",
            block.path.display()
        ));
    }
}

/// Reads every source in the order given, each with its older files (all of them known
/// readable before anything is read): blocks of lines on one thread, `work` on all cores, its
/// results handed to `each` in file order (`false` from it stops the reading). Lines that are
/// not frames are told on stderr (the first [`TOLD_AT_MOST`], then a count), and a file whose
/// first lines are none is refused. Returns how many lines were not frames.
pub fn read<R: Send>(
    sources: &[Source],
    selection: &Selection,
    stop: &AtomicBool,
    work: impl Fn(&Block) -> (Lines, R) + Sync,
    mut each: impl FnMut(R) -> bool,
) -> Result<u64, ReadError> {
    let older = sources
        .iter()
        .map(older_files)
        .collect::<Result<Vec<_>, _>>()?;
    let mut not_frames = NotFrames::default();
    for (source, older) in sources.iter().zip(&older) {
        not_frames.next_file();
        let read = in_parallel(source, selection, older, stop, &work, |(lines, r)| {
            if not_frames.refused() {
                return;
            }
            let refused = not_frames.take(lines.frames, &lines.invalid, &mut |why| {
                eprintln!("{why}");
            });
            if refused || !each(r) {
                stop.store(true, Ordering::Relaxed);
            }
        });
        if not_frames.refused() {
            return Err(not_frames.error(&source.path));
        }
        read.map_err(|e| ReadError::Read {
            path: source.path.clone(),
            source: e,
        })?;
        if stop.load(Ordering::Relaxed) {
            break;
        }
    }
    if let Some(why) = not_frames.untold() {
        eprintln!("{why}");
    }
    Ok(not_frames.total())
}

/// Reads `older` and then the source's active file in blocks on one thread, runs `work` on the
/// blocks on all cores, and hands the results to `print` in file order. `selection` decides
/// which lines count for `--lines`. Returns how reading ended.
fn in_parallel<R: Send>(
    source: &Source,
    selection: &Selection,
    older: &[PathBuf],
    stop: &AtomicBool,
    work: impl Fn(&Block) -> R + Sync,
    mut print: impl FnMut(R),
) -> io::Result<()> {
    let workers = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(1, 8);
    std::thread::scope(|scope| {
        let (work_tx, work_rx) = std::sync::mpsc::sync_channel::<(u64, Block)>(workers);
        let work_rx = Arc::new(std::sync::Mutex::new(work_rx));
        let (done_tx, done_rx) = std::sync::mpsc::sync_channel::<(u64, R)>(workers);
        let work = &work;
        for _ in 0..workers {
            let (work_rx, done_tx) = (work_rx.clone(), done_tx.clone());
            scope.spawn(move || {
                loop {
                    let job = work_rx.lock().unwrap_or_else(|e| e.into_inner()).recv();
                    let Ok((seq, block)) = job else { break };
                    if done_tx.send((seq, work(&block))).is_err() {
                        break;
                    }
                }
            });
        }
        drop(done_tx);
        let reader = scope.spawn(move || {
            let mut seq = 0;
            let stopped = || stop.load(Ordering::Relaxed);
            let shown = |line: &[u8]| EventFrame::parse(line).is_ok_and(|f| selection.matches(&f));
            let from = follow::From {
                older,
                active: &source.path,
                lines: source.lines,
                shown: &shown,
                follow: source.follow,
            };
            follow::read(&from, &stopped, &mut |block| {
                let sent = work_tx.send((seq, block)).is_ok();
                seq += 1;
                sent && !stopped()
            })
        });
        let mut waiting = std::collections::BTreeMap::new();
        let mut next = 0;
        for (seq, rendered) in done_rx {
            waiting.insert(seq, rendered);
            while let Some(r) = waiting.remove(&next) {
                next += 1;
                print(r);
            }
        }
        reader
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the reader thread panicked")))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(text: &str) -> Block {
        Block {
            path: std::path::Path::new("events.json").into(),
            first_line: 1,
            bytes: text.as_bytes().to_vec(),
        }
    }

    #[test]
    fn a_line_that_is_not_one_of_our_frames_is_told_where_and_why_in_our_words() {
        let lines = [
            "[1,2]",
            "\"text\"",
            r#"{"type":"ADDED"}"#,
            r#"{"type":"BOOKMARK","object":{"metadata":{"resourceVersion":"9"}}}"#,
            r#"{"type":"ADDED","object":{"metadata":"x"}}"#,
            r#"{"type":"ADDED","object":{"involvedObject":[]}}"#,
            "2026-11-22 10:00:00 INFO started",
        ];
        let text = lines.join("\n") + "\n";
        let b = block(&text);
        let mut checked = Lines::default();
        let mut frames = 0;
        each_frame(&b, &mut checked, |_, _| frames += 1);
        assert_eq!((frames, checked.frames), (0, 0));
        let invalid = checked.invalid;
        assert_eq!(invalid.len(), lines.len(), "{invalid:#?}");
        for (i, why) in invalid.iter().enumerate() {
            assert!(why.starts_with(&format!("events.json:{}: not a watch frame (", i + 1)));
            for internal in ["EventFrame", "struct", "ObjectRef", "Meta<"] {
                assert!(!why.contains(internal), "{why}");
            }
        }
        assert!(invalid[2].contains("no object"), "{}", invalid[2]);
        assert!(invalid[3].contains("BOOKMARK"), "{}", invalid[3]);
        assert!(invalid[0].contains("a watch frame"), "{}", invalid[0]);
    }

    #[test]
    fn the_first_lines_are_told_then_counted_and_a_file_of_no_frames_is_refused() {
        let mut told = Vec::new();
        let mut nf = NotFrames::default();
        let why: Vec<String> = (1..=3).map(|i| format!("a:{i}: bad")).collect();
        // A file with frames and a few bad lines among them: all told, never refused.
        assert!(!nf.take(10, &why, &mut |w| told.push(w.to_owned())));
        assert_eq!(told.len(), 3);
        // Many bad lines among frames: the first TOLD_AT_MOST told, the rest counted.
        let many: Vec<String> = (1..=100).map(|i| format!("a:{i}: bad")).collect();
        assert!(!nf.take(10, &many, &mut |w| told.push(w.to_owned())));
        assert_eq!(told.len() as u64, TOLD_AT_MOST);
        assert_eq!(nf.total(), 103);
        assert!(nf.untold().unwrap().contains("83 more"));
        // The next file holds no frame at all: refused after a few lines, not told line by line.
        nf.next_file();
        told.clear();
        assert!(nf.take(0, &many, &mut |w| told.push(w.to_owned())));
        assert!(told.is_empty(), "the quota is spent");
        let e = nf.error(std::path::Path::new("applog.txt"));
        assert!(e.to_string().contains("does not hold watch frames"), "{e}");
    }
}
