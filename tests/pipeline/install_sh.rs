//! es-templates/install.sh against a local stand-in for Elasticsearch/OpenSearch.

use super::*;

/// A request the stand-in for Elasticsearch saw: method, path, Authorization, JSON body.
pub(crate) type Request = (String, String, Option<String>, Value);

/// What `GET /` answers: the cluster's name and version.
const ES_9: &str = r#"{"name":"es-0","version":{"number":"9.1.0","build_flavor":"default"}}"#;
const ES_8_7: &str = r#"{"name":"es-0","version":{"number":"8.7.1","build_flavor":"default"}}"#;
const ES_7: &str = r#"{"name":"es-0","version":{"number":"7.17.9","build_flavor":"default"}}"#;
const OS_2_19: &str =
    r#"{"name":"os-0","version":{"distribution":"opensearch","number":"2.19.1"}}"#;
const OS_2_11: &str =
    r#"{"name":"os-0","version":{"distribution":"opensearch","number":"2.11.0"}}"#;

type Root = std::sync::Arc<std::sync::Mutex<&'static str>>;

/// The stand-in for Elasticsearch/OpenSearch: answers `GET /` with the version in `Root`
/// (Elasticsearch 9 until changed), 200 to writes; to the GET of the ISM policy, 404, or (when
/// `existing`) the stored policy with its sequence number and term. Paths are recorded with
/// their query.
async fn stand_in(
    existing: bool,
) -> (
    std::net::SocketAddr,
    std::sync::Arc<std::sync::Mutex<Vec<Request>>>,
    Root,
    tokio::task::JoinHandle<()>,
) {
    use std::sync::{Arc, Mutex};
    let seen: Arc<Mutex<Vec<Request>>> = Arc::default();
    let root: Root = Arc::new(Mutex::new(ES_9));
    let answer = root.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let s = seen.clone();
    let server = tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let s = s.clone();
            let answer = answer.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| {
                        let s = s.clone();
                        let root = *answer.lock().unwrap();
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
                                "GET" if path == "/" => (200, root.as_bytes()),
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
    (addr, seen, root, server)
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
    let (addr, seen, root, server) = stand_in(false).await;
    install_sh(addr, &[]).await;
    let mut got = std::mem::take(&mut *seen.lock().unwrap());
    let version = got.remove(0);
    assert_eq!((version.0.as_str(), version.1.as_str()), ("GET", "/"));
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

    *root.lock().unwrap() = OS_2_19;
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
    // --help is answered, not sent to curl as a URL.
    let seen_before = seen.lock().unwrap().len();
    let help = std::process::Command::new("bash")
        .arg(repo("es-templates/install.sh"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(help.status.success());
    let text = String::from_utf8(help.stdout).unwrap();
    assert!(
        text.contains("install.sh URL") && text.contains("--opensearch"),
        "{text}"
    );
    assert!(String::from_utf8_lossy(&help.stderr).is_empty());
    assert_eq!(seen.lock().unwrap().len(), seen_before, "no request");
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn install_sh_updates_an_existing_ism_policy_and_attaches_it_to_existing_indices() {
    let (addr, seen, root, server) = stand_in(true).await;
    *root.lock().unwrap() = OS_2_19;
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
    // Indices ISM already manages keep running the policy version they cached (OpenSearch,
    // "Managed indexes": `policy` is the cached JSON of the policy_version used during runs)
    // until the policy is changed on them.
    let at = |m: &str, prefix: &str| {
        got.iter()
            .position(|(method, p, ..)| method == m && p.starts_with(prefix))
    };
    let change = at("POST", "/_plugins/_ism/change_policy/")
        .expect("managed indices are moved to the updated policy");
    assert_eq!(
        got[change].1,
        "/_plugins/_ism/change_policy/.ds-logs-kube_event_logger*"
    );
    assert_eq!(got[change].3["policy_id"], "kube-event-logger");
    assert!(change > at("PUT", "/_plugins/_ism/policies/").unwrap());
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

/// Runs install.sh against the stand-in answering `version`; its exit code, stderr and the
/// requests it made.
async fn install_on(
    version: &'static str,
    extra: &'static [&'static str],
) -> (Option<i32>, String, Vec<Request>) {
    let (addr, seen, root, server) = stand_in(false).await;
    *root.lock().unwrap() = version;
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("bash")
            .arg(repo("es-templates/install.sh"))
            .arg(format!("http://{addr}"))
            .args(extra)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    server.abort();
    let got = std::mem::take(&mut *seen.lock().unwrap());
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        got,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn install_sh_installs_what_the_cluster_version_supports_and_says_what_it_skipped() {
    let puts = |got: &[Request]| -> Vec<String> {
        got.iter()
            .filter(|(m, ..)| m != "GET")
            .map(|(_, p, ..)| p.clone())
            .collect()
    };
    // Elasticsearch 8.0–8.7: no reroute processor, so no ingest pipeline; the rest installs.
    let (code, stderr, got) = install_on(ES_8_7, &[]).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        !puts(&got).iter().any(|p| p.starts_with("/_ingest/")),
        "{got:?}"
    );
    assert!(puts(&got).contains(&"/_index_template/kube-event-logger".to_string()));
    assert!(
        stderr.contains("8.7.1") && stderr.contains("reroute") && stderr.contains("Logstash"),
        "{stderr}"
    );
    // Older than the table, or the other product: nothing is written.
    for (version, extra) in [
        (ES_7, &[][..]),
        (OS_2_11, &["--opensearch"][..]),
        (OS_2_19, &[][..]),
        (ES_9, &["--opensearch"][..]),
    ] {
        let (code, stderr, got) = install_on(version, extra).await;
        assert_ne!(code, Some(0), "{version}: {stderr}");
        assert!(puts(&got).is_empty(), "{version}: {got:?}");
        assert!(stderr.contains("install.sh: "), "{stderr}");
    }
}

/// What docs/elasticsearch.md says of retention and rejected documents matches the policies
/// and the routes: ISM's delete counts from an index's creation (`min_index_age`), ILM's from
/// rollover (`min_age` in the delete phase); a 4xx on the Filebeat → ingest route is dropped by
/// libbeat unless a dead-letter index is set, and only the Logstash route has a DLQ.
#[test]
fn the_docs_tell_ism_from_ilm_and_which_route_keeps_a_rejected_document() {
    let doc = std::fs::read_to_string(repo("docs/elasticsearch.md")).unwrap();
    let ism = json("es-templates/opensearch/ism-policy.json");
    let delete = &ism["policy"]["states"][0]["transitions"][0]["conditions"];
    assert_eq!(delete["min_index_age"], "30d", "{ism}");
    let ilm = json("es-templates/ilm-policy.json");
    assert_eq!(ilm["policy"]["phases"]["delete"]["min_age"], "30d");
    assert!(
        !doc.contains("the same as an ISM policy"),
        "ISM is not ILM's twin"
    );
    assert!(
        doc.contains("30 days after its *creation*") && doc.contains("min_index_age"),
        "the docs say when ISM deletes"
    );
    let rows: Vec<&str> = doc
        .lines()
        .filter(|l| l.starts_with("| a document Elasticsearch rejects"))
        .collect();
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(
        rows.iter()
            .any(|r| r.contains("Logstash route") && r.contains("dead letter queue"))
    );
    assert!(rows.iter().any(|r| r.contains("ingest pipeline route")
        && r.contains("dropped")
        && r.contains("non_indexable_policy")));
}
