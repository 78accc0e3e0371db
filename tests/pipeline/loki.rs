//! The Loki route (loki/): the Alloy configuration, checked against tables of the components,
//! options and fields it uses, each with the page it was read from, and against
//! the daemon (its file names, its event time, realistic frames).

use std::collections::BTreeSet;

use regex::Regex;
use serde_json::Value as Json;

use super::alloy::{self, Block, Value};
use super::{glob_match, read, realistic_frames, yaml};

const FILE_MATCH: &str =
    "https://grafana.com/docs/alloy/latest/reference/components/local/local.file_match/";
const SOURCE_FILE: &str =
    "https://grafana.com/docs/alloy/latest/reference/components/loki/loki.source.file/";
const PROCESS: &str =
    "https://grafana.com/docs/alloy/latest/reference/components/loki/loki.process/";
const WRITE: &str = "https://grafana.com/docs/alloy/latest/reference/components/loki/loki.write/";
const SYS: &str = "https://grafana.com/docs/alloy/latest/reference/stdlib/sys/";
const TIMESTAMP: &str = "https://grafana.com/docs/loki/latest/send-data/promtail/stages/timestamp/ (the same formats in loki.process stage.timestamp)";
const LABELS_BP: &str = "https://grafana.com/docs/loki/latest/get-started/labels/bp-labels/";
const STRUCTURED: &str =
    "https://grafana.com/docs/loki/latest/get-started/labels/structured-metadata/";

/// Alloy components: their arguments and blocks (a `stage.*` block is checked against STAGES).
const COMPONENTS: &[(&str, &[&str], &str)] = &[
    (
        "local.file_match",
        &["path_targets", "sync_period", "ignore_older_than"],
        FILE_MATCH,
    ),
    (
        "loki.source.file",
        &[
            "targets",
            "forward_to",
            "encoding",
            "tail_from_end",
            "legacy_positions_file",
        ],
        SOURCE_FILE,
    ),
    ("loki.process", &["forward_to"], PROCESS),
    ("loki.write", &["endpoint", "external_labels"], WRITE),
];

/// loki.write's `endpoint` block.
const ENDPOINT: (&[&str], &str) = (
    &[
        "url",
        "name",
        "headers",
        "batch_wait",
        "batch_size",
        "remote_timeout",
        "tenant_id",
        "min_backoff_period",
        "max_backoff_period",
        "max_backoff_retries",
        "retry_on_http_429",
        "bearer_token",
        "basic_auth",
    ],
    WRITE,
);

/// loki.process stages and their arguments (each stage's section of the loki.process page).
const STAGES: &[(&str, &[&str], &str)] = &[
    (
        "stage.json",
        &["expressions", "source", "drop_malformed"],
        PROCESS,
    ),
    ("stage.template", &["source", "template"], PROCESS),
    (
        "stage.timestamp",
        &[
            "source",
            "format",
            "fallback_formats",
            "location",
            "action_on_failure",
        ],
        PROCESS,
    ),
    ("stage.static_labels", &["values"], PROCESS),
    ("stage.labels", &["values"], PROCESS),
    ("stage.structured_metadata", &["values"], PROCESS),
    ("stage.label_drop", &["values"], PROCESS),
];

/// Target labels local.file_match reads, labels loki.source.file sets, functions, formats.
const TARGET_LABELS: (&[&str], &str) = (&["__path__", "__path_exclude__"], FILE_MATCH);
const SOURCE_LABELS: (&[&str], &str) = (&["filename"], SOURCE_FILE);
const FUNCTIONS: (&[&str], &str) = (&["sys.env"], SYS);
const TIME_FORMATS: (&[&str], &str) = (&["RFC3339", "RFC3339Nano"], TIMESTAMP);

/// The stream labels we promise (docs/loki.md), and the names that must never be
/// labels: unbounded values make a stream each (LABELS_BP); they go to structured metadata.
pub(crate) const STREAM_LABELS: &[&str] =
    &["job", "cluster", "namespace", "watch_type", "event_type"];
