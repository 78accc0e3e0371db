//! How often an Event happened, by the one rule everything that counts uses (`summary`, and the
//! views and metrics built on the same rule): a frame's occurrences are how much the Event's
//! count grew since that Event's previous frame.
//!
//! Kubernetes does not report every occurrence as a frame of its own. The core/v1 recorder
//! (client-go `tools/record`) bumps the Event's `count` and patches it, after a spam filter that
//! lets a burst through as one update whose `count` jumps by many; the events.k8s.io/v1 recorder
//! (client-go `tools/events`, used by the scheduler and others) writes the first repeat as
//! `series.count: 2` and later ones only every 30 minutes, or 6 minutes after the series goes
//! quiet, so one frame can stand for dozens of occurrences.
//!
//! The rule, per Event (its uid): the count is `series.count`, else `count`, else 1. An Event's
//! first frame counts its whole count; a later frame counts the growth since the previous one;
//! a DELETED frame (the Event expiring), a relist repeat (the same uid and resourceVersion again)
//! and a decrease count 0. Memory is bounded by `cap` Events remembered, in two generations of
//! `cap / 2`: an Event seen again moves to the newer one, and when the newer one is full the
//! older is dropped whole (no per-frame eviction); once one had to be forgotten, a later frame of an Event not remembered counts as its
//! first, and when its count is above 1 (some of it may have been counted) the result says it
//! is approximate.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use crate::event::EventFrame;
use crate::frame::{DataKind, Facts};

/// What the rule needs of one frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Update {
    /// The Event's uid and the frame's resourceVersion, hashed; `None` without a uid (every such
    /// frame counts as a first one).
    pub event: Option<(u64, u64)>,
    /// `series.count`, else `count`, else 1.
    pub count: u64,
    /// A DELETED frame.
    pub deleted: bool,
    /// A MODIFIED frame (an update of an Event that existed before it).
    pub modified: bool,
}

impl Update {
    /// From the frame's fields.
    pub fn new(
        uid: Option<&str>,
        resource_version: Option<&str>,
        count: Option<i64>,
        kind: Option<DataKind>,
    ) -> Self {
        Self::of_bytes(uid.map(str::as_bytes), resource_version, count, kind)
    }

    /// As [`Update::new`], with the uid as the bytes of its JSON string.
    pub fn of_bytes(
        uid: Option<&[u8]>,
        resource_version: Option<&str>,
        count: Option<i64>,
        kind: Option<DataKind>,
    ) -> Self {
        Update {
            event: uid.map(|u| {
                (
                    hash(u),
                    resource_version.map_or(0, |rv| hash(rv.as_bytes())),
                )
            }),
            count: count.map_or(1, |c| u64::try_from(c).unwrap_or(0)),
            deleted: kind == Some(DataKind::Deleted),
            modified: kind == Some(DataKind::Modified),
        }
    }

    /// From a frame as the viewers read it (`summary`, `tail`).
    pub fn of(frame: &EventFrame<'_>) -> Self {
        let e = &frame.object;
        Self::new(
            e.metadata.uid.as_deref(),
            e.metadata.resource_version.as_deref(),
            e.occurrences(),
            frame.kind(),
        )
    }

    /// From the facts the watch reads in its checking pass, for a frame of `kind` at
    /// `resource_version`.
    pub fn of_facts(facts: &Facts<'_>, resource_version: &str, kind: DataKind) -> Self {
        Self::of_bytes(
            facts.uid.as_deref(),
            Some(resource_version),
            facts.occurrences(),
            Some(kind),
        )
    }
}

/// A string's 64-bit hash, FxHash-style (a word at a time): uids and resourceVersions are
/// short, and a frame's cost is counted in nanoseconds. Not for untrusted keys in a map an
/// attacker fills: the Events come from the API server.
fn hash(s: &[u8]) -> u64 {
    let mut h = Fast(s.len() as u64);
    h.write(s);
    h.0
}

/// The hasher behind `hash`, for maps keyed by short strings on a hot path (the metrics'
/// counter handles).
#[derive(Default)]
pub struct Fast(u64);

impl Hasher for Fast {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x517c_c1b7_2722_0a95;
        let mut words = bytes.chunks_exact(8);
        for w in &mut words {
            let word = u64::from_le_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]);
            self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(K);
        }
        let rest = words.remainder();
        if !rest.is_empty() {
            let word = short_word(rest) ^ (rest.len() as u64) << 59;
            self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(K);
        }
    }
}

/// The bytes of a slice shorter than eight as one word, every byte in it: the first and last
/// four (overlapping), or the first, middle and last byte. Slices of one length are equal when
/// their words are, with no loop over the bytes.
#[inline(always)]
pub(crate) fn short_word(b: &[u8]) -> u64 {
    let n = b.len();
    match n {
        0 => 0,
        1..4 => u64::from(b[0]) | u64::from(b[n / 2]) << 8 | u64::from(b[n - 1]) << 16,
        _ => {
            let first = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            let last = u32::from_le_bytes([b[n - 4], b[n - 3], b[n - 2], b[n - 1]]);
            u64::from(first) | u64::from(last) << 32
        }
    }
}

