//! The Events' occurrences in `/metrics`: counted as the growth of each Event's count, a LIST
//! and a resumed restart counting nothing of the past, and the label sets bounded.

use super::*;
use testkit::events;

/// Every `kube_event_logger_occurrences_total` sample, by its label text.
fn occurrences(text: &str) -> std::collections::BTreeMap<String, f64> {
    text.lines()
        .filter_map(|l| l.strip_prefix("kube_event_logger_occurrences_total"))
        .filter_map(|rest| {
            let (labels, value) = rest.rsplit_once(' ')?;
            Some((labels.to_string(), value.parse().ok()?))
        })
        .collect()
}

const BACKOFF: &str = r#"{type="Warning",reason="BackOff",kind="Pod"}"#;
const SCHEDULING: &str = r#"{type="Warning",reason="FailedScheduling",kind="Pod"}"#;

/// The Event `name` at `count`, as its recorder would PATCH it (one MODIFIED frame).
fn jumped(namespace: &str, name: &str, count: u64) -> String {
    events::frame("MODIFIED", &events::event_object(namespace, name, 1, count))
}

/// An events.k8s.io-style series: `series.count` instead of `count`, another reason.
fn series(namespace: &str, name: &str, kind: &str, count: u64) -> String {
    let object = events::event_object(namespace, name, 1, 1)
        .replace(r#""count":1,"#, &format!(r#""count":null,"series":{{"count":{count},"lastObservedTime":"2026-11-22T10:30:00.000000Z"}},"#))
        .replace(r#""reason":"BackOff""#, r#""reason":"FailedScheduling""#);
    events::frame(kind, &object)
}

async fn metrics_until(
    addr: std::net::SocketAddr,
    what: &str,
    done: impl Fn(&std::collections::BTreeMap<String, f64>) -> bool,
) -> std::collections::BTreeMap<String, f64> {
    let deadline = std::time::Instant::now() + support::DEADLINE;
    loop {
        let (_, text) = http_get(addr, "/metrics").await;
        let got = occurrences(&text);
        if done(&got) {
            return got;
        }
        assert!(std::time::Instant::now() < deadline, "{what}: {got:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn occurrences_are_the_growth_after_the_list_and_a_resumed_restart_does_not_burst() {
    let server = tls_server().await;
    // Before the logger starts: an Event that already happened 30 times.
    server.add("a", "old");
    for _ in 0..29 {
        server.occur("a", "old");
    }
    let dir = tempfile::tempdir().unwrap();
    let mut d = start(&server, &dir, &[]);
    let addr = d.http_addr().await;
    wait_watching(&server, &server.current_rv().to_string()).await;
    let (_, text) = http_get(addr, "/metrics").await;
    assert!(
        occurrences(&text).is_empty(),
        "the LIST is a baseline: {text}"
    );

    // Bumps of one, a spam-filtered jump of 40, a new Event, a series first seen at 12, then
    // refreshed at 48.
    server.occur("a", "old");
    server.occur("a", "old");
    server.emit_line(&jumped("a", "old", 72));
    server.add("a", "new");
    server.emit_line(&series("a", "pending", "ADDED", 12));
    server.emit_line(&series("a", "pending", "MODIFIED", 48));
    let expected_backoff = 2.0 + 40.0 + 1.0;
    let got = metrics_until(addr, "bumps and jumps", |m| {
        m.get(BACKOFF) == Some(&expected_backoff) && m.get(SCHEDULING) == Some(&48.0)
    })
    .await;
    assert_eq!(got.len(), 2, "{got:?}");

    // A restart that resumes after the last frame written: the Events' counts before it are
    // unknown, so an update counts 1 (a lower bound), not its whole count.
    d.signal(libc::SIGTERM);
    assert!(d.wait_exit(support::DEADLINE).await.success());
    let d = start(&server, &dir, &[]);
    let addr = d.http_addr().await;
    d.wait_log("resuming the watch").await;
    server.emit_line(&jumped("a", "old", 80));
    let got = metrics_until(addr, "after the restart", |m| m.get(BACKOFF) == Some(&1.0)).await;
    assert_eq!(got.len(), 1, "no burst from the Events' past: {got:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_reasons_stay_within_the_series_bound() {
    let server = tls_server().await;
    let dir = tempfile::tempdir().unwrap();
    let d = start(&server, &dir, &["--occurrence-series", "50"]);
    let addr = d.http_addr().await;
    wait_watching(&server, &server.current_rv().to_string()).await;
    for i in 0..2000 {
        let object = events::event_object("a", &format!("e{i}"), 1, 1)
            .replace(r#""reason":"BackOff""#, &format!(r#""reason":"Reason{i}""#));
        server.emit_line(&events::frame("ADDED", &object));
    }
    let got = metrics_until(addr, "every frame counted", |m| {
        m.values().sum::<f64>() == 2000.0
    })
    .await;
    assert!(
        got.len() <= 51,
        "50 label sets and the one they fold into: {}",
        got.len()
    );
    assert_eq!(
        got.get(r#"{type="Warning",reason="other",kind="other"}"#),
        Some(&1950.0)
    );
    let (_, text) = http_get(addr, "/metrics").await;
    assert!(
        text.contains("kube_event_logger_occurrences_folded_total 1950"),
        "{text}"
    );
}

/// GET over HTTP/1.0 (no chunked body), for Prometheus' API.
async fn get10(addr: std::net::SocketAddr, path: &str) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").as_bytes())
        .await
        .ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).await.ok()?;
    buf.split_once("\r\n\r\n").map(|(_, b)| b.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_prometheus_scrapes_the_occurrences_and_evaluates_every_rule() {
    if std::process::Command::new("prometheus")
        .arg("--version")
        .output()
        .is_err()
    {
        assert!(std::env::var_os("CI").is_none(), "CI installs prometheus");
        eprintln!("skipped: no prometheus on PATH (.ci/run installs Debian's)");
        return;
    }
    let server = tls_server().await;
    let dir = tempfile::tempdir().unwrap();
    let d = start(&server, &dir, &[]);
    let addr = d.http_addr().await;
    wait_watching(&server, &server.current_rv().to_string()).await;
    server.add("a", "x");
    server.emit_line(&jumped("a", "x", 30));
    metrics_until(addr, "written", |m| m.get(BACKOFF) == Some(&30.0)).await;

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let rules = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/deploy/prometheus/kube-event-logger.rules.yml"
    );
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\n\
             rule_files: [{rules}]\n\
             scrape_configs:\n  - job_name: kube-event-logger\n    static_configs: [{{targets: ['{addr}']}}]\n"
        ),
    )
    .unwrap();
    let mut prometheus = std::process::Command::new("prometheus")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("tsdb").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let api: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let query = "/api/v1/query?query=sum%20by%20(reason)%20(kube_event_logger_occurrences_total)";
    let mut scraped = String::new();
    let mut rules_ok = false;
    let deadline = std::time::Instant::now() + support::DEADLINE;
    while std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(250)).await;
        scraped = get10(api, query).await.unwrap_or_default();
        let rules = get10(api, "/api/v1/rules").await.unwrap_or_default();
        // Every rule evaluated at least once, none with an error.
        rules_ok = rules.contains(r#""health":"ok""#)
            && !rules.contains(r#""health":"unknown""#)
            && !rules.contains(r#""health":"err""#);
        if scraped.contains(r#""reason":"BackOff""#) && scraped.contains(r#""30""#) && rules_ok {
            break;
        }
    }
    let _ = prometheus.kill();
    let _ = prometheus.wait();
    assert!(
        scraped.contains(r#""reason":"BackOff""#) && scraped.contains(r#""30""#),
        "Prometheus read: {scraped}"
    );
    assert!(rules_ok, "every rule evaluates against the real series");
}
