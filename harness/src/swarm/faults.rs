//! The fault plan: each simulator draws faults at the configured rates
//! (per sensor per second, from a seeded generator so a run can be
//! repeated), the flapping sensor gets a corrupt frame every 300 ms until it
//! is quarantined, and the broker may be restarted at a set time.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::sim::Fault;
use edgevisor_devices::codec::CodecKind;

use super::account::Account;
use super::fleet::{Fleet, Kind, Sim};
use super::Broker;

/// Fault rates per sensor per second, and the broker restart time.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct FaultPlan {
    /// Corrupt frames (bad checksum, garbage, over-long).
    pub corrupt: f64,
    /// Abrupt disconnects.
    pub disconnect: f64,
    /// Silence longer than the read timeout.
    pub silence: f64,
    /// A few readings dripped one byte at a time.
    pub drip: f64,
    /// Serial adapters unplugged and plugged back.
    pub unplug: f64,
    /// Restart the broker this long into the run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub broker_restart_s: Option<f64>,
}

impl FaultPlan {
    /// Every fault kind at rates that keep a swarm busy but mostly healthy.
    pub fn all() -> Self {
        Self {
            corrupt: 0.01,
            disconnect: 0.005,
            silence: 0.002,
            drip: 0.005,
            unplug: 0.005,
            broker_restart_s: None,
        }
    }
}

impl FromStr for FaultPlan {
    type Err = String;

    /// `all`, `none`, or `kind=rate,...` with kinds corrupt, disconnect,
    /// silence, drip, unplug and `broker-restart=10s`.
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "all" => return Ok(Self::all()),
            "none" | "" => return Ok(Self::default()),
            _ => {}
        }
        let mut plan = Self::default();
        for part in s.split(',') {
            let (key, value) = part
                .split_once('=')
                .ok_or(format!("expected kind=rate in {part:?}"))?;
            if key == "broker-restart" {
                let at = humantime::parse_duration(value)
                    .map_err(|e| format!("broker-restart {value:?}: {e}"))?;
                plan.broker_restart_s = Some(at.as_secs_f64());
                continue;
            }
            let rate: f64 = value
                .parse()
                .map_err(|_| format!("rate {value:?} is not a number"))?;
            let slot = match key {
                "corrupt" => &mut plan.corrupt,
                "disconnect" => &mut plan.disconnect,
                "silence" => &mut plan.silence,
                "drip" => &mut plan.drip,
                "unplug" => &mut plan.unplug,
                other => return Err(format!("unknown fault kind {other:?}; use corrupt, disconnect, silence, drip, unplug, broker-restart")),
            };
            *slot = rate;
        }
        Ok(plan)
    }
}

/// A silence fault: longer than the sensors' `read_timeout` (10 s).
pub const SILENCE: Duration = Duration::from_secs(11);

/// Faults injected so far, by kind.
pub type Injected = BTreeMap<&'static str, u64>;

/// One tick (0.1 s) of the plan over every simulator.
pub fn tick(plan: &FaultPlan, sims: &[Sim], rng: &mut fastrand::Rng, injected: &mut Injected) {
    let p = |rate: f64| rate * 0.1;
    for sim in sims {
        if sim.sensor == "flap" {
            continue;
        }
        let stream = sim.kind != Kind::Mqtt;
        if rng.f64() < p(plan.corrupt) {
            let fault = match rng.u8(0..3) {
                0 => Fault::BadChecksum,
                1 if sim.codec != CodecKind::Frame => Fault::Garbage(16),
                1 => Fault::BadChecksum,
                _ => Fault::Overlong,
            };
            sim.handle().inject(fault);
            *injected.entry("corrupt").or_default() += 1;
        }
        if rng.f64() < p(plan.disconnect) && sim.kind != Kind::Serial {
            sim.handle().inject(Fault::Disconnect);
            *injected.entry("disconnect").or_default() += 1;
        }
        if stream && rng.f64() < p(plan.silence) {
            sim.handle().inject(Fault::Silence(SILENCE));
            *injected.entry("silence").or_default() += 1;
        }
        if stream && rng.f64() < p(plan.drip) {
            sim.handle().inject(Fault::SlowDrip {
                readings: 2,
                byte_delay: Duration::from_millis(3),
            });
            *injected.entry("drip").or_default() += 1;
        }
        if sim.kind == Kind::Serial && rng.f64() < p(plan.unplug) {
            // The pty simulator waits, unplugged, for the re-plug.
            sim.handle().inject(Fault::Remove);
            sim.handle().inject(Fault::Replug);
            *injected.entry("unplug").or_default() += 1;
        }
    }
}

/// Injects faults by `plan` every 100 ms until aborted: the random ones,
/// the flapping sensor's bad checksums until it is quarantined, and one
/// broker restart when the plan asks for it and the broker is ours.
pub(super) async fn drive(
    plan: FaultPlan,
    seed: u64,
    fleet: Arc<Fleet>,
    account: Arc<Mutex<Account>>,
    injected: Arc<Mutex<Injected>>,
    broker: Broker,
) {
    let mut rng = fastrand::Rng::with_seed(seed);
    let began = Instant::now();
    let mut restarted = false;
    let mut ticks = 0u64;
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        ticks += 1;
        {
            let mut injected = injected.lock().unwrap_or_else(PoisonError::into_inner);
            tick(&plan, &fleet.sims, &mut rng, &mut injected);
            if let Some(flap) = &fleet.flap {
                let quarantined = account
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .states
                    .get(flap)
                    .is_some_and(|s| s == "quarantined");
                if !quarantined && ticks % 3 == 0 {
                    if let Some(sim) = fleet.sims.iter().find(|s| &s.sensor == flap) {
                        sim.handle().inject(crate::sim::Fault::BadChecksum);
                        *injected.entry("flap").or_default() += 1;
                    }
                }
            }
        }
        if let (Some(at), Broker::Owned(m), false) = (plan.broker_restart_s, &broker, restarted) {
            if began.elapsed().as_secs_f64() >= at {
                restarted = true;
                let mut m = m.lock().await;
                let _ = m.kill().await;
                tokio::time::sleep(Duration::from_millis(500)).await;
                if let Err(e) = m.restart().await {
                    eprintln!("swarm: broker restart failed: {e}");
                }
                *injected
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .entry("broker-restart")
                    .or_default() += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_parse_from_the_command_line() {
        assert_eq!("none".parse::<FaultPlan>().unwrap(), FaultPlan::default());
        assert_eq!("all".parse::<FaultPlan>().unwrap(), FaultPlan::all());
        let p: FaultPlan = "corrupt=0.5,broker-restart=10s".parse().unwrap();
        assert_eq!((p.corrupt, p.broker_restart_s), (0.5, Some(10.0)));
        assert!("explode=1"
            .parse::<FaultPlan>()
            .unwrap_err()
            .contains("unknown fault kind"));
    }
}
