//! Disciplined replay (`upstream.replay_rate`). After an outage the outbox
//! holds a backlog; sent oldest first and as fast as the broker
//! acknowledges, it delays every live reading by the whole drain and hits
//! the broker (and whatever consumes it) with the outage's traffic at once.
//! With a rate set, a connection splits the outbox's telemetry at the
//! highest id present when it came up:
//! - the live stream above it goes first, unlimited;
//! - the backlog up to it is sent in id order at most `replay_rate`
//!   messages a second (a token bucket holding a tenth of a second's
//!   worth), in what room the window leaves.
//!
//! Crash reports are not limited and still go before any telemetry. The
//! window (unacknowledged publishes) bounds both streams together, so the
//! broker is never sent more than it acknowledges.

use std::time::Duration;

use tokio::time::Instant;

use crate::outbox::Cursor;

/// How long the backlog rests after a read that found nothing.
const REST: Duration = Duration::from_secs(1);

/// One connection's split of the outbox into backlog and live telemetry.
#[derive(Debug)]
pub struct Replay {
    /// Telemetry up to this id waited in the outbox when the connection
    /// came up.
    backlog_through: u64,
    /// Where the live stream has been read to.
    live: Cursor,
    rate: f64,
    burst: f64,
    tokens: f64,
    refilled: Instant,
    /// A backlog read found nothing (the backlog's end, or ids that were
    /// acknowledged or are reports): no timer wake-ups until then.
    rest_until: Option<Instant>,
}

impl Replay {
    /// A split at `backlog_through` (the outbox's highest id now), the
    /// backlog paced at `rate` messages a second.
    pub fn new(rate: u32, backlog_through: u64, now: Instant) -> Self {
        let rate = f64::from(rate.max(1));
        let burst = (rate / 10.0).max(1.0);
        Self {
            backlog_through,
            live: Cursor {
                // Reports are read by the backlog cursor, unlimited.
                report: u64::MAX,
                telemetry: backlog_through,
            },
            rate,
            burst,
            tokens: burst,
            refilled: now,
            rest_until: None,
        }
    }

    /// What the last backlog read gave for `asked` messages: nothing means
    /// the backlog may be through (its last id can be a report's, or one
    /// acknowledged before), so it rests a second instead of waking the
    /// uplink at every token; a read happens again after that.
    pub fn read_came_back(&mut self, asked: usize, got: usize, now: Instant) {
        self.rest_until = (asked > 0 && got == 0).then(|| now + REST);
    }

    /// The cursor of the live stream (reads telemetry above the backlog).
    pub fn live(&mut self) -> &mut Cursor {
        &mut self.live
    }

    /// How many backlog messages may be sent now, at most `room`; they are
    /// taken from the bucket. 0 once `backlog` (the backlog cursor) has
    /// read the whole backlog.
    pub fn take(&mut self, backlog: &Cursor, room: usize, now: Instant) -> usize {
        if backlog.telemetry >= self.backlog_through || self.rest_until.is_some_and(|t| now < t) {
            return 0;
        }
        let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.refilled = now;
        let n = (self.tokens.floor() as usize).min(room);
        self.tokens -= n as f64;
        n
    }

    /// The highest backlog id: a backlog read keeps what is at or below.
    pub fn backlog_through(&self) -> u64 {
        self.backlog_through
    }

    /// When the next backlog message may go, while backlog remains after
    /// `backlog` (the backlog cursor): the uplink wakes for it even when
    /// nothing else happens.
    pub fn next_at(&self, backlog: &Cursor) -> Option<Instant> {
        if backlog.telemetry >= self.backlog_through {
            return None;
        }
        let missing = (1.0 - self.tokens).max(0.0);
        let token = self.refilled + std::time::Duration::from_secs_f64(missing / self.rate);
        Some(self.rest_until.map_or(token, |rest| rest.max(token)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cursor(telemetry: u64) -> Cursor {
        Cursor {
            report: 0,
            telemetry,
        }
    }

    #[test]
    fn the_backlog_is_paced_at_the_rate_with_a_tenth_of_a_second_of_burst() {
        let t0 = Instant::now();
        let mut r = Replay::new(1000, 5000, t0);
        assert_eq!(r.take(&cursor(0), 512, t0), 100, "the burst");
        assert_eq!(r.take(&cursor(100), 512, t0), 0, "nothing left now");
        let later = t0 + Duration::from_millis(50);
        assert_eq!(r.take(&cursor(100), 512, later), 50);
        assert_eq!(
            r.take(&cursor(150), 10, later + Duration::from_secs(1)),
            10,
            "room bounds it"
        );
        assert!(r.next_at(&cursor(160)).is_some());
    }

    #[test]
    fn an_empty_backlog_read_rests_a_second_instead_of_waking_at_every_token() {
        let t0 = Instant::now();
        let mut r = Replay::new(1000, 5000, t0);
        let n = r.take(&cursor(0), 512, t0);
        r.read_came_back(n, 0, t0);
        assert!(r.next_at(&cursor(0)).unwrap() >= t0 + Duration::from_secs(1));
        assert_eq!(r.take(&cursor(0), 512, t0 + Duration::from_millis(500)), 0);
        assert!(
            r.take(&cursor(0), 512, t0 + Duration::from_secs(1)) > 0,
            "then it tries again"
        );
    }

    #[test]
    fn a_read_backlog_takes_nothing_and_wakes_nobody() {
        let t0 = Instant::now();
        let mut r = Replay::new(10, 200, t0);
        assert_eq!(r.take(&cursor(200), 512, t0), 0);
        assert_eq!(r.next_at(&cursor(200)), None);
        assert_eq!(r.live().telemetry, 200, "live starts above the backlog");
    }
}
