//! The command line parsed as clap does, with one addition: a bad value that came from a
//! `KUBE_EVENT_LOGGER_*` variable is also named by that variable (clap names only the flag).

use super::Cli;

/// Parses the command line as clap does, exiting with its message on an error; a bad value that
/// came from a `KUBE_EVENT_LOGGER_*` variable (not typed) is also named by that variable, since
/// clap names only the flag.
pub fn parse() -> Cli {
    use clap::{CommandFactory, Parser};
    let e = match Cli::try_parse() {
        Ok(cli) => return cli,
        Err(e) => e,
    };
    let typed: Vec<String> = std::env::args().collect();
    let note = from_environment(&e, &Cli::command(), &typed);
    let _ = e.print();
    if let Some(note) = note {
        eprintln!("{note}");
    }
    std::process::exit(e.exit_code());
}

/// The note for an invalid value that came from an environment variable, if it did.
fn from_environment(e: &clap::Error, command: &clap::Command, typed: &[String]) -> Option<String> {
    use clap::error::{ContextKind, ContextValue};
    let Some(ContextValue::String(arg)) = e.get(ContextKind::InvalidArg) else {
        return None;
    };
    let long = arg.split([' ', '=']).next()?.strip_prefix("--")?;
    let commands = std::iter::once(command).chain(command.get_subcommands());
    let flag = commands
        .flat_map(clap::Command::get_arguments)
        .find(|a| a.get_long() == Some(long))?;
    let var = flag.get_env()?.to_str()?;
    let value = std::env::var(var).ok()?;
    let was_typed = typed
        .iter()
        .any(|t| t == &format!("--{long}") || t.starts_with(&format!("--{long}=")));
    (!was_typed).then(|| {
        format!(
            "note: this value came from the environment, {var}={value}: fix or unset it (the \
             Helm chart and the manifests set flags, not variables)"
        )
    })
}
