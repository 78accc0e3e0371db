//! Where the output ends: the last resourceVersion written for each watch scope, recovered from
//! the output file itself, and which scopes the output covers up to its end.
//!
//! A scope resumes from the output only if the output covers it: its frames are complete up to
//! the output's last line. That is recorded beside the output (`.events.json.scopes`): at start
//! the scopes the previous record covers, and each other scope once its first LIST is written
//! and synced. A scope the output does not cover (all namespaces after a run with `-n`, say) is
//! listed; the list skips, per namespace, the versions the output already holds.
//!
//! The output is the record of what was written. On start a torn last line (a crash mid-write)
//! is cut off, then the file is read backwards until each scope's newest frame is found. Frames
//! of one scope are written in resourceVersion order, so that frame is where its watch resumes.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::frame::{Frame, ResourceVersion, Scope};
use crate::output_files::ReverseLines;

/// What start-up learned from the existing output.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Recovery {
    /// The newest resourceVersion written for each scope that has one.
    pub positions: BTreeMap<Scope, ResourceVersion>,
    /// Bytes of a torn last line that were cut off.
    pub torn_bytes: u64,
    /// Complete lines read while searching that are not watch frames (skipped).
    pub invalid_lines: u64,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot recover the position from {path}: {source}")]
pub struct PositionError {
    path: String,
    #[source]
    source: io::Error,
}

impl PositionError {
    fn at(path: &Path, source: io::Error) -> Self {
        PositionError {
            path: path.display().to_string(),
            source,
        }
    }
}

/// Repairs a torn last line of the active file and finds each scope's newest written
/// resourceVersion: in the active file, else in the rotated files (`older`, newest first; plain
/// or `.gz`). A missing active file is fine (first start, or a crash just after a rotation).
pub fn recover(
    active: &Path,
    older: &[PathBuf],
    scopes: &[Scope],
) -> Result<Recovery, PositionError> {
    let err = |path: &Path| {
        let path = path.display().to_string();
        move |source| PositionError { path, source }
    };
    let mut recovery = Recovery::default();
    match OpenOptions::new().read(true).write(true).open(active) {
        Ok(mut file) => {
            recovery.torn_bytes = repair_torn_tail(&mut file).map_err(err(active))?;
            recovery.scan_back(&mut file, scopes).map_err(err(active))?;
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(err(active)(e)),
    }
    for path in older {
        if recovery.positions.len() == scopes.len() {
            break;
        }
        let scanned = match crate::output_files::is_gzip(path) {
            Ok(true) => recovery.scan_gz(path, scopes),
            Ok(false) => {
                File::open(path).and_then(|mut file| recovery.scan_back(&mut file, scopes))
            }
            Err(e) => Err(e),
        };
        scanned.map_err(err(path))?;
    }
    Ok(recovery)
}

impl Recovery {
    /// Reads a file from its end: the first frame met for a scope is that scope's newest.
    fn scan_back(&mut self, file: &mut File, scopes: &[Scope]) -> io::Result<()> {
        let mut lines = ReverseLines::new(file)?;
        while self.positions.len() < scopes.len() {
            let Some(line) = lines.next_line()? else {
                break;
            };
            let Some((namespace, rv)) = self.data_frame(&line) else {
                continue;
            };
            for scope in scopes.iter().filter(|s| s.contains(namespace.as_deref())) {
                self.positions
                    .entry(scope.clone())
                    .or_insert_with(|| rv.clone());
            }
        }
        Ok(())
    }

    /// A gzipped file is read forwards: the last frame met for a scope still missing wins.
    fn scan_gz(&mut self, path: &Path, scopes: &[Scope]) -> io::Result<()> {
        let missing: Vec<Scope> = scopes
            .iter()
            .filter(|s| !self.positions.contains_key(s))
            .cloned()
            .collect();
        let mut found = BTreeMap::new();
        let reader = BufReader::new(crate::output_files::open(path)?);
        for line in reader.split(b'\n') {
            let line = line?;
            if line.is_empty() {
                continue;
            }
            let Some((namespace, rv)) = self.data_frame(&line) else {
                continue;
            };
            for scope in missing.iter().filter(|s| s.contains(namespace.as_deref())) {
                found.insert(scope.clone(), rv.clone());
            }
        }
        self.positions.extend(found);
        Ok(())
    }

    /// A data frame's namespace and resourceVersion; a line that is not one is counted.
    fn data_frame<'l>(
        &mut self,
        line: &'l [u8],
    ) -> Option<(Option<Cow<'l, str>>, ResourceVersion)> {
        match Frame::parse(line) {
            Ok(Frame::Data {
                namespace,
                resource_version,
                ..
            }) => Some((namespace, resource_version)),
            _ => {
                self.invalid_lines += 1;
                None
            }
        }
    }
}

