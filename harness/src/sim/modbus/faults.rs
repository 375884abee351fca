//! Faults a simulated unit injects into its replies, and which requests
//! they hit: the gateway's Modbus client must survive every one of them
//! and account for each failed read.

use std::time::Duration;

/// What goes wrong with the reply to a faulted request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// No reply at all: the master must time out.
    Silent,
    /// RTU: the correct reply with a wrong CRC, which the master must
    /// reject. TCP has no CRC: sends [`Fault::Garbage`] instead.
    BadCrc,
    /// An exception reply with this code (e.g. 6, slave device busy)
    /// instead of the data.
    Exception(u8),
    /// The correct reply, sent after this delay even when the master has
    /// given up, so late replies reach it (on TCP with the request's
    /// transaction id) and must be told apart from the current one.
    Slow(Duration),
    /// The correct reply, claiming the next unit id (`unit + 1`, wrapping).
    WrongUnit,
    /// 4 to 12 random bytes instead of a reply.
    Garbage,
}

/// Which requests to a unit a fault hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultMode {
    /// Every request.
    Always,
    /// Every n-th request, counted from when the fault was set: with
    /// `OneIn(3)` the 3rd, 6th, 9th ... `OneIn(0)` and `OneIn(1)` hit every
    /// request.
    OneIn(u32),
}

/// A unit's current fault and how many requests it has seen.
#[derive(Debug, Default)]
pub(crate) struct FaultSlot {
    fault: Option<(Fault, FaultMode)>,
    seen: u64,
}

impl FaultSlot {
    /// Replaces the fault and restarts the count for [`FaultMode::OneIn`].
    pub(crate) fn set(&mut self, fault: Option<(Fault, FaultMode)>) {
        self.fault = fault;
        self.seen = 0;
    }

    /// The fault to apply to the request that just arrived, if any.
    pub(crate) fn next(&mut self) -> Option<Fault> {
        let (fault, mode) = self.fault?;
        self.seen += 1;
        match mode {
            FaultMode::Always => Some(fault),
            FaultMode::OneIn(n) if self.seen % u64::from(n.max(1)) == 0 => Some(fault),
            FaultMode::OneIn(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hits(slot: &mut FaultSlot, n: usize) -> Vec<bool> {
        (0..n).map(|_| slot.next().is_some()).collect()
    }

    #[test]
    fn one_in_n_hits_every_nth_request_from_when_set() {
        let mut s = FaultSlot::default();
        assert_eq!(hits(&mut s, 2), [false, false]);
        s.set(Some((Fault::Silent, FaultMode::OneIn(3))));
        assert_eq!(
            hits(&mut s, 7),
            [false, false, true, false, false, true, false]
        );
        s.set(Some((Fault::Silent, FaultMode::OneIn(2))));
        assert_eq!(hits(&mut s, 2), [false, true]);
    }

    #[test]
    fn always_and_degenerate_rates_hit_every_request() {
        for mode in [FaultMode::Always, FaultMode::OneIn(0), FaultMode::OneIn(1)] {
            let mut s = FaultSlot::default();
            s.set(Some((Fault::Garbage, mode)));
            assert_eq!(hits(&mut s, 3), [true; 3], "{mode:?}");
        }
        let mut s = FaultSlot::default();
        s.set(Some((Fault::Garbage, FaultMode::Always)));
        s.set(None);
        assert_eq!(hits(&mut s, 3), [false; 3]);
    }
}
