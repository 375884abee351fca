//! The feeder: on each connection, sends the retained values (status,
//! states, tree), then streams the outbox in send order while the window of
//! unacknowledged publishes has room.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rumqttc::AsyncClient;
use tokio::sync::Notify;

use super::session::{Origin, Session};
use super::WINDOW;
use crate::outbox::{Cursor, Outbox};

/// Latest retained payload per topic, and which still need sending on the
/// current connection.
#[derive(Default)]
pub struct Retained {
    values: Mutex<BTreeMap<String, (Vec<u8>, bool)>>,
    /// Wakes the feeder when a value changes.
    pub changed: Notify,
}

impl Retained {
    /// Sets a value; it is published now if connected, and again on every
    /// connection.
    pub fn set(&self, topic: String, payload: Vec<u8>) {
        let mut values = self.values.lock().unwrap_or_else(PoisonError::into_inner);
        values.insert(topic, (payload, true));
        drop(values);
        self.changed.notify_one();
    }

    /// Marks every value as unsent (a new connection).
    fn mark_all_dirty(&self) {
        let mut values = self.values.lock().unwrap_or_else(PoisonError::into_inner);
        for (_, dirty) in values.values_mut() {
            *dirty = true;
        }
    }

    /// Takes up to `room` values still to send.
    fn take_dirty(&self, room: usize) -> Vec<(String, Vec<u8>)> {
        let mut values = self.values.lock().unwrap_or_else(PoisonError::into_inner);
        values
            .iter_mut()
            .filter(|(_, (_, dirty))| *dirty)
            .take(room)
            .map(|(topic, (payload, dirty))| {
                *dirty = false;
                (topic.clone(), payload.clone())
            })
            .collect()
    }

    fn put_back(&self, topic: String) {
        let mut values = self.values.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, dirty)) = values.get_mut(&topic) {
            *dirty = true;
        }
    }

    /// True when every value was handed to the client on this connection.
    pub fn all_sent(&self) -> bool {
        let values = self.values.lock().unwrap_or_else(PoisonError::into_inner);
        values.values().all(|(_, dirty)| !dirty)
    }
}

/// Feeds the client forever.
pub async fn feed(
    session: Arc<Session>,
    client: AsyncClient,
    outbox: Outbox,
    retained: Arc<Retained>,
) {
    let mut cursor = Cursor::default();
    let mut epoch_seen = 0;
    loop {
        let (epoch, connected, in_window) = session.window();
        if connected && epoch != epoch_seen {
            epoch_seen = epoch;
            cursor = Cursor::default();
            retained.mark_all_dirty();
        }
        let room = usize::from(WINDOW).saturating_sub(in_window);
        let sent = if connected && room > 0 {
            send(
                &session,
                &client,
                epoch,
                room,
                &outbox,
                &mut cursor,
                &retained,
            )
        } else {
            0
        };
        if sent == 0 {
            tokio::select! {
                _ = session.changed.notified() => {}
                _ = outbox.appended() => {}
                _ = retained.changed.notified() => {}
                // A safety net against a lost wake-up; costs one check a second.
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }
}

fn send(
    session: &Session,
    client: &AsyncClient,
    epoch: u64,
    room: usize,
    outbox: &Outbox,
    cursor: &mut Cursor,
    retained: &Retained,
) -> usize {
    let mut sent = 0;
    for (topic, payload) in retained.take_dirty(room) {
        if !session.publish(client, epoch, Origin::Retained, &topic, true, payload) {
            retained.put_back(topic);
            return sent;
        }
        sent += 1;
    }
    let mut attempt = *cursor;
    for message in outbox.read(&mut attempt, room - sent) {
        // The cursor moves past a message only once it was handed over, so
        // one that was not is read again next time.
        let mut past = *cursor;
        past.advance(&message);
        if !session.publish(
            client,
            epoch,
            Origin::Outbox(message.id),
            &message.topic,
            false,
            message.payload,
        ) {
            return sent;
        }
        *cursor = past;
        sent += 1;
    }
    sent
}
