//! The one-line `STATUS=` summary `systemctl status edgevisor` shows:
//! sensors by state, the outbox's depth, and the upstream link.

use edgevisor_runtime::{ChildState, TreeSnapshot};

use crate::tree::{sensor_place, Layout};

/// The figures the line is made of; compared to send only changes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Sensors running (or in their start phase).
    pub running: usize,
    /// Sensors waiting out a backoff.
    pub restarting: usize,
    /// Sensors parked after exhausting their window.
    pub quarantined: usize,
    /// Messages waiting in the outbox.
    pub outbox_depth: u64,
    /// Whether the upstream broker connection is up.
    pub connected: bool,
    /// While it is down: since when and the last error.
    pub down: Option<String>,
}

impl Summary {
    /// Counts the sensors of `tree`: every child at a sensor's own level as
    /// [`sensor_place`] reads paths (a group's own state is not a sensor's).
    /// Sensors whose id is in `ignore` are skipped.
    pub fn new(
        tree: &TreeSnapshot,
        layout: &Layout,
        ignore: &[&str],
        outbox_depth: u64,
        connected: bool,
    ) -> Self {
        let mut summary = Self {
            outbox_depth,
            connected,
            ..Self::default()
        };
        // Sensors sit at most three levels down (a unit of a bus in a group).
        let nodes = tree.children.iter().flat_map(|a| {
            std::iter::once(a).chain(
                a.children
                    .iter()
                    .flat_map(|b| std::iter::once(b).chain(&b.children)),
            )
        });
        for node in nodes {
            let Some(place) = sensor_place(&node.path, layout) else {
                continue;
            };
            if place.own_level && !place.group && !ignore.contains(&place.sensor) {
                summary.count(node.state);
            }
        }
        summary
    }

    fn count(&mut self, state: ChildState) {
        match state {
            ChildState::Starting | ChildState::Running => self.running += 1,
            ChildState::Restarting => self.restarting += 1,
            ChildState::Quarantined => self.quarantined += 1,
            ChildState::Stopped => {}
        }
    }

    /// The `STATUS=` text.
    pub fn line(&self) -> String {
        format!(
            "sensors: {} running, {} restarting, {} quarantined; outbox: {} queued; upstream: {}",
            self.running,
            self.restarting,
            self.quarantined,
            self.outbox_depth,
            match (&self.down, self.connected) {
                (_, true) => "connected",
                (Some(down), false) => down,
                (None, false) => "disconnected",
            }
        )
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use edgevisor_runtime::{ChildKind, ChildSnapshot};

    use super::*;

    fn child(
        path: &str,
        kind: ChildKind,
        state: ChildState,
        kids: Vec<ChildSnapshot>,
    ) -> ChildSnapshot {
        ChildSnapshot {
            id: Arc::from(path.rsplit('/').next().unwrap()),
            path: path.into(),
            kind,
            state,
            restarts: 0,
            uptime: None,
            in_state_for: Duration::ZERO,
            last_reason: None,
            children: kids,
        }
    }

    #[test]
    fn counts_sensors_inside_groups_and_skips_the_groups_themselves() {
        let tree = TreeSnapshot {
            path: "root".into(),
            strategy: "one_for_one",
            children: vec![
                child(
                    "root/barn",
                    ChildKind::Supervisor,
                    ChildState::Running,
                    vec![
                        child(
                            "root/barn/a",
                            ChildKind::Worker,
                            ChildState::Running,
                            vec![],
                        ),
                        child(
                            "root/barn/b",
                            ChildKind::Worker,
                            ChildState::Restarting,
                            vec![],
                        ),
                    ],
                ),
                child(
                    "root/weather",
                    ChildKind::Worker,
                    ChildState::Quarantined,
                    vec![],
                ),
                child(
                    "root/debug-hang",
                    ChildKind::Worker,
                    ChildState::Starting,
                    vec![],
                ),
            ],
        };
        let layout = Layout {
            groups: vec!["barn".into()],
            buses: vec![],
        };
        let summary = Summary::new(&tree, &layout, &["debug-hang"], 12, true);
        assert_eq!(
            summary.line(),
            "sensors: 1 running, 1 restarting, 1 quarantined; outbox: 12 queued; upstream: connected"
        );
    }
}
