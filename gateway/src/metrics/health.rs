//! `GET /healthz` (SPEC section 10): 200 while the root supervisor runs
//! and the uplink's event loop has turned within the last
//! `2 * keep_alive`; 503 otherwise, with the reason in the body.

use std::time::Duration;

use tokio::time::Instant;

use crate::systemd::RootHealth;
use crate::uplink::CONNECT_TIMEOUT;

/// Remembers when the uplink's progress counter last moved.
#[derive(Debug)]
pub struct UplinkTurns {
    limit: Duration,
    last: Option<(u64, Instant)>,
}

impl UplinkTurns {
    /// A watch whose limit is `2 * keep_alive`, and never less than a
    /// connection attempt plus a second (a `keep_alive` under 3 s would
    /// otherwise call an attempt to reach a dead broker a hang).
    pub fn new(keep_alive: Duration) -> Self {
        Self {
            limit: keep_alive
                .saturating_mul(2)
                .max(CONNECT_TIMEOUT + Duration::from_secs(1)),
            last: None,
        }
    }

    /// How long the loop has gone without a turn, given its counter now.
    /// The first look counts as a turn.
    pub fn idle_for(&mut self, progress: u64, now: Instant) -> Duration {
        match self.last {
            Some((seen, at)) if seen == progress => now.saturating_duration_since(at),
            _ => {
                self.last = Some((progress, now));
                Duration::ZERO
            }
        }
    }

    /// The longest a live loop goes without a turn.
    pub fn limit(&self) -> Duration {
        self.limit
    }
}

/// The answer: `Ok` with a short body, or `Err` with the reason.
pub fn verdict(root: RootHealth, uplink_idle: Duration, limit: Duration) -> Result<String, String> {
    match root {
        RootHealth::Serving => {}
        RootHealth::Finished => return Err("the root supervisor is not running\n".into()),
        RootHealth::Unresponsive => {
            return Err("the root supervisor does not answer (hung or starved)\n".into())
        }
    }
    if uplink_idle > limit {
        return Err(format!(
            "the uplink's event loop has not turned for {} s (limit {} s: 2 x keep_alive)\n",
            uplink_idle.as_secs(),
            limit.as_secs()
        ));
    }
    Ok("ok\n".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn healthy_only_with_a_serving_root_and_a_turning_uplink() {
        let limit = Duration::from_secs(60);
        assert!(verdict(RootHealth::Serving, Duration::from_secs(59), limit).is_ok());
        let hung = verdict(RootHealth::Serving, Duration::from_secs(61), limit).unwrap_err();
        assert!(hung.contains("uplink"), "{hung}");
        let gone = verdict(RootHealth::Finished, Duration::ZERO, limit).unwrap_err();
        assert!(gone.contains("root supervisor"), "{gone}");
        assert!(verdict(RootHealth::Unresponsive, Duration::ZERO, limit).is_err());
    }

    #[test]
    fn the_idle_time_restarts_when_the_counter_moves() {
        let t0 = Instant::now();
        let mut turns = UplinkTurns::new(Duration::from_secs(30));
        assert_eq!(turns.limit(), Duration::from_secs(60));
        assert_eq!(turns.idle_for(5, t0), Duration::ZERO);
        assert_eq!(
            turns.idle_for(5, t0 + Duration::from_secs(10)),
            Duration::from_secs(10)
        );
        assert_eq!(
            turns.idle_for(6, t0 + Duration::from_secs(11)),
            Duration::ZERO
        );
        assert_eq!(
            turns.idle_for(6, t0 + Duration::from_secs(12)),
            Duration::from_secs(1)
        );
        assert_eq!(
            UplinkTurns::new(Duration::from_secs(1)).limit(),
            Duration::from_secs(6)
        );
    }
}
