//! A Filebeat-like harvester: follows `<name>*` (not `*.gz`, not dot-files) in a directory,
//! identifies files by inode plus a fingerprint of their first bytes, reads complete lines only,
//! and keeps an offset per file. It holds no file open between polls, so [`Harvester::pause`]
//! models Filebeat with its readers closed: blocked by its output past
//! `close.on_state_change.inactive`, or restarted. What disappears meanwhile (a rotated file
//! compressed away) cannot be finished.

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const FINGERPRINT: usize = 1024;

#[derive(Default)]
struct Tracked {
    fingerprint: Vec<u8>,
    offset: u64,
    partial: Vec<u8>,
}

pub struct Harvester {
    stop: Arc<AtomicBool>,
    paused: Arc<AtomicBool>,
    lines: Arc<Mutex<Vec<String>>>,
    max_dir_bytes: Arc<Mutex<u64>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Harvester {
    pub fn start(dir: PathBuf, name: &str) -> Harvester {
        let stop = Arc::new(AtomicBool::new(false));
        let paused = Arc::new(AtomicBool::new(false));
        let p = paused.clone();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let max_dir_bytes = Arc::new(Mutex::new(0));
        let (s, l, m, name) = (
            stop.clone(),
            lines.clone(),
            max_dir_bytes.clone(),
            name.to_string(),
        );
        let thread = std::thread::spawn(move || {
            let mut files: HashMap<u64, Tracked> = HashMap::new();
            loop {
                let last = s.load(Ordering::SeqCst);
                if !p.load(Ordering::SeqCst) || last {
                    poll(&dir, &name, &mut files, &l, &m);
                }
                if last {
                    break;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        });
        Harvester {
            stop,
            paused,
            lines,
            max_dir_bytes,
            thread: Some(thread),
        }
    }

    /// Stops reading (readers closed) until [`resume`](Self::resume).
    pub fn pause(&self) {
        self.paused.store(true, Ordering::SeqCst);
    }

    pub fn resume(&self) {
        self.paused.store(false, Ordering::SeqCst);
    }

    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// The most bytes the directory held at any poll.
    pub fn max_dir_bytes(&self) -> u64 {
        *self.max_dir_bytes.lock().unwrap()
    }

    /// One last poll, then stop.
    pub fn finish(mut self) -> (Vec<String>, u64) {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.take().unwrap().join().unwrap();
        (self.lines(), self.max_dir_bytes())
    }
}

fn poll(
    dir: &Path,
    name: &str,
    files: &mut HashMap<u64, Tracked>,
    out: &Mutex<Vec<String>>,
    max: &Mutex<u64>,
) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut total = 0;
    let mut found: Vec<(u64, PathBuf)> = Vec::new();
    for e in entries.flatten() {
        let Ok(meta) = e.metadata() else { continue };
        total += meta.len();
        let file_name = e.file_name().to_string_lossy().into_owned();
        if file_name.starts_with(name) && !file_name.ends_with(".gz") {
            found.push((meta.ino(), e.path()));
        }
    }
    {
        let mut m = max.lock().unwrap();
        *m = (*m).max(total);
    }
    // Oldest rotated first, the active file last: names sort that way.
    found.sort_by(|a, b| a.1.cmp(&b.1));
    if let Some(active) = found
        .iter()
        .position(|(_, p)| p.file_name().unwrap() == name)
    {
        let a = found.remove(active);
        found.push(a);
    }
    for (ino, path) in found {
        let Ok(mut f) = std::fs::File::open(&path) else {
            continue;
        };
        // Renamed since the listing (a rotation): the name now holds another file, which the
        // next poll sees under its own inode. Reading it as `ino` would mix two files' offsets.
        if f.metadata().map(|m| m.ino()).ok() != Some(ino) {
            continue;
        }
        let mut head = vec![0; FINGERPRINT];
        let n = read_up_to(&mut f, &mut head);
        head.truncate(n);
        let t = files.entry(ino).or_default();
        if !head.starts_with(&t.fingerprint) && !t.fingerprint.starts_with(&head) {
            *t = Tracked::default(); // inode reused by another file
        }
        if head.len() > t.fingerprint.len() {
            t.fingerprint = head;
        }
        let mut buf = Vec::new();
        if f.seek(SeekFrom::Start(t.offset)).is_err() || f.read_to_end(&mut buf).is_err() {
            continue;
        }
        t.offset += buf.len() as u64;
        t.partial.extend_from_slice(&buf);
        if let Some(end) = t.partial.iter().rposition(|&b| b == b'\n') {
            let complete: Vec<u8> = t.partial.drain(..=end).collect();
            let mut o = out.lock().unwrap();
            for line in complete.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
                o.push(String::from_utf8(line.to_vec()).unwrap());
            }
        }
    }
}

fn read_up_to(f: &mut std::fs::File, buf: &mut [u8]) -> usize {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..]) {
            Ok(0) | Err(_) => break,
            Ok(k) => n += k,
        }
    }
    n
}

/// Every complete line kept in the directory, oldest file first (`.gz` decompressed), the
/// active last.
pub fn all_kept_lines(dir: &Path, name: &str) -> Vec<String> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(name))
        .collect();
    files.sort();
    if let Some(i) = files.iter().position(|p| p.file_name().unwrap() == name) {
        let a = files.remove(i);
        files.push(a);
    }
    let mut lines = Vec::new();
    for p in files {
        let mut content = String::new();
        // A plain file compressed away since the listing: its .gz is seen at the next call.
        let f = match std::fs::File::open(&p) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => panic!("{}: {e}", p.display()),
        };
        if p.extension().is_some_and(|e| e == "gz") {
            flate2::read::GzDecoder::new(f)
                .read_to_string(&mut content)
                .unwrap();
        } else {
            std::io::BufReader::new(f)
                .read_to_string(&mut content)
                .unwrap();
        }
        // A reader can see part of a write still in progress in the active file: like Filebeat
        // and Alloy, only complete lines count there; the rest arrives with its newline. A
        // rotated file is closed: it ends on a whole line.
        let active = p.file_name().is_some_and(|n| n == name);
        assert!(
            active || content.is_empty() || content.ends_with('\n'),
            "{} ends mid-line",
            p.display()
        );
        let complete = content.rfind('\n').map_or("", |end| &content[..=end]);
        lines.extend(complete.lines().map(str::to_owned));
    }
    lines
}
