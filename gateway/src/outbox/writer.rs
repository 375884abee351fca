//! The writer thread: the only place that writes the database. It waits
//! for staged messages and lets them linger for [`LINGER`] (unless
//! [`BATCH_MAX`] are pending): what the broker acknowledges meanwhile is
//! never written at all, and one transaction, and one fsync, covers the
//! rest. It then inserts them, deletes acknowledged rows, drops the oldest
//! telemetry past the bound, and commits; a batch with nothing to change
//! costs no transaction. A failed commit (disk full, read-only, I/O
//! error) leaves everything staged; the writer reopens the file and retries
//! every [`RETRY`], and the state logs one line per change.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use rusqlite::{Connection, Transaction};

use super::db::{self, table};
use super::reserve::Reserve;
use super::staged::{Batch, Entry, Outcome, State, Take};
use super::Class;

/// How long a message stays in memory only: one still unacknowledged this
/// long after the batch clock started is committed at the next deadline,
/// so between one and two lingers after it arrived. A power cut in that
/// time loses it (it was not yet `accepted`, see `docs/outbox.md`); a
/// broker that acks within it saves the SD card the write.
pub const LINGER: Duration = Duration::from_millis(50);
/// Pending messages that start a commit without waiting for [`LINGER`],
/// and the most one transaction inserts.
pub const BATCH_MAX: usize = 4096;
/// Time between attempts while the disk is failing.
pub const RETRY: Duration = Duration::from_secs(1);
/// WAL bytes between checkpoints.
const CHECKPOINT_BYTES: u64 = 4 * 1024 * 1024;

/// What the handle and the writer thread share.
pub struct Shared {
    state: Mutex<State>,
    /// Wakes the writer: work to do, a `sync` waiting, or closing.
    pub wake: Condvar,
    /// Wakes `sync` callers after each commit attempt.
    pub done: Condvar,
    /// The database file.
    pub path: PathBuf,
    /// Mirrors [`State::is_full`] for producers that check without the lock.
    pub full: AtomicBool,
    /// Wakes producers waiting for room after each commit attempt.
    pub room: Arc<tokio::sync::Notify>,
}

impl Shared {
    /// Shares `state` for the file at `path`.
    pub fn new(state: State, path: PathBuf) -> Self {
        Self {
            state: Mutex::new(state),
            wake: Condvar::new(),
            done: Condvar::new(),
            path,
            full: AtomicBool::new(false),
            room: Arc::new(tokio::sync::Notify::new()),
        }
    }

    /// Publishes whether producers must wait, and wakes them when not.
    pub fn update_room(&self, state: &State) {
        let full = state.is_full();
        self.full.store(full, Ordering::Relaxed);
        if !full {
            self.room.notify_waiters();
        }
    }

