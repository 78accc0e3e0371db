//! Throughput and memory of `kube-event-logger run`: a local fake API server streams N realistic
//! frames (~1.3 KB: managedFields, non-ASCII text, Go escapes, escaped quotes) in one watch; the
//! daemon writes them to a file. `curl -sN URL > file` on the same stream, in the same run, is
//! the byte-copy baseline.
//!
//! The stream is sent in three chunk shapes: one frame per HTTP chunk (how kube-apiserver sends
//! events outside bursts: it flushes whenever its queue is empty), eight frames per chunk, and
//! 64 KiB chunks. Then a latency phase: single events on a quiet watch, the time until each is
//! in the file.
//!
//! `cargo bench --bench throughput` (BENCH_FRAMES=200000, BENCH_ROUNDS=3,
//! BENCH_SHAPES=frame,8,64KiB by default). Prints frames/s, CPU seconds and peak RSS for both,
//! the medians and the ratios per shape, and the latency.

// getrusage/wait4/sysconf/kill through libc: CPU and memory figures of the processes measured.
#![allow(unsafe_code)]

#[path = "support/measure.rs"]
mod measure;
#[path = "../tests/support/mod.rs"]
mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use measure::{children_cpu_secs, env_or, proc_cpu_secs, proc_status_kib, spawn_logger};
use support::apiserver::FakeApiServer;
use support::events;

const FROM_RV: u64 = 1000;

struct Run {
    secs: f64,
    cpu_secs: f64,
    peak_rss_kib: u64,
    /// RSS (KiB) when a quarter, half and all of the stream was written.
    rss_samples: Vec<u64>,
}

/// How the stream is cut into HTTP chunks.
#[derive(Clone, Copy)]
enum Shape {
    /// This many frames per chunk.
    Frames(usize),
    /// Chunks of this many bytes (cut anywhere, frames span chunks).
    Bytes(usize),
}

impl Shape {
    fn parse(s: &str) -> Shape {
        match s {
            "frame" => Shape::Frames(1),
            "64KiB" => Shape::Bytes(64 * 1024),
            n => Shape::Frames(n.parse().expect("BENCH_SHAPES: frame, a number, or 64KiB")),
        }
    }

    fn name(self) -> String {
        match self {
            Shape::Frames(1) => "1 frame/chunk".into(),
            Shape::Frames(n) => format!("{n} frames/chunk"),
            Shape::Bytes(n) => format!("{} KiB chunks", n / 1024),
        }
    }

    fn cut(self, stream: &Bytes) -> Vec<Bytes> {
        match self {
            Shape::Bytes(n) => (0..stream.len())
                .step_by(n)
                .map(|at| stream.slice(at..(at + n).min(stream.len())))
                .collect(),
            Shape::Frames(n) => {
                let ends: Vec<usize> = memchr::memchr_iter(b'\n', stream).map(|i| i + 1).collect();
                let mut chunks = Vec::new();
                let mut start = 0;
                for group in ends.chunks(n) {
                    let end = *group.last().unwrap();
                    chunks.push(stream.slice(start..end));
                    start = end;
                }
                chunks
            }
        }
    }
}

fn build_stream(n: usize) -> Bytes {
    let mut buf = Vec::with_capacity(n * 1400);
    for i in 0..n {
        let rv = FROM_RV + 1 + i as u64;
        let ns = format!("team-{}", i % 40);
        let name = format!("app-{}.17a{:013x}", i % 997, i);
        let kind = if i % 3 == 0 { "MODIFIED" } else { "ADDED" };
        buf.extend_from_slice(
            events::frame(
                kind,
                &events::event_object(&ns, &name, rv, 1 + (i % 50) as u64),
            )
            .as_bytes(),
        );
        buf.push(b'\n');
    }
    Bytes::from(buf)
}

fn run_curl(url: &str, out: &Path, expected: u64) -> Run {
    let cpu_before = children_cpu_secs();
    let started = Instant::now();
    let status = Command::new("curl")
        .args(["-sN", "-o"])
        .arg(out)
        .arg(url)
        .stdin(Stdio::null())
        .status()
        .expect("curl is needed as the baseline (apt-get install curl)");
    let secs = started.elapsed().as_secs_f64();
    let cpu_secs = children_cpu_secs() - cpu_before;
    assert!(status.success(), "curl failed");
    assert_eq!(
        std::fs::metadata(out).unwrap().len(),
        expected,
        "curl copied the whole stream"
    );
    Run {
        secs,
        cpu_secs,
        peak_rss_kib: 0,
        rss_samples: vec![],
    }
}

