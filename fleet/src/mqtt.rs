//! The fleet view's MQTT client: one clean session, QoS 1 subscriptions to
//! the five filters of [`crate::topic::filters`], resubscribed after every
//! CONNACK, and reconnection with exponential backoff and jitter (rumqttc
//! reconnects as fast as it is polled; see `/work/shared/notes/uplink.md`).
//! `EventLoop::poll` is not cancel-safe, so it runs in a task of its own
//! and hands everything over on a channel.
//!
//! With a shared subscription group, the crash and dead-letter events are
//! read through `$share/<group>/...` while status, state and tree stay on
//! plain subscriptions: brokers send no retained message on a shared
//! subscription (MQTT 5, section 4.8.2), and a view without them would not
//! know a gateway until it next changed. A broker that refuses the shared
//! filters (SUBACK failure) gets the plain ones instead, and the view says
//! so.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use bytes::Bytes;
use edgevisor_backoff::ExponentialBackoff;
use rumqttc::{
    AsyncClient, Event, EventLoop, Incoming, MqttOptions, Outgoing, QoS, SubscribeFilter,
    SubscribeReasonCode,
};
use tokio::sync::mpsc;

use crate::topic::{self, Filters};
use crate::FleetError;

/// Between reconnection attempts: 200 ms doubling to 10 s, 20 % jitter.
const BACKOFF: ExponentialBackoff =
    ExponentialBackoff::new(Duration::from_millis(200), Duration::from_secs(10), 0.2);

/// Trees of gateways with thousands of sensors are large.
const MAX_PACKET: usize = 8 << 20;

/// What the client tells the view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Feed {
    /// A message on one of the filters.
    Message {
        /// Its topic.
        topic: String,
        /// Its payload.
        payload: Bytes,
    },
    /// Connected (CONNACK).
    Connected,
    /// The connection failed or was lost, and why.
    Disconnected(String),
    /// The broker refused these shared filters; their plain forms are
    /// read instead.
    ShareRefused(Vec<String>),
}

/// Where and what to read.
#[derive(Debug, Clone)]
pub struct Options {
    /// The broker URL, `mqtt://HOST[:PORT]`.
    pub broker: String,
    /// The topic prefix.
    pub prefix: String,
    /// The shared subscription group for events.
    pub share: Option<String>,
    /// The MQTT client id.
    pub client_id: String,
    /// User name and password, if the broker wants a login.
    pub login: Option<(String, String)>,
    /// Extra CA certificates for `mqtts://`.
    pub ca_file: Option<std::path::PathBuf>,
}

/// Where the broker is, as `--broker` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broker {
    /// Host name or address.
    pub host: String,
    /// Port: 1883, or 8883 with TLS, unless given.
    pub port: u16,
    /// `mqtts://`.
    pub tls: bool,
}

/// `mqtt://HOST[:PORT]` (or `tcp://`, or a bare `HOST[:PORT]`), port 1883
/// by default; `mqtts://` (or `ssl://`) with TLS, port 8883 by default.
pub fn parse_broker(url: &str) -> Result<Broker, FleetError> {
    let bad = |why| FleetError::BrokerUrl {
        url: url.to_string(),
        why,
    };
    let (rest, tls) = if let Some(rest) = url
        .strip_prefix("mqtt://")
        .or_else(|| url.strip_prefix("tcp://"))
    {
        (rest, false)
    } else if let Some(rest) = url
        .strip_prefix("mqtts://")
        .or_else(|| url.strip_prefix("ssl://"))
    {
        (rest, true)
    } else if url.contains("://") {
        return Err(bad("only mqtt:// and mqtts:// are supported"));
    } else {
        (url, false)
    };
    let default = if tls { 8883 } else { 1883 };
    let rest = rest.trim_end_matches('/');
    let port = |p: &str| {
        p.parse::<u16>()
            .map_err(|_| bad("the port is not a number"))
    };
    let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
        match v6.split_once(']') {
            Some((host, "")) => (host, default),
            Some((host, tail)) => (host, port(tail.strip_prefix(':').unwrap_or(tail))?),
            None => return Err(bad("unclosed [")),
        }
    } else {
        match rest.rsplit_once(':') {
            Some((host, p)) => (host, port(p)?),
            None => (rest, default),
        }
    };
    if host.is_empty() || host.contains('/') {
        return Err(bad("no host"));
    }
    Ok(Broker {
        host: host.to_string(),
        port,
        tls,
    })
}

/// Which subscription request a SUBACK answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Request {
    Plain,
    Shared,
}

/// The subscription requests made after each CONNACK, in order.
fn requests(filters: &Filters, share: Option<&str>) -> Vec<(Request, Vec<String>)> {
    match share {
        None => {
            let all = filters
                .retained
                .iter()
                .chain(&filters.events)
                .cloned()
                .collect();
            vec![(Request::Plain, all)]
        }
        Some(group) => vec![
            (Request::Plain, filters.retained.clone()),
            (
                Request::Shared,
                filters
                    .events
                    .iter()
                    .map(|f| topic::shared(group, f))
                    .collect(),
            ),
        ],
    }
}

/// Starts the client; it runs until `feed`'s receiver is dropped.
pub fn spawn(
    options: Options,
    feed: mpsc::Sender<Feed>,
) -> Result<tokio::task::JoinHandle<()>, FleetError> {
    let broker = parse_broker(&options.broker)?;
    let mut mqtt = MqttOptions::new(options.client_id.clone(), broker.host, broker.port);
    if broker.tls {
        let config = crate::tls::client_config(options.ca_file.as_deref())?;
        mqtt.set_transport(rumqttc::Transport::tls_with_config(
            rumqttc::TlsConfiguration::Rustls(config),
        ));
    }
    if let Some((user, password)) = &options.login {
        mqtt.set_credentials(user.clone(), password.clone());
    }
    mqtt.set_keep_alive(Duration::from_secs(10));
    mqtt.set_clean_session(true);
    mqtt.set_max_packet_size(MAX_PACKET, 64 << 10);
    let (client, eventloop) = AsyncClient::new(mqtt, 16);
    Ok(tokio::spawn(drive(client, eventloop, options, feed)))
}

