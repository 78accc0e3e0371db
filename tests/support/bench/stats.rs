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

/// The machine's CPU (`/proc/cpuinfo`'s first processor: model name, family, model, cache),
/// printed with every figure: machines of one kind differ, and a ratio is read against the CPU it
/// was measured on.
pub fn cpu_model() -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    // The first processor's fields: the model name alone does not tell machines apart (a
    // cloud VM may show only "Intel(R) Xeon(R) Processor"), its family and model numbers and
    // cache size do.
    let field = |key: &str| {
        info.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim() == key).then(|| v.trim().to_owned())
        })
    };
    let Some(name) = field("model name") else {
        return "unknown CPU".to_owned();
    };
    match (field("cpu family"), field("model"), field("cache size")) {
        (Some(family), Some(model), cache) => format!(
            "{name}, family {family} model {model}{}",
            cache.map_or(String::new(), |c| format!(", cache {c}"))
        ),
        _ => name,
    }
}