/// Hashing for keys that are hashes already.
#[derive(Default)]
struct Hashed(u64);

impl Hasher for Hashed {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// How many occurrences a frame stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counted {
    pub occurrences: u64,
    /// The frame repeats one already counted (the same uid and resourceVersion: a relist).
    pub repeat: bool,
    /// The Event's previous count was forgotten (the memory bound was reached): this may count
    /// occurrences already counted.
    pub approximate: bool,
}

/// Whether an Event not remembered may have been counted before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum History {
    /// Every Event's frames were seen from its first (a file read from its start, or a watch
    /// after a LIST): an Event not remembered is new, its first frame counts its whole count.
    Known,
    /// The watch resumed where an earlier run stopped, with no LIST: an Event not remembered
    /// may have been counted by that run. Its MODIFIED frame counts 1 (the update it is; a lower
    /// bound) until a LIST makes every live Event known again.
    Resumed,
}

type Generation = HashMap<u64, (u64, u64), BuildHasherDefault<Hashed>>;

/// The Events' last counts, at most `cap` of them.
#[derive(Debug)]
pub struct Occurrences {
    cap: usize,
    history: History,
    /// uid hash → (resourceVersion hash, count): the Events seen since the generation began…
    current: Generation,
    /// …and those of the generation before, moved to `current` when seen again.
    previous: Generation,
    /// Whether any Event had to be forgotten.
    forgot: bool,
}

impl Occurrences {
    pub fn new(cap: usize) -> Self {
        Self::with_history(cap, History::Known)
    }

    pub fn with_history(cap: usize, history: History) -> Self {
        Self {
            cap: cap.max(1),
            history,
            current: Generation::default(),
            previous: Generation::default(),
            forgot: false,
        }
    }

    /// The occurrences `update` stands for, by the rule; remembers its count.
    pub fn count(&mut self, update: Update) -> Counted {
        let Some((uid, rv)) = update.event else {
            return Counted {
                occurrences: if update.deleted { 0 } else { update.count },
                ..Counted::default()
            };
        };
        if update.deleted {
            // The Event is gone: nothing more to compare with.
            self.current.remove(&uid);
            self.previous.remove(&uid);
            return Counted::default();
        }
        if let Some(seen) = self.previous.remove(&uid) {
            self.remember(uid, seen.0, seen.1);
        }
        match self.current.get_mut(&uid) {
            Some((last_rv, _)) if *last_rv == rv => Counted {
                repeat: true,
                ..Counted::default()
            },
            Some((last_rv, last)) => {
                let grown = update.count.saturating_sub(*last);
                *last_rv = rv;
                *last = update.count.max(*last);
                Counted {
                    occurrences: grown,
                    ..Counted::default()
                }
            }
            None if self.history == History::Resumed && update.modified => {
                self.remember(uid, rv, update.count);
                Counted {
                    occurrences: 1,
                    approximate: true,
                    repeat: false,
                }
            }
            None => {
                self.remember(uid, rv, update.count);
                // Forgotten or new, it cannot be told: a count above 1 may hold occurrences
                // counted before it was forgotten.
                Counted {
                    occurrences: update.count,
                    approximate: self.forgot && update.count > 1,
                    repeat: false,
                }
            }
        }
    }

    /// Takes `update` as known, counting nothing: the baseline a LIST (or frames before a
    /// window) gives for later frames.
    pub fn baseline(&mut self, update: Update) {
        let _ = self.count(update);
    }

    /// A LIST was taken as the baseline: every live Event is known from here on.
    pub fn listed(&mut self) {
        self.history = History::Known;
    }

    /// Whether any Event had to be forgotten.
    pub fn approximate(&self) -> bool {
        self.forgot
    }

    fn remember(&mut self, uid: u64, rv: u64, count: u64) {
        let generation = self.cap.div_ceil(2);
        if self.current.len() >= generation {
            let older = std::mem::replace(&mut self.previous, std::mem::take(&mut self.current));
            self.forgot |= !older.is_empty();
            self.current = Generation::with_capacity_and_hasher(generation, Default::default());
        }
        self.current.insert(uid, (rv, count));
    }

