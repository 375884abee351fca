//! The gateway's configuration: one TOML file (SPEC section 3), parsed with
//! every error collected and located, checked across tables, and resolved
//! into plain values with every default filled in.
//!
//! - `raw`: the file as written (serde, `deny_unknown_fields`);
//! - `values`: durations, sizes and the gateway's own closed sets of words;
//! - `words`: config words for the library enums (codec, restart, ...);
//! - `parse`: TOML to raw tables, one table at a time so that one bad table
//!   does not hide the errors of the next;
//! - `resolve`: cross-table checks and defaults, giving a [`Config`];
//! - `diagnostics`: `FILE:LINE:COL: message` plus a hint;
//! - `summary`: what `edgevisor check` prints for a valid file;
//! - `keys`: the keys each table takes, read from `raw` (for the reference
//!   test).

mod checks;
mod diagnostics;
mod keys;
mod parse;
mod raw;
mod resolve;
mod summary;
mod values;
mod words;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub use diagnostics::{ConfigError, ConfigErrors};
pub use edgevisor_runtime::OnExhausted;
/// A group's strategy is the runtime's (a config never names `dynamic`).
pub use edgevisor_runtime::Strategy as GroupStrategy;
pub use keys::table_keys;
pub use summary::summary;
pub use values::{OnCorrupt, Transport};
pub use words::{Codec, Words};

use edgevisor_devices::codec::ChecksumPolicy;
use edgevisor_devices::link::serial::{DataBits, Parity, StopBits};
use edgevisor_runtime::{Restart, Strategy};

/// Where the service looks for its config unless told otherwise.
pub const DEFAULT_PATH: &str = "/etc/edgevisor/edgevisor.toml";

/// A checked config with every default applied.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The file it came from.
    pub path: PathBuf,
    /// `[gateway]`.
    pub gateway: GatewayConfig,
    /// `[upstream]`.
    pub upstream: UpstreamConfig,
    /// `[supervisor]`: the root's policy (the root always escalates).
    pub root: Policy,
    /// The root's children, in the order the file lists sensors (a group
    /// takes the place of its first member).
    pub children: Vec<RootChild>,
    /// `[metrics]`: off unless given.
    pub metrics: Option<MetricsConfig>,
    /// `[homeassistant]` with `discovery = true`.
    pub homeassistant: Option<HomeAssistantConfig>,
    /// `[sparkplug]`.
    pub sparkplug: Option<SparkplugConfig>,
}

/// `[metrics]`: where `/metrics` and `/healthz` are served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsConfig {
    /// The bound address, e.g. `127.0.0.1:9898`.
    pub listen: SocketAddr,
}

/// `[homeassistant]`: retained discovery configs for every declared field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HomeAssistantConfig {
    /// The discovery prefix; default `homeassistant`.
    pub prefix: String,
}

/// `[sparkplug]`: a Sparkplug B edge node beside the plain topics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SparkplugConfig {
    /// The Sparkplug group id.
    pub group_id: String,
    /// Sparkplug 3.0: publish only while this primary host says `online`.
    pub primary_host: Option<String>,
}

/// A `[[sensor.field]]`: one value of the reading's `data`, named for the
/// integrations (Home Assistant entities, Sparkplug metrics).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldConfig {
    /// A name unique within the sensor, topic-safe.
    pub name: String,
    /// Member names from `data` down to the value (`$.env.temp` is
    /// `["env", "temp"]`).
    pub json_path: Vec<String>,
    /// Unit of measurement, as Home Assistant and Sparkplug show it.
    pub unit: Option<String>,
    /// Home Assistant's `device_class`.
    pub device_class: Option<String>,
}

impl FieldConfig {
    /// The value at `json_path` in a reading's `data`.
    pub fn pick<'a>(&self, data: &'a serde_json::Value) -> Option<&'a serde_json::Value> {
        self.json_path
            .iter()
            .try_fold(data, |value, member| value.get(member))
    }

    /// `json_path` as written: `$.env.temp`.
    pub fn path_text(&self) -> String {
        std::iter::once("$")
            .chain(self.json_path.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join(".")
    }
}

