//! The SQLite file behind the durable outbox: opening it with the pragmas
//! the durability argument rests on (WAL, `synchronous = FULL`), checking
//! it, and moving a corrupt file aside (never deleting it).
//!
//! Two tables, one per [`Class`], each keyed by the message id alone
//! (`INTEGER PRIMARY KEY`, the rowid): reading in send order and dropping
//! the oldest telemetry are then range scans with no second index to keep.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension};

use super::Class;

/// The outbox's file name inside `state_dir`.
pub const DB_FILE: &str = "outbox.db";

/// Table of each class.
pub fn table(class: Class) -> &'static str {
    match class {
        Class::Report => "reports",
        Class::Telemetry => "telemetry",
    }
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS reports (
    id INTEGER PRIMARY KEY, sensor TEXT NOT NULL, topic TEXT NOT NULL,
    payload BLOB NOT NULL, created INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS telemetry (
    id INTEGER PRIMARY KEY, sensor TEXT NOT NULL, topic TEXT NOT NULL,
    payload BLOB NOT NULL, created INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
";

/// The highest id ever stored, kept so that ids are never handed out twice,
/// even when the newest rows were acknowledged and deleted before a restart.
pub fn high_water(conn: &Connection) -> rusqlite::Result<u64> {
    let value: Option<i64> = conn
        .query_row("SELECT value FROM meta WHERE key = 'high_water'", [], |r| {
            r.get(0)
        })
        .optional()?;
    Ok(value.and_then(|v| u64::try_from(v).ok()).unwrap_or(0))
}

/// Raises the high-water mark to `id` (in the transaction that stores it).
pub fn raise_high_water(conn: &Connection, id: u64) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO meta (key, value) VALUES ('high_water', ?1)
         ON CONFLICT (key) DO UPDATE SET value = max(value, excluded.value)",
    )?
    .execute([i64::try_from(id).unwrap_or(i64::MAX)])?;
    Ok(())
}

/// Why the file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The file is not a database, or `quick_check` found damage: it is
    /// moved aside and a fresh one started.
    #[error("outbox database is corrupt: {0}")]
    Corrupt(String),
    /// The disk refused (full, read-only, I/O error, permissions): the
    /// outbox keeps messages in memory and retries.
    #[error("outbox storage error: {0}")]
    Storage(#[from] rusqlite::Error),
    /// SQLite would not switch to WAL (e.g. a filesystem without shared
    /// memory): the durability argument does not hold, so the file is not used.
    #[error("outbox database refused WAL mode (journal_mode is {0}); put state_dir on a local filesystem")]
    NotWal(String),
    /// The disk filled up: new messages are held in memory (within the
    /// outbox's memory bound) until it has room again, while acknowledged
    /// ones are still deleted from the file.
    #[error("the disk is full: new messages are held in memory until space is freed; acknowledged ones are still deleted")]
    FullHold,
}

impl DbError {
    /// The volume is full (SQLITE_FULL).
    pub fn is_disk_full(&self) -> bool {
        match self {
            DbError::Storage(e) => e.sqlite_error_code() == Some(ErrorCode::DiskFull),
            DbError::FullHold => true,
            _ => false,
        }
    }

    /// Sorts an SQLite error into damage or a storage fault.
    pub fn classify(error: rusqlite::Error) -> Self {
        match error.sqlite_error_code() {
            Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => {
                DbError::Corrupt(error.to_string())
            }
            _ => DbError::Storage(error),
        }
    }
}

/// Opens `path` read-write with the durability pragmas and the schema.
pub fn open(path: &Path) -> Result<Connection, DbError> {
    let conn = Connection::open(path).map_err(DbError::classify)?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .map_err(DbError::classify)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(DbError::NotWal(mode));
    }
    configure(&conn).map_err(DbError::classify)?;
    Ok(conn)
}

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(Duration::from_secs(5))?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    // The writer checkpoints itself (counted, see `writer`); the WAL file
    // is cut back to this size after a checkpoint.
    conn.pragma_update(None, "wal_autocheckpoint", 0)?;
    conn.pragma_update(None, "journal_size_limit", 8 * 1024 * 1024)?;
    conn.execute_batch(SCHEMA)
}

