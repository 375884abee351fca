//! The durable outbox's memory: messages accepted but not yet committed
//! (and, while the disk is failing, everything accepted since), pending
//! deletions of acknowledged rows, and the figures kept about the file so
//! `stats` and the bound never scan it. No I/O here: the writer thread takes
//! a [`Batch`], commits it, and reports back with [`State::committed`] or
//! [`State::failed`].

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

pub use super::batch::{Batch, Entry, Outcome, Take};
use super::db::TableFigures;
use super::writer::BATCH_MAX;
use super::{Class, Message, Stored};

mod figures;
mod handout;
mod queue;

use queue::IdQueue;

/// Everything the durable backend keeps in memory, behind one mutex.
pub struct State {
    next_id: u64,
    staged: [IdQueue; 2],
    /// Bytes staged, per class.
    staged_bytes: [u64; 2],
    /// Every id up to this is committed (or gone); ids above it are staged.
    durable_through: u64,
    /// Ids up to this are in the batch being written (or committed).
    writing_through: u64,
    /// A batch is being written (its deletions are not committed yet).
    writing: bool,
    deletes: Vec<u64>,
    delete_set: HashSet<u64>,
    /// Ids of the crash reports and dead letters on disk: the class of a
    /// pending deletion, for the per-class figures (reports are few).
    report_rows: HashSet<u64>,
    delivered: Vec<(u64, Arc<str>, u64)>,
    disk: [TableFigures; 2],
    accepted: BTreeMap<String, u64>,
    dropped: BTreeMap<String, u64>,
    /// Messages dropped for the bound, per class.
    dropped_by_class: [u64; 2],
    storage_error: Option<String>,
    storage_faults: u64,
    commits: u64,
    fsyncs: u64,
    max_bytes: u64,
    memory_bound: u64,
    /// When the batch clock started: the oldest uncommitted message (or
    /// deletion) arrived then. The writer looks again [`LINGER`] later.
    ///
    /// [`LINGER`]: super::writer::LINGER
    pub first_staged: Option<Instant>,
    /// The last id handed out when the clock started: at the deadline, only
    /// messages up to it (those that waited a full linger without being
    /// acknowledged) are written.
    clock_upto: u64,
    /// The highest id of each class handed to the uplink. Drops for the
    /// bound skip these: they may be in flight and acknowledged later, and
    /// a drop counted for a reading that then arrives over-reports loss.
    /// They are at most the uplink's window, so the bound may be exceeded
    /// by that much.
    sent_through: [u64; 2],
    /// Reads of the outbox under way (see `handout`).
    active_reads: u32,
    /// Ids dropped for the bound while a read was under way, per class.
    gone: [Vec<handout::Gone>; 2],
    /// The writer is dropping telemetry above this id from disk.
    dropping: Option<u64>,
    /// `drop_key()` when a drop from disk last freed nothing (everything
    /// on disk was with the uplink): no drop is tried again until it
    /// changes, or the writer would spin on empty transactions.
    futile_drop: Option<(u64, u64, u64)>,
    /// A caller waits in `sync`: commit now, without lingering.
    pub urgent: bool,
    /// The last handle is gone: flush and stop.
    pub closing: bool,
}

impl State {
    /// State for a file holding `disk` (ids continue above it and above
    /// `floor`), bounded by `max_bytes` on disk and `memory_bound` in memory.
    pub fn new(disk: [TableFigures; 2], floor: u64, max_bytes: u64, memory_bound: u64) -> Self {
        let max_id = disk[0].max_id.max(disk[1].max_id).max(floor);
        Self {
            next_id: max_id + 1,
            staged: Default::default(),
            staged_bytes: [0; 2],
            durable_through: max_id,
            writing_through: max_id,
            writing: false,
            deletes: Vec::new(),
            report_rows: HashSet::new(),
            delete_set: HashSet::new(),
            delivered: Vec::new(),
            disk,
            accepted: BTreeMap::new(),
            dropped: BTreeMap::new(),
            dropped_by_class: [0; 2],
            storage_error: None,
            storage_faults: 0,
            commits: 0,
            fsyncs: 0,
            max_bytes,
            memory_bound,
            first_staged: None,
            clock_upto: max_id,
            sent_through: [0; 2],
            active_reads: 0,
            gone: Default::default(),
            dropping: None,
            futile_drop: None,
            urgent: false,
            closing: false,
        }
    }