    /// Locks the state (a panic elsewhere leaves it usable: every update
    /// is a few field writes).
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

struct Writer {
    shared: Arc<Shared>,
    conn: Option<Connection>,
    retry_at: Option<Instant>,
    wal_bytes: u64,
    closing_tried: bool,
    /// The file was not readable at start: count its rows on first open.
    unread: bool,
    /// Room kept for deletions on a disk that stays full.
    reserve: Reserve,
    /// The disk filled up: only deletions are committed until the reserve
    /// can be made again (`reserve`).
    hold_inserts: bool,
}

/// The thread body: commits until the outbox is closed and flushed.
pub fn run(shared: Arc<Shared>, conn: Option<Connection>, reserve: Reserve) {
    let retry_at = conn.is_none().then(|| Instant::now() + RETRY);
    let unread = conn.is_none();
    let mut writer = Writer {
        shared,
        conn,
        retry_at,
        wal_bytes: 0,
        closing_tried: false,
        unread,
        reserve,
        hold_inserts: false,
    };
    while let Some(batch) = writer.next_batch() {
        if writer.hold_inserts && writer.reserve.disk_has_room() {
            writer.hold_inserts = false;
            tracing::info!(path = %writer.shared.path.display(), "the disk has room again: writing new messages again");
        }
        let result = if writer.hold_inserts {
            Err(db::DbError::FullHold)
        } else {
            writer.commit(&batch)
        };
        let mut batch = batch;
        if result.as_ref().is_err_and(db::DbError::is_disk_full) {
            writer.disk_full(&mut batch);
        }
        let mut state = writer.shared.lock();
        match result {
            Ok(outcome) => {
                writer.retry_at = None;
                writer.unread = false;
                writer.reserve.keep();
                if state.committed(batch, outcome) {
                    tracing::info!(path = %writer.shared.path.display(), "outbox storage recovered; committing again");
                }
            }
            Err(error) => {
                writer.conn = None;
                writer.retry_at = Some(Instant::now() + RETRY);
                let text = error.to_string();
                if state.failed(batch, text.clone()) {
                    tracing::error!(path = %writer.shared.path.display(), error = %text, "outbox storage failed; holding messages in memory and retrying every second");
                }
            }
        }
        writer.shared.update_room(&state);
        drop(state);
        writer.shared.done.notify_all();
    }
    // Closed: nobody may wait for room any more.
    writer.shared.full.store(false, Ordering::Relaxed);
    writer.shared.room.notify_waiters();
    writer.shared.done.notify_all();
}

impl Writer {
    /// The disk is full: only deletions are committed from now on (until
    /// it has room again), in the room the reserve leaves. The batch's
    /// deletions go now, on their own, and are booked; its new rows stay
    /// staged when it is put back as failed.
    fn disk_full(&mut self, batch: &mut Batch) {
        self.hold_inserts = true;
        if self.reserve.release() {
            tracing::warn!(path = %self.shared.path.display(), "disk full: released the outbox's reserve so acknowledged messages can be deleted; new ones wait in memory");
        }
        if !batch.deletes.is_empty() {
            if let Ok(removed) = delete_only(&self.shared.path, &batch.deletes) {
                batch.deletes.clear();
                self.shared.lock().book_removed(&removed);
            }
        }
    }

    /// Waits for work, lingers for a fuller batch, and takes it; `None`
    /// once closing and nothing more can be written.
    fn next_batch(&mut self) -> Option<Batch> {
        let shared = self.shared.clone();
        let mut state = shared.lock();
        loop {
            let now = Instant::now();
            if state.closing {
                // Flush what can be flushed; while failing, one last attempt.
                if !state.has_work() || (state.storage_error().is_some() && self.closing_tried) {
                    return None;
                }
                self.closing_tried = true;
                return Some(state.take(Take::All));
            }
            let wait = if let Some(at) = self.retry_at.filter(|at| *at > now) {
                Some(at - now)
            } else if !state.has_work() {
                Some(RETRY)
            } else if state.urgent || state.pending() >= BATCH_MAX {
                state.urgent = false;
                return Some(state.take(Take::All));
            } else {
                let deadline = state.first_staged.map_or(now, |t| t + LINGER);
                (deadline > now).then(|| deadline - now)
            };
            match wait {
                Some(wait) => {
                    state = shared
                        .wake
                        .wait_timeout(state, wait)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0;
                }
                None => return Some(state.take(Take::Aged)),
            }
        }
    }