fn run_logger(server: &FakeApiServer, dir: &Path, out: &Path, expected: u64) -> Run {
    let started = Instant::now();
    // One file for the whole stream: the benchmark measures stream → file, not rotation.
    let mut child = spawn_logger(server, dir, out, &["--max-file-size", "1GiB"]);
    let pid = child.id();
    let mut rss_samples = Vec::new();
    let marks = [expected / 4, expected / 2, expected];
    let mut next_mark = 0;
    let deadline = Instant::now() + Duration::from_secs(600);
    let secs = loop {
        let len = std::fs::metadata(out).map(|m| m.len()).unwrap_or(0);
        while next_mark < marks.len() && len >= marks[next_mark] {
            rss_samples.push(proc_status_kib(pid, "VmRSS:"));
            next_mark += 1;
        }
        if len >= expected {
            break started.elapsed().as_secs_f64();
        }
        assert!(Instant::now() < deadline, "the logger did not finish");
        std::thread::sleep(Duration::from_millis(2));
    };
    let cpu_secs = proc_cpu_secs(pid);
    let peak_rss_kib = proc_status_kib(pid, "VmHWM:");
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    assert!(child.wait().unwrap().success(), "the logger exited cleanly");
    assert_eq!(
        std::fs::metadata(out).unwrap().len(),
        expected,
        "no more and no less than the stream"
    );
    Run {
        secs,
        cpu_secs,
        peak_rss_kib,
        rss_samples,
    }
}

/// A logger on a quiet watch: 20 single events, 50 ms apart; the time from the server sending
/// each to its line in the file (polled every 0.2 ms), median and max in ms.
fn single_frame_latency(
    rt: &tokio::runtime::Runtime,
    server: &FakeApiServer,
    dir: &Path,
) -> (f64, f64) {
    let out = dir.join("latency/events.json");
    let mut child = spawn_logger(server, dir, &out, &[]);
    let len = || std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0);
    let before = server.requests().len();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !server.requests()[before..].iter().any(|r| r.is_watch()) {
        assert!(Instant::now() < deadline, "no watch");
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(100));
    let mut ms = Vec::new();
    for i in 0..20 {
        let was = len();
        let sent = Instant::now();
        rt.block_on(async { server.add("latency", &format!("e{i}")) });
        while len() == was {
            assert!(
                sent.elapsed() < Duration::from_secs(10),
                "frame {i} never arrived"
            );
            std::thread::sleep(Duration::from_micros(200));
        }
        ms.push(sent.elapsed().as_secs_f64() * 1000.0);
        std::thread::sleep(Duration::from_millis(50));
    }
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let _ = child.wait();
    let max = ms.iter().cloned().fold(0.0, f64::max);
    (median(ms), max)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    // `cargo test --benches` / `cargo bench -- --list` pass flags; only run for `cargo bench`.
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return;
    }
    let frames = env_or("BENCH_FRAMES", 200_000);
    let rounds = env_or("BENCH_ROUNDS", 3);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let stream = build_stream(frames);
    let bytes = stream.len() as u64;
    println!(
        "stream: {frames} frames, {bytes} bytes ({:.0} bytes/frame)",
        bytes as f64 / frames as f64
    );
    let server = rt.block_on(FakeApiServer::plain());
    let url = format!(
        "{}/api/v1/events?watch=true&resourceVersion={FROM_RV}",
        server.url()
    );
    let dir = tempfile::tempdir().unwrap();
    let shapes = std::env::var("BENCH_SHAPES").unwrap_or_else(|_| "frame,8,64KiB".into());
    let mut table = Vec::new();
    for shape in shapes.split(',').map(Shape::parse) {
        server.prebuilt_stream(FROM_RV, shape.cut(&stream));
        println!("--- {}", shape.name());
        let (mut curl, mut logger) = (Vec::new(), Vec::new());
        for round in 1..=rounds {
            let c = run_curl(&url, &dir.path().join("curl.out"), bytes);
            let out = dir.path().join("events.json");
            let _ = std::fs::remove_file(&out);
            let l = run_logger(&server, dir.path(), &out, bytes);
            println!(
                "round {round}: curl {:>9.0} frames/s cpu {:.2}s | logger {:>9.0} frames/s cpu {:.2}s peak rss {} KiB, rss at 25/50/100%: {:?} KiB",
                frames as f64 / c.secs,
                c.cpu_secs,
                frames as f64 / l.secs,
                l.cpu_secs,
                l.peak_rss_kib,
                l.rss_samples
            );
            curl.push(c);
            logger.push(l);
        }
        let fps = |runs: &[Run]| median(runs.iter().map(|r| frames as f64 / r.secs).collect());
        let cpu = |runs: &[Run]| median(runs.iter().map(|r| r.cpu_secs).collect());
        let peak = logger.iter().map(|r| r.peak_rss_kib).max().unwrap();
        table.push((
            shape.name(),
            fps(&curl),
            fps(&logger),
            cpu(&curl),
            cpu(&logger),
            peak,
        ));
    }
    println!("\nmedians, same run ({frames} frames, {bytes} bytes):");
    println!(
        "| shape | curl frames/s | logger frames/s | throughput ratio | curl CPU s | logger CPU s | CPU ratio | logger peak RSS |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for (name, cf, lf, cc, lc, peak) in &table {
        println!(
            "| {name} | {cf:.0} | {lf:.0} | {:.2} | {cc:.2} | {lc:.2} | {:.2} | {:.1} MiB |",
            lf / cf,
            lc / cc,
            *peak as f64 / 1024.0
        );
    }
    server.clear_prebuilt();
    let (median_ms, max_ms) = single_frame_latency(&rt, &server, dir.path());
    println!(
        "single frame on a quiet watch, frame sent → line in the file: median {median_ms:.1} ms, max {max_ms:.1} ms (20 frames)"
    );
    drop(server);
}
