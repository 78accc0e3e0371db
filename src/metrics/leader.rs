//! The replica's role: readiness, whether it leads, and changes of leadership
//! (`--leader-elect`).

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::ReasonLabel;

/// A change of leadership (`--leader-elect`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leadership {
    /// This replica acquired the Lease.
    Acquired,
    /// It could not renew in time, or another took the Lease: back to standby.
    Lost,
    /// It gave the Lease up at shutdown.
    Released,
}

impl Leadership {
    fn label(self) -> &'static str {
        match self {
            Leadership::Acquired => "acquired",
            Leadership::Lost => "lost",
            Leadership::Released => "released",
        }
    }
}

#[derive(Default)]
pub struct LeaderMetrics {
    ready: Gauge,
    leader: Gauge,
    transitions: Family<ReasonLabel, Counter>,
}

impl LeaderMetrics {
    pub(super) fn register(registry: &mut Registry) -> Self {
        let m = Self::default();
        registry.register(
            "ready",
            "1 when /readyz answers 200 (a standby is ready), else 0",
            m.ready.clone(),
        );
        registry.register(
            "leader",
            "1 while this process writes (always without --leader-elect), 0 while it stands by",
            m.leader.clone(),
        );
        registry.register(
            "leadership_transitions",
            "Changes of leadership of this replica, by what happened",
            m.transitions.clone(),
        );
        m
    }

    /// Readiness as `/readyz` sees it, set before each scrape.
    pub fn set_ready(&self, ready: bool) {
        self.ready.set(i64::from(ready));
    }

    pub fn set_leader(&self, leading: bool) {
        self.leader.set(i64::from(leading));
    }

    pub fn transition(&self, what: Leadership) {
        self.transitions
            .get_or_create(&ReasonLabel::of(what.label()))
            .inc();
    }
}
