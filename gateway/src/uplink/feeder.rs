//! What the uplink sends: on each connection the retained values (status,
//! states, tree) first, then the outbox in send order, while the window of
//! unacknowledged publishes has room; encoded straight into the send buffer.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::{Bytes, BytesMut};
use rumqttc::mqttbytes::v4::Publish;
use rumqttc::mqttbytes::QoS;
use tokio::sync::Notify;

use tokio::time::Instant;

use super::replay::Replay;
use super::session::{Origin, Session};
use crate::outbox::{Cursor, Outbox, Stored};

/// Latest retained value per topic, and which still need sending on the
/// current connection. Kept payloads are stored at their exact size and
/// shared with the send buffer's encoder, not copied per send.
#[derive(Default)]
pub struct Retained {
    values: Mutex<BTreeMap<String, (Value, bool)>>,
    /// Wakes the feeder when a value changes.
    pub changed: Notify,
}

/// Makes a retained payload from live state when it is sent.
pub type Render = Arc<dyn Fn() -> Vec<u8> + Send + Sync>;

/// How a retained payload is had when it is sent.
#[derive(Clone)]
enum Value {
    /// Bytes kept as they were set (status, states: small).
    Kept(Bytes),
    /// Rendered from live state at each send. The tree's JSON grows with
    /// the sensors (about 300 bytes each): kept between sends it would cost
    /// that much memory per idle sensor for a value that is stale anyway.
    Rendered(Render),
}

impl Value {
    fn payload(self) -> Bytes {
        match self {
            Value::Kept(bytes) => bytes,
            Value::Rendered(render) => Bytes::from(render()),
        }
    }
}

impl Retained {
    /// Sets a value; it is published now if connected, and again on every
    /// connection.
    pub fn set(&self, topic: String, mut payload: Vec<u8>) {
        payload.shrink_to_fit();
        self.set_value(topic, Value::Kept(Bytes::from(payload)));
    }

    /// Sets (or marks changed) a value rendered when it is sent.
    pub fn set_rendered(&self, topic: String, render: Render) {
        self.set_value(topic, Value::Rendered(render));
    }

    fn set_value(&self, topic: String, value: Value) {
        let mut values = self.values.lock().unwrap_or_else(PoisonError::into_inner);
        values.insert(topic, (value, true));
        drop(values);
        self.changed.notify_one();
    }

    /// Marks every value as unsent (a new connection).
    pub fn mark_all_dirty(&self) {
        let mut values = self.values.lock().unwrap_or_else(PoisonError::into_inner);
        for (_, dirty) in values.values_mut() {
            *dirty = true;
        }
    }

