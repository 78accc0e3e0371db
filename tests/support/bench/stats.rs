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
