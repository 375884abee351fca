//! Carrying out a restart or a quarantine: which siblings a restart takes
//! along (the strategy), in which order they stop and start again.

use std::time::Duration;

use tokio::time::Instant;

use super::core::Core;
use crate::child::Restart;
use crate::event::EventKind;
use crate::snapshot::ChildState;
use crate::supervisor::Strategy;

impl Core {
    /// Restarts `failed` (already down) after `delay`, together with the
    /// siblings its strategy names. Those siblings are stopped newest first;
    /// a temporary one stays down, as in OTP. The group starts again in start
    /// order once the delay has passed.
    pub(crate) async fn restart_after(&mut self, failed: u64, delay: Duration) {
        let group = {
            let table = self.shared.table();
            match self.shared.strategy {
                Strategy::OneForOne | Strategy::Dynamic { .. } => vec![failed],
                Strategy::OneForAll => table.keys_from(0),
                Strategy::RestForOne => table.keys_from(failed),
            }
        };
        for &key in group.iter().rev().filter(|&&key| key != failed) {
            self.stop_child_for_restart(key).await;
        }
        let now = Instant::now();
        let mut start_now = Vec::new();
        for key in group {
            let scheduled = {
                let mut table = self.shared.table();
                let Some(child) = table.get_mut(key) else {
                    continue;
                };
                let joins = key == failed || child.state == ChildState::Restarting;
                if !joins {
                    continue;
                }
                child.epoch = child.epoch.wrapping_add(1);
                child.set_state(ChildState::Restarting, now);
                if !delay.is_zero() {
                    self.timers.schedule(now + delay, key, child.epoch);
                }
                child.spec.id.clone()
            };
            self.emit(&scheduled, || EventKind::Restarting { delay });
            if delay.is_zero() {
                start_now.push(key);
            }
        }
        for key in start_now {
            self.start_or_report(key, true).await;
        }
    }

    /// Stops a sibling taken along by a restart; a temporary one is removed.
    async fn stop_child_for_restart(&mut self, key: u64) {
        let (running, temporary) = {
            let mut table = self.shared.table();
            match table.get_mut(key) {
                Some(c) => (
                    matches!(c.state, ChildState::Running | ChildState::Starting),
                    c.spec.restart == Restart::Temporary,
                ),
                None => return,
            }
        };
        if !running {
            return;
        }
        self.stop_child(key, ChildState::Restarting).await;
        if temporary {
            self.shared.table().remove(key);
        }
    }

    /// Parks a child that exhausted its window and schedules its retry with a
    /// clean window and backoff. Siblings are left alone.
    pub(crate) fn quarantine(&mut self, key: u64, for_: Duration) {
        let now = Instant::now();
        let id = {
            let mut table = self.shared.table();
            let Some(child) = table.get_mut(key) else {
                return;
            };
            child.epoch = child.epoch.wrapping_add(1);
            child.set_state(ChildState::Quarantined, now);
            child.backoff.reset();
            match child.window.as_mut() {
                Some(own) => own.clear(),
                None => self.window.clear(),
            }
            self.timers.schedule(now + for_, key, child.epoch);
            child.spec.id.clone()
        };
        self.emit(&id, || EventKind::Quarantined { for_ });
    }
}
