//! The tidier: a background thread that carries out [`retention::plan`] — gzip the rotated files
//! that are neither the newest nor younger than `--compress-after` (temp dot-file → fsync →
//! rename → remove the plain one), delete beyond `max_files`, remove leftovers of interrupted
//! compressions. Off the writer's hot path.

use std::fs::File;
use std::io::{self, BufReader, BufWriter};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use flate2::Compression;
use flate2::write::GzEncoder;

use super::retention::{self, Action};
use crate::output_files::{self, Form, Naming, Rotated};

/// The tidier thread. Dropping it waits for the pass under way, so that a clean shutdown never
/// leaves a half-written temp file behind.
pub struct Tidier {
    tx: Option<mpsc::SyncSender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Tidier {
    pub fn spawn(dir: PathBuf, naming: Naming, max_files: usize, compress_after: Duration) -> Self {
        let (tx, rx) = mpsc::sync_channel::<()>(1);
        // Also on a timer: a rotated file becomes old enough to compress between rotations.
        let every = compress_after.clamp(Duration::from_secs(1), Duration::from_secs(60));
        let thread = std::thread::Builder::new()
            .name("output-tidier".into())
            .spawn(move || {
                while let Ok(()) | Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(every) {
                    tidy(&dir, &naming, max_files, compress_after);
                }
            })
            .expect("spawning the tidier thread");
        Self {
            tx: Some(tx),
            thread: Some(thread),
        }
    }

    /// Asks for a tidy-up; a request already pending covers this one.
    pub fn nudge(&self) {
        if let Some(tx) = &self.tx {
            let _ = tx.try_send(());
        }
    }
}

impl Drop for Tidier {
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// One full pass of the plan over what is on disk now. A plain rotated file is young while its
/// last write (the rotation) is less than `compress_after` ago.
pub fn tidy(dir: &Path, naming: &Naming, max_files: usize, compress_after: Duration) {
    let found = output_files::in_dir(dir, naming);
    let existing: Vec<Rotated> = found.iter().map(|(r, _)| *r).collect();
    let young = |seq: u64| {
        found.iter().any(|(r, path)| {
            r.seq == seq
                && r.form == Form::Plain
                && std::fs::metadata(path)
                    .and_then(|m| m.modified())
                    .is_ok_and(|t| t.elapsed().unwrap_or_default() < compress_after)
        })
    };
    for action in retention::plan(&existing, max_files, &young) {
        let result = match action {
            Action::Remove(r) => remove(&dir.join(naming.file_name(r))),
            Action::Compress(seq) => compress(dir, naming, seq),
        };
        if let Err(e) = result {
            tracing::warn!(?action, error = %e, "tidying rotated output files failed; will retry at the next rotation");
        }
    }
}

fn remove(path: &Path) -> io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

fn compress(dir: &Path, naming: &Naming, seq: u64) -> io::Result<()> {
    let name = |form| dir.join(naming.file_name(Rotated { seq, form }));
    let (plain, temp, gz) = (name(Form::Plain), name(Form::Temp), name(Form::Gz));
    let result = (|| {
        let mut input = BufReader::new(File::open(&plain)?);
        let out = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o640)
            .open(&temp)?;
        let mut encoder = GzEncoder::new(BufWriter::new(out), Compression::default());
        io::copy(&mut input, &mut encoder)?;
        let out = encoder.finish()?.into_inner().map_err(|e| e.into_error())?;
        out.sync_all()?;
        std::fs::rename(&temp, &gz)?;
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
        return result;
    }
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    remove(&plain)?;
    tracing::debug!(gz = %gz.display(), "compressed a rotated output file");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn gz_holds_exactly_the_lines_it_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let naming = Naming::new("events.json");
        let content: String = (0..1000)
            .map(|i| format!("{{\"n\":{i},\"m\":\"ünïcode \\u003c\"}}\n"))
            .collect();
        for seq in 1..=3 {
            std::fs::write(
                dir.path().join(naming.file_name(Rotated {
                    seq,
                    form: Form::Plain,
                })),
                &content,
            )
            .unwrap();
        }
        std::fs::write(
            dir.path().join(naming.file_name(Rotated {
                seq: 1,
                form: Form::Temp,
            })),
            b"partial",
        )
        .unwrap();
        tidy(dir.path(), &naming, 2, Duration::ZERO);
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["events.json.000002.gz", "events.json.000003"]);
        let mut out = String::new();
        flate2::read::GzDecoder::new(File::open(dir.path().join("events.json.000002.gz")).unwrap())
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(out, content);
        use std::os::unix::fs::PermissionsExt;
        let gz = dir.path().join("events.json.000002.gz");
        let mode = std::fs::metadata(gz).unwrap().permissions().mode() & 0o777;
        assert_eq!(
            mode, 0o640,
            "gz files are as private as the output: {mode:o}"
        );
    }
}
