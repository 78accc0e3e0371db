//! Memory and speed of a first LIST as the cluster grows: a local fake API server holds N
//! realistic Events (~1.3 KB each, in 7 namespaces, named so that LIST order is not
//! resourceVersion order) and serves them in pages of 500, as kube-apiserver does for
//! `limit=500`. For each N, in the same run:
//!
//! - **server alone**: a minimal client in this process fetches every page and discards it —
//!   the fake server's own rate, the ceiling for any client;
//! - **logger**: `kube-event-logger run` from start until its first WATCH request (the LIST
//!   fetched, sorted and written): items/s, peak RSS (VmHWM), CPU seconds; the output is checked
//!   to hold N lines.
//!
//! `cargo bench --bench list` (BENCH_LIST_SIZES=10000,100000,1000000 by default). Needs about
//! 2 × 1.3 GB of disk at 10^6 (the output, and the sort runs while it is written) and 1.5 GB of
//! memory for the fake server's objects.

// getrusage/kill through libc: the logger's CPU and memory.
#![allow(unsafe_code)]

use testkit as support;
use testkit::bench::measure;

use std::time::{Duration, Instant};

use measure::{proc_cpu_secs, proc_status_kib, spawn_logger};
use support::apiserver::FakeApiServer;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

const PAGE: usize = 500;

/// Fetches every page of the Events LIST over one keep-alive connection; returns the items.
async fn fetch_all_pages(addr: std::net::SocketAddr) -> u64 {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut conn = BufReader::with_capacity(256 * 1024, stream);
    let mut token = String::new();
    let mut items = 0u64;
    let mut body = Vec::new();
    loop {
        let query = if token.is_empty() {
            format!("limit={PAGE}")
        } else {
            format!("limit={PAGE}&continue={token}")
        };
        let request = format!("GET /api/v1/events?{query} HTTP/1.1\r\nHost: x\r\n\r\n");
        conn.get_mut().write_all(request.as_bytes()).await.unwrap();
        let mut length = 0usize;
        let mut line = String::new();
        loop {
            line.clear();
            conn.read_line(&mut line).await.unwrap();
            if line == "\r\n" {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap();
            }
        }
        assert!(length > 0, "pages carry a Content-Length");
        body.resize(length, 0);
        conn.read_exact(&mut body).await.unwrap();
        // One creationTimestamp per item (the list's metadata has none).
        let text = std::str::from_utf8(&body).unwrap();
        items += text.matches(r#""creationTimestamp":"#).count() as u64;
        token = match text.split_once(r#""continue":""#) {
            Some((_, rest)) => rest[..rest.find('"').unwrap()].to_string(),
            None => return items,
        };
    }
}

struct Figures {
    items_per_s: f64,
    peak_rss_mib: f64,
    cpu_secs: f64,
}

/// The logger's first start against the server: until its first WATCH request.
fn logger_first_list(server: &FakeApiServer, n: u64) -> Figures {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("events.json");
    let before = server.requests().len();
    let started = Instant::now();
    let mut child = spawn_logger(server, dir.path(), &out, &["--max-file-size", "100GiB"]);
    let pid = child.id();
    let deadline = started + Duration::from_secs(1800);
    let trace = std::env::var_os("BENCH_TRACE_RSS").is_some();
    let mut last_trace = Instant::now();
    let secs = loop {
        if trace && last_trace.elapsed() > Duration::from_millis(500) {
            last_trace = Instant::now();
            let lists = server.requests()[before..].len();
            let written = std::fs::metadata(&out).map(|m| m.len() >> 20).unwrap_or(0);
            eprintln!(
                "{:>6.1}s RSS {:>6} KiB, {lists} pages, {written} MiB written",
                started.elapsed().as_secs_f64(),
                proc_status_kib(pid, "VmRSS:")
            );
        }
        if server.requests()[before..].iter().any(|r| r.is_watch()) {
            break started.elapsed().as_secs_f64();
        }
        assert!(Instant::now() < deadline, "the logger never watched");
        assert!(child.try_wait().unwrap().is_none(), "the logger exited");
        std::thread::sleep(Duration::from_millis(5));
    };
    let cpu_secs = proc_cpu_secs(pid);
    let peak_rss_kib = proc_status_kib(pid, "VmHWM:");
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    assert!(child.wait().unwrap().success(), "the logger exited cleanly");
    let lines = count_lines(&out);
    assert_eq!(lines, n, "the output holds every listed Event");
    Figures {
        items_per_s: n as f64 / secs,
        peak_rss_mib: peak_rss_kib as f64 / 1024.0,
        cpu_secs,
    }
}

fn count_lines(path: &std::path::Path) -> u64 {
    use std::io::Read;
    let mut f = std::fs::File::open(path).unwrap();
    let mut buf = vec![0u8; 1 << 20];
    let mut lines = 0;
    loop {
        let got = f.read(&mut buf).unwrap();
        if got == 0 {
            return lines;
        }
        lines += buf[..got].iter().filter(|&&b| b == b'\n').count() as u64;
    }
}

fn main() {
    let sizes: Vec<u64> = std::env::var("BENCH_LIST_SIZES")
        .unwrap_or_else(|_| "10000,100000,1000000".into())
        .split(',')
        .map(|s| s.trim().parse().expect("BENCH_LIST_SIZES: numbers"))
        .collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    println!(
        "CPU: {} ({} logical CPUs)",
        testkit::bench::stats::cpu_model(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!("First LIST, pages of {PAGE}, default --list-sort-memory (8 MiB)\n");
    println!(
        "{:>9} | {:>16} | {:>16} | {:>7} | {:>13} | {:>9}",
        "events", "server alone/s", "logger items/s", "ratio", "peak RSS MiB", "CPU s"
    );
    let mut rows = Vec::new();
    for &n in &sizes {
        let server = rt.block_on(FakeApiServer::plain());
        server.preload(n);
        let started = Instant::now();
        let fetched = rt.block_on(fetch_all_pages(server.addr));
        let alone = n as f64 / started.elapsed().as_secs_f64();
        assert_eq!(fetched, n, "the client saw every item");
        let logger = logger_first_list(&server, n);
        println!(
            "{n:>9} | {alone:>16.0} | {:>16.0} | {:>7.2} | {:>13.1} | {:>9.2}",
            logger.items_per_s,
            logger.items_per_s / alone,
            logger.peak_rss_mib,
            logger.cpu_secs
        );
        rows.push((n, logger));
        drop(server);
    }
    if let (Some((small, a)), Some((large, b))) = (rows.first(), rows.last()) {
        println!(
            "\npeak RSS at {large} events / at {small}: {:.2}",
            b.peak_rss_mib / a.peak_rss_mib
        );
    }
}
