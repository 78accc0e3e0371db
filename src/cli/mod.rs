//! The command line, as clap sees it. No logic here: [`crate::config`] turns it into a validated
//! configuration.

mod env_note;

use std::path::PathBuf;

pub use env_note::parse;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Default output file: where the node's Filebeat harvests it.
pub const DEFAULT_OUTPUT: &str = "/var/log/kube-event-logger/events.json";

#[derive(Debug, Parser)]
#[command(
    name = "kube-event-logger",
    version,
    about = "Writes every Kubernetes Event watch frame, exactly once, to a JSON-lines file"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Watch core/v1 Events and append every ADDED, MODIFIED and DELETED frame to the output.
    Run(RunArgs),
    /// Print the output file's frames (a table by default), optionally following it.
    Tail(TailArgs),
    /// What the output files say happened: occurrences Normal vs Warning, top reasons, top
    /// objects by Warnings, namespaces and a timeline. Occurrences are the growth of each
    /// Event's count (series.count, else count) since its previous frame, not the frames: the
    /// core/v1 recorder lets a burst through as one update whose count jumps by many, and the
    /// events.k8s.io/v1 recorder reports a series' repeats every 30 minutes. An Event's first
    /// frame counts its whole count; DELETED frames, relist repeats and decreases count nothing.
    Summary(SummaryArgs),
    /// Create the output directory and hand it to the daemon's user (the StatefulSet's init
    /// container runs this as root, so that `run` itself never needs to).
    PrepareDir(PrepareDirArgs),
    /// Print a shell completion script, e.g. `kube-event-logger completion bash >
    /// /etc/bash_completion.d/kube-event-logger`.
    Completion {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Args)]
pub struct PrepareDirArgs {
    /// The directory (created if missing).
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,

    /// Owner as UID:GID; the directory gets mode 2750 (new files inherit the group).
    #[arg(long, value_name = "UID:GID", value_parser = parse_owner)]
    pub owner: (u32, u32),

    #[command(flatten)]
    pub logging: Logging,
}

/// How the commands that log (`run`, `prepare-dir`) write their diagnostics.
#[derive(Debug, Clone, Copy, Default, Args)]
pub struct Logging {
    /// Diagnostics format on stderr (filter them with RUST_LOG, e.g. RUST_LOG=debug).
    #[arg(long, value_enum, default_value_t = LogFormat::Text, env = "KUBE_EVENT_LOGGER_LOG_FORMAT")]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// The raw frame lines.
    Json,
    /// One row per occurrence: time, namespace, type, reason, object, count, message.
    Table,
    /// The table plus frame type, source, first seen and the Event's name.
    Wide,
}

#[derive(Debug, Args)]
pub struct TailArgs {
    /// Output files to read, one after the other in the order given (after a failover: the old
    /// leader's file, then the new one's). Default: $KUBE_EVENT_LOGGER_OUTPUT_FILE, as `run`.
    #[arg(value_name = "PATH", default_value = DEFAULT_OUTPUT, env = "KUBE_EVENT_LOGGER_OUTPUT_FILE")]
    pub paths: Vec<PathBuf>,

    /// Keep printing new frames as they are written, across rotations.
    #[arg(short = 'f', long)]
    pub follow: bool,

    /// Read the rotated files (plain and .gz) first, oldest first.
    #[arg(long)]
    pub all: bool,

    /// Start with the active file's last N rows that the selection shows (default with
    /// --follow: 10; without, and with --all: every row).
    #[arg(long, value_name = "N", conflicts_with = "all")]
    pub lines: Option<u64>,

    #[command(flatten)]
    pub select: Selectors,

    /// Output format, as kubectl's -o.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,

    /// Leave out the table header.
    #[arg(long)]
    pub no_headers: bool,
}

