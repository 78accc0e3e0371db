//! Rotated-file naming and the pure retention/compression plan.
//!
//! Beside the active file `events.json` sit rotated files `events.json.000001`, `…000002`, …
//! (higher = newer) and their compressed forms `events.json.000001.gz`. A file being compressed
//! is a dot-file, `.events.json.000001.gz.tmp`, so that no partial file ever matches the
//! harvester glob `events.json*`. The newest rotated file stays plain (a harvester may still be
//! finishing it); older ones are gzipped; beyond `max_files` rotated files the oldest go.

use std::collections::BTreeMap;

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

/// One step of tidying the rotated files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Remove this file.
    Remove(Rotated),
    /// Gzip the plain file `seq` (via its temp name), then remove the plain one.
    Compress(u64),
}

/// The next sequence number for a rotation.
pub fn next_seq(existing: &[Rotated]) -> u64 {
    existing.iter().map(|r| r.seq).max().unwrap_or(0) + 1
}

/// From what is on disk to what to do, in order: drop leftovers of interrupted compressions,
/// drop plain files whose `.gz` is complete, delete beyond `max_files`, gzip all but the newest.
pub fn plan(existing: &[Rotated], max_files: usize) -> Vec<Action> {
    let mut by_seq: BTreeMap<u64, Vec<Form>> = BTreeMap::new();
    for r in existing {
        by_seq.entry(r.seq).or_default().push(r.form);
    }
    let mut actions = Vec::new();
    for r in existing.iter().filter(|r| r.form == Form::Temp) {
        actions.push(Action::Remove(*r));
    }
    let seqs: Vec<u64> = by_seq
        .iter()
        .filter(|(_, forms)| forms.iter().any(|f| *f != Form::Temp))
        .map(|(seq, _)| *seq)
        .collect();
    let keep_from = seqs.len().saturating_sub(max_files);
    let newest = seqs.last().copied();
    for (i, seq) in seqs.iter().enumerate() {
        let forms = &by_seq[seq];
        let has = |f| forms.contains(&f);
        if i < keep_from {
            for form in [Form::Plain, Form::Gz] {
                if has(form) {
                    actions.push(Action::Remove(Rotated { seq: *seq, form }));
                }
            }
        } else if has(Form::Plain) && has(Form::Gz) {
            actions.push(Action::Remove(Rotated {
                seq: *seq,
                form: Form::Plain,
            }));
        } else if has(Form::Plain) && Some(*seq) != newest {
            actions.push(Action::Compress(*seq));
        }
    }
    actions
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, BTreeSet};

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
    fn plan_compresses_all_but_the_newest_and_keeps_max_files() {
        let on_disk = [
            r(1, Form::Gz),
            r(2, Form::Plain),
            r(3, Form::Plain),
            r(4, Form::Plain),
        ];
        assert_eq!(
            plan(&on_disk, 5),
            [Action::Compress(2), Action::Compress(3)]
        );
        assert_eq!(
            plan(&on_disk, 2),
            [
                Action::Remove(r(1, Form::Gz)),
                Action::Remove(r(2, Form::Plain)),
                Action::Compress(3)
            ]
        );
        assert_eq!(plan(&[r(5, Form::Plain)], 1), []);
        assert_eq!(next_seq(&on_disk), 5);
        assert_eq!(next_seq(&[]), 1);
    }

    #[test]
    fn plan_cleans_up_after_an_interrupted_compression() {
        let on_disk = [
            r(1, Form::Plain),
            r(1, Form::Temp),
            r(2, Form::Plain),
            r(2, Form::Gz),
            r(3, Form::Plain),
        ];
        assert_eq!(
            plan(&on_disk, 5),
            [
                Action::Remove(r(1, Form::Temp)),
                Action::Compress(1),
                Action::Remove(r(2, Form::Plain))
            ]
        );
    }

    /// The model: each rotated seq holds content; the disk holds files in some forms.
    /// Random rotations, tidy-ups interrupted at random points (crashes), and full tidy-ups.
    #[test]
    fn random_rotate_and_crash_sequences_keep_every_invariant() {
        for seed in 0..500u64 {
            let mut rng = fastrand::Rng::with_seed(seed);
            let max_files = rng.usize(1..=5);
            let mut disk: BTreeSet<Rotated> = BTreeSet::new();
            // What each seq's file holds (its own seq stands for its lines).
            let mut deleted: BTreeSet<u64> = BTreeSet::new();
            let mut rotations = 0u64;
            for _ in 0..rng.usize(1..40) {
                if rng.bool() {
                    let existing: Vec<Rotated> = disk.iter().copied().collect();
                    let seq = next_seq(&existing);
                    assert!(seq > rotations, "seed {seed}: name {seq} reused");
                    disk.insert(r(seq, Form::Plain));
                    rotations = seq;
                }
                let existing: Vec<Rotated> = disk.iter().copied().collect();
                let actions = plan(&existing, max_files);
                // A crash may stop the tidy-up after any step, or inside a compression.
                let crash_at = if rng.bool() {
                    rng.usize(0..=actions.len())
                } else {
                    actions.len()
                };
                for (i, action) in actions.iter().enumerate() {
                    if i == crash_at {
                        if let Action::Compress(seq) = action
                            && rng.bool()
                        {
                            disk.insert(r(*seq, Form::Temp));
                        }
                        break;
                    }
                    match *action {
                        Action::Remove(f) => {
                            assert!(disk.remove(&f), "seed {seed}: removing a missing {f:?}");
                            let still_there =
                                disk.iter().any(|d| d.seq == f.seq && d.form != Form::Temp);
                            if f.form != Form::Temp && !still_there {
                                deleted.insert(f.seq);
                            }
                        }
                        Action::Compress(seq) => {
                            assert!(disk.contains(&r(seq, Form::Plain)), "seed {seed}");
                            disk.insert(r(seq, Form::Gz));
                            disk.remove(&r(seq, Form::Plain));
                        }
                    }
                }
            }
            // After a final, uninterrupted tidy-up:
            let existing: Vec<Rotated> = disk.iter().copied().collect();
            for action in plan(&existing, max_files) {
                match action {
                    Action::Remove(f) => {
                        disk.remove(&f);
                        if !disk.iter().any(|d| d.seq == f.seq && d.form != Form::Temp)
                            && f.form != Form::Temp
                        {
                            deleted.insert(f.seq);
                        }
                    }
                    Action::Compress(seq) => {
                        disk.insert(r(seq, Form::Gz));
                        disk.remove(&r(seq, Form::Plain));
                    }
                }
            }
            let mut forms: BTreeMap<u64, Vec<Form>> = BTreeMap::new();
            for d in &disk {
                forms.entry(d.seq).or_default().push(d.form);
            }
            assert!(
                forms.len() <= max_files,
                "seed {seed}: {} files kept",
                forms.len()
            );
            assert!(
                disk.iter().all(|d| d.form != Form::Temp),
                "seed {seed}: temp left"
            );
            assert!(
                forms.values().all(|f| f.len() == 1),
                "seed {seed}: a seq in two forms"
            );
            let newest = forms.keys().max().copied();
            for (seq, f) in &forms {
                let expected = if Some(*seq) == newest {
                    Form::Plain
                } else {
                    Form::Gz
                };
                assert_eq!(f[0], expected, "seed {seed}: seq {seq}");
            }
            // Only the oldest are ever deleted: every deleted seq is older than every kept one.
            if let Some(oldest_kept) = forms.keys().min() {
                assert!(
                    deleted.iter().all(|d| d < oldest_kept),
                    "seed {seed}: deleted {deleted:?}, kept from {oldest_kept}"
                );
            }
        }
    }
}
