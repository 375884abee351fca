//! The supervision tree's figures, counted as its events happen (the
//! reports task hands every event here, where it also logs crashes): up,
//! quarantined, and crashes by reason.
//!
//! `child` is the tree path, with bounded cardinality: a child below a
//! sensor's own level (a `tcp-listen` connection, `root/nodes/1.2.3.4:5`,
//! a new path for every connection) is counted under its sensor's path
//! (`root/nodes`), and has no up or quarantined series of its own.

use edgevisor_runtime::{Event, EventKind};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::tree::SensorPlace;

/// `{child}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ChildLabel {
    child: String,
}

/// `{child, reason}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CrashLabels {
    child: String,
    reason: String,
}

/// The tree's families.
#[derive(Default)]
pub struct TreeMetrics {
    up: Family<ChildLabel, Gauge>,
    quarantined: Family<ChildLabel, Gauge>,
    restarts: Family<CrashLabels, Counter>,
}

impl TreeMetrics {
    /// Adds the families to `registry` (which prefixes `edgevisor_`).
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "child_up",
            "1 while the child runs, 0 otherwise",
            self.up.clone(),
        );
        registry.register(
            "child_restarts",
            "Crashes of the child, by reason; each is followed by the action its crash report names",
            self.restarts.clone(),
        );
        registry.register(
            "child_quarantined",
            "1 while the child is quarantined",
            self.quarantined.clone(),
        );
    }

    /// Counts one event of the tree; `place` is where its path sits
    /// among the sensors (`crate::tree::sensor_place`, which the caller
    /// has read already).
    pub fn on_event(&self, event: &Event, place: &SensorPlace<'_>) {
        let own = place.own_level || place.group;
        let child = if own {
            event.path.to_string()
        } else {
            sensor_path(&event.path, place.sensor)
        };
        if let EventKind::Crashed { crash, .. } = &event.kind {
            let labels = CrashLabels {
                child: child.clone(),
                reason: crash.reason.to_string(),
            };
            self.restarts.get_or_create(&labels).inc();
        }
        if !own {
            return;
        }
        let label = ChildLabel { child };
        let (up, quarantined) = match &event.kind {
            EventKind::Started { .. } => (1, Some(0)),
            EventKind::Quarantined { .. } => (0, Some(1)),
            EventKind::Crashed { .. }
            | EventKind::Restarting { .. }
            | EventKind::Escalated { .. }
            | EventKind::Stopped { .. } => (0, None),
        };
        self.up.get_or_create(&label).set(up);
        if let Some(q) = quarantined {
            self.quarantined.get_or_create(&label).set(q);
        }
    }
}

/// The path of the sensor `sensor` that `path` lies below:
/// `root/nodes/1.2.3.4:5` -> `root/nodes` (a Modbus unit's sensor name
/// `bus/unit` spans two segments). The name must match whole segments, so
/// a group `nodes-a` is not taken for the sensor `nodes`.
fn sensor_path(path: &str, sensor: &str) -> String {
    let bytes = path.as_bytes();
    let mut from = 0;
    while let Some(at) = path[from..].find(sensor).map(|i| i + from) {
        let end = at + sensor.len();
        let starts = at > 0 && bytes[at - 1] == b'/';
        let ends = end == path.len() || bytes[end] == b'/';
        if starts && ends {
            return path[..end].to_string();
        }
        from = at + 1;
    }
    path.to_string()
}

#[cfg(test)]
mod tests {
    use super::sensor_path;

    #[test]
    fn a_connection_counts_under_its_sensor() {
        assert_eq!(sensor_path("root/nodes/1.2.3.4:5", "nodes"), "root/nodes");
        assert_eq!(sensor_path("root/g/nodes/[::1]:7", "nodes"), "root/g/nodes");
        assert_eq!(sensor_path("root/m/u1/x", "m/u1"), "root/m/u1");
        assert_eq!(
            sensor_path("root/nodes-a/nodes/1.2.3.4:5", "nodes"),
            "root/nodes-a/nodes"
        );
    }
}
