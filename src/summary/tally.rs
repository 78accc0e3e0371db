//! Counting occurrences (pure), by the [occurrence rule](crate::occurrence): a frame stands for
//! the growth of its Event's count. Memory is bounded by the distinct reasons, objects and
//! namespaces kept (each at most `2 × cap`, the least counted pruned beyond that, which makes
//! the counts approximate and says so), the minutes the window spans, and the Events whose last
//! count is remembered; never by the number of lines.

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;

use jiff::Timestamp;
use serde::Serialize;

use crate::event::EventFrame;
use crate::occurrence::{Occurrences, Update};

/// Events whose last count is remembered (about 8 MiB at most); beyond, the oldest are
/// forgotten and the counts say they are approximate.
const EVENTS_REMEMBERED: usize = 1 << 17;
/// Timeline bucket sizes tried, smallest first.
const BUCKETS_S: [i64; 11] = [
    60, 300, 600, 900, 1800, 3600, 10_800, 21_600, 43_200, 86_400, 604_800,
];

/// One frame, as much of it as the summary keeps: what the rule needs, and where it counts.
pub struct Occurrence {
    update: Update,
    /// Unix seconds of the Event's time.
    at: Option<i64>,
    event_type: Box<str>,
    reason: Box<str>,
    namespace: Box<str>,
    kind: Box<str>,
    /// The involved object's namespace (none for a Node).
    object_namespace: Box<str>,
    name: Box<str>,
}

impl Occurrence {
    pub fn of(frame: &EventFrame<'_>) -> Self {
        let e = &frame.object;
        let s = |v: &Option<std::borrow::Cow<'_, str>>| -> Box<str> {
            v.as_deref().unwrap_or("").into()
        };
        Occurrence {
            update: Update::of(frame),
            at: e
                .time()
                .and_then(|t| t.parse::<Timestamp>().ok())
                .map(|t| t.as_second()),
            event_type: s(&e.event_type),
            reason: s(&e.reason),
            namespace: s(&e.metadata.namespace),
            kind: s(&e.involved_object.kind),
            object_namespace: s(&e.involved_object.namespace),
            name: s(&e.involved_object.name),
        }
    }

    fn warning(&self) -> bool {
        &*self.event_type == "Warning"
    }

    /// What the occurrence rule needs of this frame.
    pub fn update(&self) -> Update {
        self.update
    }
}

#[derive(Clone, Copy, Default)]
struct Stats {
    count: u64,
    warnings: u64,
    last: Option<i64>,
}

/// Counts per key, at most `2 × cap` kept: beyond, the least counted are dropped, and the
/// largest count dropped bounds how far any kept count may be under.
struct Counter<K> {
    cap: usize,
    map: HashMap<K, Stats>,
    dropped: u64,
}

impl<K: Hash + Eq + Ord + Clone> Counter<K> {
    fn new(cap: usize) -> Self {
        Counter {
            cap,
            map: HashMap::new(),
            dropped: 0,
        }
    }

    fn add(&mut self, key: K, n: u64, warning: bool, at: Option<i64>) {
        let s = self.map.entry(key).or_default();
        s.count += n;
        s.warnings += if warning { n } else { 0 };
        s.last = s.last.max(at);
        if self.map.len() > 2 * self.cap {
            let mut all: Vec<(K, Stats)> = self.map.drain().collect();
            all.sort_by_key(|(_, s)| std::cmp::Reverse((s.warnings, s.count)));
            let gone = all.split_off(self.cap);
            self.dropped = gone
                .iter()
                .map(|(_, s)| s.count)
                .fold(self.dropped, u64::max);
            self.map.extend(all);
        }
    }

    /// The first `n` in the order `rank` gives (ties by key).
    fn top<R: Ord>(&self, n: usize, rank: impl Fn(&Stats) -> R) -> Vec<(K, Stats)> {
        let mut all: Vec<(K, Stats)> = self.map.iter().map(|(k, s)| (k.clone(), *s)).collect();
        all.sort_by(|a, b| rank(&b.1).cmp(&rank(&a.1)).then_with(|| a.0.cmp(&b.0)));
        all.truncate(n);
        all
    }
}

