//! What checking a watch line whole costs, per line, against serde_json on the same lines in the
//! same run: the watch's `Frame::parse_checked` (frame placed, what counting occurrences needs
//! read, every byte validated, UTF-8 included: one pass), serde_json skipping the line whole
//! (`IgnoredAny`, plus the same UTF-8 check: the cheapest full check serde_json offers), and
//! `Frame::parse_head` (placing the frame only: what the watch did before every line was
//! validated).
//!
//! `cargo bench --bench validate` (BENCH_LINES=1000, BENCH_PASSES=200, BENCH_ROUNDS=5). Lines:
//! the wire fixtures and the throughput benchmark's Events (~1.3 KB, Go escapes, non-ASCII
//! text); a thousand distinct lines read over and over, so that they are in the cache as a line
//! just received is (a million distinct lines would measure the memory instead).

use testkit::bench::stats;
use testkit::events;

use std::hint::black_box;
use std::time::Instant;

use kube_event_logger::frame::{Frame, check_utf8};
use stats::{env_or, median, not_a_bench_run};

const FIXTURES: &str = include_str!("../tests/data/fixtures/frames.jsonl");

/// Nanoseconds per line of `f` over all lines, `passes` times.
fn per_line(lines: &[Vec<u8>], passes: usize, f: impl Fn(&[u8]) -> bool) -> f64 {
    let started = Instant::now();
    for _ in 0..passes {
        for line in lines {
            assert!(f(black_box(line)), "every line is a valid frame");
        }
    }
    started.elapsed().as_nanos() as f64 / (lines.len() * passes) as f64
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
    let n = env_or("BENCH_LINES", 1000);
    let passes = env_or("BENCH_PASSES", 200);
    let rounds = env_or("BENCH_ROUNDS", 5);
    let fixtures: Vec<&str> = FIXTURES.lines().collect();
    let lines: Vec<Vec<u8>> = (0..n)
        .map(|i| match i % 4 {
            0 => fixtures[i / 4 % fixtures.len()].as_bytes().to_vec(),
            _ => {
                let object = events::event_object("team-1", &format!("app-{i}"), i as u64, 3);
                events::frame("ADDED", &object).into_bytes()
            }
        })
        .collect();
    let bytes = lines.iter().map(Vec::len).sum::<usize>() / n;
    let (mut ours, mut serde, mut head) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        ours.push(per_line(&lines, passes, |l| {
            Frame::parse_checked(l).is_ok()
        }));
        serde.push(per_line(&lines, passes, |l| {
            check_utf8(l).is_ok() && serde_json::from_slice::<serde::de::IgnoredAny>(l).is_ok()
        }));
        head.push(per_line(&lines, passes, |l| Frame::parse_head(l).is_ok()));
    }
    let (ours, serde, head) = (median(ours), median(serde), median(head));
    println!(
        "{n} lines of {bytes} bytes on average, {passes} passes, median of {rounds} rounds, ns per line:"
    );
    println!("| check | ns/line | vs serde_json |");
    println!("|---|---|---|");
    println!(
        "| Frame::parse_checked (placed, facts read, validated whole) | {ours:.0} | {:.2}× |",
        ours / serde
    );
    println!("| serde_json IgnoredAny + UTF-8 (validated only) | {serde:.0} | 1.00× |");
    println!(
        "| Frame::parse_head (placed only) | {head:.0} | {:.2}× |",
        head / serde
    );
}
