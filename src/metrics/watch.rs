//! The watch's metrics: why watches (re)started, why LISTs were made, stalls found.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

use super::ReasonLabel;

/// Why a watch was (re)started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchStart {
    /// The first watch of a scope (from the output's last frame or after the first list).
    Start,
    /// After a LIST.
    AfterList,
    /// The server ended the previous watch cleanly.
    ServerClosed,
    /// The previous stream broke (dropped mid-frame, malformed line, reset).
    Broken,
    /// An ERROR frame other than 410.
    ErrorFrame,
    /// The previous request failed (5xx, 429, refused, network).
    RequestFailed,
}

/// Why a LIST was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relist {
    /// No earlier output for the scope.
    Initial,
    /// 410: the watch position or the continue token expired.
    Expired,
    /// Watches kept ending at once with nothing.
    NoProgress,
    /// No frame for --stall-timeout while the API server had newer events.
    Stalled,
    /// A LIST request failed and is tried again.
    Retry,
}

impl WatchStart {
    fn label(self) -> &'static str {
        match self {
            WatchStart::Start => "start",
            WatchStart::AfterList => "after_list",
            WatchStart::ServerClosed => "server_closed",
            WatchStart::Broken => "broken",
            WatchStart::ErrorFrame => "error_frame",
            WatchStart::RequestFailed => "request_failed",
        }
    }
}

impl Relist {
    fn label(self) -> &'static str {
        match self {
            Relist::Initial => "initial",
            Relist::Expired => "expired",
            Relist::NoProgress => "no_progress",
            Relist::Stalled => "stalled",
            Relist::Retry => "retry",
        }
    }
}

#[derive(Default)]
pub struct WatchMetrics {
    starts: Family<ReasonLabel, Counter>,
    relists: Family<ReasonLabel, Counter>,
    stalls: Counter,
    invalid_lines: Counter,
}

impl WatchMetrics {
    pub(super) fn register(registry: &mut Registry) -> Self {
        let m = Self::default();
        registry.register(
            "watch_starts",
            "WATCH requests, by why the watch (re)started",
            m.starts.clone(),
        );
        registry.register("relists", "LISTs of the Events, by why", m.relists.clone());
        registry.register(
            "invalid_lines",
            "Lines of the watch stream that were not one whole, valid JSON frame: never written; the watch reconnected after the last whole frame",
            m.invalid_lines.clone(),
        );
        registry.register(
            "watch_stalls",
            "Watches found stalled while the API server had newer events",
            m.stalls.clone(),
        );
        m
    }

    pub fn started(&self, why: WatchStart) {
        self.starts
            .get_or_create(&ReasonLabel::of(why.label()))
            .inc();
    }

    pub fn relisted(&self, why: Relist) {
        self.relists
            .get_or_create(&ReasonLabel::of(why.label()))
            .inc();
    }

    pub fn stalled(&self) {
        self.stalls.inc();
    }

    pub fn invalid_line(&self) {
        self.invalid_lines.inc();
    }
}
