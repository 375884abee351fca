//! One broker connection's traffic, in one task: encode what the window
//! allows into one buffer and write it with one call, apply every PUBACK
//! that one read brought to the outbox in one call, keep the connection
//! alive with PINGREQ, and notice a broker that stopped answering.
//!
//! Each turn of the loop (at most one per [`TURN`]): apply what was read,
//! fill the send buffer, write it; when there is nothing to write, wait for
//! bytes from the broker, an append to the outbox, a retained value, the
//! keep-alive timer or a stop.
//! Reading is cancel-safe and writing happens outside the `select!`, so no
//! packet is ever half-sent.

use std::sync::atomic::Ordering;

use bytes::BytesMut;
use futures_util::FutureExt;
use rumqttc::mqttbytes::v4::{Disconnect, Packet, PingReq, Subscribe};
use rumqttc::mqttbytes::QoS;
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::sync::watch;
use tokio::time::{sleep_until, timeout, Instant};

use super::connection::{read_packet, ConnectionError, Stream};
use super::feeder::{fill, Cursors, Encoder, Sources};
use super::hooks::{Heard, Tap};
use super::keepalive::{Due, KeepAlive};
use super::session::{Origin, Session};
use super::{Parts, WINDOW};

/// Size the send buffer starts with; it grows for big batches.
const SEND_BUFFER: usize = 16 * 1024;

/// Shortest time between two turns of the loop: what a reading may wait
/// for the next write at most, and the price of one write and one read per
/// turn instead of per reading. Within a turn at most 512 publishes go in a
/// write, so the uplink carries up to 256,000 publishes a second.
const TURN: std::time::Duration = std::time::Duration::from_millis(2);

/// How a connection was lost, and the outbox message sent first among
/// those it left unacknowledged (the suspect when the broker closed the
/// connection over a message it refuses).
pub struct Lost {
    /// Why.
    pub error: ConnectionError,
    /// The first unacknowledged outbox message, by id.
    pub first_unacked: Option<u64>,
    /// It was the only message in flight and the broker closed the
    /// connection (not a timeout): the broker refused that message.
    pub refused_alone: bool,
}

/// Serves one connection until it fails (`Err`) or a stop is asked for
/// (`Ok`, after a DISCONNECT so the broker does not publish the Will).
/// With `suspect` (the first unacknowledged message when the last
/// connection was lost), it sends one publish at a time until that one is
/// through (`Session::one_at_a_time`).
pub async fn serve(
    stream: Box<dyn Stream>,
    incoming: BytesMut,
    parts: &Parts,
    stop: &mut watch::Receiver<bool>,
    suspect: Option<u64>,
) -> Result<(), Lost> {
    let mut wire = Wire::new(stream, incoming, parts);
    if let Some(id) = suspect {
        wire.session = Session::one_at_a_time(WINDOW, id);
    }
    parts.retained.mark_all_dirty();
    let subscribed = wire.subscribe().await;
    let served = match subscribed {
        Ok(()) => turns(&mut wire, parts, stop).await,
        Err(error) => Err(error),
    };
    served.map_err(|error| Lost {
        refused_alone: wire.session.alone_in_flight()
            && matches!(error, ConnectionError::Io { .. }),
        error,
        first_unacked: wire.session.first_unacked_outbox(),
    })
}

async fn turns(
    wire: &mut Wire<'_>,
    parts: &Parts,
    stop: &mut watch::Receiver<bool>,
) -> Result<(), ConnectionError> {
    let mut last_turn = Instant::now();
    loop {
        parts.shared.progress.fetch_add(1, Ordering::Relaxed);
        // At most one turn per TURN: under load each write then carries
        // every publish of the last TURN and each read every PUBACK, instead
        // of a syscall (and a thread wake-up) per reading.
        let next_turn = last_turn + TURN;
        if Instant::now() < next_turn {
            sleep_until(next_turn).await;
        }
        last_turn = Instant::now();
        wire.take_what_was_sent()?;
        if *stop.borrow() {
            return wire.disconnect().await;
        }
        if !wire.publish().await? {
            wire.idle(stop).await?;
        }
    }
}

/// The state of one connection between turns.
struct Wire<'a> {
    reader: ReadHalf<Box<dyn Stream>>,
    writer: WriteHalf<Box<dyn Stream>>,
    /// Bytes read from the broker and not yet parsed into whole packets.
    incoming: BytesMut,
    /// Packets encoded for the next write.
    out: BytesMut,
    session: Session,
    encoder: Encoder,
    cursors: Cursors,
    clock: KeepAlive,
    /// Acknowledged telemetry for `hooks.delivered`.
    tap: Option<Tap>,
    parts: &'a Parts,
}

