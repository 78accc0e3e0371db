//! The validated configuration of `run`, built from the command line by one function.

use std::net::SocketAddr;
use std::path::PathBuf;

use std::sync::Arc;

use crate::cli::{OutputFormat, RunArgs, SummaryArgs, TailArgs};
use crate::filter::{Filter, FilterError, check_field_selector};
use crate::frame::Scope;
use crate::output::Limits;
use crate::tail::{Format, TailConfig};

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
    /// Where /healthz, /readyz and /metrics are served; `None`: no HTTP listener (`off`).
    pub http_addr: Option<SocketAddr>,
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
        "KUBE_EVENT_LOGGER_NOW={0:?} is not an RFC 3339 time (2026-11-22T10:00:00Z); unset it to count from now"
    )]
    Now(String),
}

impl RunConfig {
    pub fn from_args(args: RunArgs) -> Result<Self, ConfigError> {
        let leader = election(&args)?;
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
fn election(args: &RunArgs) -> Result<Option<crate::leader::ElectionConfig>, ConfigError> {
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
        .or_else(own_namespace)
        .unwrap_or_else(|| "kube-system".into());
    if !is_dns_label(&namespace) {
        return Err(ConfigError::LeaderElect(format!(
            "{namespace:?} is not a valid namespace name for the Lease"
        )));
    }
    Ok(Some(crate::leader::ElectionConfig {
        name: args.leader_elect_resource_name.clone(),
        namespace,
        identity: identity(),
        lease_duration: lease,
        renew_deadline: renew,
        retry_period: retry,
    }))
}

/// The pod's namespace, from its service-account mount.
fn own_namespace() -> Option<String> {
    let ns = std::fs::read_to_string("/var/run/secrets/kubernetes.io/serviceaccount/namespace");
    ns.ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// Who we are in the Lease: `$POD_NAME`, else the host name and a random suffix.
fn identity() -> String {
    if let Some(pod) = std::env::var("POD_NAME").ok().filter(|p| !p.is_empty()) {
        return pod;
    }
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "kube-event-logger".into());
    format!("{host}_{:08x}", fastrand::u32(..))
}

/// Lines `tail --follow` starts with, as `tail -f` does.
pub const DEFAULT_FOLLOW_LINES: u64 = 10;

/// Builds the `tail` configuration.
pub fn tail_config(args: TailArgs, color: bool) -> Result<TailConfig, ConfigError> {
    // Reproducible output (tests, documentation): KUBE_EVENT_LOGGER_NOW pins "now".
    let now = match std::env::var("KUBE_EVENT_LOGGER_NOW") {
        Ok(v) => v
            .parse::<jiff::Timestamp>()
            .map_err(|_| ConfigError::Now(v))?,
        Err(_) => jiff::Timestamp::now(),
    };
    let time =
        |flag: &'static str, v: &Option<String>| -> Result<Option<jiff::Timestamp>, ConfigError> {
            v.as_deref()
                .map(|s| {
                    crate::time::parse_time(s, now).ok_or_else(|| ConfigError::Time {
                        flag,
                        value: s.to_string(),
                    })
                })
                .transpose()
        };
    let (since, until) = (
        time("since", &args.select.since)?,
        time("until", &args.select.until)?,
    );
    if let (Some(s), Some(u)) = (since, until)
        && s > u
    {
        return Err(ConfigError::EmptyWindow {
            since: s.to_string(),
            until: u.to_string(),
        });
    }
    if let Some(bad) = args.select.namespaces.iter().find(|ns| !is_dns_label(ns)) {
        return Err(ConfigError::BadNamespace(bad.clone()));
    }
    Ok(TailConfig {
        now,
        since,
        until,
        namespaces: args.select.namespaces,
        lines: args.lines.or(args.follow.then_some(DEFAULT_FOLLOW_LINES)),
        filter: args
            .select
            .filter
            .as_deref()
            .map(Filter::parse)
            .transpose()
            .map_err(ConfigError::Filter)?,
        path: args.path,
        follow: args.follow,
        all: args.all,
        format: match args.format {
            OutputFormat::Json => Format::Json,
            OutputFormat::Table => Format::Table,
            OutputFormat::Wide => Format::Wide,
        },
        headers: !args.no_headers,
        color,
    })
}

/// What `summary` reads and selects, validated as `tail`'s selectors are (every rotated file
/// read; the path is set per file given).
pub fn summary_config(args: &SummaryArgs, color: bool) -> Result<TailConfig, ConfigError> {
    tail_config(
        TailArgs {
            path: args.paths.first().cloned().unwrap_or_default(),
            follow: false,
            all: true,
            lines: None,
            select: args.select.clone(),
            format: OutputFormat::Json,
            no_headers: true,
        },
        color,
    )
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
        RunConfig::from_args(run)
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
            tail_config(t, false)
        };
        let t = tail(&[]).unwrap();
        assert_eq!(
            t.path,
            PathBuf::from("/var/log/kube-event-logger/events.json")
        );
        assert_eq!(
            (t.format, t.headers, t.follow, t.all),
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
            (t.format, t.headers, t.follow, t.all),
            (Format::Wide, false, true, true)
        );
        assert_eq!(t.since.unwrap().to_string(), "2026-01-01T00:00:00Z");
        assert!(t.until.is_some());
        assert!(matches!(
            tail(&["--since", "soon"]),
            Err(ConfigError::Time { flag: "since", .. })
        ));
        assert!(tail(&["--filter", "type="]).is_ok());
        assert!(matches!(
            tail(&["--filter", "type"]),
            Err(ConfigError::Filter(_))
        ));
    }

    #[test]
    fn dash_is_stdout() {
        assert_eq!(
            parse(&["--output", "-"]).unwrap().output,
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
            ("localhost:9090", "127.0.0.1:9090"),
            ("127.0.0.1:0", "127.0.0.1:0"),
        ] {
            let addr = parse(&["--http-addr", given]).unwrap().http_addr.unwrap();
            assert!(
                addr.to_string() == expected
                    || (given.starts_with("localhost") && addr.ip().is_loopback()),
                "{given} → {addr}"
            );
        }
        let err = Cli::try_parse_from(["kube-event-logger", "run", "--http-addr", "8080"])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(":8080") && err.contains("localhost:8080"),
            "{err}"
        );
        assert_eq!(
            parse(&["--output", "/x/e.json"]).unwrap().output,
            OutputTarget::File("/x/e.json".into()),
            "the earlier name still works"
        );
        assert!(Cli::try_parse_from(["kube-event-logger", "run", "-o", "/x"]).is_err());
        for bad in [
            &["--http-addr", "nope"][..],
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
