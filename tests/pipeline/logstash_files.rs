//! The Logstash pipelines (logstash/) against the template and against themselves: every field
//! read or written is mapped, the filter keeps types, ids and versions, failures are routed,
//! and only events tagged as ours enter our pipeline.

use super::*;

pub(crate) fn logstash_sections(file: &str) -> Vec<logstash::Section> {
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
    // The document id: one template per branch (ingest_route checks both routes agree).
    assert_eq!(logstash_doc_id_templates().len(), 2);
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
    let pipelines = yaml("logstash/pipelines.yml");
    let ours = pipelines
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["pipeline.id"] == "kube-event-logger")
        .unwrap();
    // Its own persisted queue and dead letter queue (queue_and_dead_letter_settings_apply_to_our_
    // pipeline_only checks no other pipeline gets them).
    assert_eq!(ours["queue.type"], "persisted");
    assert_eq!(ours["dead_letter_queue.enable"], true);
    let path = ours["path.config"].as_str().unwrap();
    for part in ["05-input", "10-filter", "30-output-elasticsearch"] {
        assert!(path.contains(part), "{path}");
        assert!(repo(&format!("logstash/pipeline/{part}.conf")).exists());
    }
}

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

/// The `[@metadata][doc_id]` templates of 10-filter.conf, as (DELETED frames, other frames):
/// the filter sets it in the two branches of `if [watch][type] == "DELETED"`.
pub(crate) fn logstash_doc_id_templates() -> Vec<String> {
    let text = read("logstash/pipeline/10-filter.conf");
    let branch = text
        .find("if [watch][type] == \"DELETED\"")
        .expect("a DELETED branch");
    let key = "\"[@metadata][doc_id]\" => \"";
    let found: Vec<(usize, String)> = text
        .match_indices(key)
        .map(|(at, _)| {
            let value = &text[at + key.len()..];
            (at, value[..value.find('"').unwrap()].to_string())
        })
        // The templates, not the `copy` of the result into [watch][doc_id].
        .filter(|(_, value)| value.contains("%{"))
        .collect();
    assert!(found.iter().all(|(at, _)| *at > branch), "{found:?}");
    found.into_iter().map(|(_, t)| t).collect()
}

/// A Logstash sprintf template (`%{[a][b]}`) filled from an event (a missing field stays as
/// written, as Logstash leaves it).
pub(crate) fn sprintf(event: &Value, text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("%{") {
        out.push_str(&rest[..start]);
        let end = start + rest[start..].find('}').unwrap();
        let reference = &rest[start + 2..end];
        let path: Vec<&str> = reference
            .trim_start_matches('[')
            .trim_end_matches(']')
            .split("][")
            .collect();
        match path.iter().try_fold(event, |v, k| v.get(*k)) {
            Some(Value::String(s)) => out.push_str(s),
            Some(v) if !v.is_null() => out.push_str(&v.to_string()),
            _ => out.push_str(&rest[start..=end]),
        }
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

/// The distributor's hand-over to our pipeline may discard frames without a log line (its
/// `ensure_delivery => false`; logstash-core `AbstractPipelineBus.doSendEvents` logs only when
/// it is true) at every Logstash start, a reload or a failed start: both ends are named so that
/// the node stats API shows the gap, and the docs say so, give that check and the recovery,
/// instead of saying the loss is logged or that a restart loses nothing.
#[test]
fn a_discarded_handover_can_be_seen_and_recovered_and_is_not_called_logged() {
    let handover = plugins("logstash/pipeline/00-distributor.conf")
        .into_iter()
        .find(|p| p.name == "pipeline" && strings_in(option(p, "send_to")) == ["kube-event-logger"])
        .unwrap();
    assert_eq!(strings_in(option(&handover, "ensure_delivery")), ["false"]);
    assert_eq!(
        strings_in(option(&handover, "id")),
        ["kube-event-logger-handover"]
    );
    let input = &plugins("logstash/pipeline/05-input.conf")[0];
    assert_eq!(
        strings_in(option(input, "id")),
        ["kube-event-logger-from-distributor"]
    );
    let doc = read("docs/elasticsearch.md");
    for needed in [
        "_node/stats/pipelines/beats-distributor",
        "\"kube-event-logger-handover\"",
        "_node/stats/pipelines/kube-event-logger",
        "\"kube-event-logger-from-distributor\"",
        "without a log line",
        "every Logstash start",
        "Change the `id` of the Filebeat\ninput",
    ] {
        assert!(
            doc.contains(needed),
            "docs/elasticsearch.md lacks {needed:?}"
        );
    }
    let distributor = read("logstash/pipeline/00-distributor.conf");
    for file in [&doc, &distributor, &read("logstash/pipelines.yml")] {
        assert!(!file.contains("which Logstash logs"));
        assert!(!file.contains("so a\n  # Logstash restart loses none of it"));
        assert!(!file.contains("fails to start (a configuration error, logged at start)"));
    }
    assert!(distributor.contains("without a log line") && distributor.contains("converge_state"));
}