/// The packet id of the SUBSCRIBE: outside the publishes' pool
/// (`1..=WINDOW`), so it never collides with one.
const SUBSCRIBE_PKID: u16 = u16::MAX;

impl<'a> Wire<'a> {
    fn new(stream: Box<dyn Stream>, incoming: BytesMut, parts: &'a Parts) -> Self {
        let (reader, writer) = tokio::io::split(stream);
        Self {
            reader,
            writer,
            incoming,
            out: BytesMut::with_capacity(SEND_BUFFER),
            session: Session::new(WINDOW),
            encoder: Encoder::new(parts.max_message_size),
            cursors: Cursors::new(parts.replay_rate, parts.outbox.last_id()),
            clock: KeepAlive::new(parts.options.keep_alive, Instant::now()),
            tap: Tap::new(&parts.hooks, parts.outbox.last_id()),
            parts,
        }
    }

    /// Reads whatever the broker already sent (PUBACKs, above all) without
    /// waiting, and applies it: a busy turn must not wait for an idle one
    /// to free the window.
    fn take_what_was_sent(&mut self) -> Result<(), ConnectionError> {
        while let Some(read) = read_some(&mut self.reader, &mut self.incoming).now_or_never() {
            at_least_one_byte(read)?;
        }
        let applied = apply_incoming(
            &mut self.incoming,
            &mut self.session,
            self.tap.as_mut(),
            self.parts,
        )?;
        if let Some(heard) = applied {
            let in_flight = self.session.in_flight() > 0;
            self.clock.heard(Instant::now(), heard.pong, in_flight);
        }
        Ok(())
    }

    /// Encodes what the window allows and writes it with one call; false
    /// when there was nothing to send.
    async fn publish(&mut self) -> Result<bool, ConnectionError> {
        let parts = self.parts;
        fill(
            &mut self.encoder,
            &mut self.session,
            &mut self.cursors,
            Sources {
                outbox: &parts.outbox,
                retained: &parts.retained,
                reporter: &parts.reporter,
            },
            &mut self.out,
            self.tap.as_mut(),
        );
        let in_flight = self.session.in_flight();
        parts.shared.in_flight.store(in_flight, Ordering::Relaxed);
        if self.out.is_empty() {
            return Ok(false);
        }
        self.send().await?;
        self.clock.sent(Instant::now());
        Ok(true)
    }

    /// Waits for bytes from the broker, an append to the outbox, a retained
    /// value, the paced backlog's next turn, the keep-alive timer or a stop.
    async fn idle(&mut self, stop: &mut watch::Receiver<bool>) -> Result<(), ConnectionError> {
        let has_room = self.session.room() > 0;
        let parts = self.parts;
        let backlog_due = self.cursors.backlog_due();
        tokio::select! {
            read = read_some(&mut self.reader, &mut self.incoming) => at_least_one_byte(read),
            _ = sleep_until(backlog_due.unwrap_or_else(Instant::now)), if has_room && backlog_due.is_some() => Ok(()),
            _ = parts.outbox.appended(), if has_room => Ok(()),
            _ = parts.retained.changed.notified(), if has_room => Ok(()),
            _ = stop.changed() => Ok(()),
            _ = sleep_until(self.clock.deadline()) => match self.clock.due(Instant::now()) {
                Due::GiveUp => Err(ConnectionError::Timeout(
                    "the broker stopped answering (no PUBACK or PINGRESP within keep_alive)",
                )),
                Due::Ping => {
                    PingReq.write(&mut self.out).ok();
                    self.send().await?;
                    self.clock.pinged(Instant::now());
                    Ok(())
                }
                Due::Nothing => Ok(()),
            },
        }
    }

    /// Subscribes to the hooks' topics (QoS 0: what comes is a hint, such
    /// as Home Assistant's birth message, and needs no PUBACK).
    async fn subscribe(&mut self) -> Result<(), ConnectionError> {
        let filters = &self.parts.hooks.subscribe;
        let Some((first, rest)) = filters.split_first() else {
            return Ok(());
        };
        let mut subscribe = Subscribe::new(first.as_str(), QoS::AtMostOnce);
        for filter in rest {
            subscribe.add(filter.clone(), QoS::AtMostOnce);
        }
        subscribe.pkid = SUBSCRIBE_PKID;
        subscribe
            .write(&mut self.out)
            .map_err(|e| ConnectionError::Protocol(e.to_string()))?;
        self.send().await
    }

