//! The supervision tree a config describes: a root (one_for_one, always
//! escalates: its exhaustion ends the process with code 3) over groups and
//! ungrouped sensors; each group a supervisor with its strategy over its
//! sensors; each sensor a child with a restart window of its own.

use std::sync::Arc;

use edgevisor_runtime::{ChildSpec, Strategy, SupervisorSpec};

use crate::config::{Config, GroupConfig, LinkConfig, RootChild};
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
    /// The path is a supervisor whose children are sensors (a group, or a
    /// Modbus bus whose units are sensors), not a sensor.
    pub group: bool,
}

/// The names that say what a tree path is: groups (whose children are
/// sensors) and Modbus buses (whose children are units, each a sensor
/// named `<bus>/<unit>`). Taken from the config at start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Layout {
    /// Group ids.
    pub groups: Vec<String>,
    /// Ids of Modbus bus sensors.
    pub buses: Vec<String>,
}

impl Layout {
    /// The layout of `config`.
    pub fn of(config: &Config) -> Self {
        Layout {
            groups: config
                .children
                .iter()
                .filter_map(|c| match c {
                    RootChild::Group(g) => Some(g.id.clone()),
                    RootChild::Sensor(_) => None,
                })
                .collect(),
            buses: config
                .sensors()
                .filter(|s| matches!(s.link, LinkConfig::Modbus(_)))
                .map(|s| s.id.clone())
                .collect(),
        }
    }
}

impl Layout {
    /// Adds the groups and buses of `old` that are gone from `new` (their
    /// children's last events still come); an id that `new` uses for
    /// something else takes its new meaning.
    pub fn keep(&mut self, old: &Layout, new: &Config) {
        let taken = |id: &String| {
            new.children.iter().any(|c| c.id() == id) || new.sensors().any(|s| &s.id == id)
        };
        for (mine, theirs) in [
            (&mut self.groups, &old.groups),
            (&mut self.buses, &old.buses),
        ] {
            for id in theirs {
                if !mine.contains(id) && !taken(id) {
                    mine.push(id.clone());
                }
            }
        }
    }
}

/// The one reading of tree paths, for crash reports, sensor states and the
/// systemd status line: `root/barn/barn-gps` -> `barn-gps` (own level);
/// `root/nodes/1.2.3.4:5` -> `nodes` (below it); `root/meters/meter-1` ->
/// the unit `meters/meter-1` (own level) when `meters` is a Modbus bus;
/// `root/barn` -> the group `barn`; `root` -> `None`. Paths start at the
/// root supervisor.
pub fn sensor_place<'a>(path: &'a str, layout: &Layout) -> Option<SensorPlace<'a>> {
    let parts: Vec<&str> = path.split('/').collect();
    let first = *parts.get(1)?;
    let group = layout.groups.iter().any(|g| g == first);
    let at = if group { 2 } else { 1 };
    let Some(sensor) = parts.get(at).copied() else {
        return Some(SensorPlace {
            sensor: first,
            own_level: true,
            group: true,
        });
    };
    let start: usize = parts[..at].iter().map(|p| p.len() + 1).sum();
    let unit = parts
        .get(at + 1)
        .filter(|_| layout.buses.iter().any(|b| b == sensor));
    let is_bus = layout.buses.iter().any(|b| b == sensor);
    Some(match unit {
        Some(unit) => SensorPlace {
            sensor: &path[start..start + sensor.len() + 1 + unit.len()],
            own_level: parts.len() == at + 2,
            group: false,
        },
        None => SensorPlace {
            sensor,
            own_level: parts.len() == at + 1,
            group: is_bus && parts.len() == at + 1,
        },
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
        let layout = Layout {
            groups: vec!["barn".to_string()],
            buses: vec!["meters".to_string()],
        };
        sensor_place(path, &layout).map(|p| (p.sensor, p.own_level, p.group))
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
        assert_eq!(place("root/meters"), Some(("meters", true, true)));
        assert_eq!(
            place("root/meters/meter-1"),
            Some(("meters/meter-1", true, false))
        );
        assert_eq!(
            place("root/barn/meters/meter-1"),
            Some(("meters/meter-1", true, false))
        );
    }
}