/// The running count, fed occurrences in file order.
pub struct Tally {
    rule: Occurrences,
    /// Frames counted by the rule (updates), whatever they stood for.
    frames: u64,
    /// The earliest and latest occurrence times.
    first: Option<i64>,
    last: Option<i64>,
    occurrences: u64,
    by_type: BTreeMap<Box<str>, u64>,
    reasons: Counter<(Box<str>, Box<str>)>,
    objects: Counter<(Box<str>, Box<str>, Box<str>)>,
    namespaces: Counter<Box<str>>,
    /// Occurrences and Warnings per minute (Unix minute).
    minutes: BTreeMap<i64, (u64, u64)>,
    pub skipped_deleted: u64,
    pub skipped_repeats: u64,
    pub skipped_invalid: u64,
}

impl Tally {
    /// Keeps at most `2 × cap` distinct reasons, objects and namespaces each.
    pub fn new(cap: usize) -> Self {
        Tally {
            rule: Occurrences::new(EVENTS_REMEMBERED),
            frames: 0,
            first: None,
            last: None,
            occurrences: 0,
            by_type: BTreeMap::new(),
            reasons: Counter::new(cap),
            objects: Counter::new(cap),
            namespaces: Counter::new(cap),
            minutes: BTreeMap::new(),
            skipped_deleted: 0,
            skipped_repeats: 0,
            skipped_invalid: 0,
        }
    }

    /// Counts what a frame stands for by the rule (nothing for a relist repeat or a decrease).
    pub fn add(&mut self, o: Occurrence) {
        self.frames += 1;
        let counted = self.rule.count(o.update);
        self.skipped_repeats += u64::from(counted.repeat);
        let n = counted.occurrences;
        if n == 0 {
            return;
        }
        let warning = o.warning();
        self.occurrences += n;
        *self.by_type.entry(o.event_type.clone()).or_default() += n;
        self.reasons.add((o.event_type, o.reason), n, warning, o.at);
        self.objects
            .add((o.kind, o.object_namespace, o.name), n, warning, o.at);
        self.namespaces.add(o.namespace, n, warning, o.at);
        if let Some(at) = o.at {
            self.first = Some(self.first.map_or(at, |f| f.min(at)));
            self.last = Some(self.last.max(Some(at)).unwrap_or(at));
            let m = self.minutes.entry(at.div_euclid(60)).or_default();
            m.0 += n;
            m.1 += if warning { n } else { 0 };
        }
    }

    /// A frame that counts nothing itself but is the baseline for the Event's later frames
    /// (before `--since`; a DELETED frame, which lets the Event go).
    pub fn baseline(&mut self, update: Update) {
        self.rule.baseline(update);
    }

