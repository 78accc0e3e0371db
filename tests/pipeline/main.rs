//! The pipelines (filebeat/, logstash/, es-templates/, kibana/, opensearch-dashboards/, loki/)
//! checked against themselves and against the daemon: every file parses, and the parts cannot drift apart unnoticed.

mod alloy;
#[path = "../support/events.rs"]
mod events;
mod ingest;
mod logstash;
mod loki;
mod products;

use std::path::{Path, PathBuf};

use serde_json::Value;

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn json(path: &str) -> Value {
    serde_json::from_str(&read(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn yaml(path: &str) -> Value {
    serde_saphyr::from_str(&read(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn files_under(dir: &str, ext: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![repo(dir)];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == ext) {
                out.push(
                    p.strip_prefix(repo(""))
                        .unwrap()
                        .to_string_lossy()
                        .into_owned(),
                );
            }
        }
    }
    out.sort();
    out
}

#[test]
fn every_json_yaml_ndjson_and_logstash_file_parses() {
    let mut checked = 0;
    let dirs = [
        "filebeat",
        "logstash",
        "es-templates",
        "kibana",
        "opensearch-dashboards",
        "loki",
        "deploy",
    ];
    for dir in dirs {
        if !repo(dir).exists() {
            continue;
        }
        for f in files_under(dir, "json") {
            json(&f);
            checked += 1;
        }
        // A Helm chart's templates are Go templates, not YAML: `helm lint` and the deploy
        // tests read them.
        for f in files_under(dir, "yml")
            .into_iter()
            .chain(files_under(dir, "yaml"))
            .filter(|f| !(f.starts_with("deploy/helm/") && f.contains("/templates/")))
        {
            yaml(&f);
            checked += 1;
        }
        for f in files_under(dir, "ndjson") {
            for (n, line) in read(&f).lines().enumerate() {
                serde_json::from_str::<Value>(line)
                    .unwrap_or_else(|e| panic!("{f}:{}: {e}", n + 1));
            }
            checked += 1;
        }
        for f in files_under(dir, "conf") {
            logstash::parse(&read(&f)).unwrap_or_else(|e| panic!("{f}: {e}"));
            checked += 1;
        }
    }
    assert!(checked >= 15, "only {checked} files");
}

// --- Mappings against realistic documents.

/// How a path resolves in a mapping.
#[derive(Debug, PartialEq)]
enum Mapped<'a> {
    Leaf(&'a str),
    /// Under a `flattened`/`flat_object` field or an object with `enabled: false`: kept in
    /// _source, deliberately not indexed field by field.
    Unindexed,
    Object,
    Missing,
}

fn resolve<'a>(mappings: &'a Value, path: &[&str]) -> Mapped<'a> {
    let mut node = mappings;
    for (i, seg) in path.iter().enumerate() {
        let Some(next) = node.get("properties").and_then(|p| p.get(*seg)) else {
            return Mapped::Missing;
        };
        node = next;
        let ty = node.get("type").and_then(Value::as_str);
        if matches!(ty, Some("flattened" | "flat_object"))
            || node.get("enabled") == Some(&Value::Bool(false))
        {
            return Mapped::Unindexed;
        }
        if let Some(t) = ty.filter(|t| *t != "object") {
            return if i + 1 == path.len() {
                Mapped::Leaf(t)
            } else {
                Mapped::Missing
            };
        }
    }
    Mapped::Object
}

fn fits(ty: &str, v: &Value) -> bool {
    match (ty, v) {
        (_, Value::Null) => true,
        ("keyword" | "constant_keyword", Value::String(_) | Value::Number(_) | Value::Bool(_)) => {
            true
        }
        ("match_only_text" | "text", Value::String(_)) => true,
        ("long", Value::Number(n)) => n.is_i64(),
        ("date", Value::String(s)) => s.parse::<jiff::Timestamp>().is_ok(),
        _ => false,
    }
}

/// Every leaf of `doc` must be mapped with a type its value fits, or deliberately unindexed.
fn check_document(
    mappings: &Value,
    doc: &Value,
    path: &mut Vec<String>,
    problems: &mut Vec<String>,
) {
    match doc {
        Value::Object(map) => {
            for (k, v) in map {
                path.push(k.clone());
                let segs: Vec<&str> = path.iter().map(String::as_str).collect();
                match resolve(mappings, &segs) {
                    Mapped::Unindexed => {}
                    Mapped::Missing => problems.push(format!("{} is not mapped", path.join("."))),
                    Mapped::Leaf(ty) => {
                        let values: Vec<&Value> = match v {
                            Value::Array(a) => a.iter().collect(),
                            one => vec![one],
                        };
                        for value in values {
                            if !fits(ty, value) {
                                problems.push(format!(
                                    "{} = {value} does not fit {ty}",
                                    path.join(".")
                                ));
                            }
                        }
                    }
                    Mapped::Object => check_document(mappings, v, path, problems),
                }
                path.pop();
            }
        }
        Value::Array(items) => items
            .iter()
            .for_each(|v| check_document(mappings, v, path, problems)),
        _ => {}
    }
}

/// Realistic frames: the wire fixtures (events.k8s.io-style eventTime-only events with series,
/// labels, annotations, managedFields, DELETED) plus the test server's events.
fn realistic_frames() -> Vec<Value> {
    let mut frames: Vec<Value> = include_str!("../fixtures/frames.jsonl")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for (i, ns) in ["default", "kube-system"].iter().enumerate() {
        let object = events::event_object(ns, &format!("web-{i}"), 100 + i as u64, 3);
        frames.push(serde_json::from_str(&events::frame("MODIFIED", &object)).unwrap());
    }
    let labelled = r#"{"type":"ADDED","object":{"kind":"Event","apiVersion":"v1","metadata":{"name":"x.1","generateName":"x.","namespace":"a","uid":"u","resourceVersion":"7","creationTimestamp":"2026-11-22T10:00:00Z","labels":{"app.kubernetes.io/name":"web","tier":"1"},"annotations":{"note":"{\"json\":true}"}},"involvedObject":{"kind":"Pod","name":"p"},"related":{"kind":"Node","name":"n1","apiVersion":"v1"},"reason":"R","message":"m","action":"Binding","source":{},"firstTimestamp":null,"lastTimestamp":null,"eventTime":"2026-11-22T10:00:00.123456Z","series":{"count":9,"lastObservedTime":"2026-11-22T10:05:00.000001Z"},"type":"Normal","reportingComponent":"default-scheduler","reportingInstance":"default-scheduler-node1"}}"#;
    frames.push(serde_json::from_str(labelled).unwrap());
    frames
}

/// The document Logstash makes of a frame (see logstash/pipeline/10-filter.conf).
fn document(frame: &Value) -> Value {
    serde_json::json!({
        "@timestamp": "2026-11-22T10:00:00Z",
        "watch": { "type": frame["type"], "doc_id": "0123abcd" },
        "k8s": { "event": frame["object"] },
        "cluster": { "name": "prod-1" },
        "tags": ["kube-event-logger"],
        "log": { "file": { "path": "/var/log/kube-event-logger/events.json" }, "offset": 1234 },
        "host": { "name": "node-1" },
    })
}

fn failure_document() -> Value {
    serde_json::json!({
        "@timestamp": "2026-11-22T10:00:00Z",
        "event": { "original": "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\"}}" },
        "error": { "message": "ERROR frame: too old" },
        "tags": ["kube-event-logger", "_jsonparsefailure"],
    })
}

fn es_mappings() -> Value {
    json("es-templates/component-template-mappings.json")["template"]["mappings"].clone()
}

#[test]
fn every_field_of_realistic_frames_is_mapped_with_a_fitting_type() {
    for (name, mappings) in [
        ("es-templates", es_mappings()),
        ("es-templates/opensearch", json("es-templates/opensearch/component-template-mappings.json")["template"]["mappings"].clone()),
    ] {
        let mut problems = Vec::new();
        for frame in realistic_frames() {
            check_document(&mappings, &document(&frame), &mut Vec::new(), &mut problems);
        }
        check_document(&mappings, &failure_document(), &mut Vec::new(), &mut problems);
        problems.sort();
        problems.dedup();
        assert!(problems.is_empty(), "{name}:\n{}", problems.join("\n"));
        assert_eq!(mappings["properties"]["k8s"]["properties"]["event"]["dynamic"], Value::Bool(false), "{name}");
        assert_eq!(resolve(&mappings, &["k8s", "event", "metadata", "managedFields", "manager"]), Mapped::Unindexed);
        assert_eq!(resolve(&mappings, &["k8s", "event", "metadata", "labels", "app"]), Mapped::Unindexed);
        assert_eq!(resolve(&mappings, &["k8s", "event", "count"]), Mapped::Leaf("long"));
        assert!(matches!(resolve(&mappings, &["k8s", "event", "message"]), Mapped::Leaf("match_only_text" | "text")));
    }
}

#[test]
fn the_mapping_check_catches_drift() {
    let mappings = es_mappings();
    let mut problems = Vec::new();
    let bad = serde_json::json!({"k8s": {"event": {"count": "many", "eventTime": "yesterday", "brandNew": 1}}});
    check_document(&mappings, &bad, &mut Vec::new(), &mut problems);
    assert_eq!(problems.len(), 3, "{problems:?}");
}

#[test]
fn the_index_template_composes_both_parts_above_the_builtin_priority() {
    for dir in ["es-templates", "es-templates/opensearch"] {
        let t = json(&format!("{dir}/index-template.json"));
        assert!(
            t["priority"].as_i64().unwrap() > 100,
            "{dir}: above logs-*-* (100)"
        );
        assert!(t["data_stream"].is_object());
        let parts: Vec<&str> = t["composed_of"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(
            parts,
            ["kube-event-logger-settings", "kube-event-logger-mappings"]
        );
        let patterns: Vec<&str> = t["index_patterns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        // The data streams the Logstash outputs write to.
        for stream in [
            "logs-kube_event_logger-default",
            "logs-kube_event_logger.failed-default",
        ] {
            assert!(
                patterns.iter().any(|p| glob_match(p, stream)),
                "{dir}: {stream} not covered by {patterns:?}"
            );
        }
    }
    let settings = json("es-templates/component-template-settings.json");
    let policy = settings["template"]["settings"]["index.lifecycle.name"]
        .as_str()
        .unwrap();
    assert_eq!(policy, "kube-event-logger");
    let ilm = json("es-templates/ilm-policy.json");
    assert!(ilm["policy"]["phases"]["hot"]["actions"]["rollover"].is_object());
    assert!(ilm["policy"]["phases"]["delete"]["actions"]["delete"].is_object());
    let ism = json("es-templates/opensearch/ism-policy.json");
    let ism_patterns = ism["policy"]["ism_template"][0]["index_patterns"]
        .as_array()
        .unwrap();
    // ISM matches backing indices by their data stream's name (see
    // the_ism_policy_attaches_to_the_data_streams_logstash_writes).
    assert!(
        ism_patterns
            .iter()
            .any(|p| glob_match(p.as_str().unwrap(), "logs-kube_event_logger-default"))
    );
}

// --- Logstash against the template.

fn logstash_sections(file: &str) -> Vec<logstash::Section> {
    logstash::parse(&read(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
}

#[test]
fn every_field_the_logstash_pipeline_reads_or_writes_is_in_the_template() {
    let mappings = es_mappings();
    let mut refs = Vec::new();
    for f in files_under("logstash", "conf") {
        refs.extend(logstash::field_refs(&logstash_sections(&f)));
    }
    refs.sort();
    refs.dedup();
    let mut missing = Vec::new();
    for r in &refs {
        let segs: Vec<&str> = r
            .trim_start_matches('[')
            .trim_end_matches(']')
            .split("][")
            .collect();
        if segs[0] == "@metadata" {
            continue;
        }
        if resolve(&mappings, &segs) == Mapped::Missing {
            missing.push(r.clone());
        }
    }
    assert!(
        missing.is_empty(),
        "fields used by logstash/ but not mapped: {missing:?}"
    );
    for expected in [
        "[watch][type]",
        "[k8s][event][metadata][uid]",
        "[k8s][event][metadata][resourceVersion]",
        "[k8s][event][series][lastObservedTime]",
        "[k8s][event][eventTime]",
        "[event][original]",
        "[@timestamp]",
    ] {
        assert!(
            refs.contains(&expected.to_string()),
            "{expected} not used: {refs:?}"
        );
    }
}

#[test]
fn the_logstash_filter_keeps_the_type_ids_versions_and_routes_failures() {
    let text = read("logstash/pipeline/10-filter.conf");
    // The time fields in the documented order of preference.
    let order: Vec<usize> = [
        "[series][lastObservedTime]",
        "[k8s][event][lastTimestamp]\" =>",
        "[k8s][event][eventTime]\" =>",
        "[metadata][creationTimestamp]\" =>",
    ]
    .iter()
    .map(|f| text.find(f).unwrap_or_else(|| panic!("{f}")))
    .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{order:?}");
    assert!(
        text.contains("concatenate_sources => true")
            && text.contains("target => \"[@metadata][doc_id]\"")
    );
    assert!(text.contains("drop {}"), "bookmarks are dropped");
    for out in [
        "logstash/pipeline/30-output-elasticsearch.conf",
        "logstash/pipeline/30-output-opensearch.conf",
    ] {
        let t = read(out);
        assert!(
            t.contains("document_id => \"%{[@metadata][doc_id]}\""),
            "{out}"
        );
        assert!(
            t.contains("kube_event_logger.failed"),
            "{out}: a failure stream"
        );
    }
    let ls = yaml("logstash/logstash.yml");
    assert_eq!(ls["queue.type"], "persisted");
    assert_eq!(ls["dead_letter_queue.enable"], true);
    let pipelines = yaml("logstash/pipelines.yml");
    let ours = pipelines
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["pipeline.id"] == "kube-event-logger")
        .unwrap();
    let path = ours["path.config"].as_str().unwrap();
    for part in ["05-input", "10-filter", "30-output-elasticsearch"] {
        assert!(path.contains(part), "{path}");
        assert!(repo(&format!("logstash/pipeline/{part}.conf")).exists());
    }
}

// --- Filebeat against the daemon's file naming.

/// Go's filepath.Match for the patterns we use (`*` within one path element, literals).
fn glob_match(pattern: &str, name: &str) -> bool {
    fn go(p: &[u8], n: &[u8]) -> bool {
        match p.split_first() {
            None => n.is_empty(),
            Some((b'*', rest)) => (0..=n.len())
                .take_while(|&i| i == 0 || n[i - 1] != b'/')
                .any(|i| go(rest, &n[i..])),
            Some((c, rest)) => n.first() == Some(c) && go(rest, &n[1..]),
        }
    }
    go(pattern.as_bytes(), name.as_bytes())
}

#[test]
fn the_filebeat_glob_takes_the_active_and_plain_rotated_files_only() {
    use kube_event_logger::output_files::{Form, Naming, Rotated};
    let active = Path::new(kube_event_logger::cli::DEFAULT_OUTPUT);
    let dir = active.parent().unwrap();
    let naming = Naming::new(active.file_name().unwrap().to_str().unwrap());
    let name = |form| {
        dir.join(naming.file_name(Rotated { seq: 12, form }))
            .to_string_lossy()
            .into_owned()
    };
    let node_input = yaml("filebeat/kube-event-logger.input.yml");
    let sidecar = yaml("filebeat/filebeat.yml");
    for (file, input) in [
        ("filebeat/kube-event-logger.input.yml", &node_input[0]),
        ("filebeat/filebeat.yml", &sidecar["filebeat.inputs"][0]),
    ] {
        assert_eq!(input["type"], "filestream", "{file}");
        assert_eq!(input["id"], "kube-event-logger", "{file}: a stable id");
        let paths: Vec<&str> = input["paths"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_str().unwrap())
            .collect();
        let excludes: Vec<regex::Regex> = input["prospector.scanner.exclude_files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| regex::Regex::new(r.as_str().unwrap()).unwrap())
            .collect();
        let harvested = |path: &str| {
            paths.iter().any(|p| glob_match(p, path)) && !excludes.iter().any(|r| r.is_match(path))
        };
        assert!(
            harvested(active.to_str().unwrap()),
            "{file}: the active file"
        );
        assert!(
            harvested(&name(Form::Plain)),
            "{file}: the newest rotated file"
        );
        assert!(
            !harvested(&name(Form::Gz)),
            "{file}: .gz files are excluded"
        );
        assert!(
            !harvested(&name(Form::Temp)),
            "{file}: compression temp files never match"
        );
        if file.ends_with("input.yml") {
            let replica = dir
                .join("kube-event-logger-1")
                .join(active.file_name().unwrap());
            assert!(
                harvested(replica.to_str().unwrap()),
                "{file}: a replica's own directory (deploy/base)"
            );
        }
        assert!(
            !harvested(&dir.join(naming.list_sort() + "4242-0").to_string_lossy()),
            "{file}: LIST sort files never match"
        );
        assert!(
            !harvested(&dir.join("other.json").to_string_lossy()),
            "{file}"
        );
        // Settings that could lose data are off; identity is by content.
        assert_eq!(input["close.on_state_change.removed"], false, "{file}");
        assert_eq!(input["close.on_state_change.renamed"], false, "{file}");
        assert_eq!(input["close.reader.on_eof"], false, "{file}");
        assert!(input.get("clean_inactive").is_none(), "{file}");
        assert!(input.get("file_identity.fingerprint").is_some(), "{file}");
        assert_eq!(input["tags"][0], "kube-event-logger");
        assert!(input["fields"]["cluster"]["name"].is_string());
    }
    assert!(sidecar["output.logstash"]["hosts"].is_array());
}

// --- Kibana objects against the template.

#[test]
fn kibana_objects_reference_only_mapped_fields_and_each_other() {
    saved_objects_reference_only_mapped_fields_and_each_other(
        "kibana/kube-event-logger.ndjson",
        &es_mappings(),
    );
}

#[test]
fn opensearch_dashboards_objects_reference_only_mapped_fields_and_each_other() {
    let mappings =
        json("es-templates/opensearch/component-template-mappings.json")["template"]["mappings"]
            .clone();
    saved_objects_reference_only_mapped_fields_and_each_other(
        "opensearch-dashboards/kube-event-logger.ndjson",
        &mappings,
    );
}

/// The newest migration of each saved-object type in OpenSearch Dashboards 2.x: an object
/// marked newer is refused at import ("a more recent version"), which is why Kibana 8 exports do
/// not load. Read from OpenSearch-Dashboards' sources: visualization_migrations.ts (7.10.0),
/// dashboard_migrations.ts (7.9.3), search_migrations.ts (7.9.3), index_pattern migrations
/// (7.6.0); the same versions the opensearch-migrations dashboardsSanitizer converts Kibana
/// objects down to.
const OSD_MIGRATIONS: [(&str, &str); 4] = [
    ("index-pattern", "7.6.0"),
    ("search", "7.9.3"),
    ("visualization", "7.10.0"),
    ("dashboard", "7.9.3"),
];

#[test]
fn opensearch_dashboards_objects_are_in_its_format_and_mirror_the_kibana_ones() {
    let objects = |path: &str| -> Vec<Value> {
        read(path)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let osd = objects("opensearch-dashboards/kube-event-logger.ndjson");
    let kibana = objects("kibana/kube-event-logger.ndjson");
    assert_eq!(osd.len(), kibana.len());
    for (o, k) in osd.iter().zip(&kibana) {
        let ty = o["type"].as_str().unwrap();
        assert_eq!((&o["type"], &o["id"]), (&k["type"], &k["id"]));
        assert_eq!(o["attributes"]["title"], k["attributes"]["title"]);
        assert!(o.get("coreMigrationVersion").is_none() && o.get("typeMigrationVersion").is_none());
        let (_, newest) = OSD_MIGRATIONS.iter().find(|(t, _)| *t == ty).unwrap();
        assert_eq!(o["migrationVersion"][ty], *newest, "{}", o["id"]);
        assert_eq!(o["references"], k["references"]);
        if ty == "visualization" {
            let vis = |x: &Value| -> Value {
                serde_json::from_str(x["attributes"]["visState"].as_str().unwrap()).unwrap()
            };
            assert_eq!(vis(o)["aggs"], vis(k)["aggs"], "the same aggregations");
        }
        if ty == "dashboard" {
            let panels: Vec<Value> =
                serde_json::from_str(o["attributes"]["panelsJSON"].as_str().unwrap()).unwrap();
            for p in &panels {
                assert_eq!(p["version"], "7.10.2");
                assert!(
                    p.get("type").is_none(),
                    "7.x panels keep their type in references"
                );
            }
            let options: Value =
                serde_json::from_str(o["attributes"]["optionsJSON"].as_str().unwrap()).unwrap();
            assert!(options.get("syncColors").is_none(), "a Kibana 8 option");
        }
    }
}

fn saved_objects_reference_only_mapped_fields_and_each_other(path: &str, mappings: &Value) {
    let objects: Vec<Value> = read(path)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let ids: Vec<(&str, &str)> = objects
        .iter()
        .map(|o| (o["type"].as_str().unwrap(), o["id"].as_str().unwrap()))
        .collect();
    let mut fields: Vec<(String, bool)> = Vec::new(); // (field, must be aggregatable)
    for o in &objects {
        for r in o["references"].as_array().unwrap() {
            let target = (r["type"].as_str().unwrap(), r["id"].as_str().unwrap());
            assert!(
                ids.contains(&target),
                "{} refers to missing {target:?}",
                o["id"]
            );
        }
        let a = &o["attributes"];
        match o["type"].as_str().unwrap() {
            "index-pattern" => {
                assert_eq!(a["timeFieldName"], "@timestamp");
                assert!(glob_match(
                    a["title"].as_str().unwrap(),
                    "logs-kube_event_logger-default"
                ));
            }
            "search" => {
                for c in a["columns"].as_array().unwrap() {
                    fields.push((c.as_str().unwrap().to_string(), false));
                }
                fields.push((a["sort"][0][0].as_str().unwrap().to_string(), true));
            }
            "visualization" => {
                let vis: Value = serde_json::from_str(a["visState"].as_str().unwrap()).unwrap();
                for agg in vis["aggs"].as_array().unwrap() {
                    if let Some(f) = agg["params"]["field"].as_str() {
                        fields.push((f.to_string(), true));
                    }
                }
            }
            "dashboard" => {
                let panels: Vec<Value> =
                    serde_json::from_str(a["panelsJSON"].as_str().unwrap()).unwrap();
                assert!(
                    panels.len() >= 6,
                    "over time, warning count, by namespace, reasons, objects, latest"
                );
            }
            other => panic!("unexpected object type {other}"),
        }
        if let Some(src) = a["kibanaSavedObjectMeta"]["searchSourceJSON"].as_str() {
            let src: Value = serde_json::from_str(src).unwrap();
            let query = src["query"]["query"].as_str().unwrap_or("");
            for clause in query.split(" and ").filter(|c| c.contains(':')) {
                fields.push((clause.split(':').next().unwrap().trim().to_string(), false));
            }
        }
    }
    assert!(fields.len() > 10);
    for (field, aggregatable) in fields {
        let segs: Vec<&str> = field.split('.').collect();
        match resolve(mappings, &segs) {
            Mapped::Leaf(ty) => assert!(
                !aggregatable || matches!(ty, "keyword" | "date" | "long"),
                "{path}: {field} ({ty}) cannot be aggregated"
            ),
            other => panic!("{path} uses {field}, which is {other:?} in the template"),
        }
    }
}

// --- The install script against a local server.

/// A request the stand-in for Elasticsearch saw: method, path, Authorization, JSON body.
type Request = (String, String, Option<String>, Value);

/// The stand-in for Elasticsearch/OpenSearch: answers 200 to writes; to the GET of the ISM
/// policy, 404, or (when `existing`) the stored policy with its sequence number and term.
/// Paths are recorded with their query.
async fn stand_in(
    existing: bool,
) -> (
    std::net::SocketAddr,
    std::sync::Arc<std::sync::Mutex<Vec<Request>>>,
    tokio::task::JoinHandle<()>,
) {
    use std::sync::{Arc, Mutex};
    let seen: Arc<Mutex<Vec<Request>>> = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let s = seen.clone();
    let server = tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let s = s.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| {
                        let s = s.clone();
                        async move {
                            use http_body_util::BodyExt;
                            let method = req.method().to_string();
                            let path = req.uri().to_string();
                            let auth = req
                                .headers()
                                .get("authorization")
                                .map(|v| v.to_str().unwrap().to_string());
                            let body = req.into_body().collect().await.unwrap().to_bytes();
                            let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                            let (status, reply): (u16, &'static [u8]) = match method.as_str() {
                                "GET" if existing => (
                                    200,
                                    b"{\"_id\":\"kube-event-logger\",\"_version\":3,\"_seq_no\":7,\"_primary_term\":2,\"policy\":{}}",
                                ),
                                "GET" => (404, b"{}"),
                                _ => (200, b"{\"acknowledged\":true}"),
                            };
                            s.lock().unwrap().push((method, path, auth, body));
                            Ok::<_, std::convert::Infallible>(
                                hyper::Response::builder()
                                    .status(status)
                                    .body(http_body_util::Full::new(bytes::Bytes::from_static(
                                        reply,
                                    )))
                                    .unwrap(),
                            )
                        }
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    (addr, seen, server)
}

/// Runs `es-templates/install.sh http://ADDR EXTRA…` off the async runtime; checks it succeeded.
async fn install_sh(addr: std::net::SocketAddr, extra: &'static [&'static str]) {
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("bash")
            .arg(repo("es-templates/install.sh"))
            .arg(format!("http://{addr}"))
            .args(extra)
            .env("ES_USER", "elastic")
            .env("ES_PASSWORD", "s3cret")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn install_sh_puts_the_policy_and_templates_in_order() {
    if std::process::Command::new("curl")
        .arg("--version")
        .output()
        .is_err()
    {
        panic!("curl is needed (.ci/run installs it)");
    }
    let (addr, seen, server) = stand_in(false).await;
    install_sh(addr, &[]).await;
    let got = std::mem::take(&mut *seen.lock().unwrap());
    let paths: Vec<&str> = got.iter().map(|(_, p, _, _)| p.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/_ilm/policy/kube-event-logger",
            "/_component_template/kube-event-logger-settings",
            "/_component_template/kube-event-logger-mappings",
            "/_index_template/kube-event-logger",
            "/_ingest/pipeline/kube-event-logger"
        ]
    );
    assert!(
        got.iter()
            .all(|(m, _, auth, _)| m == "PUT"
                && auth.as_deref() == Some("Basic ZWxhc3RpYzpzM2NyZXQ="))
    );
    assert_eq!(got[3].3, json("es-templates/index-template.json"));
    assert_eq!(
        got[2].3,
        json("es-templates/component-template-mappings.json")
    );

    install_sh(addr, &["--opensearch"]).await;
    let got = std::mem::take(&mut *seen.lock().unwrap());
    let puts: Vec<&str> = got
        .iter()
        .filter(|(m, ..)| m == "PUT")
        .map(|(_, p, _, _)| p.as_str())
        .collect();
    assert_eq!(puts[0], "/_plugins/_ism/policies/kube-event-logger");
    assert_eq!(
        got.iter()
            .find(|(_, p, ..)| p.ends_with("mappings"))
            .unwrap()
            .3,
        json("es-templates/opensearch/component-template-mappings.json")
    );
    let bad = std::process::Command::new("bash")
        .arg(repo("es-templates/install.sh"))
        .arg("http://127.0.0.1:9")
        .arg("--bogus")
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn install_sh_updates_an_existing_ism_policy_and_attaches_it_to_existing_indices() {
    let (addr, seen, server) = stand_in(true).await;
    install_sh(addr, &["--opensearch"]).await;
    let got = std::mem::take(&mut *seen.lock().unwrap());
    let update = got
        .iter()
        .find(|(m, p, ..)| m == "PUT" && p.starts_with("/_plugins/_ism/policies/"))
        .expect("the existing policy is updated, not left as it was");
    assert_eq!(
        update.1,
        "/_plugins/_ism/policies/kube-event-logger?if_seq_no=7&if_primary_term=2"
    );
    assert_eq!(update.3, json("es-templates/opensearch/ism-policy.json"));
    let attach = got
        .iter()
        .find(|(m, p, ..)| m == "POST" && p.starts_with("/_plugins/_ism/add/"))
        .expect("backing indices made before the fix get the policy");
    assert_eq!(attach.1, "/_plugins/_ism/add/.ds-logs-kube_event_logger*");
    assert_eq!(attach.3["policy_id"], "kube-event-logger");
    server.abort();
}

/// OpenSearch's ISM matches a data stream's backing index by the data stream's name
/// (index-management `ManagedIndexCoordinator.findIndexLookupName`): a `.ds-…` pattern never
/// attaches, and nothing rolls over or is deleted.
#[test]
fn the_ism_policy_attaches_to_the_data_streams_logstash_writes() {
    let policy = json("es-templates/opensearch/ism-policy.json");
    let patterns: Vec<&str> = policy["policy"]["ism_template"][0]["index_patterns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    let output = read("logstash/pipeline/30-output-opensearch.conf");
    for stream in [
        "logs-kube_event_logger-default",
        "logs-kube_event_logger.failed-default",
    ] {
        let prefix = stream.trim_end_matches("default");
        assert!(
            output.contains(&format!(
                "index => \"{prefix}${{DATA_STREAM_NAMESPACE:default}}\""
            )),
            "{stream}"
        );
        assert!(
            patterns.iter().any(|p| glob_match(p, stream)),
            "{stream} matches none of {patterns:?}"
        );
    }
    assert!(
        patterns.iter().all(|p| !p.starts_with(".ds-")),
        "{patterns:?}"
    );
}

// --- The files against what the products accept (tests/pipeline/products.rs).

/// Every plugin in a pipeline file, with its options, wherever it stands (inside conditionals).
fn plugins(file: &str) -> Vec<logstash::Plugin> {
    fn walk(items: &[logstash::Item], out: &mut Vec<logstash::Plugin>) {
        for item in items {
            match item {
                logstash::Item::Plugin(p) => out.push(p.clone()),
                logstash::Item::Branch(arms) => {
                    for (_, body) in arms {
                        walk(body, out);
                    }
                }
            }
        }
    }
    let mut out = Vec::new();
    for section in logstash_sections(file) {
        walk(&section.items, &mut out);
    }
    out
}

fn option<'a>(p: &'a logstash::Plugin, name: &str) -> Option<&'a logstash::Value> {
    p.attributes.iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

fn strings_in(v: Option<&logstash::Value>) -> Vec<String> {
    match v {
        Some(logstash::Value::Array(items)) => items
            .iter()
            .filter_map(|i| match i {
                logstash::Value::Str(s) | logstash::Value::Bare(s) => Some(s.clone()),
                _ => None,
            })
            .collect(),
        Some(logstash::Value::Str(s)) | Some(logstash::Value::Bare(s)) => vec![s.clone()],
        _ => Vec::new(),
    }
}

#[test]
fn every_logstash_yml_key_exists_in_every_claimed_logstash() {
    let yml = yaml("logstash/logstash.yml");
    let keys: Vec<&str> = yml
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let bad = products::unknown(keys, products::LOGSTASH_YML, "Logstash");
    assert!(bad.is_empty(), "{bad:#?}");
    // The monitoring API has no authentication here: it stays on loopback.
    assert_eq!(yml["api.http.host"], "127.0.0.1");
}

#[test]
fn every_output_and_input_option_exists_in_its_plugin() {
    for file in files_under("logstash", "conf") {
        for p in plugins(&file) {
            let Some((_, table)) = products::PLUGIN_OPTIONS.iter().find(|(n, _)| *n == p.name)
            else {
                continue; // filters: checked by the field tests above
            };
            let names = p.attributes.iter().map(|(k, _)| k.as_str());
            let bad = products::unknown(names, table, "Logstash");
            assert!(bad.is_empty(), "{file}: {} {bad:#?}", p.name);
        }
    }
}

#[test]
fn a_replayed_id_is_not_logged_and_opensearch_installs_no_template_of_its_own() {
    let conflict = "version_conflict_engine_exception";
    for p in plugins("logstash/pipeline/30-output-elasticsearch.conf") {
        if option(&p, "document_id").is_some() {
            let silenced = strings_in(option(&p, "silence_errors_in_log"));
            assert!(silenced.iter().any(|s| s == conflict), "{silenced:?}");
        }
    }
    let outputs = plugins("logstash/pipeline/30-output-opensearch.conf");
    assert!(!outputs.is_empty());
    for p in outputs {
        assert_eq!(
            option(&p, "manage_template"),
            Some(&logstash::Value::Bare("false".into())),
            "the plugin would install its own logstash-* template"
        );
        if option(&p, "document_id").is_some() {
            let quiet = strings_in(option(&p, "failure_type_logging_whitelist"));
            assert!(quiet.iter().any(|s| s == conflict), "{quiet:?}");
        }
    }
}

#[test]
fn every_filebeat_input_option_exists_in_every_claimed_filebeat() {
    fn keys(v: &Value, prefix: &str, out: &mut Vec<String>) {
        // Dotted keys are Filebeat's own; `fields` holds ours.
        for (k, v) in v.as_object().into_iter().flatten() {
            let name = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            if v.is_object() && name != "fields" {
                keys(v, &name, out);
            } else {
                out.push(name);
            }
        }
    }
    let node = yaml("filebeat/kube-event-logger.input.yml");
    let sidecar = yaml("filebeat/filebeat.yml");
    for input in node
        .as_array()
        .unwrap()
        .iter()
        .chain(sidecar["filebeat.inputs"].as_array().unwrap())
    {
        let mut names = Vec::new();
        keys(input, "", &mut names);
        let bad = products::unknown(
            names.iter().map(String::as_str),
            products::FILESTREAM_OPTIONS,
            "Filebeat",
        );
        assert!(bad.is_empty(), "{bad:#?}");
    }
}

#[test]
fn data_streams_are_created_where_auto_create_is_off_and_huge_values_do_not_fail_documents() {
    // Elasticsearch 7.11+: `allow_auto_create` on the index template wins over
    // action.auto_create_index: false (index templates reference).
    assert_eq!(
        json("es-templates/index-template.json")["allow_auto_create"],
        true
    );
    // A flattened value over 32 KB is an "immense term" and fails the whole document unless
    // ignore_above caps it (flattened field type reference); 8191 UTF-8 characters fit.
    let mappings = es_mappings();
    let meta = &mappings["properties"]["k8s"]["properties"]["event"]["properties"]["metadata"]["properties"];
    for field in ["labels", "annotations"] {
        assert_eq!(meta[field]["type"], "flattened", "{field}");
        let cap = meta[field]["ignore_above"].as_u64().unwrap_or(u64::MAX);
        assert!(cap <= 8191, "{field}: ignore_above {cap}");
    }
}

#[test]
fn a_bad_data_stream_namespace_stops_the_pipeline_at_start() {
    let filter = read("logstash/pipeline/10-filter.conf");
    let rule = filter
        .split_once("ns.match?(/")
        .and_then(|(_, rest)| rest.split_once("/)"))
        .expect("the filter checks DATA_STREAM_NAMESPACE")
        .0;
    assert!(filter.contains("ENV.fetch('DATA_STREAM_NAMESPACE', 'default')"));
    assert!(filter.contains("raise ArgumentError"));
    let rule = regex::Regex::new(&rule.replace("\\A", "^").replace("\\z", "$")).unwrap();
    // Elasticsearch's data stream naming scheme: lowercase, no `-`, at most 100 bytes.
    for ok in ["default", "prod", "eu_west_1"] {
        assert!(rule.is_match(ok), "{ok}");
    }
    let long = "x".repeat(101);
    for bad in ["Prod", "team-a", "", "a b", "a:b", long.as_str()] {
        assert!(!rule.is_match(bad), "{bad}");
    }
    // Both outputs build the names from the same variable and default.
    for out in ["30-output-elasticsearch", "30-output-opensearch"] {
        assert!(
            read(&format!("logstash/pipeline/{out}.conf"))
                .contains("${DATA_STREAM_NAMESPACE:default}")
        );
    }
}

#[test]
fn the_document_id_is_a_searchable_keyword_for_collapsing_duplicates() {
    let filter = read("logstash/pipeline/10-filter.conf");
    assert!(filter.contains("\"[@metadata][doc_id]\" => \"[watch][doc_id]\""));
    for mappings in [
        es_mappings(),
        json("es-templates/opensearch/component-template-mappings.json")["template"]["mappings"]
            .clone(),
    ] {
        assert_eq!(
            mappings["properties"]["watch"]["properties"]["doc_id"]["type"],
            "keyword"
        );
    }
}

/// The README's compatibility table, as (product, lowest, highest).
fn readme_compatibility() -> Vec<(String, String, String)> {
    let readme = read("README.md");
    let table = readme
        .split_once("### Compatibility")
        .expect("a Compatibility section")
        .1;
    table
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2)
        .map(|row| {
            let cells: Vec<String> = row
                .split('|')
                .map(|c| c.trim().trim_matches('`').to_string())
                .collect();
            (cells[1].clone(), cells[2].clone(), cells[3].clone())
        })
        .collect()
}

#[test]
fn the_readme_claims_the_versions_the_files_are_checked_for() {
    let claimed = readme_compatibility();
    let expected: Vec<(String, String, String)> = products::CLAIMS
        .iter()
        .map(|c| {
            (
                c.product.to_string(),
                c.lowest.to_string(),
                c.highest.to_string(),
            )
        })
        .collect();
    assert_eq!(claimed, expected);
    // Kibana refuses saved objects whose coreMigrationVersion is newer than itself.
    let kibana = products::claim("Kibana");
    for line in read("kibana/kube-event-logger.ndjson").lines() {
        let object: Value = serde_json::from_str(line).unwrap();
        let core = object["coreMigrationVersion"].as_str().unwrap();
        assert!(
            products::version(core) <= products::version(kibana.lowest),
            "{} carries {core}, newer than Kibana {}",
            object["id"],
            kibana.lowest
        );
    }
    // flat_object handles dotted keys (app.kubernetes.io/name) from OpenSearch 2.12 on.
    assert!(products::version(products::claim("OpenSearch").lowest) >= (2, 12));
}

/// An existing Filebeat's other events share port 5044: only events tagged as ours enter our
/// pipeline; the rest pass to the operator's pipeline untouched.
#[test]
fn only_events_tagged_as_ours_enter_our_pipeline() {
    let beats_inputs: Vec<String> = files_under("logstash", "conf")
        .into_iter()
        .filter(|f| plugins(f).iter().any(|p| p.name == "beats"))
        .collect();
    assert_eq!(
        beats_inputs,
        ["logstash/pipeline/00-distributor.conf"],
        "one beats input"
    );
    let distributor = read("logstash/pipeline/00-distributor.conf");
    let tag = "kube-event-logger";
    assert!(
        distributor.contains(&format!("if \"{tag}\" in [tags] {{")),
        "routes by tag"
    );
    let targets: Vec<Vec<String>> = plugins("logstash/pipeline/00-distributor.conf")
        .iter()
        .filter(|p| p.name == "pipeline")
        .map(|p| strings_in(option(p, "send_to")))
        .collect();
    assert_eq!(
        targets,
        [
            vec![tag.to_string()],
            vec!["${OTHER_BEATS_PIPELINE:beats-other}".to_string()]
        ],
        "ours, then everything else"
    );
    // Filebeat tags what it reads from our file with exactly that tag.
    let node = yaml("filebeat/kube-event-logger.input.yml");
    let sidecar = yaml("filebeat/filebeat.yml");
    for input in [&node[0], &sidecar["filebeat.inputs"][0]] {
        assert!(
            input["tags"].as_array().unwrap().iter().any(|t| t == tag),
            "{input}"
        );
    }
    // Our pipeline listens where the distributor sends; the other address has a pipeline.
    let ours = plugins("logstash/pipeline/05-input.conf");
    assert_eq!(strings_in(option(&ours[0], "address")), [tag]);
    let pipelines = yaml("logstash/pipelines.yml");
    let other = pipelines
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["pipeline.id"] == "beats-other")
        .expect("a beats-other pipeline, so unrouted events never wait");
    assert!(
        other["config.string"]
            .as_str()
            .unwrap()
            .contains("address => \"beats-other\"")
    );
}

#[test]
fn the_ingest_pipeline_is_the_processor_table() {
    let pipeline = json("es-templates/ingest-pipeline.json");
    let processors = pipeline["processors"].as_array().unwrap();
    assert_eq!(processors.len(), ingest::PROCESSORS.len());
    for (i, (json, known)) in processors.iter().zip(ingest::PROCESSORS).enumerate() {
        let (kind, body) = json.as_object().unwrap().iter().next().unwrap();
        assert_eq!(kind, known.kind, "processor {i}");
        assert_eq!(
            body["if"].as_str(),
            known.condition,
            "processor {i}: condition"
        );
        if !known.field.is_empty() {
            let field = match &body["field"] {
                Value::Array(a) => a[0].clone(),
                Value::Null => body["fields"][0].clone(),
                one => one.clone(),
            };
            assert_eq!(field, known.field, "processor {i}: field");
        }
        if !known.target.is_empty() {
            assert_eq!(body["target_field"], known.target, "processor {i}: target");
        }
    }
}

#[test]
fn the_ingest_pipeline_makes_the_documents_the_logstash_filter_makes() {
    let filebeat = |line: String| {
        serde_json::json!({
            "@timestamp": "2026-11-22T10:00:01Z",
            "message": line,
            "cluster": { "name": "prod-1" },
            "tags": ["kube-event-logger"],
            "log": { "file": { "path": "/var/log/kube-event-logger/events.json" }, "offset": 1234 },
            "host": { "name": "node-1" },
        })
    };
    let mut mappings_problems = Vec::new();
    for frame in realistic_frames() {
        let doc = ingest::run(filebeat(frame.to_string())).expect("a data frame is kept");
        let (mut got, mut want) = (Vec::new(), Vec::new());
        ingest::leaves(&doc, "", &mut got);
        ingest::leaves(&document(&frame), "", &mut want);
        got.sort();
        want.sort();
        assert_eq!(got, want, "same fields as the Logstash filter");
        let mut event = frame["object"].clone();
        event["metadata"]
            .as_object_mut()
            .unwrap()
            .remove("managedFields");
        assert_eq!(doc["k8s"]["event"], event);
        assert_eq!(doc["watch"]["type"], frame["type"]);
        check_document(
            &es_mappings(),
            &doc,
            &mut Vec::new(),
            &mut mappings_problems,
        );
    }
    assert!(mappings_problems.is_empty(), "{mappings_problems:?}");
    // The best event time, in the Logstash filter's order.
    let series = realistic_frames()
        .into_iter()
        .find(|f| f["object"]["series"].is_object())
        .unwrap();
    let doc = ingest::run(filebeat(series.to_string())).unwrap();
    assert_eq!(
        doc["@timestamp"],
        series["object"]["series"]["lastObservedTime"]
    );
    // Bookmarks are dropped; ERROR frames and garbage go to the failure stream, raw line kept.
    let bookmark =
        r#"{"type":"BOOKMARK","object":{"kind":"Event","metadata":{"resourceVersion":"9"}}}"#;
    assert!(ingest::run(filebeat(bookmark.into())).is_none());
    for (line, why) in [
        (
            r#"{"type":"ERROR","object":{"kind":"Status","message":"too old","code":410}}"#,
            "ERROR frame: too old",
        ),
        (
            "{\"type\":\"ADDED\",\"object\":{\"kind\":\"Event\" this is not json",
            "not a watch frame",
        ),
        (r#"{"kind":"Event"}"#, "not a watch frame"),
    ] {
        let doc = ingest::run(filebeat(line.into())).unwrap();
        assert_eq!(doc["error"]["message"], why, "{line}");
        assert_eq!(doc["event"]["original"], line);
        assert_eq!(doc["data_stream"]["dataset"], "kube_event_logger.failed");
        assert!(doc.get("_frame").is_none() && doc.get("k8s").is_none());
    }
}

#[test]
fn the_readme_input_for_filebeat_to_elasticsearch_is_ours_plus_pipeline_and_index() {
    let readme = read("README.md");
    let block = readme
        .split_once("<!-- filebeat-to-elasticsearch-input")
        .and_then(|(_, rest)| rest.split_once("```yaml\n"))
        .and_then(|(_, rest)| rest.split_once("```"))
        .expect("the README shows the input")
        .0;
    let shown: Value = serde_saphyr::from_str(block).unwrap();
    let mut shown = shown[0].clone();
    let options = shown.as_object_mut().unwrap();
    assert_eq!(options.remove("pipeline").unwrap(), "kube-event-logger");
    let index = options.remove("index").unwrap();
    assert!(
        index
            .as_str()
            .unwrap()
            .starts_with("logs-kube_event_logger-"),
        "{index}"
    );
    let mut ours = yaml("filebeat/kube-event-logger.input.yml")[0].clone();
    let ours = ours.as_object_mut().unwrap();
    // Ours also sets what the reference manifests set already or need not.
    for extra in [
        "enabled",
        "prospector.scanner.check_interval",
        "fields",
        "fields_under_root",
    ] {
        ours.remove(extra);
    }
    assert_eq!(
        &*options, &*ours,
        "the README's input drifted from filebeat/"
    );
    let pipeline = json("es-templates/ingest-pipeline.json");
    assert!(pipeline["processors"].as_array().unwrap().len() > 5);
    assert!(
        read("es-templates/install.sh")
            .contains("_ingest/pipeline/kube-event-logger ingest-pipeline.json")
    );
}

#[test]
fn every_template_policy_mapping_and_saved_object_field_exists_in_every_claimed_version() {
    let check = |files: &[&str], table: &[products::Known], product: &str| {
        for file in files {
            let mut paths = Vec::new();
            products::key_paths(
                &json(file),
                "",
                &["template.mappings", "_meta", "policy._meta"],
                &mut paths,
            );
            paths.sort();
            paths.dedup();
            let bad = products::unknown(paths.iter().map(String::as_str), table, product);
            assert!(bad.is_empty(), "{file}: {bad:#?}");
        }
    };
    check(
        &[
            "es-templates/index-template.json",
            "es-templates/component-template-settings.json",
            "es-templates/component-template-mappings.json",
            "es-templates/ilm-policy.json",
        ],
        products::ES_TEMPLATE_KEYS,
        "Elasticsearch",
    );
    check(
        &[
            "es-templates/opensearch/index-template.json",
            "es-templates/opensearch/component-template-settings.json",
            "es-templates/opensearch/component-template-mappings.json",
            "es-templates/opensearch/ism-policy.json",
        ],
        products::OS_TEMPLATE_KEYS,
        "OpenSearch",
    );
    fn types(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(map) => {
                if let Some(Value::String(t)) = map.get("type") {
                    out.push(t.clone());
                }
                map.values().for_each(|v| types(v, out));
            }
            Value::Array(items) => items.iter().for_each(|v| types(v, out)),
            _ => {}
        }
    }
    for (file, table, product) in [
        (
            "es-templates/component-template-mappings.json",
            products::ES_FIELD_TYPES,
            "Elasticsearch",
        ),
        (
            "es-templates/opensearch/component-template-mappings.json",
            products::OS_FIELD_TYPES,
            "OpenSearch",
        ),
    ] {
        let mut used = Vec::new();
        types(&json(file)["template"]["mappings"], &mut used);
        used.sort();
        used.dedup();
        let bad = products::unknown(used.iter().map(String::as_str), table, product);
        assert!(bad.is_empty(), "{file}: {bad:#?}");
    }
    for line in read("kibana/kube-event-logger.ndjson").lines() {
        let object: Value = serde_json::from_str(line).unwrap();
        let keys = object.as_object().unwrap().keys().map(String::as_str);
        let bad = products::unknown(keys, products::KIBANA_OBJECT_KEYS, "Kibana");
        assert!(bad.is_empty(), "{bad:#?}");
        let kind = object["type"].as_str().unwrap();
        let bad = products::unknown([kind], products::KIBANA_TYPES, "Kibana");
        assert!(bad.is_empty(), "{bad:#?}");
    }
}
