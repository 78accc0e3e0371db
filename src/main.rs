#![forbid(unsafe_code)]
#![warn(clippy::too_many_lines)]

use std::process::ExitCode;

use clap::Parser;
use kube_event_logger::cli::{Cli, Command};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use kube_event_logger::config::{self, RunConfig};
use kube_event_logger::tail::TailConfig;
use kube_event_logger::{daemon, exit_code};
use kube_event_logger::{shutdown, telemetry};

fn main() -> ExitCode {
    let cli = Cli::parse();
    telemetry::init(cli.log_format);
    let args = match cli.command {
        Command::Run(args) => args,
        Command::Tail(args) => return tail(args),
        Command::Summary(args) => return summary(args),
        Command::PrepareDir(args) => return prepare_dir(args),
        Command::Completion { shell } => {
            let mut cli = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut cli, "kube-event-logger", &mut std::io::stdout());
            return ExitCode::from(exit_code::OK);
        }
    };
    let config = match RunConfig::from_args(args) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("{e}");
            return ExitCode::from(exit_code::USAGE);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!("cannot start the async runtime: {e}");
            return ExitCode::from(exit_code::FAILURE);
        }
    };
    match runtime.block_on(daemon::run(config, shutdown::signal())) {
        Ok(()) => ExitCode::from(exit_code::OK),
        Err(e) => {
            tracing::error!(exit_code = e.exit_code(), "{}", telemetry::error_chain(&e));
            ExitCode::from(e.exit_code())
        }
    }
}

fn prepare_dir(args: kube_event_logger::cli::PrepareDirArgs) -> ExitCode {
    let (uid, gid) = args.owner;
    match kube_event_logger::prepare_dir(&args.dir, uid, gid) {
        Ok(()) => {
            tracing::info!(dir = %args.dir.display(), uid, gid, "output directory ready");
            ExitCode::from(exit_code::OK)
        }
        Err(e) => {
            tracing::error!(dir = %args.dir.display(), "cannot prepare the output directory: {e}");
            ExitCode::from(exit_code::FAILURE)
        }
    }
}

fn tail(args: kube_event_logger::cli::TailArgs) -> ExitCode {
    // A viewer: its messages are for a person at a terminal, plain, without log decoration.
    let config = match config::tail_config(args, TailConfig::color_default()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("kube-event-logger tail: {e}");
            return ExitCode::from(exit_code::USAGE);
        }
    };
    let stop = Arc::new(AtomicBool::new(false));
    match kube_event_logger::tail::run(&config, stop) {
        Ok(_) => ExitCode::from(exit_code::OK),
        Err(e) => {
            eprintln!("kube-event-logger tail: {}", telemetry::error_chain(&e));
            ExitCode::from(exit_code::FAILURE)
        }
    }
}

fn summary(args: kube_event_logger::cli::SummaryArgs) -> ExitCode {
    use kube_event_logger::summary::{self, Style, Tally};
    use std::io::Write;
    let mut config = match config::summary_config(&args, TailConfig::color_default()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("kube-event-logger summary: {e}");
            return ExitCode::from(exit_code::USAGE);
        }
    };
    let mut tally = Tally::new(summary::KEYS_KEPT);
    if let Err(e) = summary::read(&args.paths, &mut config, &mut tally) {
        eprintln!("kube-event-logger summary: {}", telemetry::error_chain(&e));
        return ExitCode::from(exit_code::FAILURE);
    }
    let result = tally.finish(usize::from(args.top), usize::from(args.buckets));
    let shown = match args.format {
        kube_event_logger::cli::SummaryFormat::Json => summary::json(&result),
        kube_event_logger::cli::SummaryFormat::Text => {
            let style = Style {
                width: summary::width(),
                color: config.color,
                now: config.now,
            };
            summary::text(&result, &style)
        }
    };
    match std::io::stdout().lock().write_all(shown.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            eprintln!("kube-event-logger summary: cannot write to stdout: {e}");
            ExitCode::from(exit_code::FAILURE)
        }
        _ => ExitCode::from(exit_code::OK),
    }
}
