//! Sensors as supervised children: each opens its link, turns readings into
//! telemetry in the outbox, and crashes on a corrupt frame (or, with
//! `on_corrupt = "skip"`, counts it and sends a dead letter).
//!
//! - `links`: config to device link settings;
//! - `worker`: the child body shared by every transport;
//! - `listen`: a `tcp-listen` sensor as a supervisor of one child per
//!   connection;
//! - `modbus`: a Modbus bus as a supervisor of one child per unit.

mod links;
mod listen;
mod modbus;
mod worker;

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use edgevisor_runtime::{ChildSpec, RestartPolicy};

use crate::config::{LinkConfig, Policy, SensorConfig};
use crate::outbox::Outbox;
use crate::systemd::InheritedSockets;
use crate::topics::Topics;
use crate::tree::Layout;

/// What every sensor child needs from the gateway.
pub struct Gateway {
    /// `gateway.id`.
    pub id: String,
    /// This start's boot number.
    pub boot: u64,
    /// Topic names.
    pub topics: Topics,
    /// Where telemetry and dead letters go.
    pub outbox: Outbox,
    counters: Mutex<HashMap<String, Arc<Counters>>>,
    /// Restart policies handed out so far, one `Arc` per distinct policy:
    /// most sensors share one, and a copy each costs about 100 bytes twice
    /// (the sensor's own window, and a tcp-listen sensor's supervisor).
    policies: Mutex<Vec<Arc<RestartPolicy>>>,
    /// Which tree paths are groups and buses, for reading paths; replaced
    /// by a reload before it starts new children.
    layout: RwLock<Arc<Layout>>,
    /// Listening sockets systemd passed, for `tcp-listen` sensors.
    pub inherited: InheritedSockets,
}

/// Per-sensor counts that outlive restarts on purpose: SPEC wants `seq`
/// gap-free per sensor per boot, whatever happens to the child.
#[derive(Default)]
pub struct Counters {
    /// Last telemetry `seq` handed to the outbox.
    pub seq: AtomicU64,
    /// Corrupt frames skipped (`on_corrupt = "skip"`).
    pub skipped: AtomicU64,
    /// When the last readings were taken, in Unix milliseconds (0 before
    /// the first), for the metrics.
    pub last_reading_ms: AtomicU64,
}

impl Gateway {
    /// The gateway context for one boot.
    pub fn new(
        id: String,
        boot: u64,
        topics: Topics,
        outbox: Outbox,
        inherited: InheritedSockets,
    ) -> Arc<Self> {
        Arc::new(Self {
            id,
            boot,
            topics,
            outbox,
            counters: Mutex::new(HashMap::new()),
            policies: Mutex::new(Vec::new()),
            layout: RwLock::default(),
            inherited,
        })
    }

    /// The layout of the running config.
    pub fn layout(&self) -> Arc<Layout> {
        self.layout
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Takes the layout of a new config (at start and on reload).
    pub fn set_layout(&self, layout: Layout) {
        *self.layout.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(layout);
    }

    /// The restart policy of `policy`, shared with every sensor that has
    /// the same one.
    pub fn policy(&self, policy: &Policy) -> Arc<RestartPolicy> {
        let wanted = policy.restart_policy();
        let mut known = self.policies.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(same) = known.iter().find(|p| ***p == wanted) {
            return same.clone();
        }
        let shared = Arc::new(wanted);
        known.push(shared.clone());
        shared
    }

    /// Every sensor's counters, sorted by sensor, for a metrics scrape.
    pub fn all_counters(&self) -> Vec<(String, Arc<Counters>)> {
        let all = self.counters.lock().unwrap_or_else(PoisonError::into_inner);
        let mut list: Vec<_> = all.iter().map(|(s, c)| (s.clone(), c.clone())).collect();
        drop(all);
        list.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        list
    }

    /// The counters of `sensor`, created on first use and kept for the boot
    /// (a sensor changed by a reload keeps counting).
    pub fn counters(&self, sensor: &str) -> Arc<Counters> {
        let mut all = self.counters.lock().unwrap_or_else(PoisonError::into_inner);
        all.entry(sensor.to_string()).or_default().clone()
    }
}

/// The child for one `[[sensor]]`, with a restart window of its own.
pub fn child_spec(sensor: &Arc<SensorConfig>, gateway: &Arc<Gateway>) -> ChildSpec {
    let spec = match &sensor.link {
        LinkConfig::TcpListen { .. } => listen::spec(sensor, gateway),
        LinkConfig::Modbus(bus) => modbus::spec(sensor, bus, gateway),
        _ => worker::spec(sensor, gateway),
    };
    spec.restart(sensor.restart)
        .policy(gateway.policy(&sensor.policy))
}
