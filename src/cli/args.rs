//! The command line's definitions, apart from main.rs so that the man page generator
//! (tests/manpages.rs) builds the very same clap command.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Keeps mount propagation working for Kubernetes mountPropagation: checks and fixes the
/// container runtimes' MountFlags and the propagation of / and other paths.
#[derive(Parser)]
#[command(name = "mountprop", version, about, long_about = None)]
pub struct Cli {
    /// Config file [default: /etc/mountprop/config.toml; built-in defaults if absent]
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// More log output (-v: what changed, -vv: debug)
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only errors in the log
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// First enter PID 1's mount namespace: for a privileged pod with hostPID (the DaemonSet),
    /// so that files, mounts and the system bus are the host's. Also MOUNTPROP_ENTER_HOST=1
    #[arg(long, global = true)]
    pub enter_host: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Report what is wrong; changes nothing. Exit 0 compliant, 1 drift, 2 could not check.
    Check {
        #[command(flatten)]
        root: Root,
        #[command(flatten)]
        output: Output,
    },
    /// Check, and prove with real mounts which Kubernetes mountPropagation modes work: a tiny
    /// tmpfs is mounted on the host and looked for in a container-like copy of each running
    /// runtime's mount namespace, then the other way round; all of it is taken away again.
    /// Exit codes as for check
    Probe {
        /// Give up on what is not done after this many seconds
        #[arg(long, value_name = "SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=600))]
        timeout: u64,
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
    Status {
        /// Only whether the daemon runs and has checked within three intervals, whatever the
        /// node's state: exit 0 yes, 1 no (a Kubernetes liveness and readiness probe)
        #[arg(long, conflicts_with_all = ["json", "oneline"])]
        alive: bool,
        #[command(flatten)]
        output: Output,
    },
    /// Validate or print the configuration
    #[command(subcommand)]
    Config(ConfigCommand),
}

#[derive(Args)]
pub struct Root {
    /// Work on the image tree at DIR (no running systemd, nothing mounted): unit files are
    /// read and drop-ins written below DIR only. The config defaults to DIR/etc/mountprop/config.toml
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
}

#[derive(Args)]
pub struct Output {
    /// Machine-readable report on stdout
    #[arg(long, conflicts_with = "oneline")]
    pub json: bool,
    /// One line on stdout, errors included (for node-problem-detector's custom plugins)
    #[arg(long)]
    pub oneline: bool,
}

#[derive(Subcommand)]
pub enum ConfigCommand {
    /// Validate a config file (default: the --config file or /etc/mountprop/config.toml)
    Check {
        /// The file to validate
        file: Option<PathBuf>,
    },
    /// Print a commented config with every default
    Default,
}
