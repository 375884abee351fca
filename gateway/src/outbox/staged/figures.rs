//! What the staged state tells `stats`, `status` and the writer about
//! itself: read-only figures, kept apart from the state changes.

use std::collections::BTreeMap;

use super::State;
use crate::outbox::{Class, Stats};

impl State {
    /// The storage error, while it lasts.
    pub fn storage_error(&self) -> Option<&str> {
        self.storage_error.as_deref()
    }

    /// Figures; `disk_oldest` is the creation time of the oldest row on disk.
    pub fn stats(&self, disk_oldest: Option<i64>, now_ms: i64) -> Stats {
        let staged_oldest = self
            .staged
            .iter()
            .filter_map(|q| q.first().map(|e| e.created))
            .min();
        let oldest = match (disk_oldest, staged_oldest) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let disk_rows = self.disk[0].count + self.disk[1].count;
        Stats {
            depth: (disk_rows + self.staged_len() as u64).saturating_sub(self.deletes.len() as u64),
            bytes: self.bytes(),
            oldest_age: oldest
                .map(|t| std::time::Duration::from_millis(u64::try_from(now_ms - t).unwrap_or(0))),
            dropped: self.dropped.clone(),
            storage_error: self.storage_error.clone(),
            storage_faults: self.storage_faults,
            commits: self.commits,
            fsyncs: self.fsyncs,
        }
    }

    /// Highest telemetry `seq` per sensor committed or acknowledged.
    pub fn accepted(&self) -> BTreeMap<String, u64> {
        self.accepted.clone()
    }

    /// Rows of `class` on disk.
    pub fn disk_rows(&self, class: Class) -> u64 {
        self.disk[class as usize].count
    }
}
