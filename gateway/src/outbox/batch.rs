//! What one commit of the durable outbox carries and what it did: the
//! accepted [`Entry`], the [`Batch`] the writer takes ([`Take`] says how
//! much), and the [`Outcome`] it reports back. Shared by `staged` (which
//! builds batches) and `writer` (which commits them).

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;

use super::db::TableFigures;
use super::Class;

/// One accepted message.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Priority class.
    pub class: Class,
    /// Sensor, for drop counts and `accepted`.
    pub sensor: Arc<str>,
    /// Full MQTT topic.
    pub topic: Arc<str>,
    /// Payload bytes.
    pub payload: Bytes,
    /// Telemetry `seq`, if any.
    pub seq: Option<u64>,
    /// When accepted (unix ms), stored for `oldest_age` after a restart.
    pub created: i64,
}

impl Entry {
    /// Bytes counted against the bound: topic and payload.
    pub fn size(&self) -> u64 {
        (self.topic.len() + self.payload.len()) as u64
    }
}

/// How much `State::take` takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Take {
    /// What waited a full linger without being acknowledged.
    Aged,
    /// Everything staged.
    All,
}

/// What the writer commits in one transaction.
#[derive(Debug, Default)]
pub struct Batch {
    /// New rows, in id order.
    pub inserts: Vec<(u64, Entry)>,
    /// Acknowledged ids that may be on disk.
    pub deletes: Vec<u64>,
    /// Bytes to free by dropping the oldest telemetry on disk.
    pub over: u64,
    pub(super) delivered: Vec<(u64, Arc<str>, u64)>,
    pub(super) through: u64,
}

impl Batch {
    /// True when committing it would change nothing on disk.
    pub fn is_empty(&self) -> bool {
        self.inserts.is_empty() && self.deletes.is_empty() && self.over == 0
    }
}

/// Rows and bytes removed from one table.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Removed {
    /// Rows deleted.
    pub rows: u64,
    /// Their topic and payload bytes.
    pub bytes: u64,
}

/// What a committed batch did on disk.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Rows and bytes deleted per class (acks and drops), indexed by [`Class`].
    pub deleted: [Removed; 2],
    /// Telemetry rows dropped per sensor to stay under the bound.
    pub dropped: BTreeMap<String, u64>,
    /// The telemetry ids `(after, through]` those drops removed.
    pub dropped_range: Option<(u64, u64)>,
    /// A drop was needed and found nothing it may remove.
    pub drop_freed_nothing: bool,
    /// fsyncs this transaction (and any checkpoint after it) cost.
    pub fsyncs: u64,
    /// What the file held, when it was first read only now (it could not
    /// be opened at start).
    pub found: Option<[TableFigures; 2]>,
}
