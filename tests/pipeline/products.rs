//! What the products accept, for the versions we claim: every `logstash.yml` key, Logstash plugin
//! option, Filebeat input option and template/policy/saved-object field our files use, with the
//! versions it exists in and the page it was read from. The files are checked against these
//! tables, so a setting that a claimed version does not know fails a test.
//!
//! Versions are `major.minor`. `since` is the lowest version we claim, for which the cited
//! reference page documents the entry (the pages do not give every entry's first version; none
//! is claimed lower than we need). `until` is the first version without it, from that version's
//! breaking changes. Plugin options count in Logstash versions (the plugins run inside it).

/// The versions the files are written for (docs/elasticsearch.md, "Compatibility"): lowest and highest.
pub struct Claim {
    pub product: &'static str,
    pub lowest: &'static str,
    pub highest: &'static str,
}

pub const CLAIMS: &[Claim] = &[
    Claim {
        product: "Filebeat",
        lowest: "8.14",
        highest: "9.3",
    },
    Claim {
        product: "Logstash",
        lowest: "8.8",
        highest: "9.3",
    },
    Claim {
        product: "Elasticsearch",
        lowest: "8.0",
        highest: "9.3",
    },
    Claim {
        product: "OpenSearch",
        lowest: "2.12",
        highest: "3.3",
    },
    Claim {
        product: "Kibana",
        lowest: "8.8",
        highest: "9.3",
    },
];

/// One setting, option or field: the versions it exists in, and where that was read.
#[derive(Clone, Copy)]
pub struct Known {
    pub name: &'static str,
    pub since: &'static str,
    pub until: Option<&'static str>,
    pub doc: &'static str,
}

const fn k(name: &'static str, since: &'static str, doc: &'static str) -> Known {
    Known {
        name,
        since,
        until: None,
        doc,
    }
}

const LS_SETTINGS: &str = "https://www.elastic.co/docs/reference/logstash/logstash-settings-file";
const LS_BREAKING_9: &str = "https://www.elastic.co/docs/release-notes/logstash/breaking-changes (9.0: http.* settings removed, use api.http.*)";
const ES_OUT: &str =
    "https://www.elastic.co/docs/reference/logstash/plugins/plugins-outputs-elasticsearch";
const OS_OUT: &str = "https://github.com/opensearch-project/logstash-output-opensearch (README, configuration options)";
const BEATS_IN: &str =
    "https://www.elastic.co/docs/reference/logstash/plugins/plugins-inputs-beats";
const P2P: &str = "https://www.elastic.co/docs/reference/logstash/pipeline-to-pipeline";
const P2P_OUT: &str = "https://www.elastic.co/docs/reference/logstash/pipeline-to-pipeline (Delivery guarantees); logstash-core lib/logstash/plugins/builtin/pipeline/output.rb at v8.0.0: `config :ensure_delivery, :default => true`";
const PLUGIN_ID: &str = "https://www.elastic.co/docs/reference/logstash/plugins/plugins-inputs-pipeline and plugins-outputs-pipeline (common options: id, shown in the monitoring APIs)";
const MULTIPLE: &str = "https://www.elastic.co/docs/reference/logstash/multiple-pipelines (each entry's settings; unset ones fall back to logstash.yml; queues isolated per pipeline)";
/// Options that came with a plugin release: the release from the plugin's CHANGELOG, and the
/// first Logstash that bundles it, from `Gemfile.jruby-*.lock.release` at the elastic/logstash
/// release tags (8.0–8.2: 11.4.1, 8.3–8.4: 11.6.0, 8.5: 11.9.0, 8.6: 11.12.1, 8.7: 11.13.1,
/// 8.8: 11.15.1, 9.0: 12.0.2).
const ES_OUT_11_7: &str = "logstash-output-elasticsearch CHANGELOG 11.7.0 (silence_errors_in_log, #1068); first bundled in Logstash 8.5 (11.9.0)";
const ES_OUT_11_14: &str = "logstash-output-elasticsearch CHANGELOG 11.14.0 (ssl_certificate_authorities, #1118); first bundled in Logstash 8.8 (11.15.1)";
const FILESTREAM: &str =
    "https://www.elastic.co/docs/reference/beats/filebeat/filebeat-input-filestream";

