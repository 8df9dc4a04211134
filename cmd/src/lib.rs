//! The `cl2` command as a library, so that a user crate can build its own `cl2` binary with
//! extra in-process measurements: build a [`Registry`] (usually starting from
//! [`builtin_registry`]), add descriptors, and call [`run_cli`].
//!
//! Exit codes (see `docs/user-guide.md`): 0 pass, 1 SLO violation or failed test,
//! 2 usage or config error, 3 run invalid (the client, not the cluster, was the bottleneck).

pub mod cli;
mod compare;
mod hollow;
mod progress;
mod run;
mod sim;
mod table;

use cl2_framework::measurement::Registry;
use clap::{CommandFactory, Parser};
use std::process::ExitCode;

/// Documented exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Pass = 0,
    Fail = 1,
    Usage = 2,
    Invalid = 3,
}

impl Outcome {
    /// The worse of two outcomes (usage > fail > invalid > pass for reporting purposes).
    pub fn worst(self, other: Outcome) -> Outcome {
        fn rank(o: Outcome) -> u8 {
            match o {
                Outcome::Pass => 0,
                Outcome::Invalid => 1,
                Outcome::Fail => 2,
                Outcome::Usage => 3,
            }
        }
        if rank(other) > rank(self) {
            other
        } else {
            self
        }
    }
}

impl From<Outcome> for ExitCode {
    fn from(o: Outcome) -> Self {
        ExitCode::from(o as u8)
    }
}

/// The registry with every built-in measurement.
pub fn builtin_registry() -> Registry {
    match Registry::new(cl2_measurements::BUILTIN) {
        Ok(r) => r,
        // The built-in table is checked by a guard test; this cannot happen in a released binary.
        Err(e) => {
            eprintln!("error: built-in measurement table is inconsistent: {e}");
            Registry::default()
        }
    }
}

/// Parses the command line and runs it with `registry`'s measurements.
pub fn run_cli(registry: Registry) -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli.log);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return Outcome::Fail.into();
        }
    };
    let outcome = runtime.block_on(dispatch(cli, registry));
    // Don't wait for stray background tasks (watches) once the work is done.
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    outcome.into()
}

use cli::{Cli, Command};

async fn dispatch(cli: Cli, registry: Registry) -> Outcome {
    let result = match cli.command {
        None => {
            if cli.run.testconfig.is_empty() && cli.run.testsuite.is_none() {
                let _ = Cli::command().print_help();
                eprintln!("\nerror: give --testconfig FILE (or --testsuite FILE), or a subcommand");
                return Outcome::Usage;
            }
            run::run(cli.run, registry).await
        }
        Some(Command::Run(args)) => run::run(args, registry).await,
        Some(Command::Validate(args)) => run::validate(args, &registry),
        Some(Command::Render(args)) => run::render(args, &registry),
        Some(Command::Sim(args)) => sim::run(args).await,
        Some(Command::HollowNodes(args)) => hollow::run(args).await,
        Some(Command::Measurements) => {
            table::print_measurements(&registry);
            Ok(Outcome::Pass)
        }
        Some(Command::Compare(args)) => compare::run(args),
        Some(Command::Version) => {
            println!("cl2 {}", env!("CARGO_PKG_VERSION"));
            Ok(Outcome::Pass)
        }
        Some(Command::Completions { shell }) => {
            clap_complete::generate(shell, &mut Cli::command(), "cl2", &mut std::io::stdout());
            Ok(Outcome::Pass)
        }
    };
    match result {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: {e:#}");
            if e.downcast_ref::<UsageError>().is_some() {
                Outcome::Usage
            } else {
                Outcome::Fail
            }
        }
    }
}

/// An error that maps to exit code 2 (bad flags, bad config).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

fn init_logging(args: &cli::LogArgs) {
    use tracing_subscriber::EnvFilter;
    let level = match args.verbose {
        // The kube client logs each refused connection of a background watch at ERROR; the
        // watch's owner reports what matters, so keep the default output readable.
        0 => "warn,kube_client::client::builder=off",
        1 => "info,cl2=info",
        2 => "debug,hyper=info,rustls=info,tower=info",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match args.log_format {
        cli::LogFormat::Json => builder.json().try_init(),
        cli::LogFormat::Text => builder.try_init(),
    };
}
