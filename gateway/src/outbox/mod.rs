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
//! one in `state_dir`. Both are driven through [`Outbox`].

pub mod memory;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

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
    /// The sensor it concerns (for drop counts).
    pub sensor: Arc<str>,
    /// Full MQTT topic.
    pub topic: String,
    /// Payload bytes (JSON).
    pub payload: Vec<u8>,
}

/// A message as stored, with its id (increasing in acceptance order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// Unique, increasing id.
    pub id: u64,
    /// Priority class.
    pub class: Class,
    /// Full MQTT topic.
    pub topic: String,
    /// Payload bytes.
    pub payload: Vec<u8>,
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
}

/// Operations every backend provides. Calls are synchronous and short; the
/// [`Outbox`] handle serialises them.
pub trait Store: Send + 'static {
    /// Stores a batch; each message gets the next id.
    fn append(&mut self, batch: Vec<Message>);
    /// Up to `limit` messages after `cursor`: reports first, then telemetry,
    /// each in id order.
    fn read(&mut self, cursor: Cursor, limit: usize) -> Vec<Stored>;
    /// Forgets acknowledged messages (unknown ids are ignored).
    fn ack(&mut self, ids: &[u64]);
    /// Current figures.
    fn stats(&self) -> Stats;
    /// Makes everything appended so far durable (no-op in memory).
    fn sync(&mut self) {}
}

/// A cloneable handle on the outbox shared by sensors, reports and uplink.
#[derive(Clone)]
pub struct Outbox {
    store: Arc<std::sync::Mutex<Box<dyn Store>>>,
    appended: Arc<Notify>,
}

impl Outbox {
    /// Wraps a backend.
    pub fn new(store: impl Store) -> Self {
        Self {
            store: Arc::new(std::sync::Mutex::new(Box::new(store))),
            appended: Arc::new(Notify::new()),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut dyn Store) -> T) -> T {
        let mut store = self
            .store
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(store.as_mut())
    }

    /// Accepts messages and wakes the uplink.
    pub fn append(&self, batch: Vec<Message>) {
        if batch.is_empty() {
            return;
        }
        self.with(|s| s.append(batch));
        self.appended.notify_one();
    }

    /// Up to `limit` messages after `cursor`, in send order; advances it.
    pub fn read(&self, cursor: &mut Cursor, limit: usize) -> Vec<Stored> {
        let batch = self.with(|s| s.read(*cursor, limit));
        for message in &batch {
            cursor.advance(message);
        }
        batch
    }

    /// Forgets messages the broker acknowledged.
    pub fn ack(&self, ids: &[u64]) {
        if !ids.is_empty() {
            self.with(|s| s.ack(ids));
        }
    }

    /// Resolves after the next append (or at once if one happened since the
    /// last call).
    pub async fn appended(&self) {
        self.appended.notified().await;
    }

    /// Current figures.
    pub fn stats(&self) -> Stats {
        self.with(|s| s.stats())
    }

    /// Makes everything appended so far durable.
    pub fn sync(&self) {
        self.with(|s| s.sync());
    }
}
