//! es-templates/ingest-pipeline.json cannot run here, so each of its processors is listed with
//! what it does (its condition as written, and its effect as code), the table is checked against
//! the JSON, and the table is run on realistic frames: the documents must have the fields the
//! Logstash filter gives them.

use serde_json::{Map, Value, json};

/// One processor: its type, its `if` as written in the JSON, its field and target, and its
/// effect on a document (`false`: the document is dropped).
pub struct Processor {
    pub kind: &'static str,
    pub condition: Option<&'static str>,
    pub field: &'static str,
    pub target: &'static str,
    pub apply: fn(&mut Value) -> bool,
}

fn get<'a>(doc: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.')
        .try_fold(doc, |v, k| v.get(k))
        .filter(|v| !v.is_null())
}

fn take(doc: &mut Value, path: &str) -> Option<Value> {
    let (parent, last) = match path.rsplit_once('.') {
        Some((p, l)) => (p.split('.').try_fold(&mut *doc, |v, k| v.get_mut(k))?, l),
        None => (doc, path),
    };
    parent.as_object_mut()?.remove(last)
}

fn put(doc: &mut Value, path: &str, value: Value) {
    let mut at = doc;
    let mut parts = path.split('.').peekable();
    while let Some(k) = parts.next() {
        let map = at.as_object_mut().unwrap();
        if parts.peek().is_none() {
            map.insert(k.to_string(), value);
            return;
        }
        at = map.entry(k).or_insert_with(|| Value::Object(Map::new()));
    }
}

fn failed(doc: &Value) -> bool {
    get(doc, "error.message").is_some()
}

/// The event's time, as the four date processors pick it.
fn time_from(doc: &mut Value, field: &str) -> bool {
    if let Some(t) = get(doc, field).cloned() {
        put(doc, "@timestamp", t);
    }
    true
}

