#![forbid(unsafe_code)]
#![warn(clippy::too_many_lines)]

use kube_event_logger::cli::{
    Cli, Command, Logging, PrepareDirArgs, RunArgs, SummaryArgs, TailArgs,
};
use kube_event_logger::config::{self, Env, RunConfig};
use kube_event_logger::exit_code::ExitCode;
use kube_event_logger::{daemon, shutdown, summary, tail, telemetry};

fn main() -> std::process::ExitCode {
    let cli = kube_event_logger::cli::parse();
    // The viewers log nothing of their own; anything a library says goes out as plain text.
    let logging = match &cli.command {
        Command::Run(args) => args.logging,
        Command::PrepareDir(args) => args.logging,
        _ => Logging::default(),
    };
    telemetry::init(logging.log_format);
    let env = Env::read();
    let code = match cli.command {
        Command::Run(args) => run(args, &env),
        Command::Tail(args) => tail(args, &env),
        Command::Summary(args) => summary(args, &env),
        Command::PrepareDir(args) => prepare_dir(args),
        Command::Completion { shell } => {
            let mut cli = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut cli, "kube-event-logger", &mut std::io::stdout());
            ExitCode::Ok
        }
    };
    code.into()
}

fn run(args: RunArgs, env: &Env) -> ExitCode {
    let config = match RunConfig::from_args(args, env) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("{e}");
            return ExitCode::Usage;
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!("cannot start the async runtime: {e}");
            return ExitCode::Failure;
        }
    };
    match runtime.block_on(daemon::run(config, shutdown::signal())) {
        Ok(()) => ExitCode::Ok,
        Err(e) => {
            let code = e.exit_code();
            tracing::error!(exit_code = code.code(), "{}", telemetry::error_chain(&e));
            code
        }
    }
}

fn prepare_dir(args: PrepareDirArgs) -> ExitCode {
    let (uid, gid) = args.owner;
    match kube_event_logger::prepare_dir(&args.dir, uid, gid) {
        Ok(()) => {
            tracing::info!(dir = %args.dir.display(), uid, gid, "output directory ready");
            ExitCode::Ok
        }
        Err(e) => {
            tracing::error!(dir = %args.dir.display(), "cannot prepare the output directory: {e}");
            ExitCode::Failure
        }
    }
}

// The viewers' messages are for a person at a terminal: plain, without log decoration.

fn tail(args: TailArgs, env: &Env) -> ExitCode {
    let config = match config::tail_config(args, env) {
        Ok(c) => c,
        Err(e) => return viewer_error("tail", &e, ExitCode::Usage),
    };
    let stop = std::sync::Arc::default();
    match tail::run(&config, stop) {
        Ok(()) => ExitCode::Ok,
        Err(e) => viewer_error("tail", &e, ExitCode::Failure),
    }
}

fn summary(args: SummaryArgs, env: &Env) -> ExitCode {
    let config = match config::summary_config(args, env) {
        Ok(c) => c,
        Err(e) => return viewer_error("summary", &e, ExitCode::Usage),
    };
    match summary::run(&config) {
        Ok(()) => ExitCode::Ok,
        Err(e) => viewer_error("summary", &e, ExitCode::Failure),
    }
}

fn viewer_error(command: &str, e: &dyn std::error::Error, code: ExitCode) -> ExitCode {
    eprintln!("kube-event-logger {command}: {}", telemetry::error_chain(e));
    code
}
