//! Exponential backoff with jitter, as one small pure crate.
//!
//! Supervised restarts, link reconnects, the uplink and the tcp-listen
//! acceptor all wait "a bit longer after each failure, up to a cap, spread
//! so a fleet does not retry in lock-step". This crate is the single place
//! that computes that delay, in the spirit of linkerd2-proxy's
//! `exp-backoff`.
//!
//! Attempt `n` (counting from 1) waits `min(max, initial * 2^(n-1))`, then
//! scaled by a factor in `[1 - jitter, 1 + jitter)`. The random sample is an
//! argument of [`ExponentialBackoff::delay`], so callers and tests can pin
//! it; [`ExponentialBackoff::random_delay`] and
//! [`ExponentialBackoff::delay_with`] draw it from `fastrand` for code that
//! does not care. Every function saturates instead of overflowing and never
//! panics, whatever the attempt number or the configured values.

#![forbid(unsafe_code)]

use std::time::Duration;

/// An exponential backoff schedule: `initial` doubling per attempt up to
/// `max`, spread by `+-jitter`.
///
/// The fields are plain data so a schedule can be a `const` or be built
/// from a validated policy on the fly. Out-of-range values never panic:
/// `initial > max` caps at `max`, and `jitter` is clamped to `[0, 1]`
/// (NaN counts as 0).
///
/// ```
/// use std::time::Duration;
/// use edgevisor_backoff::ExponentialBackoff;
///
/// let b = ExponentialBackoff::new(Duration::from_millis(100), Duration::from_secs(1), 0.2);
/// assert_eq!(b.delay(1, 0.5), Duration::from_millis(100));
/// assert_eq!(b.delay(3, 0.5), Duration::from_millis(400));
/// assert_eq!(b.delay(9, 0.0), Duration::from_millis(800)); // capped, then -20 %
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ExponentialBackoff {
    /// Delay of the first attempt (before jitter); zero means "retry at
    /// once", every time.
    pub initial: Duration,
    /// Cap of the doubling delay (before jitter).
    pub max: Duration,
    /// Fraction by which a delay is spread either way, e.g. `0.2` for
    /// +-20 %; `0.0` for exact, reproducible delays.
    pub jitter: f64,
}

impl ExponentialBackoff {
    /// A schedule from its three parameters; usable in `const` items so
    /// each user states its schedule once, next to its reason.
    pub const fn new(initial: Duration, max: Duration, jitter: f64) -> Self {
        ExponentialBackoff {
            initial,
            max,
            jitter,
        }
    }

    /// The delay before attempt `attempt` (1 is the first retry; 0 is
    /// treated as 1), with `sample` uniform in `[0, 1)` choosing where in
    /// the jitter band it falls (`0.5` is the unjittered value). Pure, so
    /// tests can pin the sample.
    pub fn delay(&self, attempt: u32, sample: f64) -> Duration {
        let upper = scale(self.max, 1.0 + self.clamped_jitter(), Duration::MAX);
        jitter(self.base(attempt), self.jitter, sample).min(upper)
    }

    /// [`delay`](Self::delay) with the sample drawn from `rng`, for callers
    /// that seed their randomness to make runs reproducible.
    pub fn delay_with(&self, attempt: u32, rng: &mut fastrand::Rng) -> Duration {
        self.delay(attempt, rng.f64())
    }

    /// [`delay`](Self::delay) with the sample drawn from the thread-local
    /// `fastrand` generator, for callers that need no reproducibility.
    pub fn random_delay(&self, attempt: u32) -> Duration {
        self.delay(attempt, fastrand::f64())
    }

    /// `min(max, initial * 2^(attempt-1))` without jitter; saturates
    /// rather than overflowing however long the series.
    pub fn base(&self, attempt: u32) -> Duration {
        if self.initial.is_zero() {
            return Duration::ZERO;
        }
        let doublings = attempt.saturating_sub(1).min(127);
        let nanos = self.initial.as_nanos().saturating_mul(1u128 << doublings);
        if nanos >= self.max.as_nanos() {
            return self.max;
        }
        // Below `max`, so the whole seconds fit a u64 (as `max`'s do).
        let secs = u64::try_from(nanos / NANOS_PER_SEC).unwrap_or(u64::MAX);
        let subsec = u32::try_from(nanos % NANOS_PER_SEC).unwrap_or(0);
        Duration::new(secs, subsec)
    }

    fn clamped_jitter(&self) -> f64 {
        clamp_unit(self.jitter, 0.0)
    }
}

const NANOS_PER_SEC: u128 = 1_000_000_000;

/// Spreads `base` by `+-fraction`, mapping `sample` in `[0, 1)` onto a
/// factor in `[1 - fraction, 1 + fraction)`; `0.5` leaves `base` as it is.
/// Exposed on its own for callers that compute their base elsewhere.
pub fn jitter(base: Duration, fraction: f64, sample: f64) -> Duration {
    let fraction = clamp_unit(fraction, 0.0);
    if fraction == 0.0 || base.is_zero() {
        return base;
    }
    let sample = clamp_unit(sample, 0.5);
    let factor = 1.0 + fraction * (2.0 * sample - 1.0);
    scale(base, factor, base)
}

/// `d * factor` (factor >= 0), saturating at `Duration::MAX`; `fallback`
/// only for a factor that is not a number, which the callers rule out.
fn scale(d: Duration, factor: f64, fallback: Duration) -> Duration {
    let secs = d.as_secs_f64() * factor;
    if secs.is_nan() || secs < 0.0 {
        return fallback;
    }
    Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX)
}

/// `x` clamped to `[0, 1]`, or `nan` when `x` is not a number.
fn clamp_unit(x: f64, nan: f64) -> f64 {
    if x.is_nan() {
        nan
    } else {
        x.clamp(0.0, 1.0)
    }
}

#[cfg(test)]
mod tests;
