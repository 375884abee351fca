//! One connection of the edge node's session: subscribe to NCMD, DCMD and
//! the primary host's STATE, publish the births as the first messages,
//! then whatever the node makes of the inputs and the broker's commands;
//! keep the connection alive. Reading is cancel-safe and writing happens
//! outside the `select!`, so no packet is ever half-sent. A stop sends the
//! last readings, NDEATH and DISCONNECT.

use bytes::BytesMut;
use prost::Message;
use rumqttc::mqttbytes::v4::{Disconnect, Packet, PingReq, PubAck, Publish, Subscribe};
use rumqttc::mqttbytes::QoS;
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::time::{sleep_until, timeout, Instant};

use super::commands::{host_online, rebirth_asked};
use super::inputs::{Input, Inputs};
use super::node::{Node, Outgoing};
use super::session::{apply, now, Ended, Settings};
use crate::uplink::{self, ConnectionError, Due, KeepAlive, Stream};

/// One connection.
pub struct Conn {
    reader: ReadHalf<Box<dyn Stream>>,
    writer: WriteHalf<Box<dyn Stream>>,
    incoming: BytesMut,
    out: BytesMut,
    clock: KeepAlive,
    keep_alive: std::time::Duration,
}

impl Conn {
    /// A connection just opened (after its CONNACK).
    pub fn new(
        stream: Box<dyn Stream>,
        incoming: BytesMut,
        keep_alive: std::time::Duration,
    ) -> Self {
        let (reader, writer) = tokio::io::split(stream);
        Self {
            reader,
            writer,
            incoming,
            out: BytesMut::with_capacity(4096),
            clock: KeepAlive::new(keep_alive, Instant::now()),
            keep_alive,
        }
    }

    /// Serves the connection until a stop, the primary host going
    /// offline, or an error.
    pub async fn serve(
        &mut self,
        node: &mut Node,
        settings: &Settings,
        inputs: &mut Inputs,
    ) -> Result<Ended, ConnectionError> {
        let topics = node.topics().clone();
        let mut subscribe = Subscribe::new(topics.node("NCMD"), QoS::AtLeastOnce);
        subscribe.add(topics.device("DCMD", "+"), QoS::AtLeastOnce);
        if let Some(host) = &settings.primary_host {
            subscribe.add(format!("spBv1.0/STATE/{host}"), QoS::AtLeastOnce);
        }
        subscribe.pkid = 1;
        encode(subscribe.write(&mut self.out))?;
        if settings.primary_host.is_none() {
            let births = node.birth(now());
            self.queue(&births)?;
        }
        self.send().await?;
        loop {
            let input = tokio::select! {
                read = self.reader.read_buf(&mut self.incoming) => {
                    if read.map_err(ConnectionError::io("read from the broker"))? == 0 {
                        return Err(ConnectionError::Io {
                            context: "read from the broker",
                            source: std::io::ErrorKind::UnexpectedEof.into(),
                        });
                    }
                    if let Some(ended) = self.incoming(node, settings)? {
                        self.goodbye(node).await?;
                        return Ok(ended);
                    }
                    None
                }
                input = inputs.next() => Some(input),
                _ = sleep_until(self.clock.deadline()) => {
                    match self.clock.due(Instant::now()) {
                        Due::GiveUp => return Err(ConnectionError::Timeout(
                            "the broker stopped answering (no PINGRESP within keep_alive)",
                        )),
                        Due::Ping => {
                            PingReq.write(&mut self.out).ok();
                            self.clock.pinged(Instant::now());
                        }
                        Due::Nothing => {}
                    }
                    None
                }
            };
            match input {
                Some(Input::Stop) => {
                    let last = node.readings(inputs.delivered_now(), now());
                    self.queue(&last)?;
                    self.goodbye(node).await?;
                    return Ok(Ended::Stopped);
                }
                Some(input) => {
                    let out = apply(node, input, now());
                    self.queue(&out)?;
                }
                None => {}
            }
            if !self.out.is_empty() {
                self.send().await?;
            }
        }
    }