/// A second connection for reads: WAL lets it read committed rows while the
/// writer commits.
pub fn open_reader(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(Duration::from_secs(1))?;
    conn.pragma_update(None, "query_only", true)?;
    Ok(conn)
}

/// `PRAGMA quick_check`: `Ok` or the first problems it lists.
pub fn quick_check(conn: &Connection) -> Result<(), DbError> {
    let mut stmt = conn
        .prepare("PRAGMA quick_check")
        .map_err(DbError::classify)?;
    let rows: Vec<String> = stmt
        .query_map([], |r| r.get(0))
        .map_err(DbError::classify)?
        .collect::<Result<_, _>>()
        .map_err(DbError::classify)?;
    if rows.len() == 1 && rows[0] == "ok" {
        Ok(())
    } else {
        Err(DbError::Corrupt(
            rows.into_iter().take(5).collect::<Vec<_>>().join("; "),
        ))
    }
}

/// Renames `outbox.db` (and its `-wal`, `-shm`) to
/// `outbox.db.corrupt-<unix time>` (same suffixes, so SQLite can still open
/// the set for forensics) and returns the new name of the main file.
pub fn move_aside(path: &Path) -> std::io::Result<PathBuf> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut target = PathBuf::from(format!("{}.corrupt-{now}", path.display()));
    let mut n = 1;
    while target.exists() {
        target = PathBuf::from(format!("{}.corrupt-{now}.{n}", path.display()));
        n += 1;
    }
    for suffix in ["-wal", "-shm", ""] {
        let from = PathBuf::from(format!("{}{suffix}", path.display()));
        if from.exists() {
            std::fs::rename(&from, format!("{}{suffix}", target.display()))?;
        }
    }
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(target)
}

/// What one table holds: rows, bytes (topic + payload), highest id,
/// and the creation time (unix ms) of its oldest row.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TableFigures {
    /// Rows.
    pub count: u64,
    /// Topic and payload bytes.
    pub bytes: u64,
    /// Highest id (0 when empty).
    pub max_id: u64,
}

/// Counts one table (a scan that reads record headers, not payloads).
pub fn figures(conn: &Connection, class: Class) -> rusqlite::Result<TableFigures> {
    let sql = format!(
        "SELECT count(*), coalesce(sum(length(topic) + length(payload)), 0), coalesce(max(id), 0) FROM {}",
        table(class)
    );
    conn.query_row(&sql, [], |r| {
        Ok(TableFigures {
            count: r.get::<_, i64>(0)?.try_into().unwrap_or(0),
            bytes: r.get::<_, i64>(1)?.try_into().unwrap_or(0),
            max_id: r.get::<_, i64>(2)?.try_into().unwrap_or(0),
        })
    })
}

/// The ids of every row of `class`.
pub fn ids(conn: &Connection, class: Class) -> rusqlite::Result<Vec<u64>> {
    let sql = format!("SELECT id FROM {}", table(class));
    let mut stmt = conn.prepare(&sql)?;
    let ids = stmt.query_map([], |r| r.get::<_, i64>(0))?;
    ids.map(|id| id.map(|id| u64::try_from(id).unwrap_or(0)))
        .collect()
}

/// Creation time (unix ms) of the oldest row of `class`.
pub fn oldest_created(conn: &Connection, class: Class) -> rusqlite::Result<Option<i64>> {
    let sql = format!("SELECT created FROM {} ORDER BY id LIMIT 1", table(class));
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query([])?;
    match rows.next()? {
        Some(row) => Ok(Some(row.get(0)?)),
        None => Ok(None),
    }
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
