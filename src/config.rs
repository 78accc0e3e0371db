//! Configuration in two stages: what was typed (clap's [`crate::cli`], which also reads the
//! `KUBE_EVENT_LOGGER_*` variables standing for flags) and the rest of the environment, read once
//! into [`Env`]; then each subcommand's validated configuration derived from them by a pure
//! function: [`RunConfig::from_args`], [`tail_config`], [`summary_config`]. Nothing reads the
//! environment after the first stage.

use std::path::PathBuf;

use std::sync::Arc;

use jiff::Timestamp;

use crate::cli::{OutputFormat, RunArgs, Selectors, SummaryArgs, SummaryFormat, TailArgs};
use crate::filter::{Filter, FilterError, check_field_selector};
use crate::frame::Scope;
use crate::metrics::{EventLabels, Namespace};
use crate::output::Limits;
use crate::reader::{Selection, Source};
use crate::summary::{Style, SummaryConfig};
use crate::tail::{Format, TailConfig};

/// What the configuration takes from the process's environment besides the flags: read once,
/// at start.
#[derive(Debug, Clone)]
pub struct Env {
    /// The clock at start.
    pub clock: Timestamp,
    /// `KUBE_EVENT_LOGGER_NOW`: "now" pinned for reproducible output (tests, documentation).
    pub pinned_now: Option<String>,
    /// `POD_NAME` (the downward API): this replica's identity in the Lease.
    pub pod_name: Option<String>,
    /// The host name, for an identity when `POD_NAME` is unset.
    pub hostname: Option<String>,
    /// A random number that tells apart two identities made from one host name.
    pub nonce: u32,
    /// The pod's namespace, from its service-account mount (where the Lease lives by default).
    pub pod_namespace: Option<String>,
    /// stdout is a terminal and `NO_COLOR` is unset.
    pub color: bool,
    /// `COLUMNS`, else the terminal's width.
    pub columns: Option<usize>,
}

impl Env {
    /// Reads the environment (the only place in the crate that does, besides clap's flags).
    pub fn read() -> Env {
        let text = |path: &str| {
            std::fs::read_to_string(path)
                .ok()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
        };
        let columns = std::env::var("COLUMNS")
            .ok()
            .and_then(|v| v.parse().ok())
            .or_else(|| {
                rustix::termios::tcgetwinsize(std::io::stdout())
                    .ok()
                    .map(|w| usize::from(w.ws_col))
                    .filter(|&n| n > 0)
            });
        Env {
            clock: Timestamp::now(),
            pinned_now: std::env::var("KUBE_EVENT_LOGGER_NOW").ok(),
            pod_name: std::env::var("POD_NAME").ok().filter(|p| !p.is_empty()),
            hostname: text("/proc/sys/kernel/hostname"),
            nonce: fastrand::u32(..),
            pod_namespace: text("/var/run/secrets/kubernetes.io/serviceaccount/namespace"),
            // Colours only for a person: a terminal, and no NO_COLOR.
            color: std::io::IsTerminal::is_terminal(&std::io::stdout())
                && std::env::var_os("NO_COLOR").is_none(),
            columns,
        }
    }

    /// "Now": pinned by `KUBE_EVENT_LOGGER_NOW`, else the clock.
    fn now(&self) -> Result<Timestamp, ConfigError> {
        match &self.pinned_now {
            Some(v) => v.parse().map_err(|_| ConfigError::Now(v.clone())),
            None => Ok(self.clock),
        }
    }

    /// Who we are in the Lease: `$POD_NAME`, else the host name and a random suffix.
    fn identity(&self) -> String {
        if let Some(pod) = &self.pod_name {
            return pod.clone();
        }
        let host = self.hostname.as_deref().unwrap_or("kube-event-logger");
        format!("{host}_{:08x}", self.nonce)
    }
}

#[cfg(test)]
impl Env {
    /// A fixed environment: no pod, no terminal, pinned nowhere.
    pub fn fixed() -> Env {
        Env {
            clock: "2026-11-22T10:00:00Z".parse().unwrap(),
            pinned_now: None,
            pod_name: None,
            hostname: Some("node-1".into()),
            nonce: 7,
            pod_namespace: None,
            color: false,
            columns: None,
        }
    }
}