    /// The summary: `top` entries per list, the timeline in at most `buckets` buckets.
    pub fn finish(&self, top: usize, buckets: usize) -> Summary {
        let (first, last) = (self.first, self.last);
        let time = |s: Option<i64>| s.and_then(|s| Timestamp::from_second(s).ok());
        let share = |n: u64| {
            let pct = if self.occurrences == 0 {
                0.0
            } else {
                n as f64 * 100.0 / self.occurrences as f64
            };
            (pct * 10.0).round() / 10.0
        };
        let count = |t: &str| self.by_type.get(t).copied().unwrap_or(0);
        let other = self.occurrences - count("Normal") - count("Warning");
        Summary {
            from: time(first),
            to: time(last),
            occurrences: self.occurrences,
            frames: self.frames,
            by_type: ByType {
                normal: count("Normal"),
                warning: count("Warning"),
                other,
            },
            top_reasons: self
                .reasons
                .top(top, |s| (s.warnings > 0, s.count))
                .into_iter()
                .map(|((t, r), s)| Reason {
                    event_type: t.into(),
                    reason: r.into(),
                    count: s.count,
                    share: share(s.count),
                    last_seen: time(s.last),
                })
                .collect(),
            top_objects: self
                .objects
                .top(top, |s| (s.warnings, s.count))
                .into_iter()
                .map(|((kind, namespace, name), s)| Object {
                    kind: kind.into(),
                    namespace: namespace.into(),
                    name: name.into(),
                    count: s.count,
                    warnings: s.warnings,
                })
                .collect(),
            namespaces: self
                .namespaces
                .top(top, |s| (s.count, s.warnings))
                .into_iter()
                .map(|(namespace, s)| Counted {
                    namespace: namespace.into(),
                    count: s.count,
                    warnings: s.warnings,
                })
                .collect(),
            bucket_seconds: 0,
            timeline: Vec::new(),
            not_counted: NotCounted {
                deleted: self.skipped_deleted,
                relist_repeats: self.skipped_repeats,
                invalid_lines: self.skipped_invalid,
            },
            approximate: self.rule.approximate()
                || [
                    self.reasons.dropped,
                    self.objects.dropped,
                    self.namespaces.dropped,
                ]
                .iter()
                .any(|d| *d > 0),
        }
        .with_timeline(&self.minutes, buckets)
    }
}

