//! The `mountprop` command: thin drivers over the engine.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use mountprop::escape;

use mountprop::cli::report::Report;
use mountprop::cli::revert;
use mountprop::config::{self, Config};
use mountprop::engine;
use mountprop::node::systemd::Systemd;

use mountprop::cli::args::{Cli, Command, ConfigCommand, Output};

/// The environment's way to say --enter-host (a DaemonSet's exec probes inherit it).
const ENTER_HOST_ENV: &str = "MOUNTPROP_ENTER_HOST";

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The daemon says in the journal what it changed; one-shot commands print a report instead.
    let verbose = if matches!(cli.command, Command::Daemon) {
        cli.verbose + 1
    } else {
        cli.verbose
    };
    // Before anything else: setns(2) into a mount namespace needs a process of one thread.
    let enter = cli.enter_host || std::env::var_os(ENTER_HOST_ENV).is_some_and(|v| v == "1");
    // The daemon leaves its first process behind in the container, for the pod's exec probes.
    if enter && matches!(cli.command, Command::Daemon) && !mountprop::node::hostns::in_pid1_namespace() {
        match mountprop::node::hostns::keep_container_side() {
            Ok(None) => {}
            Ok(Some(code)) => return ExitCode::from(code),
            Err(e) => return ExitCode::from(fail(e)),
        }
    }
    let entered = enter.then(mountprop::node::hostns::enter_pid1);
    // A daemon outside systemd (a pod) logs to stdout, where the kubelet collects it.
    let to_stdout = matches!(cli.command, Command::Daemon) && std::env::var_os("NOTIFY_SOCKET").is_none();
    mountprop::cli::logging::init(mountprop::cli::logging::level(verbose, cli.quiet), to_stdout);
    match entered {
        Some(Err(e)) => return ExitCode::from(fail(e)),
        Some(Ok(how)) => tracing::info!("{how}"),
        None => {}
    }
    ExitCode::from(run(cli))
}

/// Prints a one-line error and gives exit code 2 ("could not check / error").
fn fail(msg: impl std::fmt::Display) -> u8 {
    // Through the one escape: an error quotes paths and texts from outside.
    eprintln!("mountprop: {}", escape::line(&msg.to_string()));
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
                    println!("{}: ok", escape::line(&file.display().to_string()));
                    0
                }
                Err(e) => fail(e),
            }
        }
        Command::Daemon => mountprop::daemon::run(cli.config),
        Command::Status { alive, output: out } => {
            let path = mountprop::daemon::state::state_path();
            match mountprop::daemon::state::State::read(&path) {
                Ok(st) if alive => {
                    let (ok, why) = st.alive(mountprop::daemon::state::unix_now());
                    println!("{}", escape::line(&why));
                    u8::from(!ok)
                }
                Err(e) if alive => {
                    println!("{}", escape::line(&e));
                    1
                }
                Ok(st) => {
                    if out.oneline {
                        println!("{}", escape::line(&st.status_line));
                    } else if out.json {
                        println!("{}", serde_json::to_string_pretty(&st).unwrap_or_default());
                    } else {
                        print!("{}", escape::block(&st.human()));
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
                Err(e) => return output.fail(e),
            };
            with_node(
                root.root.as_deref(),
                "cannot check",
                &output,
                |node| match engine::check(node, &cfg, engine::Look::Everything) {
                    Ok(c) => output.emit(&Report::for_check(&c, cfg.origin())),
                    Err(e) => output.fail(format!("cannot check: {e}")),
                },
            )
        }
        Command::Probe { timeout, output } => {
            let cfg = match load_config(cli.config.as_deref(), None) {
                Ok(c) => c,
                Err(e) => return output.fail(e),
            };
            with_node(None, "cannot probe", &output, |node| {
                match engine::check(node, &cfg, engine::Look::Probe(Duration::from_secs(timeout))) {
                    Ok(c) => output.emit(&Report::for_check(&c, cfg.origin()).named("probe")),
                    Err(e) => output.fail(format!("cannot probe: {e}")),
                }
            })
        }
        Command::Apply { dry_run, root, output } => {
            let cfg = match load_config(cli.config.as_deref(), root.root.as_deref()) {
                Ok(c) => c,
                Err(e) => return output.fail(e),
            };
            with_node(
                root.root.as_deref(),
                "nothing changed",
                &output,
                |node| match engine::apply(node, &cfg, dry_run) {
                    Ok(a) => output.emit(&Report::for_apply(&a, cfg.origin(), dry_run)),
                    Err(e) => output.fail(format!("nothing changed: {e}")),
                },
            )
        }
        Command::Revert { root } => {
            let cfg = match load_config(cli.config.as_deref(), root.root.as_deref()) {
                Ok(c) => c,
                Err(e) => return fail(e),
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
            print!("{}", escape::block(&r.human()));
            if r.errors.is_empty() { 0 } else { 2 }
        }
    }
}

/// The config: --config, else the image's own (DIR/etc/mountprop/config.toml) with --root, else
/// /etc/mountprop/config.toml. A bad config is reported before anything is contacted.
fn load_config(explicit: Option<&Path>, root: Option<&Path>) -> Result<Config, config::ConfigError> {
    match (explicit, root) {
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
    }
}

/// Runs `f` on the image tree at `root`, or on the live node through the system bus.
fn with_node(root: Option<&Path>, context: &str, out: &Output, f: impl FnOnce(engine::Node<'_>) -> u8) -> u8 {
    match root {
        Some(dir) if !dir.is_dir() => out.fail(format!("{context}: {} is not a directory", dir.display())),
        Some(dir) => f(engine::Node::Image(dir)),
        None => match Systemd::connect() {
            Ok(sys) => f(engine::Node::Live(&sys)),
            Err(e) => out.fail(format!("{context}: {e}")),
        },
    }
}

/// How a command's `--json`/`--oneline` choice prints a report or an error.
trait Emit {
    fn emit(&self, r: &Report<'_>) -> u8;
    fn fail(&self, msg: impl std::fmt::Display) -> u8;
}

impl Emit for Output {
    fn emit(&self, r: &Report<'_>) -> u8 {
        if self.json {
            println!("{}", r.json());
        } else if self.oneline {
            println!("{}", escape::line(&r.one_line()));
        } else {
            print!("{}", escape::block(&r.human()));
        }
        r.exit_code
    }

    /// An error is exit 2; with --oneline it is also the one line on stdout, where a plugin
    /// runner such as node-problem-detector takes its message from.
    fn fail(&self, msg: impl std::fmt::Display) -> u8 {
        if self.oneline {
            println!("UNKNOWN: {}", escape::line(&msg.to_string()));
        }
        fail(msg)
    }
}