/// Where frames go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputTarget {
    File(PathBuf),
    Stdout,
}

#[derive(Debug, Clone)]
pub struct RunConfig {
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
    /// One watch per scope: all namespaces, or each namespace given.
    pub scopes: Vec<Scope>,
    pub output: OutputTarget,
    /// Where /healthz, /readyz and /metrics are served (`HOST:PORT`, a name resolved when it is
    /// bound); `None`: no HTTP listener (`off`).
    pub http_addr: Option<String>,
    pub list_page_size: u32,
    /// See `--list-sort-memory`.
    pub list_sort_memory: usize,
    pub limits: Limits,
    /// Evaluated on every frame before it is written.
    pub filter: Option<Arc<Filter>>,
    /// Sent with every LIST and WATCH: `--field-selector` plus the pushed-down part of `--filter`.
    pub field_selector: Option<String>,
    /// See `--stall-timeout`.
    pub stall_timeout: std::time::Duration,
    /// `--leader-elect`: the Lease and its timings.
    pub leader: Option<crate::leader::ElectionConfig>,
    /// `--occurrence-events`.
    pub occurrence_events: usize,
    /// `--occurrence-series`, `--occurrences-by-namespace`.
    pub event_labels: EventLabels,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("--filter: {0}")]
    Filter(FilterError),
    #[error("--field-selector: {0}")]
    FieldSelector(FilterError),
    #[error(
        "--{flag} {value:?} is not a time; use RFC 3339 (2026-11-22T10:00:00Z) or a relative time such as 10m, 2h, 1d"
    )]
    Time { flag: &'static str, value: String },
    #[error(
        "--namespace {0:?} is not a valid namespace name (lowercase letters, digits and '-', at most 63 characters)"
    )]
    BadNamespace(String),
    #[error("--leader-elect: {0}")]
    LeaderElect(String),
    #[error("--since {since} is later than --until {until}: nothing could match; swap them")]
    EmptyWindow { since: String, until: String },
    #[error(
        "--follow reads one file; {0} were given. Read the older ones without --follow first \
         (tail OLD), then follow the one being written (tail -f NEW)"
    )]
    FollowOne(usize),
    #[error(
        "KUBE_EVENT_LOGGER_NOW={0:?} is not an RFC 3339 time (2026-11-22T10:00:00Z); unset it to count from now"
    )]
    Now(String),
}

impl RunConfig {
    pub fn from_args(args: RunArgs, env: &Env) -> Result<Self, ConfigError> {
        let leader = election(&args, env)?;
        let mut scopes = Vec::new();
        for ns in args.namespaces {
            if !is_dns_label(&ns) {
                return Err(ConfigError::BadNamespace(ns));
            }
            let scope = Scope::Namespace(ns);
            if !scopes.contains(&scope) {
                scopes.push(scope);
            }
        }
        if scopes.is_empty() {
            scopes.push(Scope::All);
        }
        let output = match args.output.as_os_str().to_str() {
            Some("-") => OutputTarget::Stdout,
            _ => OutputTarget::File(args.output),
        };
        let filter = match &args.filter {
            Some(expr) => Some(Arc::new(Filter::parse(expr).map_err(ConfigError::Filter)?)),
            None => None,
        };
        let mut selectors = Vec::new();
        if let Some(sel) = &args.field_selector {
            selectors.push(check_field_selector(sel).map_err(ConfigError::FieldSelector)?);
        }
        if let Some(pushed) = filter.as_ref().and_then(|f| f.field_selector()) {
            selectors.push(pushed);
        }
        let field_selector = Some(selectors.join(",")).filter(|s| !s.is_empty());
        Ok(Self {
            leader,
            occurrence_events: args.occurrence_events as usize,
            event_labels: EventLabels {
                namespace: if args.occurrences_by_namespace {
                    Namespace::Labelled
                } else {
                    Namespace::Unlabelled
                },
                max_series: args.occurrence_series as usize,
            },
            stall_timeout: args.stall_timeout,
            filter,
            field_selector,
            kubeconfig: args.kubeconfig,
            context: args.context,
            scopes,
            output,
            http_addr: args.http_addr.0,
            list_page_size: args.list_page_size,
            list_sort_memory: usize::try_from(args.list_sort_memory).unwrap_or(usize::MAX),
            limits: Limits {
                max_file_size: args.max_file_size,
                max_files: args.max_files.into(),
                compress_after: args.compress_after,
            },
        })
    }
}

