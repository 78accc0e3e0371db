//! The ingest-pipeline route (es-templates/ingest-pipeline.json) against the processor table
//! and against the documents the Logstash filter makes.

use super::*;

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