/// A child of the root supervisor.
#[derive(Debug, Clone, PartialEq)]
pub enum RootChild {
    /// A sensor outside any group. Shared with its running child, which
    /// keeps it for as long as it runs (one copy per sensor, not two).
    Sensor(Arc<SensorConfig>),
    /// A group of sensors under its own supervisor (boxed: a group is much
    /// larger than the `Arc` of a sensor, and most children are sensors).
    Group(Box<GroupConfig>),
}

impl RootChild {
    /// The child's id: the sensor's or the group's.
    pub fn id(&self) -> &str {
        match self {
            RootChild::Sensor(s) => &s.id,
            RootChild::Group(g) => &g.id,
        }
    }
}

/// `[gateway]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayConfig {
    /// Name in topics: `[A-Za-z0-9_-]{1,64}`.
    pub id: String,
    /// Outbox and boot counter; default `/var/lib/edgevisor`.
    pub state_dir: PathBuf,
}

/// The broker URL type is the devices crate's, so the config and the MQTT
/// link accept exactly the same URLs.
pub use edgevisor_devices::link::BrokerUrl;

/// `[upstream]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamConfig {
    /// The broker.
    pub url: BrokerUrl,
    /// Default `edgevisor-<gateway.id>`.
    pub client_id: String,
    /// Optional user name.
    pub username: Option<String>,
    /// File holding the password; read at start, never logged.
    pub password_file: Option<PathBuf>,
    /// Extra CA certificates (PEM) for `mqtts://`.
    pub ca_file: Option<PathBuf>,
    /// Client certificate and key (PEM) for a broker that requires one.
    pub client_cert: Option<ClientCert>,
    /// Default `edgevisor`.
    pub topic_prefix: String,
    /// Default 30 s.
    pub keep_alive: Duration,
    /// Default 64 MiB.
    pub outbox_max_bytes: u64,
    /// Largest PUBLISH to send; default MQTT's own limit (256 MiB).
    pub max_message_size: u64,
    /// `replay_rate`: telemetry per second at most from the backlog that
    /// waited in the outbox when a connection came up, while live telemetry
    /// goes first; `None` (the default) sends the outbox oldest first, as
    /// fast as the broker acknowledges.
    pub replay_rate: Option<u32>,
}

/// A TLS client certificate and its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCert {
    /// PEM certificate, or chain, leaf first.
    pub cert_file: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
}

/// A resolved restart policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Restarts allowed in `period` (>= 1).
    pub intensity: u32,
    /// Window length.
    pub period: Duration,
    /// First backoff delay.
    pub backoff_initial: Duration,
    /// Largest backoff delay.
    pub backoff_max: Duration,
    /// Healthy run that resets the backoff.
    pub backoff_reset: Duration,
    /// Escalate or quarantine.
    pub on_exhausted: OnExhausted,
    /// Quarantine length.
    pub quarantine_for: Duration,
}

/// A `[[group]]`.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupConfig {
    /// Its id (a path segment under `root`).
    pub id: String,
    /// Its strategy; default one_for_one.
    pub strategy: Strategy,
    /// The group supervisor's own policy (the window of the group as a whole).
    pub policy: Policy,
    /// Members in the order the group lists them.
    pub sensors: Vec<Arc<SensorConfig>>,
}

/// A `[[sensor]]`.
#[derive(Debug, Clone, PartialEq)]
pub struct SensorConfig {
    /// Unique, topic-safe id.
    pub id: String,
    /// How it is reached.
    pub link: LinkConfig,
    /// Wire format.
    pub codec: Codec,
    /// Largest frame; default 4096, NMEA 256.
    pub max_frame: usize,
    /// NMEA only: whether a missing `*HH` is corrupt; default required.
    pub checksum: ChecksumPolicy,
    /// Crash or skip on a corrupt frame.
    pub on_corrupt: OnCorrupt,
    /// OTP restart type; default permanent.
    pub restart: Restart,
    /// Silence longer than this ends the link with reason `timeout`.
    pub read_timeout: Duration,
    /// The sensor's own restart window (sensor, then group, then supervisor keys).
    pub policy: Policy,
    /// Declared fields (`[[sensor.field]]`), for the integrations.
    pub fields: Vec<FieldConfig>,
}

