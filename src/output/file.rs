//! The output file on disk: appends whole lines, rotates by rename-and-create when the next batch
//! would pass the size limit, reopens the file when someone else deleted it (at the next write)
//! or moved it (at the next rotation), and has
//! the rotated files tidied (gzip, retention) off the hot path.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use std::sync::Arc;

use super::OutputError;
use super::compress::Tidier;
use super::retention;
use crate::metrics::Metrics;
use crate::output_files::{self, Form, Naming, Rotated, parent};

/// Rotation settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Rotate before a batch would take the active file past this many bytes.
    pub max_file_size: u64,
    /// Rotated files kept (plain while they are the newest or younger than `compress_after`,
    /// then gzipped).
    pub max_files: usize,
    /// A rotated file stays plain (harvestable) at least this long after its rotation.
    pub compress_after: std::time::Duration,
}

/// Tests: one file that never rotates, rotated files compressed at once.
#[cfg(test)]
pub(super) const BIG: Limits = Limits {
    max_file_size: 1 << 30,
    max_files: 5,
    compress_after: std::time::Duration::ZERO,
};

/// The active file, opened for appending.
struct Active {
    file: File,
    /// Length as we wrote it: always a line boundary.
    len: u64,
    ino: u64,
    dev: u64,
}

fn open_active(path: &Path) -> Result<Active, OutputError> {
    let open_err = |source| OutputError::Open {
        path: path.to_path_buf(),
        source,
    };
    let file = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o640)
        .open(path)
        .map_err(open_err)?;
    let meta = file.metadata().map_err(open_err)?;
    Ok(Active {
        file,
        len: meta.len(),
        ino: meta.ino(),
        dev: meta.dev(),
    })
}

/// The output file with rotation.
pub struct OutputFile {
    path: PathBuf,
    naming: Naming,
    limits: Limits,
    active: Active,
    next_seq: u64,
    tidier: Tidier,
    metrics: Option<Arc<Metrics>>,
}

