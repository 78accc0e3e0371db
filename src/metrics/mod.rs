//! Prometheus metrics, grouped by concern, each group registering its own: [`watch`] (watch
//! starts, relists, stalls), [`output`] (frames and bytes written, write errors, rotations,
//! freshness), [`leader`] (readiness, leadership) and [`events`] (the Events' occurrences). Every name and label is defined in its
//! group; served at `/metrics` by the `prometheus-client` crate.

mod events;
mod leader;
mod output;
mod process;
mod watch;

use std::time::{SystemTime, UNIX_EPOCH};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

pub use events::{Counters, EventLabels, EventMetrics, Namespace, Occurred};
pub use leader::{LeaderMetrics, Leadership};
pub use output::OutputMetrics;
pub use watch::{Relist, WatchMetrics, WatchStart};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TypeLabel {
    r#type: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: String,
}

impl ReasonLabel {
    fn of(reason: &str) -> Self {
        Self {
            reason: reason.into(),
        }
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Every metric of the process, under the `kube_event_logger_` prefix.
pub struct Metrics {
    registry: Registry,
    pub leader: LeaderMetrics,
    pub output: OutputMetrics,
    pub watch: WatchMetrics,
    pub events: EventMetrics,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        Self::with_event_labels(EventLabels::default())
    }

    /// With the Events' occurrences labelled as `labels` says.
    pub fn with_event_labels(labels: EventLabels) -> Self {
        // Ours under the prefix; the process's own under the names every client library uses.
        let mut registry = Registry::default();
        registry.register_collector(Box::new(process::ProcessCollector));
        let ours = registry.sub_registry_with_prefix("kube_event_logger");
        let build_info = Family::<BuildLabels, Gauge>::default();
        build_info
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION").into(),
            })
            .set(1);
        ours.register(
            "build_info",
            "1, labelled with the version of this build",
            build_info,
        );
        let leader = LeaderMetrics::register(ours);
        let output = OutputMetrics::register(ours);
        let watch = WatchMetrics::register(ours);
        let events = EventMetrics::register(ours, labels);
        Self {
            registry,
            leader,
            output,
            watch,
            events,
        }
    }

    /// The exposition in the format the scraper asked for (see [`Exposition::negotiate`]).
    pub fn encode_as(&self, format: Exposition) -> String {
        let openmetrics = self.encode();
        match format {
            Exposition::OpenMetrics => openmetrics,
            Exposition::Text => to_text_format(&openmetrics),
        }
    }

    /// OpenMetrics text, as `prometheus-client` writes it, with the time-based gauges brought
    /// up to date.
    pub fn encode(&self) -> String {
        self.output.refresh(now_ms());
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
    use crate::frame::DataKind;

    #[test]
    fn the_text_format_names_counter_families_as_their_samples() {
        let m = Metrics::new();
        m.output.frames_written(DataKind::Added, 2);
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
        m.output.frames_written(DataKind::Added, 3);
        m.output.frames_written(DataKind::Deleted, 1);
        m.output.bytes_written(1234);
        m.watch.started(WatchStart::ServerClosed);
        m.watch.relisted(Relist::Expired);
        m.output.rotated();
        m.output.write_error();
        m.output.batch_written(Some(now_ms() - 5000));
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
