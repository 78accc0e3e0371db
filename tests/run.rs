//! `kube-event-logger run` against the fake API server, over real sockets (TLS unless a test says
//! plain), one behaviour per test.

mod deploy;
mod pipeline;
mod support;

use std::time::Duration;

use support::apiserver::{FakeApiServer, Fault};
use support::{Daemon, assert_no_duplicates, eventually, http_get, rv_of};

const TOKEN: &str = "test-token";

async fn tls_server() -> FakeApiServer {
    FakeApiServer::tls(TOKEN).await
}

fn start(server: &FakeApiServer, dir: &tempfile::TempDir, args: &[&str]) -> Daemon {
    Daemon::start(dir.path(), &server.kubeconfig(Some(TOKEN)), args)
}

/// Waits until the daemon has an open watch whose resourceVersion is `rv`.
async fn wait_watching(server: &FakeApiServer, rv: &str) {
    eventually(&format!("a watch from {rv}"), || {
        server
            .requests()
            .iter()
            .any(|r| r.is_watch() && r.param("resourceVersion") == Some(rv))
    })
    .await;
}

async fn wait_ready(addr: std::net::SocketAddr) {
    let start = tokio::time::Instant::now();
    while http_get(addr, "/readyz").await.0 != 200 {
        assert!(start.elapsed() < support::DEADLINE, "never ready");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_start_lists_every_page_then_streams_live_frames() {
    let server = tls_server().await;
    let mut expected = Vec::new();
    for i in 0..7 {
        expected.push(server.add(if i % 2 == 0 { "a" } else { "b" }, &format!("ev-{i}")));
    }
    let list_rv = server.current_rv().to_string();
    let dir = tempfile::tempdir().unwrap();
    let mut d = start(&server, &dir, &["--list-page-size", "3"]);
    assert_eq!(
        d.wait_lines(7).await,
        expected,
        "LIST items as ADDED frames with kind/apiVersion, oldest first"
    );
    wait_watching(&server, &list_rv).await;

    let lists: Vec<_> = server
        .requests()
        .into_iter()
        .filter(|r| !r.is_watch())
        .collect();
    assert_eq!(lists.len(), 3, "7 events in pages of 3");
    assert_eq!(lists[0].param("limit"), Some("3"));
    assert!(lists[0].param("continue").is_none());
    assert!(lists[1].param("continue").is_some() && lists[2].param("continue").is_some());
    let watch = server
        .requests()
        .into_iter()
        .find(|r| r.is_watch())
        .unwrap();
    assert_eq!(watch.param("allowWatchBookmarks"), Some("true"));

    expected.push(server.occur("a", "ev-0"));
    server.bookmark();
    expected.push(server.occur("a", "ev-0"));
    expected.push(server.delete("b", "ev-1"));
    expected.push(server.add("c", "late"));
    assert_eq!(
        d.wait_lines(11).await,
        expected,
        "MODIFIED and DELETED verbatim, BOOKMARK never"
    );

    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&d.output).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777 & !0o640, 0, "output mode {mode:o}");
    d.signal(libc::SIGTERM);
    assert!(d.wait_exit(support::DEADLINE).await.success());
    assert!(d.stdout().is_empty(), "stdout must stay empty");
    for line in d.stderr().lines() {
        assert!(
            serde_json::from_str::<serde_json::Value>(line).is_ok(),
            "--log-format json: {line}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wire_frames_are_written_byte_for_byte_over_plain_http() {
    let server = FakeApiServer::plain().await;
    let dir = tempfile::tempdir().unwrap();
    let mut d = Daemon::start(dir.path(), &server.kubeconfig(None), &[]);
    wait_watching(&server, &server.current_rv().to_string()).await;
    let fixtures = include_str!("fixtures/frames.jsonl");
    let mut expected = Vec::new();
    for line in fixtures.lines() {
        expected.push(server.emit_line(line));
        server.bookmark();
    }
    let got = d.wait_lines(expected.len()).await;
    assert_eq!(got, expected);
    // Go's escapes and non-ASCII text survive untouched.
    assert!(got.iter().any(|l| l.contains("\\u003c")) || !fixtures.contains("\\u003c"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_ended_by_the_server_resumes_after_the_last_frame() {
    let server = tls_server().await;
    let dir = tempfile::tempdir().unwrap();
    let mut d = start(&server, &dir, &[]);
    wait_watching(&server, &server.current_rv().to_string()).await;
    let mut expected: Vec<String> = (0..3).map(|i| server.add("a", &format!("e{i}"))).collect();
    d.wait_lines(3).await;
    server.close_watches();
    wait_watching(&server, &rv_of(&expected[2])).await;
    expected.push(server.occur("a", "e1"));
    expected.push(server.add("a", "e3"));
    assert_eq!(d.wait_lines(5).await, expected);
    let lists = server.requests().iter().filter(|r| !r.is_watch()).count();
    assert_eq!(lists, 1, "a clean end is resumed, not relisted");
}

/// Runs a daemon whose next watch suffers `fault` while five events stream; returns the
/// server, the daemon and the events, once all five are in the output exactly as sent.
async fn stream_through(fault: Fault) -> (FakeApiServer, Daemon, Vec<String>, tempfile::TempDir) {
    let server = tls_server().await;
    let dir = tempfile::tempdir().unwrap();
    let mut d = start(&server, &dir, &[]);
    wait_watching(&server, &server.current_rv().to_string()).await;
    server.fault(fault);
    server.close_watches();
    eventually("the faulty watch", || {
        server.requests().iter().filter(|r| r.is_watch()).count() >= 2
    })
    .await;
    let expected: Vec<String> = (0..5).map(|i| server.add("a", &format!("e{i}"))).collect();
    assert_eq!(d.wait_lines(5).await, expected);
    (server, d, expected, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_dropped_mid_frame_loses_and_repeats_nothing() {
    let (server, d, expected, _dir) = stream_through(Fault::DropMidFrame { after: 2 }).await;
    d.wait_log("the watch stream broke").await;
    // Resumed from a whole frame (what reached the client before the drop), not relisted.
    let watches: Vec<_> = server
        .requests()
        .into_iter()
        .filter(|r| r.is_watch())
        .collect();
    let resumed = watches[2].param("resourceVersion").unwrap().to_string();
    assert!(
        resumed == rv_of(&expected[0]) || resumed == rv_of(&expected[1]),
        "resumed from {resumed}"
    );
    assert_eq!(
        server.requests().iter().filter(|r| !r.is_watch()).count(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_line_is_never_written_and_the_watch_resumes() {
    let (_server, d, _, _dir) = stream_through(Fault::Garbage { after: 2 }).await;
    d.wait_log("malformed line").await;
    assert_no_duplicates(&d.lines());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_position_relists_and_writes_only_unwritten_versions() {
    let server = tls_server().await;
    let mut expected = vec![
        server.add("a", "A"),
        server.add("a", "B"),
        server.add("a", "E"),
    ];
    let dir = tempfile::tempdir().unwrap();
    let mut d = start(&server, &dir, &[]);
    d.wait_lines(3).await;
    wait_watching(&server, &server.current_rv().to_string()).await;
    // A gap: the watch ends, history moves on and is compacted before the client is back.
    server.pause();
    server.close_watches();
    let a2 = server.occur("a", "A");
    let c = server.add("a", "C");
    server.compact();
    server.resume();
    // A relist yields object versions as synthetic ADDED frames, as the API server does.
    expected.push(a2.replacen(r#"{"type":"MODIFIED""#, r#"{"type":"ADDED""#, 1));
    expected.push(c);
    assert_eq!(
        d.wait_lines(5).await,
        expected,
        "E and B are not written again"
    );
    d.wait_log("the watch position expired").await;
    wait_watching(&server, &server.current_rv().to_string()).await;
    expected.push(server.add("a", "D"));
    assert_eq!(d.wait_lines(6).await, expected);
    assert_eq!(
        server.requests().iter().filter(|r| !r.is_watch()).count(),
        2,
        "one relist"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_continue_token_restarts_the_list() {
    let server = tls_server().await;
    let expected: Vec<String> = (0..7).map(|i| server.add("a", &format!("e{i}"))).collect();
    server.fault(Fault::ExpireContinue);
    let dir = tempfile::tempdir().unwrap();
    let mut d = start(&server, &dir, &["--list-page-size", "3"]);
    assert_eq!(d.wait_lines(7).await, expected);
    wait_watching(&server, &server.current_rv().to_string()).await;
    let lists: Vec<_> = server
        .requests()
        .into_iter()
        .filter(|r| !r.is_watch())
        .collect();
    let statuses: Vec<u16> = lists.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [200, 410, 200, 200, 200]);
    assert!(lists[2].param("continue").is_none(), "the list starts over");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_and_restart_neither_loses_nor_duplicates() {
    let server = tls_server().await;
    let dir = tempfile::tempdir().unwrap();
    let mut expected = vec![server.add("a", "e0")];
    let mut d = start(&server, &dir, &[]);
    d.wait_lines(1).await;
    wait_watching(&server, &server.current_rv().to_string()).await;
    expected.push(server.add("a", "e1"));
    expected.push(server.occur("a", "e0"));
    d.wait_lines(3).await;
    d.kill9().await;
    // Changes while the daemon is down.
    expected.push(server.add("b", "e2"));
    expected.push(server.occur("a", "e0"));
    let before = server.requests().len();
    let mut d = start(&server, &dir, &[]);
    expected.push(server.delete("a", "e1"));
    assert_eq!(d.wait_lines(6).await, expected);
    let after = &server.requests()[before..];
    assert!(
        after[0].is_watch(),
        "a restart resumes from the output, it does not list"
    );
    assert_eq!(
        after[0].param("resourceVersion"),
        Some(rv_of(&expected[2]).as_str())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_torn_last_line_is_repaired_never_shipped() {
    let server = tls_server().await;
    let a = server.add("a", "A");
    let b = server.add("a", "B");
    let c = server.add("a", "C");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("log/events.json");
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    std::fs::write(&out, format!("{a}\n{b}\n{}", &c[..c.len() / 3])).unwrap();
    let mut d = start(&server, &dir, &[]);
    assert_eq!(d.wait_lines(3).await, [a, b.clone(), c]);
    d.wait_log("torn last line").await;
    let first = server.requests().into_iter().next().unwrap();
    assert!(first.is_watch());
    assert_eq!(first.param("resourceVersion"), Some(rv_of(&b).as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_namespace_gets_its_own_watch_and_resume_point() {
    let server = tls_server().await;
    let a0 = server.add("a", "a0");
    let b0 = server.add("b", "b0");
    server.add("c", "c0");
    let dir = tempfile::tempdir().unwrap();
    let mut d = start(&server, &dir, &["-n", "a", "--namespace", "b"]);
    let got = d.wait_lines(2).await;
    assert_eq!(
        got.iter().filter(|l| **l == a0 || **l == b0).count(),
        2,
        "{got:?}"
    );
    eventually("two watches", || {
        server.requests().iter().filter(|r| r.is_watch()).count() >= 2
    })
    .await;
    for r in server.requests() {
        assert!(
            r.path == "/api/v1/namespaces/a/events" || r.path == "/api/v1/namespaces/b/events",
            "{}",
            r.path
        );
    }
    server.add("c", "c1");
    let a1 = server.add("a", "a1");
    let b1 = server.occur("b", "b0");
    let got = d.wait_lines(4).await;
    assert!(got.contains(&a1) && got.contains(&b1));
    d.signal(libc::SIGTERM);
    assert!(d.wait_exit(support::DEADLINE).await.success());

    // Restart: each namespace resumes from its own newest line.
    let before = server.requests().len();
    let mut d = start(&server, &dir, &["-n", "a", "-n", "b"]);
    let b2 = server.occur("b", "b0");
    let got = d.wait_lines(5).await;
    assert_eq!(got[4], b2);
    assert!(got.iter().all(|l| !l.contains("\"namespace\":\"c\"")));
    let resumed: Vec<(String, String)> = server.requests()[before..]
        .iter()
        .filter(|r| r.is_watch())
        .map(|r| {
            (
                r.path.clone(),
                r.param("resourceVersion").unwrap().to_string(),
            )
        })
        .collect();
    assert!(
        resumed.contains(&("/api/v1/namespaces/a/events".into(), rv_of(&a1))),
        "{resumed:?}"
    );
    assert!(
        resumed.contains(&("/api/v1/namespaces/b/events".into(), rv_of(&b1))),
        "{resumed:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthorized_at_startup_exits_4_with_the_cause() {
    let server = tls_server().await;
    let dir = tempfile::tempdir().unwrap();
    let mut d = Daemon::start(dir.path(), &server.kubeconfig(Some("wrong-token")), &[]);
    let status = d.wait_exit(support::DEADLINE).await;
    assert_eq!(status.code(), Some(4), "{}", d.stderr());
    let err = d.stderr();
    assert!(
        err.contains("401 Unauthorized") && err.contains("token"),
        "{err}"
    );
    assert!(d.lines().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forbidden_at_startup_exits_4_naming_the_missing_rbac_rule() {
    let server = tls_server().await;
    server.set_forbidden(true);
    let dir = tempfile::tempdir().unwrap();
    let mut d = start(&server, &dir, &[]);
    let status = d.wait_exit(support::DEADLINE).await;
    assert_eq!(status.code(), Some(4));
    let err = d.stderr();
    assert!(err.contains("403 Forbidden"), "{err}");
    assert!(
        err.contains("verbs [get, list, watch]") && err.contains("resources [\\\"events\\\"]"),
        "{err}"
    );
    assert!(
        err.contains("cannot list resource"),
        "the server's message is kept: {err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_after_startup_is_retried_with_backoff() {
    let server = tls_server().await;
    let dir = tempfile::tempdir().unwrap();
    let mut d = start(&server, &dir, &[]);
    let rv = server.current_rv().to_string();
    wait_watching(&server, &rv).await;
    server.set_forbidden(true);
    server.close_watches();
    eventually("two refused retries", || {
        server.requests().iter().filter(|r| r.status == 403).count() >= 2
    })
    .await;
    let addr = d.http_addr().await;
    assert_eq!(
        http_get(addr, "/readyz").await.0,
        503,
        "not ready while refused"
    );
    server.set_forbidden(false);
    let e = server.add("a", "after");
    assert_eq!(d.wait_lines(1).await, [e]);
    wait_ready(addr).await;
    d.wait_log("the API server refuses us").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_and_throttling_back_off_and_honour_retry_after() {
    let server = tls_server().await;
    let dir = tempfile::tempdir().unwrap();
    let mut d = start(&server, &dir, &[]);
    wait_watching(&server, &server.current_rv().to_string()).await;
    server.fault(Fault::Status {
        code: 429,
        retry_after: Some(2),
    });
    server.fault(Fault::Status {
        code: 500,
        retry_after: None,
    });
    server.fault(Fault::Status {
        code: 503,
        retry_after: None,
    });
    let before = server.requests().len();
    server.close_watches();
    eventually("the 429", || {
        server.requests().iter().any(|r| r.status == 429)
    })
    .await;
    let e = server.add("a", "after-errors");
    assert_eq!(d.wait_lines(1).await, [e]);
    let reqs = server.requests()[before..].to_vec();
    let statuses: Vec<u16> = reqs.iter().map(|r| r.status).collect();
    assert_eq!(
        &statuses[..4],
        [429, 500, 503, 200],
        "no busy loop: one request per retry"
    );
    let waited = reqs[1].at.duration_since(reqs[0].at);
    assert!(
        waited >= Duration::from_secs(2),
        "Retry-After: 2 honoured, waited {waited:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_that_makes_no_progress_leads_to_a_relist() {
    let server = tls_server().await;
    let first = server.add("a", "A");
    let dir = tempfile::tempdir().unwrap();
    let mut d = start(&server, &dir, &[]);
    d.wait_lines(1).await;
    wait_watching(&server, &server.current_rv().to_string()).await;
    for _ in 0..3 {
        server.fault(Fault::EmptyWatch);
    }
    server.close_watches();
    eventually("a relist", || {
        server.requests().iter().filter(|r| !r.is_watch()).count() == 2
    })
    .await;
    d.wait_log("the watch makes no progress").await;
    let e = server.add("a", "B");
    assert_eq!(d.wait_lines(2).await, [first, e]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_writes_what_was_read_and_exits_0_within_2s() {
    let server = tls_server().await;
    let dir = tempfile::tempdir().unwrap();
    let mut d = start(&server, &dir, &[]);
    wait_watching(&server, &server.current_rv().to_string()).await;
    let expected: Vec<String> = (0..50).map(|i| server.add("a", &format!("e{i}"))).collect();
    d.wait_lines(50).await;
    d.signal(libc::SIGTERM);
    let status = d.wait_exit(Duration::from_secs(2)).await;
    assert_eq!(status.code(), Some(0), "{}", d.stderr());
    assert_eq!(d.lines(), expected);
    assert!(std::fs::read(&d.output).unwrap().ends_with(b"\n"));
    d.wait_log("output flushed and synced").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dash_writes_frames_to_stdout_and_nothing_else() {
    let server = tls_server().await;
    let e = server.add("a", "A");
    let dir = tempfile::tempdir().unwrap();
    let mut d = start(&server, &dir, &["--output", "-"]);
    eventually("a frame on stdout", || !d.stdout().is_empty()).await;
    d.signal(libc::SIGINT);
    assert_eq!(d.wait_exit(support::DEADLINE).await.code(), Some(0));
    assert_eq!(String::from_utf8(d.stdout()).unwrap(), format!("{e}\n"));
    assert!(!dir.path().join("log").exists());
}

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn context_flag_selects_the_cluster() {
    let server = tls_server().await;
    let e = server.add("a", "A");
    // The current context points at a closed port; --context picks the real one.
    let kc = server
        .kubeconfig(Some(TOKEN))
        .replace("current-context: fake", "current-context: dead")
        .replace(
            "contexts:\n",
            "contexts:\n- name: dead\n  context:\n    cluster: dead\n    user: fake\n",
        );
    let kc = kc.replace(
        "clusters:\n",
        "clusters:\n- name: dead\n  cluster:\n    server: https://127.0.0.1:9\n",
    );
    let dir = tempfile::tempdir().unwrap();
    let mut d = Daemon::start(dir.path(), &kc, &["--context", "fake"]);
    assert_eq!(d.wait_lines(1).await, [e]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_command_lines_exit_2_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = Daemon::start(dir.path(), "", &["--namespace", "Not_Valid"]);
    assert_eq!(d.wait_exit(support::DEADLINE).await.code(), Some(2));
    assert!(
        d.stderr().contains("not a valid namespace name"),
        "{}",
        d.stderr()
    );
    let mut d = Daemon::start(dir.path(), "not: [a kubeconfig", &[]);
    assert_eq!(d.wait_exit(support::DEADLINE).await.code(), Some(3));
    assert!(d.stderr().contains("kubeconfig"), "{}", d.stderr());
}

// --- The output file's lifecycle: rotation, compression, retention, restarts, disk full.

use support::harvester::{Harvester, all_kept_lines};

/// Adds `n` events at a high but bounded rate (batches of 20, ~1 ms apart).
async fn burst(server: &FakeApiServer, prefix: &str, n: usize) -> Vec<String> {
    let mut lines = Vec::new();
    for i in 0..n {
        lines.push(server.add(&format!("ns-{}", i % 7), &format!("{prefix}-{i}")));
        if i % 20 == 19 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    lines
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_harvester_reads_every_frame_once_across_rotations_within_the_disk_bound() {
    let server = tls_server().await;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    std::fs::create_dir_all(&log).unwrap();
    let harvester = Harvester::start(log.clone(), "events.json");
    let mut d = start(
        &server,
        &dir,
        &["--max-file-size", "1MiB", "--max-files", "2"],
    );
    wait_watching(&server, &server.current_rv().to_string()).await;
    let expected = burst(&server, "e", 4000).await;
    d.wait_lines(1).await;
    eventually("every frame harvested", || {
        harvester.lines().len() >= expected.len()
    })
    .await;
    d.signal(libc::SIGTERM);
    assert!(d.wait_exit(support::DEADLINE).await.success());
    let (harvested, max_bytes) = harvester.finish();
    assert_eq!(harvested.len(), expected.len(), "exactly once");
    assert_eq!(harvested, expected, "in order");
    let bound = (2 + 2) << 20;
    assert!(max_bytes <= bound, "disk use {max_bytes} > {bound}");
    let rotated = output_names(&log);
    assert!(rotated.iter().any(|n| n.ends_with(".gz")), "{rotated:?}");
    assert!(
        rotated.iter().all(|n| !n.starts_with('.')),
        "no temp file left: {rotated:?}"
    );
    // What is kept (gz decompressed, plain, active) is exactly the newest frames, in order.
    let kept = all_kept_lines(&log, "events.json");
    assert!(!kept.is_empty() && kept.len() < expected.len());
    assert_eq!(kept, expected[expected.len() - kept.len()..]);
    // Every file starts with a whole frame.
    for name in rotated.iter().filter(|n| !n.ends_with(".gz")) {
        let head = std::fs::read(log.join(name)).unwrap();
        assert!(
            head.is_empty() || head.starts_with(b"{\"type\":\""),
            "{name}"
        );
    }
}

fn output_names(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_after_rotation_resumes_from_the_rotated_files() {
    let server = tls_server().await;
    let dir = tempfile::tempdir().unwrap();
    let args = ["--max-file-size", "4KiB", "--max-files", "50"];
    let mut d = start(&server, &dir, &args);
    wait_watching(&server, &server.current_rv().to_string()).await;
    let mut expected = Vec::new();
    for i in 0..12 {
        expected.push(server.add("a", &format!("e{i}")));
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let log = dir.path().join("log");
    eventually("all written", || {
        all_kept_lines(&log, "events.json").len() == 12
    })
    .await;
    d.kill9().await;
    // No active file at restart (as after a crash right after a rotation; here its frames are
    // gone too): the position comes from the newest rotated file, and what followed it is read
    // again from the API's history — once.
    std::fs::remove_file(log.join("events.json")).unwrap();
    let kept_before = all_kept_lines(&log, "events.json");
    assert!(
        !kept_before.is_empty() && kept_before.len() < 12,
        "{} lines rotated",
        kept_before.len()
    );
    let mut d = start(&server, &dir, &args);
    expected.extend((12..14).map(|i| server.add("a", &format!("e{i}"))));
    eventually("the stream complete again", || {
        all_kept_lines(&log, "events.json").len() >= expected.len()
    })
    .await;
    d.signal(libc::SIGTERM);
    assert!(d.wait_exit(support::DEADLINE).await.success());
    assert_eq!(all_kept_lines(&log, "events.json"), expected);
    let first_watch = server
        .requests()
        .into_iter()
        .filter(|r| r.is_watch())
        .nth(1)
        .unwrap();
    assert_eq!(
        first_watch.param("resourceVersion"),
        Some(rv_of(kept_before.last().unwrap()).as_str())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_output_file_is_noticed_and_recreated() {
    let server = tls_server().await;
    let dir = tempfile::tempdir().unwrap();
    let mut d = start(&server, &dir, &[]);
    wait_watching(&server, &server.current_rv().to_string()).await;
    server.add("a", "before");
    d.wait_lines(1).await;
    std::fs::remove_file(&d.output).unwrap();
    let after = server.add("a", "after");
    assert_eq!(d.wait_lines(1).await, [after]);
    d.wait_log("deleted or moved").await;
}

/// A tmpfs mounted for one test, unmounted when dropped.
struct TinyFs(std::path::PathBuf);

impl TinyFs {
    fn mount(at: &std::path::Path, size: &str) -> Option<TinyFs> {
        std::fs::create_dir_all(at).unwrap();
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| TinyFs(at.to_path_buf()))
    }
}

impl Drop for TinyFs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_pauses_the_watch_and_loses_nothing() {
    let server = tls_server().await;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let Some(_fs) = TinyFs::mount(&log, "256k") else {
        eprintln!(
            "skipped: cannot mount a tmpfs here (the writer's disk-full handling is covered by output unit tests)"
        );
        return;
    };
    let mut d = start(&server, &dir, &[]);
    let addr = d.http_addr().await;
    wait_watching(&server, &server.current_rv().to_string()).await;
    wait_ready(addr).await;
    // Leave ~16 KiB free, then send ~52 KiB of frames.
    let filler = log.join("filler");
    let _ = std::fs::write(&filler, vec![0u8; 240 * 1024]);
    let expected: Vec<String> = (0..40)
        .map(|i| server.add("a", &format!("full-{i}")))
        .collect();
    d.wait_log("cannot write the output").await;
    assert_eq!(
        http_get(addr, "/readyz").await.0,
        503,
        "not ready while the disk is full"
    );
    let partial = d.lines();
    assert!(partial.len() < expected.len());
    assert_eq!(
        partial,
        expected[..partial.len()],
        "no torn or skipped line"
    );
    std::fs::remove_file(&filler).unwrap();
    assert_eq!(d.wait_lines(40).await, expected);
    d.wait_log("the output is writable again").await;
    wait_ready(addr).await;
}

// --- Filters: push-down to the API server and local evaluation.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_filter_is_pushed_down_in_part_and_equals_local_evaluation() {
    use kube_event_logger::{EventFrame, Filter};
    let expr = r#"type=Warning,namespace!=probes and message =~ "Failed|nodes""#;
    let server = tls_server().await;
    let dir = tempfile::tempdir().unwrap();
    let mut d = start(
        &server,
        &dir,
        &["--filter", expr, "--field-selector", "reason!=Unhealthy"],
    );
    wait_watching(&server, &server.current_rv().to_string()).await;
    let all: Vec<String> = include_str!("fixtures/frames.jsonl")
        .lines()
        .map(|l| server.emit_line(l))
        .collect();
    let filter = Filter::parse(expr).unwrap();
    let local: Vec<String> = all
        .iter()
        .filter(|l| {
            filter.matches(&EventFrame::parse(l.as_bytes()).unwrap())
                && !l.contains(r#""reason":"Unhealthy""#)
        })
        .cloned()
        .collect();
    assert_eq!(local.len(), 2, "the fixture frames this filter keeps");
    assert_eq!(d.wait_lines(local.len()).await, local);
    for r in server.requests() {
        assert_eq!(
            r.param("fieldSelector"),
            Some("reason!=Unhealthy,type=Warning,metadata.namespace!=probes"),
            "{}",
            r.path
        );
    }
    d.signal(libc::SIGTERM);
    assert!(d.wait_exit(support::DEADLINE).await.success());
    assert_eq!(d.lines(), local, "nothing else was written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_filter_exits_2_with_a_caret_under_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = Daemon::start(dir.path(), "", &["--filter", "type=Warning,kindd=Pod"]);
    assert_eq!(d.wait_exit(support::DEADLINE).await.code(), Some(2));
    let err = d.stderr();
    assert!(
        err.contains("unknown field `kindd`") && err.contains("did you mean `kind`?"),
        "{err}"
    );
    assert!(
        err.contains(r"type=Warning,kindd=Pod\n               ^^^^^"),
        "{err}"
    );
}

// --- `tail`: golden outputs, .gz and rotated input, follow across a rotation.

fn tail(args: &[&str]) -> std::process::Output {
    std::process::Command::new(support::BIN)
        .arg("tail")
        .args(args)
        .env("NO_COLOR", "1")
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

#[test]
fn tail_prints_each_format_as_its_golden_file() {
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/frames.jsonl");
    let cases: &[(&[&str], &str)] = &[
        (&[], "table.txt"),
        (&["-o", "wide"], "wide.txt"),
        (&["-o", "json"], "json.txt"),
        (
            &[
                "--no-headers",
                "--filter",
                "type=Warning and count>1 or frame.type=DELETED",
            ],
            "table-filtered.txt",
        ),
        (
            &[
                "--since",
                "2023-10-19T21:45:00Z",
                "--until",
                "2023-10-19T21:59:00Z",
                "-o",
                "wide",
                "--no-headers",
            ],
            "wide-since-until.txt",
        ),
    ];
    for (args, golden) in cases {
        let out = tail(&[&[fixtures][..], args].concat());
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let path = format!("{}/tests/tail/{golden}", env!("CARGO_MANIFEST_DIR"));
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::write(&path, &out.stdout).unwrap();
        }
        let expected = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            String::from_utf8(out.stdout).unwrap(),
            expected,
            "{args:?} vs {golden} (UPDATE_GOLDEN=1 rewrites)"
        );
    }
    assert_eq!(
        std::fs::read_to_string(fixtures).unwrap(),
        std::fs::read_to_string(format!(
            "{}/tests/tail/json.txt",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap(),
        "-o json is the raw lines"
    );
}

#[test]
fn tail_all_reads_gz_and_plain_rotated_files_oldest_first_and_reports_bad_lines() {
    use std::io::Write;
    let lines: Vec<&str> = include_str!("fixtures/frames.jsonl").lines().collect();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.json");
    let mut gz = flate2::write::GzEncoder::new(
        std::fs::File::create(dir.path().join("events.json.000001.gz")).unwrap(),
        flate2::Compression::default(),
    );
    writeln!(gz, "{}\n{}\n{}", lines[0], lines[1], lines[2]).unwrap();
    gz.finish().unwrap();
    std::fs::write(
        dir.path().join("events.json.000002"),
        format!("{}\nnot a frame\n{}\n", lines[3], lines[4]),
    )
    .unwrap();
    std::fs::write(&path, format!("{}\n{}\n{}\n", lines[5], lines[6], lines[7])).unwrap();
    let out = tail(&[path.to_str().unwrap(), "--all", "-o", "json"]);
    assert!(out.status.success());
    let expected: String = lines.iter().map(|l| format!("{l}\n")).collect();
    assert_eq!(String::from_utf8(out.stdout).unwrap(), expected);
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("events.json.000002:2: not a watch frame"),
        "{err}"
    );
    let out = tail(&[path.to_str().unwrap(), "-o", "json"]);
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().lines().count(),
        3,
        "without --all only the active file"
    );
    let out = tail(&[dir.path().join("missing.json").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_follow_keeps_going_across_a_rotation() {
    use std::io::{BufRead, Write};
    let lines: Vec<&str> = include_str!("fixtures/frames.jsonl").lines().collect();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.json");
    std::fs::write(&path, format!("{}\n", lines[0])).unwrap();
    let mut child = std::process::Command::new(support::BIN)
        .args(["tail", "-f", "-o", "json"])
        .arg(&path)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let next = || {
        rx.recv_timeout(support::DEADLINE)
            .expect("tail -f printed nothing")
    };
    assert_eq!(next(), lines[0]);
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    // A line written in two parts is printed once, whole.
    write!(f, "{}", &lines[1][..50]).unwrap();
    f.flush().unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    writeln!(f, "{}", &lines[1][50..]).unwrap();
    writeln!(f, "{}", lines[2]).unwrap();
    assert_eq!(next(), lines[1]);
    assert_eq!(next(), lines[2]);
    // Rotation: the rest of the old file, then the new file from its start.
    writeln!(f, "{}", lines[3]).unwrap();
    std::fs::rename(&path, dir.path().join("events.json.000001")).unwrap();
    writeln!(f, "{}", lines[4]).unwrap();
    std::fs::write(&path, format!("{}\n{}\n", lines[5], lines[6])).unwrap();
    for expected in &lines[3..7] {
        assert_eq!(next(), *expected);
    }
    let _ = child.kill();
    let _ = child.wait();
}

// --- /metrics and readiness on a stalled watch.

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
    let start = tokio::time::Instant::now();
    loop {
        let (_, text) = http_get(addr, "/metrics").await;
        if text.contains(r#"kube_event_logger_watch_starts_total{reason="server_closed"} 1"#) {
            break;
        }
        assert!(start.elapsed() < support::DEADLINE, "{text}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
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
    let mut saw_not_ready = false;
    let start = tokio::time::Instant::now();
    while d.lines().is_empty() || !saw_not_ready {
        let (code, body) = http_get(addr, "/readyz").await;
        if code == 503 {
            assert!(body.contains("no established watch"), "{body}");
            saw_not_ready = true;
        }
        assert!(
            start.elapsed() < support::DEADLINE,
            "saw 503: {saw_not_ready}, lines: {:?}",
            d.lines()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
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

#[test]
fn tail_highlights_warnings_only_on_a_terminal() {
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/frames.jsonl");
    // `script` gives the command a pseudo-terminal as stdout.
    let on_tty = std::process::Command::new("script")
        .args([
            "-qec",
            &format!("{} tail --no-headers {fixtures}", support::BIN),
            "/dev/null",
        ])
        .env_remove("NO_COLOR")
        .output();
    let Ok(on_tty) = on_tty else {
        eprintln!("skipped: no `script` (util-linux) to make a terminal");
        return;
    };
    let text = String::from_utf8_lossy(&on_tty.stdout);
    let yellow = text.lines().filter(|l| l.starts_with("\x1b[33m")).count();
    assert_eq!(yellow, 5, "the five Warning events: {text}");
    assert!(
        text.lines()
            .any(|l| l.contains("Normal") && !l.contains('\x1b'))
    );
    let piped = tail(&["--no-headers", fixtures]);
    assert!(
        !String::from_utf8_lossy(&piped.stdout).contains('\x1b'),
        "no colour into a pipe"
    );
}

#[test]
fn text_logs_are_the_default() {
    let out = std::process::Command::new(support::BIN)
        .args(["run", "--namespace", "Not_Valid"])
        .env("RUST_LOG", "info")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    let line = err.lines().next().unwrap();
    assert!(line.contains(" ERROR ") && !line.starts_with('{'), "{err}");
    assert!(out.stdout.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_after_the_history_expired_relists_without_duplicates() {
    let server = tls_server().await;
    let dir = tempfile::tempdir().unwrap();
    let mut expected = vec![server.add("a", "kept"), server.add("a", "changed")];
    let mut d = start(&server, &dir, &[]);
    d.wait_lines(2).await;
    d.kill9().await;
    // A long outage: changes, then etcd compaction past the output's last frame.
    let changed = server.occur("a", "changed");
    let new = server.add("a", "new");
    server.compact();
    let before = server.requests().len();
    let mut d = start(&server, &dir, &[]);
    expected.push(changed.replacen(r#"{"type":"MODIFIED""#, r#"{"type":"ADDED""#, 1));
    expected.push(new);
    assert_eq!(
        d.wait_lines(4).await,
        expected,
        "only the versions the output did not hold"
    );
    let after: Vec<(bool, u16)> = server.requests()[before..]
        .iter()
        .map(|r| (r.is_watch(), r.status))
        .take(2)
        .collect();
    assert_eq!(
        after,
        [(true, 200), (false, 200)],
        "resume, find the position expired, list"
    );
    d.wait_log("the watch position expired").await;
}
