//! The edge node's own MQTT session (client id `<client_id>-spb`, same
//! broker, credentials and TLS as the uplink): connect with a fresh bdSeq
//! and its NDEATH as the Will, subscribe to NCMD, DCMD and the primary
//! host's STATE, publish the births as the first messages, then whatever
//! the node makes of the inputs; reconnect with backoff (the inputs keep
//! being taken meanwhile, queued by the node). A stop sends the last
//! readings, NDEATH and DISCONNECT.

use bytes::BytesMut;
use prost::Message;
use rumqttc::mqttbytes::v4::{Disconnect, LastWill, Packet, PingReq, PubAck, Publish, Subscribe};
use rumqttc::mqttbytes::QoS;
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::time::{sleep_until, timeout, Instant};

use super::bdseq::BdSeq;
use super::inputs::{Input, Inputs};
use super::node::{Node, Outgoing, REBIRTH};
use super::payload::millis;
use super::proto::{metric, Payload};
use crate::config::UpstreamConfig;
use crate::uplink::{self, ConnectOptions, ConnectionError, Due, KeepAlive, Stream};

/// What the session needs besides the node.
pub struct Settings {
    /// `[upstream]` with the client id of this session.
    pub upstream: UpstreamConfig,
    /// `sparkplug.primary_host`.
    pub primary_host: Option<String>,
}

/// How a connection ended without an error.
enum Ended {
    /// The service stops.
    Stopped,
    /// The primary host went offline: NDEATH was sent, connect again.
    HostOffline,
}

/// Runs the node's session until the stop.
pub async fn run(mut node: Node, mut bdseq: BdSeq, settings: Settings, mut inputs: Inputs) {
    let broker = format!(
        "{}:{}",
        settings.upstream.url.host, settings.upstream.url.port
    );
    let mut failures = 0u32;
    loop {
        if inputs.stopping() {
            return;
        }
        let (bd_seq, stored) = bdseq.next();
        if let Err(error) = stored {
            tracing::warn!(%error, bd_seq, "cannot store the Sparkplug bdSeq in state_dir; a restart may repeat it");
        }
        node.connecting(bd_seq);
        let result = match options(&node, &settings) {
            Ok(options) => match uplink::open(&options).await {
                Ok((stream, incoming)) => {
                    failures = 0;
                    tracing::info!(%broker, bd_seq, "Sparkplug session connected");
                    let mut conn = Conn::new(stream, incoming, options.keep_alive);
                    let served = conn.serve(&mut node, &settings, &mut inputs).await;
                    node.offline();
                    served.map_err(|e| e.to_string())
                }
                Err(error) => Err(error.to_string()),
            },
            Err(error) => Err(error.to_string()),
        };
        let delay = match result {
            Ok(Ended::Stopped) => return,
            Ok(Ended::HostOffline) => std::time::Duration::from_millis(100),
            Err(error) => {
                failures += 1;
                let delay = uplink::reconnect_delay(failures);
                tracing::warn!(%broker, %error, retry_in = ?delay, queued = node.queued(), "Sparkplug session down; readings wait in memory");
                delay
            }
        };
        if !wait(delay, &mut node, &mut inputs).await {
            return;
        }
    }
}

/// Takes inputs (the node queues them) for `delay`; false at a stop.
async fn wait(delay: std::time::Duration, node: &mut Node, inputs: &mut Inputs) -> bool {
    let until = Instant::now() + delay;
    loop {
        tokio::select! {
            _ = sleep_until(until) => return true,
            input = inputs.next() => match input {
                Input::Stop => return false,
                input => { apply(node, input, now()); }
            },
        }
    }
}

/// What the node makes of an input (nothing to send while offline).
fn apply(node: &mut Node, input: Input, now_ms: u64) -> Vec<Outgoing> {
    match input {
        Input::Readings(readings) => node.readings(readings, now_ms),
        Input::Sensor(sensor, alive) => node.sensor(&sensor, alive, now_ms),
        Input::Fields(fields) => {
            node.set_fields(fields);
            Vec::new()
        }
        Input::Stop => Vec::new(),
    }
}

fn now() -> u64 {
    millis(std::time::SystemTime::now())
}

/// The upstream's options with this session's Will: the NDEATH, QoS 1,
/// not retained (Sparkplug 3.0).
fn options(node: &Node, settings: &Settings) -> Result<ConnectOptions, uplink::OptionsError> {
    let death = node.death(now());
    let mut options = uplink::connect_options(&settings.upstream, String::new(), Vec::new())?;
    options.connect.last_will = Some(LastWill::new(
        death.topic,
        death.payload.encode_to_vec(),
        QoS::AtLeastOnce,
        false,
    ));
    Ok(options)
}

/// One connection.
struct Conn {
    reader: ReadHalf<Box<dyn Stream>>,
    writer: WriteHalf<Box<dyn Stream>>,
    incoming: BytesMut,
    out: BytesMut,
    clock: KeepAlive,
    keep_alive: std::time::Duration,
}

impl Conn {
    fn new(stream: Box<dyn Stream>, incoming: BytesMut, keep_alive: std::time::Duration) -> Self {
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

    async fn serve(
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

/// An NCMD payload with `Node Control/Rebirth` = true.
fn rebirth_asked(payload: &[u8]) -> bool {
    Payload::decode(payload).is_ok_and(|p| {
        p.metrics.iter().any(|m| {
            m.name.as_deref() == Some(REBIRTH) && m.value == Some(metric::Value::BooleanValue(true))
        })
    })
}

/// A Sparkplug 3.0 STATE payload (`{"online": true, "timestamp": ..}`)
/// that says online.
fn host_online(payload: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(payload)
        .is_ok_and(|v| v.get("online") == Some(&serde_json::Value::Bool(true)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sparkplug::payload::boolean;

    #[test]
    fn only_a_true_rebirth_metric_asks_for_births() {
        let ask = |value| {
            Payload {
                metrics: vec![boolean(REBIRTH, value, 1)],
                ..Payload::default()
            }
            .encode_to_vec()
        };
        assert!(rebirth_asked(&ask(true)));
        assert!(!rebirth_asked(&ask(false)));
        assert!(!rebirth_asked(b"\xff\xff"));
    }

    #[test]
    fn the_host_is_online_only_when_its_state_says_so() {
        assert!(host_online(br#"{"online":true,"timestamp":1}"#));
        assert!(!host_online(br#"{"online":false,"timestamp":1}"#));
        assert!(!host_online(b"ONLINE"));
    }
}