/// Whether the output's frames of `scope` are complete up to its end, given the recorded scopes.
/// No record (a new output, or one written before records were kept) counts as covering every
/// scope, as it always did.
pub fn covered(scope: &Scope, recorded: Option<&[Scope]>) -> bool {
    recorded.is_none_or(|r| r.contains(&Scope::All) || r.contains(scope))
}

/// The scopes recorded for `output`; `None` when there is no record. An unreadable record
/// covers nothing (a redundant LIST costs time; a wrong resume would lose events).
pub fn read_scopes(output: &Path) -> Option<Vec<Scope>> {
    let path = crate::output_files::sibling(output, crate::output_files::Naming::scopes)?;
    let text = match std::fs::read_to_string(&path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return None,
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "cannot read the scope record; listing every scope");
            return Some(Vec::new());
        }
        Ok(text) => text,
    };
    Some(
        text.lines()
            .filter(|l| !l.is_empty())
            .map(|l| match l {
                "*" => Scope::All,
                ns => Scope::Namespace(ns.to_string()),
            })
            .collect(),
    )
}

/// Records the scopes `output` covers: temp file, fsync, rename, fsync of the directory (so the
/// rename itself survives a crash).
pub fn write_scopes(output: &Path, scopes: &[Scope]) -> io::Result<()> {
    let path = crate::output_files::sibling(output, crate::output_files::Naming::scopes)
        .ok_or_else(|| io::Error::other("the output path needs a UTF-8 file name"))?;
    let temp = path.with_extension("scopes.tmp");
    let text: String = scopes
        .iter()
        .map(|s| match s {
            Scope::All => "*\n".to_string(),
            Scope::Namespace(ns) => format!("{ns}\n"),
        })
        .collect();
    // 0640, as the output's own files: readable by the harvester's group, nobody else.
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o640)
        .open(&temp)?;
    std::io::Write::write_all(&mut file, text.as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&temp, &path)?;
    if let Some(dir) = path.parent() {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// The newest resourceVersion of each namespace anywhere in the output (active and rotated
/// files): a listed version at or below its namespace's mark is already written.
pub fn newest_per_namespace(
    active: &Path,
    older: &[PathBuf],
) -> Result<BTreeMap<String, ResourceVersion>, PositionError> {
    let mut marks: BTreeMap<String, ResourceVersion> = BTreeMap::new();
    for path in std::iter::once(active).chain(older.iter().map(PathBuf::as_path)) {
        let reader = match crate::output_files::open(path) {
            Ok(r) => BufReader::new(r),
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(source) => return Err(PositionError::at(path, source)),
        };
        for line in reader.split(b'\n') {
            let line = line.map_err(|source| PositionError::at(path, source))?;
            if let Ok(Frame::Data {
                namespace: Some(ns),
                resource_version,
                ..
            }) = Frame::parse(&line)
            {
                let newest = match marks.remove(ns.as_ref()) {
                    Some(mark) => mark.newest(resource_version),
                    None => resource_version,
                };
                marks.insert(ns.into_owned(), newest);
            }
        }
    }
    Ok(marks)
}

/// Cuts the file back to its last `\n`. Returns the number of bytes removed.
fn repair_torn_tail(file: &mut File) -> io::Result<u64> {
    let len = file.metadata()?.len();
    let mut lines = ReverseLines::new(file)?;
    let keep = lines.end_of_last_line()?;
    if keep < len {
        file.set_len(keep)?;
        file.sync_data()?;
    }
    Ok(len - keep)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn rv(s: &str) -> ResourceVersion {
        ResourceVersion::new(s)
    }

    fn frame(ns: &str, rv: u64) -> String {
        format!(
            r#"{{"type":"ADDED","object":{{"kind":"Event","apiVersion":"v1","metadata":{{"namespace":"{ns}","uid":"u{rv}","resourceVersion":"{rv}"}}}}}}"#
        )
    }

    fn file_with(content: &[u8]) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(content).unwrap();
        f
    }

    #[test]
    fn missing_file_is_a_first_start() {
        let dir = tempfile::tempdir().unwrap();
        let r = recover(&dir.path().join("none.json"), &[], &[Scope::All]).unwrap();
        assert_eq!(r, Recovery::default());
    }

    #[test]
    fn finds_the_last_frame_and_cuts_a_torn_tail() {
        let torn = &frame("a", 3)[..40];
        let content = format!("{}\n{}\n{torn}", frame("a", 1), frame("b", 2));
        let f = file_with(content.as_bytes());
        let r = recover(f.path(), &[], &[Scope::All]).unwrap();
        assert_eq!(r.torn_bytes, 40);
        assert_eq!(r.positions[&Scope::All], rv("2"));
        let after = std::fs::read_to_string(f.path()).unwrap();
        assert_eq!(after, format!("{}\n{}\n", frame("a", 1), frame("b", 2)));
    }

    #[test]
    fn a_file_of_one_torn_line_becomes_empty() {
        let f = file_with(b"{\"type\":\"ADD");
        let r = recover(f.path(), &[], &[Scope::All]).unwrap();
        assert_eq!(r.torn_bytes, 12);
        assert!(r.positions.is_empty());
        assert_eq!(std::fs::metadata(f.path()).unwrap().len(), 0);
    }

    #[test]
    fn each_namespace_resumes_from_its_own_newest_frame() {
        // Long enough to cross several read-back chunks.
        let mut content = String::new();
        content.push_str(&frame("a", 1));
        content.push('\n');
        for i in 2..3000 {
            content.push_str(&frame("b", i));
            content.push('\n');
        }
        content.push_str("not a frame\n\n");
        let f = file_with(content.as_bytes());
        let scopes = [
            Scope::Namespace("a".into()),
            Scope::Namespace("b".into()),
            Scope::Namespace("c".into()),
        ];
        let r = recover(f.path(), &[], &scopes).unwrap();
        assert_eq!(r.positions.get(&scopes[0]), Some(&rv("1")));
        assert_eq!(r.positions.get(&scopes[1]), Some(&rv("2999")));
        assert_eq!(r.positions.get(&scopes[2]), None);
        assert_eq!(r.invalid_lines, 1);
        assert_eq!(r.torn_bytes, 0);
    }

    #[test]
    fn an_empty_or_missing_active_file_resumes_from_the_rotated_ones() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let active = dir.path().join("events.json");
        let newest = dir.path().join("events.json.000002.gz");
        let oldest = dir.path().join("events.json.000001");
        std::fs::write(&oldest, format!("{}\n{}\n", frame("a", 1), frame("b", 2))).unwrap();
        let mut gz = flate2::write::GzEncoder::new(
            File::create(&newest).unwrap(),
            flate2::Compression::fast(),
        );
        write!(gz, "{}\n{}\n", frame("a", 3), frame("a", 4)).unwrap();
        gz.finish().unwrap();
        let scopes = [Scope::Namespace("a".into()), Scope::Namespace("b".into())];
        let older = [newest.clone(), oldest.clone()];
        for active_content in [None, Some("")] {
            if let Some(c) = active_content {
                std::fs::write(&active, c).unwrap();
            }
            let r = recover(&active, &older, &scopes).unwrap();
            assert_eq!(
                r.positions.get(&scopes[0]),
                Some(&rv("4")),
                "newest .gz, its last frame"
            );
            assert_eq!(
                r.positions.get(&scopes[1]),
                Some(&rv("2")),
                "older plain file"
            );
            let all = recover(&active, &older, &[Scope::All]).unwrap();
            assert_eq!(all.positions[&Scope::All], rv("4"));
        }
    }

    #[test]
    fn coverage_follows_the_record() {
        let (all, a, b) = (
            Scope::All,
            Scope::Namespace("a".into()),
            Scope::Namespace("b".into()),
        );
        assert!(
            covered(&all, None),
            "no record: as before records were kept"
        );
        assert!(
            covered(&a, Some(std::slice::from_ref(&all))),
            "narrowing resumes"
        );
        assert!(
            !covered(&all, Some(&[a.clone(), b.clone()])),
            "widening lists"
        );
        assert!(
            !covered(&b, Some(std::slice::from_ref(&a))),
            "another namespace lists"
        );
        assert!(covered(&a, Some(&[a.clone(), b.clone()])));
        assert!(!covered(&a, Some(&[])));
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("events.json");
        assert_eq!(read_scopes(&out), None);
        write_scopes(&out, &[all.clone(), a.clone()]).unwrap();
        assert_eq!(read_scopes(&out), Some(vec![all, a]));
        let record = dir.path().join(".events.json.scopes");
        let mode =
            std::os::unix::fs::PermissionsExt::mode(&record.metadata().unwrap().permissions());
        assert_eq!(mode & 0o777, 0o640, "as the output's own files");
        write_scopes(&out, &[]).unwrap();
        assert_eq!(read_scopes(&out), Some(vec![]));
    }

    #[test]
    fn marks_are_the_newest_version_of_each_namespace() {
        let dir = tempfile::tempdir().unwrap();
        let active = dir.path().join("events.json");
        let rotated = dir.path().join("events.json.000001");
        std::fs::write(&rotated, format!("{}\n{}\n", frame("a", 9), frame("b", 3))).unwrap();
        std::fs::write(
            &active,
            format!("{}\nnot a frame\n{}\n", frame("a", 4), frame("b", 7)),
        )
        .unwrap();
        let marks = newest_per_namespace(&active, &[rotated]).unwrap();
        assert_eq!(marks.get("a"), Some(&rv("9")));
        assert_eq!(marks.get("b"), Some(&rv("7")));
        assert_eq!(marks.len(), 2);
    }
}
