//! kube-event-logger: every Kubernetes Event watch frame, exactly once, in a JSON-lines file.
//!
//! # Layout
//!
//! ```text
//! backoff    capped exponential backoff with jitter (watch reconnects, output retries)
//! cli        clap's view of the command line (no logic)
//! config     command line → validated RunConfig
//! cluster    kube client from kubeconfig / in-cluster access
//! watch/     LIST + WATCH per scope: line splitting, the reconnect/relist state machine
//! event      a borrowed, typed view of an Event (for the filter and the viewer)
//! filter/    the filter language: nom parser → checked Filter → evaluation; fieldSelector push-down
//! frame      one line → frame type, uid, namespace, resourceVersion; LIST item → ADDED frame
//! position   where the output ends (torn-line repair, per-scope resume points); RV comparison
//! output/    the writer thread, the rotating output file, rotated-file naming and retention, gzip
//! health     shared state behind /healthz and /readyz
//! metrics    Prometheus metrics: names and labels in one place
//! http       /healthz, /readyz and /metrics
//! tail/      the viewer: reads plain and .gz files, follows across rotation, table/json rendering
//! telemetry  tracing to stderr
//! shutdown   SIGTERM/SIGINT
//! daemon     `run`: wires the above together, maps failures to exit codes
//! ```
//!
//! `watch`, `output`, `position`, `filter` and `tail` meet only in `frame`/`event` types and
//! are joined in `daemon` (for `run`) and `main` (for `tail`).

#![forbid(unsafe_code)]
#![warn(clippy::too_many_lines)]

mod backoff;
pub mod cli;
mod cluster;
pub mod config;
pub mod daemon;
mod event;
mod filter;
mod frame;
mod health;
mod http;
mod metrics;
mod output;
mod position;
pub mod rotated;
pub mod shutdown;
pub mod tail;
pub mod telemetry;
mod time;
mod watch;

pub use event::EventFrame;
pub use filter::Filter;
pub use output::prepare_dir;
