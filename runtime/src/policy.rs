//! How hard a supervisor (or a single child) tries before giving up: the
//! intensity window, the backoff curve and what happens on exhaustion.
//!
//! One [`RestartPolicy`] value describes all of it so that the gateway can
//! resolve a sensor's policy from its `[[sensor]]`, `[[group]]` and
//! `[supervisor]` tables in one place and hand the runtime a finished value.

use std::time::Duration;

use crate::error::SpecError;

/// What a supervisor does once more than `intensity` restarts happened within
/// `period`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnExhausted {
    /// OTP behaviour: stop every child in reverse start order and fail to the
    /// parent with reason `exhausted`.
    Escalate,
    /// Edge behaviour: park the failing child, report it, retry it after
    /// `quarantine_for`; its siblings keep running.
    Quarantine,
}

/// Restart limits and pacing, shared by a supervisor's children or owned by
/// one child (see [`crate::ChildSpec::policy`]).
#[derive(Debug, Clone, PartialEq)]
pub struct RestartPolicy {
    /// Restarts allowed inside `period`; one more exhausts the window.
    pub intensity: u32,
    /// Length of the sliding window over which restarts are counted.
    pub period: Duration,
    /// Delay before the first restart of a crash series; zero gives OTP's
    /// immediate restarts.
    pub backoff_initial: Duration,
    /// Upper bound of the doubling delay (before jitter).
    pub backoff_max: Duration,
    /// A child that ran this long without crashing starts its backoff over.
    pub backoff_reset: Duration,
    /// Fraction of random spread applied to each delay (0.2 = +-20 %), so a
    /// fleet of sensors that failed together does not retry in lock-step.
    pub jitter: f64,
    /// What exhaustion leads to.
    pub on_exhausted: OnExhausted,
    /// How long a quarantined child stays parked before it is retried.
    pub quarantine_for: Duration,
}

impl Default for RestartPolicy {
    /// The defaults of SPEC section 2: 5 restarts in 60 s, backoff 100 ms
    /// doubling to 30 s, reset after 60 s healthy, +-20 % jitter, escalate,
    /// quarantine for 10 minutes when asked to quarantine.
    fn default() -> Self {
        Self {
            intensity: 5,
            period: Duration::from_secs(60),
            backoff_initial: Duration::from_millis(100),
            backoff_max: Duration::from_secs(30),
            backoff_reset: Duration::from_secs(60),
            jitter: 0.2,
            on_exhausted: OnExhausted::Escalate,
            quarantine_for: Duration::from_secs(600),
        }
    }
}

impl RestartPolicy {
    /// OTP timing: immediate restarts, no jitter, the default window.
    pub fn otp() -> Self {
        Self {
            backoff_initial: Duration::ZERO,
            backoff_max: Duration::ZERO,
            jitter: 0.0,
            ..Self::default()
        }
    }

    /// Sets `intensity` restarts per `period`.
    pub fn intensity(mut self, intensity: u32, period: Duration) -> Self {
        self.intensity = intensity;
        self.period = period;
        self
    }

    /// Sets the backoff curve.
    pub fn backoff(mut self, initial: Duration, max: Duration, reset: Duration) -> Self {
        self.backoff_initial = initial;
        self.backoff_max = max;
        self.backoff_reset = reset;
        self
    }

    /// Sets the jitter fraction (0.0 for exact, reproducible delays).
    pub fn jitter(mut self, fraction: f64) -> Self {
        self.jitter = fraction;
        self
    }

    /// Escalate to the parent on exhaustion.
    pub fn escalate(mut self) -> Self {
        self.on_exhausted = OnExhausted::Escalate;
        self
    }

    /// Quarantine the failing child for `for_` on exhaustion.
    pub fn quarantine(mut self, for_: Duration) -> Self {
        self.on_exhausted = OnExhausted::Quarantine;
        self.quarantine_for = for_;
        self
    }

    /// Every rule this policy breaks, in a fixed order; empty when it can
    /// be run. The one definition of a valid policy: the supervisor checks
    /// it when a spec is built and the gateway's config checks it at the
    /// file's line, so the two can never disagree.
    pub fn problems(&self) -> Vec<PolicyError> {
        let mut problems = Vec::new();
        if self.period.is_zero() {
            problems.push(PolicyError::ZeroPeriod {
                intensity: self.intensity,
            });
        }
        if self.backoff_initial > self.backoff_max {
            problems.push(PolicyError::BackoffInverted {
                initial: self.backoff_initial,
                max: self.backoff_max,
            });
        }
        if !(0.0..1.0).contains(&self.jitter) {
            problems.push(PolicyError::Jitter(self.jitter));
        }
        if self.on_exhausted == OnExhausted::Quarantine && self.quarantine_for.is_zero() {
            problems.push(PolicyError::ZeroQuarantine);
        }
        problems
    }

    /// The first of [`problems`](Self::problems), or `Ok`.
    pub fn validate(&self) -> Result<(), PolicyError> {
        self.problems().into_iter().next().map_or(Ok(()), Err)
    }

    /// [`validate`](Self::validate) as a spec error naming `owner` (a
    /// supervisor or child path), so the user knows which spec to fix.
    pub(crate) fn validate_for(&self, owner: &str) -> Result<(), SpecError> {
        self.validate().map_err(|e| SpecError::Policy {
            owner: owner.to_string(),
            why: e.to_string(),
        })
    }
}

/// One rule a [`RestartPolicy`] breaks. Each message says how to fix it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PolicyError {
    /// A zero window could never count a restart.
    #[error("period is 0 (intensity {intensity}): restarts could never be counted; use a period of at least 1ms, e.g. 60s")]
    ZeroPeriod {
        /// The policy's intensity, for the message.
        intensity: u32,
    },
    /// The backoff curve would start above its own ceiling.
    #[error("backoff_initial {initial:?} is larger than backoff_max {max:?}")]
    BackoffInverted {
        /// `backoff_initial`.
        initial: Duration,
        /// `backoff_max`.
        max: Duration,
    },
    /// A spread of 100 % or more could make a delay zero or negative.
    #[error("jitter {0} must be in 0.0..1.0")]
    Jitter(f64),
    /// A quarantined child would be retried at once, which is no quarantine.
    #[error("quarantine_for is 0: a quarantined child would be retried at once; use e.g. 10m")]
    ZeroQuarantine,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_spec() {
        let p = RestartPolicy::default();
        assert_eq!(p.intensity, 5);
        assert_eq!(p.period, Duration::from_secs(60));
        assert_eq!(p.backoff_initial, Duration::from_millis(100));
        assert_eq!(p.backoff_max, Duration::from_secs(30));
        assert_eq!(p.backoff_reset, Duration::from_secs(60));
        assert_eq!(p.quarantine_for, Duration::from_secs(600));
        assert!(p.validate_for("root").is_ok());
    }

    #[test]
    fn zero_period_is_rejected_with_the_owner_named() {
        let p = RestartPolicy::default().intensity(0, Duration::ZERO);
        let err = p.validate_for("root/barn").unwrap_err().to_string();
        assert!(err.contains("root/barn"), "{err}");
        assert!(err.contains("period is 0"), "{err}");
    }

    #[test]
    fn inverted_backoff_is_rejected() {
        let p = RestartPolicy::default().backoff(
            Duration::from_secs(10),
            Duration::from_secs(1),
            Duration::from_secs(60),
        );
        assert_eq!(
            p.problems(),
            [PolicyError::BackoffInverted {
                initial: Duration::from_secs(10),
                max: Duration::from_secs(1)
            }]
        );
    }
}
