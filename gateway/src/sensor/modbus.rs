//! A Modbus bus (SPEC section 9): a one_for_one supervisor whose children
//! are its units, each polled on its own interval by its own child.
//!
//! The units share the bus's port behind a fair (first come, first served)
//! lock: the unit holding it is the one task on the port, so requests never
//! overlap on an RS-485 line, and a unit that does not answer holds the
//! port for at most `(retries + 1) * timeout` (plus a drain) per poll
//! before its child crashes and the next unit in line takes its turn.
//! Each unit has its own restart window: a dead meter is quarantined while
//! the others keep their poll interval.

use std::sync::Arc;
use std::time::Duration;

use edgevisor_devices::codec::MAX_EVIDENCE;
use edgevisor_devices::modbus::{self, Bus, PollError};
use edgevisor_runtime::{ChildContext, ChildSpec, Crash, Strategy, SupervisorSpec};
use tokio::sync::Mutex;
use tokio::time::MissedTickBehavior;

use super::worker::Telemetry;
use super::Gateway;
use crate::config::{ModbusConfig, SensorConfig, UnitConfig};

/// The supervisor of one bus, with a child per unit.
pub fn spec(
    sensor: &Arc<SensorConfig>,
    config: &ModbusConfig,
    gateway: &Arc<Gateway>,
) -> ChildSpec {
    // Made once per spec, so a unit's restart finds the port as the other
    // units left it; the bus itself closes a port that failed.
    let bus = Arc::new(Mutex::new(Bus::new(config.bus.clone())));
    let units = config
        .units
        .iter()
        .map(|unit| unit_spec(&sensor.id, unit, &bus, gateway));
    let node = SupervisorSpec::new(Strategy::OneForOne)
        .policy(gateway.policy(&sensor.policy))
        .children(units);
    ChildSpec::supervisor(sensor.id.clone(), node)
}

fn unit_spec(
    bus_id: &str,
    unit: &Arc<UnitConfig>,
    bus: &Arc<Mutex<Bus>>,
    gateway: &Arc<Gateway>,
) -> ChildSpec {
    let name: Arc<str> = format!("{bus_id}/{}", unit.id).into();
    let (unit, bus, gateway) = (unit.clone(), bus.clone(), gateway.clone());
    let policy = gateway.policy(&unit.policy);
    ChildSpec::worker(unit.id.clone(), move |ctx| {
        let (name, unit, bus, gateway) = (name.clone(), unit.clone(), bus.clone(), gateway.clone());
        async move { poll_forever(&name, &unit, &bus, &gateway, &ctx).await }
    })
    .policy(policy)
}

/// Polls the unit every `poll` until a poll fails (the child crashes with
/// the poll's reason and both frames) or the child is asked to stop.
async fn poll_forever(
    name: &str,
    unit: &UnitConfig,
    bus: &Mutex<Bus>,
    gateway: &Gateway,
    ctx: &ChildContext,
) -> Result<(), Crash> {
    let mut telemetry = Telemetry::new(gateway, name, "modbus");
    let mut ticks = tokio::time::interval(unit.poll.max(Duration::from_millis(1)));
    // A poll delayed by a busy bus moves the next one, rather than firing
    // a burst that would hold the bus longer still.
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let shutdown = ctx.shutdown_requested();
    tokio::pin!(shutdown);
    let mut readings = Vec::with_capacity(1);
    loop {
        // A stop is heard while waiting, not while polling: a poll takes
        // at most `(retries + 1) * timeout`, and one cut off half-way
        // would leave its reply on the line (the bus would then drain or
        // reconnect first, so that too is safe, only slower).
        let mut bus = tokio::select! {
            _ = &mut shutdown => return Ok(()),
            bus = async {
                ticks.tick().await;
                gateway.outbox.room().await;
                bus.lock().await
            } => bus,
        };
        let polled = modbus::poll(&mut bus, &unit.unit).await;
        drop(bus);
        readings.push(polled.map_err(|e| crash(&e))?);
        gateway.outbox.append(telemetry.messages(&mut readings));
    }
}

/// A failed poll as a crash: its reason, its message, and the request and
/// reply as one piece of evidence (`>request<reply` in the report).
/// Both frames together are capped at SPEC's 256 evidence bytes; the reply
/// gives way, since the request is at most 12 bytes.
fn crash(error: &PollError) -> Crash {
    let crash = Crash::new(error.reason.as_str(), error.message.clone());
    if error.request.is_empty() {
        return crash;
    }
    let keep = MAX_EVIDENCE.saturating_sub(error.request.len());
    let reply = &error.reply[..error.reply.len().min(keep)];
    let mut crash = crash.with_exchange(&error.request, reply);
    crash.evidence_truncated = error.reply.len() > keep;
    crash
}
