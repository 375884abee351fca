//! Which publish awaits which PUBACK: MQTT packet ids handed out for outbox
//! messages and retained values on one connection, and what each ack
//! releases. No I/O and no clock, like rumqttc's `state.rs`: the connection
//! task feeds it and acts on its answers, and starts a new one on every
//! connection (a clean session: nothing is in flight after a reconnect).
//!
//! Packet ids come from a fixed pool of `1..=window`, reused oldest-freed
//! first, so an id is not handed out again while a late duplicate PUBACK
//! for its previous use could still be on the wire. The pool's size is the
//! window: when it is empty, nothing more is published until acks free ids.

use std::collections::VecDeque;

/// What travels in one publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// An outbox message, by id: acknowledged to the outbox at its PUBACK.
    Outbox(u64),
    /// A retained value (status, state, tree): re-sent on every connection
    /// anyway, so its PUBACK only frees the window.
    Retained,
}

/// The publishes of one connection awaiting their PUBACK.
#[derive(Debug, Clone)]
pub struct Session {
    /// Indexed by packet id; slot 0 is never used (MQTT forbids id 0).
    /// Each with its place in send order.
    slots: Vec<Option<(Origin, u64)>>,
    free: VecDeque<u16>,
    sent: u64,
    /// After a lost connection: one publish at a time until the outbox
    /// message with this id is acknowledged, or [`SUSPECT_PATIENCE`] others
    /// were (it was dropped for the bound, or went out on a connection
    /// that then failed).
    one_at_a_time_until: Option<u64>,
    /// Acknowledgements of other messages while sending one at a time.
    acks_without_suspect: u32,
}

/// Outbox messages acknowledged one at a time without the suspect among
/// them, after which the whole window opens again: the suspect is not
/// coming (the crash reports that may go before it are fewer).
pub const SUSPECT_PATIENCE: u32 = 64;

impl Session {
    /// A session allowing `window` publishes in flight (at least one).
    pub fn new(window: u16) -> Self {
        let window = window.max(1);
        Self {
            slots: vec![None; usize::from(window) + 1],
            free: (1..=window).collect(),
            sent: 0,
            one_at_a_time_until: None,
            acks_without_suspect: 0,
        }
    }

    /// A session that sends one publish at a time until outbox message
    /// `suspect` (the first unacknowledged one when the last connection was
    /// lost), or a later one, is acknowledged; then the whole window. A
    /// broker that resets the connection over one message (its size limit)
    /// also discards the PUBACKs it sent for the ones before, so only one
    /// at a time in flight shows which message it was.
    pub fn one_at_a_time(window: u16, suspect: u64) -> Self {
        Self {
            one_at_a_time_until: Some(suspect),
            ..Self::new(window)
        }
    }

    /// Whether it sends one publish at a time (after a lost connection,
    /// until the suspect is through).
    pub fn is_one_at_a_time(&self) -> bool {
        self.one_at_a_time_until.is_some()
    }

    /// Publishes that may still be started before an ack frees an id.
    pub fn room(&self) -> usize {
        match self.one_at_a_time_until {
            Some(_) => usize::from(self.in_flight() == 0).min(self.free.len()),
            None => self.free.len(),
        }
    }

    /// Publishes awaiting their PUBACK.
    pub fn in_flight(&self) -> usize {
        self.slots.len() - 1 - self.free.len()
    }

    /// The packet id for a new publish of `origin`, or `None` when the
    /// window is full.
    pub fn start(&mut self, origin: Origin) -> Option<u16> {
        let pkid = self.free.pop_front()?;
        self.sent += 1;
        self.slots[usize::from(pkid)] = Some((origin, self.sent));
        Some(pkid)
    }

    /// A PUBACK for `pkid` arrived: what it acknowledges, or `None` for an
    /// id not in flight (a duplicate, or a broker error), which is ignored.
    pub fn acked(&mut self, pkid: u16) -> Option<Origin> {
        let (origin, _) = self.slots.get_mut(usize::from(pkid))?.take()?;
        self.free.push_back(pkid);
        if let Some(suspect) = self.one_at_a_time_until {
            // Send order is not id order (reports go first; with a replay
            // rate live telemetry does too): only the suspect itself ends it.
            // Retained values (a state per sensor) go first on every
            // connection and do not count.
            if matches!(origin, Origin::Outbox(_)) {
                self.acks_without_suspect += 1;
            }
            if origin == Origin::Outbox(suspect) || self.acks_without_suspect >= SUSPECT_PATIENCE {
                self.one_at_a_time_until = None;
            }
        }
        Some(origin)
    }