    /// Notes the reports the file held at open.
    pub fn reports_on_disk(&mut self, ids: Vec<u64>) {
        self.report_rows.extend(ids);
    }

    /// Stages a batch; returns true when the writer should be woken (the
    /// first staged message starts the batch clock).
    pub fn append(&mut self, batch: Vec<Message>, created: i64) -> bool {
        let wake = self.first_staged.is_none();
        for m in batch {
            let id = self.next_id;
            self.next_id += 1;
            let entry = Entry {
                class: m.class,
                sensor: m.sensor,
                topic: m.topic,
                payload: m.payload,
                seq: m.seq,
                created,
            };
            self.staged_bytes[m.class as usize] += entry.size();
            self.staged[m.class as usize].push(id, entry);
        }
        self.start_clock();
        if self.staged_total() > self.memory_bound {
            self.drop_staged(self.staged_total() - self.memory_bound);
        }
        wake || self.staged_len() >= BATCH_MAX
    }

    /// Starts the batch clock, if it is not running, for everything handed
    /// out so far.
    fn start_clock(&mut self) {
        if self.first_staged.is_none() {
            self.first_staged = Some(Instant::now());
            self.clock_upto = self.last_id();
        }
    }

    /// Bytes staged, both classes.
    fn staged_total(&self) -> u64 {
        self.staged_bytes[0] + self.staged_bytes[1]
    }

    fn staged_len(&self) -> usize {
        self.staged[0].len() + self.staged[1].len()
    }

    /// Drops the oldest staged telemetry not being written and not handed
    /// to the uplink (then reports) until `bytes` are freed; counted per
    /// sensor.
    fn drop_staged(&mut self, bytes: u64) {
        let mut freed = 0;
        for class in [Class::Telemetry, Class::Report] {
            let c = class as usize;
            let keep = self.writing_through.max(self.sent_through[c]);
            let queue = &mut self.staged[c];
            let mut last = keep;
            let before = freed;
            while freed < bytes {
                let Some((id, _)) = queue.after(keep).next() else {
                    break;
                };
                if let Some(entry) = queue.remove(id) {
                    freed += entry.size();
                    last = id;
                    *self.dropped.entry(entry.sensor.to_string()).or_default() += 1;
                    self.dropped_by_class[c] += 1;
                }
            }
            self.staged_bytes[c] -= (freed - before).min(self.staged_bytes[c]);
            self.record_gone(class, keep, last);
        }
    }

    /// Notes that the uplink now holds every message of `class` up to
    /// `through` (see `sent_through`).
    pub fn handed_out(&mut self, class: Class, through: u64) {
        let sent = &mut self.sent_through[class as usize];
        *sent = (*sent).max(through);
    }

    /// The staged messages of `class` after `after` (up to `limit`), and the
    /// highest id of that class on disk: rows above it can only be staged.
    pub fn snapshot(&self, class: Class, after: u64, limit: usize) -> (Vec<Stored>, u64) {
        let staged = self.staged[class as usize]
            .after(after)
            .take(limit)
            .map(|(id, e)| Stored {
                id,
                class,
                topic: e.topic.clone(),
                payload: e.payload.clone(),
            })
            .collect();
        (staged, self.disk[class as usize].max_id)
    }

    /// True while producers should wait before handing over more: the disk
    /// works but takes messages more slowly than they arrive, and a quarter
    /// of the memory bound is staged. Readers then leave readings in the
    /// sensors' sockets (TCP pushes back) instead of in memory. While the
    /// disk fails nobody waits: the memory bound and its drop count apply.
    pub fn is_full(&self) -> bool {
        self.storage_error.is_none() && self.staged_total() > self.memory_bound / 4
    }

    /// True when `id` was acknowledged but its row may still be on disk.
    pub fn is_deleted(&self, id: u64) -> bool {
        self.delete_set.contains(&id)
    }