    fn commit(&mut self, batch: &Batch) -> Result<Outcome, db::DbError> {
        if self.conn.is_none() {
            self.conn = Some(db::open(&self.shared.path)?);
        }
        let Some(conn) = self.conn.as_mut() else {
            return Err(db::DbError::Corrupt("no connection".into()));
        };
        let mut outcome = Outcome::default();
        if batch.is_empty() && !self.unread {
            // Everything was acknowledged while it lingered: no transaction,
            // no fsync.
            return Ok(outcome);
        }
        if self.unread {
            outcome.found = Some([
                db::figures(conn, Class::Report)?,
                db::figures(conn, Class::Telemetry)?,
            ]);
        }
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let written = insert(&tx, batch)?;
        if let Some(newest) = batch.inserts.iter().map(|(id, _)| *id).max() {
            db::raise_high_water(&tx, newest)?;
        }
        let freed = delete(&tx, &batch.deletes, &mut outcome)?;
        if batch.over > freed {
            // What the uplink holds now is kept; readers hold back what is
            // above it until this commit is booked (`staged::handout`).
            let keep = self.shared.lock().begin_drop();
            drop_oldest(&tx, batch.over - freed, keep, &mut outcome)?;
            outcome.drop_freed_nothing = outcome.dropped_range.is_none();
        }
        tx.commit()?;
        outcome.fsyncs = 1;
        self.wal_bytes += written;
        if self.wal_bytes >= CHECKPOINT_BYTES {
            self.wal_bytes = 0;
            // The transaction is committed: a checkpoint that fails (a full
            // or read-only disk) must not send it down the failed path,
            // which would stage its rows again and forget its drops. The
            // WAL keeps the data; the next checkpoint tries again.
            match conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                Ok(()) => outcome.fsyncs += 2,
                Err(error) => {
                    tracing::warn!(%error, "outbox checkpoint failed; the WAL keeps the data, retrying at the next one")
                }
            }
        }
        Ok(outcome)
    }
}

/// Rows per multi-row `INSERT`, largest first: a batch is written with a
/// few statements of these sizes (each prepared once and cached), so one
/// statement carries many rows without a cache entry per batch length.
const INSERT_SIZES: [usize; 3] = [64, 8, 1];

/// Inserts the batch's new rows, each class with multi-row statements;
/// returns the bytes written (for the checkpoint schedule).
fn insert(tx: &Transaction<'_>, batch: &Batch) -> rusqlite::Result<u64> {
    let mut written = 0;
    for class in [Class::Report, Class::Telemetry] {
        let rows: Vec<&(u64, Entry)> = batch
            .inserts
            .iter()
            .filter(|(_, entry)| entry.class == class)
            .collect();
        let mut rest = rows.as_slice();
        for size in INSERT_SIZES {
            while rest.len() >= size {
                let (chunk, tail) = rest.split_at(size);
                written += insert_rows(tx, class, chunk)?;
                rest = tail;
            }
        }
    }
    Ok(written)
}

/// One `INSERT` of `rows` (all of `class`).
fn insert_rows(
    tx: &Transaction<'_>,
    class: Class,
    rows: &[&(u64, Entry)],
) -> rusqlite::Result<u64> {
    let values = vec!["(?, ?, ?, ?, ?)"; rows.len()].join(", ");
    let sql = format!(
        "INSERT INTO {} (id, sensor, topic, payload, created) VALUES {values}",
        table(class)
    );
    let mut statement = tx.prepare_cached(&sql)?;
    let mut written = 0;
    for (n, (id, entry)) in rows.iter().enumerate() {
        let at = n * 5;
        statement.raw_bind_parameter(at + 1, i64::try_from(*id).unwrap_or(i64::MAX))?;
        statement.raw_bind_parameter(at + 2, &*entry.sensor)?;
        statement.raw_bind_parameter(at + 3, &*entry.topic)?;
        statement.raw_bind_parameter(at + 4, &entry.payload[..])?;
        statement.raw_bind_parameter(at + 5, entry.created)?;
        written += entry.size() + 64;
    }
    statement.raw_execute()?;
    Ok(written)
}

/// Runs of consecutive ids in `ids` (sorted here), as inclusive ranges.
fn id_ranges(ids: &[u64]) -> Vec<(u64, u64)> {
    let mut sorted = ids.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut ranges: Vec<(u64, u64)> = Vec::new();
    for id in sorted {
        match ranges.last_mut() {
            Some((_, last)) if *last + 1 == id => *last = id,
            _ => ranges.push((id, id)),
        }
    }
    ranges
}

