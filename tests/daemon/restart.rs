//! Restarts: kill -9, torn lines, SIGTERM, restarts across rotations and after the API
//! server's history expired — nothing lost, nothing written twice.

use super::*;

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_process_on_the_same_output_exits_5_and_writes_nothing() {
    let server = tls_server().await;
    let dir = tempfile::tempdir().unwrap();
    let first = server.add("a", "one");
    let mut d = start(&server, &dir, &[]);
    d.wait_lines(1).await;
    wait_watching(&server, &server.current_rv().to_string()).await;
    let other = tempfile::tempdir().unwrap();
    let output = d.output.display().to_string();
    let mut second = start(&server, &other, &["--output-file", &output]);
    let status = second.wait_exit(support::DEADLINE).await;
    assert_eq!(status.code(), Some(5), "{}", second.stderr());
    let err = second.stderr();
    assert!(
        err.contains("another kube-event-logger") && err.contains(&output),
        "{err}"
    );
    let next = server.add("a", "two");
    assert_eq!(d.wait_lines(2).await, [first, next]);
    let names = std::fs::read_dir(d.output.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("events.json"))
        .collect::<Vec<_>>();
    assert_eq!(names, ["events.json"], "nothing beside it matches the glob");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changing_the_scopes_neither_skips_nor_repeats_events() {
    let server = tls_server().await;
    let dir = tempfile::tempdir().unwrap();
    let older_elsewhere = server.add("other", "o0");
    let a1 = server.add("default", "a1");
    // A narrow run: only `default`.
    let mut d = start(&server, &dir, &["-n", "default"]);
    assert_eq!(d.wait_lines(1).await, std::slice::from_ref(&a1));
    d.signal(libc::SIGTERM);
    assert!(d.wait_exit(support::DEADLINE).await.success());
    let a2 = server.add("default", "a2");
    let o2 = server.add("other", "o2");
    // Widened to all namespaces: `other` was never watched, so it is listed, with its older
    // event; `default`'s events already written are not written again.
    let mut d = start(&server, &dir, &[]);
    let expected = vec![a1, older_elsewhere, a2, o2];
    assert_eq!(d.wait_lines(4).await, expected);
    wait_watching(&server, &server.current_rv().to_string()).await;
    d.signal(libc::SIGTERM);
    assert!(d.wait_exit(support::DEADLINE).await.success());
    // Narrowed again: `other` resumes where the wide run left it.
    let o3 = server.add("other", "o3");
    let mut d = start(&server, &dir, &["-n", "other"]);
    let lines = d.wait_lines(5).await;
    assert_eq!(lines[4], o3);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_no_duplicates(&d.lines());
    assert_eq!(d.lines().len(), 5);
}