/// Which frames `tail` and `summary` read.
#[derive(Debug, Clone, Args)]
pub struct Selectors {
    /// Only events in this namespace (repeatable).
    #[arg(long = "namespace", short = 'n', value_name = "NS")]
    pub namespaces: Vec<String>,

    /// Only events whose time is at or after this (RFC 3339, or relative: 10m or -10m ago).
    #[arg(long, value_name = "TIME", allow_hyphen_values = true)]
    pub since: Option<String>,

    /// Only events whose time is at or before this (RFC 3339, or relative).
    #[arg(long, value_name = "TIME", allow_hyphen_values = true)]
    pub until: Option<String>,

    /// Only frames matching this expression (see docs/guide.md, "The filter language").
    #[arg(long, value_name = "EXPR")]
    pub filter: Option<String>,
}

#[derive(Debug, Args)]
pub struct SummaryArgs {
    /// Output files to read, each with its rotated files (plain and .gz), oldest first (after a
    /// failover: both pods' files). Default: $KUBE_EVENT_LOGGER_OUTPUT_FILE, as `run`.
    #[arg(value_name = "PATH", default_value = DEFAULT_OUTPUT, env = "KUBE_EVENT_LOGGER_OUTPUT_FILE")]
    pub paths: Vec<PathBuf>,

    #[command(flatten)]
    pub select: Selectors,

    /// Entries in each top list.
    #[arg(long, value_name = "N", default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..))]
    pub top: u16,

    /// Rows in the timeline at most (the bucket size is chosen to fit).
    #[arg(long, value_name = "N", default_value_t = 24, value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub buckets: u16,

