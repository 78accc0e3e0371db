//! The process's own resources, as Prometheus client libraries name them (`process_*`: CPU,
//! resident and virtual memory, open and maximum file descriptors, start time), read from
//! `/proc/self` at each scrape, so the memory promises can be watched in Prometheus; and
//! `kube_event_logger_build_info` with the version.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

/// Reads `/proc/self` on each scrape. Linux only; elsewhere it reports nothing.
#[derive(Debug, Default)]
pub struct ProcessCollector;

/// What `/proc/self` says, at one moment.
#[derive(Debug, Default, PartialEq)]
struct Sample {
    cpu_seconds: f64,
    resident_bytes: f64,
    virtual_bytes: f64,
    start_time_seconds: f64,
    open_fds: f64,
    max_fds: f64,
}

/// Pure: the fields of `/proc/self/stat` after the command name (which may hold spaces),
/// with the clock tick rate, page size and the system's boot time (seconds since the epoch).
fn parse_stat(stat: &str, ticks: f64, page: f64, boot_time: f64) -> Option<Sample> {
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state(0) ... utime(11) stime(12) ... starttime(19) vsize(20) rss(21).
    let num = |i: usize| f.get(i)?.parse::<f64>().ok();
    Some(Sample {
        cpu_seconds: (num(11)? + num(12)?) / ticks,
        start_time_seconds: boot_time + num(19)? / ticks,
        virtual_bytes: num(20)?,
        resident_bytes: num(21)? * page,
        ..Sample::default()
    })
}

/// Pure: `btime` from `/proc/stat`.
fn boot_time(proc_stat: &str) -> Option<f64> {
    proc_stat
        .lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

/// Pure: the soft "Max open files" limit from `/proc/self/limits`.
fn max_fds(limits: &str) -> Option<f64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn sample() -> Option<Sample> {
    // Linux's USER_HZ and page size are 100 and 4096 on every architecture we build for.
    let (ticks, page) = (100.0, 4096.0);
    let boot = boot_time(&std::fs::read_to_string("/proc/stat").ok()?)?;
    let mut s = parse_stat(
        &std::fs::read_to_string("/proc/self/stat").ok()?,
        ticks,
        page,
        boot,
    )?;
    s.open_fds = std::fs::read_dir("/proc/self/fd").ok()?.count() as f64;
    s.max_fds = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|l| max_fds(&l))
        .unwrap_or(0.0);
    Some(s)
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(s) = sample() else {
            return Ok(());
        };
        let cpu = ConstCounter::new(s.cpu_seconds);
        cpu.encode(encoder.encode_descriptor(
            "process_cpu_seconds",
            "Total user and system CPU time spent in seconds",
            None,
            cpu.metric_type(),
        )?)?;
        for (name, help, value) in [
            (
                "process_resident_memory_bytes",
                "Resident memory size in bytes",
                s.resident_bytes,
            ),
            (
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes",
                s.virtual_bytes,
            ),
            (
                "process_start_time_seconds",
                "Start time of the process since unix epoch in seconds",
                s.start_time_seconds,
            ),
            (
                "process_open_fds",
                "Number of open file descriptors",
                s.open_fds,
            ),
            (
                "process_max_fds",
                "Maximum number of open file descriptors",
                s.max_fds,
            ),
        ] {
            let gauge = ConstGauge::new(value);
            gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_stat_line_even_with_spaces_and_parens_in_the_name() {
        let stat = "4242 (kube (event) lo) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 50 0 0 20 0 3 0 12000 104857600 2560 18446744073709551615";
        let s = parse_stat(stat, 100.0, 4096.0, 1_700_000_000.0).unwrap();
        assert_eq!(s.cpu_seconds, 3.0, "(250 + 50) ticks");
        assert_eq!(s.start_time_seconds, 1_700_000_120.0, "boot + 12000 ticks");
        assert_eq!(s.virtual_bytes, 104_857_600.0);
        assert_eq!(s.resident_bytes, 2560.0 * 4096.0);
        assert_eq!(
            boot_time("cpu 1 2\nbtime 1700000000\n"),
            Some(1_700_000_000.0)
        );
        assert_eq!(
            max_fds(
                "Limit  Soft Limit  Hard Limit  Units\nMax open files            1048576              1048576              files\n"
            ),
            Some(1_048_576.0)
        );
        assert!(parse_stat("garbage", 100.0, 4096.0, 0.0).is_none());
    }

    #[test]
    fn this_process_has_a_sample() {
        let s = sample().expect("/proc/self on Linux");
        assert!(s.resident_bytes > 0.0 && s.open_fds > 0.0 && s.start_time_seconds > 1e9);
    }
}
