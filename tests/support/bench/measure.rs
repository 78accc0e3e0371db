//! What the benchmarks share: reading a process's CPU and memory from /proc and getrusage, and
//! starting the real binary against a fake API server.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::apiserver::FakeApiServer;

/// CPU seconds used by all waited-for children so far.
pub fn children_cpu_secs() -> f64 {
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

pub fn proc_status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// CPU seconds a running process has used, to the nanosecond: its CPU-time clock
/// (`clock_getcpuclockid`), all threads, user and system. /proc counts in 10 ms ticks, a step of
/// 0.05 µs a frame over 200,000 frames; this is the figure the benchmarks divide. Falls back to
/// /proc where the clock cannot be read.
pub fn proc_cpu_secs(pid: u32) -> f64 {
    let mut clock: libc::clockid_t = 0;
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    let read = unsafe {
        libc::clock_getcpuclockid(pid as libc::pid_t, &mut clock) == 0
            && libc::clock_gettime(clock, &mut t) == 0
    };
    if !read {
        let (user, system) = proc_cpu_split(pid);
        return user + system;
    }
    t.tv_sec as f64 + t.tv_nsec as f64 / 1e9
}

/// CPU seconds a process has used (user, system), from /proc (10 ms ticks).
pub fn proc_cpu_split(pid: u32) -> (f64, f64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let t = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15; `after` starts at field 3.
    (t(11) / ticks, t(12) / ticks)
}

/// `kube-event-logger run` against the plain HTTP server at `url`, writing `out`, warnings
/// only.
pub fn spawn_logger_at(url: &str, dir: &Path, out: &Path, extra: &[&str]) -> std::process::Child {
    let kc = dir.join("kubeconfig-raw");
    std::fs::write(
        &kc,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: {url}\ncontexts:\n- name: c\n  context:\n    cluster: c\n    user: u\ncurrent-context: c\nusers:\n- name: u\n  user: {{}}\n"
        ),
    )
    .unwrap();
    logger_command(&kc, out, extra).spawn().unwrap()
}

/// `kube-event-logger run` against the server, writing `out`, warnings only.
pub fn spawn_logger(
    server: &FakeApiServer,
    dir: &Path,
    out: &Path,
    extra: &[&str],
) -> std::process::Child {
    let kc = dir.join("kubeconfig");
    std::fs::write(&kc, server.kubeconfig(None)).unwrap();
    logger_command(&kc, out, extra).spawn().unwrap()
}

fn logger_command(kc: &Path, out: &Path, extra: &[&str]) -> Command {
    // BENCH_LOGGER: another build of the binary (say, the commit before a change) measured by
    // the same harness, for before/after figures from one run.
    let bin = std::env::var("BENCH_LOGGER").unwrap_or_else(|_| crate::bin().display().to_string());
    let mut cmd = Command::new(bin);
    cmd.arg("run")
        .arg("--kubeconfig")
        .arg(kc)
        .arg("--output-file")
        .arg(out)
        .args(extra)
        .arg("--http-addr=127.0.0.1:0")
        .env("RUST_LOG", "warn")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    cmd
}
