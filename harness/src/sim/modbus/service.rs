//! The state every transport of one simulator shares (banks, faults,
//! counts) and the one place a request becomes a reply: faults are decided
//! and counted here, so TCP and RTU inject them identically.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::bank::UnitBank;
use super::faults::{Fault, FaultSlot};
use super::pdu;

/// What one unit has done so far, as one snapshot, so a test can account
/// for every request its master sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UnitCounts {
    /// Requests addressed to it (RTU: with a good CRC).
    pub requests: u64,
    /// Correct data replies (late ones included), counted as they are
    /// handed to the transport, so a master that read one finds it here.
    pub replies: u64,
    /// Exception replies, its own and injected ones, counted likewise.
    pub exceptions: u64,
    /// Requests a fault hit.
    pub faults: u64,
    /// The request counter in the last reply that read it (0: none yet).
    pub last_counter: u32,
}

/// Shared by the handle, the test and every server task.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) units: BTreeMap<u8, Unit>,
    /// TCP only: answer a request for an unknown unit with exception 0x0B
    /// instead of silence.
    pub(crate) unknown_unit_exception: AtomicBool,
}

/// One simulated unit.
#[derive(Debug)]
pub(crate) struct Unit {
    pub(crate) bank: Mutex<UnitBank>,
    pub(crate) fault: Mutex<FaultSlot>,
    stats: Stats,
}

#[derive(Debug, Default)]
struct Stats {
    requests: AtomicU64,
    replies: AtomicU64,
    exceptions: AtomicU64,
    faults: AtomicU64,
    last_counter: AtomicU32,
}

/// A lock that survives a panicking test thread: the data is plain values,
/// always consistent between two statements.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Unit {
    pub(crate) fn new(size: usize) -> Self {
        Unit {
            bank: Mutex::new(UnitBank::new(size)),
            fault: Mutex::new(FaultSlot::default()),
            stats: Stats::default(),
        }
    }

    pub(crate) fn counts(&self) -> UnitCounts {
        let s = &self.stats;
        UnitCounts {
            requests: s.requests.load(Ordering::Relaxed),
            replies: s.replies.load(Ordering::Relaxed),
            exceptions: s.exceptions.load(Ordering::Relaxed),
            faults: s.faults.load(Ordering::Relaxed),
            last_counter: s.last_counter.load(Ordering::Relaxed),
        }
    }
}

/// What to put on the wire for one request.
#[derive(Debug)]
pub(crate) enum Outgoing {
    /// A reply PDU for `unit`; `bad_crc` asks RTU for a wrong CRC (TCP
    /// sends garbage instead).
    Reply {
        unit: u8,
        pdu: Vec<u8>,
        bad_crc: bool,
    },
    /// Random bytes instead of a reply.
    Garbage(Vec<u8>),
}

impl Shared {
    /// Answers `request` (a PDU) to `unit`, after a [`Fault::Slow`] delay:
    /// `None` when nothing is to be sent (unknown unit, silent fault).
    /// Replies are counted here, as they are handed to the transport, so a
    /// master that has read one finds it counted. `has_crc`: a transport
    /// without a CRC sends garbage for [`Fault::BadCrc`].
    pub(crate) async fn respond(
        &self,
        unit: u8,
        request: &[u8],
        has_crc: bool,
    ) -> Option<Outgoing> {
        let u = self.units.get(&unit)?;
        let stats = &u.stats;
        stats.requests.fetch_add(1, Ordering::Relaxed);
        let fault = match lock(&u.fault).next() {
            Some(Fault::BadCrc) if !has_crc => Some(Fault::Garbage),
            fault => fault,
        };
        if fault.is_some() {
            stats.faults.fetch_add(1, Ordering::Relaxed);
        }
        let (reply_unit, bad_crc) = match fault {
            None => (unit, false),
            Some(Fault::Silent) => return None,
            Some(Fault::Garbage) => return Some(Outgoing::Garbage(garbage())),
            Some(Fault::Exception(code)) => {
                let pdu = pdu::exception(*request.first()?, code);
                stats.exceptions.fetch_add(1, Ordering::Relaxed);
                return Some(Outgoing::Reply {
                    unit,
                    pdu,
                    bad_crc: false,
                });
            }
            Some(Fault::Slow(delay)) => {
                tokio::time::sleep(delay).await;
                (unit, false)
            }
            Some(Fault::WrongUnit) => (unit.wrapping_add(1), false),
            Some(Fault::BadCrc) => (unit, true),
        };
        // The counter goes up here, after any delay: just before sending.
        let served = pdu::serve(&mut lock(&u.bank), request)?;
        if let Some(c) = served.counter {
            stats.last_counter.store(c, Ordering::Relaxed);
        }
        let counted = match fault {
            Some(Fault::WrongUnit | Fault::BadCrc) => None, // spoiled: a fault
            _ if pdu::is_exception(&served.pdu) => Some(&stats.exceptions),
            _ => Some(&stats.replies),
        };
        if let Some(n) = counted {
            n.fetch_add(1, Ordering::Relaxed);
        }
        Some(Outgoing::Reply {
            unit: reply_unit,
            pdu: served.pdu,
            bad_crc,
        })
    }
}

/// 4 to 12 random bytes.
pub(crate) fn garbage() -> Vec<u8> {
    (0..fastrand::usize(4..=12))
        .map(|_| fastrand::u8(..))
        .collect()
}