const NEVER_LABELS: &[&str] = &[
    "reason",
    "name",
    "involved_name",
    "uid",
    "message",
    "filename",
];
pub(crate) const METADATA: (&[&str], &str) = (
    &["reason", "involved_kind", "involved_name", "uid"],
    STRUCTURED,
);

fn config() -> Block {
    alloy::parse(&read("loki/config.alloy")).unwrap_or_else(|e| panic!("loki/config.alloy: {e}"))
}

fn component<'a>(config: &'a Block, name: &str) -> &'a Block {
    match config.blocks(name)[..] {
        [c] => c,
        ref found => panic!("{} {name} blocks, one expected", found.len()),
    }
}

fn stage<'a>(process: &'a Block, name: &str) -> &'a Block {
    match process.blocks(name)[..] {
        [s] => s,
        ref found => panic!("{} {name} stages, one expected", found.len()),
    }
}

fn keys(v: Option<&Value>) -> BTreeSet<&str> {
    v.map(|v| v.object().iter().map(|(k, _)| k.as_str()).collect())
        .unwrap_or_default()
}

/// Every value in a tree, to find references and calls wherever they are.
fn walk<'a>(v: &'a Value, out: &mut Vec<&'a Value>) {
    out.push(v);
    match v {
        Value::List(items) | Value::Call(_, items) => items.iter().for_each(|i| walk(i, out)),
        Value::Object(fields) => fields.iter().for_each(|(_, i)| walk(i, out)),
        _ => {}
    }
}

fn values(b: &Block) -> Vec<&Value> {
    let mut out = Vec::new();
    for (_, v) in &b.attrs {
        walk(v, &mut out);
    }
    for inner in &b.blocks {
        out.extend(values(inner));
    }
    out
}

#[test]
fn the_alloy_config_uses_only_documented_components_stages_and_arguments() {
    let config = config();
    assert!(config.attrs.is_empty());
    for c in &config.blocks {
        let (_, args, doc) = COMPONENTS
            .iter()
            .find(|(n, ..)| *n == c.name)
            .unwrap_or_else(|| panic!("component {} is not in the table", c.name));
        assert!(c.label.is_some(), "{}: components carry a label", c.name);
        for (a, _) in &c.attrs {
            assert!(args.contains(&a.as_str()), "{}.{a} is not on {doc}", c.name);
        }
        for inner in &c.blocks {
            if let Some((_, stage_args, doc)) = STAGES.iter().find(|(n, ..)| *n == inner.name) {
                assert_eq!(c.name, "loki.process");
                for (a, _) in &inner.attrs {
                    assert!(
                        stage_args.contains(&a.as_str()),
                        "{}.{a}: {doc}",
                        inner.name
                    );
                }
            } else if inner.name == "endpoint" {
                for (a, _) in &inner.attrs {
                    assert!(
                        ENDPOINT.0.contains(&a.as_str()),
                        "endpoint.{a}: {}",
                        ENDPOINT.1
                    );
                }
            } else {
                assert!(
                    args.contains(&inner.name.as_str()),
                    "{}: block {} is not on {doc}",
                    c.name,
                    inner.name
                );
            }
        }
        for v in values(c) {
            if let Value::Call(f, _) = v {
                assert!(FUNCTIONS.0.contains(&f.as_str()), "{f}: {}", FUNCTIONS.1);
            }
        }
    }
    let ts = stage(component(&config, "loki.process"), "stage.timestamp");
    let format = ts.attr("format").and_then(Value::str).unwrap();
    assert!(
        TIME_FORMATS.0.contains(&format),
        "{format}: {}",
        TIME_FORMATS.1
    );
}

