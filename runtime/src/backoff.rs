//! Exponential backoff with jitter, per child.
//!
//! Restart `n` of a crash series waits `min(max, initial * 2^(n-1))`, spread
//! by +-jitter. A child that ran for `backoff_reset` before crashing starts a
//! new series. Pure arithmetic: the random sample is an argument so tests can
//! pin it. The arithmetic lives in `edgevisor-backoff`; this module keeps
//! the per-child series (when it grows, when it resets).

use std::time::Duration;

use edgevisor_backoff::ExponentialBackoff;

use crate::policy::RestartPolicy;

/// Where a child is in its crash series.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BackoffState {
    /// Restarts since the child last ran healthy for `backoff_reset`.
    pub consecutive: u32,
}

impl BackoffState {
    /// Records one more restart after a run of `ran_for` and returns the delay
    /// before it. `unit_sample` is uniform in `[0, 1)`; 0.5 means no jitter.
    pub fn next_delay(
        &mut self,
        policy: &RestartPolicy,
        ran_for: Duration,
        unit_sample: f64,
    ) -> Duration {
        if ran_for >= policy.backoff_reset {
            self.consecutive = 0;
        }
        self.consecutive = self.consecutive.saturating_add(1);
        schedule(policy).delay(self.consecutive, unit_sample)
    }

    /// Forgets the series, e.g. when a quarantined child gets a fresh try.
    pub fn reset(&mut self) {
        self.consecutive = 0;
    }
}

/// The policy's schedule, computed by the workspace's one backoff crate so
/// supervision, links and the uplink agree on what "backoff" means.
pub fn schedule(policy: &RestartPolicy) -> ExponentialBackoff {
    ExponentialBackoff::new(policy.backoff_initial, policy.backoff_max, policy.jitter)
}

/// `min(max, initial * 2^(n-1))` for the `n`-th restart (n >= 1), without
/// overflow however long the series.
pub fn base_delay(policy: &RestartPolicy, n: u32) -> Duration {
    schedule(policy).base(n)
}

/// Spreads `base` by `+-fraction`, mapping `unit_sample` in `[0,1)` onto
/// `[1-fraction, 1+fraction)`.
pub fn apply_jitter(base: Duration, fraction: f64, unit_sample: f64) -> Duration {
    edgevisor_backoff::jitter(base, fraction, unit_sample)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RestartPolicy {
        RestartPolicy::default().jitter(0.0)
    }

    #[test]
    fn doubles_from_initial_up_to_max() {
        let p = policy();
        let mut s = BackoffState::default();
        let delays: Vec<u64> = (0..12)
            .map(|_| s.next_delay(&p, Duration::ZERO, 0.5).as_millis() as u64)
            .collect();
        assert_eq!(
            delays,
            [100, 200, 400, 800, 1600, 3200, 6400, 12800, 25600, 30000, 30000, 30000]
        );
    }

    #[test]
    fn healthy_run_resets_the_series() {
        let p = policy();
        let mut s = BackoffState::default();
        for _ in 0..4 {
            s.next_delay(&p, Duration::from_secs(1), 0.5);
        }
        assert_eq!(s.consecutive, 4);
        let d = s.next_delay(&p, Duration::from_secs(60), 0.5);
        assert_eq!(d, Duration::from_millis(100));
        assert_eq!(s.consecutive, 1);
    }

    #[test]
    fn zero_initial_gives_otp_timing() {
        let p = RestartPolicy::otp();
        let mut s = BackoffState::default();
        for _ in 0..100 {
            assert_eq!(s.next_delay(&p, Duration::ZERO, 0.99), Duration::ZERO);
        }
    }

    #[test]
    fn jitter_stays_within_twenty_percent() {
        let base = Duration::from_millis(1000);
        assert_eq!(apply_jitter(base, 0.2, 0.0), Duration::from_millis(800));
        assert_eq!(apply_jitter(base, 0.2, 0.5), Duration::from_millis(1000));
        let high = apply_jitter(base, 0.2, 0.999_999);
        assert!(high < Duration::from_millis(1200) && high > Duration::from_millis(1199));
    }

    #[test]
    fn very_long_series_do_not_overflow() {
        let p = policy();
        assert_eq!(base_delay(&p, u32::MAX), p.backoff_max);
    }
}