/// The Lease settings of `--leader-elect`, checked as client-go checks them.
fn election(
    args: &RunArgs,
    env: &Env,
) -> Result<Option<crate::leader::ElectionConfig>, ConfigError> {
    if !args.leader_elect {
        return Ok(None);
    }
    let (lease, renew, retry) = (
        args.leader_elect_lease_duration,
        args.leader_elect_renew_deadline,
        args.leader_elect_retry_period,
    );
    if renew >= lease {
        return Err(ConfigError::LeaderElect(format!(
            "the renew deadline ({renew:?}) must be shorter than the lease duration ({lease:?}): \
             the leader must stop before a standby may take over"
        )));
    }
    if retry.mul_f64(1.2) >= renew {
        return Err(ConfigError::LeaderElect(format!(
            "the retry period ({retry:?}) must be well under the renew deadline ({renew:?}), \
             so that a renewal can be retried before it"
        )));
    }
    let namespace = args
        .leader_elect_resource_namespace
        .clone()
        .or_else(|| env.pod_namespace.clone())
        .unwrap_or_else(|| "kube-system".into());
    if !is_dns_label(&namespace) {
        return Err(ConfigError::LeaderElect(format!(
            "{namespace:?} is not a valid namespace name for the Lease"
        )));
    }
    Ok(Some(crate::leader::ElectionConfig {
        name: args.leader_elect_resource_name.clone(),
        namespace,
        identity: env.identity(),
        lease_duration: lease,
        renew_deadline: renew,
        retry_period: retry,
    }))
}

/// Lines `tail --follow` starts with, as `tail -f` does.
pub const DEFAULT_FOLLOW_LINES: u64 = 10;

/// `--namespace`, `--since`, `--until`, `--filter` of `tail` and `summary`, checked.
fn selection(select: &Selectors, now: Timestamp) -> Result<Selection, ConfigError> {
    let time = |flag: &'static str, v: &Option<String>| -> Result<Option<Timestamp>, ConfigError> {
        v.as_deref()
            .map(|s| {
                crate::time::parse_time(s, now).ok_or_else(|| ConfigError::Time {
                    flag,
                    value: s.to_string(),
                })
            })
            .transpose()
    };
    let (since, until) = (time("since", &select.since)?, time("until", &select.until)?);
    if let (Some(s), Some(u)) = (since, until)
        && s > u
    {
        return Err(ConfigError::EmptyWindow {
            since: s.to_string(),
            until: u.to_string(),
        });
    }
    if let Some(bad) = select.namespaces.iter().find(|ns| !is_dns_label(ns)) {
        return Err(ConfigError::BadNamespace(bad.clone()));
    }
    let filter = select.filter.as_deref().map(Filter::parse).transpose();
    Ok(Selection {
        namespaces: select.namespaces.clone(),
        since,
        until,
        filter: filter.map_err(ConfigError::Filter)?,
    })
}

/// Builds the `tail` configuration.
pub fn tail_config(args: TailArgs, env: &Env) -> Result<TailConfig, ConfigError> {
    let now = env.now()?;
    if args.follow && args.paths.len() > 1 {
        return Err(ConfigError::FollowOne(args.paths.len()));
    }
    // Following the whole history (--all) shows every line, as without --follow.
    let lines = args
        .lines
        .or((args.follow && !args.all).then_some(DEFAULT_FOLLOW_LINES));
    let sources = args
        .paths
        .into_iter()
        .map(|path| Source {
            path,
            all: args.all,
            follow: args.follow,
            lines,
        })
        .collect();
    Ok(TailConfig {
        selection: selection(&args.select, now)?,
        sources,
        format: match args.format {
            OutputFormat::Json => Format::Json,
            OutputFormat::Table => Format::Table,
            OutputFormat::Wide => Format::Wide,
        },
        headers: !args.no_headers,
        color: env.color,
        now,
    })
}