impl OutputFile {
    /// Opens (or creates, mode 0640, with its parent directories) the output file, and tidies
    /// rotated files left by an earlier run.
    pub fn open(path: &Path, limits: Limits) -> Result<Self, OutputError> {
        let dir = parent(path).ok_or_else(|| OutputError::Open {
            path: path.to_path_buf(),
            source: io::Error::other("the output path has no file name"),
        })?;
        std::fs::create_dir_all(dir).map_err(|source| OutputError::CreateDir {
            path: dir.to_path_buf(),
            source,
        })?;
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| OutputError::Open {
                path: path.to_path_buf(),
                source: io::Error::other("the output file name must be UTF-8"),
            })?;
        let naming = Naming::new(name);
        let existing: Vec<Rotated> = output_files::in_dir(dir, &naming)
            .into_iter()
            .map(|(r, _)| r)
            .collect();
        let tidier = Tidier::spawn(
            dir.to_path_buf(),
            naming.clone(),
            limits.max_files,
            limits.compress_after,
        );
        tidier.nudge();
        Ok(Self {
            path: path.to_path_buf(),
            active: open_active(path)?,
            next_seq: retention::next_seq(&existing),
            naming,
            limits,
            tidier,
            metrics: None,
        })
    }

    /// Counts rotations in these metrics.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    fn write_err(&self, source: io::Error) -> OutputError {
        OutputError::Write {
            path: self.path.clone(),
            source,
        }
    }

    /// Appends whole lines, rotating first if they would pass the size limit. On failure the
    /// file is cut back to where it was, so it still ends on a line boundary, and the same
    /// lines may be offered again.
    pub fn append(&mut self, lines: &[u8]) -> Result<(), OutputError> {
        debug_assert!(lines.is_empty() || lines.ends_with(b"\n"));
        self.reopen_if_deleted()?;
        if self.active.len > 0 && self.active.len + lines.len() as u64 > self.limits.max_file_size {
            self.rotate()?;
        }
        match self.active.file.write_all(lines) {
            Ok(()) => {
                self.active.len += lines.len() as u64;
                Ok(())
            }
            Err(source) => {
                if let Err(e) = self.active.file.set_len(self.active.len) {
                    tracing::error!(path = %self.path.display(), error = %e, "cannot cut a partly written batch back to the last whole line");
                }
                Err(self.write_err(source))
            }
        }
    }

    /// Bytes the active file takes before the next append rotates it (the whole limit when it
    /// is empty: an empty file is never rotated).
    pub fn room(&self) -> u64 {
        self.limits.max_file_size.saturating_sub(self.active.len)
    }

    /// Someone deleted the active file (its last link is gone): start a new one at the path.
    /// Asked of the open descriptor (fstat), so a write costs no path lookup; a file moved away
    /// or replaced at the path is noticed when it is next rotated.
    fn reopen_if_deleted(&mut self) -> Result<(), OutputError> {
        let meta = self.active.file.metadata().map_err(|e| self.write_err(e))?;
        if meta.nlink() == 0 {
            self.reopen("deleted")?;
        }
        Ok(())
    }

    /// Whether the path still names the file we write.
    fn still_at_path(&self) -> Result<bool, OutputError> {
        match std::fs::metadata(&self.path) {
            Ok(m) => Ok(m.ino() == self.active.ino && m.dev() == self.active.dev),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(self.write_err(e)),
        }
    }

    fn reopen(&mut self, how: &str) -> Result<(), OutputError> {
        tracing::warn!(path = %self.path.display(), "the output file was {how} by someone else; opening a new one");
        self.active = open_active(&self.path)?;
        Ok(())
    }

    /// Rename-and-create: the active file becomes the newest rotated file.
    fn rotate(&mut self) -> Result<(), OutputError> {
        if !self.still_at_path()? {
            // Not ours to rename: whatever is at the path now (if anything) is left as it is.
            return self.reopen("moved or replaced");
        }
        self.active
            .file
            .sync_data()
            .map_err(|e| self.write_err(e))?;
        let rotated = Rotated {
            seq: self.next_seq,
            form: Form::Plain,
        };
        let to = self.path.with_file_name(self.naming.file_name(rotated));
        std::fs::rename(&self.path, &to).map_err(|e| self.write_err(e))?;
        self.next_seq += 1;
        self.active = open_active(&self.path)?;
        if let Some(m) = &self.metrics {
            m.output.rotated();
        }
        tracing::info!(rotated = %to.display(), "rotated the output file");
        self.tidier.nudge();
        Ok(())
    }

    /// Flushes file data to disk.
    pub fn sync(&mut self) -> Result<(), OutputError> {
        self.active.file.sync_data().map_err(|e| self.write_err(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn creates_parent_dirs_with_mode_0640_and_appends() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/events.json");
        let mut f = OutputFile::open(&path, BIG).unwrap();
        f.append(b"{\"x\":1}\n").unwrap();
        let mut f = OutputFile::open(&path, BIG).unwrap();
        f.append(b"{\"x\":2}\n").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"{\"x\":1}\n{\"x\":2}\n");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode & !0o640, 0, "mode {mode:o}");
    }

    /// Rotation at 20 bytes, no compression.
    const TWENTY_BYTES: Limits = Limits {
        max_file_size: 20,
        max_files: 100,
        compress_after: std::time::Duration::ZERO,
    };

    #[test]
    fn rotates_at_line_boundaries_and_numbers_rotated_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.json");
        let limits = TWENTY_BYTES;
        let mut f = OutputFile::open(&path, limits).unwrap();
        for i in 0..5 {
            f.append(format!("{{\"line\":{i}}}\n").as_bytes()).unwrap();
        }
        // 13-byte lines, 20-byte limit: one line per file.
        let seqs: std::collections::BTreeSet<u64> = output_files::beside(&path)
            .iter()
            .map(|(r, _)| r.seq)
            .collect();
        assert_eq!(
            seqs.into_iter().collect::<Vec<_>>(),
            [1, 2, 3, 4],
            "four rotations"
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{\"line\":4}\n");
        let rotated = output_files::beside(&path);
        assert_eq!(rotated.first().map(|r| r.0.seq), Some(4), "{rotated:?}");
        // A batch larger than the limit still goes in whole.
        let big = "{\"big\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}\n";
        f.append(big.as_bytes()).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), big);
    }

    #[test]
    fn a_deleted_active_file_is_recreated_at_the_next_write() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.json");
        let mut f = OutputFile::open(&path, BIG).unwrap();
        f.append(b"{\"a\":1}\n").unwrap();
        std::fs::remove_file(&path).unwrap();
        f.append(b"{\"a\":2}\n").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"{\"a\":2}\n");
    }

    #[test]
    fn a_moved_or_replaced_active_file_is_left_alone_at_the_next_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.json");
        let limits = TWENTY_BYTES;
        let mut f = OutputFile::open(&path, limits).unwrap();
        f.append(b"{\"a\":1}\n").unwrap();
        let moved = dir.path().join("moved.json");
        std::fs::rename(&path, &moved).unwrap();
        std::fs::write(&path, b"someone else's\n").unwrap();
        // Still within the limit: the line goes where the open file now is.
        f.append(b"{\"a\":2}\n").unwrap();
        // Past it: what is at the path now is not renamed as ours; a new file is not made over it.
        f.append(b"{\"a\":3}\n").unwrap();
        assert_eq!(std::fs::read(&moved).unwrap(), b"{\"a\":1}\n{\"a\":2}\n");
        assert_eq!(
            std::fs::read(&path).unwrap(),
            b"someone else's\n{\"a\":3}\n"
        );
        assert!(output_files::beside(&path).is_empty(), "nothing rotated");
    }
}
