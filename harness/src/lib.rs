//! The edgevisor test harness, kept out of the product crates: simulated
//! sensors of every transport with fault injection (and a real Mosquitto
//! for tests), the swarm that accounts for every reading a real gateway
//! process accepted, and the demo. The `edgevisor` binary runs the last two
//! as `edgevisor swarm` and `edgevisor demo` (SPEC section 6), and the
//! fault matrix as `edgevisor matrix`.
//!
//! The harness drives the gateway as a process and checks its configs with
//! `edgevisor check`, so it depends on `devices` but not on the gateway
//! library (which depends on it for the two subcommands' arguments).

pub mod demo;
pub mod gateways;
pub mod matrix;
pub mod sim;
pub mod swarm;