    /// Events remembered now.
    #[cfg(test)]
    fn remembered(&self) -> usize {
        self.current.len() + self.previous.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(uid: &str, rv: u64, count: i64) -> Update {
        Update::new(
            Some(uid),
            Some(&rv.to_string()),
            Some(count),
            Some(DataKind::Modified),
        )
    }

    fn deleted(uid: &str, rv: u64, count: i64) -> Update {
        Update::new(
            Some(uid),
            Some(&rv.to_string()),
            Some(count),
            Some(DataKind::Deleted),
        )
    }

    fn counts(o: &mut Occurrences, updates: &[Update]) -> Vec<u64> {
        updates.iter().map(|u| o.count(*u).occurrences).collect()
    }

    #[test]
    fn a_count_bumped_by_one_counts_one_per_frame() {
        let mut o = Occurrences::new(100);
        let frames = [update("a", 1, 1), update("a", 2, 2), update("a", 3, 3)];
        assert_eq!(counts(&mut o, &frames), [1, 1, 1]);
    }

    #[test]
    fn a_spam_filtered_burst_counts_its_whole_jump() {
        // core/v1: 25 let through one by one, then one PATCH for the next 40.
        let mut o = Occurrences::new(100);
        let mut frames: Vec<Update> = (1..=25).map(|c| update("a", c as u64, c)).collect();
        frames.push(update("a", 26, 65));
        let n = counts(&mut o, &frames);
        assert_eq!(n.iter().sum::<u64>(), 65);
        assert_eq!(n.last(), Some(&40));
    }

    #[test]
    fn a_series_counts_what_its_count_grew_by() {
        // events.k8s.io/v1: the first repeat as series.count 2, then 30 minutes later 48.
        let mut o = Occurrences::new(100);
        let first = Update::new(Some("s"), Some("1"), None, Some(DataKind::Added));
        let frames = [first, update("s", 2, 2), update("s", 3, 48)];
        assert_eq!(counts(&mut o, &frames), [1, 1, 46]);
    }

    #[test]
    fn an_event_first_seen_mid_way_counts_its_whole_count() {
        let mut o = Occurrences::new(100);
        assert_eq!(
            counts(&mut o, &[update("m", 9, 17), update("m", 10, 18)]),
            [17, 1]
        );
        assert!(!o.approximate());
    }

    #[test]
    fn deleted_frames_relist_repeats_and_decreases_count_nothing() {
        let mut o = Occurrences::new(100);
        let frames = [
            update("a", 1, 3),
            update("a", 1, 3),  // a relist repeats it
            update("a", 2, 2),  // a decrease
            update("a", 3, 4),  // growth from the highest count seen
            deleted("a", 4, 4), // it expires
        ];
        assert_eq!(counts(&mut o, &frames), [3, 0, 0, 1, 0]);
        assert!(o.count(update("b", 1, 1)).occurrences == 1);
        assert!(o.count(update("b", 1, 1)).repeat, "a relist repeat says so");
        // Without a uid, nothing can be compared: each frame counts its whole count.
        let bare = Update::new(None, None, Some(2), Some(DataKind::Added));
        assert_eq!(counts(&mut o, &[bare, bare]), [2, 2]);
    }

    #[test]
    fn memory_stays_within_its_bound_and_a_forgotten_event_says_it_is_approximate() {
        let mut o = Occurrences::new(4);
        for uid in ["a", "b"] {
            assert!(!o.count(update(uid, 1, 5)).approximate);
        }
        // c and d start a new generation; a, seen again, moves into it and is kept.
        o.count(update("c", 1, 1));
        assert_eq!(o.count(update("a", 2, 6)).occurrences, 1, "remembered");
        assert!(!o.count(update("d", 1, 1)).approximate, "d is new");
        // Another generation: b, never seen again, is forgotten with the oldest one.
        o.count(update("e", 1, 1));
        let again = o.count(update("b", 3, 7));
        assert_eq!(
            again,
            Counted {
                occurrences: 7,
                approximate: true,
                repeat: false
            },
            "b was forgotten: its frame counts as its first, and says so"
        );
        assert!(o.remembered() <= 4);
        for i in 0..10_000 {
            let uid = format!("u{i}");
            o.count(update(&uid, 1, 1));
            if i % 2 == 0 {
                o.count(deleted(&uid, 2, 1));
            }
            assert!(o.remembered() <= 4);
        }
    }

    #[test]
    fn a_baseline_counts_nothing_but_later_frames_count_from_it() {
        let mut o = Occurrences::new(100);
        o.baseline(update("a", 5, 40));
        assert_eq!(
            counts(&mut o, &[update("a", 5, 40), update("a", 6, 43)]),
            [0, 3]
        );
    }

    #[test]
    fn after_a_resume_an_unknown_events_update_counts_one_until_a_list() {
        let mut o = Occurrences::with_history(100, History::Resumed);
        let added = Update::new(Some("new"), Some("1"), Some(1), Some(DataKind::Added));
        assert_eq!(o.count(added).occurrences, 1, "a new Event counts as usual");
        let c = o.count(update("old", 7, 500));
        assert_eq!((c.occurrences, c.approximate), (1, true), "no burst of 500");
        assert_eq!(
            o.count(update("old", 8, 503)).occurrences,
            3,
            "then its growth"
        );
        o.listed();
        assert_eq!(
            o.count(update("other", 3, 9)).occurrences,
            9,
            "after a LIST: known"
        );
    }
}