/// Builds the `summary` configuration (every rotated file of each path read).
pub fn summary_config(args: SummaryArgs, env: &Env) -> Result<SummaryConfig, ConfigError> {
    let now = env.now()?;
    Ok(SummaryConfig {
        selection: selection(&args.select, now)?,
        paths: args.paths,
        top: usize::from(args.top),
        buckets: usize::from(args.buckets),
        json: args.format == SummaryFormat::Json,
        style: Style {
            width: env.columns.unwrap_or(100),
            color: env.color,
            now,
        },
    })
}

/// An RFC 1123 label, as namespace names are.
fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn parse(args: &[&str]) -> Result<RunConfig, ConfigError> {
        let cli = Cli::try_parse_from([&["kube-event-logger", "run"], args].concat()).unwrap();
        let Command::Run(run) = cli.command else {
            panic!("not run")
        };
        RunConfig::from_args(run, &Env::fixed())
    }

    #[test]
    fn leader_election_is_off_by_default_and_its_timings_are_checked() {
        assert_eq!(parse(&[]).unwrap().leader, None);
        let e = parse(&["--leader-elect", "--leader-elect-resource-namespace=ops"])
            .unwrap()
            .leader
            .unwrap();
        assert_eq!(
            (e.name.as_str(), e.namespace.as_str()),
            ("kube-event-logger", "ops")
        );
        let secs = std::time::Duration::from_secs;
        assert_eq!(
            (e.lease_duration, e.renew_deadline, e.retry_period),
            (secs(15), secs(10), secs(2)),
            "kube-scheduler's defaults"
        );
        assert!(!e.identity.is_empty());
        let err = |args: &[&str]| match parse(args) {
            Err(ConfigError::LeaderElect(why)) => why,
            other => panic!("{other:?}"),
        };
        let why = err(&["--leader-elect", "--leader-elect-renew-deadline=15s"]);
        assert!(why.contains("shorter than the lease duration"), "{why}");
        let why = err(&["--leader-elect", "--leader-elect-retry-period=9s"]);
        assert!(why.contains("well under the renew deadline"), "{why}");
        let why = err(&["--leader-elect", "--leader-elect-resource-namespace=Not_OK"]);
        assert!(why.contains("not a valid namespace"), "{why}");
        let cli = Cli::try_parse_from([
            "kube-event-logger",
            "run",
            "--leader-elect-lease-duration=1500ms",
        ]);
        assert!(cli.is_err(), "a Lease counts whole seconds");
    }

    #[test]
    fn defaults() {
        let c = parse(&[]).unwrap();
        assert_eq!(c.scopes, [Scope::All]);
        assert_eq!(
            c.output,
            OutputTarget::File("/var/log/kube-event-logger/events.json".into())
        );
        assert_eq!(
            c.http_addr.map(|a| a.to_string()).as_deref(),
            Some("0.0.0.0:8080")
        );
        assert_eq!(c.list_page_size, 500);
        assert_eq!(c.list_sort_memory, 8 << 20);
        assert_eq!(c.stall_timeout, std::time::Duration::from_secs(300));
        assert_eq!(
            c.limits,
            Limits {
                max_file_size: 100 << 20,
                max_files: 5,
                compress_after: std::time::Duration::from_secs(3600),
            }
        );
    }

    #[test]
    fn namespaces_dedupe_and_validate() {
        let c = parse(&["-n", "a", "--namespace", "b", "-n", "a"]).unwrap();
        assert_eq!(
            c.scopes,
            [Scope::Namespace("a".into()), Scope::Namespace("b".into())]
        );
        assert_eq!(
            parse(&["-n", "Bad_NS"]).unwrap_err(),
            ConfigError::BadNamespace("Bad_NS".into())
        );
        assert!(parse(&["-n=x-"]).is_err());
    }

    #[test]
    fn sizes_take_human_units() {
        let c = parse(&["--max-file-size", "1GiB", "--max-files", "2"]).unwrap();
        assert_eq!(
            c.limits,
            Limits {
                max_file_size: 1 << 30,
                max_files: 2,
                compress_after: std::time::Duration::from_secs(3600),
            }
        );
        assert_eq!(
            parse(&["--max-file-size=512KiB"])
                .unwrap()
                .limits
                .max_file_size,
            512 << 10
        );
        for bad in [
            &["--max-file-size", "lots"][..],
            &["--max-file-size", "10"],
            &["--max-files", "0"],
        ] {
            assert!(
                Cli::try_parse_from([&["kube-event-logger", "run"], bad].concat()).is_err(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn filter_push_down_and_field_selector_combine() {
        let c = parse(&[
            "--filter",
            "type=Warning and message=~x",
            "--field-selector",
            "reason!=A",
        ])
        .unwrap();
        assert_eq!(c.field_selector.as_deref(), Some("reason!=A,type=Warning"));
        assert!(c.filter.is_some());
        let c = parse(&["--filter", "message=~x"]).unwrap();
        assert_eq!(c.field_selector, None);
        assert!(matches!(
            parse(&["--filter", "typ=Warning"]),
            Err(ConfigError::Filter(_))
        ));
        assert!(matches!(
            parse(&["--field-selector", "message=x"]),
            Err(ConfigError::FieldSelector(_))
        ));
    }

    #[test]
    fn tail_flags() {
        let tail = |args: &[&str]| {
            let cli = Cli::try_parse_from([&["kube-event-logger", "tail"], args].concat()).unwrap();
            let Command::Tail(t) = cli.command else {
                panic!("not tail")
            };
            tail_config(t, &Env::fixed())
        };
        let t = tail(&[]).unwrap();
        assert_eq!(
            t.sources[0].path,
            PathBuf::from("/var/log/kube-event-logger/events.json")
        );
        assert_eq!(
            (t.format, t.headers, t.sources[0].follow, t.sources[0].all),
            (Format::Table, true, false, false)
        );
        let t = tail(&[
            "x.json",
            "-f",
            "--all",
            "-o",
            "wide",
            "--no-headers",
            "--since",
            "2026-01-01T00:00:00Z",
            "--until",
            "1h",
        ])
        .unwrap();
        assert_eq!(
            (t.format, t.headers, t.sources[0].follow, t.sources[0].all),
            (Format::Wide, false, true, true)
        );
        assert_eq!(
            t.selection.since.unwrap().to_string(),
            "2026-01-01T00:00:00Z"
        );
        assert_eq!(
            t.selection.until.unwrap().to_string(),
            "2026-11-22T09:00:00Z",
            "an hour before the environment's clock"
        );
        assert!(matches!(
            tail(&["--since", "soon"]),
            Err(ConfigError::Time { flag: "since", .. })
        ));
        assert!(tail(&["--filter", "type="]).is_ok());
        // Following the whole history shows every line of the active file too.
        assert_eq!(tail(&["-f"]).unwrap().sources[0].lines, Some(10));
        assert_eq!(tail(&["-f", "--all"]).unwrap().sources[0].lines, None);
        assert_eq!(tail(&["--all"]).unwrap().sources[0].lines, None);
        assert_eq!(
            tail(&["-f", "--lines", "3"]).unwrap().sources[0].lines,
            Some(3)
        );
        // Several files, in the order given; following takes one.
        let t = tail(&["a.json", "b.json"]).unwrap();
        let paths: Vec<_> = t.sources.iter().map(|s| s.path.clone()).collect();
        assert_eq!(paths, [PathBuf::from("a.json"), PathBuf::from("b.json")]);
        assert!(matches!(
            tail(&["-f", "a.json", "b.json"]),
            Err(ConfigError::FollowOne(2))
        ));
        assert!(matches!(
            tail(&["--filter", "type"]),
            Err(ConfigError::Filter(_))
        ));
    }

    #[test]
    fn the_environment_is_read_once_and_everything_after_is_pure() {
        let env = Env {
            pod_name: Some("kel-0".into()),
            pod_namespace: Some("ops".into()),
            ..Env::fixed()
        };
        let cli = Cli::try_parse_from(["kube-event-logger", "run", "--leader-elect"]).unwrap();
        let Command::Run(run) = cli.command else {
            panic!("not run")
        };
        let e = RunConfig::from_args(run, &env).unwrap().leader.unwrap();
        assert_eq!(
            (e.identity.as_str(), e.namespace.as_str()),
            ("kel-0", "ops")
        );
        let e = parse(&["--leader-elect"]).unwrap().leader.unwrap();
        assert_eq!(
            (e.identity.as_str(), e.namespace.as_str()),
            ("node-1_00000007", "kube-system"),
            "no pod: the host name and a random suffix; the Lease in kube-system"
        );
        let pinned = Env {
            pinned_now: Some("2026-01-02T03:04:05Z".into()),
            ..Env::fixed()
        };
        let cli = Cli::try_parse_from(["kube-event-logger", "summary", "--since", "1h"]).unwrap();
        let Command::Summary(args) = cli.command else {
            panic!("not summary")
        };
        let s = summary_config(args, &pinned).unwrap();
        assert_eq!(s.style.now.to_string(), "2026-01-02T03:04:05Z");
        assert_eq!(s.style.width, 100, "no terminal, no COLUMNS");
        assert_eq!(
            s.selection.since.unwrap().to_string(),
            "2026-01-02T02:04:05Z"
        );
        let bad = Env {
            pinned_now: Some("yesterday".into()),
            ..Env::fixed()
        };
        let cli = Cli::try_parse_from(["kube-event-logger", "tail"]).unwrap();
        let Command::Tail(args) = cli.command else {
            panic!("not tail")
        };
        assert!(matches!(
            tail_config(args, &bad),
            Err(ConfigError::Now(v)) if v == "yesterday"
        ));
    }

    #[test]
    fn dash_is_stdout() {
        assert_eq!(
            parse(&["--output-file", "-"]).unwrap().output,
            OutputTarget::Stdout
        );
        // clap refuses an empty value outright.
        assert!(Cli::try_parse_from(["kube-event-logger", "run", "--output="]).is_err());
    }

    #[test]
    fn bad_values_are_rejected_by_the_parser() {
        assert_eq!(
            parse(&["--stall-timeout", "1h30s"])
                .unwrap()
                .stall_timeout
                .as_secs(),
            3630
        );
        for (given, expected) in [
            (":9090", "0.0.0.0:9090"),
            ("localhost:9090", "localhost:9090"),
            ("127.0.0.1:0", "127.0.0.1:0"),
            ("[::1]:8080", "[::1]:8080"),
        ] {
            let addr = parse(&["--http-addr", given]).unwrap().http_addr.unwrap();
            assert_eq!(addr, expected, "{given}");
        }
        assert_eq!(parse(&["--http-addr", "off"]).unwrap().http_addr, None);
        let err = Cli::try_parse_from(["kube-event-logger", "run", "--http-addr", "8080"])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(":8080") && err.contains("localhost:8080"),
            "{err}"
        );
        assert_eq!(
            parse(&["--output-file", "/x/e.json"]).unwrap().output,
            OutputTarget::File("/x/e.json".into()),
        );
        assert!(Cli::try_parse_from(["kube-event-logger", "run", "-o", "/x"]).is_err());
        assert!(Cli::try_parse_from(["kube-event-logger", "run", "--output", "/x"]).is_err());
        for bad in [
            &["--http-addr", "nope"][..],
            &["--http-addr", "localhost:http"],
            &["--list-page-size", "0"],
            &["--log-format", "xml"],
            &["--stall-timeout", "0s"],
            &["--stall-timeout", "soon"],
        ] {
            assert!(
                Cli::try_parse_from([&["kube-event-logger", "run"], bad].concat()).is_err(),
                "{bad:?}"
            );
        }
    }
}
