//! `--leader-elect`: two real processes, each with its own output file, against one fake API
//! server serving Leases. Only the leader writes; a failover continues where the old leader's
//! file ended — exactly once after SIGTERM, nothing lost after `kill -9` or a leader cut off.

use super::*;
use support::{DEADLINE, poll};

const LEASE_NS: &str = "kube-system";
const LEASE: &str = "kube-event-logger";
/// Short timings, in the proportions of kube-scheduler's 15s / 10s / 2s.
const ELECT: [&str; 5] = [
    "--leader-elect",
    "--leader-elect-lease-duration=2s",
    "--leader-elect-renew-deadline=1s",
    "--leader-elect-retry-period=200ms",
    "--leader-elect-resource-namespace=kube-system",
];
const LEASE_DURATION: Duration = Duration::from_secs(2);
const RETRY_PERIOD: Duration = Duration::from_millis(200);

/// One replica: its own directory and output, `POD_NAME` as its identity.
fn replica(server: &FakeApiServer, dir: &tempfile::TempDir, pod: &str) -> Daemon {
    Daemon::start_with_env(
        dir.path(),
        &server.kubeconfig(Some(TOKEN)),
        &ELECT,
        &[("POD_NAME", pod)],
    )
}

/// Waits for a log line; returns when it was seen.
async fn seen(d: &Daemon, needle: &str) -> tokio::time::Instant {
    d.wait_log(needle).await;
    tokio::time::Instant::now()
}

fn positions_in_lease(server: &FakeApiServer) -> Option<String> {
    let lease = server.lease(LEASE_NS, LEASE)?;
    let positions = &lease["metadata"]["annotations"]["kube-event-logger.io/positions"];
    positions.as_str().map(str::to_owned)
}

fn holder(server: &FakeApiServer) -> Option<String> {
    let lease = server.lease(LEASE_NS, LEASE)?;
    lease["spec"]["holderIdentity"].as_str().map(str::to_owned)
}

async fn metric(d: &Daemon, name: &str) -> String {
    let (_, text) = http_get(d.http_addr().await, "/metrics").await;
    text.lines()
        .find(|l| l.starts_with(name))
        .unwrap_or_else(|| panic!("no {name} in\n{text}"))
        .to_string()
}

/// The leader gauge's line in a daemon's metrics.
async fn leader_gauge(d: &Daemon) -> String {
    metric(d, "kube_event_logger_leader ").await
}

/// Every line of both outputs.
fn union(a: &Daemon, b: &Daemon) -> Vec<String> {
    let mut all = a.lines();
    all.extend(b.lines());
    all
}

/// Waits until every change is in one of the two files; then every line of both.
async fn every_change_in_either(
    a: &Daemon,
    b: &Daemon,
    changes: &[String],
) -> Result<Vec<String>, String> {
    poll(
        DEADLINE,
        || {
            let all = union(a, b);
            std::future::ready(changes.iter().all(|c| all.contains(c)).then_some(all))
        },
        || "every change in one of the files".into(),
    )
    .await
}

