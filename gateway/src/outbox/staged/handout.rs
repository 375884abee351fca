//! What the uplink may be handed, kept consistent with drops for the bound.
//!
//! The uplink reads staged messages and committed rows without the state's
//! lock held throughout (the disk read takes time). A drop for the bound
//! can happen in between: from memory (`drop_staged`) or from disk (the
//! writer's transaction). A message the reader saw before the drop and
//! handed out after it would be counted dropped and then delivered, and the
//! status would over-report loss (or, if the connection failed before its
//! PUBACK, lose it uncounted). So a read is admitted in one critical
//! section that also notes what was handed out:
//! - ids dropped while the read was under way are skipped (they are gone);
//! - while the writer drops from disk, telemetry above what the uplink
//!   already holds is not handed out: the read stops there, and the next
//!   read continues from the same place.
//!
//! The drops are remembered only while some read that started before them
//! is still under way.

use super::{Class, State, Stored};

/// Ids `(after, through]` of one class that a drop removed.
pub(super) type Gone = (u64, u64);

impl State {
    /// A read of staged and committed messages starts.
    pub fn begin_read(&mut self) {
        self.active_reads += 1;
    }

    /// Admits what a read found (per class, in id order), notes it as
    /// handed out, and ends the read.
    pub fn admit(&mut self, found: Vec<(Class, Vec<Stored>)>) -> Vec<Stored> {
        let mut out = Vec::new();
        for (class, messages) in found {
            let mut through = None;
            for m in messages {
                if self.is_gone(class, m.id) || self.is_deleted(m.id) {
                    continue;
                }
                if class == Class::Telemetry && self.dropping.is_some_and(|keep| m.id > keep) {
                    break;
                }
                through = Some(m.id);
                out.push(m);
            }
            if let Some(through) = through {
                self.handed_out(class, through);
            }
        }
        self.active_reads = self.active_reads.saturating_sub(1);
        if self.active_reads == 0 {
            self.gone = Default::default();
        }
        out
    }

    /// The writer is about to drop telemetry from disk for the bound:
    /// returns the highest id it must keep (what the uplink holds) and
    /// holds back the rest from readers until the commit is booked.
    pub fn begin_drop(&mut self) -> u64 {
        let keep = self.sent_through[Class::Telemetry as usize];
        self.dropping = Some(keep);
        keep
    }

    /// A drop removed ids `(after, through]` of `class`.
    pub(super) fn record_gone(&mut self, class: Class, after: u64, through: u64) {
        if self.active_reads == 0 || through <= after {
            return;
        }
        let ranges = &mut self.gone[class as usize];
        if let Some(last) = ranges
            .last_mut()
            .filter(|(a, t)| after <= *t && *a <= through)
        {
            *last = (last.0.min(after), last.1.max(through));
        } else {
            ranges.push((after, through));
        }
    }

    fn is_gone(&self, class: Class, id: u64) -> bool {
        self.gone[class as usize]
            .iter()
            .any(|(after, through)| *after < id && id <= *through)
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{reading, state_bounded};
    use super::*;

    fn ids(found: &[Stored]) -> Vec<u64> {
        found.iter().map(|m| m.id).collect()
    }

    #[test]
    fn a_reading_dropped_during_a_read_is_not_handed_out() {
        let mut s = state_bounded(1 << 20, 40);
        s.append(vec![reading(1), reading(2)], 0);
        s.begin_read();
        let seen = s.snapshot(Class::Telemetry, 0, 10).0;
        // While the reader is away, the bound drops id 1 (nothing handed
        // out yet).
        s.append(vec![reading(3), reading(4)], 0);
        assert_eq!(s.dropped.get("s"), Some(&1));
        let admitted = s.admit(vec![(Class::Telemetry, seen)]);
        assert_eq!(ids(&admitted), [2], "1 went; 3 and 4 were not seen");
        assert!(
            s.gone[Class::Telemetry as usize].is_empty(),
            "forgotten after the read"
        );
    }

    #[test]
    fn while_the_disk_drops_a_read_stops_above_what_the_uplink_holds() {
        let mut s = state_bounded(1 << 20, 1 << 20);
        s.append(vec![reading(1), reading(2), reading(3)], 0);
        s.handed_out(Class::Telemetry, 1);
        s.begin_read();
        let seen = s.snapshot(Class::Telemetry, 0, 10).0;
        assert_eq!(s.begin_drop(), 1);
        let admitted = s.admit(vec![(Class::Telemetry, seen)]);
        assert_eq!(ids(&admitted), [1]);
        let batch = s.take(super::super::Take::All);
        let outcome = super::super::Outcome {
            dropped_range: Some((1, 2)),
            ..Default::default()
        };
        s.committed(batch, outcome);
        assert_eq!(s.dropping, None, "the commit ends the hold");
    }
}