pub const PROCESSORS: &[Processor] = &[
    Processor {
        kind: "set",
        condition: None,
        field: "cluster.name",
        target: "",
        apply: |d| {
            // override: false — Filebeat's value stays; a document without one gets the default.
            if get(d, "cluster.name").is_none() {
                put(d, "cluster.name", json!("kubernetes"));
            }
            true
        },
    },
    Processor {
        kind: "json",
        condition: None,
        field: "message",
        target: "_frame",
        apply: |d| {
            match get(d, "message")
                .and_then(Value::as_str)
                .map(serde_json::from_str::<Value>)
            {
                Some(Ok(frame)) if frame.is_object() => put(d, "_frame", frame),
                _ => put(d, "error.message", json!("not a watch frame")),
            }
            true
        },
    },
    Processor {
        kind: "drop",
        condition: Some("ctx._frame?.type == 'BOOKMARK'"),
        field: "",
        target: "",
        apply: |d| get(d, "_frame.type") != Some(&json!("BOOKMARK")),
    },
    Processor {
        kind: "set",
        condition: Some(
            "ctx.error?.message == null && (ctx._frame?.type == null || ctx._frame?.object == null)",
        ),
        field: "error.message",
        target: "",
        apply: |d| {
            if !failed(d) && (get(d, "_frame.type").is_none() || get(d, "_frame.object").is_none())
            {
                put(d, "error.message", json!("not a watch frame"));
            }
            true
        },
    },
    Processor {
        kind: "set",
        condition: Some("ctx.error?.message == null && ctx._frame.type == 'ERROR'"),
        field: "error.message",
        target: "",
        apply: |d| {
            if !failed(d) && get(d, "_frame.type") == Some(&json!("ERROR")) {
                let m = get(d, "_frame.object.message")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                put(d, "error.message", json!(format!("ERROR frame: {m}")));
            }
            true
        },
    },
    Processor {
        kind: "rename",
        condition: Some("ctx.error?.message != null"),
        field: "message",
        target: "event.original",
        apply: |d| {
            if failed(d)
                && let Some(m) = take(d, "message")
            {
                put(d, "event.original", m);
            }
            true
        },
    },
    Processor {
        kind: "remove",
        condition: Some("ctx.error?.message != null"),
        field: "_frame",
        target: "",
        apply: |d| {
            if failed(d) {
                take(d, "_frame");
            }
            true
        },
    },
    Processor {
        kind: "dissect",
        condition: None,
        field: "_index",
        target: "",
        apply: |d| {
            // `logs-kube_event_logger-default` → type, dataset, namespace (the dataset has no
            // `-`, and a namespace may not have one).
            let index = get(d, "_index").and_then(Value::as_str).map(str::to_owned);
            if let Some(parts) = index.as_deref().and_then(|i| {
                let (t, rest) = i.split_once('-')?;
                let (ds, ns) = rest.split_once('-')?;
                Some((t.to_owned(), ds.to_owned(), ns.to_owned()))
            }) {
                put(d, "data_stream.type", json!(parts.0));
                put(d, "data_stream.dataset", json!(parts.1));
                put(d, "data_stream.namespace", json!(parts.2));
            }
            true
        },
    },
    Processor {
        kind: "reroute",
        condition: Some("ctx.error?.message != null"),
        field: "",
        target: "",
        apply: |d| {
            if failed(d) {
                put(d, "data_stream.dataset", json!("kube_event_logger.failed"));
            }
            true
        },
    },
    Processor {
        kind: "rename",
        condition: Some("ctx.error?.message == null"),
        field: "_frame.object",
        target: "k8s.event",
        apply: |d| {
            if !failed(d)
                && let Some(o) = take(d, "_frame.object")
            {
                put(d, "k8s.event", o);
            }
            true
        },
    },
    Processor {
        kind: "rename",
        condition: Some("ctx.error?.message == null"),
        field: "_frame.type",
        target: "watch.type",
        apply: |d| {
            if !failed(d)
                && let Some(t) = take(d, "_frame.type")
            {
                put(d, "watch.type", t);
            }
            true
        },
    },
    Processor {
        kind: "remove",
        condition: Some("ctx.error?.message == null"),
        field: "message",
        target: "",
        apply: |d| {
            if !failed(d) {
                for f in ["message", "_frame", "k8s.event.metadata.managedFields"] {
                    take(d, f);
                }
            }
            true
        },
    },
    Processor {
        kind: "script",
        condition: Some("ctx.watch?.type != null"),
        field: "",
        target: "",
        apply: |d| {
            // The route's lower bound on the occurrence rule: ADDED its count, MODIFIED 1,
            // DELETED 0.
            let Some(kind) = get(d, "watch.type").cloned() else {
                return true;
            };
            let count = get(d, "k8s.event.series.count")
                .or_else(|| get(d, "k8s.event.count"))
                .and_then(Value::as_i64)
                .unwrap_or(1)
                .max(0);
            let n = match kind.as_str() {
                Some("DELETED") => 0,
                Some("MODIFIED") => 1,
                _ => count,
            };
            put(d, "watch.occurrences", json!(n));
            true
        },
    },
    Processor {
        kind: "date",
        condition: Some("ctx.k8s?.event?.series?.lastObservedTime != null"),
        field: "k8s.event.series.lastObservedTime",
        target: "@timestamp",
        apply: |d| time_from(d, "k8s.event.series.lastObservedTime"),
    },
    Processor {
        kind: "date",
        condition: Some(
            "ctx.k8s?.event != null && ctx.k8s.event.series?.lastObservedTime == null && ctx.k8s.event.lastTimestamp != null",
        ),
        field: "k8s.event.lastTimestamp",
        target: "@timestamp",
        apply: |d| {
            if get(d, "k8s.event.series.lastObservedTime").is_none() {
                time_from(d, "k8s.event.lastTimestamp");
            }
            true
        },
    },
    Processor {
        kind: "date",
        condition: Some(
            "ctx.k8s?.event != null && ctx.k8s.event.series?.lastObservedTime == null && ctx.k8s.event.lastTimestamp == null && ctx.k8s.event.eventTime != null",
        ),
        field: "k8s.event.eventTime",
        target: "@timestamp",
        apply: |d| {
            if get(d, "k8s.event.series.lastObservedTime").is_none()
                && get(d, "k8s.event.lastTimestamp").is_none()
            {
                time_from(d, "k8s.event.eventTime");
            }
            true
        },
    },
    Processor {
        kind: "date",
        condition: Some(
            "ctx.k8s?.event != null && ctx.k8s.event.series?.lastObservedTime == null && ctx.k8s.event.lastTimestamp == null && ctx.k8s.event.eventTime == null",
        ),
        field: "k8s.event.metadata.creationTimestamp",
        target: "@timestamp",
        apply: |d| {
            if ["series.lastObservedTime", "lastTimestamp", "eventTime"]
                .iter()
                .all(|f| get(d, &format!("k8s.event.{f}")).is_none())
            {
                time_from(d, "k8s.event.metadata.creationTimestamp");
            }
            true
        },
    },
    Processor {
        kind: "set",
        condition: Some("ctx.watch?.type != null && ctx.watch.type != 'DELETED'"),
        field: "watch.doc_id",
        target: "",
        apply: |d| {
            if get(d, "watch.type").is_some_and(|t| t != "DELETED") {
                let id = template(d, DOC_ID_TEMPLATES.0);
                put(d, "watch.doc_id", json!(id));
            }
            true
        },
    },
    Processor {
        kind: "set",
        condition: Some("ctx.watch?.type == 'DELETED'"),
        field: "watch.doc_id",
        target: "",
        apply: |d| {
            if get(d, "watch.type") == Some(&json!("DELETED")) {
                let id = template(d, DOC_ID_TEMPLATES.1);
                put(d, "watch.doc_id", json!(id));
            }
            true
        },
    },
    Processor {
        kind: "set",
        condition: Some("ctx.watch?.doc_id != null"),
        field: "_id",
        target: "",
        apply: |d| {
            // _id is document metadata, not a field of _source.
            let _ = d;
            true
        },
    },
];

