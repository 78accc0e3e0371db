//! The Events' own metric: how often each kind of Event happened, by the occurrence rule
//! ([`crate::occurrence`]), as `kube_event_logger_occurrences_total{type, reason, kind}` (and
//! `event_namespace` when asked: not `namespace`, which a Prometheus scraping pods sets to the
//! pod's own and would rename ours to `exported_namespace`). The series are bounded: beyond
//! `max_series` label sets, new ones are folded into one series (`reason="other"`,
//! `kind="other"`, `event_namespace="other"`) and `occurrences_folded_total` counts the
//! occurrences folded.

use std::collections::{HashMap, HashSet};
use std::hash::BuildHasherDefault;
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
/// seen, counting it is a lookup and an atomic add (no allocation, no lock). Bounded as the
/// series are: at most `max_series` entries, then one more for the folded ones.
#[derive(Default)]
pub struct Counters {
    /// Label text (type, reason, kind, namespace, `\u{1f}`-separated) → its counter, and
    /// whether it is the folded one.
    known: HashMap<String, (Counter, bool), BuildHasherDefault<Fast>>,
    /// Scratch for the key, reused.
    key: String,
}

impl Counters {
    /// Counts `n` occurrences of an Event labelled as `o` says.
    pub fn occurred(&mut self, metrics: &EventMetrics, o: Occurred<'_>, n: u64) {
        if n == 0 {
            return;
        }
        self.key.clear();
        for part in [o.event_type, o.reason, o.kind, o.namespace] {
            self.key.push_str(part);
            self.key.push('\u{1f}');
        }
        if let Some((counter, folded)) = self.known.get(&self.key) {
            counter.inc_by(n);
            if *folded {
                metrics.folded.inc_by(n);
            }
            return;
        }
        let (counter, folded) = metrics.counter(o);
        counter.inc_by(n);
        if folded {
            metrics.folded.inc_by(n);
        }
        if self.known.len() <= metrics.labels.max_series {
            self.known.insert(self.key.clone(), (counter, folded));
        }
    }
}
