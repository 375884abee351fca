//! The writer thread: the only place that writes the database. It waits
//! for staged messages, lingers up to [`LINGER`] (or until [`BATCH_MAX`] are
//! pending) so one transaction, and one fsync, covers many readings, then
//! inserts them, deletes acknowledged rows, drops the oldest telemetry past
//! the bound, and commits. A failed commit (disk full, read-only, I/O
//! error) leaves everything staged; the writer reopens the file and retries
//! every [`RETRY`], and the state logs one line per change.

use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use rusqlite::{params, Connection, OptionalExtension, Transaction};

use super::db::{self, table};
use super::staged::{Batch, Outcome, State};
use super::Class;

/// Longest a message waits to be committed while the writer is idle.
pub const LINGER: Duration = Duration::from_millis(5);
/// Pending messages that start a commit without waiting for [`LINGER`],
/// and the most one transaction inserts.
pub const BATCH_MAX: usize = 1000;
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
}

impl Shared {
    /// Shares `state` for the file at `path`.
    pub fn new(state: State, path: PathBuf) -> Self {
        Self {
            state: Mutex::new(state),
            wake: Condvar::new(),
            done: Condvar::new(),
            path,
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
}

/// The thread body: commits until the outbox is closed and flushed.
pub fn run(shared: Arc<Shared>, conn: Option<Connection>) {
    let retry_at = conn.is_none().then(|| Instant::now() + RETRY);
    let unread = conn.is_none();
    let mut writer = Writer {
        shared,
        conn,
        retry_at,
        wal_bytes: 0,
        closing_tried: false,
        unread,
    };
    while let Some(batch) = writer.next_batch() {
        let result = writer.commit(&batch);
        let mut state = writer.shared.lock();
        match result {
            Ok(outcome) => {
                writer.retry_at = None;
                writer.unread = false;
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
        drop(state);
        writer.shared.done.notify_all();
    }
    writer.shared.done.notify_all();
}

impl Writer {
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
                return Some(state.take());
            }
            let wait = if let Some(at) = self.retry_at.filter(|at| *at > now) {
                Some(at - now)
            } else if !state.has_work() {
                Some(RETRY)
            } else if state.urgent || state.pending() >= BATCH_MAX {
                None
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
                None => {
                    state.urgent = false;
                    return Some(state.take());
                }
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
            drop_oldest(&tx, batch.over - freed, &mut outcome)?;
        }
        tx.commit()?;
        outcome.fsyncs = 1;
        self.wal_bytes += written;
        if self.wal_bytes >= CHECKPOINT_BYTES {
            self.wal_bytes = 0;
            conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))?;
            outcome.fsyncs += 2;
        }
        Ok(outcome)
    }
}

fn insert(tx: &Transaction<'_>, batch: &Batch) -> rusqlite::Result<u64> {
    let sql = |class| {
        format!(
            "INSERT INTO {} (id, sensor, topic, payload, created) VALUES (?1, ?2, ?3, ?4, ?5)",
            table(class)
        )
    };
    let mut statements = [
        tx.prepare_cached(&sql(Class::Report))?,
        tx.prepare_cached(&sql(Class::Telemetry))?,
    ];
    let mut written = 0;
    for (id, entry) in &batch.inserts {
        statements[entry.class as usize].execute(params![
            i64::try_from(*id).unwrap_or(i64::MAX),
            &*entry.sensor,
            entry.topic,
            entry.payload,
            entry.created
        ])?;
        written += entry.size() + 64;
    }
    Ok(written)
}

/// Deletes acknowledged rows; returns the bytes freed.
fn delete(tx: &Transaction<'_>, ids: &[u64], outcome: &mut Outcome) -> rusqlite::Result<u64> {
    if ids.is_empty() {
        return Ok(0);
    }
    let sql = |class| {
        format!(
            "DELETE FROM {} WHERE id = ?1 RETURNING length(topic) + length(payload)",
            table(class)
        )
    };
    let mut statements = [
        (Class::Telemetry, tx.prepare_cached(&sql(Class::Telemetry))?),
        (Class::Report, tx.prepare_cached(&sql(Class::Report))?),
    ];
    let mut freed = 0;
    for id in ids {
        let id = i64::try_from(*id).unwrap_or(i64::MAX);
        for (class, statement) in &mut statements {
            let bytes: Option<i64> = statement.query_row([id], |r| r.get(0)).optional()?;
            if let Some(bytes) = bytes {
                let bytes = u64::try_from(bytes).unwrap_or(0);
                let slot = &mut outcome.deleted[*class as usize];
                slot.0 += 1;
                slot.1 += bytes;
                freed += bytes;
                break;
            }
        }
    }
    Ok(freed)
}

/// Drops the oldest telemetry on disk until `bytes` are freed, counting
/// per sensor.
fn drop_oldest(tx: &Transaction<'_>, bytes: u64, outcome: &mut Outcome) -> rusqlite::Result<()> {
    let mut statement = tx.prepare_cached(
        "SELECT id, sensor, length(topic) + length(payload) FROM telemetry ORDER BY id LIMIT 4096",
    )?;
    let mut rows = statement.query([])?;
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
        slot.0 += 1;
        slot.1 += size;
        *outcome.dropped.entry(sensor).or_default() += 1;
    }
    drop(rows);
    if let Some(last) = last {
        tx.execute("DELETE FROM telemetry WHERE id <= ?1", [last])?;
    }
    Ok(())
}