/// The `value` templates of the two `set` processors that build `watch.doc_id`, as
/// ingest-pipeline.json has them (checked against the JSON in `ingest_route`): other frames,
/// DELETED frames.
pub const DOC_ID_TEMPLATES: (&str, &str) = (
    "{{{k8s.event.metadata.uid}}}.{{{k8s.event.metadata.resourceVersion}}}",
    "{{{k8s.event.metadata.uid}}}.{{{k8s.event.metadata.resourceVersion}}}.DELETED",
);

/// A mustache template of `{{{field.path}}}` references filled from a document (a missing field
/// is empty, as in Elasticsearch's templates).
pub fn template(doc: &Value, text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{{") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find("}}}").map(|e| start + e).unwrap();
        let value = get(doc, &rest[start + 3..end]);
        match value {
            Some(Value::String(s)) => out.push_str(s),
            Some(other) => out.push_str(&other.to_string()),
            None => {}
        }
        rest = &rest[end + 3..];
    }
    out.push_str(rest);
    out
}

/// Runs the table on a Filebeat event written to `index`; `None` when a processor drops it.
/// `_index` is metadata: the processors read it, the document's source does not keep it.
pub fn run_in(index: &str, mut doc: Value) -> Option<Value> {
    put(&mut doc, "_index", json!(index));
    for p in PROCESSORS {
        if !(p.apply)(&mut doc) {
            return None;
        }
    }
    take(&mut doc, "_index");
    Some(doc)
}

/// [`run_in`] with the index the Filebeat input writes to.
pub fn run(doc: Value) -> Option<Value> {
    run_in("logs-kube_event_logger-default", doc)
}

/// The leaf paths of a document (arrays and the event's own object taken whole).
pub fn leaves(doc: &Value, prefix: &str, out: &mut Vec<String>) {
    match doc {
        Value::Object(map) if prefix != "k8s.event" => {
            for (k, v) in map {
                let path = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                leaves(v, &path, out);
            }
        }
        _ => out.push(prefix.to_string()),
    }
}
