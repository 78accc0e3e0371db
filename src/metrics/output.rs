//! The output's metrics: what reached the file (frames by type, bytes), how writing went (errors,
//! rotations), and how fresh it is (seconds since the last frame, event-time lag).

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::{TypeLabel, now_ms};
use crate::frame::DataKind;

pub struct OutputMetrics {
    frames: [Counter; 3],
    bytes: Counter,
    write_errors: Counter,
    rotations: Counter,
    seconds_since_last_frame: Gauge<f64, AtomicU64>,
    event_time_lag: Gauge<f64, AtomicU64>,
    /// Unix milliseconds of the last frame handed to the writer (0: none yet).
    last_frame_ms: AtomicI64,
    /// Unix milliseconds of that frame's event time (0: unknown).
    last_event_ms: AtomicI64,
}

impl OutputMetrics {
    pub(super) fn register(registry: &mut Registry) -> Self {
        let frames_family = Family::<TypeLabel, Counter>::default();
        let frames = DataKind::ALL.map(|kind| {
            frames_family
                .get_or_create(&TypeLabel {
                    r#type: kind.as_str().into(),
                })
                .clone()
        });
        let m = Self {
            frames,
            bytes: Counter::default(),
            write_errors: Counter::default(),
            rotations: Counter::default(),
            seconds_since_last_frame: Gauge::default(),
            event_time_lag: Gauge::default(),
            last_frame_ms: AtomicI64::new(0),
            last_event_ms: AtomicI64::new(0),
        };
        registry.register(
            "frames_written",
            "Watch frames written to the output, by watch type",
            frames_family,
        );
        registry.register(
            "bytes_written",
            "Bytes written to the output",
            m.bytes.clone(),
        );
        registry.register(
            "write_errors",
            "Failed writes to the output (retried)",
            m.write_errors.clone(),
        );
        registry.register(
            "rotations",
            "Rotations of the output file",
            m.rotations.clone(),
        );
        registry.register(
            "seconds_since_last_frame",
            "Seconds since the last frame was written (-1: none yet)",
            m.seconds_since_last_frame.clone(),
        );
        registry.register(
            "event_time_lag_seconds",
            "Now minus the event time of the last occurrence written (ADDED or MODIFIED; a DELETED frame is not one; -1: unknown)",
            m.event_time_lag.clone(),
        );
        m
    }

    pub fn frames_written(&self, kind: DataKind, n: u64) {
        self.frames[kind.index()].inc_by(n);
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
        self.bytes.inc_by(n);
    }

    pub fn write_error(&self) {
        self.write_errors.inc();
    }

    pub fn rotated(&self) {
        self.rotations.inc();
    }

    /// Brings the time-based gauges up to `now` (before each scrape).
    pub(super) fn refresh(&self, now: i64) {
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
    }
}
