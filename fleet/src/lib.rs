//! `edgevisor fleet`: every gateway publishing under one prefix on a
//! broker, at a glance. It reads SPEC section 5's retained `status`,
//! `state/<sensor>` and `tree` and the `crash` and `deadletter` events, and
//! shows which gateways are online, which sensors are quarantined, crash
//! rates over the last hour and the latest crash reports with evidence, on
//! a terminal table and (with `--http`) on a local web page.
//!
//! The model ([`model`], [`window`]) and the views ([`snapshot`],
//! [`render`]) are pure; [`mqtt`] and [`http`] are the I/O around them,
//! and [`run`] wires them together for the command.

#![forbid(unsafe_code)]

mod args;
mod error;
pub mod http;
pub mod message;
pub mod model;
pub mod mqtt;
pub mod render;
mod run;
pub mod snapshot;
mod tls;
pub mod topic;
pub mod window;

pub use args::FleetArgs;
pub use error::FleetError;
pub use run::run;
