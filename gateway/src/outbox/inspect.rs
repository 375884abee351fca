//! `edgevisor outbox stats|verify`: looks at the outbox file of a config's
//! `state_dir` from outside the service (WAL lets it read while the service
//! writes). `stats` prints counts, bytes and the oldest message's age per
//! class; `verify` runs `PRAGMA integrity_check` and checks that the
//! journal mode is WAL and that no id is in both tables.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::db::{self, DB_FILE};
use super::Class;

/// Why the file could not be inspected.
#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    /// No outbox in `state_dir` yet.
    #[error("no outbox at {0} (the service creates it on its first start)")]
    Missing(PathBuf),
    /// SQLite could not open or read it.
    #[error("cannot read the outbox {path}: {source}")]
    Sqlite {
        /// The file.
        path: PathBuf,
        /// Why.
        source: rusqlite::Error,
    },
}

fn open(state_dir: &Path) -> Result<(PathBuf, Connection), InspectError> {
    let path = state_dir.join(DB_FILE);
    if !path.exists() {
        return Err(InspectError::Missing(path));
    }
    let sqlite = |source| InspectError::Sqlite {
        path: path.clone(),
        source,
    };
    // Read-write without create: a read-only open of a WAL file fails when
    // its -shm is missing; nothing here writes.
    let conn =
        Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_WRITE).map_err(sqlite)?;
    conn.busy_timeout(Duration::from_secs(5)).map_err(sqlite)?;
    conn.pragma_update(None, "query_only", true)
        .map_err(sqlite)?;
    Ok((path, conn))
}

/// `stats` (always sound) or `verify`: the text to print and whether the
/// file is sound.
pub fn command(state_dir: &Path, verify: bool) -> Result<(String, bool), InspectError> {
    if verify {
        self::verify(state_dir)
    } else {
        stats(state_dir).map(|text| (text, true))
    }
}

/// The text of `edgevisor outbox stats`.
pub fn stats(state_dir: &Path) -> Result<String, InspectError> {
    let (path, conn) = open(state_dir)?;
    let sqlite = |source| InspectError::Sqlite {
        path: path.clone(),
        source,
    };
    let mut out = format!("outbox {}\n", path.display());
    let now = db::now_ms();
    let (mut count, mut bytes) = (0, 0);
    let mut oldest: Option<i64> = None;
    for class in [Class::Report, Class::Telemetry] {
        let f = db::figures(&conn, class).map_err(sqlite)?;
        let created = db::oldest_created(&conn, class).map_err(sqlite)?;
        let _ = writeln!(
            out,
            "{:<10} {:>10} messages {:>12} bytes  oldest {}",
            db::table(class),
            f.count,
            f.bytes,
            age(created, now)
        );
        count += f.count;
        bytes += f.bytes;
        oldest = match (oldest, created) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
    let size = |suffix: &str| {
        std::fs::metadata(format!("{}{suffix}", path.display())).map_or(0, |m| m.len())
    };
    let _ = writeln!(
        out,
        "{:<10} {count:>10} messages {bytes:>12} bytes  oldest {}\nfile {} bytes, wal {} bytes",
        "total",
        age(oldest, now),
        size(""),
        size("-wal")
    );
    Ok(out)
}

fn age(created: Option<i64>, now: i64) -> String {
    match created {
        Some(t) => {
            let ms = u64::try_from(now - t).unwrap_or(0);
            humantime::format_duration(Duration::from_secs(ms / 1000)).to_string()
        }
        None => "-".into(),
    }
}

/// `edgevisor outbox verify`: the report, and whether the file is sound.
pub fn verify(state_dir: &Path) -> Result<(String, bool), InspectError> {
    let (path, conn) = open(state_dir)?;
    let sqlite = |source| InspectError::Sqlite {
        path: path.clone(),
        source,
    };
    let mut problems = Vec::new();
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .map_err(sqlite)?;
    if !mode.eq_ignore_ascii_case("wal") {
        problems.push(format!("journal_mode is {mode}, not wal"));
    }
    let mut check = conn.prepare("PRAGMA integrity_check").map_err(sqlite)?;
    let rows: Vec<String> = check
        .query_map([], |r| r.get(0))
        .map_err(sqlite)?
        .collect::<Result<_, _>>()
        .map_err(sqlite)?;
    if rows != ["ok"] {
        problems.extend(rows.into_iter().take(20));
    }
    let both: i64 = conn
        .query_row(
            "SELECT count(*) FROM reports JOIN telemetry USING (id)",
            [],
            |r| r.get(0),
        )
        .map_err(sqlite)?;
    if both > 0 {
        problems.push(format!("{both} id(s) are in both tables"));
    }
    let mut out = format!("outbox {}\n", path.display());
    if problems.is_empty() {
        out.push_str("integrity ok, journal_mode wal\n");
    } else {
        for p in &problems {
            let _ = writeln!(out, "problem: {p}");
        }
    }
    Ok((out, problems.is_empty()))
}
