//! The staged entries of one class, in id order.
//!
//! Ids only grow, entries arrive at the back and mostly leave from the
//! front (acknowledged in send order, or committed oldest first), so a deque
//! with holes does what a `BTreeMap` did for a fraction of the work: a
//! push, a binary search and a few pops per reading instead of tree node
//! updates, and no allocation per entry.

use std::collections::VecDeque;

use super::Entry;

/// Entries by increasing id; a removed entry leaves a hole until the holes
/// before it are gone too.
#[derive(Debug, Default)]
pub struct IdQueue {
    slots: VecDeque<(u64, Option<Entry>)>,
    len: usize,
}

impl IdQueue {
    /// Adds `entry` under `id`, which is above every id queued before.
    pub fn push(&mut self, id: u64, entry: Entry) {
        debug_assert!(self.slots.back().is_none_or(|(last, _)| *last < id));
        self.slots.push_back((id, Some(entry)));
        self.len += 1;
    }

    /// Takes the entry `id` out, if it is here.
    pub fn remove(&mut self, id: u64) -> Option<Entry> {
        let at = self.position(id)?;
        let entry = self.slots[at].1.take()?;
        self.len -= 1;
        while self.slots.front().is_some_and(|(_, e)| e.is_none()) {
            self.slots.pop_front();
        }
        while self.slots.back().is_some_and(|(_, e)| e.is_none()) {
            self.slots.pop_back();
        }
        // Out-of-order removals leave holes behind an entry that stays;
        // never let them outnumber the entries.
        if self.slots.len() > 2 * self.len + 64 {
            self.slots.retain(|(_, e)| e.is_some());
        }
        Some(entry)
    }

    /// Where `id` is. Ids of one class are mostly consecutive (reports
    /// interleave rarely), so its distance from the first id is tried
    /// before a binary search.
    fn position(&self, id: u64) -> Option<usize> {
        let first = self.slots.front()?.0;
        let guess = usize::try_from(id.checked_sub(first)?).ok()?;
        if self.slots.get(guess).is_some_and(|(at, _)| *at == id) {
            return Some(guess);
        }
        self.slots.binary_search_by_key(&id, |(id, _)| *id).ok()
    }

    /// How many entries are queued.
    pub fn len(&self) -> usize {
        self.len
    }

    /// The oldest entry.
    pub fn first(&self) -> Option<&Entry> {
        self.slots.iter().find_map(|(_, e)| e.as_ref())
    }

    /// Entries with ids above `after`, in id order.
    pub fn after(&self, after: u64) -> impl Iterator<Item = (u64, &Entry)> {
        let from = self.slots.partition_point(|(id, _)| *id <= after);
        present(self.slots.range(from..))
    }

    /// Entries with ids up to `upto`, in id order.
    pub fn through(&self, upto: u64) -> impl Iterator<Item = (u64, &Entry)> {
        let to = self.slots.partition_point(|(id, _)| *id <= upto);
        present(self.slots.range(..to))
    }
}

fn present<'a>(
    slots: impl Iterator<Item = &'a (u64, Option<Entry>)>,
) -> impl Iterator<Item = (u64, &'a Entry)> {
    slots.filter_map(|(id, e)| e.as_ref().map(|e| (*id, e)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbox::Class;

    fn entry(seq: u64) -> Entry {
        Entry {
            class: Class::Telemetry,
            sensor: "s".into(),
            topic: "t".into(),
            payload: bytes::Bytes::new(),
            seq: Some(seq),
            created: 0,
        }
    }

    fn ids<'a>(it: impl Iterator<Item = (u64, &'a Entry)>) -> Vec<u64> {
        it.map(|(id, _)| id).collect()
    }

    #[test]
    fn removals_in_any_order_keep_the_rest_in_id_order() {
        let mut q = IdQueue::default();
        for id in 1..=6 {
            q.push(id, entry(id));
        }
        assert_eq!(q.remove(3).and_then(|e| e.seq), Some(3));
        assert!(q.remove(3).is_none(), "gone already");
        assert!(q.remove(42).is_none(), "never here");
        assert_eq!(q.remove(1).and_then(|e| e.seq), Some(1));
        assert_eq!(q.len(), 4);
        assert_eq!(ids(q.after(0)), [2, 4, 5, 6]);
        assert_eq!(ids(q.after(3)), [4, 5, 6]);
        assert_eq!(ids(q.through(4)), [2, 4]);
        assert_eq!(q.first().and_then(|e| e.seq), Some(2));
        q.remove(6);
        q.push(7, entry(7));
        assert_eq!(ids(q.after(0)), [2, 4, 5, 7]);
    }

    #[test]
    fn ids_with_gaps_are_found_too() {
        let mut q = IdQueue::default();
        for id in [3, 4, 9, 10, 11, 20] {
            q.push(id, entry(id));
        }
        for id in [10, 20, 3, 11] {
            assert_eq!(q.remove(id).and_then(|e| e.seq), Some(id), "id {id}");
        }
        assert!(q.remove(2).is_none() && q.remove(5).is_none() && q.remove(u64::MAX).is_none());
        assert_eq!(ids(q.after(0)), [4, 9]);
    }

    #[test]
    fn holes_behind_a_stuck_entry_do_not_pile_up() {
        let mut q = IdQueue::default();
        for id in 1..=10_000 {
            q.push(id, entry(id));
        }
        // The first and the last stay; everything between is acknowledged.
        for id in 2..10_000 {
            q.remove(id);
        }
        assert_eq!(q.len(), 2);
        assert!(q.slots.len() <= 2 * q.len() + 64, "{} slots", q.slots.len());
        assert_eq!(ids(q.after(0)), [1, 10_000]);
        q.remove(1);
        q.remove(10_000);
        assert!(q.slots.is_empty());
    }
}
