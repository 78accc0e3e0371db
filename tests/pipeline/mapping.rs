//! The index template and its mappings against realistic documents: every field a frame
//! becomes is mapped with a type that fits, and the template composes as Elasticsearch does.

use super::*;

/// How a path resolves in a mapping.
#[derive(Debug, PartialEq)]
pub(crate) enum Mapped<'a> {
    Leaf(&'a str),
    /// Under a `flattened`/`flat_object` field or an object with `enabled: false`: kept in
    /// _source, deliberately not indexed field by field.
    Unindexed,
    Object,
    Missing,
}

pub(crate) fn resolve<'a>(mappings: &'a Value, path: &[&str]) -> Mapped<'a> {
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

pub(crate) fn fits(ty: &str, v: &Value) -> bool {
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
pub(crate) fn check_document(
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
pub(crate) fn realistic_frames() -> Vec<Value> {
    let mut frames: Vec<Value> = include_str!("../data/fixtures/frames.jsonl")
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
pub(crate) fn document(frame: &Value) -> Value {
    serde_json::json!({
        "@timestamp": "2026-11-22T10:00:00Z",
        "watch": { "type": frame["type"], "doc_id": "0123abcd", "occurrences": 1 },
        // The Elasticsearch output's data stream fields (data_stream_sync_fields, default on).
        "data_stream": { "type": "logs", "dataset": "kube_event_logger", "namespace": "default" },
        "k8s": { "event": frame["object"] },
        "cluster": { "name": "prod-1" },
        "tags": ["kube-event-logger"],
        "log": { "file": { "path": "/var/log/kube-event-logger/events.json" }, "offset": 1234 },
        "host": { "name": "node-1" },
    })
}

pub(crate) fn failure_document() -> Value {
    serde_json::json!({
        "@timestamp": "2026-11-22T10:00:00Z",
        "event": { "original": "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\"}}" },
        "error": { "message": "ERROR frame: too old" },
        "tags": ["kube-event-logger", "_jsonparsefailure"],
    })
}

pub(crate) fn es_mappings() -> Value {
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
