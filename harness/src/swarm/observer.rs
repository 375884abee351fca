//! The harness's view of the upstream broker: one MQTT client subscribed
//! to everything a gateway publishes, feeding each message to the books.

use std::time::Duration;

use anyhow::Context;
use rumqttc::{AsyncClient, Event, Incoming, MqttOptions, QoS};

/// Subscribes to everything gateway `gateway_id` publishes on the broker
/// at `port` and hands each message (topic after the gateway id, payload) to
/// `sink`. Reconnects within milliseconds, so a restarted broker is rejoined
/// before the gateway (whose first retry waits at least 200 ms).
///
/// The session is persistent (clean session off, one client id per
/// process): if this client is dropped while the broker keeps running (a
/// starved process missing its keep-alive, as in a saturated scale run),
/// the broker keeps what the gateway published meanwhile and hands it over
/// on reconnect, instead of the books counting it lost. The session stays
/// on the broker after the run, bounded by the broker's queue limits.
pub async fn observe(
    port: u16,
    gateway_id: &str,
    sink: impl FnMut(&str, &[u8]) + Send + 'static,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    observe_as(port, gateway_id, None, sink).await
}

/// [`observe`], logging in with `login` (user name, password) when the
/// broker wants one.
pub async fn observe_as(
    port: u16,
    gateway_id: &str,
    login: Option<(String, String)>,
    mut sink: impl FnMut(&str, &[u8]) + Send + 'static,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let mut options = MqttOptions::new(
        format!("{gateway_id}-observer-{}", std::process::id()),
        "127.0.0.1",
        port,
    );
    options.set_keep_alive(Duration::from_secs(5));
    options.set_clean_session(false);
    options.set_max_packet_size(1 << 24, 1 << 24);
    if let Some((user, password)) = login {
        options.set_credentials(user, password);
    }
    let (client, mut eventloop) = AsyncClient::new(options, 1024);
    let (ready_tx, ready) = tokio::sync::oneshot::channel();
    let prefix = format!("edgevisor/{gateway_id}/");
    let task = tokio::spawn(async move {
        let mut ready_tx = Some(ready_tx);
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Incoming::ConnAck(_))) => {
                    let _ = client
                        .subscribe(format!("{prefix}#"), QoS::AtLeastOnce)
                        .await;
                }
                Ok(Event::Incoming(Incoming::SubAck(_))) => {
                    if let Some(tx) = ready_tx.take() {
                        let _ = tx.send(());
                    }
                }
                Ok(Event::Incoming(Incoming::Publish(p))) => {
                    sink(p.topic.strip_prefix(&prefix).unwrap_or(""), &p.payload);
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
    });
    // Generous: a broker cluster under load (RabbitMQ declares the
    // subscription's queue on every node) took over 10 s to answer while
    // other gateways already sent (docs/scale.md).
    tokio::time::timeout(Duration::from_secs(60), ready)
        .await
        .context("the upstream observer could not subscribe")?
        .ok();
    Ok(task)
}
