//! The in-memory outbox backend: bounded by bytes, lost on power loss. Used
//! where no durable store is wanted (tests, the demo) and as the model the
//! SQLite backend must behave like.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bytes::Bytes;
use tokio::time::Instant;

use super::{Backend, Class, ClassFigures, Cursor, Message, Stats, Stored};

/// The in-memory backend. Every call is short and never touches a disk, so
/// one mutex around the queues is all the locking it needs.
pub struct MemoryStore {
    queues: Mutex<Queues>,
}

/// Messages in two id-ordered queues, one per class.
struct Queues {
    max_bytes: u64,
    next_id: u64,
    bytes: u64,
    queues: [BTreeMap<u64, Entry>; 2],
    dropped: BTreeMap<String, u64>,
    dropped_by_class: [u64; 2],
    accepted: BTreeMap<String, u64>,
}

struct Entry {
    sensor: Arc<str>,
    topic: Arc<str>,
    payload: Bytes,
    arrived: Instant,
}

impl Entry {
    fn size(&self) -> u64 {
        (self.topic.len() + self.payload.len()) as u64
    }
}

impl MemoryStore {
    /// An empty store that holds at most `max_bytes` of topics and payloads.
    pub fn new(max_bytes: u64) -> Self {
        Self {
            queues: Mutex::new(Queues::new(max_bytes)),
        }
    }

    /// The queues. A panic while holding the lock leaves them consistent
    /// (every method updates `bytes` with the queue it changes), so a
    /// poisoned lock is taken over rather than spreading the panic.
    fn lock(&self) -> MutexGuard<'_, Queues> {
        self.queues.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Backend for MemoryStore {
    fn append(&self, batch: Vec<Message>) {
        self.lock().append(batch);
    }

    fn read(&self, cursor: Cursor, limit: usize) -> Vec<Stored> {
        self.lock().read(cursor, limit)
    }

    fn ack(&self, ids: &[u64]) {
        self.lock().ack(ids);
    }

    fn stats(&self) -> Stats {
        self.lock().stats()
    }

    /// Nothing to wait for: memory is as durable as this backend gets.
    fn sync(&self) {}

    fn accepted(&self) -> BTreeMap<String, u64> {
        self.lock().accepted.clone()
    }

    fn last_id(&self) -> u64 {
        self.lock().next_id - 1
    }
}

impl Queues {
    fn new(max_bytes: u64) -> Self {
        Self {
            max_bytes,
            next_id: 1,
            bytes: 0,
            queues: [BTreeMap::new(), BTreeMap::new()],
            dropped: BTreeMap::new(),
            dropped_by_class: [0; 2],
            accepted: BTreeMap::new(),
        }
    }

    /// Drops the oldest telemetry (then the oldest reports) until under the bound.
    fn enforce_bound(&mut self) {
        while self.bytes > self.max_bytes {
            let class = if self.queues[Class::Telemetry as usize].is_empty() {
                Class::Report
            } else {
                Class::Telemetry
            };
            let Some((_, entry)) = self.queues[class as usize].pop_first() else {
                break;
            };
            self.bytes -= entry.size();
            *self.dropped.entry(entry.sensor.to_string()).or_default() += 1;
            self.dropped_by_class[class as usize] += 1;
        }
    }

    fn append(&mut self, batch: Vec<Message>) {
        let now = Instant::now();
        for m in batch {
            let id = self.next_id;
            self.next_id += 1;
            if m.class == Class::Telemetry {
                if let Some(seq) = m.seq {
                    let best = self.accepted.entry(m.sensor.to_string()).or_default();
                    *best = (*best).max(seq);
                }
            }
            let entry = Entry {
                sensor: m.sensor,
                topic: m.topic,
                payload: m.payload,
                arrived: now,
            };
            self.bytes += entry.size();
            self.queues[m.class as usize].insert(id, entry);
        }
        self.enforce_bound();
    }