#[test]
fn the_alloy_components_are_wired_file_to_process_to_loki() {
    let config = config();
    let label = |name: &str| component(&config, name).label.clone().unwrap();
    let refs = |b: &Block, attr: &str| -> Vec<String> {
        let mut out = Vec::new();
        walk(b.attr(attr).unwrap(), &mut out);
        out.into_iter()
            .filter_map(|v| match v {
                Value::Ref(r) => Some(r.clone()),
                _ => None,
            })
            .collect()
    };
    let source = component(&config, "loki.source.file");
    let process = component(&config, "loki.process");
    assert_eq!(
        refs(source, "targets"),
        [format!(
            "local.file_match.{}.targets",
            label("local.file_match")
        )]
    );
    assert_eq!(
        refs(source, "forward_to"),
        [format!("loki.process.{}.receiver", label("loki.process"))]
    );
    assert_eq!(
        refs(process, "forward_to"),
        [format!("loki.write.{}.receiver", label("loki.write"))]
    );
    let endpoint = component(&config, "loki.write")
        .blocks("endpoint")
        .first()
        .copied();
    assert!(matches!(
        endpoint.and_then(|e| e.attr("url")),
        Some(Value::Call(f, _)) if f == "sys.env"
    ));
}

#[test]
fn the_alloy_paths_are_the_daemon_s_active_files_only() {
    use kube_event_logger::output_files::{Form, Naming, Rotated};
    let config = config();
    let targets = component(&config, "local.file_match")
        .attr("path_targets")
        .unwrap()
        .list();
    let patterns: Vec<&str> = targets
        .iter()
        .map(|t| {
            for (k, _) in t.object() {
                assert!(
                    TARGET_LABELS.0.contains(&k.as_str()),
                    "{k}: {}",
                    TARGET_LABELS.1
                );
            }
            t.object()
                .iter()
                .find(|(n, _)| n == "__path__")
                .and_then(|(_, v)| v.str())
                .unwrap()
        })
        .collect();
    let read_by_alloy = |path: &str| patterns.iter().any(|p| glob_match(p, path));
    let active = std::path::Path::new(kube_event_logger::cli::DEFAULT_OUTPUT);
    let name = active.file_name().unwrap().to_str().unwrap();
    let naming = Naming::new(name);
    for dir in [
        active.parent().unwrap().to_path_buf(),
        active.parent().unwrap().join("kube-event-logger-0"),
    ] {
        let at = |file: String| dir.join(file).to_string_lossy().into_owned();
        let rotated = |form| at(naming.file_name(Rotated { seq: 7, form }));
        assert!(
            read_by_alloy(&at(name.to_owned())),
            "{dir:?}: the active file"
        );
        // A rotated file is the active file renamed, already read through the open handle; a
        // second path would be read again from its start (positions are per path).
        for form in [Form::Plain, Form::Gz, Form::Temp] {
            assert!(!read_by_alloy(&rotated(form)), "{dir:?}: {form:?} rotated");
        }
        assert!(
            !read_by_alloy(&at(naming.list_sort() + "1-0")),
            "{dir:?}: LIST sort files"
        );
    }
    // Rotation renames the active file: the file name must not become a label (a new stream
    // per file).
    let process = component(&config, "loki.process");
    let dropped: Vec<&str> = stage(process, "stage.label_drop")
        .attr("values")
        .unwrap()
        .list()
        .iter()
        .filter_map(Value::str)
        .collect();
    assert_eq!(dropped, SOURCE_LABELS.0, "{}", SOURCE_LABELS.1);
}

/// `a.b.c` in a frame, as the JMESPath subset we use resolves it.
pub(crate) fn at_path<'a>(frame: &'a Json, path: &str) -> Option<&'a Json> {
    path.split('.')
        .try_fold(frame, |v, k| v.get(k))
        .filter(|v| !v.is_null())
}

fn expressions(process: &Block) -> Vec<(String, String)> {
    stage(process, "stage.json")
        .attr("expressions")
        .unwrap()
        .object()
        .iter()
        .map(|(k, v)| (k.clone(), v.str().unwrap().to_owned()))
        .collect()
}

