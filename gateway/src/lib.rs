//! The edgevisor gateway: a TOML config turned into a supervision tree of
//! sensor links whose readings and crash reports go to an upstream MQTT
//! broker. `main.rs` only parses arguments and calls in here.

pub mod boot;
pub mod cli;
pub mod clock;
pub mod config;
pub mod homeassistant;
pub mod logs;
pub mod metrics;
pub mod outbox;
pub mod payload;
pub mod reload;
pub mod reports;
pub mod sensor;
pub mod service;
pub mod shutdown;
pub mod sparkplug;
pub mod status;
pub mod systemd;
pub mod topics;
pub mod tree;
pub mod tree_payload;
pub mod uplink;