/// `logstash.yml` keys.
pub const LOGSTASH_YML: &[Known] = &[
    k("queue.type", "8.0", LS_SETTINGS),
    k("queue.max_bytes", "8.0", LS_SETTINGS),
    k("queue.checkpoint.writes", "8.0", LS_SETTINGS),
    k("dead_letter_queue.enable", "8.0", LS_SETTINGS),
    k("dead_letter_queue.max_bytes", "8.0", LS_SETTINGS),
    k("pipeline.ecs_compatibility", "8.0", LS_SETTINGS),
    k("pipeline.ordered", "8.0", LS_SETTINGS),
    k("pipeline.workers", "8.0", LS_SETTINGS),
    k("api.http.host", "8.0", LS_SETTINGS),
    k("api.http.port", "8.0", LS_SETTINGS),
    k("log.level", "8.0", LS_SETTINGS),
    Known {
        name: "http.host",
        since: "5.0",
        until: Some("9.0"),
        doc: LS_BREAKING_9,
    },
    Known {
        name: "http.port",
        since: "5.0",
        until: Some("9.0"),
        doc: LS_BREAKING_9,
    },
];

/// `pipelines.yml` keys: an entry's own (id, config) and the `logstash.yml` settings it may set
/// for itself (the rest of [`LOGSTASH_YML`] applies there too).
pub const PIPELINES_YML: &[Known] = &[
    k("pipeline.id", "8.0", MULTIPLE),
    k("path.config", "8.0", MULTIPLE),
    k("config.string", "8.0", MULTIPLE),
];

/// Options of the plugins our pipeline uses, by plugin name.
pub const PLUGIN_OPTIONS: &[(&str, &[Known])] = &[
    // The pipeline input (`address`) and output (`send_to`) share the name.
    (
        "pipeline",
        &[
            k("address", "8.0", P2P),
            k("send_to", "8.0", P2P),
            k("ensure_delivery", "8.0", P2P_OUT),
            k("id", "8.0", PLUGIN_ID),
        ],
    ),
    (
        "beats",
        &[
            k("port", "8.0", BEATS_IN),
            k("host", "8.0", BEATS_IN),
            k("id", "8.0", BEATS_IN),
        ],
    ),
    (
        "elasticsearch",
        &[
            k("hosts", "8.0", ES_OUT),
            k("user", "8.0", ES_OUT),
            k("password", "8.0", ES_OUT),
            k("ssl_certificate_authorities", "8.8", ES_OUT_11_14),
            k("data_stream", "8.0", ES_OUT),
            k("data_stream_type", "8.0", ES_OUT),
            k("data_stream_dataset", "8.0", ES_OUT),
            k("data_stream_namespace", "8.0", ES_OUT),
            k("document_id", "8.0", ES_OUT),
            k("silence_errors_in_log", "8.5", ES_OUT_11_7),
        ],
    ),
    (
        "opensearch",
        &[
            k("hosts", "8.0", OS_OUT),
            k("user", "8.0", OS_OUT),
            k("password", "8.0", OS_OUT),
            k("cacert", "8.0", OS_OUT),
            k("index", "8.0", OS_OUT),
            k("action", "8.0", OS_OUT),
            k("document_id", "8.0", OS_OUT),
            k("manage_template", "8.0", OS_OUT),
            k("failure_type_logging_whitelist", "8.0", OS_OUT),
        ],
    ),
];

/// Options of the `filestream` input.
pub const FILESTREAM_OPTIONS: &[Known] = &[
    k("type", "8.14", FILESTREAM),
    k("id", "8.14", FILESTREAM),
    k("enabled", "8.14", FILESTREAM),
    k("paths", "8.14", FILESTREAM),
    k("prospector.scanner.exclude_files", "8.14", FILESTREAM),
    k("prospector.scanner.check_interval", "8.14", FILESTREAM),
    k("prospector.scanner.fingerprint.enabled", "8.14", FILESTREAM),
    k("file_identity.fingerprint", "8.14", FILESTREAM),
    k("close.on_state_change.removed", "8.14", FILESTREAM),
    k("close.on_state_change.renamed", "8.14", FILESTREAM),
    k("close.on_state_change.inactive", "8.14", FILESTREAM),
    k("close.reader.on_eof", "8.14", FILESTREAM),
    k("tags", "8.14", FILESTREAM),
    k("fields", "8.14", FILESTREAM),
    k("fields_under_root", "8.14", FILESTREAM),
    k("pipeline", "8.14", FILESTREAM),
    k("index", "8.14", FILESTREAM),
];

