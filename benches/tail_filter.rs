//! `kube-event-logger tail --filter` against `jq select(...)` on the same ≥ 1 GB file, in the
//! same run. Also the peak RSS of `tail` on a quarter of the file and on all of it (flat =
//! memory does not grow with the file).
//!
//! `cargo bench --bench tail_filter` (BENCH_MB=1100 by default; needs `jq` on PATH).

// getrusage/wait4/sysconf/kill through libc: CPU and memory figures of the processes measured.
#![allow(unsafe_code)]

use testkit::bench::run;
use testkit::bench::stats;
use testkit::events;

use run::{Measured, measure};
use stats::{env_or, not_a_bench_run};

use std::io::{BufWriter, Write};
use std::path::Path;
use std::process::Command;

const REASONS: &[&str] = &[
    "BackOff",
    "Unhealthy",
    "Pulled",
    "Created",
    "Started",
    "FailedScheduling",
    "Killing",
    "ScalingReplicaSet",
];

/// Writes realistic frames until the file holds `bytes`; returns the frame count.
fn generate(path: &Path, bytes: u64) -> u64 {
    let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(path).unwrap());
    let (mut written, mut n) = (0u64, 0u64);
    while written < bytes {
        let object = events::varied_object(n, REASONS);
        let line = events::frame(if n % 4 == 0 { "ADDED" } else { "MODIFIED" }, &object);
        out.write_all(line.as_bytes()).unwrap();
        out.write_all(b"\n").unwrap();
        written += line.len() as u64 + 1;
        n += 1;
    }
    out.flush().unwrap();
    n
}

fn main() {
    if not_a_bench_run() {
        return;
    }
    println!(
        "CPU: {} ({} logical CPUs)",
        stats::cpu_model(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let mb = env_or("BENCH_MB", 1100) as u64;
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("events.json");
    let quarter = dir.path().join("quarter.json");
    let frames = generate(&big, mb << 20);
    generate(&quarter, (mb << 20) / 4);
    let size = std::fs::metadata(&big).unwrap().len();
    println!("file: {frames} frames, {:.0} MB", size as f64 / 1e6);
    let expr = "type=Warning and reason=BackOff and count >= 5";
    let jq_expr = r#"select(.object.type == "Warning" and .object.reason == "BackOff" and .object.count >= 5)"#;
    let tail = |path: &Path| {
        measure(
            Command::new(env!("CARGO_BIN_EXE_kube-event-logger"))
                .args(["tail", "-o", "json", "--filter", expr])
                .arg(path),
        )
    };
    let t = tail(&big);
    let j = measure(Command::new("jq").args(["-c", jq_expr]).arg(&big));
    let lines = |m: &Measured| m.stdout.iter().filter(|b| **b == b'\n').count();
    let matched = lines(&t);
    assert_eq!(matched, lines(&j), "tail and jq select the same frames");
    let q = tail(&quarter);
    let mbps = |m: &Measured| size as f64 / 1e6 / m.secs;
    println!("filter: {expr}  ({matched} of {frames} frames match)");
    println!(
        "jq 1.x:   {:>7.2} s  {:>7.1} MB/s  peak RSS {:>7.1} MiB",
        j.secs,
        mbps(&j),
        j.peak_rss_kib as f64 / 1024.0
    );
    println!(
        "tail:     {:>7.2} s  {:>7.1} MB/s  peak RSS {:>7.1} MiB",
        t.secs,
        mbps(&t),
        t.peak_rss_kib as f64 / 1024.0
    );
    println!(
        "throughput ratio tail/jq: {:.1} (target >= 10)",
        j.secs / t.secs
    );
    println!(
        "tail peak RSS on 1/4 of the file: {:.1} MiB, on all of it: {:.1} MiB (flat)",
        q.peak_rss_kib as f64 / 1024.0,
        t.peak_rss_kib as f64 / 1024.0
    );
}