    /// text for a person (sized to the terminal), json for scripts.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = SummaryFormat::Text)]
    pub format: SummaryFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SummaryFormat {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub logging: Logging,

    /// Kubeconfig file. Without it: in-cluster service account, else $KUBECONFIG, else ~/.kube/config.
    #[arg(long, value_name = "PATH", env = "KUBE_EVENT_LOGGER_KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,

    /// Kubeconfig context to use instead of the current one.
    #[arg(long, value_name = "NAME", env = "KUBE_EVENT_LOGGER_CONTEXT")]
    pub context: Option<String>,

    /// Watch only this namespace (repeatable). Default: all namespaces.
    #[arg(
        long = "namespace",
        short = 'n',
        value_name = "NS",
        env = "KUBE_EVENT_LOGGER_NAMESPACES",
        value_delimiter = ','
    )]
    pub namespaces: Vec<String>,

    /// Output file ("-" for stdout). Parent directories are created; the file gets mode 0640.
    #[arg(long = "output-file", value_name = "PATH", default_value = DEFAULT_OUTPUT, env = "KUBE_EVENT_LOGGER_OUTPUT_FILE")]
    pub output: PathBuf,

    /// Address for /healthz, /readyz and /metrics: HOST:PORT (0.0.0.0:8080, 127.0.0.1:8080,
    /// localhost:8080), :PORT for every interface, or `off` for no HTTP listener at all.
    #[arg(long, value_name = "ADDR", default_value = "0.0.0.0:8080", value_parser = parse_http_addr, env = "KUBE_EVENT_LOGGER_HTTP_ADDR")]
    pub http_addr: HttpAddr,

    /// Rotate the output file before it would pass this size (e.g. 100MiB, 1GiB).
    #[arg(long, value_name = "SIZE", default_value = "100MiB", value_parser = parse_size, env = "KUBE_EVENT_LOGGER_MAX_FILE_SIZE")]
    pub max_file_size: u64,

    /// Rotated files kept beside the active one (gzipped once --compress-after has passed, except
    /// the newest).
    #[arg(long, value_name = "N", default_value_t = 5, value_parser = clap::value_parser!(u16).range(1..=1000), env = "KUBE_EVENT_LOGGER_MAX_FILES")]
    pub max_files: u16,

    /// Keep a rotated file uncompressed at least this long after its rotation, so that a Filebeat
    /// that was down or blocked can still finish it (it does not read .gz files); e.g. 30m, 1h.
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = parse_compress_after, env = "KUBE_EVENT_LOGGER_COMPRESS_AFTER")]
    pub compress_after: std::time::Duration,

    /// Write only frames matching this expression (see docs/guide.md, "The filter language"). The part the
    /// API server can evaluate is sent as a fieldSelector; the rest is evaluated here.
    #[arg(long, value_name = "EXPR", env = "KUBE_EVENT_LOGGER_FILTER")]
    pub filter: Option<String>,

    /// A kubectl field selector passed to the API server as is (validated first), e.g.
    /// type=Warning,involvedObject.kind!=Pod.
    #[arg(long, value_name = "SEL", env = "KUBE_EVENT_LOGGER_FIELD_SELECTOR")]
    pub field_selector: Option<String>,

    /// Not ready, and listing again, when the watch has delivered nothing for this long while
    /// the API server has newer events (e.g. 30s, 5m, 1h).
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_stall_timeout, env = "KUBE_EVENT_LOGGER_STALL_TIMEOUT")]
    pub stall_timeout: std::time::Duration,

    /// Events per LIST page.
    #[arg(long, value_name = "N", default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..=10_000), env = "KUBE_EVENT_LOGGER_LIST_PAGE_SIZE")]
    pub list_page_size: u32,

    /// Run as one of several replicas: only the holder of a coordination.k8s.io/v1 Lease
    /// lists, watches and writes; it keeps its write position in the Lease, and the next holder
    /// continues from there. Off: this process always writes.
    #[arg(long, env = "KUBE_EVENT_LOGGER_LEADER_ELECT")]
    pub leader_elect: bool,

    /// How long a standby waits, after the last renewal it saw, before taking the Lease over.
    #[arg(long, value_name = "DURATION", default_value = "15s", value_parser = parse_whole_seconds, env = "KUBE_EVENT_LOGGER_LEADER_ELECT_LEASE_DURATION")]
    pub leader_elect_lease_duration: std::time::Duration,

    /// The leader stops writing when it could not renew for this long (less than the lease
    /// duration, so it stops before anyone else may start).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_short_duration, env = "KUBE_EVENT_LOGGER_LEADER_ELECT_RENEW_DEADLINE")]
    pub leader_elect_renew_deadline: std::time::Duration,

    /// How often the leader renews and a standby tries to acquire.
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = parse_short_duration, env = "KUBE_EVENT_LOGGER_LEADER_ELECT_RETRY_PERIOD")]
    pub leader_elect_retry_period: std::time::Duration,

    /// The Lease's name.
    #[arg(
        long,
        value_name = "NAME",
        default_value = "kube-event-logger",
        env = "KUBE_EVENT_LOGGER_LEADER_ELECT_RESOURCE_NAME"
    )]
    pub leader_elect_resource_name: String,

    /// The Lease's namespace. Default: the pod's own namespace in-cluster, else kube-system.
    #[arg(
        long,
        value_name = "NS",
        env = "KUBE_EVENT_LOGGER_LEADER_ELECT_RESOURCE_NAMESPACE"
    )]
    pub leader_elect_resource_namespace: Option<String>,

    /// Events whose last count each watch remembers, to count occurrences (the metric
    /// occurrences_total) as the growth of each Event's count; beyond, those not seen for
    /// longest are forgotten.
    #[arg(long, value_name = "N", default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..=10_000_000), env = "KUBE_EVENT_LOGGER_OCCURRENCE_EVENTS")]
    pub occurrence_events: u32,

    /// Label sets of occurrences_total at most; beyond, new ones are counted under reason and
    /// kind "other" (and occurrences_folded_total says how many).
    #[arg(long, value_name = "N", default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=100_000), env = "KUBE_EVENT_LOGGER_OCCURRENCE_SERIES")]
    pub occurrence_series: u32,

    /// Label occurrences_total by the Event's namespace too (more series: see
    /// --occurrence-series).
    #[arg(long, env = "KUBE_EVENT_LOGGER_OCCURRENCES_BY_NAMESPACE")]
    pub occurrences_by_namespace: bool,

    /// Memory for putting a LIST in resourceVersion order; a larger LIST is sorted in runs of
    /// this size on disk, in unlinked dot-files beside the output, and merged.
    #[arg(long, value_name = "SIZE", default_value = "8MiB", value_parser = parse_size, env = "KUBE_EVENT_LOGGER_LIST_SORT_MEMORY")]
    pub list_sort_memory: u64,
}

