//! The output's files on disk, in one place: the rotated files beside the active one, their
//! names, finding them, and opening any of them for reading (plain or gzip).
//!
//! Beside the active file `events.json` sit rotated files `events.json.000001`, `…000002`, …
//! (higher = newer) and their compressed forms `events.json.000001.gz`. A file being compressed
//! is a dot-file, `.events.json.000001.gz.tmp`, so that no partial file ever matches the
//! harvester glob `events.json*`.

use std::fs::File;
use std::io::{self, Read};
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

/// Whether a file is read through gzip.
pub fn is_gzip(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "gz")
}

/// Opens an output file for reading, decompressing a gzipped one.
pub fn open(path: &Path) -> io::Result<Box<dyn Read + Send>> {
    let file = File::open(path)?;
    Ok(if is_gzip(path) {
        Box::new(flate2::read::GzDecoder::new(file))
    } else {
        Box::new(file)
    })
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
    fn opens_plain_and_gzip_alike() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("events.json.000001");
        let gz = dir.path().join("events.json.000002.gz");
        std::fs::write(&plain, "a\n").unwrap();
        let mut enc = flate2::write::GzEncoder::new(File::create(&gz).unwrap(), Default::default());
        enc.write_all(b"a\n").unwrap();
        enc.finish().unwrap();
        for path in [&plain, &gz] {
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
