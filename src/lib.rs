//! kube-event-logger: every Kubernetes Event watch frame, exactly once, in a JSON-lines file.
//!
//! # Layout
//!
//! ```text
//! main.rs    parse the command line, start telemetry, call the library, map errors to exit codes
//! cli/       clap's view of the command line (no logic); env_note: a bad value from an
//!            environment variable named by it
//! config     the environment read once (Env), then command line + Env → validated RunConfig,
//!            TailConfig, SummaryConfig (pure)
//! time       RFC 3339 and relative times, durations (filter language and command line)
//!
//! frame/     the vocabulary: ResourceVersion, Scope, Positions (mod); one line → Frame (parse,
//!            and head: the member walk that places a frame; validate: the JSON skip it uses);
//!            LIST page → ADDED frames (list); what a watch sends the writer and through what
//!            (write). Imports nothing of ours
//! event      a borrowed, typed view of an Event (filter and viewer); frame + view in one parse
//! occurrence how often an Event happened: its count's growth between frames, the one rule
//!            everything that counts uses (pure, bounded memory)
//!
//! cluster/   kube client from kubeconfig / in-cluster access; wire: a WATCH on a connection of
//!            its own (HTTP/1.1 read by hand); chunked: its body decoded where it is read
//! watch/     LIST + WATCH per scope: machine (the pure state machine: outcome → next request),
//!            list (how a LIST is done), stream (chunks → lines → batches), external_sort (a
//!            LIST in resourceVersion order in bounded memory: runs on disk, k-way merge), lines
//!            (chunk → lines), api (the EventsApi trait, kube implementation), mod (the run loop
//!            and its reporting)
//! backoff    capped exponential backoff with jitter (watch reconnects, output retries)
//! leader     leader election on a Lease, with the write position handed over in it
//!
//! output/    the writer thread; the rotating output file (file); the retention plan (retention);
//!            the gzip tidier (compress)
//! output_files  the output's files: rotated-file names, listing and opening (plain or gzip),
//!            for output, position and tail
//! position   where the output ends: torn-line repair, per-scope resume points
//! resume     resume planning: where each scope starts (output, scope record, Lease handover)
//! checkpoint what reached the output (positions, covered scopes): the writer records, the Lease
//!            renewal reads a view
//!
//! filter/    the filter language: parse (nom) → fields → check → eval; selector push-down
//! reader/    reading the output files for tail and summary: which files, blocks of lines on all
//!            cores in file order, the selection; follow (plain and .gz, across rotations)
//! tail/      the viewer: render (table/json) what reader/ reads
//! summary/   what the files say happened: tally (counting, bounded), render (terminal chart,
//!            JSON), over what reader/ reads
//!
//! health     shared state behind /healthz and /readyz
//! metrics/   Prometheus metrics by concern (watch, output, leader), each group registering its own
//! http       /healthz, /readyz and /metrics
//! telemetry  tracing to stderr
//! shutdown   SIGTERM/SIGINT
//! exit_code  exit codes of every subcommand
//! daemon     `run`: wires the above together, supervises the tasks, maps failures to exit codes
//! ```
//!
//! `watch`, `output` and `position` never import each other: they meet in the `frame` types (a
//! watch sends its lines through a `frame::Outlet`, which the output's handle is) and are
//! joined in `daemon`. The filter language is used by `tail` directly and by `watch` only through
//! a closure that `daemon` builds. `tests/layout.rs` checks these claims, that there is no import
//! circle, and that this map names every module.

#![forbid(unsafe_code)]
#![warn(clippy::too_many_lines)]

mod backoff;
mod checkpoint;
pub mod cli;
mod cluster;
pub mod config;
pub mod daemon;
mod event;
pub mod exit_code;
mod filter;
pub mod frame;
mod health;
mod http;
mod leader;
mod metrics;
pub mod occurrence;
mod output;
pub mod output_files;
mod position;
pub mod reader;
mod resume;
pub mod shutdown;
pub mod summary;
pub mod tail;
pub mod telemetry;
mod time;
mod watch;

pub use event::EventFrame;
pub use filter::Filter;
pub use output::prepare_dir;
