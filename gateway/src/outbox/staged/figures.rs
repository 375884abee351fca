//! What the staged state tells `stats`, `status` and the writer about
//! itself: read-only figures, kept apart from the state changes.

use std::collections::BTreeMap;

use super::State;
use crate::outbox::{Class, ClassFigures, Stats};

impl State {
    /// The storage error, while it lasts.
    pub fn storage_error(&self) -> Option<&str> {
        self.storage_error.as_deref()
    }

    /// Figures; `disk_oldest` is the creation time of the oldest row on
    /// disk, per class.
    pub fn stats(&self, disk_oldest: [Option<i64>; 2], now_ms: i64) -> Stats {
        let age = |t: i64| std::time::Duration::from_millis(u64::try_from(now_ms - t).unwrap_or(0));
        let oldest = |c: usize| {
            let staged = self.staged[c].first().map(|e| e.created);
            match (disk_oldest[c], staged) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            }
        };
        let disk_rows = self.disk[0].count + self.disk[1].count;
        let depth =
            (disk_rows + self.staged_len() as u64).saturating_sub(self.deletes.len() as u64);
        let report = Class::Report as usize;
        let report_deletes = self
            .deletes
            .iter()
            .filter(|id| self.report_rows.contains(id))
            .count() as u64;
        let mut classes = [ClassFigures::default(); 2];
        for (c, figures) in classes.iter_mut().enumerate() {
            *figures = ClassFigures {
                messages: self.disk[c].count + self.staged[c].len() as u64,
                bytes: self.disk[c].bytes + self.staged_bytes[c],
                oldest_age: oldest(c).map(age),
                dropped: self.dropped_by_class[c],
                set_aside: 0, // counted by the handle
            };
        }
        // Deletions not yet committed are not held any more.
        classes[report].messages = classes[report].messages.saturating_sub(report_deletes);
        classes[Class::Telemetry as usize].messages =
            depth.saturating_sub(classes[report].messages);
        Stats {
            depth,
            bytes: self.bytes(),
            oldest_age: oldest(0).into_iter().chain(oldest(1)).min().map(age),
            dropped: self.dropped.clone(),
            storage_error: self.storage_error.clone(),
            storage_faults: self.storage_faults,
            commits: self.commits,
            fsyncs: self.fsyncs,
            classes,
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

#[cfg(test)]
mod tests {
    use super::super::tests::{reading, state_bounded};
    use crate::outbox::batch::{Outcome, Take};
    use crate::outbox::{Class, Message};

    #[test]
    fn each_class_counts_what_it_holds_and_an_acked_row_leaves_at_once() {
        let mut s = state_bounded(1 << 20, 1 << 20);
        let report = Message::report("s".into(), "c/s".into(), vec![b'r'; 20]);
        s.append(vec![report, reading(1), reading(2)], 0);
        let batch = s.take(Take::Aged);
        s.committed(batch, Outcome::default());
        let before = s.stats([None; 2], 0);
        let (r, t) = (Class::Report as usize, Class::Telemetry as usize);
        assert_eq!(
            (before.classes[r].messages, before.classes[t].messages),
            (1, 2)
        );
        assert_eq!(before.classes[r].bytes, 23);
        // The report is acknowledged; its row is deleted by the next commit.
        s.ack(&[1]);
        let after = s.stats([None; 2], 0);
        assert_eq!(after.depth, 2);
        assert_eq!(
            (after.classes[r].messages, after.classes[t].messages),
            (0, 2)
        );
    }
}
