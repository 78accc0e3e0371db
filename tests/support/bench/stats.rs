//! Small things the benchmarks share that need nothing else: whether this is a benchmark run at
//! all, settings from the environment and the median of the rounds.

/// `cargo test --benches` and `cargo bench -- --list` start a `harness = false` benchmark with
/// these flags: then it does nothing.
pub fn not_a_bench_run() -> bool {
    std::env::args().any(|a| a == "--list" || a == "--test")
}

/// `name` from the environment as a number, or `default`.
pub fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// The machine's CPU model (`/proc/cpuinfo`'s first `model name`), printed with every figure:
/// machines of one kind differ, and a ratio is read against the CPU it was measured on.
pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .map(|r| r.trim_start_matches([' ', '\t', ':']).to_owned())
            })
        })
        .unwrap_or_else(|| "unknown CPU".to_owned())
}