    /// Handles every whole packet read: commands, the host's STATE, pongs.
    fn incoming(
        &mut self,
        node: &mut Node,
        settings: &Settings,
    ) -> Result<Option<Ended>, ConnectionError> {
        let mut pong = false;
        while let Some(packet) = uplink::read_packet(&mut self.incoming)? {
            match packet {
                Packet::PingResp => pong = true,
                Packet::Publish(publish) => {
                    if publish.qos != QoS::AtMostOnce {
                        encode(PubAck::new(publish.pkid).write(&mut self.out))?;
                    }
                    if let Some(ended) = self.command(&publish, node, settings)? {
                        return Ok(Some(ended));
                    }
                }
                Packet::SubAck(ack) => {
                    use rumqttc::mqttbytes::v4::SubscribeReasonCode;
                    if ack.return_codes.contains(&SubscribeReasonCode::Failure) {
                        tracing::warn!("the broker refused a Sparkplug subscription (NCMD, DCMD or STATE); check its ACL");
                    }
                }
                Packet::Disconnect => {
                    return Err(ConnectionError::Protocol(
                        "the broker closed the session".into(),
                    ))
                }
                _ => {}
            }
        }
        self.clock.heard(Instant::now(), pong, false);
        Ok(None)
    }

    /// NCMD `Node Control/Rebirth` = true: births again. STATE of the
    /// primary host: births when it comes online, NDEATH and a new session
    /// when it goes offline. DCMD: nothing to write to, logged.
    fn command(
        &mut self,
        publish: &Publish,
        node: &mut Node,
        settings: &Settings,
    ) -> Result<Option<Ended>, ConnectionError> {
        let topics = node.topics().clone();
        if publish.topic == topics.node("NCMD") {
            if rebirth_asked(&publish.payload) && node.is_online() {
                tracing::info!("Sparkplug rebirth requested (NCMD)");
                let births = node.birth(now());
                self.queue(&births)?;
            }
        } else if let Some(host) = &settings.primary_host {
            if publish.topic == format!("spBv1.0/STATE/{host}") {
                match (host_online(&publish.payload), node.is_online()) {
                    (true, false) => {
                        tracing::info!(host = %host, "Sparkplug primary host online: births");
                        let births = node.birth(now());
                        self.queue(&births)?;
                    }
                    (false, true) => {
                        tracing::info!(host = %host, "Sparkplug primary host offline: NDEATH, new session");
                        return Ok(Some(Ended::HostOffline));
                    }
                    _ => {}
                }
            }
        } else {
            tracing::debug!(topic = %publish.topic, "Sparkplug command ignored (no writable metrics)");
        }
        Ok(None)
    }

    /// Encodes messages (QoS 0, not retained) into the send buffer.
    fn queue(&mut self, messages: &[Outgoing]) -> Result<(), ConnectionError> {
        for message in messages {
            let publish = Publish::new(
                message.topic.as_str(),
                QoS::AtMostOnce,
                message.payload.encode_to_vec(),
            );
            encode(publish.write(&mut self.out))?;
        }
        Ok(())
    }

    /// NDEATH, then DISCONNECT (which suppresses the Will).
    async fn goodbye(&mut self, node: &Node) -> Result<(), ConnectionError> {
        let death = node.death(now());
        self.queue(&[death])?;
        Disconnect.write(&mut self.out).ok();
        self.send().await?;
        self.writer.shutdown().await.ok();
        Ok(())
    }

    /// Writes the buffer, bounded by keep_alive (a broker that stops
    /// reading must not hang the node).
    async fn send(&mut self) -> Result<(), ConnectionError> {
        timeout(self.keep_alive, self.writer.write_all(&self.out))
            .await
            .map_err(|_| ConnectionError::Timeout("the broker stopped reading"))?
            .map_err(ConnectionError::io("write to the broker"))?;
        self.out.clear();
        Ok(())
    }
}

fn encode<T>(written: Result<T, rumqttc::mqttbytes::Error>) -> Result<(), ConnectionError> {
    written
        .map(|_| ())
        .map_err(|e| ConnectionError::Protocol(e.to_string()))
}