#[test]
fn the_alloy_labels_are_few_and_bounded_and_the_rest_is_structured_metadata() {
    let config = config();
    let process = component(&config, "loki.process");
    let mut labels: BTreeSet<&str> = SOURCE_LABELS.0.iter().copied().collect();
    labels.extend(keys(stage(process, "stage.static_labels").attr("values")));
    labels.extend(keys(stage(process, "stage.labels").attr("values")));
    for d in stage(process, "stage.label_drop")
        .attr("values")
        .unwrap()
        .list()
    {
        labels.remove(d.str().unwrap());
    }
    assert_eq!(
        labels,
        STREAM_LABELS.iter().copied().collect(),
        "{LABELS_BP}"
    );
    for never in NEVER_LABELS {
        assert!(!labels.contains(never), "{never} as a label: {LABELS_BP}");
    }
    let metadata = keys(stage(process, "stage.structured_metadata").attr("values"));
    assert_eq!(
        metadata,
        METADATA.0.iter().copied().collect(),
        "{}",
        METADATA.1
    );

    // Each extracted label and metadata entry has a source in every realistic frame, and the
    // labels take few values: the streams are namespaces x 3 watch types x 2 event types.
    let exprs = expressions(process);
    let source = |name: &str| {
        exprs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, p)| p.clone())
            .unwrap_or_else(|| panic!("{name} is not extracted"))
    };
    let frames = realistic_frames();
    let mut streams = BTreeSet::new();
    for frame in &frames {
        let value = |name: &str| at_path(frame, &source(name)).and_then(Json::as_str);
        for name in keys(stage(process, "stage.labels").attr("values"))
            .iter()
            .chain(&metadata)
        {
            assert!(
                value(name).is_some_and(|v| !v.is_empty()),
                "{name} in {frame}"
            );
        }
        assert!(matches!(
            value("watch_type"),
            Some("ADDED" | "MODIFIED" | "DELETED")
        ));
        assert!(matches!(value("event_type"), Some("Normal" | "Warning")));
        streams.insert((value("namespace"), value("watch_type"), value("event_type")));
    }
    let namespaces: BTreeSet<_> = streams.iter().map(|s| s.0).collect();
    assert!(streams.len() <= namespaces.len() * 3 * 2);
    assert!(streams.len() < frames.len(), "streams are shared by events");
    // Static labels: the job, and the cluster from the environment.
    let statics = stage(process, "stage.static_labels")
        .attr("values")
        .unwrap();
    assert!(
        statics
            .object()
            .contains(&("job".into(), Value::Str("kube-event-logger".into())))
    );
    assert!(matches!(
        &statics.object().iter().find(|(k, _)| k == "cluster").unwrap().1,
        Value::Call(f, args) if f == "sys.env" && args == &[Value::Str("CLUSTER_NAME".into())]
    ));
}