/// `major.minor` as a comparable pair.
pub fn version(v: &str) -> (u32, u32) {
    let mut parts = v.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
}

/// The claim for a product.
pub fn claim(product: &str) -> &'static Claim {
    CLAIMS.iter().find(|c| c.product == product).unwrap()
}

/// Whether an entry exists across the whole claimed range of `product`.
pub fn covers(known: &Known, product: &str) -> bool {
    let c = claim(product);
    version(known.since) <= version(c.lowest)
        && known.until.is_none_or(|u| version(u) > version(c.highest))
}

/// Why each of `names` is not known across the claimed range, if any.
pub fn unknown<'a>(
    names: impl IntoIterator<Item = &'a str>,
    table: &[Known],
    product: &str,
) -> Vec<String> {
    names
        .into_iter()
        .filter_map(|name| match table.iter().find(|e| e.name == name) {
            None => Some(format!(
                "{name}: not a {product} option we know (add it with its doc)"
            )),
            Some(e) if !covers(e, product) => Some(format!(
                "{name}: exists in {product} {}..{} ({}), not across {}..{}",
                e.since,
                e.until.unwrap_or("now"),
                e.doc,
                claim(product).lowest,
                claim(product).highest
            )),
            Some(_) => None,
        })
        .collect()
}

const ES_TEMPLATES: &str = "https://www.elastic.co/docs/api/doc/elasticsearch/operation/operation-indices-put-index-template (and put-component-template)";
const ES_ILM: &str = "https://www.elastic.co/docs/manage-data/lifecycle/index-lifecycle-management/index-lifecycle (rollover, delete actions)";
const ES_MAPPING: &str =
    "https://www.elastic.co/docs/reference/elasticsearch/mapping-reference/field-data-types";
const ES_SETTINGS: &str =
    "https://www.elastic.co/docs/reference/elasticsearch/index-settings/index-modules";
const OS_TEMPLATES: &str = "https://docs.opensearch.org/latest/im-plugin/index-templates/ (composable templates, data streams)";
const OS_ISM: &str = "https://docs.opensearch.org/latest/im-plugin/ism/policies/ (states, rollover, delete, ism_template)";
const OS_MAPPING: &str =
    "https://docs.opensearch.org/latest/field-types/ (flat_object: dotted keys from 2.12)";
const KIBANA_SO: &str = "https://www.elastic.co/docs/api/doc/kibana/operation/operation-importsavedobjectsdefault (ndjson export format)";

/// Key paths (objects joined with `.`, arrays as `[]`; `_meta` is free-form, taken whole) of Elasticsearch's index template,
/// component templates and ILM policy, and of OpenSearch's.
pub const ES_TEMPLATE_KEYS: &[Known] = &[
    k("index_patterns", "8.0", ES_TEMPLATES),
    k("data_stream", "8.0", ES_TEMPLATES),
    k("composed_of", "8.0", ES_TEMPLATES),
    k("priority", "8.0", ES_TEMPLATES),
    k("allow_auto_create", "8.0", ES_TEMPLATES),
    k("_meta", "8.0", ES_TEMPLATES),
    k("template.settings.index.lifecycle.name", "8.0", ES_SETTINGS),
    k(
        "template.settings.index.number_of_shards",
        "8.0",
        ES_SETTINGS,
    ),
    k("template.settings.index.codec", "8.0", ES_SETTINGS),
    k(
        "template.settings.index.mapping.total_fields.limit",
        "8.0",
        ES_SETTINGS,
    ),
    k("template.mappings", "8.0", ES_TEMPLATES),
    k("policy._meta", "8.0", ES_ILM),
    k("policy.phases.hot.actions.rollover.max_age", "8.0", ES_ILM),
    k(
        "policy.phases.hot.actions.rollover.max_primary_shard_size",
        "8.0",
        ES_ILM,
    ),
    k("policy.phases.delete.min_age", "8.0", ES_ILM),
    k("policy.phases.delete.actions.delete", "8.0", ES_ILM),
];

