//! The restart-intensity window: how many restarts happened within the last
//! `period`, as OTP counts them.
//!
//! A restart at time `t` counts while `now - t < period`. Adding the
//! restart that makes the count exceed `intensity` exhausts the window: with
//! intensity 5 the sixth restart inside the period is refused.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

/// Times of the recent restarts, oldest first. Never holds more than
/// `intensity + 1` entries, so a flapping child costs bounded memory.
#[derive(Debug, Default, Clone)]
pub struct IntensityWindow {
    restarts: VecDeque<Instant>,
}

impl IntensityWindow {
    /// Records a restart at `now`; returns how many restarts the window then
    /// holds (including this one) and whether that exceeds `intensity`.
    pub fn record(&mut self, now: Instant, intensity: u32, period: Duration) -> (u32, bool) {
        self.expire(now, period);
        self.restarts.push_back(now);
        let cap = usize::try_from(intensity)
            .unwrap_or(usize::MAX)
            .saturating_add(1);
        while self.restarts.len() > cap {
            self.restarts.pop_front();
        }
        let count = u32::try_from(self.restarts.len()).unwrap_or(u32::MAX);
        (count, count > intensity)
    }

    /// Restarts still inside the window at `now`.
    pub fn count(&mut self, now: Instant, period: Duration) -> u32 {
        self.expire(now, period);
        u32::try_from(self.restarts.len()).unwrap_or(u32::MAX)
    }

    /// Forgets every restart (a quarantined child gets a clean slate).
    pub fn clear(&mut self) {
        self.restarts.clear();
    }

    fn expire(&mut self, now: Instant, period: Duration) {
        while let Some(&oldest) = self.restarts.front() {
            if now.saturating_duration_since(oldest) >= period {
                self.restarts.pop_front();
            } else {
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PERIOD: Duration = Duration::from_secs(60);

    #[test]
    fn sixth_restart_inside_the_period_exhausts_intensity_five() {
        let t0 = Instant::now();
        let mut w = IntensityWindow::default();
        for i in 0..5u64 {
            let (n, exhausted) = w.record(t0 + Duration::from_secs(i), 5, PERIOD);
            assert_eq!(n, i as u32 + 1);
            assert!(!exhausted);
        }
        let (n, exhausted) = w.record(t0 + Duration::from_secs(59), 5, PERIOD);
        assert_eq!(n, 6);
        assert!(exhausted);
    }

    #[test]
    fn restarts_older_than_the_period_fall_out() {
        let t0 = Instant::now();
        let mut w = IntensityWindow::default();
        for i in 0..5u64 {
            w.record(t0 + Duration::from_secs(i), 5, PERIOD);
        }
        // The first restart (t0) is exactly `period` old at t0+60s: it no
        // longer counts, so this is the fifth restart in the window.
        let (n, exhausted) = w.record(t0 + PERIOD, 5, PERIOD);
        assert_eq!(n, 5);
        assert!(!exhausted);
    }

    #[test]
    fn memory_is_bounded_by_intensity() {
        let t0 = Instant::now();
        let mut w = IntensityWindow::default();
        for _ in 0..10_000 {
            w.record(t0, 3, PERIOD);
        }
        assert_eq!(w.count(t0, PERIOD), 4);
    }

    #[test]
    fn intensity_zero_refuses_the_first_restart() {
        let mut w = IntensityWindow::default();
        assert_eq!(w.record(Instant::now(), 0, PERIOD), (1, true));
    }
}