#[test]
fn the_alloy_entry_time_is_the_event_time_the_daemon_and_logstash_use() {
    let config = config();
    let process = component(&config, "loki.process");
    let exprs = expressions(process);
    let template = stage(process, "stage.template");
    let ts = stage(process, "stage.timestamp");
    assert_eq!(template.attr("source"), ts.attr("source"));
    // `{{ or .a .b .c }}`: the first present of the named extracted values.
    let text = template.attr("template").and_then(Value::str).unwrap();
    let inner = text
        .trim()
        .strip_prefix("{{")
        .and_then(|t| t.strip_suffix("}}"))
        .unwrap()
        .trim();
    let names: Vec<&str> = inner
        .strip_prefix("or ")
        .unwrap()
        .split_whitespace()
        .map(|n| n.strip_prefix('.').unwrap())
        .collect();
    let paths: Vec<&str> = names
        .iter()
        .map(|n| exprs.iter().find(|(k, _)| k == n).unwrap().1.as_str())
        .collect();
    // The realistic frames, and every combination of the times an Event may carry.
    let mut frames = realistic_frames();
    for mask in 0..8u8 {
        let mut o = serde_json::json!({
            "metadata": {"namespace": "a", "resourceVersion": "1",
                         "creationTimestamp": "2026-01-01T00:00:00Z"},
        });
        if mask & 1 != 0 {
            o["series"] =
                serde_json::json!({"count": 2, "lastObservedTime": "2026-01-01T00:00:03.000003Z"});
        }
        if mask & 2 != 0 {
            o["lastTimestamp"] = "2026-01-01T00:00:02Z".into();
        }
        if mask & 4 != 0 {
            o["eventTime"] = "2026-01-01T00:00:01.000001Z".into();
        }
        frames.push(serde_json::json!({"type": "ADDED", "object": o}));
    }
    for frame in frames {
        let line = frame.to_string();
        let daemon = kube_event_logger::EventFrame::parse(line.as_bytes()).unwrap();
        let alloy = paths
            .iter()
            .find_map(|p| at_path(&frame, p).and_then(Json::as_str));
        assert_eq!(alloy, daemon.object.time(), "{line}");
        let t = alloy.unwrap();
        assert!(
            chrono_like_rfc3339(t),
            "{t} parses as {}: {}",
            TIME_FORMATS.0[1],
            TIME_FORMATS.1
        );
    }
}

/// The shape RFC3339Nano accepts: date, `T`, time, optional fraction, `Z` or an offset.
fn chrono_like_rfc3339(t: &str) -> bool {
    Regex::new(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$")
        .unwrap()
        .is_match(t)
}

/// A Loki outage holds Alloy's tailer on its file instead of dropping batches after ~8.5
/// minutes (`max_backoff_retries = 0`: infinite, grafana/alloy loki/write types.go); what is
/// still dropped (a batch Loki refuses) is alerted on, from Alloy's own metric, which the
/// PodMonitor scrapes on the overlay's port; the loss table has the rows that say so.
#[test]
fn a_loki_outage_is_retried_not_dropped_and_a_drop_is_alerted_on() {
    let config = config();
    let endpoint = component(&config, "loki.write").blocks("endpoint")[0];
    assert_eq!(endpoint.attr("max_backoff_retries"), Some(&Value::Num(0.0)));
    assert!(endpoint.attr("max_backoff_period").is_some());

    let rules = read("deploy/prometheus/kube-event-logger.rules.yml");
    let alert = rules
        .split("- alert: ")
        .find(|a| a.starts_with("KubeEventLoggerShipperDropping"))
        .expect("an alert on Alloy's dropped entries");
    assert!(alert.contains("loki_write_dropped_entries_total{container=\"alloy\"}"));
    let monitor = yaml("deploy/prometheus/podmonitor.yaml");
    let ports: Vec<&str> = monitor["spec"]["podMetricsEndpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["port"].as_str().unwrap())
        .collect();
    assert!(ports.contains(&"alloy-http"), "{ports:?}");
    let patch = read("deploy/overlays/loki/alloy-patch.yaml");
    assert!(
        patch.contains("- name: alloy-http"),
        "the port the PodMonitor names"
    );

    let doc = read("docs/loki.md");
    let rows: Vec<&str> = doc.lines().filter(|l| l.starts_with("| ")).collect();
    let row = |start: &str| {
        *rows
            .iter()
            .find(|r| r.starts_with(start))
            .unwrap_or_else(|| panic!("docs/loki.md has no row {start:?}"))
    };
    assert!(row("| Loki unavailable").contains("max_backoff_retries = 0"));
    assert!(row("| Loki refuses a batch").contains("KubeEventLoggerShipperDropping"));
    assert!(
        row("| Alloy restarted").contains("discarded"),
        "a restart loses the batch in flight"
    );
}
