//! Delayed starts: backoff restarts and quarantine releases, kept in a heap
//! ordered by deadline and then by start order, so a group restarted together
//! comes back in start order.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use tokio::time::Instant;

use super::core::Core;
use crate::snapshot::ChildState;

/// Pending starts: `(deadline, child key, child epoch when scheduled)`.
#[derive(Default)]
pub(crate) struct Timers {
    heap: BinaryHeap<Reverse<(Instant, u64, u32)>>,
}

impl Timers {
    pub(crate) fn schedule(&mut self, at: Instant, key: u64, epoch: u32) {
        self.heap.push(Reverse((at, key, epoch)));
    }

    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((at, _, _))| *at)
    }

    /// Removes and returns every entry due at `now`, earliest first.
    pub(crate) fn due(&mut self, now: Instant) -> Vec<(u64, u32)> {
        let mut out = Vec::new();
        while let Some(Reverse((at, key, epoch))) = self.heap.peek().copied() {
            if at > now {
                break;
            }
            self.heap.pop();
            out.push((key, epoch));
        }
        out
    }
}

impl Core {
    /// Starts the children whose backoff or quarantine is over, unless they
    /// were restarted or stopped since the timer was set.
    pub(super) async fn fire_timers(&mut self) {
        for (key, epoch) in self.timers.due(Instant::now()) {
            let due = self.shared.table().get_mut(key).is_some_and(|c| {
                c.epoch == epoch
                    && matches!(c.state, ChildState::Restarting | ChildState::Quarantined)
            });
            if due {
                self.start_or_report(key, true).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn same_deadline_comes_back_in_start_order() {
        let now = Instant::now();
        let mut t = Timers::default();
        t.schedule(now, 3, 0);
        t.schedule(now, 1, 0);
        t.schedule(now + Duration::from_secs(1), 0, 0);
        t.schedule(now, 2, 0);
        assert_eq!(t.due(now), vec![(1, 0), (2, 0), (3, 0)]);
        assert_eq!(t.next_deadline(), Some(now + Duration::from_secs(1)));
    }
}
