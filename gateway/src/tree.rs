//! The supervision tree a config describes: a root (one_for_one, always
//! escalates: its exhaustion ends the process with code 3) over groups and
//! ungrouped sensors; each group a supervisor with its strategy over its
//! sensors; each sensor a child with a restart window of its own.

use std::sync::Arc;

use edgevisor_runtime::{ChildSpec, Strategy, SupervisorSpec};

use crate::config::{Config, GroupConfig, RootChild};
use crate::sensor::{self, Gateway};

/// The root supervisor's spec.
pub fn root(config: &Config, gateway: &Arc<Gateway>) -> SupervisorSpec {
    SupervisorSpec::new(Strategy::OneForOne)
        .policy(config.root.restart_policy().escalate())
        .children(
            config
                .children
                .iter()
                .map(|child| root_child(child, gateway)),
        )
}

/// The spec of one child of the root (a sensor, or a group).
pub fn root_child(child: &RootChild, gateway: &Arc<Gateway>) -> ChildSpec {
    match child {
        RootChild::Sensor(s) => sensor::child_spec(s, gateway),
        RootChild::Group(g) => group(g, gateway),
    }
}

fn group(group: &GroupConfig, gateway: &Arc<Gateway>) -> ChildSpec {
    let spec = SupervisorSpec::new(group.strategy)
        .policy(group.policy.restart_policy())
        .children(group.sensors.iter().map(|s| sensor::child_spec(s, gateway)));
    ChildSpec::supervisor(group.id.clone(), spec).policy(group.policy.restart_policy())
}

/// Where a supervision-tree path sits among the sensors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SensorPlace<'a> {
    /// The sensor the path belongs to; for a group's own path, the group
    /// (its crash reports and state go out under its id).
    pub sensor: &'a str,
    /// The path is the sensor's own child (`root/s`, `root/g/s`, or the
    /// group `root/g`), not one below it such as a tcp-listen connection
    /// (`root/nodes/1.2.3.4:5`). Only this level has a sensor state.
    pub own_level: bool,
    /// The path is a group's supervisor, not a sensor.
    pub group: bool,
}

/// The one reading of tree paths, for crash reports, sensor states and the
/// systemd status line: `root/barn/barn-gps` -> `barn-gps` (own level);
/// `root/nodes/1.2.3.4:5` -> `nodes` (below it); `root/barn` -> the
/// group `barn`; `root` -> `None`. Paths start at the root supervisor.
pub fn sensor_place<'a>(path: &'a str, groups: &[String]) -> Option<SensorPlace<'a>> {
    let mut parts = path.split('/').skip(1);
    let first = parts.next()?;
    let group = groups.iter().any(|g| g == first);
    let sensor = if group { parts.next() } else { Some(first) };
    let Some(sensor) = sensor else {
        return Some(SensorPlace {
            sensor: first,
            own_level: true,
            group: true,
        });
    };
    Some(SensorPlace {
        sensor,
        own_level: parts.next().is_none(),
        group: false,
    })
}

/// How many tree events the crash reporter may fall behind before it misses
/// some: 4 per sensor, at least 1,024 and at most 65,536. A start makes one
/// per sensor and a group restart three per member, while the reporter
/// drains them as they come (a reporter that lags says how many it missed).
/// The event ring is allocated whole, 32 bytes a slot, so a fixed 65,536
/// cost 2 MiB even for ten sensors.
pub fn event_capacity(sensors: usize) -> usize {
    sensors.saturating_mul(4).clamp(1024, 65_536)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn place(path: &str) -> Option<(&str, bool, bool)> {
        let groups = vec!["barn".to_string()];
        sensor_place(path, &groups).map(|p| (p.sensor, p.own_level, p.group))
    }

    #[test]
    fn paths_name_their_sensor_and_level() {
        assert_eq!(place("root/barn/barn-gps"), Some(("barn-gps", true, false)));
        assert_eq!(place("root/barn"), Some(("barn", true, true)));
        assert_eq!(place("root/weather"), Some(("weather", true, false)));
        assert_eq!(
            place("root/nodes/127.0.0.1:5000"),
            Some(("nodes", false, false))
        );
        assert_eq!(
            place("root/barn/gps/127.0.0.1:5000"),
            Some(("gps", false, false))
        );
        assert_eq!(place("root"), None);
    }
}