    /// Whether the session sends one at a time and exactly one outbox
    /// message awaits its PUBACK: a connection lost now was lost over it.
    pub fn alone_in_flight(&self) -> bool {
        self.one_at_a_time_until.is_some()
            && self
                .slots
                .iter()
                .flatten()
                .filter(|(origin, _)| matches!(origin, Origin::Outbox(_)))
                .count()
                == 1
    }

    /// The outbox message sent first among those still awaiting their
    /// PUBACK: when a broker closes the connection over one message, the
    /// ones sent before it were acknowledged, so it is this one.
    pub fn first_unacked_outbox(&self) -> Option<u64> {
        self.slots
            .iter()
            .flatten()
            .filter_map(|(origin, order)| match origin {
                Origin::Outbox(id) => Some((*order, *id)),
                Origin::Retained => None,
            })
            .min()
            .map(|(_, id)| id)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn one_at_a_time_until_the_suspect_itself_is_acknowledged() {
        let mut s = super::Session::one_at_a_time(8, 5);
        // A report or a live reading with a higher id, sent first, does not
        // end it: send order is not id order.
        for id in [1, 9, 4] {
            assert_eq!(s.room(), 1);
            let p = s.start(super::Origin::Outbox(id)).unwrap();
            assert_eq!(s.room(), 0);
            s.acked(p);
        }
        let p = s.start(super::Origin::Outbox(5)).unwrap();
        s.acked(p);
        assert_eq!(s.room(), 8);
    }

    #[test]
    fn a_suspect_that_never_comes_ends_one_at_a_time_after_a_while() {
        let mut s = super::Session::one_at_a_time(8, 5);
        for id in 100..100 + u64::from(super::SUSPECT_PATIENCE) {
            assert!(s.is_one_at_a_time());
            let p = s.start(super::Origin::Outbox(id)).unwrap();
            s.acked(p);
        }
        assert!(!s.is_one_at_a_time());
        assert_eq!(s.room(), 8);
    }

    #[test]
    fn the_first_unacked_is_by_send_order_not_by_id() {
        let mut s = super::Session::new(4);
        let a = s.start(super::Origin::Outbox(9)).unwrap();
        s.start(super::Origin::Outbox(3)).unwrap();
        s.start(super::Origin::Retained).unwrap();
        assert_eq!(s.first_unacked_outbox(), Some(9));
        s.acked(a);
        assert_eq!(s.first_unacked_outbox(), Some(3));
    }

    use super::*;

    #[test]
    fn each_ack_releases_what_its_packet_id_carried() {
        let mut s = Session::new(4);
        let a = s.start(Origin::Outbox(10)).unwrap();
        let b = s.start(Origin::Retained).unwrap();
        let c = s.start(Origin::Outbox(11)).unwrap();
        assert_ne!(a, b);
        assert_eq!(s.in_flight(), 3);
        assert_eq!(s.acked(c), Some(Origin::Outbox(11)));
        assert_eq!(s.acked(a), Some(Origin::Outbox(10)));
        assert_eq!(s.acked(b), Some(Origin::Retained));
        assert_eq!((s.in_flight(), s.room()), (0, 4));
    }

    #[test]
    fn the_window_bounds_what_is_in_flight() {
        let mut s = Session::new(2);
        assert!(s.start(Origin::Outbox(1)).is_some());
        let second = s.start(Origin::Outbox(2)).unwrap();
        assert_eq!(s.start(Origin::Outbox(3)), None, "window full");
        s.acked(second);
        assert_eq!(s.room(), 1);
        assert!(s.start(Origin::Outbox(3)).is_some());
    }

    #[test]
    fn unknown_and_duplicate_acks_are_ignored() {
        let mut s = Session::new(3);
        let id = s.start(Origin::Outbox(7)).unwrap();
        assert_eq!(s.acked(0), None, "id 0 is never used");
        assert_eq!(s.acked(999), None, "outside the pool");
        assert_eq!(s.acked(id), Some(Origin::Outbox(7)));
        assert_eq!(s.acked(id), None, "a duplicate PUBACK frees nothing twice");
        assert_eq!(s.room(), 3);
    }

    #[test]
    fn a_freed_id_is_reused_last() {
        let mut s = Session::new(3);
        let first = s.start(Origin::Outbox(1)).unwrap();
        s.acked(first);
        let next: Vec<u16> = (2..5)
            .map(|n| s.start(Origin::Outbox(n)).unwrap())
            .collect();
        assert_eq!(next.last(), Some(&first), "{next:?}");
    }
}
