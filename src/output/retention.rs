//! The pure retention and compression plan for the rotated files (named by [`crate::output_files`]).
//! The newest rotated file stays plain (a harvester may still be finishing it), and so does any
//! rotated file younger than `--compress-after` (a harvester that was down or blocked can still
//! finish it: the harvester glob skips `.gz`); older ones are gzipped; beyond `max_files` rotated
//! files the oldest go.

use std::collections::BTreeMap;

use crate::output_files::{Form, Rotated};

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
/// drop plain files whose `.gz` is complete, delete beyond `max_files`, gzip all but the newest
/// and the `young` ones.
pub fn plan(existing: &[Rotated], max_files: usize, young: &dyn Fn(u64) -> bool) -> Vec<Action> {
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
        } else if has(Form::Plain) && Some(*seq) != newest && !young(*seq) {
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
    fn young_rotated_files_stay_plain_until_they_age() {
        let existing = [r(1, Form::Plain), r(2, Form::Plain), r(3, Form::Plain)];
        // 2 and 3 are younger than --compress-after: only 1 is compressed.
        assert_eq!(plan(&existing, 5, &|seq| seq >= 2), [Action::Compress(1)]);
        // Retention by count still wins over age.
        assert_eq!(
            plan(&existing, 1, &|_| true),
            [
                Action::Remove(r(1, Form::Plain)),
                Action::Remove(r(2, Form::Plain))
            ]
        );
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
            plan(&on_disk, 5, &|_| false),
            [Action::Compress(2), Action::Compress(3)]
        );
        assert_eq!(
            plan(&on_disk, 2, &|_| false),
            [
                Action::Remove(r(1, Form::Gz)),
                Action::Remove(r(2, Form::Plain)),
                Action::Compress(3)
            ]
        );
        assert_eq!(plan(&[r(5, Form::Plain)], 1, &|_| false), []);
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
            plan(&on_disk, 5, &|_| false),
            [
                Action::Remove(r(1, Form::Temp)),
                Action::Compress(1),
                Action::Remove(r(2, Form::Plain))
            ]
        );
    }

    /// The model: each rotated seq holds content; the disk holds files in some forms.
    /// Random rotations, tidy-ups interrupted at random points (crashes), and full tidy-ups.
    /// The rotated files on disk, and the seqs whose lines are gone for good.
    #[derive(Default)]
    struct Model {
        disk: BTreeSet<Rotated>,
        deleted: BTreeSet<u64>,
    }

    impl Model {
        fn existing(&self) -> Vec<Rotated> {
            self.disk.iter().copied().collect()
        }

        fn apply(&mut self, action: Action, seed: u64) {
            match action {
                Action::Remove(f) => {
                    assert!(
                        self.disk.remove(&f),
                        "seed {seed}: removing a missing {f:?}"
                    );
                    let still_there = self
                        .disk
                        .iter()
                        .any(|d| d.seq == f.seq && d.form != Form::Temp);
                    if f.form != Form::Temp && !still_there {
                        self.deleted.insert(f.seq);
                    }
                }
                Action::Compress(seq) => {
                    assert!(self.disk.contains(&r(seq, Form::Plain)), "seed {seed}");
                    self.disk.insert(r(seq, Form::Gz));
                    self.disk.remove(&r(seq, Form::Plain));
                }
            }
        }

        /// One tidy-up that a crash may stop after any step, or inside a compression.
        fn tidy_until_crash(&mut self, rng: &mut fastrand::Rng, max_files: usize, seed: u64) {
            let actions = plan(&self.existing(), max_files, &|_| false);
            let crash_at = if rng.bool() {
                rng.usize(0..=actions.len())
            } else {
                actions.len()
            };
            for (i, action) in actions.into_iter().enumerate() {
                if i == crash_at {
                    if let Action::Compress(seq) = action
                        && rng.bool()
                    {
                        self.disk.insert(r(seq, Form::Temp));
                    }
                    break;
                }
                self.apply(action, seed);
            }
        }

        /// After a final, uninterrupted tidy-up: at most `max_files`, no temp, one form per seq,
        /// only the newest plain, and only the oldest ever deleted.
        fn check(&self, max_files: usize, seed: u64) {
            let mut forms: BTreeMap<u64, Vec<Form>> = BTreeMap::new();
            for d in &self.disk {
                forms.entry(d.seq).or_default().push(d.form);
            }
            assert!(
                forms.len() <= max_files,
                "seed {seed}: {} files kept",
                forms.len()
            );
            assert!(
                self.disk.iter().all(|d| d.form != Form::Temp),
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
            if let Some(oldest_kept) = forms.keys().min() {
                assert!(
                    self.deleted.iter().all(|d| d < oldest_kept),
                    "seed {seed}: deleted {:?}, kept from {oldest_kept}",
                    self.deleted
                );
            }
        }
    }

    #[test]
    fn random_rotate_and_crash_sequences_keep_every_invariant() {
        for seed in 0..500u64 {
            let mut rng = fastrand::Rng::with_seed(seed);
            let max_files = rng.usize(1..=5);
            let mut model = Model::default();
            let mut rotations = 0u64;
            for _ in 0..rng.usize(1..40) {
                if rng.bool() {
                    let seq = next_seq(&model.existing());
                    assert!(seq > rotations, "seed {seed}: name {seq} reused");
                    model.disk.insert(r(seq, Form::Plain));
                    rotations = seq;
                }
                model.tidy_until_crash(&mut rng, max_files, seed);
            }
            for action in plan(&model.existing(), max_files, &|_| false) {
                model.apply(action, seed);
            }
            model.check(max_files, seed);
        }
    }
}