pub const OS_TEMPLATE_KEYS: &[Known] = &[
    k("index_patterns", "2.12", OS_TEMPLATES),
    k("data_stream", "2.12", OS_TEMPLATES),
    k("composed_of", "2.12", OS_TEMPLATES),
    k("priority", "2.12", OS_TEMPLATES),
    k("_meta", "2.12", OS_TEMPLATES),
    k(
        "template.settings.index.number_of_shards",
        "2.12",
        OS_TEMPLATES,
    ),
    k("template.settings.index.codec", "2.12", OS_TEMPLATES),
    k(
        "template.settings.index.mapping.total_fields.limit",
        "2.12",
        OS_TEMPLATES,
    ),
    k("template.mappings", "2.12", OS_TEMPLATES),
    k("policy.description", "2.12", OS_ISM),
    k("policy.default_state", "2.12", OS_ISM),
    k("policy.states[].name", "2.12", OS_ISM),
    k(
        "policy.states[].actions[].rollover.min_index_age",
        "2.12",
        OS_ISM,
    ),
    k(
        "policy.states[].actions[].rollover.min_primary_shard_size",
        "2.12",
        OS_ISM,
    ),
    k("policy.states[].actions[].delete", "2.12", OS_ISM),
    k("policy.states[].transitions[].state_name", "2.12", OS_ISM),
    k(
        "policy.states[].transitions[].conditions.min_index_age",
        "2.12",
        OS_ISM,
    ),
    k("policy.states[].transitions", "2.12", OS_ISM),
    k("policy.ism_template[].index_patterns", "2.12", OS_ISM),
    k("policy.ism_template[].priority", "2.12", OS_ISM),
];

/// Field types in the mappings.
pub const ES_FIELD_TYPES: &[Known] = &[
    k("keyword", "8.0", ES_MAPPING),
    k("constant_keyword", "8.0", ES_MAPPING),
    k("match_only_text", "8.0", ES_MAPPING),
    k("date", "8.0", ES_MAPPING),
    k("long", "8.0", ES_MAPPING),
    k("flattened", "8.0", ES_MAPPING),
    k("object", "8.0", ES_MAPPING),
];

pub const OS_FIELD_TYPES: &[Known] = &[
    k("keyword", "2.12", OS_MAPPING),
    k("text", "2.12", OS_MAPPING),
    k("date", "2.12", OS_MAPPING),
    k("long", "2.12", OS_MAPPING),
    k("flat_object", "2.12", OS_MAPPING),
    k("object", "2.12", OS_MAPPING),
];

/// Top-level keys of a saved object in Kibana's ndjson export format, and the types we import.
pub const KIBANA_OBJECT_KEYS: &[Known] = &[
    k("type", "8.8", KIBANA_SO),
    k("id", "8.8", KIBANA_SO),
    k("attributes", "8.8", KIBANA_SO),
    k("references", "8.8", KIBANA_SO),
    k("coreMigrationVersion", "8.8", KIBANA_SO),
];

pub const KIBANA_TYPES: &[Known] = &[
    k("index-pattern", "8.8", KIBANA_SO),
    k("search", "8.8", KIBANA_SO),
    k("visualization", "8.8", KIBANA_SO),
    k("dashboard", "8.8", KIBANA_SO),
];

/// Every key path of a JSON document, arrays as `[]`; stops at `stop` paths (taken whole).
pub fn key_paths(v: &serde_json::Value, prefix: &str, stop: &[&str], out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(map) if !map.is_empty() && !stop.contains(&prefix) => {
            for (key, value) in map {
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                key_paths(value, &path, stop, out);
            }
        }
        serde_json::Value::Array(items) if items.iter().any(|i| i.is_object()) => {
            for item in items {
                key_paths(item, &format!("{prefix}[]"), stop, out);
            }
        }
        _ => out.push(prefix.to_string()),
    }
}
