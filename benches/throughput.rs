//! Per-event cost of `kube-event-logger run` on the stream shapes kube-apiserver sends, against
//! `curl -sN` on the same bytes in the same run.
//!
//! The server (`support/raw_server.rs`) encodes the chunked watch body once, before the clock
//! starts, and writes it in 1 MiB slices, so a plain reader is limited only by itself: the
//! benchmark prints that server-alone rate beside the clients'. Shapes:
//! - `frame`: each frame its own HTTP chunk, back to back (a busy API server flushes about every
//!   event; a burst arrives as many small chunks per read);
//! - `64`: 64 frames per chunk, back to back;
//! - `64KiB`: 64 KiB chunks cut anywhere (frames span chunks);
//! - `trickle`: each event its own chunk and its own write, BENCH_TRICKLE_RATE a second (400):
//!   a normal cluster. CPU per event and voluntary context switches (wake-ups) per event, for
//!   both clients, over the stream only.
//!
//! Then the latency of single events on a quiet watch (the fake API server, TLS off).
//!
//! `cargo bench --bench throughput` (BENCH_FRAMES=200000, BENCH_ROUNDS=5,
//! BENCH_SHAPES=frame,64,64KiB,trickle, BENCH_TRICKLE_FRAMES=2000). BENCH_LOGGER=PATH measures
//! another build with the same harness.

// getrusage/kill through libc: CPU, memory and context switches of the processes measured.
#![allow(unsafe_code)]

use testkit as support;
use testkit::bench::measure;
use testkit::bench::raw_server;
use testkit::bench::stats;

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;
use measure::{proc_cpu_secs, proc_cpu_split, proc_status_kib, spawn_logger, spawn_logger_at};
use raw_server::{Pace, RawServer};
use stats::{env_or, median, not_a_bench_run};
use support::apiserver::FakeApiServer;
use support::events;

const FROM_RV: u64 = 1000;

struct Run {
    secs: f64,
    cpu_secs: f64,
    /// The part of `cpu_secs` spent in user space (the rest is the kernel's: the socket's reads,
    /// the file's writes).
    user_secs: f64,
    /// Voluntary context switches (the process gave up the CPU to wait: a wake-up each).
    wakeups: f64,
    peak_rss_kib: u64,
    /// RSS (KiB) when a quarter, half and all of the stream was written.
    rss_samples: Vec<u64>,
}

/// How the stream is cut into HTTP chunks.
#[derive(Clone, Copy, PartialEq)]
enum Shape {
    /// This many frames per chunk, back to back.
    Frames(usize),
    /// Chunks of this many bytes (cut anywhere, frames span chunks).
    Bytes(usize),
    /// One frame per chunk and per write, this many a second.
    Trickle(u64),
}

impl Shape {
    fn parse(s: &str) -> Shape {
        match s {
            "frame" => Shape::Frames(1),
            "64KiB" => Shape::Bytes(64 * 1024),
            "trickle" => Shape::Trickle(env_or("BENCH_TRICKLE_RATE", 400) as u64),
            n => Shape::Frames(
                n.parse()
                    .expect("BENCH_SHAPES: frame, a number, 64KiB or trickle"),
            ),
        }
    }

    fn name(self) -> String {
        match self {
            Shape::Frames(1) => "1 frame/chunk, back to back".into(),
            Shape::Frames(n) => format!("{n} frames/chunk, back to back"),
            Shape::Bytes(n) => format!("{} KiB chunks", n / 1024),
            Shape::Trickle(r) => format!("trickle: 1 frame/chunk, {r}/s"),
        }
    }

