//! Diagnostics: tracing to stderr, as text or JSON lines, filtered by RUST_LOG (default info).
//! Nothing here ever writes to stdout, which belongs to `--output -`.

use tracing_subscriber::EnvFilter;

use crate::cli::LogFormat;

/// kube's HTTP trace layer logs every failed request at ERROR, without context. Our watch loop
/// retries those and logs one WARN with the cause, so this is off unless RUST_LOG names kube.
const KUBE_REQUEST_LOG_OFF: &str = "kube_client::client::builder=off";

/// "outer: cause: root cause", skipping causes already quoted by their parent.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let c = cause.to_string();
        if !text.contains(&c) {
            text.push_str(": ");
            text.push_str(&c);
        }
        source = cause.source();
    }
    text
}

/// What actually went wrong, at the bottom of an error's chain ("Connection refused (os error
/// 111)" rather than a library's "ServiceError: client error (Connect)").
pub fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

pub fn init(format: LogFormat) {
    let from_env = std::env::var("RUST_LOG").ok();
    let mut filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    if !from_env.is_some_and(|v| v.contains("kube_client")) {
        filter = filter.add_directive(KUBE_REQUEST_LOG_OFF.parse().expect("a valid directive"));
    }
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    match format {
        LogFormat::Text => builder.with_ansi(false).init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}
