//! The one-line `STATUS=` summary `systemctl status edgevisor` shows:
//! sensors by state, the outbox's depth, and the upstream link.

use edgevisor_runtime::{ChildState, LiveChildren};

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
    /// Counts the sensors of the tree under `root`, read in place: every
    /// child at a sensor's own level as [`sensor_place`] reads paths (a
    /// group's own state is not a sensor's). Only groups and Modbus buses
    /// are entered, so a `tcp-listen` sensor's connections (thousands, on a
    /// busy one) are never visited: this runs every second under systemd.
    /// Sensors whose id is in `ignore` are skipped.
    pub fn new(
        root: &LiveChildren<'_>,
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
        summary.visit(root, layout, ignore, &mut String::new());
        summary
    }

    fn visit(
        &mut self,
        children: &LiveChildren<'_>,
        layout: &Layout,
        ignore: &[&str],
        path: &mut String,
    ) {
        children.with(|children| {
            for child in children {
                path.clear();
                path.push_str(child.parent);
                path.push('/');
                path.push_str(child.id);
                let Some(place) = sensor_place(path, layout) else {
                    continue;
                };
                if place.group {
                    if let Some(nested) = &child.children {
                        self.visit(nested, layout, ignore, path);
                    }
                } else if place.own_level && !ignore.contains(&place.sensor) {
                    self.count(child.state);
                }
            }
        });
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
    use std::time::Duration;

    use edgevisor_runtime::{
        ChildSpec, Crash, RestartPolicy, Strategy, Supervisor, SupervisorSpec,
    };

    use super::*;

    fn idle(id: &str) -> ChildSpec {
        ChildSpec::worker(id, |_| std::future::pending())
    }

    /// A group with a running and a restarting sensor, a quarantined
    /// sensor, a tcp-listen sensor with two connections (one sensor, not
    /// three), a Modbus bus with two units, and the debugging hook's child.
    #[tokio::test(start_paused = true)]
    async fn counts_sensors_inside_groups_and_buses_but_not_connections() {
        // Crashes at once; restarted after `backoff`, quarantined at the
        // second crash.
        let failing = |id: &str, backoff: Duration| {
            ChildSpec::worker(id, |_| async { Err(Crash::new("io", "gone")) }).policy(
                RestartPolicy::default()
                    .intensity(1, Duration::from_secs(60))
                    .backoff(backoff, backoff, Duration::from_secs(60))
                    .quarantine(Duration::from_secs(3600)),
            )
        };
        let barn = SupervisorSpec::new(Strategy::OneForOne)
            .child(idle("a"))
            .child(failing("b", Duration::from_secs(600)));
        let nodes = SupervisorSpec::new(Strategy::OneForOne)
            .child(idle("10.0.0.1:5000"))
            .child(idle("10.0.0.2:5000"));
        let meters = SupervisorSpec::new(Strategy::OneForOne)
            .child(idle("1"))
            .child(idle("2"));
        let spec = SupervisorSpec::new(Strategy::OneForOne)
            .child(ChildSpec::supervisor("barn", barn))
            .child(ChildSpec::supervisor("nodes", nodes))
            .child(ChildSpec::supervisor("meters", meters))
            .child(failing("weather", Duration::from_millis(1)))
            .child(idle("debug-hang"));
        let root = Supervisor::new("root", spec).unwrap().spawn();
        tokio::time::sleep(Duration::from_secs(5)).await;
        let layout = Layout {
            groups: vec!["barn".into()],
            buses: vec!["meters".into()],
        };
        let summary = Summary::new(&root.live(), &layout, &["debug-hang"], 12, true);
        assert_eq!(
            summary.line(),
            "sensors: 4 running, 1 restarting, 1 quarantined; outbox: 12 queued; upstream: connected"
        );
        root.shutdown().await.unwrap();
    }
}
