//! The durable backend: SQLite in `state_dir`, fronted by the staged
//! messages in memory. `append` only stages (it never waits for the disk);
//! the writer thread commits; `read` merges staged messages with rows
//! streamed from disk through a second connection (`LIMIT`, never the whole
//! table); `ack` drops a staged message before it is ever written, or queues
//! the row's deletion.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::Connection;

use super::db::{self, table, DbError, DB_FILE};
use super::handle::Backend;
use super::reserve::Reserve;
use super::staged::State;
use super::writer::{self, Shared};
use super::{Class, Cursor, Message, Stats, Stored};

/// Memory held for messages the disk has not taken, at most (and at most
/// the outbox bound).
pub const MEMORY_BOUND: u64 = 8 * 1024 * 1024;

/// How opening went, for the log and for the report the service sends.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Opened {
    /// The database file.
    pub path: PathBuf,
    /// Messages found in it (sent before anything new of their class).
    pub recovered: u64,
    /// A corrupt file was moved here; the reason follows.
    pub moved_aside: Option<(PathBuf, String)>,
    /// The disk could not be used: messages are held in memory for now.
    pub storage_error: Option<String>,
}

/// The SQLite-backed outbox.
pub struct Durable {
    shared: Arc<Shared>,
    reader: Mutex<Option<Connection>>,
    thread: Option<JoinHandle<()>>,
}

impl Durable {
    /// Opens, checks and (if corrupt) replaces the file, then starts the
    /// writer thread.
    pub fn open(state_dir: &Path, max_bytes: u64) -> (Self, Opened) {
        let path = state_dir.join(DB_FILE);
        let mut opened = Opened {
            path: path.clone(),
            ..Opened::default()
        };
        let conn = match std::fs::create_dir_all(state_dir) {
            Ok(()) => open_checked(&path, &mut opened),
            Err(e) => {
                opened.storage_error = Some(format!("cannot create {}: {e}", state_dir.display()));
                None
            }
        };
        // What the file holds, and the highest id it ever handed out. A read
        // error here (after the file opened and passed quick_check) takes
        // the unreadable-file path below, so the rows are counted once the
        // file reads again, never taken for an empty file.
        let read = conn.as_ref().map(|c| -> rusqlite::Result<_> {
            let figures = [
                db::figures(c, Class::Report)?,
                db::figures(c, Class::Telemetry)?,
            ];
            Ok((figures, db::high_water(c)?, db::ids(c, Class::Report)?))
        });
        let mut reports = Vec::new();
        let (conn, figures, floor) = match (conn, read) {
            (Some(c), Some(Ok((figures, high_water, ids)))) => {
                reports = ids;
                (Some(c), Some(figures), high_water)
            }
            (_, read) => {
                if let Some(Err(e)) = read {
                    tracing::error!(path = %path.display(), error = %e, "outbox database cannot be read; holding messages in memory");
                    opened.storage_error = Some(format!("cannot read {}: {e}", path.display()));
                }
                // When the file cannot be read, ids start above anything it
                // could hold (milliseconds since 1970, times 1000), so rows
                // written once the disk recovers never collide with old
                // ones; the writer counts the old rows then.
                let floor = u64::try_from(db::now_ms())
                    .unwrap_or(0)
                    .saturating_mul(1000);
                (None, None, floor)
            }
        };
        // No connection: storage_error is set; the writer reads the figures
        // once the file opens.
        let disk = figures.unwrap_or_default();
        opened.recovered = disk[0].count + disk[1].count;
        let mut state = State::new(disk, floor, max_bytes, max_bytes.min(MEMORY_BOUND));
        state.reports_on_disk(reports);
        if let Some(error) = &opened.storage_error {
            state.failed(Default::default(), error.clone());
        }
        // Space for deletions on a disk that fills up (`reserve`), taken
        // here so it is in place before anything is written.
        let mut reserve = Reserve::beside(&path);
        reserve.keep();
        let shared = Arc::new(Shared::new(state, path));
        let thread = std::thread::Builder::new()
            .name("outbox-writer".into())
            .spawn({
                let shared = shared.clone();
                move || writer::run(shared, conn, reserve)
            })
            .map_err(|e| tracing::error!(error = %e, "cannot start the outbox writer thread"))
            .ok();
        let durable = Self {
            shared,
            reader: Mutex::new(None),
            thread,
        };
        (durable, opened)
    }

    fn read_disk(&self, class: Class, after: u64, limit: usize) -> rusqlite::Result<Vec<Stored>> {
        let mut reader = self.reader.lock().unwrap_or_else(PoisonError::into_inner);
        if reader.is_none() {
            *reader = Some(db::open_reader(&self.shared.path)?);
        }
        let Some(conn) = reader.as_ref() else {
            return Ok(Vec::new());
        };
        let sql = format!(
            "SELECT id, topic, payload FROM {} WHERE id > ?1 ORDER BY id LIMIT ?2",
            table(class)
        );
        let result = conn.prepare_cached(&sql).and_then(|mut statement| {
            let rows = statement.query_map(
                [
                    i64::try_from(after).unwrap_or(i64::MAX),
                    i64::try_from(limit).unwrap_or(i64::MAX),
                ],
                |r| {
                    Ok(Stored {
                        id: u64::try_from(r.get::<_, i64>(0)?).unwrap_or(0),
                        class,
                        topic: r.get::<_, String>(1)?.into(),
                        payload: r.get::<_, Vec<u8>>(2)?.into(),
                    })
                },
            )?;
            rows.collect()
        });
        if result.is_err() {
            *reader = None;
        }
        result
    }

