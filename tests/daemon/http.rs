//! /healthz, /readyz and /metrics over a real socket, and the stall check they report.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_and_readyz_report_the_watch_and_the_output() {
    let server = tls_server().await;
    server.pause();
    let dir = tempfile::tempdir().unwrap();
    let d = start(&server, &dir, &[]);
    let addr = d.http_addr().await;
    assert_eq!(http_get(addr, "/healthz").await.0, 200);
    let (code, body) = http_get(addr, "/readyz").await;
    assert_eq!(code, 503);
    assert!(
        body.contains("no established watch for all namespaces"),
        "{body}"
    );
    server.resume();
    wait_ready(addr).await;
    assert_eq!(http_get(addr, "/nope").await.0, 404);
}

/// The value of one sample in a Prometheus text exposition.
fn sample(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')))
        .unwrap_or_else(|| panic!("no {name} in\n{text}"))
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_what_is_written_and_how_the_watch_went() {
    let server = tls_server().await;
    server.add("a", "listed");
    let dir = tempfile::tempdir().unwrap();
    let mut d = start(&server, &dir, &[]);
    let addr = d.http_addr().await;
    d.wait_lines(1).await;
    wait_watching(&server, &server.current_rv().to_string()).await;
    let (code, text) = http_get(addr, "/metrics").await;
    assert_eq!(code, 200);
    assert_eq!(
        sample(
            &text,
            r#"kube_event_logger_frames_written_total{type="ADDED"}"#
        ),
        1.0
    );
    assert_eq!(
        sample(
            &text,
            r#"kube_event_logger_relists_total{reason="initial"}"#
        ),
        1.0
    );
    assert_eq!(
        sample(
            &text,
            r#"kube_event_logger_watch_starts_total{reason="after_list"}"#
        ),
        1.0
    );
    server.add("a", "b");
    server.occur("a", "b");
    server.occur("a", "b");
    server.delete("a", "listed");
    let lines = d.wait_lines(5).await;
    let bytes: usize = lines.iter().map(|l| l.len() + 1).sum();
    let (_, text) = http_get(addr, "/metrics").await;
    assert_eq!(
        sample(
            &text,
            r#"kube_event_logger_frames_written_total{type="ADDED"}"#
        ),
        2.0
    );
    assert_eq!(
        sample(
            &text,
            r#"kube_event_logger_frames_written_total{type="MODIFIED"}"#
        ),
        2.0
    );
    assert_eq!(
        sample(
            &text,
            r#"kube_event_logger_frames_written_total{type="DELETED"}"#
        ),
        1.0
    );
    assert_eq!(
        sample(&text, "kube_event_logger_bytes_written_total"),
        bytes as f64
    );
    assert_eq!(sample(&text, "kube_event_logger_write_errors_total"), 0.0);
    assert_eq!(sample(&text, "kube_event_logger_rotations_total"), 0.0);
    let since = sample(&text, "kube_event_logger_seconds_since_last_frame");
    assert!((0.0..30.0).contains(&since), "{since}");
    // The test events happened on 2026-11-22T10:00:xx.
    assert!(sample(&text, "kube_event_logger_event_time_lag_seconds") > 0.0);
    server.close_watches();
    eventually("a resumed watch", || {
        server.requests().iter().filter(|r| r.is_watch()).count() >= 2
    })
    .await;
    let counted = r#"kube_event_logger_watch_starts_total{reason="server_closed"} 1"#;
    let scraped = support::poll(
        support::DEADLINE,
        || async { Some(http_get(addr, "/metrics").await.1).filter(|t| t.contains(counted)) },
        || counted.to_string(),
    )
    .await;
    scraped.unwrap_or_else(|e| panic!("{e}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_watch_turns_readiness_false_and_is_replaced() {
    let server = tls_server().await;
    let dir = tempfile::tempdir().unwrap();
    let d = start(&server, &dir, &["--stall-timeout", "1s"]);
    let addr = d.http_addr().await;
    wait_watching(&server, &server.current_rv().to_string()).await;
    wait_ready(addr).await;
    // A quiet cluster is not a stall: nothing newer on the server, no relist, still ready.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(http_get(addr, "/readyz").await.0, 200);
    let lists = || {
        server
            .requests()
            .iter()
            .filter(|r| !r.is_watch() && r.param("limit").is_some())
            .count()
    };
    let probes_and_lists = lists();
    assert!(
        probes_and_lists >= 2,
        "the stall probe looked at the server"
    );
    assert!(!d.stderr().contains("not ready, listing again"));

    // Now a watch that delivers nothing while an event is waiting on the server.
    server.fault(Fault::FrozenWatch);
    server.close_watches();
    eventually("the frozen watch", || {
        server.requests().iter().filter(|r| r.is_watch()).count() >= 2
    })
    .await;
    let e = server.add("a", "missed");
    let saw_not_ready = std::cell::Cell::new(false);
    let relisted = support::poll(
        support::DEADLINE,
        || async {
            let (code, body) = http_get(addr, "/readyz").await;
            if code == 503 {
                assert!(body.contains("no established watch"), "{body}");
                saw_not_ready.set(true);
            }
            (!d.lines().is_empty() && saw_not_ready.get()).then_some(())
        },
        || format!("saw 503: {}, lines: {:?}", saw_not_ready.get(), d.lines()),
    )
    .await;
    relisted.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        d.lines(),
        [e],
        "the relist wrote the event the frozen watch never sent"
    );
    wait_ready(addr).await;
    let (_, text) = http_get(addr, "/metrics").await;
    assert_eq!(sample(&text, "kube_event_logger_watch_stalls_total"), 1.0);
    assert_eq!(
        sample(
            &text,
            r#"kube_event_logger_relists_total{reason="stalled"}"#
        ),
        1.0
    );
    d.wait_log("not ready, listing again").await;
}

/// A GET with an Accept header over a raw socket: (status, content type, body).
async fn get_accepting(
    addr: std::net::SocketAddr,
    path: &str,
    accept: &str,
) -> (u16, String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let accept = if accept.is_empty() {
        String::new()
    } else {
        format!("Accept: {accept}\r\n")
    };
    let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\n{accept}Connection: close\r\n\r\n");
    s.write_all(request.as_bytes()).await.unwrap();
    let mut buf = String::new();
    s.read_to_string(&mut buf).await.unwrap();
    let (head, body) = buf.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let content_type = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-type: ")
                .map(str::to_string)
        })
        .unwrap_or_default();
    (status, content_type, body.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_served_in_the_format_their_content_type_names() {
    let server = tls_server().await;
    let dir = tempfile::tempdir().unwrap();
    let d = start(&server, &dir, &[]);
    let addr = d.http_addr().await;
    let prometheus = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
    let (code, ctype, body) = get_accepting(addr, "/metrics", prometheus).await;
    assert_eq!(code, 200);
    assert!(
        ctype.starts_with("application/openmetrics-text; version=1.0.0"),
        "{ctype}"
    );
    assert!(body.ends_with("# EOF\n"), "{body}");
    for accept in ["", "text/plain", "*/*"] {
        let (code, ctype, body) = get_accepting(addr, "/metrics", accept).await;
        assert_eq!(code, 200);
        assert!(
            ctype.starts_with("text/plain; version=0.0.4"),
            "{accept:?}: {ctype}"
        );
        assert!(!body.contains("# EOF"), "{body}");
        assert!(
            body.contains("# TYPE kube_event_logger_frames_written_total counter"),
            "{body}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promtool_finds_nothing_to_lint_in_a_live_metrics_body() {
    let server = tls_server().await;
    server.add("a", "one");
    let dir = tempfile::tempdir().unwrap();
    let mut d = start(&server, &dir, &[]);
    let addr = d.http_addr().await;
    d.wait_lines(1).await;
    // An occurrence after the LIST, so the occurrence metric has a sample to lint.
    wait_watching(&server, &server.current_rv().to_string()).await;
    server.add("a", "two");
    d.wait_lines(2).await;
    let (code, body) = http_get(addr, "/metrics").await;
    assert_eq!(code, 200);
    assert!(body.contains("kube_event_logger_ready 1"), "{body}");
    assert!(
        body.contains(
            r#"kube_event_logger_occurrences_total{type="Warning",reason="BackOff",kind="Pod"} 1"#
        ),
        "{body}"
    );
    // The process's own resources under the names client libraries use, and the build.
    for family in [
        "process_cpu_seconds_total ",
        "process_resident_memory_bytes ",
        "process_virtual_memory_bytes ",
        "process_open_fds ",
        "process_max_fds ",
        "process_start_time_seconds ",
    ] {
        let value: f64 = body
            .lines()
            .find_map(|l| l.strip_prefix(family))
            .unwrap_or_else(|| panic!("no {family}in\n{body}"))
            .parse()
            .unwrap();
        assert!(value >= 0.0, "{family}{value}");
    }
    let rss: f64 = body
        .lines()
        .find_map(|l| l.strip_prefix("process_resident_memory_bytes "))
        .unwrap()
        .parse()
        .unwrap();
    assert!((1e6..1e9).contains(&rss), "a plausible RSS: {rss}");
    assert!(
        body.contains(&format!(
            "kube_event_logger_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        )),
        "{body}"
    );
    let child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) if std::env::var_os("CI").is_none() => {
            eprintln!("skipped: promtool is not on PATH ({e}); .ci/run installs it");
            return;
        }
        Err(e) => panic!("promtool is needed in CI: {e}"),
    };
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool check metrics:\n{}{}\n--- body\n{body}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
