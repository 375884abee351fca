//! Space held in reserve beside the database, for a disk that stays full.
//!
//! SQLite needs room to delete: in WAL mode a DELETE appends pages to the
//! WAL, and a checkpoint writes them back. On a volume that another program
//! filled, the outbox could then neither delete what the broker
//! acknowledged nor checkpoint, so it stayed failed (holding everything in
//! memory) until someone freed space. So the writer keeps a file of
//! [`RESERVE_BYTES`] next to the database and removes it when a commit
//! fails for a full disk. From then until twice its size is free again the
//! writer commits deletions only, in the room the reserve left: what the
//! broker acknowledges leaves the file, new messages wait in memory within
//! the outbox's memory bound, and the status shows the storage error. The
//! reserve itself is made again once the volume has three times its size
//! free (tried at most every [`RETRY_EVERY`]).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Bytes held in reserve: the WAL of a few thousand deletions and a
/// checkpoint's worth of pages.
pub const RESERVE_BYTES: u64 = 4 * 1024 * 1024;
/// The file's name in `state_dir`.
pub const RESERVE_FILE: &str = "outbox.reserve";
/// How often a missing reserve is tried again.
const RETRY_EVERY: Duration = Duration::from_secs(10);

/// The reserve file and whether it is in place.
pub struct Reserve {
    path: PathBuf,
    held: bool,
    next_try: Option<Instant>,
}

impl Reserve {
    /// The reserve beside database `db` (not made yet: see [`keep`]).
    ///
    /// [`keep`]: Reserve::keep
    pub fn beside(db: &Path) -> Self {
        let path = db.with_file_name(RESERVE_FILE);
        let held = std::fs::metadata(&path).is_ok_and(|m| m.len() >= RESERVE_BYTES);
        Self {
            path,
            held,
            next_try: None,
        }
    }

    /// Makes the reserve if it is missing and the volume has room to
    /// spare; a failure is retried later, never reported as the outbox's.
    pub fn keep(&mut self) {
        let now = Instant::now();
        if self.held || self.next_try.is_some_and(|t| now < t) {
            return;
        }
        self.next_try = Some(now + RETRY_EVERY);
        if free_bytes(&self.path).is_some_and(|free| free < 3 * RESERVE_BYTES) {
            return;
        }
        match write_zeros(&self.path, RESERVE_BYTES) {
            Ok(()) => self.held = true,
            Err(error) => {
                let _ = std::fs::remove_file(&self.path);
                tracing::debug!(%error, path = %self.path.display(), "cannot make the outbox's reserve yet");
            }
        }
    }

    /// Whether new rows may be written again after the disk filled: twice
    /// the reserve is free (so they do not eat the room deletions need), or
    /// the free space cannot be read.
    pub fn disk_has_room(&self) -> bool {
        free_bytes(&self.path).is_none_or(|free| free >= 2 * RESERVE_BYTES)
    }

    /// The disk is full: removes the reserve so deletions and checkpoints
    /// can run. True when there was one to remove.
    pub fn release(&mut self) -> bool {
        if !self.held {
            return false;
        }
        self.held = false;
        self.next_try = Some(Instant::now() + RETRY_EVERY);
        std::fs::remove_file(&self.path).is_ok()
    }
}

/// Allocates `len` bytes of real blocks (not a sparse file): with
/// `posix_fallocate`, or by writing zeros where the file system cannot.
fn write_zeros(path: &Path, len: u64) -> std::io::Result<()> {
    let mut file = std::fs::File::create(path)?;
    let size = nix::libc::off_t::try_from(len).unwrap_or(nix::libc::off_t::MAX);
    if nix::fcntl::posix_fallocate(&file, 0, size).is_ok() {
        return Ok(());
    }
    let chunk = [0u8; 64 * 1024];
    let mut left = len;
    while left > 0 {
        let n = usize::try_from(left.min(chunk.len() as u64)).unwrap_or(chunk.len());
        file.write_all(&chunk[..n])?;
        left -= n as u64;
    }
    file.sync_all()
}

/// Bytes free for unprivileged writers on the volume of `path`'s folder.
fn free_bytes(path: &Path) -> Option<u64> {
    let dir = path.parent()?;
    let stat = nix::sys::statvfs::statvfs(dir).ok()?;
    // Both are 32 bits wide on armv7 and 64 on 64-bit targets.
    #[allow(clippy::useless_conversion)]
    let (blocks, size) = (
        u64::from(stat.blocks_available()),
        u64::from(stat.fragment_size()),
    );
    Some(blocks.saturating_mul(size))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reserve_is_made_released_and_not_remade_at_once() {
        let dir = std::env::temp_dir().join(format!("edgevisor-reserve-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let db = dir.join("outbox.db");
        let mut reserve = Reserve::beside(&db);
        reserve.keep();
        let file = dir.join(RESERVE_FILE);
        assert_eq!(std::fs::metadata(&file).unwrap().len(), RESERVE_BYTES);
        assert!(reserve.release(), "released for a full disk");
        assert!(!file.exists());
        assert!(!reserve.release(), "nothing left to release");
        reserve.keep();
        assert!(!file.exists(), "not made again before the retry time");
        assert!(!Reserve::beside(&db).release());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
