//! `kube-event-logger` (the real binary) against the fake API server, over real sockets (TLS
//! unless a test says plain), one behaviour per test, grouped by concern.

use testkit as support;

mod cli;
mod first_day;
mod http;
mod leader;
mod list;
mod messages;
mod occurrences;
mod restart;
mod rotation;
mod summary;
mod tail;
mod watch;

use std::time::Duration;

use support::apiserver::{FakeApiServer, Fault};
use support::harvester::{Harvester, all_kept_lines};
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
    let ready = || async { (http_get(addr, "/readyz").await.0 == 200).then_some(()) };
    let waited = support::poll(support::DEADLINE, ready, || "/readyz 200".into()).await;
    waited.unwrap_or_else(|e| panic!("never ready: {e}"));
}

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

fn output_names(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}
