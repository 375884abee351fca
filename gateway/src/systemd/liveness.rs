//! What the watchdog ping vouches for: the root supervisor answers and the
//! uplink's event loop turns. Pure rules, unit-tested; the heartbeat in
//! `systemd.rs` applies them from a tokio task, so a stalled runtime stops
//! the pings too.

use std::time::Duration;

use edgevisor_runtime::SupervisorHandle;
use tokio::time::Instant;

/// How the root supervisor answered a probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RootHealth {
    /// Its loop is serving commands (so its initial start is done too).
    Serving,
    /// It has ended (stopping, or it gave up).
    Finished,
    /// No answer within the timeout: stuck in a start phase, deadlocked,
    /// or starved.
    Unresponsive,
}

/// Pings the root: only its serving loop answers. The supervisor handles
/// commands only after its initial start phase, so the first `Serving` also
/// means "the tree is up".
pub async fn probe_root(root: &SupervisorHandle, timeout: Duration) -> RootHealth {
    if root.is_finished() {
        return RootHealth::Finished;
    }
    match tokio::time::timeout(timeout, root.ping()).await {
        Ok(Ok(())) => RootHealth::Serving,
        Ok(Err(_)) => RootHealth::Finished,
        Err(_) => RootHealth::Unresponsive,
    }
}

/// Whether the uplink's event loop still turns, judged from its
/// `progress()` counter.
///
/// The rule: the counter must have moved within [`UplinkWatch::limit`],
/// `max(2 x keep_alive, 60 s)`. Sound because a live loop always turns
/// within that: connected and idle, the uplink's connection loop wakes at
/// least once per keep-alive (to send a PINGREQ, or to give up on a silent
/// broker); disconnected, it waits at most 36 s (30 s backoff + 20 %
/// jitter) and then tries to connect, which is bounded by a 5 s connect
/// timeout. A loop stuck in a call that never returns, or a task that died,
/// stops the counter.
#[derive(Debug, Clone)]
pub struct UplinkWatch {
    limit: Duration,
    last: u64,
    moved_at: Instant,
}

impl UplinkWatch {
    /// Starts watching at counter value `progress`, seen at `now`.
    pub fn new(keep_alive: Duration, progress: u64, now: Instant) -> Self {
        Self {
            limit: Self::limit(keep_alive),
            last: progress,
            moved_at: now,
        }
    }

    /// The longest a live event loop goes without a turn.
    pub fn limit(keep_alive: Duration) -> Duration {
        keep_alive.saturating_mul(2).max(Duration::from_secs(60))
    }

    /// Records the counter seen at `now`; true while the loop is alive.
    pub fn observe(&mut self, progress: u64, now: Instant) -> bool {
        if progress != self.last {
            self.last = progress;
            self.moved_at = now;
        }
        now.saturating_duration_since(self.moved_at) <= self.limit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_covers_keep_alive_and_reconnect_backoff() {
        assert_eq!(
            UplinkWatch::limit(Duration::from_secs(5)),
            Duration::from_secs(60)
        );
        assert_eq!(
            UplinkWatch::limit(Duration::from_secs(45)),
            Duration::from_secs(90)
        );
    }

    #[test]
    fn a_turning_loop_is_alive_and_a_stopped_one_dies_after_the_limit() {
        let t0 = Instant::now();
        let mut watch = UplinkWatch::new(Duration::from_secs(30), 7, t0);
        assert!(watch.observe(7, t0 + Duration::from_secs(59)));
        assert!(watch.observe(8, t0 + Duration::from_secs(61)));
        assert!(watch.observe(8, t0 + Duration::from_secs(121)));
        assert!(!watch.observe(8, t0 + Duration::from_secs(122)));
        // It comes back as soon as the counter moves again.
        assert!(watch.observe(9, t0 + Duration::from_secs(130)));
    }

    #[tokio::test]
    async fn a_serving_root_answers_and_a_stopped_one_is_finished() {
        use edgevisor_runtime::{ChildSpec, Strategy, Supervisor, SupervisorSpec};
        let spec = SupervisorSpec::new(Strategy::OneForOne).children([ChildSpec::worker(
            "idle",
            |ctx| async move {
                ctx.shutdown_token().cancelled().await;
                Ok(())
            },
        )]);
        let root = Supervisor::new("root", spec).unwrap().spawn();
        let timeout = Duration::from_secs(5);
        assert_eq!(probe_root(&root, timeout).await, RootHealth::Serving);
        root.shutdown().await.unwrap();
        assert_eq!(probe_root(&root, timeout).await, RootHealth::Finished);
    }

    #[tokio::test]
    async fn a_root_stuck_in_a_start_phase_is_unresponsive() {
        use edgevisor_runtime::{ChildSpec, Crash, Running, Strategy, Supervisor, SupervisorSpec};
        let root = Supervisor::new("root", SupervisorSpec::new(Strategy::OneForOne))
            .unwrap()
            .spawn();
        let stuck = root.clone();
        tokio::spawn(async move {
            let _ = stuck
                .start_child(ChildSpec::with_start("stuck", |_| {
                    std::future::pending::<Result<Running, Crash>>()
                }))
                .await;
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        let health = probe_root(&root, Duration::from_millis(200)).await;
        assert_eq!(health, RootHealth::Unresponsive);
        root.shutdown().await.unwrap();
    }
}