    /// Forgets acknowledged messages: a staged one is dropped before it is
    /// ever written; one that may be on disk is deleted by the next batch.
    /// Returns true when the writer should be woken (as for `append`).
    pub fn ack(&mut self, ids: &[u64]) -> bool {
        let wake = self.first_staged.is_none();
        for &id in ids {
            let mut removed = None;
            for queue in &mut self.staged {
                if let Some(entry) = queue.remove(id) {
                    removed = Some(entry);
                    break;
                }
            }
            if let Some(entry) = &removed {
                let bytes = &mut self.staged_bytes[entry.class as usize];
                *bytes -= entry.size().min(*bytes);
                if let Some(seq) = entry.seq {
                    self.delivered.push((id, entry.sensor.clone(), seq));
                }
            }
            if (removed.is_none() || id <= self.writing_through) && self.delete_set.insert(id) {
                self.deletes.push(id);
                self.start_clock();
            }
        }
        wake && self.first_staged.is_some()
    }

    /// What a drop from disk depends on: what the uplink holds, the ids
    /// handed out, and what is committed.
    fn drop_key(&self) -> (u64, u64, u64) {
        (
            self.sent_through[Class::Telemetry as usize],
            self.last_id(),
            self.durable_through,
        )
    }

    /// Whether a drop from disk could free anything now (see `futile_drop`).
    fn drop_may_free(&self) -> bool {
        self.futile_drop != Some(self.drop_key())
    }

    fn bytes(&self) -> u64 {
        self.disk[0].bytes + self.disk[1].bytes + self.staged_total()
    }

    /// True when the writer has something to do.
    pub fn has_work(&self) -> bool {
        self.staged_len() > 0
            || !self.deletes.is_empty()
            || self.durable_through < self.last_id()
            || (self.bytes() > self.max_bytes
                && self.disk[Class::Telemetry as usize].count > 0
                && self.drop_may_free())
    }

    /// Messages and deletions ready to commit.
    pub fn pending(&self) -> usize {
        self.staged_len() + self.deletes.len()
    }

    /// True when everything up to `id` is committed, or the disk is failing
    /// (a `sync` caller then stops waiting).
    pub fn synced(&self, id: u64) -> bool {
        (self.durable_through >= id && self.deletes.is_empty() && !self.writing)
            || self.storage_error.is_some()
    }

    /// The highest id handed out so far.
    pub fn last_id(&self) -> u64 {
        self.next_id - 1
    }

    /// Takes staged messages (the oldest, at most `BATCH_MAX`) and every
    /// pending deletion for one commit. With `Take::Aged`, only messages
    /// staged when the batch clock started: one acknowledged within a linger
    /// of its arrival is never written, so a broker that keeps up costs the
    /// disk nothing. `Take::All` (a `sync`, a full batch, closing) takes
    /// everything.
    pub fn take(&mut self, take: Take) -> Batch {
        let upto = match take {
            Take::Aged => self.clock_upto.max(self.durable_through),
            Take::All => self.last_id(),
        };
        // Copies share the topic and payload (reference counts): only what
        // lingered unacknowledged gets here.
        let mut inserts: Vec<(u64, Entry)> = self
            .staged
            .iter()
            .flat_map(|q| q.through(upto).map(|(id, e)| (id, e.clone())))
            .collect();
        inserts.sort_unstable_by_key(|(id, _)| *id);
        let through = if inserts.len() > BATCH_MAX {
            inserts.truncate(BATCH_MAX);
            inserts.last().map_or(self.durable_through, |(id, _)| *id)
        } else {
            upto
        };
        let (delivered, later) = std::mem::take(&mut self.delivered)
            .into_iter()
            .partition(|(id, _, _)| *id <= through);
        self.delivered = later;
        self.writing_through = through;
        self.writing = true;
        self.first_staged = None;
        if through < self.last_id() {
            // Younger messages get a clock of their own.
            self.start_clock();
        }
        self.delete_set.clear();
        // New rows may be above what the uplink holds: droppable.
        let over = if self.drop_may_free() || !inserts.is_empty() {
            self.bytes().saturating_sub(self.max_bytes)
        } else {
            0
        };
        Batch {
            inserts,
            deletes: std::mem::take(&mut self.deletes),
            over,
            delivered,
            through,
        }
    }

