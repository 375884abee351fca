//! `edgevisor fleet`'s options, defined here so the gateway's CLI only
//! embeds them (as it does the swarm's) and the man page comes from one
//! place.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Args;

/// `edgevisor fleet --broker URL [--prefix edgevisor] [--share GROUP] [--http ADDR] [--once]`.
#[derive(Debug, Clone, Args)]
#[command(after_help = AFTER_HELP)]
pub struct FleetArgs {
    /// The broker the gateways publish to: mqtt://HOST[:PORT] (plain TCP,
    /// port 1883) or mqtts://HOST[:PORT] (TLS, port 8883).
    #[arg(long, value_name = "URL", default_value = "mqtt://127.0.0.1:1883")]
    pub broker: String,
    /// Log in to the broker with this user name.
    #[arg(long, value_name = "NAME")]
    pub username: Option<String>,
    /// The password, read from this file (trailing newline dropped); used
    /// with --username.
    #[arg(long, value_name = "PATH", requires = "username")]
    pub password_file: Option<std::path::PathBuf>,
    /// Extra CA certificates (PEM) for an mqtts:// broker, beside the
    /// system's.
    #[arg(long, value_name = "PATH")]
    pub ca_file: Option<std::path::PathBuf>,
    /// The gateways' [upstream] topic_prefix.
    #[arg(long, default_value = "edgevisor")]
    pub prefix: String,
    /// Read the crash and dead-letter events through the shared
    /// subscription group GROUP ($share/GROUP/...); status, state and tree
    /// stay on plain subscriptions, since brokers send no retained
    /// messages on shared ones.
    #[arg(long, value_name = "GROUP")]
    pub share: Option<String>,
    /// Also serve a live web page (and its JSON at /api/fleet) on this
    /// address, e.g. 127.0.0.1:8080.
    #[arg(long, value_name = "ADDR")]
    pub http: Option<SocketAddr>,
    /// Print one snapshot after --settle and exit (0, or 1 when the broker
    /// never answered).
    #[arg(long)]
    pub once: bool,
    /// How often the table is drawn: redrawn in place on a terminal,
    /// printed whole each time otherwise.
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = humantime::parse_duration)]
    pub interval: Duration,
    /// With --once: how long to gather the retained values first.
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = humantime::parse_duration)]
    pub settle: Duration,
    /// How many of the latest crash reports the table shows.
    #[arg(long, value_name = "N", default_value_t = 4)]
    pub crashes: usize,
    /// The MQTT client id (default edgevisor-fleet-<random>).
    #[arg(long, value_name = "ID")]
    pub client_id: Option<String>,
}

/// What `--help` adds.
const AFTER_HELP: &str = "\
On a terminal the table is redrawn in place every --interval (colours,
80 columns); when stdout is not a terminal it is printed whole, without
colours, every --interval, or once with --once. The web page polls
/api/fleet every second. See docs/fleet.md.";
