//! The Events' own metric: how often each kind of Event happened, by the occurrence rule
//! ([`crate::occurrence`]), as `kube_event_logger_occurrences_total{type, reason, kind}` (and
//! `event_namespace` when asked: not `namespace`, which a Prometheus scraping pods sets to the
//! pod's own and would rename ours to `exported_namespace`). The series are bounded: beyond
//! `max_series` label sets, new ones are folded into one series (`reason="other"`,
//! `kind="other"`, `event_namespace="other"`) and `occurrences_folded_total` counts the
//! occurrences folded.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Mutex;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

use super::Metrics;
use crate::frame::DataKind;
use crate::occurrence::{Fast, short_word};

/// How occurrences are labelled and how many series they may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventLabels {
    /// Label by the Event's namespace too (`--occurrences-by-namespace`).
    pub namespace: Namespace,
    /// Label sets at most (`--occurrence-series`); beyond, folded into one.
    pub max_series: usize,
}

/// Whether occurrences carry a namespace label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Namespace {
    Labelled,
    Unlabelled,
}

impl Default for EventLabels {
    fn default() -> Self {
        Self {
            namespace: Namespace::Unlabelled,
            max_series: 1000,
        }
    }
}

/// One label set: `type`, `reason`, `kind`, and `namespace` when labelled.
type Labels = Vec<(&'static str, String)>;

/// What an occurrence is labelled by: the bytes of the Event's strings (UTF-8, as the frame
/// check found them).
#[derive(Debug, Clone, Copy)]
pub struct Occurred<'a> {
    pub event_type: &'a [u8],
    pub reason: &'a [u8],
    pub kind: &'a [u8],
    pub namespace: &'a [u8],
}

pub struct EventMetrics {
    labels: EventLabels,
    occurrences: Family<Labels, Counter>,
    /// The label sets admitted so far (at most `max_series`).
    admitted: Mutex<HashSet<Labels>>,
    folded: Counter,
}

impl EventMetrics {
    pub(super) fn register(registry: &mut Registry, labels: EventLabels) -> Self {
        let m = Self {
            labels,
            occurrences: Family::default(),
            admitted: Mutex::new(HashSet::new()),
            folded: Counter::default(),
        };
        registry.register(
            "occurrences",
            "Occurrences of Events written, by the Event's type, reason and involved object's \
             kind: the growth of each Event's count between its frames (a LIST and a resume \
             count nothing of what happened before them)",
            m.occurrences.clone(),
        );
        registry.register(
            "occurrences_folded",
            "Occurrences counted under reason, kind (and namespace) \"other\" because the label \
             sets reached --occurrence-series",
            m.folded.clone(),
        );
        m
    }

    /// The label set of `o`, as the series name it.
    fn labels_of(&self, o: Occurred<'_>) -> Labels {
        let or_none = |s: &[u8]| match s {
            [] => "none".to_string(),
            s => String::from_utf8_lossy(s).into_owned(),
        };
        let event_type = match o.event_type {
            b"Normal" => "Normal".to_string(),
            b"Warning" => "Warning".to_string(),
            _ => "other".to_string(),
        };
        let mut labels: Labels = vec![
            ("type", event_type),
            ("reason", or_none(o.reason)),
            ("kind", or_none(o.kind)),
        ];
        if self.labels.namespace == Namespace::Labelled {
            labels.push(("event_namespace", or_none(o.namespace)));
        }
        labels
    }

    /// The counter of `o`'s label set: its own once admitted (if there is room), else the
    /// folded one; and whether it is the folded one.
    fn counter(&self, o: Occurred<'_>) -> (Counter, bool) {
        let mut labels = self.labels_of(o);
        let admitted = {
            let mut set = self.admitted.lock().unwrap_or_else(|e| e.into_inner());
            set.contains(&labels)
                || (set.len() < self.labels.max_series && set.insert(labels.clone()))
        };
        if !admitted {
            for (name, value) in labels.iter_mut() {
                if *name != "type" {
                    *value = "other".into();
                }
            }
        }
        (self.occurrences.get_or_create(&labels).clone(), !admitted)
    }
}

/// One watch's handles on the occurrence counters, by label set: after an Event's kind is first
/// seen, counting it is a hash of its label values, a comparison with the values kept, a lookup
/// and an addition to what waits (no allocation, no lock, no call out, no atomic). Bounded as
/// the series are: at most `max_series` entries, then one more for the folded ones.
///
/// Counts wait here until [`Counters::flush`], once per batch: an atomic add per frame on a
/// counter other threads read was most of what counting cost.
#[derive(Default)]
pub struct Counters {
    /// The label values' hash → the values, their counter, and whether it is the folded one.
    known: HashMap<u64, Known, BuildHasherDefault<Fast>>,
    /// The keys of `known` with occurrences not yet added.
    waiting: Vec<u64>,
    /// Frames written (ADDED, MODIFIED, DELETED) not yet added.
    frames: [u64; 3],
}

