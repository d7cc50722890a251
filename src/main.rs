//! The `mountprop` command: thin drivers over the engine.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use mountprop::config::{self, Config};
use mountprop::engine;
use mountprop::report::Report;
use mountprop::revert;
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
    Check {
        #[command(flatten)]
        root: Root,
        #[command(flatten)]
        output: Output,
    },
    /// Fix what can be fixed, then check again. Exit 0 compliant, 1 still not, 2 error.
    Apply {
        /// Print what would be done and touch nothing
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        root: Root,
        #[command(flatten)]
        output: Output,
    },
    /// Remove the drop-ins mountprop wrote (only those) and reload systemd once.
    Revert {
        #[command(flatten)]
        root: Root,
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
struct Root {
    /// Work on the image tree at DIR (no running systemd, nothing mounted): unit files are
    /// read and drop-ins written below DIR only. The config defaults to DIR/etc/mountprop/config.toml
    #[arg(long, value_name = "DIR")]
    root: Option<PathBuf>,
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
        Command::Check { root, output } => {
            let cfg = match load_config(cli.config.as_deref(), root.root.as_deref()) {
                Ok(c) => c,
                Err(code) => return code,
            };
            with_node(root.root.as_deref(), "cannot check", |node| {
                match engine::check(node, &cfg) {
                    Ok(c) => emit(&Report::for_check(&c, cfg.origin()), output.json),
                    Err(e) => fail(format!("cannot check: {e}")),
                }
            })
        }
        Command::Apply { dry_run, root, output } => {
            let cfg = match load_config(cli.config.as_deref(), root.root.as_deref()) {
                Ok(c) => c,
                Err(code) => return code,
            };
            with_node(root.root.as_deref(), "nothing changed", |node| {
                match engine::apply(node, &cfg, dry_run) {
                    Ok(a) => emit(&Report::for_apply(&a, cfg.origin(), dry_run), output.json),
                    Err(e) => fail(format!("nothing changed: {e}")),
                }
            })
        }
        Command::Revert { root } => {
            let cfg = match load_config(cli.config.as_deref(), root.root.as_deref()) {
                Ok(c) => c,
                Err(code) => return code,
            };
            let sys;
            let target = match root.root.as_deref() {
                Some(dir) => revert::Target::Image(dir),
                None => {
                    sys = Systemd::connect();
                    revert::Target::Live(sys.as_ref().map_err(|e| format!("no running systemd to reload ({e})")))
                }
            };
            let r = revert::revert(target, &cfg);
            print!("{}", r.human());
            if r.errors.is_empty() { 0 } else { 2 }
        }
    }
}

/// The config: --config, else the image's own (DIR/etc/mountprop/config.toml) with --root, else
/// /etc/mountprop/config.toml. A bad config is reported before anything is contacted.
fn load_config(explicit: Option<&Path>, root: Option<&Path>) -> Result<Config, u8> {
    let result = match (explicit, root) {
        (Some(f), _) => Config::load(Some(f)),
        (None, Some(dir)) => {
            let f = dir.join(config::DEFAULT_PATH.trim_start_matches('/'));
            if f.exists() {
                Config::load(Some(&f))
            } else {
                Ok(Config {
                    looked_at: f,
                    ..Config::default()
                })
            }
        }
        (None, None) => Config::load(None),
    };
    result.map_err(fail)
}

/// Runs `f` on the image tree at `root`, or on the live node through the system bus.
fn with_node(root: Option<&Path>, context: &str, f: impl FnOnce(engine::Node<'_>) -> u8) -> u8 {
    match root {
        Some(dir) if !dir.is_dir() => fail(format!("{context}: {} is not a directory", dir.display())),
        Some(dir) => f(engine::Node::Image(dir)),
        None => match Systemd::connect() {
            Ok(sys) => f(engine::Node::Live(&sys)),
            Err(e) => fail(format!("{context}: {e}")),
        },
    }
}

fn emit(r: &Report<'_>, json: bool) -> u8 {
    if json {
        println!("{}", r.json());
    } else {
        print!("{}", r.human());
    }
    r.exit_code
}
