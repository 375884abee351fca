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

/// The id of the root child a path belongs to, and the sensor it names:
/// `root/barn/barn-gps` -> `barn-gps`; `root/nodes/conns/1.2.3.4:5` ->
/// `nodes`; `root/barn` -> `barn` (the group itself).
pub fn sensor_of<'a>(path: &'a str, groups: &[String]) -> Option<&'a str> {
    let mut parts = path.split('/').skip(1);
    let first = parts.next()?;
    if groups.iter().any(|g| g == first) {
        return Some(parts.next().unwrap_or(first));
    }
    Some(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_name_their_sensor() {
        let groups = vec!["barn".to_string()];
        assert_eq!(sensor_of("root/barn/barn-gps", &groups), Some("barn-gps"));
        assert_eq!(sensor_of("root/barn", &groups), Some("barn"));
        assert_eq!(sensor_of("root/weather", &groups), Some("weather"));
        assert_eq!(
            sensor_of("root/nodes/conns/127.0.0.1:5000", &groups),
            Some("nodes")
        );
        assert_eq!(sensor_of("root", &groups), None);
    }
}
