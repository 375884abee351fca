//! Crashes over a sliding hour: counts per sensor and per reason, and a
//! per-minute series for the chart. Pure: the clock comes in as an
//! argument (ms since the epoch), so tests need no sleeps.
//!
//! A crash counts at its own `ts` (a report replayed from a gateway's
//! outbox after an outage counts when it happened, not when it arrived),
//! clamped to the arrival time when the gateway's clock runs ahead.
//! Redeliveries (the outbox is at-least-once) count once.

use std::collections::{BTreeMap, HashSet, VecDeque};

/// The window's length.
pub const HOUR_MS: u64 = 3_600_000;

/// Buckets of the per-minute series (one hour).
pub const MINUTES: usize = 60;

/// The most crashes one gateway's window holds: a sensor crashing in a
/// tight loop must not grow the view's memory without bound. Past it the
/// oldest are forgotten and the rates read low (shown as a floor, `>=`).
pub const MAX_EVENTS: usize = 20_000;

#[derive(Debug, Clone)]
struct Event {
    at_ms: u64,
    sensor: String,
    reason: String,
    key: String,
}

/// One gateway's crashes of the last hour.
#[derive(Debug, Clone, Default)]
pub struct CrashWindow {
    events: VecDeque<Event>,
    keys: HashSet<String>,
    /// Events forgotten because of [`MAX_EVENTS`] while still in the window.
    overflowed: bool,
}

impl CrashWindow {
    /// Counts a crash of `sensor` for `reason` at `at_ms` (already clamped
    /// by the caller), unless `key` was counted before. Returns whether it
    /// counted.
    pub fn record(&mut self, at_ms: u64, sensor: &str, reason: &str, key: String) -> bool {
        if self.keys.contains(&key) {
            return false;
        }
        if self.events.len() >= MAX_EVENTS {
            if let Some(old) = self.events.pop_front() {
                self.keys.remove(&old.key);
                self.overflowed = true;
            }
        }
        self.keys.insert(key.clone());
        self.events.push_back(Event {
            at_ms,
            sensor: sensor.to_string(),
            reason: reason.to_string(),
            key,
        });
        true
    }

    /// Forgets what left the hour ending at `now_ms`.
    pub fn prune(&mut self, now_ms: u64) {
        let from = now_ms.saturating_sub(HOUR_MS);
        let keys = &mut self.keys;
        self.events.retain(|e| {
            let keep = e.at_ms > from;
            if !keep {
                keys.remove(&e.key);
            }
            keep
        });
        if self.events.len() < MAX_EVENTS {
            self.overflowed = false;
        }
    }

    fn in_hour(&self, now_ms: u64) -> impl Iterator<Item = &Event> {
        let from = now_ms.saturating_sub(HOUR_MS);
        self.events.iter().filter(move |e| e.at_ms > from)
    }

    /// Crashes in the hour ending at `now_ms`.
    pub fn total(&self, now_ms: u64) -> u64 {
        self.in_hour(now_ms).count() as u64
    }

    /// Crashes per sensor in the hour, most first (then by name).
    pub fn by_sensor(&self, now_ms: u64) -> Vec<(String, u64)> {
        ranked(self.in_hour(now_ms).map(|e| e.sensor.as_str()))
    }

    /// Crashes per reason in the hour, most first (then by name).
    pub fn by_reason(&self, now_ms: u64) -> Vec<(String, u64)> {
        ranked(self.in_hour(now_ms).map(|e| e.reason.as_str()))
    }

    /// Crashes per minute, oldest minute first; the last bucket is the
    /// minute ending at `now_ms`.
    pub fn per_minute(&self, now_ms: u64) -> [u64; MINUTES] {
        let mut buckets = [0; MINUTES];
        buckets.copy_from_slice(&self.series(now_ms, 60_000, MINUTES));
        buckets
    }

