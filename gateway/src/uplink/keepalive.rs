//! When to ping the broker and when to give up on it, as a pure clock-fed
//! type (no I/O, the time comes in as an argument): MQTT wants a packet
//! from the client at least every `keep_alive`, and a broker that owes an
//! answer (a PUBACK or a PINGRESP) for `keep_alive` is taken for gone,
//! whether it closed, froze or lost the route.

use std::time::Duration;

use tokio::time::Instant;

/// What the keep-alive clock asks for now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// Nothing yet.
    Nothing,
    /// Send a PINGREQ.
    Ping,
    /// The broker owed an answer for a whole `keep_alive`.
    GiveUp,
}

/// The keep-alive state of one connection.
#[derive(Debug, Clone)]
pub struct KeepAlive {
    keep_alive: Duration,
    last_sent: Instant,
    /// Since when an answer is owed with none heard.
    owed_since: Option<Instant>,
    ping_out: bool,
}

impl KeepAlive {
    /// A connection that was just opened at `now`.
    pub fn new(keep_alive: Duration, now: Instant) -> Self {
        Self {
            keep_alive,
            last_sent: now,
            owed_since: None,
            ping_out: false,
        }
    }

    /// Publishes (which the broker must acknowledge) went out at `now`.
    pub fn sent(&mut self, now: Instant) {
        self.last_sent = now;
        self.owed_since.get_or_insert(now);
    }

    /// A PINGREQ went out at `now`.
    pub fn pinged(&mut self, now: Instant) {
        self.sent(now);
        self.ping_out = true;
    }

    /// Packets arrived at `now`; `pong` if a PINGRESP was among them;
    /// `awaiting` whether publishes are still unacknowledged.
    pub fn heard(&mut self, now: Instant, pong: bool, awaiting: bool) {
        if pong {
            self.ping_out = false;
        }
        self.owed_since = (awaiting || self.ping_out).then_some(now);
    }

    /// When [`due`](Self::due) may next say something other than `Nothing`.
    pub fn deadline(&self) -> Instant {
        let ping_at = (!self.ping_out).then(|| self.last_sent + self.keep_alive);
        let give_up_at = self.owed_since.map(|since| since + self.keep_alive);
        match (ping_at, give_up_at) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => a.or(b).unwrap_or(self.last_sent + self.keep_alive),
        }
    }

    /// What to do at `now`.
    pub fn due(&self, now: Instant) -> Due {
        if self
            .owed_since
            .is_some_and(|since| since + self.keep_alive <= now)
        {
            Due::GiveUp
        } else if !self.ping_out && self.last_sent + self.keep_alive <= now {
            Due::Ping
        } else {
            Due::Nothing
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KA: Duration = Duration::from_secs(10);

    fn at(t0: Instant, secs: u64) -> Instant {
        t0 + Duration::from_secs(secs)
    }

    #[test]
    fn an_idle_connection_pings_every_keep_alive() {
        let t0 = Instant::now();
        let mut k = KeepAlive::new(KA, t0);
        assert_eq!(k.due(at(t0, 9)), Due::Nothing);
        assert_eq!(k.deadline(), at(t0, 10));
        assert_eq!(k.due(at(t0, 10)), Due::Ping);
        k.pinged(at(t0, 10));
        k.heard(at(t0, 11), true, false);
        assert_eq!(k.due(at(t0, 19)), Due::Nothing);
        assert_eq!(k.due(at(t0, 20)), Due::Ping);
    }

    #[test]
    fn an_unanswered_ping_gives_up_after_keep_alive() {
        let t0 = Instant::now();
        let mut k = KeepAlive::new(KA, t0);
        k.pinged(at(t0, 10));
        assert_eq!(k.due(at(t0, 19)), Due::Nothing);
        assert_eq!(k.due(at(t0, 20)), Due::GiveUp);
    }

    #[test]
    fn publishes_without_acks_give_up_even_while_sending_goes_on() {
        let t0 = Instant::now();
        let mut k = KeepAlive::new(KA, t0);
        k.sent(at(t0, 1));
        k.sent(at(t0, 5));
        k.sent(at(t0, 9));
        assert_eq!(k.deadline(), at(t0, 11), "owed since the first send");
        assert_eq!(k.due(at(t0, 11)), Due::GiveUp);
    }

    #[test]
    fn acks_keep_a_busy_connection_alive_and_no_ping_is_needed() {
        let t0 = Instant::now();
        let mut k = KeepAlive::new(KA, t0);
        for s in 1..30 {
            k.sent(at(t0, s));
            k.heard(at(t0, s), false, true);
            assert_eq!(k.due(at(t0, s)), Due::Nothing);
        }
        k.heard(at(t0, 30), false, false);
        assert_eq!(k.due(at(t0, 38)), Due::Nothing);
        assert_eq!(
            k.due(at(t0, 39)),
            Due::Ping,
            "keep_alive after the last send"
        );
    }
}