    /// The creation time of the oldest row on disk, per class.
    fn disk_oldest(&self) -> [Option<i64>; 2] {
        let mut reader = self.reader.lock().unwrap_or_else(PoisonError::into_inner);
        if reader.is_none() {
            *reader = db::open_reader(&self.shared.path).ok();
        }
        let Some(conn) = reader.as_ref() else {
            return [None; 2];
        };
        [Class::Report, Class::Telemetry]
            .map(|class| db::oldest_created(conn, class).ok().flatten())
    }
}

/// Opens the file and runs `quick_check`; a corrupt file is moved aside
/// and replaced by a fresh one.
fn open_checked(path: &Path, opened: &mut Opened) -> Option<Connection> {
    let first = db::open(path).and_then(|c| db::quick_check(&c).map(|()| c));
    match first {
        Ok(conn) => Some(conn),
        Err(DbError::Corrupt(why)) => {
            match db::move_aside(path) {
                Ok(to) => {
                    tracing::error!(file = %to.display(), reason = %why, "outbox database corrupt: moved aside, starting a fresh one");
                    opened.moved_aside = Some((to, why));
                }
                Err(e) => {
                    opened.storage_error = Some(format!(
                        "corrupt outbox {} cannot be moved aside: {e}",
                        path.display()
                    ));
                    return None;
                }
            }
            match db::open(path) {
                Ok(conn) => Some(conn),
                Err(e) => {
                    opened.storage_error = Some(e.to_string());
                    None
                }
            }
        }
        Err(e) => {
            tracing::error!(path = %path.display(), error = %e, "outbox database cannot be opened; holding messages in memory");
            opened.storage_error = Some(e.to_string());
            None
        }
    }
}

impl Backend for Durable {
    fn append(&self, batch: Vec<Message>) {
        let created = db::now_ms();
        let mut state = self.shared.lock();
        let wake = state.append(batch, created);
        if state.is_full() {
            self.shared.full.store(true, Ordering::Relaxed);
        }
        drop(state);
        if wake {
            self.shared.wake.notify_one();
        }
    }

    fn read(&self, cursor: Cursor, limit: usize) -> Vec<Stored> {
        self.shared.lock().begin_read();
        let mut found = Vec::with_capacity(2);
        let mut room = limit;
        for (class, after) in [
            (Class::Report, cursor.report),
            (Class::Telemetry, cursor.telemetry),
        ] {
            if room == 0 {
                break;
            }
            // Staged first, then the disk: a message committed in between
            // is then in one of the two (or both; duplicates merge by id).
            let (staged, disk_max) = self.shared.lock().snapshot(class, after, room);
            let disk = if disk_max > after {
                match self.read_disk(class, after, room) {
                    Ok(rows) => rows,
                    Err(error) => {
                        // Staged ids are all above the disk's: sending them
                        // now would skip rows. Send nothing of this class.
                        tracing::warn!(%error, "outbox read failed; retrying");
                        continue;
                    }
                }
            } else {
                Vec::new()
            };
            let messages = if disk.is_empty() {
                // The common case: everything of this class is still staged.
                staged
            } else {
                let mut merged: BTreeMap<u64, Stored> =
                    disk.into_iter().map(|m| (m.id, m)).collect();
                for m in staged {
                    merged.entry(m.id).or_insert(m);
                }
                merged.into_values().take(room).collect()
            };
            room -= messages.len().min(room);
            found.push((class, messages));
        }
        // Acknowledged and dropped messages are left out, and what is
        // handed out is noted, in one critical section (`staged::handout`).
        self.shared.lock().admit(found)
    }

    fn ack(&self, ids: &[u64]) {
        let mut state = self.shared.lock();
        let wake = state.ack(ids);
        // Acks free staged memory too: producers waiting for room must not
        // wait for the writer's next linger.
        if self.shared.full.load(Ordering::Relaxed) {
            self.shared.update_room(&state);
        }
        drop(state);
        if wake {
            self.shared.wake.notify_one();
        }
    }

    fn stats(&self) -> Stats {
        let on_disk = {
            let state = self.shared.lock();
            state.disk_rows(Class::Report) + state.disk_rows(Class::Telemetry) > 0
        };
        let oldest = if on_disk {
            self.disk_oldest()
        } else {
            [None; 2]
        };
        self.shared.lock().stats(oldest, db::now_ms())
    }

    fn sync(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut state = self.shared.lock();
        let target = state.last_id();
        state.urgent = true;
        self.shared.wake.notify_one();
        while !state.synced(target) && Instant::now() < deadline && self.thread.is_some() {
            state = self
                .shared
                .done
                .wait_timeout(state, Duration::from_millis(100))
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    fn accepted(&self) -> BTreeMap<String, u64> {
        self.shared.lock().accepted()
    }

    fn last_id(&self) -> u64 {
        self.shared.lock().last_id()
    }

    fn is_full(&self) -> bool {
        self.shared.full.load(Ordering::Relaxed)
    }

    fn room(&self) -> Option<Arc<tokio::sync::Notify>> {
        Some(self.shared.room.clone())
    }
}

impl Drop for Durable {
    /// Flushes what the disk takes, then stops the writer.
    fn drop(&mut self) {
        self.shared.lock().closing = true;
        self.shared.wake.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
