//! The `mountprop` command: thin drivers over the engine.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use mountprop::config::{self, Config};
use mountprop::engine;
use mountprop::report::Report;
use mountprop::systemd::Systemd;

/// Keeps mount propagation working for Kubernetes mountPropagation: checks and fixes the
/// container runtimes' MountFlags and the propagation of / and other paths.
#[derive(Parser)]
#[command(name = "mountprop", version, about, long_about = None)]
struct Cli {
    /// Config file [default: /etc/mountprop/config.toml; built-in defaults if absent]
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// More log output (-v: what changed, -vv: debug)
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Only errors in the log
    #[arg(short, long, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Report what is wrong; changes nothing. Exit 0 compliant, 1 drift, 2 could not check.
    Check(Output),
    /// Fix what can be fixed, then check again. Exit 0 compliant, 1 still not, 2 error.
    Apply {
        /// Print what would be done and touch nothing
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        output: Output,
    },
    /// Run as the mountprop.service daemon: fix at start, then keep the node fixed
    Daemon,
    /// What the running daemon last found (/run/mountprop/state.json). Exit 0 compliant,
    /// 1 not, 2 daemon not running
    Status(Output),
    /// Validate or print the configuration
    #[command(subcommand)]
    Config(ConfigCommand),
}

#[derive(Args)]
struct Output {
    /// Machine-readable report on stdout
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Validate a config file (default: the --config file or /etc/mountprop/config.toml)
    Check { file: Option<PathBuf> },
    /// Print a commented config with every default
    Default,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The daemon says in the journal what it changed; one-shot commands print a report instead.
    let verbose = if matches!(cli.command, Command::Daemon) {
        cli.verbose + 1
    } else {
        cli.verbose
    };
    mountprop::logging::init(mountprop::logging::level(verbose, cli.quiet));
    ExitCode::from(run(cli))
}

/// Prints a one-line error and gives exit code 2 ("could not check / error").
fn fail(msg: impl std::fmt::Display) -> u8 {
    eprintln!("mountprop: {msg}");
    2
}

fn run(cli: Cli) -> u8 {
    match cli.command {
        Command::Config(ConfigCommand::Default) => {
            print!("{}", config::DEFAULT_TOML);
            0
        }
        Command::Config(ConfigCommand::Check { file }) => {
            let file = file
                .or(cli.config)
                .unwrap_or_else(|| PathBuf::from(config::DEFAULT_PATH));
            match Config::load(Some(&file)) {
                Ok(_) => {
                    println!("{}: ok", file.display());
                    0
                }
                Err(e) => fail(e),
            }
        }
        Command::Daemon => mountprop::daemon::run(cli.config),
        Command::Status(out) => {
            let path = mountprop::state::state_path();
            match mountprop::state::State::read(&path) {
                Ok(st) => {
                    if out.json {
                        println!("{}", serde_json::to_string_pretty(&st).unwrap_or_default());
                    } else {
                        print!("{}", st.human());
                    }
                    st.exit_code()
                }
                Err(e) => fail(format!(
                    "{e} (is mountprop.service running? systemctl status mountprop)"
                )),
            }
        }
        Command::Check(out) => match setup(cli.config.as_deref(), "cannot check") {
            Ok((cfg, sys)) => match engine::check(&sys, &cfg) {
                Ok(c) => emit(&Report::for_check(&c, cfg.origin()), out.json),
                Err(e) => fail(format!("cannot check: {e}")),
            },
            Err(code) => code,
        },
        Command::Apply { dry_run, output } => match setup(cli.config.as_deref(), "nothing changed") {
            Ok((cfg, sys)) => match engine::apply(&sys, &cfg, dry_run) {
                Ok(a) => emit(&Report::for_apply(&a, cfg.origin(), dry_run), output.json),
                Err(e) => fail(format!("nothing changed: {e}")),
            },
            Err(code) => code,
        },
    }
}

/// The config, then the bus: a bad config is reported before anything is contacted.
fn setup(config: Option<&std::path::Path>, context: &str) -> Result<(Config, Systemd), u8> {
    let cfg = Config::load(config).map_err(fail)?;
    let sys = Systemd::connect().map_err(|e| fail(format!("{context}: {e}")))?;
    Ok((cfg, sys))
}

fn emit(r: &Report<'_>, json: bool) -> u8 {
    if json {
        println!("{}", r.json());
    } else {
        print!("{}", r.human());
    }
    r.exit_code
}