    /// Takes up to `room` values still to send; they are rendered by the
    /// caller, outside the lock.
    fn take_dirty(&self, room: usize) -> Vec<(String, Value)> {
        let mut values = self.values.lock().unwrap_or_else(PoisonError::into_inner);
        values
            .iter_mut()
            .filter(|(_, (_, dirty))| *dirty)
            .take(room)
            .map(|(topic, (value, dirty))| {
                *dirty = false;
                (topic.clone(), value.clone())
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

/// Most publishes encoded for one write (one turn, at most every 2 ms):
/// bounds the send buffer (about 128 KiB) while a backlog replays; the
/// window bounds what is in flight.
const MAX_PER_WRITE: usize = 512;

/// Where one connection has read the outbox to.
pub struct Cursors {
    /// Reports, and telemetry oldest first (the backlog, with a replay rate).
    backlog: Cursor,
    /// With `upstream.replay_rate`: the live stream and the backlog's pace.
    replay: Option<Replay>,
}

impl Cursors {
    /// Cursors for a new connection; with a replay rate, the backlog is
    /// what the outbox holds up to `last_id`.
    pub fn new(replay_rate: Option<u32>, last_id: u64) -> Self {
        Self {
            backlog: Cursor::default(),
            replay: replay_rate.map(|rate| Replay::new(rate, last_id, Instant::now())),
        }
    }

    /// When the paced backlog may send again, if it has more to send.
    pub fn backlog_due(&self) -> Option<Instant> {
        self.replay.as_ref()?.next_at(&self.backlog)
    }

    /// Up to `room` outbox messages to send now: reports, then (with a
    /// replay rate) live telemetry, then the backlog as its pace allows.
    /// `in_order` (the session sends one at a time to find a message the
    /// broker refuses, `Session::one_at_a_time`) sends everything in id
    /// order, as without a rate: the suspect is then the next one out.
    fn read(&mut self, outbox: &Outbox, room: usize, in_order: bool) -> Vec<Stored> {
        let Some(replay) = &mut self.replay else {
            return outbox.read(&mut self.backlog, room);
        };
        if in_order {
            let messages = outbox.read(&mut self.backlog, room);
            let live = replay.live();
            live.telemetry = live.telemetry.max(self.backlog.telemetry);
            return messages;
        }
        let mut reports = Cursor {
            report: self.backlog.report,
            telemetry: u64::MAX,
        };
        let mut messages = outbox.read(&mut reports, room);
        self.backlog.report = reports.report;
        let left = room - messages.len().min(room);
        messages.extend(outbox.read(replay.live(), left));
        let left = room - messages.len().min(room);
        let now = Instant::now();
        let paced = replay.take(&self.backlog, left, now);
        if paced > 0 {
            let through = replay.backlog_through();
            let mut backlog = Cursor {
                report: u64::MAX,
                telemetry: self.backlog.telemetry,
            };
            let read = outbox.read(&mut backlog, paced);
            let before = messages.len();
            messages.extend(read.into_iter().filter(|m| m.id <= through));
            replay.read_came_back(paced, messages.len() - before, now);
            self.backlog.telemetry = backlog.telemetry.min(through);
        }
        messages
    }
}

/// Encodes into `out` what may be sent now: retained values still unsent on
/// this connection, then outbox messages after `cursors` in send order, as
/// many as the session's window has room for. Returns how many.
/// Messages too big to send are set aside with a report by `reporter`.
// The connection's parts one by one, not `Wire`: `fill` borrows each of
// them differently while the caller holds the rest.
#[allow(clippy::too_many_arguments)]
pub fn fill(
    encoder: &mut Encoder,
    session: &mut Session,
    cursors: &mut Cursors,
    outbox: &Outbox,
    retained: &Retained,
    out: &mut BytesMut,
    reporter: &super::Reporter,
    mut tap: Option<&mut super::hooks::Tap>,
) -> usize {
    let mut sent = 0;
    for (topic, value) in retained.take_dirty(session.room()) {
        let Some(pkid) = session.start(Origin::Retained) else {
            retained.put_back(topic);
            break;
        };
        if encoder.encode(out, &topic, value.payload(), pkid, true) {
            sent += 1;
        } else {
            session.acked(pkid);
        }
    }
    let room = session.room().min(MAX_PER_WRITE);
    if room == 0 {
        return sent;
    }
    let mut undeliverable = Vec::new();
    let in_order = session.is_one_at_a_time();
    for message in cursors.read(outbox, room, in_order) {
        let Some(pkid) = session.start(Origin::Outbox(message.id)) else {
            // Cannot happen (the read was limited to the room); should it,
            // a fresh cursor on the next connection sends the message.
            break;
        };
        let bytes = message.payload.len();
        if let Some(tap) = tap.as_deref_mut() {
            tap.sent(&message);
        }
        if encoder.encode(out, &message.topic, message.payload, pkid, false) {
            sent += 1;
        } else {
            session.acked(pkid);
            undeliverable.push((message.id, message.topic, bytes));
        }
    }
    // A message that cannot be sent would block the outbox forever.
    for (id, topic, bytes) in undeliverable {
        let described = super::refused::Described {
            topic: &topic,
            bytes,
        };
        super::refused::set_aside(outbox, reporter, id, Some(described), &encoder.too_big());
    }
    sent
}

/// Encodes QoS 1 PUBLISH packets with rumqttc's `mqttbytes`, reusing one
/// packet (and its topic's buffer) so a message costs no allocation here.
pub struct Encoder {
    publish: Publish,
    /// The largest PUBLISH packet to send (`upstream.max_message_size`).
    max: usize,
}

impl Default for Encoder {
    fn default() -> Self {
        Self::new(usize::MAX)
    }
}

impl Encoder {
    /// An encoder that refuses packets over `max` bytes.
    pub fn new(max: usize) -> Self {
        Self {
            publish: Publish::from_bytes(String::new(), QoS::AtLeastOnce, Bytes::new()),
            max,
        }
    }

    /// Why a message was not encoded.
    fn too_big(&self) -> String {
        format!(
            "larger than upstream.max_message_size ({} bytes) or than MQTT can carry",
            self.max
        )
    }

    /// Appends one PUBLISH to `out`; false (logged) if MQTT cannot carry it
    /// (a topic over 64 KiB or a payload over 256 MiB).
    fn encode(
        &mut self,
        out: &mut BytesMut,
        topic: &str,
        payload: Bytes,
        pkid: u16,
        retain: bool,
    ) -> bool {
        let publish = &mut self.publish;
        if publish.topic != topic {
            publish.topic.clear();
            publish.topic.push_str(topic);
        }
        // Topic length, topic, packet id, payload: what a broker compares
        // with its limit (the fixed header aside).
        if 2 + topic.len() + 2 + payload.len() > self.max {
            tracing::error!(%topic, bytes = payload.len(), max = self.max, "message larger than upstream.max_message_size");
            return false;
        }
        publish.payload = payload;
        publish.pkid = pkid;
        publish.retain = retain;
        let written = publish.write(out);
        publish.payload = Bytes::new();
        match written {
            Ok(_) => true,
            Err(error) => {
                tracing::error!(%topic, %error, "message cannot be sent over MQTT; dropped");
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reused_encoder_writes_what_a_fresh_packet_would() {
        let mut encoder = Encoder::default();
        let mut out = BytesMut::new();
        let cases = [
            ("edgevisor/gw/telemetry/a", &b"{\"seq\":1}"[..], 1, false),
            ("edgevisor/gw/telemetry/a", &b"{\"seq\":2}"[..], 2, false),
            ("edgevisor/gw/status", &b"{}"[..], 65535, true),
            ("t", &[0u8; 300][..], 7, false),
        ];
        for (topic, payload, pkid, retain) in cases {
            out.clear();
            assert!(encoder.encode(
                &mut out,
                topic,
                Bytes::copy_from_slice(payload),
                pkid,
                retain
            ));
            let mut fresh = Publish::new(topic, QoS::AtLeastOnce, payload);
            fresh.pkid = pkid;
            fresh.retain = retain;
            let mut expected = BytesMut::new();
            fresh.write(&mut expected).unwrap();
            assert_eq!(out, expected);
        }
    }
}
