//! The config file as written: one serde struct per table, with
//! `deny_unknown_fields`, every key optional where SPEC gives a default, and
//! spans kept on the values that cross-field checks point at.

use std::path::PathBuf;

use serde::Deserialize;
use toml::Spanned;

use edgevisor_devices::codec::ChecksumPolicy;
use edgevisor_devices::link::serial::Parity;
use edgevisor_devices::modbus::{Table, ValueType, WordOrder};
use edgevisor_runtime::{OnExhausted, Restart, Strategy};

use super::values::{Dur, OnCorrupt, Size, Transport};
use super::words::{Codec, Word};

/// Declares a table struct that also takes every `[supervisor]` key, since
/// groups and sensors may override any of them.
macro_rules! with_policy {
    ($(#[$doc:meta])* pub struct $name:ident { $($(#[$fdoc:meta])* pub $field:ident : $ty:ty),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            $($(#[$fdoc])* pub $field: $ty,)*
            /// Restarts allowed within `period`.
            pub intensity: Option<Spanned<i64>>,
            /// Length of the restart window.
            pub period: Option<Dur>,
            /// First backoff delay.
            pub backoff_initial: Option<Dur>,
            /// Largest backoff delay.
            pub backoff_max: Option<Dur>,
            /// Healthy run that resets the backoff.
            pub backoff_reset: Option<Dur>,
            /// Escalate or quarantine.
            pub on_exhausted: Option<Spanned<Word<OnExhausted>>>,
            /// Quarantine length.
            pub quarantine_for: Option<Dur>,
        }

        impl $name {
            /// The policy keys of this table.
            pub fn policy(&self) -> RawPolicy {
                RawPolicy {
                    intensity: self.intensity.clone(),
                    period: self.period,
                    backoff_initial: self.backoff_initial,
                    backoff_max: self.backoff_max,
                    backoff_reset: self.backoff_reset,
                    on_exhausted: self.on_exhausted.clone(),
                    quarantine_for: self.quarantine_for,
                }
            }
        }
    };
}

/// The top-level keys the file may have.
pub const TOP_LEVEL: &[&str] = &[
    "gateway",
    "upstream",
    "supervisor",
    "group",
    "sensor",
    "metrics",
    "homeassistant",
    "sparkplug",
];

/// `[gateway]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGateway {
    /// The gateway's name in topics.
    pub id: Spanned<String>,
    /// Where the outbox and boot counter live.
    pub state_dir: Option<PathBuf>,
}

/// `[upstream]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUpstream {
    /// `mqtt://host:port` or `mqtts://host:port`.
    pub url: Spanned<String>,
    pub client_id: Option<Spanned<String>>,
    pub username: Option<String>,
    pub password_file: Option<PathBuf>,
    /// PEM file of extra CA certificates for `mqtts://`.
    pub ca_file: Option<PathBuf>,
    /// PEM certificate (chain) the gateway shows a broker that asks for one.
    pub client_cert_file: Option<Spanned<PathBuf>>,
    /// PEM private key of `client_cert_file`.
    pub client_key_file: Option<Spanned<PathBuf>>,
    pub topic_prefix: Option<Spanned<String>>,
    pub keep_alive: Option<Spanned<Dur>>,
    pub outbox_max_bytes: Option<Size>,
    /// The largest message to publish (the broker's limit).
    pub max_message_size: Option<Spanned<Size>>,
    /// Messages per second at most from the backlog after a reconnect.
    pub replay_rate: Option<Spanned<i64>>,
}

with_policy!(
    /// `[supervisor]`: the root's policy and the defaults of every sensor.
    /// It is also the policy keys of any table, each unset unless written
    /// (see `policy()`), so the list of keys is written once.
    #[derive(Clone, Default)]
    pub struct RawPolicy {}
);

with_policy!(
    /// One `[[group]]`.
    pub struct RawGroup {
        pub id: Spanned<String>,
        pub strategy: Option<Word<Strategy>>,
        pub sensors: Vec<Spanned<String>>,
    }
);

with_policy!(
    /// One `[[sensor]]`; transport-specific keys are checked against the
    /// transport after parsing.
    pub struct RawSensor {
        pub id: Spanned<String>,
        pub transport: Spanned<Transport>,
        pub codec: Spanned<Word<Codec>>,
        pub checksum: Option<Spanned<Word<ChecksumPolicy>>>,
        pub max_frame: Option<Spanned<Size>>,
        pub on_corrupt: Option<Spanned<OnCorrupt>>,
        pub restart: Option<Word<Restart>>,
        pub read_timeout: Option<Spanned<Dur>>,
        // serial
        pub device: Option<Spanned<String>>,
        pub baud: Option<Spanned<i64>>,
        pub data_bits: Option<Spanned<i64>>,
        pub parity: Option<Spanned<Word<Parity>>>,
        pub stop_bits: Option<Spanned<i64>>,
        // tcp
        pub address: Option<Spanned<String>>,
        pub connect_timeout: Option<Spanned<Dur>>,
        // tcp-listen
        pub listen: Option<Spanned<String>>,
        pub max_connections: Option<Spanned<i64>>,
        // mqtt
        pub url: Option<Spanned<String>>,
        pub topics: Option<Spanned<Vec<Spanned<String>>>>,
        // modbus-rtu and modbus-tcp
        pub timeout: Option<Spanned<Dur>>,
        pub retries: Option<Spanned<i64>>,
        pub delay_between: Option<Spanned<Dur>>,
        /// `[[sensor.unit]]`
        #[serde(default)]
        pub unit: Vec<Spanned<RawUnit>>,
        /// `[[sensor.field]]` (SPEC section 11)
        #[serde(default)]
        pub field: Vec<Spanned<RawField>>,
    }
);

with_policy!(
    /// One `[[sensor.unit]]` of a Modbus bus; its policy keys fall back to
    /// the bus's.
    pub struct RawUnit {
        pub id: Spanned<String>,
        pub unit_id: Spanned<i64>,
        pub poll: Option<Spanned<Dur>>,
        pub registers: Spanned<Vec<Spanned<RawRegister>>>,
    }
);

/// One entry of a unit's `registers`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRegister {
    pub name: Spanned<String>,
    pub table: Spanned<Word<Table>>,
    pub address: Spanned<i64>,
    #[serde(rename = "type")]
    pub kind: Spanned<Word<ValueType>>,
    pub order: Option<Spanned<Word<WordOrder>>>,
    pub scale: Option<Spanned<f64>>,
    pub offset: Option<Spanned<f64>>,
    pub length: Option<Spanned<i64>>,
}

/// One `[[sensor.field]]`: a value inside the reading's `data` that Home
/// Assistant and Sparkplug show as a measurement of its own.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawField {
    pub name: Spanned<String>,
    pub json_path: Spanned<String>,
    pub unit: Option<String>,
    pub device_class: Option<String>,
}

/// `[metrics]` (SPEC section 10).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMetrics {
    /// `host:port` the OpenMetrics endpoint binds.
    pub listen: Spanned<String>,
}

/// `[homeassistant]` (SPEC section 11).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHomeAssistant {
    pub discovery: Option<bool>,
    pub prefix: Option<Spanned<String>>,
}

/// `[sparkplug]` (SPEC section 11).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSparkplug {
    pub group_id: Spanned<String>,
    /// Sparkplug 3.0: wait for this primary host's STATE `online` before
    /// publishing.
    pub primary_host: Option<Spanned<String>>,
}