/// Two replicas, `a-0` leading (its watch established), `b-0` standing by.
async fn two_replicas(
    server: &FakeApiServer,
    da: &tempfile::TempDir,
    db: &tempfile::TempDir,
) -> (Daemon, Daemon) {
    let a = replica(server, da, "a-0");
    a.wait_log("became the leader").await;
    let b = replica(server, db, "b-0");
    b.wait_log("standing by for the Lease").await;
    wait_watching(server, &server.current_rv().to_string()).await;
    (a, b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_leader_writes_and_a_standby_is_ready_and_says_who_leads() {
    let server = tls_server().await;
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (mut a, b) = two_replicas(&server, &da, &db).await;
    let changes: Vec<String> = (0..20).map(|i| server.add("a", &format!("e{i}"))).collect();
    assert_eq!(a.wait_lines(20).await, changes);
    tokio::time::sleep(LEASE_DURATION).await;
    assert!(b.lines().is_empty(), "a standby writes nothing");
    assert_eq!(holder(&server).as_deref(), Some("a-0"));
    let (code, body) = http_get(b.http_addr().await, "/readyz").await;
    assert_eq!(code, 200, "a standby is ready: healthy and waiting");
    assert!(body.contains("standby; a-0 leads"), "{body}");
    assert_eq!(leader_gauge(&b).await, "kube_event_logger_leader 0");
    assert_eq!(leader_gauge(&a).await, "kube_event_logger_leader 1");
    assert!(
        metric(
            &a,
            "kube_event_logger_leadership_transitions_total{reason=\"acquired\"}"
        )
        .await
        .ends_with(" 1")
    );
    // The renewals carry the write position: the last line written.
    let want = format!(r#"{{"*":"{}"}}"#, rv_of(&changes[19]));
    eventually("the position in the Lease", || {
        positions_in_lease(&server).as_deref() == Some(want.as_str())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_on_the_leader_hands_over_within_a_retry_period_exactly_once() {
    let server = tls_server().await;
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (mut a, mut b) = two_replicas(&server, &da, &db).await;
    let mut changes: Vec<String> = (0..30).map(|i| server.add("a", &format!("e{i}"))).collect();
    a.wait_lines(30).await;
    changes.extend((0..10).map(|i| server.occur("a", &format!("e{i}"))));
    a.signal(libc::SIGTERM);
    let stopped = tokio::time::Instant::now();
    // Changes while nobody leads.
    changes.extend((30..40).map(|i| server.add("b", &format!("e{i}"))));
    assert_eq!(a.wait_exit(Duration::from_secs(5)).await.code(), Some(0));
    let took_over = seen(&b, "became the leader").await;
    assert!(
        took_over - stopped < Duration::from_secs(1) + RETRY_PERIOD * 2,
        "the standby waited {:?}: the Lease was released, not left to expire",
        took_over - stopped
    );
    changes.extend((40..50).map(|i| server.add("b", &format!("e{i}"))));
    let written_by_a = a.lines().len();
    b.wait_lines(changes.len() - written_by_a).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        union(&a, &b),
        changes,
        "every change once, in order across the two files"
    );
    a.wait_log("released the Lease with the final positions")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_the_leader_the_standby_leads_within_the_lease_duration_and_nothing_is_lost() {
    let server = tls_server().await;
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (mut a, b) = two_replicas(&server, &da, &db).await;
    let mut changes: Vec<String> = (0..30).map(|i| server.add("a", &format!("e{i}"))).collect();
    a.wait_lines(30).await;
    // A renewal records line 30; the next 10 lines are written after it.
    let recorded = format!(r#"{{"*":"{}"}}"#, rv_of(&changes[29]));
    eventually("line 30's position in the Lease", || {
        positions_in_lease(&server).as_deref() == Some(recorded.as_str())
    })
    .await;
    changes.extend((0..10).map(|i| server.occur("a", &format!("e{i}"))));
    a.wait_lines(40).await;
    a.kill9().await;
    let killed = tokio::time::Instant::now();
    let positions: serde_json::Value =
        serde_json::from_str(&positions_in_lease(&server).unwrap()).unwrap();
    let renewed_at: u64 = positions["*"].as_str().unwrap().parse().unwrap();
    changes.extend((30..40).map(|i| server.add("b", &format!("e{i}"))));
    // Not silent meanwhile: the standby says the leader stopped renewing, and /readyz too.
    b.wait_log("the leader has not renewed the Lease").await;
    let (_, readyz) = http_get(b.http_addr().await, "/readyz").await;
    let took_over = seen(&b, "became the leader").await;
    let err = b.stderr();
    assert!(
        err.find("has not renewed the Lease") < err.find("became the leader"),
        "{err}"
    );
    assert!(
        readyz.contains("has not renewed it") || readyz.trim() == "ok",
        "{readyz}"
    );
    let waited = took_over - killed;
    assert!(
        waited >= LEASE_DURATION - RETRY_PERIOD
            && waited < LEASE_DURATION + RETRY_PERIOD * 2 + Duration::from_secs(1),
        "took over after {waited:?}: once the lease ran out, within about one retry period"
    );
    changes.extend((40..50).map(|i| server.add("b", &format!("e{i}"))));
    let all = every_change_in_either(&a, &b, &changes)
        .await
        .unwrap_or_else(|e| panic!("{e}\nA:\n{}\nB:\n{}", a.lines().join("\n"), b.stderr()));
    // What A wrote after its last renewal may be in B's file again: never more than that.
    assert_no_duplicates(&b.lines());
    let after_renewal = a
        .lines()
        .iter()
        .filter(|l| rv_of(l).parse::<u64>().unwrap() > renewed_at)
        .count();
    let twice = all.len() - changes.len();
    assert!(
        twice <= after_renewal,
        "{twice} duplicates, {after_renewal} lines written after the last renewal"
    );
    let b_first: u64 = rv_of(&b.lines()[0]).parse().unwrap();
    assert!(
        b_first > renewed_at,
        "B continues after the renewed position"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_cut_off_from_the_lease_stops_writing_before_it_could_be_taken() {
    let server = tls_server().await;
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (mut a, b) = two_replicas(&server, &da, &db).await;
    let mut changes: Vec<String> = (0..10).map(|i| server.add("a", &format!("e{i}"))).collect();
    a.wait_lines(10).await;
    // A can still read Events and the Lease, but its renewals fail from now on.
    server.fail_lease_updates_by(Some("a-0"));
    let cut = tokio::time::Instant::now();
    let mut i = 10;
    // Until A stood down and B leads, with B never leading while A still writes.
    loop {
        changes.push(server.add("a", &format!("e{i}")));
        i += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
        let a_stopped = a.stderr().contains("stopped writing: no longer the leader");
        let b_leads = b.stderr().contains("became the leader");
        if a_stopped && b_leads {
            break;
        }
        assert!(
            !b_leads || a_stopped,
            "the standby took over while the old leader was still writing"
        );
        assert!(cut.elapsed() < DEADLINE, "no failover:\n{}", a.stderr());
    }
    let a_had = a.lines().len();
    changes.extend((i..i + 10).map(|j| server.add("a", &format!("e{j}"))));
    let all = every_change_in_either(&a, &b, &changes)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(all.len() >= changes.len());
    assert_eq!(
        a.lines().len(),
        a_had,
        "the old leader writes nothing once it stood down"
    );
    assert_eq!(leader_gauge(&a).await, "kube_event_logger_leader 0");
    assert!(
        metric(
            &a,
            "kube_event_logger_leadership_transitions_total{reason=\"lost\"}"
        )
        .await
        .ends_with(" 1")
    );
    assert_eq!(holder(&server).as_deref(), Some("b-0"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_with_one_identity_never_write_at_the_same_time() {
    let server = tls_server().await;
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    // A copied manifest: both replicas are "a-0".
    let mut a = replica(&server, &da, "a-0");
    a.wait_log("became the leader").await;
    let b = replica(&server, &db, "a-0");
    b.wait_log("another process holds the Lease under this replica's identity")
        .await;
    wait_watching(&server, &server.current_rv().to_string()).await;
    let changes: Vec<String> = (0..20).map(|i| server.add("a", &format!("e{i}"))).collect();
    assert_eq!(a.wait_lines(20).await, changes);
    // Several lease durations of renewals by the other "a-0": b never takes the Lease.
    tokio::time::sleep(LEASE_DURATION * 3).await;
    assert!(b.lines().is_empty(), "one identity, one writer");
    assert!(!b.stderr().contains("became the leader"), "{}", b.stderr());
    assert_eq!(leader_gauge(&b).await, "kube_event_logger_leader 0");
    assert_eq!(leader_gauge(&a).await, "kube_event_logger_leader 1");
    // When the first stops, the second takes over from where it ended, as any standby.
    a.signal(libc::SIGTERM);
    assert!(a.wait_exit(DEADLINE).await.success());
    b.wait_log("became the leader").await;
    let more: Vec<String> = (20..25)
        .map(|i| server.add("a", &format!("e{i}")))
        .collect();
    let all = every_change_in_either(&a, &b, &more).await.unwrap();
    let mut expected = changes.clone();
    expected.extend(more);
    assert_eq!(all, expected, "each change once, in order");
}
