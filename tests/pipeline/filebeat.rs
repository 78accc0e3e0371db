//! The Filebeat inputs (filebeat/) against the daemon's file naming, and the docs'
//! Filebeat → Elasticsearch input against ours.

use super::*;

/// Go's filepath.Match for the patterns we use (`*` within one path element, literals).
pub(crate) fn glob_match(pattern: &str, name: &str) -> bool {
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

/// The Filebeat input docs/elasticsearch.md shows for a Filebeat that ships straight to
/// Elasticsearch.
fn documented_direct_input() -> Value {
    let doc = read("docs/elasticsearch.md");
    let block = doc
        .split_once("<!-- filebeat-to-elasticsearch-input")
        .and_then(|(_, rest)| rest.split_once("```yaml\n"))
        .and_then(|(_, rest)| rest.split_once("```"))
        .expect("docs/elasticsearch.md shows the input")
        .0;
    let shown: Value = serde_saphyr::from_str(block).unwrap();
    shown[0].clone()
}

#[test]
fn the_readme_input_for_filebeat_to_elasticsearch_is_ours_plus_pipeline_and_index() {
    let mut shown = documented_direct_input();
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
    // Ours also sets what the reference manifests set already or need not; the cluster's name
    // is shown too, so that several clusters in one Elasticsearch can be told apart.
    for extra in ["enabled", "prospector.scanner.check_interval"] {
        ours.remove(extra);
    }
    assert_eq!(
        &*options, &*ours,
        "the input in docs/elasticsearch.md drifted from filebeat/"
    );
    let pipeline = json("es-templates/ingest-pipeline.json");
    assert!(pipeline["processors"].as_array().unwrap().len() > 5);
    assert!(
        read("es-templates/install.sh")
            .contains("_ingest/pipeline/kube-event-logger ingest-pipeline.json")
    );
}

#[test]
fn the_sidecar_filebeat_sets_its_batch_size_on_the_output_not_the_legacy_queue_parameter() {
    let sidecar = yaml("filebeat/filebeat.yml");
    // flush.min_events is legacy from Filebeat 8.13 (Filebeat reference, "Configure the internal
    // queue"); the lowest Filebeat we claim is 8.14.
    assert!(
        sidecar["queue.mem"].get("flush.min_events").is_none(),
        "{}",
        sidecar["queue.mem"]
    );
    assert!(sidecar["output.logstash"]["bulk_max_size"].is_u64());
}

/// Every route records the cluster in the same field: both Filebeat files and the documented
/// direct-route input set `cluster.name` from `CLUSTER_NAME`, the ingest pipeline keeps it (and
/// gives a document without one the same default), and the docs say where to set it per route.
#[test]
fn every_route_records_the_cluster_and_the_docs_say_where_it_is_set() {
    let doc = read("docs/elasticsearch.md");
    let direct = documented_direct_input();
    let node = yaml("filebeat/kube-event-logger.input.yml");
    let sidecar = yaml("filebeat/filebeat.yml");
    for input in [&direct, &node[0], &sidecar["filebeat.inputs"][0]] {
        assert_eq!(
            input["fields"]["cluster"]["name"], "${CLUSTER_NAME:kubernetes}",
            "{input}"
        );
        assert_eq!(input["fields_under_root"], true, "{input}");
    }
    let pipeline = json("es-templates/ingest-pipeline.json");
    let set = &pipeline["processors"][0]["set"];
    assert_eq!(
        (&set["field"], &set["value"], &set["override"]),
        (
            &serde_json::json!("cluster.name"),
            &serde_json::json!("kubernetes"),
            &serde_json::json!(false)
        ),
        "the ingest pipeline keeps Filebeat's cluster and defaults it as Filebeat does"
    );
    let section = doc.split_once("### The cluster's name").unwrap().1;
    let section = section.split_once("\n### ").unwrap().0;
    for route in ["node Filebeat", "sidecar", "Loki"] {
        assert!(section.contains(route), "{route}");
    }
    assert!(section.contains("Give each cluster its own name"));
}
