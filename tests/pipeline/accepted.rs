//! The files against what the products accept, for every version the docs claim (the
//! tables in products.rs): logstash.yml keys, plugin options, Filebeat input options, template
//! and saved-object fields.

use super::*;

/// Every plugin in a pipeline file, with its options, wherever it stands (inside conditionals).
pub(crate) fn plugins(file: &str) -> Vec<logstash::Plugin> {
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

pub(crate) fn option<'a>(p: &'a logstash::Plugin, name: &str) -> Option<&'a logstash::Value> {
    p.attributes.iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

pub(crate) fn strings_in(v: Option<&logstash::Value>) -> Vec<String> {
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
fn every_logstash_yml_and_pipelines_yml_key_exists_in_every_claimed_logstash() {
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
    let both: Vec<products::Known> = products::PIPELINES_YML
        .iter()
        .chain(products::LOGSTASH_YML)
        .copied()
        .collect();
    for entry in yaml("logstash/pipelines.yml").as_array().unwrap() {
        let keys = entry.as_object().unwrap().keys().map(String::as_str);
        let bad = products::unknown(keys, &both, "Logstash");
        assert!(bad.is_empty(), "{bad:#?}");
    }
}

/// Settings that shape a pipeline's queueing and decoding: set on ours only.
const PIPELINE_SETTINGS: [&str; 3] = ["queue.", "dead_letter_queue.", "pipeline."];

#[test]
fn queue_and_dead_letter_settings_apply_to_our_pipeline_only() {
    let yml = yaml("logstash/logstash.yml");
    for key in yml.as_object().unwrap().keys() {
        assert!(
            !PIPELINE_SETTINGS.iter().any(|p| key.starts_with(p)),
            "logstash.yml sets {key} for every pipeline, the distributor and the operator's too"
        );
    }
    let pipelines = yaml("logstash/pipelines.yml");
    for entry in pipelines.as_array().unwrap() {
        let id = entry["pipeline.id"].as_str().unwrap();
        let own: Vec<&String> = entry
            .as_object()
            .unwrap()
            .keys()
            .filter(|k| *k != "pipeline.id" && PIPELINE_SETTINGS.iter().any(|p| k.starts_with(p)))
            .collect();
        if id == "kube-event-logger" {
            assert_eq!(entry["queue.type"], "persisted", "{entry}");
            assert_eq!(entry["dead_letter_queue.enable"], true, "{entry}");
            // The distributor waits on this queue: no checkpoint per event.
            assert!(entry["queue.checkpoint.writes"].is_null(), "{entry}");
        } else {
            assert!(own.is_empty(), "{id} is not ours, yet sets {own:?}");
        }
    }
}

#[test]
fn a_failure_to_start_our_pipeline_cannot_block_the_distributor() {
    let outputs: Vec<(Vec<String>, Option<String>)> =
        plugins("logstash/pipeline/00-distributor.conf")
            .iter()
            .filter(|p| p.name == "pipeline")
            .map(|p| {
                let ensure = strings_in(option(p, "ensure_delivery")).pop();
                (strings_in(option(p, "send_to")), ensure)
            })
            .collect();
    assert_eq!(outputs.len(), 2, "{outputs:?}");
    for (to, ensure) in outputs {
        if to == ["kube-event-logger"] {
            // Unavailable (failed to start, reloading): discarded, not retried forever.
            assert_eq!(ensure.as_deref(), Some("false"), "{to:?}");
        } else {
            // The operator's own traffic keeps its at-least-once delivery.
            assert_eq!(ensure, None, "{to:?}");
        }
    }
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

/// The compatibility table (docs/elasticsearch.md), as (product, lowest, highest).
pub(crate) fn readme_compatibility() -> Vec<(String, String, String)> {
    let readme = read("docs/elasticsearch.md");
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
