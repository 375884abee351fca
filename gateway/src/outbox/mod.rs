//! The outbox: every telemetry message, crash report and dead letter the
//! gateway accepted, kept until the broker acknowledged it.
//!
//! The uplink reads messages in send order (reports before telemetry, each
//! oldest first) through a [`Cursor`], publishes them, and acks each one
//! only after the broker's PUBACK; after a reconnect it starts a fresh cursor
//! and so resends everything unacknowledged, oldest first. Past
//! `max_bytes` the oldest telemetry is dropped and counted per sensor; reports
//! are dropped only when no telemetry is left to drop.
//!
//! Backends: [`memory`] (bounded, lost on power loss) and the durable SQLite
//! one in `state_dir` ([`Outbox::open`], see `docs/outbox.md`). Both are
//! driven through [`Outbox`].
//!
//! - `handle`: the [`Outbox`] handle and the [`Backend`] trait it calls;
//! - `db`: the SQLite file: open, pragmas, `quick_check`, moving a corrupt
//!   file aside;
//! - `staged`: messages accepted but not yet committed, and the figures the
//!   durable backend keeps in memory; `batch`: what one commit carries;
//! - `writer`: the thread that commits staged messages in batches and
//!   survives disk faults;
//! - `durable`: the durable backend that ties them together;
//! - `inspect`: `edgevisor outbox stats|verify`;
//! - `notice`: crash reports about the outbox itself.

mod batch;
mod db;
mod durable;
mod handle;
pub mod inspect;
pub mod memory;
pub mod notice;
mod reserve;
mod staged;
mod writer;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

pub use db::DB_FILE;
pub use durable::Opened;
pub use handle::{Backend, Outbox};

/// Send priority: reports before telemetry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Class {
    /// Crash reports and dead letters: sent first, dropped last.
    Report = 0,
    /// Readings: dropped oldest first when the outbox is full.
    Telemetry = 1,
}

/// A message handed to the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Priority class.
    pub class: Class,
    /// The sensor it concerns (for drop counts and `accepted`).
    pub sensor: Arc<str>,
    /// Full MQTT topic; shared by every reading of a sensor.
    pub topic: Arc<str>,
    /// Telemetry `seq` (SPEC section 5), carried beside the payload so the
    /// outbox never parses it back out of the JSON.
    pub seq: Option<u64>,
    /// Payload bytes (JSON). A batch's payloads may share one buffer: the
    /// outbox and the send buffer then hold them without copies or
    /// allocations of their own.
    pub payload: Bytes,
}

impl Message {
    /// A telemetry message: reading number `seq` of `sensor`.
    pub fn telemetry(
        sensor: Arc<str>,
        topic: Arc<str>,
        seq: u64,
        payload: impl Into<Bytes>,
    ) -> Self {
        Self {
            class: Class::Telemetry,
            sensor,
            topic,
            seq: Some(seq),
            payload: payload.into(),
        }
    }

    /// A crash report or dead letter about `sensor`.
    pub fn report(sensor: Arc<str>, topic: Arc<str>, payload: impl Into<Bytes>) -> Self {
        Self {
            class: Class::Report,
            sensor,
            topic,
            seq: None,
            payload: payload.into(),
        }
    }
}

/// A message as stored, with its id (increasing in acceptance order).
/// Topic and payload are shared, not copied, between the outbox and the
/// uplink's send buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// Unique, increasing id.
    pub id: u64,
    /// Priority class.
    pub class: Class,
    /// Full MQTT topic.
    pub topic: Arc<str>,
    /// Payload bytes.
    pub payload: Bytes,
}

/// Where a reader is: the last id it has read of each class.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cursor {
    /// Last report id read.
    pub report: u64,
    /// Last telemetry id read.
    pub telemetry: u64,
}

impl Cursor {
    /// Moves past `message`.
    pub fn advance(&mut self, message: &Stored) {
        match message.class {
            Class::Report => self.report = self.report.max(message.id),
            Class::Telemetry => self.telemetry = self.telemetry.max(message.id),
        }
    }
}

/// Figures for `status`, logs and `edgevisor outbox stats`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Messages held.
    pub depth: u64,
    /// Bytes held (topic + payload).
    pub bytes: u64,
    /// Age of the oldest message held.
    pub oldest_age: Option<Duration>,
    /// Telemetry dropped per sensor because the outbox was full (or, for a
    /// durable outbox, because the disk failed and memory ran out).
    pub dropped: BTreeMap<String, u64>,
    /// The last storage error, while it lasts.
    pub storage_error: Option<String>,
    /// Storage fault episodes since start (each one is reported once).
    pub storage_faults: u64,
    /// Transactions committed since start (durable backend).
    pub commits: u64,
    /// fsync calls those commits and checkpoints cost, as SQLite documents
    /// them for WAL with `synchronous = FULL` (one per commit, two per
    /// checkpoint).
    pub fsyncs: u64,
    /// The same figures per class, indexed by `Class as usize`, for the
    /// metrics (SPEC section 10).
    pub classes: [ClassFigures; 2],
}

/// What the outbox holds of one class, and what it dropped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClassFigures {
    /// Messages held (acknowledged ones whose deletion is not committed
    /// yet are not).
    pub messages: u64,
    /// Bytes held (topic + payload).
    pub bytes: u64,
    /// Age of the oldest message held.
    pub oldest_age: Option<Duration>,
    /// Messages dropped because the outbox was full, since start.
    pub dropped: u64,
    /// Messages set aside since start: the broker would not take them
    /// (each reported on `crash/_outbox`).
    pub set_aside: u64,
}
