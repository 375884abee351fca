//! `transport = "mqtt"`: subscribe on a local broker (zigbee2mqtt, Tasmota)
//! and decode each message with the sensor's codec.
//!
//! rumqttc's `EventLoop::poll` is not cancel-safe, so it runs in a task of
//! its own and hands messages over a channel; [`Link::next`] only waits on
//! that channel. The task reconnects with exponential backoff and jitter
//! (rumqttc would retry as fast as it is polled) and subscribes again after
//! every CONNACK, because a broker restarted without persistence forgets
//! subscriptions. `read_timeout` measures silence between messages, so a
//! broker outage longer than it ends the link with `timeout`.

use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;
use edgevisor_backoff::ExponentialBackoff;
use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Packet, QoS, SubscribeFilter};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::error::LinkError;
use super::stats::LinkStats;
use super::{BrokerUrl, Link};
use crate::codec::{CodecConfig, CodecKind, CorruptFrame, ReadingDecoder};
use crate::Reading;

/// A `transport = "mqtt"` sensor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MqttConfig {
    /// `mqtt://host[:port]` (port defaults to 1883). Parsed as a
    /// [`BrokerUrl`]; `mqtts://` is refused, as sensor brokers are local.
    pub url: String,
    /// Topic filters, wildcards allowed.
    pub topics: Vec<String>,
    /// MQTT client id; unique per broker.
    pub client_id: String,
    /// MQTT keep-alive.
    pub keep_alive: Duration,
    /// How long `subscribe` waits for the first connection and SUBACK.
    pub connect_timeout: Duration,
    /// First reconnect delay; doubles up to `reconnect_max`.
    pub reconnect_initial: Duration,
    /// Longest reconnect delay.
    pub reconnect_max: Duration,
    /// Silence (no message) longer than this ends the link with `timeout`.
    pub read_timeout: Duration,
    /// How to decode each message.
    pub codec: CodecConfig,
}

impl MqttConfig {
    /// Defaults: keep-alive 5 s, connect timeout 5 s, reconnect 100 ms..5 s,
    /// read timeout 30 s.
    pub fn new(
        url: impl Into<String>,
        topics: Vec<String>,
        client_id: impl Into<String>,
        codec: CodecKind,
    ) -> Self {
        MqttConfig {
            url: url.into(),
            topics,
            client_id: client_id.into(),
            keep_alive: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
            reconnect_initial: Duration::from_millis(100),
            reconnect_max: Duration::from_secs(5),
            read_timeout: super::DEFAULT_READ_TIMEOUT,
            codec: CodecConfig::new(codec),
        }
    }
}

/// A sensor broker URL this link cannot use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnusableUrl {
    /// Not a broker URL at all.
    #[error(transparent)]
    Invalid(#[from] super::InvalidUrl),
    /// `mqtts://`: this link has no TLS, because sensor brokers run on the
    /// gateway or its LAN.
    #[error("{0:?}: sensor links speak plain MQTT; use mqtt://")]
    Tls(String),
}

/// Parses `url`, refusing `mqtts://` (see [`UnusableUrl::Tls`]).
pub fn plain_url(url: &str) -> Result<BrokerUrl, UnusableUrl> {
    let parsed: BrokerUrl = url.parse()?;
    if parsed.tls {
        return Err(UnusableUrl::Tls(url.to_owned()));
    }
    Ok(parsed)
}

/// What the event-loop task reports about the connection.
#[derive(Debug, Clone, Default)]
struct Status {
    subscribed: bool,
    connects: u64,
    last_error: Option<String>,
}

/// The receiving half of an MQTT link.
pub(crate) struct MqttLink {
    rx: mpsc::Receiver<Bytes>,
    decoder: ReadingDecoder,
    pending: VecDeque<Result<Reading, CorruptFrame>>,
    read_timeout: Duration,
    status: watch::Receiver<Status>,
    task: JoinHandle<()>,
    pub(crate) stats: LinkStats,
}

impl Drop for MqttLink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl MqttLink {
    pub(crate) async fn next(&mut self) -> Result<Reading, LinkError> {
        loop {
            match self.pending.pop_front() {
                Some(Ok(r)) => {
                    self.stats.readings += 1;
                    return Ok(r);
                }
                Some(Err(c)) => {
                    self.stats.corrupt += 1;
                    return Err(LinkError::Corrupt(c));
                }
                None => {}
            }
            let payload = match tokio::time::timeout(self.read_timeout, self.rx.recv()).await {
                Err(_) => return Err(LinkError::Timeout(self.read_timeout)),
                Ok(None) => {
                    return Err(LinkError::io(
                        "mqtt event loop",
                        std::io::Error::other("stopped"),
                    ))
                }
                Ok(Some(m)) => m,
            };
            self.stats.bytes += payload.len() as u64;
            // Messages are independent: a bad one never stops the next.
            let decoded = self.decoder.decode_message(&payload);
            self.pending.extend(
                decoded
                    .into_iter()
                    .map(|r| r.map_err(CorruptFrame::continuable)),
            );
        }
    }

    /// How many times the broker accepted a connection (1 + reconnects).
    pub(crate) fn connects(&self) -> u64 {
        self.status.borrow().connects
    }
}

