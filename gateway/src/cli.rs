//! The command line of SPEC section 6, parsed with clap. The one
//! definition: `main.rs` parses with it, and `packaging/gen` writes the man
//! pages and shell completions from it.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// `edgevisor --version` with what a bug report from a box needs beyond the
/// release: the commit (`EDGEVISOR_COMMIT`, from `build.rs`) and whether
/// `edgevisor demo` brings its own broker (the Pi build leaves it out).
macro_rules! version {
    ($broker:literal) => {
        concat!(
            env!("CARGO_PKG_VERSION"),
            " (commit ",
            env!("EDGEVISOR_COMMIT"),
            ", embedded broker: ",
            $broker,
            ")"
        )
    };
}

/// What `edgevisor --version` prints after the name, e.g. `0.1.0 (commit
/// 1a2b3c4, embedded broker: yes)`; the commit is "unknown" when built
/// outside git.
#[cfg(feature = "embedded-broker")]
pub const VERSION: &str = version!("yes");
/// What `edgevisor --version` prints after the name, e.g. `0.1.0 (commit
/// 1a2b3c4, embedded broker: no)`; the commit is "unknown" when built
/// outside git.
#[cfg(not(feature = "embedded-broker"))]
pub const VERSION: &str = version!("no");

/// An Erlang/OTP-style supervisor for IoT edge gateways.
#[derive(Debug, Parser)]
#[command(name = "edgevisor", version = VERSION)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the service (exit 0 clean stop, 2 bad config, 3 root supervisor gave up).
    Run {
        /// The config file.
        #[arg(long, default_value = crate::config::DEFAULT_PATH)]
        config: PathBuf,
        /// Where logs go: auto (journald if reachable, else stderr text),
        /// text, json (containers) or journald.
        #[arg(long, value_enum, default_value_t = crate::logs::LogFormat::Auto)]
        log_format: crate::logs::LogFormat,
    },
    /// Validate a config: every error as FILE:LINE:COL, or the tree it would build.
    Check {
        /// The config file.
        #[arg(long, default_value = crate::config::DEFAULT_PATH)]
        config: PathBuf,
    },
    /// The whole idea on a fresh machine: an embedded broker, simulated
    /// sensors with faults, a gateway, and the live tree.
    Demo(Box<edgevisor_harness::demo::DemoArgs>),
    /// Simulate a swarm of sensors with faults against a real gateway and
    /// account for every reading (exit 0 when nothing accepted was lost).
    Swarm(Box<edgevisor_harness::swarm::SwarmArgs>),
    /// The fault matrix: each fault an edge box meets (broker killed,
    /// frozen, slow, partitioned; wrong password; unplugged ports; corrupt
    /// frames; gateway killed), one line per case (exit 0 when all pass).
    Matrix(Box<edgevisor_harness::matrix::MatrixArgs>),
    /// Every gateway on a broker: online or not, quarantined sensors, crash
    /// rates over the last hour and the latest crashes, on a live terminal
    /// table and (with --http) a local web page with each supervision tree.
    Fleet(Box<edgevisor_fleet::FleetArgs>),
    /// Show the running service: its tree, upstream link, outbox and last
    /// crashes, read from its status socket (no broker needed). Exit 0, or 1
    /// when no service answers.
    #[command(after_help = STATUS_HELP)]
    Status(StatusArgs),
    /// Inspect the durable outbox in the config's state_dir (safe while the
    /// service runs).
    Outbox {
        /// What to show.
        #[command(subcommand)]
        action: OutboxAction,
    },
}

/// Where `edgevisor status` looks, for `--help`.
const STATUS_HELP: &str = "\
The service answers on status.sock in $RUNTIME_DIRECTORY under systemd
(/run/edgevisor), else in the config's state_dir. Without --socket, these
are tried in order: $RUNTIME_DIRECTORY/status.sock, <state_dir>/status.sock
from --config, /run/edgevisor/status.sock. The socket is readable by the
service's group (edgevisor): join it, or use sudo.";

/// `edgevisor status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The config file of the service (for its state_dir).
    #[arg(long, default_value = crate::config::DEFAULT_PATH)]
    pub config: PathBuf,
    /// Ask this socket only.
    #[arg(long, value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// Print the service's JSON document (one line) for scripts.
    #[arg(long)]
    pub json: bool,
    /// Redraw every second until interrupted (with --json: one line per
    /// second).
    #[arg(long)]
    pub watch: bool,
    /// How many of the last crash reports the text shows (the JSON has all
    /// the service keeps, 10).
    #[arg(long, default_value_t = 5, value_name = "N")]
    pub crashes: usize,
}

/// `edgevisor outbox ...`.
#[derive(Debug, Subcommand)]
pub enum OutboxAction {
    /// Messages, bytes and the oldest message's age per class (exit 0).
    Stats {
        /// The config file (for state_dir).
        #[arg(long, default_value = crate::config::DEFAULT_PATH)]
        config: PathBuf,
    },
    /// Integrity check (exit 0 sound, 1 problems found or unreadable).
    Verify {
        /// The config file (for state_dir).
        #[arg(long, default_value = crate::config::DEFAULT_PATH)]
        config: PathBuf,
    },
}
