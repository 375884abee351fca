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
    slots: Vec<Option<Origin>>,
    free: VecDeque<u16>,
}

impl Session {
    /// A session allowing `window` publishes in flight (at least one).
    pub fn new(window: u16) -> Self {
        let window = window.max(1);
        Self {
            slots: vec![None; usize::from(window) + 1],
            free: (1..=window).collect(),
        }
    }

    /// Publishes that may still be started before an ack frees an id.
    pub fn room(&self) -> usize {
        self.free.len()
    }

    /// Publishes awaiting their PUBACK.
    pub fn in_flight(&self) -> usize {
        self.slots.len() - 1 - self.free.len()
    }

    /// The packet id for a new publish of `origin`, or `None` when the
    /// window is full.
    pub fn start(&mut self, origin: Origin) -> Option<u16> {
        let pkid = self.free.pop_front()?;
        self.slots[usize::from(pkid)] = Some(origin);
        Some(pkid)
    }

    /// A PUBACK for `pkid` arrived: what it acknowledges, or `None` for an
    /// id not in flight (a duplicate, or a broker error), which is ignored.
    pub fn acked(&mut self, pkid: u16) -> Option<Origin> {
        let origin = self.slots.get_mut(usize::from(pkid))?.take()?;
        self.free.push_back(pkid);
        Some(origin)
    }
}

#[cfg(test)]
mod tests {
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