    /// Crashes per `bucket_ms`, `buckets` of them, oldest first; the last
    /// bucket ends at `now_ms`. Buckets reaching past the hour stay empty.
    pub fn series(&self, now_ms: u64, bucket_ms: u64, buckets: usize) -> Vec<u64> {
        let mut out = vec![0; buckets];
        for e in self.in_hour(now_ms) {
            let ago = (now_ms.saturating_sub(e.at_ms) / bucket_ms.max(1)) as usize;
            if ago < buckets {
                out[buckets - 1 - ago] += 1;
            }
        }
        out
    }

    /// Whether the counts are a floor because [`MAX_EVENTS`] was reached.
    pub fn overflowed(&self) -> bool {
        self.overflowed
    }
}

fn ranked<'a>(names: impl Iterator<Item = &'a str>) -> Vec<(String, u64)> {
    let mut counts: BTreeMap<&str, u64> = BTreeMap::new();
    for name in names {
        *counts.entry(name).or_default() += 1;
    }
    let mut out: Vec<(String, u64)> = counts
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    out.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_800_000_000_000;

    fn window(events: &[(u64, &str, &str)]) -> CrashWindow {
        let mut w = CrashWindow::default();
        for (i, (at, sensor, reason)) in events.iter().enumerate() {
            assert!(w.record(*at, sensor, reason, format!("k{i}")));
        }
        w
    }

    #[test]
    fn counts_per_sensor_and_reason_over_the_last_hour_only() {
        let w = window(&[
            (T0 - HOUR_MS - 1, "gps", "io"), // left the window
            (T0 - HOUR_MS, "gps", "io"),     // exactly an hour ago: out
            (T0 - 59 * 60_000, "gps", "corrupt_frame"),
            (T0 - 1_000, "gps", "corrupt_frame"),
            (T0 - 500, "weather", "timeout"),
        ]);
        assert_eq!(w.total(T0), 3);
        assert_eq!(
            w.by_sensor(T0),
            [("gps".to_string(), 2), ("weather".to_string(), 1)]
        );
        assert_eq!(
            w.by_reason(T0),
            [("corrupt_frame".to_string(), 2), ("timeout".to_string(), 1)]
        );
        // An hour later, only what is left counts.
        assert_eq!(w.total(T0 + 59 * 60_000), 2);
    }

    #[test]
    fn a_redelivered_report_counts_once_until_it_leaves_the_window() {
        let mut w = CrashWindow::default();
        assert!(w.record(T0, "gps", "io", "same".into()));
        assert!(!w.record(T0, "gps", "io", "same".into()));
        assert_eq!(w.total(T0), 1);
        w.prune(T0 + HOUR_MS);
        assert_eq!(w.total(T0 + HOUR_MS), 0);
        assert!(w.record(T0 + HOUR_MS, "gps", "io", "same".into()));
    }

    #[test]
    fn the_minute_series_ends_with_the_current_minute() {
        let w = window(&[
            (T0, "a", "io"),
            (T0 - 59_999, "a", "io"),
            (T0 - 60_000, "a", "io"),
            (T0 - 59 * 60_000 - 1, "a", "io"),
        ]);
        let series = w.per_minute(T0);
        assert_eq!(series[MINUTES - 1], 2);
        assert_eq!(series[MINUTES - 2], 1);
        assert_eq!(series[0], 1);
        assert_eq!(series.iter().sum::<u64>(), 4);
        let tens = w.series(T0, 10_000, 60);
        assert_eq!((tens[59], tens[54], tens[53]), (1, 1, 1), "{tens:?}");
    }

    #[test]
    fn memory_is_bounded_and_the_overflow_is_said() {
        let mut w = CrashWindow::default();
        for i in 0..MAX_EVENTS as u64 + 10 {
            w.record(T0 + i, "loop", "eof", i.to_string());
        }
        assert_eq!(w.total(T0 + MAX_EVENTS as u64 + 10), MAX_EVENTS as u64);
        assert!(w.overflowed());
        w.prune(T0 + 2 * HOUR_MS);
        assert!(!w.overflowed());
    }
}
