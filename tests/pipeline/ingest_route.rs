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

#[test]
fn both_routes_make_the_same_document_id_and_data_stream_fields() {
    // The ingest simulator's templates are the JSON's.
    let pipeline = json("es-templates/ingest-pipeline.json");
    let sets: Vec<&Value> = pipeline["processors"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p.get("set"))
        .filter(|s| s["field"] == "watch.doc_id")
        .collect();
    let values: Vec<&str> = sets.iter().map(|s| s["value"].as_str().unwrap()).collect();
    assert_eq!(
        values,
        [ingest::DOC_ID_TEMPLATES.0, ingest::DOC_ID_TEMPLATES.1]
    );
    let logstash = logstash_doc_id_templates();
    let (ls_deleted, ls_other) = (&logstash[0], &logstash[1]);
    let filebeat =
        |line: String| serde_json::json!({ "message": line, "tags": ["kube-event-logger"] });
    let mut frames = realistic_frames();
    let mut deleted = frames[0].clone();
    deleted["type"] = "DELETED".into();
    frames.push(deleted);
    let mut ids = std::collections::BTreeSet::new();
    for frame in &frames {
        let by_ingest = ingest::run(filebeat(frame.to_string())).unwrap();
        let by_logstash = document(frame);
        let template = if frame["type"] == "DELETED" {
            ls_deleted
        } else {
            ls_other
        };
        let logstash_id = sprintf(&by_logstash, template);
        assert_eq!(
            by_ingest["watch"]["doc_id"], logstash_id,
            "one frame, two routes, one document"
        );
        assert!(!logstash_id.contains("%{"), "{logstash_id}");
        assert!(logstash_id.len() <= 512, "Elasticsearch's _id limit");
        ids.insert(logstash_id);
        assert_eq!(by_ingest["data_stream"], by_logstash["data_stream"]);
    }
    assert_eq!(
        ids.len(),
        frames.len(),
        "each version, and its DELETED, apart"
    );
    // The data stream fields are the output's.
    let output = read("logstash/pipeline/30-output-elasticsearch.conf");
    for (option, field) in [
        ("data_stream_type => \"logs\"", "logs"),
        (
            "data_stream_dataset => \"kube_event_logger\"",
            "kube_event_logger",
        ),
        ("${DATA_STREAM_NAMESPACE:default}", "default"),
    ] {
        assert!(output.contains(option), "{option}");
        assert!(
            document(&frames[0])["data_stream"]
                .as_object()
                .unwrap()
                .values()
                .any(|v| v == field)
        );
    }
}