/// Connects, subscribes, and returns once the broker acknowledged the
/// subscriptions (so nothing published afterwards is missed). Fails with
/// `io` if that does not happen within `connect_timeout`.
pub async fn subscribe(config: &MqttConfig) -> Result<Link, LinkError> {
    let context = format!("mqtt subscribe {}", config.url);
    let url = plain_url(&config.url).map_err(|e| {
        LinkError::io(
            &context,
            std::io::Error::new(std::io::ErrorKind::InvalidInput, e),
        )
    })?;
    let mut opts = MqttOptions::new(&config.client_id, url.host, url.port);
    opts.set_keep_alive(config.keep_alive);
    opts.set_clean_session(true);
    // Oversized messages must reach the codec (and be reported as corrupt),
    // not make rumqttc drop the connection.
    let incoming = (config.codec.max_frame * 4).max(256 * 1024);
    opts.set_max_packet_size(incoming, 64 * 1024);
    let (client, eventloop) = AsyncClient::new(opts, 64);
    let (tx, rx) = mpsc::channel(1024);
    let (status_tx, mut status) = watch::channel(Status::default());
    let task = tokio::spawn(drive(client, eventloop, config.clone(), tx, status_tx));
    let link = MqttLink {
        rx,
        decoder: config.codec.decoder(),
        pending: VecDeque::new(),
        read_timeout: config.read_timeout,
        status: status.clone(),
        task,
        stats: LinkStats::default(),
    };
    let ready =
        tokio::time::timeout(config.connect_timeout, status.wait_for(|s| s.subscribed)).await;
    if !matches!(ready, Ok(Ok(_))) {
        let why = link
            .status
            .borrow()
            .last_error
            .clone()
            .unwrap_or_else(|| "no SUBACK".into());
        link.task.abort();
        let e = std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("not subscribed within {:?}: {why}", config.connect_timeout),
        );
        return Err(LinkError::io(context, e));
    }
    Ok(Link::mqtt(link))
}

/// The event-loop task: polls, forwards messages, resubscribes, backs off.
async fn drive(
    client: AsyncClient,
    mut eventloop: EventLoop,
    config: MqttConfig,
    tx: mpsc::Sender<Bytes>,
    status: watch::Sender<Status>,
) {
    let backoff = reconnect_backoff(&config);
    let mut failures = 0u32;
    let filters: Vec<SubscribeFilter> = config
        .topics
        .iter()
        .map(|t| SubscribeFilter::new(t.clone(), QoS::AtLeastOnce))
        .collect();
    loop {
        match eventloop.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                failures = 0;
                status.send_modify(|s| s.connects += 1);
                if let Err(e) = client.try_subscribe_many(filters.clone()) {
                    tracing::warn!(url = %config.url, error = %e, "mqtt resubscribe failed");
                }
            }
            Ok(Event::Incoming(Packet::SubAck(_))) => status.send_modify(|s| s.subscribed = true),
            Ok(Event::Incoming(Packet::Publish(p))) => {
                if tx.send(p.payload).await.is_err() {
                    return; // the link was dropped
                }
            }
            Ok(_) => {}
            Err(e) => {
                if tx.is_closed() {
                    return;
                }
                failures = failures.saturating_add(1);
                let delay = backoff.random_delay(failures);
                tracing::debug!(url = %config.url, error = %e, ?delay, "mqtt connection lost; reconnecting");
                status.send_modify(|s| {
                    s.subscribed = false;
                    s.last_error = Some(e.to_string());
                });
                tokio::time::sleep(delay).await;
            }
        }
    }
}

/// `reconnect_initial` doubling to `reconnect_max`, +-20 % so many links do
/// not reconnect in lockstep.
fn reconnect_backoff(config: &MqttConfig) -> ExponentialBackoff {
    ExponentialBackoff::new(config.reconnect_initial, config.reconnect_max, 0.2)
}

impl Link {
    /// MQTT links: how many times the broker accepted a connection
    /// (1 + reconnects); `None` for other transports.
    pub fn mqtt_connects(&self) -> Option<u64> {
        match &self.inner {
            super::Inner::Mqtt(m) => Some(m.connects()),
            super::Inner::Stream(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sensor_links_take_plain_mqtt_only() {
        assert_eq!(plain_url("mqtt://[::1]:1999").map(|u| u.port), Ok(1999));
        assert_eq!(
            plain_url("mqtts://broker:8883"),
            Err(UnusableUrl::Tls("mqtts://broker:8883".into()))
        );
        assert!(matches!(
            plain_url("mqtt://:1883"),
            Err(UnusableUrl::Invalid(_))
        ));
    }

    #[test]
    fn reconnects_back_off_within_twenty_percent() {
        let mut config = MqttConfig::new("mqtt://h", vec![], "c", CodecKind::Json);
        config.reconnect_initial = Duration::from_millis(1000);
        let b = reconnect_backoff(&config);
        for _ in 0..100 {
            let j = b.random_delay(1);
            assert!(j >= Duration::from_millis(800) && j <= Duration::from_millis(1200));
            assert!(b.random_delay(40) <= Duration::from_secs(6));
        }
    }
}
