//! The [`Outbox`] handle shared by sensors, reports and the uplink, and the
//! [`Backend`] trait it drives. Every call is short and never waits for a
//! disk flush, except [`Outbox::sync`], which exists to wait for one.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::sync::Notify;

use super::durable::{Durable, Opened};
use super::memory::MemoryStore;
use super::{Class, Cursor, Message, Stats, Stored};

/// What the handle needs from a backend. Methods take `&self`: a backend
/// does its own locking, so a slow disk never holds up a reader behind one
/// big lock.
pub trait Backend: Send + Sync + 'static {
    /// Accepts a batch; each message gets the next id.
    fn append(&self, batch: Vec<Message>);
    /// Up to `limit` messages after `cursor`, reports first, each class in id order.
    fn read(&self, cursor: Cursor, limit: usize) -> Vec<Stored>;
    /// Forgets acknowledged messages (unknown ids are ignored).
    fn ack(&self, ids: &[u64]);
    /// Current figures.
    fn stats(&self) -> Stats;
    /// Waits until everything appended so far is durable (or the disk failed).
    fn sync(&self);
    /// Highest telemetry `seq` per sensor that is safe: committed, or acked.
    fn accepted(&self) -> BTreeMap<String, u64>;
    /// The highest id handed out so far (0 before the first message).
    fn last_id(&self) -> u64;
    /// True while producers should wait for room (see [`Outbox::room`]).
    fn is_full(&self) -> bool {
        false
    }
    /// Notified when room may have been made; `None` for a backend that is
    /// never full.
    fn room(&self) -> Option<Arc<Notify>> {
        None
    }
}

/// A cloneable handle on the outbox shared by sensors, reports and uplink.
#[derive(Clone)]
pub struct Outbox {
    backend: Arc<dyn Backend>,
    appended: Arc<Notify>,
    /// Messages set aside (the broker will not take them), per class.
    set_aside: Arc<[AtomicU64; 2]>,
}

impl Outbox {
    /// Wraps an in-memory backend (tests, the demo).
    pub fn new(store: MemoryStore) -> Self {
        Self::with_backend(store)
    }

    /// Wraps any backend.
    pub fn with_backend(backend: impl Backend) -> Self {
        Self {
            backend: Arc::new(backend),
            appended: Arc::new(Notify::new()),
            set_aside: Arc::default(),
        }
    }

    /// Opens (or creates) the durable outbox in `state_dir`, holding at most
    /// `max_bytes` of topics and payloads. Never fails: a corrupt file is
    /// moved aside and a fresh one started, and a disk that cannot be
    /// written leaves the outbox in memory until it can; [`Opened`] says
    /// which happened.
    pub fn open(state_dir: &Path, max_bytes: u64) -> (Self, Opened) {
        let (durable, opened) = Durable::open(state_dir, max_bytes);
        (Self::with_backend(durable), opened)
    }

    /// Accepts messages and wakes the uplink. Never blocks on the disk.
    pub fn append(&self, batch: Vec<Message>) {
        if batch.is_empty() {
            return;
        }
        self.backend.append(batch);
        self.appended.notify_one();
    }

    /// Resolves when the outbox takes more without growing its memory: at
    /// once, unless the disk is falling behind what arrives. Sensors await
    /// it before reading more, so an overload stays in their sockets and on
    /// disk, not in memory. Cancel-safe.
    pub async fn room(&self) {
        if !self.backend.is_full() {
            return;
        }
        let Some(room) = self.backend.room() else {
            return;
        };
        loop {
            let notified = room.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if !self.backend.is_full() {
                return;
            }
            notified.await;
        }
    }

    /// Up to `limit` messages after `cursor`, in send order; advances it.
    pub fn read(&self, cursor: &mut Cursor, limit: usize) -> Vec<Stored> {
        let batch = self.backend.read(*cursor, limit);
        for message in &batch {
            cursor.advance(message);
        }
        batch
    }

    /// The highest id handed out so far: what a new connection finds
    /// waiting is at or below it (`upstream.replay_rate`).
    pub fn last_id(&self) -> u64 {
        self.backend.last_id()
    }

    /// Forgets messages the broker acknowledged.
    pub fn ack(&self, ids: &[u64]) {
        if !ids.is_empty() {
            self.backend.ack(ids);
        }
    }

    /// Removes a message the broker will not take, counted by class
    /// (`ClassFigures::set_aside`); the caller reports it.
    pub fn set_aside(&self, id: u64, class: Class) {
        self.set_aside[class as usize].fetch_add(1, Ordering::Relaxed);
        self.ack(&[id]);
    }

    /// Resolves after the next append (or at once if one happened since the
    /// last call).
    pub async fn appended(&self) {
        self.appended.notified().await;
    }

    /// Current figures.
    pub fn stats(&self) -> Stats {
        let mut stats = self.backend.stats();
        for (figures, count) in stats.classes.iter_mut().zip(self.set_aside.iter()) {
            figures.set_aside = count.load(Ordering::Relaxed);
        }
        stats
    }

    /// Highest telemetry `seq` per sensor that can no longer be lost: durably
    /// committed (or already acknowledged by the broker). What `status`
    /// publishes as `accepted`.
    pub fn accepted(&self) -> BTreeMap<String, u64> {
        self.backend.accepted()
    }

    /// Waits until everything appended so far is durable. Blocks the calling
    /// thread: from async code use `spawn_blocking`.
    pub fn sync(&self) {
        self.backend.sync();
    }
}
