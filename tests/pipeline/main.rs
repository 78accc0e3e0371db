//! The pipelines (filebeat/, logstash/, es-templates/, kibana/, opensearch-dashboards/, loki/)
//! checked against themselves and against the daemon: every file parses, and the parts cannot drift apart unnoticed.

mod alloy;
use testkit::events;
mod ingest;
mod logstash;
mod loki;
mod products;

mod accepted;
mod filebeat;
mod grafana;
mod ingest_route;
mod install_sh;
mod logstash_files;
mod mapping;
mod occurrences;
mod saved_objects;
use std::path::{Path, PathBuf};

// Helpers each product's tests share (realistic documents, mappings, globs, plugins).
use accepted::*;
use filebeat::*;
use logstash_files::*;
use mapping::*;

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
