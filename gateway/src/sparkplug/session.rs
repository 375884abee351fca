//! The edge node's own MQTT session (client id `<client_id>-spb`, same
//! broker, credentials and TLS as the uplink): before every connect
//! attempt a fresh bdSeq and its NDEATH as the Will; one connection at a
//! time (`conn`); reconnects with backoff, the inputs still taken
//! meanwhile (the node queues the readings).

use prost::Message;
use rumqttc::mqttbytes::v4::LastWill;
use rumqttc::mqttbytes::QoS;
use tokio::time::{sleep_until, Instant};

use super::bdseq::BdSeq;
use super::conn::Conn;
use super::inputs::{Input, Inputs};
use super::node::{Node, Outgoing};
use super::payload::millis;
use crate::config::UpstreamConfig;
use crate::uplink::{self, ConnectOptions};

/// What the session needs besides the node.
pub struct Settings {
    /// `[upstream]` with the client id of this session.
    pub upstream: UpstreamConfig,
    /// `sparkplug.primary_host`.
    pub primary_host: Option<String>,
}

/// How a connection ended without an error.
pub enum Ended {
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
pub fn apply(node: &mut Node, input: Input, now_ms: u64) -> Vec<Outgoing> {
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

/// Now, in ms since the Unix epoch.
pub fn now() -> u64 {
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