/// Transport settings.
#[derive(Debug, Clone, PartialEq)]
pub enum LinkConfig {
    /// A serial port.
    Serial {
        /// Path, preferably `/dev/serial/by-id/...`.
        device: PathBuf,
        /// Default 9600.
        baud: u32,
        /// 5 to 8; default 8.
        data_bits: DataBits,
        /// Default none.
        parity: Parity,
        /// 1 or 2; default 1.
        stop_bits: StopBits,
    },
    /// The gateway connects to `address`.
    Tcp {
        /// `host:port`.
        address: String,
        /// Default 10 s.
        connect_timeout: Duration,
    },
    /// Sensors connect to `listen`.
    TcpListen {
        /// Bound address.
        listen: SocketAddr,
        /// Default 256; further connections are refused and counted.
        max_connections: usize,
    },
    /// Subscribe on a local broker.
    Mqtt {
        /// The local broker.
        url: BrokerUrl,
        /// Topic filters.
        topics: Vec<String>,
    },
    /// A Modbus bus, RTU or TCP, polled unit by unit (boxed: its register
    /// maps make it much larger than the other links).
    Modbus(Box<ModbusConfig>),
}

/// A Modbus bus (SPEC section 9).
#[derive(Debug, Clone, PartialEq)]
pub struct ModbusConfig {
    /// Port and timing.
    pub bus: edgevisor_devices::modbus::BusConfig,
    /// Its units, in config order.
    pub units: Vec<Arc<UnitConfig>>,
}

/// One `[[sensor.unit]]`: a child of its bus, and a sensor of its own named
/// `<bus>/<unit>`.
#[derive(Debug, Clone, PartialEq)]
pub struct UnitConfig {
    /// Topic-safe id within its bus.
    pub id: String,
    /// Unit address, register map and planned reads.
    pub unit: edgevisor_devices::modbus::Unit,
    /// Time between two polls; default 1 s.
    pub poll: Duration,
    /// Its own restart window (unit keys, then the bus's).
    pub policy: Policy,
}

impl LinkConfig {
    /// The transport word.
    pub fn transport(&self) -> Transport {
        match self {
            LinkConfig::Serial { .. } => Transport::Serial,
            LinkConfig::Tcp { .. } => Transport::Tcp,
            LinkConfig::TcpListen { .. } => Transport::TcpListen,
            LinkConfig::Mqtt { .. } => Transport::Mqtt,
            LinkConfig::Modbus(m) => match m.bus.endpoint {
                edgevisor_devices::modbus::Endpoint::Rtu(_) => Transport::ModbusRtu,
                edgevisor_devices::modbus::Endpoint::Tcp { .. } => Transport::ModbusTcp,
            },
        }
    }
}

impl Config {
    /// Reads, parses and checks the file at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigErrors::whole_file(
                path,
                format!("cannot read the config file: {e}"),
                format!("pass --config PATH, or create {DEFAULT_PATH}"),
            )
        })?;
        Self::parse(path, &text)
    }

    /// Parses and checks `text` as if read from `path`.
    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigErrors> {
        let raw = parse::parse(text);
        let (config, mut problems) = resolve::resolve(path, text, raw.document);
        problems.extend(raw.problems);
        match config {
            Some(config) if problems.is_empty() => Ok(config),
            _ => Err(ConfigErrors::locate(path, text, problems)),
        }
    }

    /// How many sensors report telemetry: a Modbus bus counts its units,
    /// each a sensor of its own.
    pub fn sensor_count(&self) -> usize {
        self.sensors()
            .map(|s| match &s.link {
                LinkConfig::Modbus(m) => m.units.len(),
                _ => 1,
            })
            .sum()
    }

    /// The addresses the `tcp-listen` sensors listen on.
    pub fn listen_addresses(&self) -> Vec<SocketAddr> {
        self.sensors()
            .filter_map(|s| match s.link {
                LinkConfig::TcpListen { listen, .. } => Some(listen),
                _ => None,
            })
            .collect()
    }

    /// Every sensor, grouped or not, in tree order.
    pub fn sensors(&self) -> impl Iterator<Item = &Arc<SensorConfig>> {
        self.children.iter().flat_map(|child| match child {
            RootChild::Sensor(sensor) => std::slice::from_ref(sensor).iter(),
            RootChild::Group(group) => group.sensors.iter(),
        })
    }
}