    /// Books a committed batch; returns true if it ended a fault episode.
    pub fn committed(&mut self, batch: Batch, outcome: Outcome) -> bool {
        self.writing = false;
        self.dropping = None;
        if let Some((after, through)) = outcome.dropped_range {
            self.record_gone(Class::Telemetry, after, through);
        }
        // `found` is None unless this commit first read a file that could
        // not be opened at start: then there is nothing to add.
        for (disk, found) in self.disk.iter_mut().zip(outcome.found.unwrap_or_default()) {
            disk.count += found.count;
            disk.bytes += found.bytes;
            disk.max_id = disk.max_id.max(found.max_id);
        }
        for (id, entry) in &batch.inserts {
            let class = entry.class as usize;
            if self.staged[class].remove(*id).is_some() {
                self.staged_bytes[class] -= entry.size().min(self.staged_bytes[class]);
            }
            self.disk[class].count += 1;
            self.disk[class].bytes += entry.size();
            if entry.class == Class::Report {
                self.report_rows.insert(*id);
            }
            self.disk[class].max_id = self.disk[class].max_id.max(*id);
            if let Some(seq) = entry.seq {
                raise(&mut self.accepted, &entry.sensor, seq);
            }
        }
        for (_, sensor, seq) in batch.delivered {
            raise(&mut self.accepted, &sensor, seq);
        }
        self.book_removed(&outcome.deleted);
        for id in &batch.deletes {
            self.report_rows.remove(id);
        }
        for (sensor, n) in outcome.dropped {
            // The writer drops telemetry only (reports are kept first).
            self.dropped_by_class[Class::Telemetry as usize] += n;
            *self.dropped.entry(sensor).or_default() += n;
        }
        self.durable_through = batch.through;
        self.futile_drop = outcome.drop_freed_nothing.then(|| self.drop_key());
        self.commits += u64::from(outcome.fsyncs > 0);
        self.fsyncs += outcome.fsyncs;
        if self.staged_len() > 0 {
            self.start_clock();
        }
        if self.bytes() > self.max_bytes && self.disk[Class::Telemetry as usize].count == 0 {
            self.drop_staged(self.bytes() - self.max_bytes);
        }
        self.storage_error.take().is_some()
    }

    /// Books rows deleted from disk (per class).
    pub fn book_removed(&mut self, deleted: &[super::batch::Removed; 2]) {
        for (class, removed) in deleted.iter().enumerate() {
            self.disk[class].count -= removed.rows.min(self.disk[class].count);
            self.disk[class].bytes -= removed.bytes.min(self.disk[class].bytes);
        }
    }

    /// Puts a failed batch back (its messages stay staged, its deletions
    /// pending); returns true if this starts a fault episode.
    pub fn failed(&mut self, batch: Batch, error: String) -> bool {
        self.writing_through = self.durable_through;
        self.writing = false;
        self.dropping = None;
        for id in batch.deletes {
            if self.delete_set.insert(id) {
                self.deletes.push(id);
            }
        }
        let mut delivered = batch.delivered;
        delivered.append(&mut self.delivered);
        self.delivered = delivered;
        if self.staged_len() > 0 {
            self.start_clock();
        }
        let new_episode = self.storage_error.is_none();
        if new_episode {
            self.storage_faults += 1;
        }
        self.storage_error = Some(error);
        new_episode
    }
}

