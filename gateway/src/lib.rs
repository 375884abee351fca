//! The edgevisor gateway: a TOML config turned into a supervision tree of
//! sensor links whose readings and crash reports go to an upstream MQTT
//! broker. `main.rs` only parses arguments and calls in here.

pub mod cli;
pub mod config;
