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

use crate::occurrence::Fast;

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

/// What an occurrence is labelled by.
#[derive(Debug, Clone, Copy)]
pub struct Occurred<'a> {
    pub event_type: &'a str,
    pub reason: &'a str,
    pub kind: &'a str,
    pub namespace: &'a str,
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
        let or_none = |s: &str| if s.is_empty() { "none" } else { s }.to_string();
        let event_type = match o.event_type {
            "Normal" | "Warning" => o.event_type.to_string(),
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
/// seen, counting it is a hash of its label values, a lookup and an atomic add (no allocation,
/// no lock). Bounded as the series are: at most `max_series` entries, then one more for the
/// folded ones.
#[derive(Default)]
pub struct Counters {
    /// The label values' hash → the values (each ended by `\u{1f}`), their counter, and whether
    /// it is the folded one.
    known: HashMap<u64, (Box<str>, Counter, bool), BuildHasherDefault<Fast>>,
}

/// The label values of `o` that are labels (the namespace only when labelled).
fn label_values<'o>(labels: EventLabels, o: &Occurred<'o>) -> [&'o str; 4] {
    let namespace = match labels.namespace {
        Namespace::Labelled => o.namespace,
        Namespace::Unlabelled => "",
    };
    [o.event_type, o.reason, o.kind, namespace]
}

/// Whether `text` holds exactly `values`, each ended by `\u{1f}`.
fn holds(text: &str, values: &[&str; 4]) -> bool {
    let mut rest = text;
    for value in values {
        match rest
            .strip_prefix(value)
            .and_then(|r| r.strip_prefix('\u{1f}'))
        {
            Some(r) => rest = r,
            None => return false,
        }
    }
    rest.is_empty()
}

impl Counters {
    /// Counts `n` occurrences of an Event labelled as `o` says.
    pub fn occurred(&mut self, metrics: &EventMetrics, o: Occurred<'_>, n: u64) {
        if n == 0 {
            return;
        }
        let values = label_values(metrics.labels, &o);
        let mut hasher = Fast::default();
        for value in values {
            hasher.write(value.as_bytes());
            hasher.write_u8(0x1f);
        }
        let key = hasher.finish();
        if let Some((text, counter, folded)) = self.known.get(&key)
            && holds(text, &values)
        {
            add(metrics, counter, *folded, n);
            return;
        }
        let (counter, folded) = metrics.counter(o);
        add(metrics, &counter, folded, n);
        if self.known.len() <= metrics.labels.max_series {
            let text: String = values.iter().flat_map(|v| [*v, "\u{1f}"]).collect();
            self.known.insert(key, (text.into(), counter, folded));
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