/// Raises `sensor`'s highest accepted `seq` to `seq`; allocates only for a
/// sensor not seen before (this runs once per reading).
fn raise(accepted: &mut BTreeMap<String, u64>, sensor: &str, seq: u64) {
    match accepted.get_mut(sensor) {
        Some(best) => *best = (*best).max(seq),
        None => {
            accepted.insert(sensor.to_owned(), seq);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> State {
        state_bounded(1 << 20, 1 << 20)
    }

    /// A state bounded by `max_bytes` in all and `memory_bound` in memory.
    pub(super) fn state_bounded(max_bytes: u64, memory_bound: u64) -> State {
        State::new(Default::default(), 0, max_bytes, memory_bound)
    }

    pub(super) fn reading(seq: u64) -> Message {
        Message::telemetry("s".into(), "t/s".into(), seq, vec![b'x'; 10])
    }

    fn ids(batch: &Batch) -> Vec<u64> {
        batch.inserts.iter().map(|(id, _)| *id).collect()
    }

    #[test]
    fn the_bound_drops_what_the_uplink_has_not_taken_yet() {
        let mut s = State::new(Default::default(), 0, 1 << 20, 40);
        s.append(vec![reading(1), reading(2)], 0);
        s.handed_out(Class::Telemetry, 1);
        // 3 x 13 bytes fit; a fourth is over the 40-byte bound.
        s.append(vec![reading(3), reading(4)], 0);
        assert_eq!(s.dropped.get("s"), Some(&1), "one reading dropped");
        let kept = s.snapshot(Class::Telemetry, 0, 10).0;
        let kept: Vec<u64> = kept.iter().map(|m| m.id).collect();
        assert_eq!(kept, [1, 3, 4], "id 1 is with the uplink; id 2 went");
        assert_eq!(s.begin_drop(), 1, "the disk keeps it too");
    }

    #[test]
    fn a_message_acked_while_it_lingers_is_never_written() {
        let mut s = state();
        assert!(
            s.append(vec![reading(1), reading(2)], 0),
            "wakes the writer"
        );
        s.ack(&[1]);
        let batch = s.take(Take::Aged);
        assert_eq!(ids(&batch), [2]);
        assert!(batch.deletes.is_empty(), "nothing of id 1 reached the disk");
        s.committed(batch, Outcome::default());
        assert_eq!(s.accepted().get("s"), Some(&2), "acked and committed count");
    }

    #[test]
    fn an_aged_take_leaves_younger_messages_for_the_next_clock() {
        let mut s = state();
        s.append(vec![reading(1)], 0);
        let started = s.first_staged;
        let batch = s.take(Take::Aged);
        s.append(vec![reading(2)], 0);
        assert_eq!(ids(&batch), [1]);
        s.committed(batch, Outcome::default());
        assert!(s.first_staged.is_some() && s.first_staged >= started);
        assert_eq!(ids(&s.take(Take::Aged)), [2]);
    }

    #[test]
    fn messages_after_the_clock_started_wait_unless_everything_is_taken() {
        let mut s = state();
        s.append(vec![reading(1)], 0);
        s.append(vec![reading(2)], 0);
        let mut all = state();
        all.append(vec![reading(1)], 0);
        all.append(vec![reading(2)], 0);
        assert_eq!(ids(&s.take(Take::Aged)), [1]);
        assert_eq!(ids(&all.take(Take::All)), [1, 2]);
    }

    #[test]
    fn an_ack_of_a_message_being_written_queues_its_deletion() {
        let mut s = state();
        s.append(vec![reading(1)], 0);
        let batch = s.take(Take::All);
        s.ack(&[1]);
        assert!(s.is_deleted(1));
        s.committed(batch, Outcome::default());
        let next = s.take(Take::All);
        assert_eq!(next.deletes, [1]);
    }

    #[test]
    fn a_failed_batch_is_staged_again_and_counted_once() {
        let mut s = state();
        s.append(vec![reading(1)], 0);
        let batch = s.take(Take::All);
        assert!(s.failed(batch, "disk full".into()), "a new episode");
        assert_eq!(s.storage_error(), Some("disk full"));
        let again = s.take(Take::All);
        assert_eq!(ids(&again), [1]);
        assert!(!s.failed(again, "disk full".into()), "the same episode");
        assert_eq!(s.stats([None; 2], 0).storage_faults, 1);
    }

    #[test]
    fn a_drop_that_freed_nothing_is_not_tried_again_until_something_moves() {
        let mut s = state_bounded(20, 1 << 20);
        s.append(vec![reading(1), reading(2)], 0);
        s.handed_out(Class::Telemetry, 2);
        let batch = s.take(Take::All);
        assert!(batch.over > 0, "26 bytes against a bound of 20");
        let outcome = Outcome {
            drop_freed_nothing: true,
            ..Default::default()
        };
        s.committed(batch, outcome);
        assert!(!s.has_work(), "no empty drop transaction in a loop");
        assert_eq!(s.take(Take::All).over, 0);
        s.handed_out(Class::Telemetry, 3);
        assert!(s.has_work(), "the uplink moved: a drop may free something");
    }

    #[test]
    fn an_empty_batch_changes_nothing() {
        let mut s = state();
        s.append(vec![reading(1)], 0);
        s.ack(&[1]);
        assert!(s.take(Take::Aged).is_empty());
    }
}