async fn drive(
    client: AsyncClient,
    mut eventloop: EventLoop,
    options: Options,
    feed: mpsc::Sender<Feed>,
) {
    let filters = topic::filters(&options.prefix);
    let mut sent: VecDeque<(Request, Vec<String>)> = VecDeque::new();
    let mut by_pkid: HashMap<u16, (Request, Vec<String>)> = HashMap::new();
    let mut attempt = 0u32;
    let mut rng = fastrand::Rng::new();
    loop {
        let out = match eventloop.poll().await {
            Ok(Event::Incoming(Incoming::Publish(p))) => Some(Feed::Message {
                topic: p.topic,
                payload: p.payload,
            }),
            Ok(Event::Incoming(Incoming::ConnAck(_))) => {
                attempt = 0;
                sent.clear();
                by_pkid.clear();
                for (kind, list) in requests(&filters, options.share.as_deref()) {
                    subscribe(&client, &mut sent, kind, list);
                }
                Some(Feed::Connected)
            }
            Ok(Event::Outgoing(Outgoing::Subscribe(pkid))) => {
                if let Some(request) = sent.pop_front() {
                    by_pkid.insert(pkid, request);
                }
                None
            }
            Ok(Event::Incoming(Incoming::SubAck(ack))) => {
                let refused = by_pkid.remove(&ack.pkid).and_then(|(kind, list)| {
                    refused(&ack.return_codes, &list).filter(|_| kind == Request::Shared)
                });
                refused.map(|refused| {
                    tracing::warn!(
                        ?refused,
                        "the broker refused the shared subscriptions; reading them plainly"
                    );
                    let plain = filters.events.clone();
                    subscribe(&client, &mut sent, Request::Plain, plain);
                    Feed::ShareRefused(refused)
                })
            }
            Ok(_) => None,
            Err(error) => {
                let delay = BACKOFF.delay_with(attempt, &mut rng);
                attempt = attempt.saturating_add(1);
                tracing::debug!(%error, ?delay, "fleet: broker connection failed");
                if feed
                    .send(Feed::Disconnected(error.to_string()))
                    .await
                    .is_err()
                {
                    return;
                }
                tokio::time::sleep(delay).await;
                None
            }
        };
        if let Some(out) = out {
            if feed.send(out).await.is_err() {
                return;
            }
        }
    }
}

fn subscribe(
    client: &AsyncClient,
    sent: &mut VecDeque<(Request, Vec<String>)>,
    kind: Request,
    list: Vec<String>,
) {
    let filters = list
        .iter()
        .map(|f| SubscribeFilter::new(f.clone(), QoS::AtLeastOnce));
    match client.try_subscribe_many(filters) {
        Ok(()) => sent.push_back((kind, list)),
        // The request channel holds 16 and the loop sends at most three
        // requests per connection: full means the loop is gone.
        Err(error) => tracing::warn!(%error, "fleet: cannot subscribe"),
    }
}

/// The filters of `list` whose return code is a failure, if any.
fn refused(codes: &[SubscribeReasonCode], list: &[String]) -> Option<Vec<String>> {
    let refused: Vec<String> = codes
        .iter()
        .zip(list)
        .filter(|(code, _)| matches!(code, SubscribeReasonCode::Failure))
        .map(|(_, filter)| filter.clone())
        .collect();
    (!refused.is_empty()).then_some(refused)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_urls() {
        let at = |url: &str| {
            let b = parse_broker(url).unwrap();
            (b.host, b.port, b.tls)
        };
        assert_eq!(
            at("mqtt://127.0.0.1:1884"),
            ("127.0.0.1".into(), 1884, false)
        );
        assert_eq!(at("mqtt://broker.lan"), ("broker.lan".into(), 1883, false));
        assert_eq!(at("tcp://h:1/"), ("h".into(), 1, false));
        assert_eq!(at("h:2"), ("h".into(), 2, false));
        assert_eq!(at("mqtt://[::1]:1885"), ("::1".into(), 1885, false));
        assert_eq!(at("mqtts://broker.lan"), ("broker.lan".into(), 8883, true));
        assert_eq!(at("ssl://h:8884"), ("h".into(), 8884, true));
        for bad in ["mqtt://", "mqtt://h:port", "ws://h:1", "mqtts://"] {
            assert!(parse_broker(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn with_a_group_only_the_events_are_shared() {
        let filters = topic::filters("edgevisor");
        let plain = requests(&filters, None);
        assert_eq!(plain.len(), 1);
        assert_eq!(plain[0].1.len(), 5);
        let shared = requests(&filters, Some("ops"));
        assert_eq!(shared[0], (Request::Plain, filters.retained.clone()));
        assert_eq!(
            shared[1].1,
            [
                "$share/ops/edgevisor/+/crash/#",
                "$share/ops/edgevisor/+/deadletter/#"
            ]
        );
    }

    #[test]
    fn refused_filters_are_named() {
        let list = vec!["a".to_string(), "b".to_string()];
        let ok = [SubscribeReasonCode::Success(QoS::AtLeastOnce); 2];
        assert_eq!(refused(&ok, &list), None);
        let codes = [
            SubscribeReasonCode::Success(QoS::AtLeastOnce),
            SubscribeReasonCode::Failure,
        ];
        assert_eq!(refused(&codes, &list), Some(vec!["b".to_string()]));
    }
}