/// Deletes acknowledged rows, one statement per run of consecutive ids
/// (acks arrive mostly in order, so a batch is a few ranges); returns the
/// bytes freed. Every id of a run was acknowledged and each id lives in one
/// table only, so deleting the range from both tables is exact.
fn delete(tx: &Transaction<'_>, ids: &[u64], outcome: &mut Outcome) -> rusqlite::Result<u64> {
    let mut freed = 0;
    for (first, last) in id_ranges(ids) {
        for class in [Class::Telemetry, Class::Report] {
            let sql = format!(
                "DELETE FROM {} WHERE id BETWEEN ?1 AND ?2 RETURNING length(topic) + length(payload)",
                table(class)
            );
            let mut statement = tx.prepare_cached(&sql)?;
            let mut rows = statement.query([
                i64::try_from(first).unwrap_or(i64::MAX),
                i64::try_from(last).unwrap_or(i64::MAX),
            ])?;
            let slot = &mut outcome.deleted[class as usize];
            while let Some(row) = rows.next()? {
                let bytes = u64::try_from(row.get::<_, i64>(0)?).unwrap_or(0);
                slot.rows += 1;
                slot.bytes += bytes;
                freed += bytes;
            }
        }
    }
    Ok(freed)
}

/// Deletes acknowledged rows in a transaction of their own and checkpoints
/// (TRUNCATE, so the WAL gives its space back): on a full disk a batch with
/// inserts fails, and its deletions would fail with it.
fn delete_only(
    path: &std::path::Path,
    ids: &[u64],
) -> Result<[super::batch::Removed; 2], db::DbError> {
    let mut conn = db::open(path)?;
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(db::DbError::classify)?;
    let mut outcome = Outcome::default();
    delete(&tx, ids, &mut outcome).map_err(db::DbError::classify)?;
    tx.commit().map_err(db::DbError::classify)?;
    let _ = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
    Ok(outcome.deleted)
}

/// Drops the oldest telemetry on disk above `keep_through` (what the
/// uplink holds) until `bytes` are freed, counting per sensor.
fn drop_oldest(
    tx: &Transaction<'_>,
    bytes: u64,
    keep_through: u64,
    outcome: &mut Outcome,
) -> rusqlite::Result<()> {
    let mut statement = tx.prepare_cached(
        "SELECT id, sensor, length(topic) + length(payload) FROM telemetry \
         WHERE id > ?1 ORDER BY id LIMIT 4096",
    )?;
    let keep_through = i64::try_from(keep_through).unwrap_or(i64::MAX);
    let mut rows = statement.query([keep_through])?;
    let mut freed = 0u64;
    let mut last = None;
    while freed < bytes {
        let Some(row) = rows.next()? else { break };
        let id: i64 = row.get(0)?;
        let sensor: String = row.get(1)?;
        let size = u64::try_from(row.get::<_, i64>(2)?).unwrap_or(0);
        freed += size;
        last = Some(id);
        let slot = &mut outcome.deleted[Class::Telemetry as usize];
        slot.rows += 1;
        slot.bytes += size;
        *outcome.dropped.entry(sensor).or_default() += 1;
    }
    drop(rows);
    if let Some(last) = last {
        tx.execute(
            "DELETE FROM telemetry WHERE id > ?1 AND id <= ?2",
            [keep_through, last],
        )?;
        outcome.dropped_range = Some((
            u64::try_from(keep_through).unwrap_or(0),
            u64::try_from(last).unwrap_or(0),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acknowledged_ids_coalesce_into_runs() {
        assert_eq!(id_ranges(&[]), []);
        assert_eq!(
            id_ranges(&[5, 3, 4, 9, 1, 10, 4]),
            [(1, 1), (3, 5), (9, 10)]
        );
    }
}