/// Sizes in human units: `100MiB`, `1GiB`, `512KiB`, `1000000`; at least 4 KiB.
fn parse_size(s: &str) -> Result<u64, String> {
    let size: bytesize::ByteSize = s
        .parse()
        .map_err(|e| format!("{e} (use a size such as 100MiB or 1GiB)"))?;
    if size.as_u64() < 4096 {
        return Err(format!("{s} is too small; use at least 4KiB"));
    }
    Ok(size.as_u64())
}

fn parse_stall_timeout(s: &str) -> Result<std::time::Duration, String> {
    match crate::time::parse_duration(s) {
        Some(d) if d.as_secs() >= 1 => Ok(d),
        Some(_) => Err("use at least 1s".into()),
        None => Err(format!("{s:?} is not a duration; use e.g. 30s, 5m or 1h")),
    }
}

/// A duration of whole seconds, at least 1s (a Lease counts its duration in seconds).
fn parse_whole_seconds(s: &str) -> Result<std::time::Duration, String> {
    match crate::time::parse_duration(s) {
        Some(d) if d.as_secs() >= 1 && d.subsec_nanos() == 0 => Ok(d),
        Some(_) => Err("use whole seconds, at least 1s".into()),
        None => Err(format!("{s:?} is not a duration; use e.g. 15s")),
    }
}

/// A duration that may be under a second: `250ms`, `2s`.
fn parse_short_duration(s: &str) -> Result<std::time::Duration, String> {
    match crate::time::parse_duration(s) {
        Some(d) if d >= std::time::Duration::from_millis(10) => Ok(d),
        Some(_) => Err("use at least 10ms".into()),
        None => Err(format!("{s:?} is not a duration; use e.g. 2s or 500ms")),
    }
}

/// `--http-addr`: `HOST:PORT` (a name is resolved when the address is bound), `:PORT` for every
/// interface, or `off`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpAddr(pub Option<String>);

fn parse_http_addr(s: &str) -> Result<HttpAddr, String> {
    if s.eq_ignore_ascii_case("off") {
        return Ok(HttpAddr(None));
    }
    let form =
        "use HOST:PORT or :PORT, e.g. 0.0.0.0:8080, 127.0.0.1:8080, localhost:8080, :8080, or off";
    let full = match s.strip_prefix(':') {
        Some(port) => format!("0.0.0.0:{port}"),
        None => s.to_string(),
    };
    match full.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => {
            Ok(HttpAddr(Some(full)))
        }
        _ => Err(format!("{s:?} has no port; {form}")),
    }
}

fn parse_compress_after(s: &str) -> Result<std::time::Duration, String> {
    crate::time::parse_duration(s)
        .ok_or_else(|| format!("{s:?} is not a duration; use e.g. 0s, 30m or 1h"))
}

fn parse_owner(s: &str) -> Result<(u32, u32), String> {
    let (uid, gid) = s
        .split_once(':')
        .ok_or_else(|| format!("{s:?}: use UID:GID, e.g. 10001:10001"))?;
    let num = |v: &str| {
        v.parse::<u32>()
            .map_err(|_| format!("{v:?} is not a numeric id; use UID:GID, e.g. 10001:10001"))
    };
    Ok((num(uid)?, num(gid)?))
}
