//! Prometheus metrics: every name and label in one place, served at `/metrics` in the text
//! exposition format by the `prometheus-client` crate.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::frame::DataKind;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TypeLabel {
    r#type: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: String,
}

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

pub struct Metrics {
    registry: Registry,
    leader: Gauge,
    leadership: Family<ReasonLabel, Counter>,
    ready: Gauge,
    frames: [Counter; 3],
    bytes_written: Counter,
    watch_starts: Family<ReasonLabel, Counter>,
    relists: Family<ReasonLabel, Counter>,
    write_errors: Counter,
    rotations: Counter,
    stalls: Counter,
    seconds_since_last_frame: Gauge<f64, AtomicU64>,
    event_time_lag: Gauge<f64, AtomicU64>,
    /// Unix milliseconds of the last frame handed to the writer (0: none yet).
    last_frame_ms: AtomicI64,
    /// Unix milliseconds of that frame's event time (0: unknown).
    last_event_ms: AtomicI64,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// `--leader-elect`'s gauge and transitions counter, and readiness.
fn register_leadership(registry: &mut Registry) -> (Gauge, Family<ReasonLabel, Counter>, Gauge) {
    let (leader, leadership, ready) = (Gauge::default(), Family::default(), Gauge::default());
    registry.register(
        "ready",
        "1 when /readyz answers 200 (a standby is ready), else 0",
        Gauge::clone(&ready),
    );
    registry.register(
        "leader",
        "1 while this process writes (always without --leader-elect), 0 while it stands by",
        Gauge::clone(&leader),
    );
    registry.register(
        "leadership_transitions",
        "Changes of leadership of this replica, by what happened",
        Family::clone(&leadership),
    );
    (leader, leadership, ready)
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl Metrics {
    pub fn new() -> Self {
        let frames_family = Family::<TypeLabel, Counter>::default();
        let frames = ["ADDED", "MODIFIED", "DELETED"].map(|t| {
            frames_family
                .get_or_create(&TypeLabel { r#type: t.into() })
                .clone()
        });
        let (bytes_written, write_errors, rotations, stalls) = Default::default();
        let (watch_starts, relists) = (Family::default(), Family::default());
        let (seconds_since_last_frame, event_time_lag) = (Gauge::default(), Gauge::default());
        let mut registry = Registry::with_prefix("kube_event_logger");
        let (leader, leadership, ready) = register_leadership(&mut registry);
        registry.register(
            "frames_written",
            "Watch frames written to the output, by watch type",
            frames_family,
        );
        registry.register(
            "bytes_written",
            "Bytes written to the output",
            Counter::clone(&bytes_written),
        );
        registry.register(
            "watch_starts",
            "WATCH requests, by why the watch (re)started",
            Family::clone(&watch_starts),
        );
        registry.register(
            "relists",
            "LISTs of the Events, by why",
            Family::clone(&relists),
        );
        registry.register(
            "write_errors",
            "Failed writes to the output (retried)",
            Counter::clone(&write_errors),
        );
        registry.register(
            "rotations",
            "Rotations of the output file",
            Counter::clone(&rotations),
        );
        registry.register(
            "watch_stalls",
            "Watches found stalled while the API server had newer events",
            Counter::clone(&stalls),
        );
        registry.register(
            "seconds_since_last_frame",
            "Seconds since the last frame was written (-1: none yet)",
            Gauge::clone(&seconds_since_last_frame),
        );
        registry.register(
            "event_time_lag_seconds",
            "Now minus the event time of the last frame written (-1: unknown)",
            Gauge::clone(&event_time_lag),
        );
        Metrics {
            registry,
            leader,
            leadership,
            ready,
            frames,
            bytes_written,
            watch_starts,
            relists,
            write_errors,
            rotations,
            stalls,
            seconds_since_last_frame,
            event_time_lag,
            last_frame_ms: AtomicI64::new(0),
            last_event_ms: AtomicI64::new(0),
        }
    }

    /// Readiness as `/readyz` sees it, set before each scrape.
    pub fn set_ready(&self, ready: bool) {
        self.ready.set(i64::from(ready));
    }

    pub fn set_leader(&self, leading: bool) {
        self.leader.set(i64::from(leading));
    }

    pub fn leadership(&self, what: Leadership) {
        self.leadership
            .get_or_create(&ReasonLabel {
                reason: what.label().into(),
            })
            .inc();
    }

    pub fn frames_written(&self, kind: DataKind, n: u64) {
        let i = match kind {
            DataKind::Added => 0,
            DataKind::Modified => 1,
            DataKind::Deleted => 2,
        };
        self.frames[i].inc_by(n);
    }

    /// A batch of frames was handed to the writer now; `event_ms` is the event time (Unix ms)
    /// of its newest frame, when known.
    pub fn batch_written(&self, event_ms: Option<i64>) {
        self.last_frame_ms.store(now_ms(), Ordering::Relaxed);
        if let Some(t) = event_ms {
            self.last_event_ms.store(t, Ordering::Relaxed);
        }
    }

    pub fn bytes_written(&self, n: u64) {
        self.bytes_written.inc_by(n);
    }

    pub fn watch_started(&self, why: WatchStart) {
        self.watch_starts
            .get_or_create(&ReasonLabel {
                reason: why.label().into(),
            })
            .inc();
    }

    pub fn relisted(&self, why: Relist) {
        self.relists
            .get_or_create(&ReasonLabel {
                reason: why.label().into(),
            })
            .inc();
    }

    pub fn write_error(&self) {
        self.write_errors.inc();
    }

    pub fn rotated(&self) {
        self.rotations.inc();
    }

    pub fn stalled(&self) {
        self.stalls.inc();
    }

    /// The text exposition, with the time-based gauges brought up to date.
    /// The exposition in the format the scraper asked for (see [`Exposition::negotiate`]).
    pub fn encode_as(&self, format: Exposition) -> String {
        let openmetrics = self.encode();
        match format {
            Exposition::OpenMetrics => openmetrics,
            Exposition::Text => to_text_format(&openmetrics),
        }
    }

    /// OpenMetrics text, as `prometheus-client` writes it.
    pub fn encode(&self) -> String {
        let now = now_ms();
        let since = |t: i64| {
            if t == 0 {
                -1.0
            } else {
                (now - t).max(0) as f64 / 1000.0
            }
        };
        self.seconds_since_last_frame
            .set(since(self.last_frame_ms.load(Ordering::Relaxed)));
        self.event_time_lag
            .set(since(self.last_event_ms.load(Ordering::Relaxed)));
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String");
        out
    }
}

/// The two exposition formats Prometheus scrapes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exposition {
    /// OpenMetrics 1.0 (`# EOF`, counters named without `_total` in `# TYPE`).
    OpenMetrics,
    /// The classic text format 0.0.4, for scrapers that do not ask for OpenMetrics.
    Text,
}

impl Exposition {
    /// OpenMetrics when the scraper accepts it (Prometheus does, first); else text 0.0.4.
    pub fn negotiate(accept: Option<&str>) -> Self {
        match accept {
            Some(a) if a.contains("application/openmetrics-text") => Exposition::OpenMetrics,
            _ => Exposition::Text,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Exposition::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
            Exposition::Text => "text/plain; version=0.0.4; charset=utf-8",
        }
    }
}

/// OpenMetrics text → text format 0.0.4: no `# EOF` or `# UNIT`, and a counter family takes the
/// name of its `_total` samples, as 0.0.4 parsers expect.
fn to_text_format(openmetrics: &str) -> String {
    let counters: std::collections::HashSet<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE ")?.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let renamed = ["# HELP ", "# TYPE "].iter().find_map(|prefix| {
            let rest = line.strip_prefix(prefix)?;
            let (name, tail) = rest.split_once(' ')?;
            counters
                .contains(name)
                .then(|| format!("{prefix}{name}_total {tail}"))
        });
        out.push_str(renamed.as_deref().unwrap_or(line));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_format_names_counter_families_as_their_samples() {
        let m = Metrics::new();
        m.frames_written(DataKind::Added, 2);
        let om = m.encode_as(Exposition::OpenMetrics);
        assert!(om.ends_with("# EOF\n"), "{om}");
        let text = m.encode_as(Exposition::Text);
        assert!(
            !text.contains("# EOF") && !text.contains("# UNIT"),
            "{text}"
        );
        assert!(text.contains("# TYPE kube_event_logger_frames_written_total counter"));
        assert!(text.contains("# HELP kube_event_logger_frames_written_total "));
        assert!(text.contains("# TYPE kube_event_logger_seconds_since_last_frame gauge"));
        // Every sample's name is a family named by a # TYPE line.
        let families: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE ")?.split(' ').next())
            .collect();
        for sample in text.lines().filter(|l| !l.starts_with('#')) {
            let name = sample.split(['{', ' ']).next().unwrap();
            assert!(families.contains(&name), "{name} has no # TYPE in\n{text}");
        }
        assert_eq!(Exposition::negotiate(None), Exposition::Text);
        assert_eq!(Exposition::negotiate(Some("*/*")), Exposition::Text);
        let prometheus = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert_eq!(
            Exposition::negotiate(Some(prometheus)),
            Exposition::OpenMetrics
        );
    }

    #[test]
    fn counters_and_gauges_show_in_the_exposition() {
        let m = Metrics::new();
        let text = m.encode();
        assert!(
            text.contains("kube_event_logger_seconds_since_last_frame -1"),
            "{text}"
        );
        m.frames_written(DataKind::Added, 3);
        m.frames_written(DataKind::Deleted, 1);
        m.bytes_written(1234);
        m.watch_started(WatchStart::ServerClosed);
        m.relisted(Relist::Expired);
        m.rotated();
        m.write_error();
        m.batch_written(Some(now_ms() - 5000));
        let text = m.encode();
        for line in [
            r#"kube_event_logger_frames_written_total{type="ADDED"} 3"#,
            r#"kube_event_logger_frames_written_total{type="MODIFIED"} 0"#,
            r#"kube_event_logger_frames_written_total{type="DELETED"} 1"#,
            "kube_event_logger_bytes_written_total 1234",
            r#"kube_event_logger_watch_starts_total{reason="server_closed"} 1"#,
            r#"kube_event_logger_relists_total{reason="expired"} 1"#,
            "kube_event_logger_rotations_total 1",
            "kube_event_logger_write_errors_total 1",
        ] {
            assert!(text.contains(line), "{line} in\n{text}");
        }
        let lag: f64 = text
            .lines()
            .find_map(|l| l.strip_prefix("kube_event_logger_event_time_lag_seconds "))
            .unwrap()
            .parse()
            .unwrap();
        assert!((4.0..60.0).contains(&lag), "{lag}");
    }
}