    /// Says goodbye so the broker drops the Will, and closes the stream.
    async fn disconnect(&mut self) -> Result<(), ConnectionError> {
        Disconnect.write(&mut self.out).ok();
        self.send().await?;
        self.writer.shutdown().await.ok();
        Ok(())
    }

    /// Writes `out` with one call (bounded by `keep_alive`: a broker that
    /// stops reading fills the socket and must not hang the uplink), then
    /// clears it.
    async fn send(&mut self) -> Result<(), ConnectionError> {
        let keep_alive = self.parts.options.keep_alive;
        timeout(keep_alive, self.writer.write_all(&self.out))
            .await
            .map_err(|_| ConnectionError::Timeout("the broker stopped reading"))?
            .map_err(ConnectionError::io("write to the broker"))?;
        self.out.clear();
        // A burst (the retained tree and every sensor's state at start, a
        // backlog) can grow the buffer to megabytes; an idle gateway should
        // not keep them.
        if self.out.capacity() > 4 * SEND_BUFFER {
            self.out = BytesMut::with_capacity(SEND_BUFFER);
        }
        Ok(())
    }
}

/// A read of zero bytes is the broker closing the connection.
fn at_least_one_byte(read: std::io::Result<usize>) -> Result<(), ConnectionError> {
    match read.map_err(ConnectionError::io("read from the broker"))? {
        0 => Err(ConnectionError::Io {
            context: "read from the broker",
            source: std::io::ErrorKind::UnexpectedEof.into(),
        }),
        _ => Ok(()),
    }
}

/// Reads what the broker sent, with room for a turn's worth of PUBACKs.
async fn read_some(
    reader: &mut ReadHalf<Box<dyn Stream>>,
    incoming: &mut BytesMut,
) -> std::io::Result<usize> {
    incoming.reserve(READ_CHUNK);
    reader.read_buf(incoming).await
}

/// Bytes asked for per read: 2,048 PUBACKs.
const READ_CHUNK: usize = 8 * 1024;

/// What the packets of one read said, beyond the acks.
struct Turn {
    /// A PINGRESP was among them.
    pong: bool,
}

/// Applies every whole packet read so far: the outbox messages of all the
/// PUBACKs among them are acknowledged in one call. `None` when no whole
/// packet was there.
fn apply_incoming(
    incoming: &mut BytesMut,
    session: &mut Session,
    tap: Option<&mut Tap>,
    parts: &Parts,
) -> Result<Option<Turn>, ConnectionError> {
    let mut acked = Vec::new();
    let mut released = 0u64;
    let mut heard = None;
    while let Some(packet) = read_packet(incoming)? {
        let heard = heard.get_or_insert(Turn { pong: false });
        match packet {
            Packet::PubAck(ack) => match session.acked(ack.pkid) {
                Some(Origin::Outbox(id)) => {
                    acked.push(id);
                    released += 1;
                }
                Some(Origin::Retained) => released += 1,
                None => tracing::debug!(pkid = ack.pkid, "PUBACK for no publish in flight"),
            },
            Packet::PingResp => heard.pong = true,
            Packet::Publish(publish) => {
                if let Some(listener) = &parts.hooks.heard {
                    let heard = Heard {
                        topic: publish.topic,
                        payload: publish.payload,
                    };
                    if listener.try_send(heard).is_err() {
                        tracing::debug!(
                            "a message on a subscribed topic was dropped: its listener is busy"
                        );
                    }
                }
            }
            Packet::SubAck(ack) => {
                use rumqttc::mqttbytes::v4::SubscribeReasonCode;
                if ack.return_codes.contains(&SubscribeReasonCode::Failure) {
                    tracing::warn!(topics = ?parts.hooks.subscribe, "the broker refused a subscription");
                }
            }
            Packet::Disconnect => {
                return Err(ConnectionError::Protocol(
                    "the broker closed the session".into(),
                ))
            }
            other => tracing::debug!(packet = ?other, "unexpected packet from the broker; ignored"),
        }
    }
    if released > 0 {
        if let Some(tap) = tap {
            tap.acked(&acked);
        }
        parts.outbox.ack(&acked);
        parts.shared.acked.fetch_add(released, Ordering::Relaxed);
    }
    Ok(heard)
}