#[derive(Debug, Serialize, PartialEq)]
pub struct Summary {
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
    /// Occurrences, by the rule: how much the Events' counts grew.
    pub occurrences: u64,
    /// The frames (updates of an Event) that were counted, whatever each stood for.
    pub frames: u64,
    pub by_type: ByType,
    pub top_reasons: Vec<Reason>,
    pub top_objects: Vec<Object>,
    pub namespaces: Vec<Counted>,
    pub bucket_seconds: i64,
    pub timeline: Vec<Bucket>,
    pub not_counted: NotCounted,
    pub approximate: bool,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct ByType {
    #[serde(rename = "Normal")]
    pub normal: u64,
    #[serde(rename = "Warning")]
    pub warning: u64,
    /// Any other or missing type.
    pub other: u64,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct Reason {
    #[serde(rename = "type")]
    pub event_type: String,
    pub reason: String,
    pub count: u64,
    /// Percent of all occurrences, one decimal.
    pub share: f64,
    pub last_seen: Option<Timestamp>,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct Object {
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub count: u64,
    pub warnings: u64,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct Counted {
    pub namespace: String,
    pub count: u64,
    pub warnings: u64,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct Bucket {
    pub start: Timestamp,
    pub count: u64,
    pub warnings: u64,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct NotCounted {
    pub deleted: u64,
    pub relist_repeats: u64,
    pub invalid_lines: u64,
}

impl Summary {
    /// The timeline: the smallest bucket size that draws the window in at most `buckets`
    /// rows, buckets aligned to it (UTC), empty ones kept so a gap is seen.
    fn with_timeline(mut self, minutes: &BTreeMap<i64, (u64, u64)>, buckets: usize) -> Self {
        let (Some((&first, _)), Some((&last, _))) =
            (minutes.first_key_value(), minutes.last_key_value())
        else {
            return self;
        };
        let (first, last) = (first * 60, last * 60);
        let fits = |size: i64| (last.div_euclid(size) - first.div_euclid(size) + 1) as usize;
        let size = BUCKETS_S
            .into_iter()
            .find(|&s| fits(s) <= buckets.max(1))
            // Years of span (or a wild time): whole weeks, still at most `buckets`.
            .unwrap_or_else(|| {
                let per = (last - first) / buckets.max(1) as i64 + 1;
                (per + 604_799) / 604_800 * 604_800
            });
        let start = first.div_euclid(size) * size;
        let mut timeline: Vec<Bucket> = (0..fits(size) as i64)
            .filter_map(|i| Timestamp::from_second(start + i * size).ok())
            .map(|start| Bucket {
                start,
                count: 0,
                warnings: 0,
            })
            .collect();
        for (&minute, &(count, warnings)) in minutes {
            let i = ((minute * 60).div_euclid(size) * size - start) / size;
            if let Some(b) = timeline.get_mut(i as usize) {
                b.count += count;
                b.warnings += warnings;
            }
        }
        self.bucket_seconds = size;
        self.timeline = timeline;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::DataKind;

    fn occurrence(
        uid: &str,
        rv: u64,
        count: i64,
        at: i64,
        warning: bool,
        object: &str,
    ) -> Occurrence {
        Occurrence {
            update: Update::new(
                Some(uid),
                Some(&rv.to_string()),
                Some(count),
                Some(DataKind::Modified),
            ),
            at: Some(at),
            event_type: if warning { "Warning" } else { "Normal" }.into(),
            reason: "BackOff".into(),
            namespace: "ns".into(),
            kind: "Pod".into(),
            object_namespace: "ns".into(),
            name: object.into(),
        }
    }

    #[test]
    fn occurrences_are_the_growth_of_each_count_and_a_repeat_counts_nothing() {
        let mut t = Tally::new(10);
        let start = 1_800_000_000;
        t.add(occurrence("a", 1, 1, start, true, "p"));
        t.add(occurrence("a", 1, 1, start, true, "p"));
        t.add(occurrence("a", 2, 41, start + 60, true, "p"));
        t.add(occurrence("b", 1, 3, start + 3 * 3600, false, "q"));
        assert_eq!((t.occurrences, t.frames, t.skipped_repeats), (44, 4, 1));
        let s = t.finish(5, 24);
        assert_eq!((s.by_type.warning, s.by_type.normal), (41, 3));
        assert_eq!(s.frames, 4);
        assert_eq!(s.top_objects[0].warnings, 41);
        assert_eq!(s.timeline.iter().map(|b| b.count).sum::<u64>(), 44);
        assert!(s.timeline.len() <= 24);
        assert_eq!(s.bucket_seconds, 600, "3 h in at most 24 rows: 10 minutes");
    }

    #[test]
    fn a_baseline_counts_nothing_and_later_frames_count_from_it() {
        let mut t = Tally::new(10);
        let before = occurrence("a", 1, 30, 1_800_000_000, true, "p");
        t.baseline(before.update());
        t.add(occurrence("a", 2, 32, 1_800_000_600, true, "p"));
        assert_eq!((t.occurrences, t.frames), (2, 1));
    }

    #[test]
    fn distinct_objects_stay_bounded_and_the_counts_say_they_are_approximate() {
        let mut t = Tally::new(100);
        for i in 0..10_000u64 {
            let uid = format!("u{i}");
            t.add(occurrence(
                &uid,
                i,
                1,
                1_800_000_000,
                i % 7 == 0,
                &format!("pod-{}", i % 1000),
            ));
            t.add(occurrence("v", i, i as i64 + 1, 1_800_000_000, true, "hot"));
            assert!(t.objects.map.len() <= 200);
        }
        let s = t.finish(3, 24);
        assert!(s.approximate);
        assert_eq!(s.top_objects[0].name, "hot");
        assert_eq!(
            s.top_objects[0].warnings, 10_000,
            "a heavy hitter is never pruned"
        );
        assert_eq!(s.occurrences, 20_000, "totals stay exact");
    }

    #[test]
    fn a_window_of_years_still_draws_in_the_rows_given() {
        let mut t = Tally::new(10);
        t.add(occurrence("a", 1, 1, 0, false, "p"));
        t.add(occurrence("a", 2, 2, 40 * 31_536_000, true, "p"));
        let s = t.finish(5, 24);
        assert!(s.timeline.len() <= 24, "{}", s.timeline.len());
        assert_eq!(s.bucket_seconds % 604_800, 0);
    }
}
