//! Large LISTs: sorted in bounded memory (runs on disk beyond `--list-sort-memory`), a crash in
//! the middle of one, a full disk while sorting, sort files left by a crash, and a server that
//! does not serve its pages at one snapshot.

use super::*;
use support::apiserver::preloaded_line;
use support::{DEADLINE, poll};

/// Small pages and a small sort memory: a LIST of a few thousand Events spills many runs.
const SMALL: [&str; 4] = [
    "--list-page-size=100",
    "--list-sort-memory=16KiB",
    "--stall-timeout=1h",
    "--max-file-size=1GiB",
];

/// The lines a first LIST of preloaded Events writes: each Event once, oldest first.
fn preloaded_lines(events: &[(String, String)], first_rv: u64) -> Vec<String> {
    events
        .iter()
        .zip(first_rv..)
        .map(|((ns, name), rv)| preloaded_line(ns, name, rv))
        .collect()
}

fn versions(lines: &[String]) -> Vec<u64> {
    lines.iter().map(|l| rv_of(l).parse().unwrap()).collect()
}

/// Files in the output directory whose names a sort file would have.
fn sort_files(d: &Daemon) -> Vec<String> {
    std::fs::read_dir(d.output.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with(".events.json.list-"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_list_far_larger_than_the_sort_memory_is_written_oldest_first_each_event_once() {
    let server = tls_server().await;
    let first_rv = server.current_rv() + 1;
    let events = server.preload(3000);
    let expected = preloaded_lines(&events, first_rv);
    let dir = tempfile::tempdir().unwrap();
    let mut d = start(&server, &dir, &SMALL);
    let lines = d.wait_lines(3000).await;
    // 3000 Events of ~1.3 KB in runs of 16 KiB: ~250 runs, merged in two levels.
    assert_eq!(
        lines, expected,
        "every Event once, in resourceVersion order"
    );
    wait_watching(&server, &server.current_rv().to_string()).await;
    let pages = server.requests().iter().filter(|r| !r.is_watch()).count();
    assert_eq!(pages, 30, "paginated at --list-page-size");
    let next = server.add("ns-0", "after-the-list");
    assert_eq!(d.wait_lines(3001).await[3000], next);
    assert!(sort_files(&d).is_empty());
    d.wait_log("\"listed\":3000").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_while_listing_or_while_writing_a_large_list_then_restart_each_event_once() {
    let server = tls_server().await;
    let first_rv = server.current_rv() + 1;
    let events = server.preload(3000);
    let mut expected = preloaded_lines(&events, first_rv);
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = server.kubeconfig(Some(TOKEN));

    // 1. Killed while the pages come in: runs are on disk, nothing is written yet.
    server.pause_after_lists(12);
    let mut d = Daemon::start(dir.path(), &kubeconfig, &SMALL);
    eventually("12 LIST pages served", || {
        server.requests().iter().filter(|r| !r.is_watch()).count() == 12
    })
    .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    d.kill9().await;
    server.resume();
    assert!(d.lines().is_empty());
    assert!(
        sort_files(&d).is_empty(),
        "sort files vanish with the process"
    );

    // 2. Killed in the middle of writing the sorted LIST: the output cannot grow past 1 MiB
    // (runs of 256 KiB still fit), so it holds a prefix of the LIST when the process dies.
    let args = [
        "--list-page-size=100",
        "--list-sort-memory=256KiB",
        "--stall-timeout=1h",
    ];
    let mut d = Daemon::start_with_file_size_limit(dir.path(), &kubeconfig, &args, 1 << 20);
    d.wait_log("cannot write the output").await;
    let written = d.lines().len();
    assert!(
        written > 0 && written < 3000,
        "killed in the middle: {written} lines"
    );
    d.kill9().await;

    // Changes while it is down, then a clean restart: it lists again (the first LIST never
    // finished), so the changes come as LIST items, ADDED frames.
    expected.push(server.add("ns-3", "while-down"));
    let again = server.occur(&events[0].0, &events[0].1);
    expected.push(again.replacen(r#"{"type":"MODIFIED""#, r#"{"type":"ADDED""#, 1));
    let mut d = Daemon::start(dir.path(), &kubeconfig, &args);
    let lines = d.wait_lines(expected.len()).await;
    assert_no_duplicates(&lines);
    let mut got = lines.clone();
    got.sort_by_key(|l| rv_of(l).parse::<u64>().unwrap());
    assert_eq!(got, expected, "every Event exactly once");
    let v = versions(&lines);
    assert!(
        v.windows(2).all(|w| w[0] < w[1]),
        "in resourceVersion order"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_while_sorting_a_list_is_not_ready_retried_and_loses_nothing() {
    let server = tls_server().await;
    let first_rv = server.current_rv() + 1;
    let events = server.preload(500);
    let expected = preloaded_lines(&events, first_rv);
    let dir = tempfile::tempdir().unwrap();
    // No file may pass 8 KiB: the first 64 KiB sort run cannot be spilled.
    let args = [
        "--list-page-size=100",
        "--list-sort-memory=64KiB",
        "--stall-timeout=1h",
    ];
    let d = Daemon::start_with_file_size_limit(
        dir.path(),
        &server.kubeconfig(Some(TOKEN)),
        &args,
        8 << 10,
    );
    let addr = d.http_addr().await;
    let failed = d.wait_log("sorting the LIST on disk failed").await;
    assert!(failed.contains("File too large"), "{failed}");
    assert_eq!(http_get(addr, "/readyz").await.0, 503);
    let (_, metrics) = http_get(addr, "/metrics").await;
    assert!(
        !metrics.contains("kube_event_logger_write_errors_total 0"),
        "{metrics}"
    );
    assert!(d.lines().is_empty(), "nothing written, nothing torn");
    let requests_before = server.requests().len();
    // The disk has room again: the next retry lists again and writes everything once.
    d.lift_file_size_limit();
    let mut d = d;
    assert_eq!(d.wait_lines(500).await, expected);
    assert!(server.requests().len() > requests_before);
    let ready = poll(
        DEADLINE,
        || async { (http_get(addr, "/readyz").await.0 == 200).then_some(()) },
        || "ready again".into(),
    );
    ready.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sort_files_left_by_a_crash_are_removed_at_start() {
    let server = tls_server().await;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    std::fs::create_dir_all(&log).unwrap();
    let leftover = log.join(".events.json.list-4242-7");
    std::fs::write(&leftover, vec![b'x'; 4096]).unwrap();
    let d = start(&server, &dir, &[]);
    d.wait_log("removed LIST sort files left by an earlier crash")
        .await;
    assert!(!leftover.exists());
    wait_watching(&server, &server.current_rv().to_string()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_built_from_live_state_while_events_flow_lose_nothing() {
    let server = tls_server().await;
    let first_rv = server.current_rv() + 1;
    let events = server.preload(300);
    server.set_live_lists(true);
    server.pause_after_lists(1);
    let dir = tempfile::tempdir().unwrap();
    let mut d = start(&server, &dir, &["--list-page-size=50"]);
    eventually("the first page served", || !server.requests().is_empty()).await;
    // While the later pages are not yet served: an Event on the first page (by name order)
    // and one on a later page occur again, one is deleted, and new ones appear before and
    // after the first page's names.
    let mut keyed: Vec<&(String, String)> = events.iter().collect();
    keyed.sort();
    let (early, late, gone) = (keyed[0], keyed[299], keyed[150]);
    let changes = vec![
        server.occur(&early.0, &early.1),
        server.occur(&late.0, &late.1),
        server.delete(&gone.0, &gone.1),
        server.add("ns-0", "a-new-one"),
        server.add("ns-9", "z-new-one"),
    ];
    server.resume();
    let changed = [early, late, gone];
    let untouched: Vec<String> = events
        .iter()
        .zip(first_rv..)
        .filter(|(e, _)| !changed.contains(e))
        .map(|((ns, name), rv)| preloaded_line(ns, name, rv))
        .collect();
    let want = untouched.len() + changes.len();
    let lines = poll_lines(&mut d, want).await;
    assert_no_duplicates(&lines);
    for line in untouched.iter().chain(&changes) {
        assert!(lines.contains(line), "missing: {}", &line[..200]);
    }
    let v = versions(&lines);
    assert!(
        v.windows(2).all(|w| w[0] < w[1]),
        "in resourceVersion order"
    );
    d.wait_log("the LIST held items newer than its resourceVersion")
        .await;
}

/// Waits for at least `n` lines, then a moment more for any that should not come.
async fn poll_lines(d: &mut Daemon, n: usize) -> Vec<String> {
    d.wait_lines(n).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    d.lines()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_namespaces_are_listed_one_at_a_time() {
    let server = tls_server().await;
    for i in 0..40 {
        server.add("a", &format!("e{i:02}"));
        server.add("b", &format!("e{i:02}"));
    }
    let dir = tempfile::tempdir().unwrap();
    let args = ["-n", "a", "-n", "b", "--list-page-size=5"];
    let mut d = start(&server, &dir, &args);
    d.wait_lines(80).await;
    // Each namespace's 8 pages come together: the second LIST starts after the first ended,
    // so only one LIST's memory is ever held.
    let order: Vec<String> = server
        .requests()
        .iter()
        .filter(|r| !r.is_watch())
        .map(|r| r.path.clone())
        .collect();
    assert_eq!(order.len(), 16, "{order:?}");
    let switches = order.windows(2).filter(|w| w[0] != w[1]).count();
    assert_eq!(switches, 1, "LISTs interleaved: {order:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_while_a_large_list_is_written_exits_within_2s_and_the_restart_completes_it() {
    let server = tls_server().await;
    let first_rv = server.current_rv() + 1;
    let events = server.preload(20_000);
    let expected = preloaded_lines(&events, first_rv);
    let dir = tempfile::tempdir().unwrap();
    let args = ["--list-sort-memory=1MiB", "--max-file-size=1GiB"];
    let mut d = start(&server, &dir, &args);
    d.wait_lines(1).await;
    d.signal(libc::SIGTERM);
    let status = d.wait_exit(Duration::from_secs(2)).await;
    assert_eq!(status.code(), Some(0), "{}", d.stderr());
    let written = d.lines();
    assert_eq!(
        written[..],
        expected[..written.len()],
        "a prefix, oldest first"
    );
    assert!(written.len() < 20_000, "stopped in the middle of the LIST");
    let mut d = start(&server, &dir, &args);
    assert_eq!(d.wait_lines(20_000).await, expected);
}