/// A label set's counter, and what waits for it.
struct Known {
    values: Values,
    counter: Counter,
    folded: bool,
    waiting: u64,
}

/// Label values as kept: their bytes one after another, and where each ends.
struct Values {
    bytes: Box<[u8]>,
    ends: [usize; 4],
}

impl Values {
    fn of(values: &[&[u8]; 4]) -> Self {
        let mut ends = [0; 4];
        let mut bytes = Vec::with_capacity(values.iter().map(|v| v.len()).sum());
        for (end, value) in ends.iter_mut().zip(values) {
            bytes.extend_from_slice(value);
            *end = bytes.len();
        }
        Values {
            bytes: bytes.into(),
            ends,
        }
    }

    /// Whether these are `values`.
    fn are(&self, values: &[&[u8]; 4]) -> bool {
        let mut start = 0;
        self.ends.iter().zip(values).all(|(&end, value)| {
            let kept = self.bytes.get(start..end).unwrap_or_default();
            start = end;
            same(kept, value)
        })
    }
}

/// Byte-slice equality a word at a time, inlined: label values are a few bytes, and a call to
/// the C library's comparison per value cost more than the comparison.
#[inline]
fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let (mut wa, mut wb) = (a.chunks_exact(8), b.chunks_exact(8));
    let word = |c: &[u8]| u64::from_le_bytes(<[u8; 8]>::try_from(c).unwrap_or_default());
    if !(&mut wa).zip(&mut wb).all(|(x, y)| word(x) == word(y)) {
        return false;
    }
    short_word(wa.remainder()) == short_word(wb.remainder())
}

/// The label values of `o` that are labels (the namespace only when labelled).
fn label_values<'o>(labels: EventLabels, o: &Occurred<'o>) -> [&'o [u8]; 4] {
    let namespace = match labels.namespace {
        Namespace::Labelled => o.namespace,
        Namespace::Unlabelled => &[],
    };
    [o.event_type, o.reason, o.kind, namespace]
}

impl Counters {
    /// Counts `n` occurrences of an Event labelled as `o` says (added at the next flush).
    pub fn occurred(&mut self, metrics: &EventMetrics, o: Occurred<'_>, n: u64) {
        if n == 0 {
            return;
        }
        let values = label_values(metrics.labels, &o);
        let mut hasher = Fast::default();
        for value in values {
            hasher.write(value);
            hasher.write_u8(0x1f);
        }
        let key = hasher.finish();
        if let Some(known) = self.known.get_mut(&key)
            && known.values.are(&values)
        {
            if known.waiting == 0 {
                self.waiting.push(key);
            }
            known.waiting += n;
            return;
        }
        let (counter, folded) = metrics.counter(o);
        add(metrics, &counter, folded, n);
        if self.known.len() <= metrics.labels.max_series {
            let values = Values::of(&values);
            let known = Known {
                values,
                counter,
                folded,
                waiting: 0,
            };
            self.known.insert(key, known);
        }
    }

    /// A frame of `kind` was written (added at the next flush).
    pub fn frame_written(&mut self, kind: DataKind) {
        self.frames[kind.index()] += 1;
    }

    /// Adds what waits to the shared counters: once per batch.
    pub fn flush(&mut self, metrics: &Metrics) {
        for key in self.waiting.drain(..) {
            if let Some(known) = self.known.get_mut(&key) {
                add(&metrics.events, &known.counter, known.folded, known.waiting);
                known.waiting = 0;
            }
        }
        for (kind, n) in DataKind::ALL
            .into_iter()
            .zip(std::mem::take(&mut self.frames))
        {
            if n > 0 {
                metrics.output.frames_written(kind, n);
            }
        }
    }
}

/// `n` occurrences on `counter`, and on the folded count when it is the folded one.
fn add(metrics: &EventMetrics, counter: &Counter, folded: bool, n: u64) {
    counter.inc_by(n);
    if folded {
        metrics.folded.inc_by(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_label_values_are_told_apart_byte_by_byte_and_by_where_each_ends() {
        for len in 0..40 {
            let a: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
            assert!(same(&a, &a.clone()));
            for at in 0..len {
                let mut b = a.clone();
                b[at] ^= 1;
                assert!(!same(&a, &b), "{len} {at}");
            }
            assert!(!same(&a, &[a.as_slice(), b"x"].concat()));
        }
        let kept = Values::of(&[b"Warning", b"BackOff", b"Pod", b""]);
        assert!(kept.are(&[b"Warning", b"BackOff", b"Pod", b""]));
        assert!(!kept.are(&[b"Warning", b"BackOf", b"fPod", b""]));
        assert!(!kept.are(&[b"Warning", b"BackOff", b"Pod", b"a"]));
        assert!(!kept.are(&[b"Normal", b"BackOff", b"Pod", b""]));
    }
}
