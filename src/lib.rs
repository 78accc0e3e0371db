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

pub mod backoff;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod daemon;
pub mod event;
pub mod filter;
pub mod frame;
pub mod health;
pub mod http;
pub mod metrics;
pub mod output;
pub mod position;
pub mod rotated;
pub mod shutdown;
pub mod tail;
pub mod telemetry;
pub mod time;
pub mod watch;
