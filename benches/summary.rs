//! `kube-event-logger summary` against the equivalent jq pipeline on the same file set (a `.gz`
//! rotated file, a plain rotated file and the active file; relist repeats and DELETED frames
//! among them), in the same run; `zcat -f … > /dev/null` is printed beside them as the plain
//! reader's rate. Also the peak RSS of `summary` on a quarter of the lines (six hours at the
//! same event rate) and on all of them (a day): flat = memory does not grow with the lines.
//!
//! `cargo bench --bench summary` (BENCH_LINES=1000000 by default; needs `jq` and `zcat`).

// wait4 through libc: the peak RSS of the process measured.
#![allow(unsafe_code)]

use testkit::bench::run;
use testkit::bench::stats;
use testkit::events;

use run::{Measured, measure};
use stats::{env_or, not_a_bench_run};

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

const REASONS: &[&str] = &[
    "BackOff",
    "Unhealthy",
    "Pulled",
    "Created",
    "Started",
    "Killing",
];

/// `lines` frames spread evenly over `span` seconds, in three files, every 50th repeated (a
/// relist) and every 97th a DELETED frame. Returns the files, oldest first.
fn generate(dir: &Path, lines: u64, span: u64) -> Vec<PathBuf> {
    let names = ["events.json.000001.gz", "events.json.000002", "events.json"];
    let paths: Vec<PathBuf> = names.iter().map(|n| dir.join(n)).collect();
    let mut files: Vec<Box<dyn Write>> = vec![
        Box::new(flate2::write::GzEncoder::new(
            std::fs::File::create(&paths[0]).unwrap(),
            flate2::Compression::fast(),
        )),
        Box::new(std::fs::File::create(&paths[1]).unwrap()),
        Box::new(std::fs::File::create(&paths[2]).unwrap()),
    ];
    let mut out: Vec<BufWriter<&mut Box<dyn Write>>> = files
        .iter_mut()
        .map(|f| BufWriter::with_capacity(1 << 20, f))
        .collect();
    let mut previous = String::new();
    for n in 0..lines {
        let file = &mut out[(n * 3 / lines) as usize];
        if n % 50 == 49 {
            writeln!(file, "{previous}").unwrap();
            continue;
        }
        let mut object = events::varied_object(n, REASONS);
        let at = jiff::Timestamp::from_second(1_795_000_000 + (n * span / lines) as i64).unwrap();
        let last = object.find(r#""lastTimestamp":""#).unwrap() + r#""lastTimestamp":""#.len();
        object.replace_range(
            last..last + 20,
            &at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        );
        let kind = if n % 97 == 0 { "DELETED" } else { "ADDED" };
        previous = events::frame(kind, &object);
        writeln!(file, "{previous}").unwrap();
    }
    for o in out.iter_mut() {
        o.flush().unwrap();
    }
    drop(out);
    paths
}

/// `summary -o json`'s frames, occurrences, by_type, reasons, namespaces and a per-10-minute
/// timeline in one streaming jq pass (faster than `jq -s … group_by`). Each frame adds its
/// Event's whole count: it keeps no per-Event last count (the occurrence rule's map, which in jq
/// runs at about a thousand lines a second) and does not drop relist repeats, so the baseline
/// is given that advantage.
const JQ: &str = r#"reduce (inputs | select(.type != "DELETED") | .object) as $e
  ({frames: 0, occurrences: 0, by_type: {}, reasons: {}, namespaces: {}, timeline: {}};
   ($e.series.count // $e.count // 1) as $n
   | .frames += 1 | .occurrences += $n | .by_type[$e.type] += $n
   | .reasons[$e.type + "/" + $e.reason] += $n | .namespaces[$e.metadata.namespace] += $n
   | .timeline[$e.lastTimestamp[0:15]] += $n)
  | .reasons |= (to_entries | sort_by(-.value) | .[0:10])"#;

fn main() {
    if not_a_bench_run() {
        return;
    }
    println!(
        "CPU: {} ({} logical CPUs)",
        stats::cpu_model(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let lines = env_or("BENCH_LINES", 1_000_000) as u64;
    let (all, quarter) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    // A day of events, and a quarter of the lines at the same rate (six hours): the peak RSS
    // of the two compares the number of lines, not the event rate.
    let files = generate(all.path(), lines, 86_400);
    generate(quarter.path(), lines / 4, 21_600);
    let bytes: u64 = files
        .iter()
        .map(|f| std::fs::metadata(f).unwrap().len())
        .sum();
    println!(
        "file set: {lines} lines in 3 files (one .gz), {:.0} MB on disk",
        bytes as f64 / 1e6
    );
    let summary = |dir: &Path| {
        measure(
            Command::new(env!("CARGO_BIN_EXE_kube-event-logger"))
                .args(["summary", "-o", "json"])
                .arg(dir.join("events.json")),
        )
    };
    let s = summary(all.path());
    let zcat = |tail: &str| {
        let list: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
        format!("zcat -f {} {tail}", list.join(" "))
    };
    let plain = measure(Command::new("sh").arg("-c").arg(zcat("> /dev/null")));
    let j = measure(
        Command::new("sh")
            .arg("-c")
            .arg(zcat(&format!("| jq -n '{JQ}'"))),
    );
    let got: serde_json::Value = serde_json::from_slice(&s.stdout).unwrap();
    let (counted, repeats) = (&got["occurrences"], &got["not_counted"]["relist_repeats"]);
    let want: serde_json::Value = serde_json::from_slice(&j.stdout).unwrap();
    assert_eq!(
        got["frames"], want["frames"],
        "summary reads the frames jq reads"
    );
    assert!(
        counted.as_u64().unwrap() <= want["occurrences"].as_u64().unwrap(),
        "jq also counts the relist repeats' counts"
    );
    let q = summary(quarter.path());
    let rate = |m: &Measured| lines as f64 / m.secs / 1e3;
    println!("occurrences: {counted} (+ {repeats} relist repeats jq counts too)");
    println!(
        "zcat alone: {:>7.2} s  {:>8.0} k lines/s (the plain reader)",
        plain.secs,
        rate(&plain)
    );
    println!("jq:         {:>7.2} s  {:>8.0} k lines/s", j.secs, rate(&j));
    println!(
        "summary:    {:>7.2} s  {:>8.0} k lines/s  peak RSS {:.1} MiB",
        s.secs,
        rate(&s),
        s.peak_rss_kib as f64 / 1024.0
    );
    println!(
        "speed ratio summary/jq: {:.1} (target >= 10)",
        j.secs / s.secs
    );
    println!(
        "summary peak RSS on {} lines: {:.1} MiB, on {lines}: {:.1} MiB",
        lines / 4,
        q.peak_rss_kib as f64 / 1024.0,
        s.peak_rss_kib as f64 / 1024.0
    );
}