    fn cut(self, stream: &Bytes) -> Vec<Bytes> {
        let per_frame = |n: usize| {
            let ends: Vec<usize> = memchr::memchr_iter(b'\n', stream).map(|i| i + 1).collect();
            let mut chunks = Vec::new();
            let mut start = 0;
            for group in ends.chunks(n) {
                let end = *group.last().unwrap();
                chunks.push(stream.slice(start..end));
                start = end;
            }
            chunks
        };
        match self {
            Shape::Bytes(n) => (0..stream.len())
                .step_by(n)
                .map(|at| stream.slice(at..(at + n).min(stream.len())))
                .collect(),
            Shape::Frames(n) => per_frame(n),
            Shape::Trickle(_) => per_frame(1),
        }
    }

    fn pace(self) -> Pace {
        match self {
            Shape::Trickle(rate) => Pace::Every(Duration::from_nanos(1_000_000_000 / rate)),
            _ => Pace::Burst,
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

/// What a process has used so far: CPU seconds, the user-space part of them, and voluntary
/// context switches.
#[derive(Clone, Copy)]
struct Usage {
    cpu: f64,
    user: f64,
    wakeups: f64,
}

impl std::ops::Sub for Usage {
    type Output = Usage;
    fn sub(self, earlier: Usage) -> Usage {
        Usage {
            cpu: self.cpu - earlier.cpu,
            user: self.user - earlier.user,
            wakeups: self.wakeups - earlier.wakeups,
        }
    }
}

/// The usage of a running process: its CPU to the nanosecond (its CPU-time clock), the user part
/// from /proc in 10 ms ticks (curl's, from `getrusage`, in microseconds).
fn proc_usage(pid: u32) -> Usage {
    let (user, _) = proc_cpu_split(pid);
    Usage {
        cpu: proc_cpu_secs(pid),
        user,
        wakeups: proc_status_kib(pid, "voluntary_ctxt_switches:") as f64,
    }
}

/// The usage of all waited-for children so far.
fn children_usage() -> Usage {
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Usage {
        cpu: tv(usage.ru_utime) + tv(usage.ru_stime),
        user: tv(usage.ru_utime),
        wakeups: usage.ru_nvcsw as f64,
    }
}

/// Writes and removes a file of `bytes` in `dir` just before a client is measured, so that the
/// page cache pages its output takes are ones this machine has already backed. On a VM whose
/// host backs memory on first touch and takes back what stays free (virtio-balloon's free page
/// reporting), writing to pages not touched for a few seconds costs several times as much
/// kernel time (`dd` of 2 GB in 256 KiB writes: 4.2 s of system time cold, 0.5 s right after),
/// and that cost fell on whichever client wrote first: it is the machine's, not the client's.
fn warm_page_cache(dir: &Path, bytes: u64) {
    let path = dir.join("warm-up");
    let block = vec![0u8; 1 << 20];
    let mut file = std::fs::File::create(&path).unwrap();
    for _ in 0..bytes.div_ceil(block.len() as u64) {
        std::io::Write::write_all(&mut file, &block).unwrap();
    }
    drop(file);
    std::fs::remove_file(&path).unwrap();
}

/// Waits for the server to start sending the stream to a client.
fn wait_watching(server: &RawServer) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !server.watching.load(Ordering::SeqCst) {
        assert!(Instant::now() < deadline, "no watch");
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// curl on the stream: its time, and its CPU and wake-ups from the moment the stream starts.
fn run_curl(server: &RawServer, out: &Path, expected: u64) -> Run {
    let before_children = children_usage();
    let started = Instant::now();
    let child = Command::new("curl")
        .args(["-sN", "-o"])
        .arg(out)
        .arg(server.watch_url(FROM_RV))
        .stdin(Stdio::null())
        .spawn()
        .expect("curl is needed as the baseline (apt-get install curl)");
    wait_watching(server);
    let at_start = proc_usage(child.id());
    let status = child.wait_with_output().unwrap().status;
    let secs = started.elapsed().as_secs_f64();
    let after = children_usage();
    assert!(status.success(), "curl failed");
    assert_eq!(
        std::fs::metadata(out).unwrap().len(),
        expected,
        "curl copied the whole stream"
    );
    let used = after - before_children - at_start;
    Run {
        secs,
        cpu_secs: used.cpu,
        user_secs: used.user,
        wakeups: used.wakeups,
        peak_rss_kib: 0,
        rss_samples: vec![],
    }
}

/// Voluntary context switches per thread (name → count), for BENCH_TRACE_THREADS.
fn per_thread(pid: u32) -> std::collections::BTreeMap<String, u64> {
    let mut out = std::collections::BTreeMap::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let tid = task.file_name().to_string_lossy().into_owned();
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        let n = proc_status_kib(tid.parse().unwrap_or(0), "voluntary_ctxt_switches:");
        *out.entry(format!("{}:{tid}", comm.trim())).or_default() += n;
    }
    out
}

/// The logger on the stream: its time (start to the last byte in the file), and its CPU and
/// wake-ups from the moment the stream starts to the last byte written.
fn run_logger(server: &RawServer, dir: &Path, out: &Path, expected: u64) -> Run {
    let started = Instant::now();
    // One file for the whole stream: the benchmark measures stream → file, not rotation.
    let mut child = spawn_logger_at(&server.url(), dir, out, &["--max-file-size", "1GiB"]);
    let pid = child.id();
    wait_watching(server);
    let at_start = proc_usage(pid);
    let trace = std::env::var_os("BENCH_TRACE_THREADS").is_some();
    let threads_at_start = if trace {
        per_thread(pid)
    } else {
        Default::default()
    };
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
        std::thread::sleep(Duration::from_micros(500));
    };
    let end = proc_usage(pid);
    if trace {
        for (thread, n) in per_thread(pid) {
            let before = threads_at_start.get(&thread).copied().unwrap_or(0);
            eprintln!("  {thread}: {} voluntary switches", n - before);
        }
    }
    let peak_rss_kib = proc_status_kib(pid, "VmHWM:");
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    assert!(child.wait().unwrap().success(), "the logger exited cleanly");
    assert_eq!(
        std::fs::metadata(out).unwrap().len(),
        expected,
        "no more and no less than the stream"
    );
    let used = end - at_start;
    Run {
        secs,
        cpu_secs: used.cpu,
        user_secs: used.user,
        wakeups: used.wakeups,
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

fn main() {
    if not_a_bench_run() {
        return;
    }
    println!(
        "CPU: {} ({} logical CPUs)",
        stats::cpu_model(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let frames = env_or("BENCH_FRAMES", 200_000);
    let trickle_frames = env_or("BENCH_TRICKLE_FRAMES", 2000);
    let rounds = env_or("BENCH_ROUNDS", 5);
    let dir = tempfile::tempdir().unwrap();
    let server = RawServer::start(FROM_RV);
    let shapes = std::env::var("BENCH_SHAPES").unwrap_or_else(|_| "frame,64,64KiB,trickle".into());
    let mut table = Vec::new();
    for shape in shapes.split(',').map(Shape::parse) {
        let n = if matches!(shape, Shape::Trickle(_)) {
            trickle_frames
        } else {
            frames
        };
        let stream = build_stream(n);
        let bytes = stream.len() as u64;
        let chunks = shape.cut(&stream);
        println!("--- {} ({n} frames, {bytes} bytes)", shape.name());
        server.set_stream(&chunks, shape.pace());
        let alone = server.alone_rate(FROM_RV, n);
        println!("server alone: {alone:.0} frames/s");
        let (mut curl, mut logger) = (Vec::new(), Vec::new());
        for round in 1..=rounds {
            // Each output is removed as soon as it is measured, so that no client's run pays for
            // writing back the other's pages; the order alternates, so that neither always runs
            // second on a machine that warms up or slows down.
            let measure_curl = || {
                let out = dir.path().join("curl.out");
                warm_page_cache(dir.path(), bytes);
                server.set_stream(&chunks, shape.pace());
                let run = run_curl(&server, &out, bytes);
                let _ = std::fs::remove_file(&out);
                run
            };
            let measure_logger = || {
                let out = dir.path().join(format!("events-{round}.json"));
                warm_page_cache(dir.path(), bytes);
                server.set_stream(&chunks, shape.pace());
                let run = run_logger(&server, dir.path(), &out, bytes);
                let _ = std::fs::remove_file(&out);
                run
            };
            let (c, l) = if round % 2 == 1 {
                let c = measure_curl();
                (c, measure_logger())
            } else {
                let l = measure_logger();
                (measure_curl(), l)
            };
            println!(
                "round {round}: curl {:>8.0} frames/s {:>6.2} µs CPU/frame (user {:.2}) {:.2} wake-ups/frame | logger {:>8.0} frames/s {:>6.2} µs CPU/frame (user {:.2}) {:.2} wake-ups/frame, peak rss {} KiB, rss at 25/50/100%: {:?} KiB",
                n as f64 / c.secs,
                c.cpu_secs * 1e6 / n as f64,
                c.user_secs * 1e6 / n as f64,
                c.wakeups / n as f64,
                n as f64 / l.secs,
                l.cpu_secs * 1e6 / n as f64,
                l.user_secs * 1e6 / n as f64,
                l.wakeups / n as f64,
                l.peak_rss_kib,
                l.rss_samples
            );
            curl.push(c);
            logger.push(l);
        }
        let med = |runs: &[Run], f: &dyn Fn(&Run) -> f64| median(runs.iter().map(f).collect());
        let fps = |r: &Run| n as f64 / r.secs;
        let cpu = |r: &Run| r.cpu_secs * 1e6 / n as f64;
        let user = |r: &Run| r.user_secs * 1e6 / n as f64;
        let wake = |r: &Run| r.wakeups / n as f64;
        let ratio = |f: &dyn Fn(&Run) -> f64| {
            let v: Vec<f64> = logger.iter().zip(&curl).map(|(l, c)| f(l) / f(c)).collect();
            (
                median(v.clone()),
                v.iter().cloned().fold(f64::MAX, f64::min),
                v.iter().cloned().fold(0.0, f64::max),
            )
        };
        table.push((
            shape.name(),
            alone,
            med(&curl, &fps),
            med(&logger, &fps),
            ratio(&fps),
            med(&curl, &cpu),
            med(&logger, &cpu),
            ratio(&cpu),
            med(&curl, &wake),
            med(&logger, &wake),
            logger.iter().map(|r| r.peak_rss_kib).max().unwrap(),
            (med(&curl, &user), med(&logger, &user)),
        ));
    }
    println!(
        "\nmedians of {rounds} rounds, same run (ratios: logger/curl per round, median [min–max]):"
    );
    println!(
        "| shape | server alone frames/s | curl frames/s | logger frames/s | throughput ratio | curl µs CPU/frame (user) | logger µs CPU/frame (user) | CPU ratio | curl wake-ups/frame | logger wake-ups/frame | logger peak RSS |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for (name, alone, cf, lf, fr, cc, lc, cr, cw, lw, peak, (cu, lu)) in &table {
        println!(
            "| {name} | {alone:.0} | {cf:.0} | {lf:.0} | {:.2} [{:.2}–{:.2}] | {cc:.2} ({cu:.2}) | {lc:.2} ({lu:.2}) | {:.2} [{:.2}–{:.2}] | {cw:.2} | {lw:.2} | {:.1} MiB |",
            fr.0,
            fr.1,
            fr.2,
            cr.0,
            cr.1,
            cr.2,
            *peak as f64 / 1024.0
        );
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let fake = rt.block_on(FakeApiServer::plain());
    let (median_ms, max_ms) = single_frame_latency(&rt, &fake, dir.path());
    println!(
        "single frame on a quiet watch, frame sent → line in the file: median {median_ms:.1} ms, max {max_ms:.1} ms (20 frames)"
    );
    drop(fake);
}