    fn read(&self, cursor: Cursor, limit: usize) -> Vec<Stored> {
        let mut out = Vec::with_capacity(limit.min(1024));
        for (class, after) in [
            (Class::Report, cursor.report),
            (Class::Telemetry, cursor.telemetry),
        ] {
            let queue = &self.queues[class as usize];
            for (id, e) in queue
                .range(after.saturating_add(1)..)
                .take(limit - out.len())
            {
                out.push(Stored {
                    id: *id,
                    class,
                    topic: e.topic.clone(),
                    payload: e.payload.clone(),
                });
            }
        }
        out
    }

    fn ack(&mut self, ids: &[u64]) {
        for id in ids {
            for queue in &mut self.queues {
                if let Some(e) = queue.remove(id) {
                    self.bytes -= e.size();
                }
            }
        }
    }

    fn stats(&self) -> Stats {
        let depth = self.queues.iter().map(|q| q.len() as u64).sum();
        // Ids grow with arrival, so each queue's first entry is its oldest.
        let oldest_age = self
            .queues
            .iter()
            .filter_map(|q| q.values().next())
            .map(|e| e.arrived.elapsed())
            .max();
        let classes = [0, 1].map(|c| ClassFigures {
            messages: self.queues[c].len() as u64,
            bytes: self.queues[c].values().map(Entry::size).sum(),
            oldest_age: self.queues[c].values().next().map(|e| e.arrived.elapsed()),
            dropped: self.dropped_by_class[c],
            set_aside: 0, // counted by the handle
        });
        Stats {
            depth,
            bytes: self.bytes,
            oldest_age,
            dropped: self.dropped.clone(),
            storage_error: None,
            storage_faults: 0,
            commits: 0,
            fsyncs: 0,
            classes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(class: Class, sensor: &str, n: usize) -> Message {
        Message {
            class,
            sensor: sensor.into(),
            topic: format!("t/{sensor}").into(),
            seq: None,
            payload: vec![b'x'; n].into(),
        }
    }

    #[test]
    fn reports_come_before_telemetry_each_oldest_first() {
        let s = MemoryStore::new(1 << 20);
        s.append(vec![
            msg(Class::Telemetry, "a", 1),
            msg(Class::Report, "a", 1),
            msg(Class::Telemetry, "b", 1),
        ]);
        let ids: Vec<u64> = s.read(Cursor::default(), 10).iter().map(|m| m.id).collect();
        assert_eq!(ids, [2, 1, 3]);
        let ids: Vec<u64> = s
            .read(
                Cursor {
                    report: 2,
                    telemetry: 1,
                },
                10,
            )
            .iter()
            .map(|m| m.id)
            .collect();
        assert_eq!(ids, [3]);
    }

    #[test]
    fn unacked_messages_are_read_again_from_a_fresh_cursor() {
        let s = MemoryStore::new(1 << 20);
        s.append((0..5).map(|_| msg(Class::Telemetry, "a", 1)).collect());
        s.ack(&[1, 3]);
        let ids: Vec<u64> = s.read(Cursor::default(), 10).iter().map(|m| m.id).collect();
        assert_eq!(ids, [2, 4, 5]);
    }

    #[test]
    fn past_the_bound_the_oldest_telemetry_goes_first_and_is_counted() {
        let s = MemoryStore::new(300);
        s.append(vec![msg(Class::Report, "r", 90)]);
        s.append((0..4).map(|_| msg(Class::Telemetry, "a", 90)).collect());
        let stats = s.stats();
        assert!(stats.bytes <= 300);
        assert_eq!(stats.dropped.get("a"), Some(&2));
        let ids: Vec<u64> = s.read(Cursor::default(), 10).iter().map(|m| m.id).collect();
        assert_eq!(
            ids,
            [1, 4, 5],
            "the report survives, the oldest telemetry does not"
        );
    }

    #[test]
    fn oldest_age_follows_what_is_still_held() {
        let s = MemoryStore::new(1 << 20);
        assert_eq!(s.stats().oldest_age, None);
        s.append(vec![
            msg(Class::Telemetry, "a", 1),
            msg(Class::Report, "a", 1),
        ]);
        assert!(s.stats().oldest_age.is_some());
        s.ack(&[1, 2]);
        assert_eq!(s.stats().oldest_age, None, "nothing held, no age");
    }
}
