//! A simulated MQTT sensor: publishes numbered readings to a topic, one
//! reading per message (QoS 1), the way zigbee2mqtt or Tasmota devices do.
//!
//! `written` counts publishes handed to the client; `acked` counts those
//! the broker acknowledged. `Disconnect` drops the connection and makes a
//! new one; the other faults publish corrupt messages or pause.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use tokio::task::JoinHandle;

use super::faults::Fault;
use super::{SimConfig, SimCounters, SimHandle};
use edgevisor_devices::codec::CodecKind;
use edgevisor_devices::link::mqtt::{plain_url, UnusableUrl};

/// An MQTT-publishing sensor.
#[derive(Debug)]
pub struct MqttSensor {
    /// Controls the simulator.
    pub handle: SimHandle,
    acked: Arc<AtomicU64>,
}

/// One broker session; the event loop runs in its own task.
struct Session {
    client: AsyncClient,
    driver: JoinHandle<()>,
}

impl Drop for Session {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

fn connect(
    host: &str,
    port: u16,
    id: &str,
    acked: &Arc<AtomicU64>,
    counters: &Arc<SimCounters>,
) -> Session {
    let mut opts = MqttOptions::new(id, host, port);
    opts.set_keep_alive(Duration::from_secs(5));
    opts.set_max_packet_size(1 << 20, 1 << 20);
    let (client, mut eventloop) = AsyncClient::new(opts, 256);
    let acked = Arc::clone(acked);
    let counters = Arc::clone(counters);
    let driver = tokio::spawn(async move {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::PubAck(_))) => {
                    acked.fetch_add(1, Ordering::Relaxed);
                }
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    counters.connections.fetch_add(1, Ordering::Relaxed);
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    });
    Session { client, driver }
}

/// The message body of a reading: one frame, without the line ending the
/// byte-stream codecs need.
fn message(config: &SimConfig, bytes: Vec<u8>) -> Vec<u8> {
    match config.gen.codec {
        CodecKind::Lines | CodecKind::Json => {
            let end = bytes.len() - usize::from(bytes.ends_with(b"\n"));
            bytes[..end].to_vec()
        }
        CodecKind::Nmea | CodecKind::Frame => bytes,
    }
}

impl MqttSensor {
    /// Connects to `url` (`mqtt://host:port`) as `client_id` and publishes
    /// to `topic`.
    pub fn start(
        config: SimConfig,
        url: &str,
        topic: &str,
        client_id: &str,
    ) -> Result<Self, UnusableUrl> {
        let url = plain_url(url)?;
        let (host, port) = (url.host, url.port);
        let acked = Arc::new(AtomicU64::new(0));
        let (topic, id, acks) = (topic.to_owned(), client_id.to_owned(), Arc::clone(&acked));
        let handle = SimHandle::spawn(&config, move |counters, mut commands| async move {
            let mut session = connect(&host, port, &id, &acks, &counters);
            let mut tick = tokio::time::interval(config.period());
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    cmd = commands.recv() => match cmd {
                        None => return,
                        Some(Fault::Silence(d)) => tokio::time::sleep(d).await,
                        Some(Fault::Disconnect | Fault::Remove | Fault::Replug) => {
                            let _ = session.client.try_disconnect();
                            drop(session);
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            session = connect(&host, port, &id, &acks, &counters);
                        }
                        Some(other) => {
                            if let Some(bytes) = config.gen.corrupt(other) {
                                let body = message(&config, bytes);
                                if session.client.publish(&topic, QoS::AtLeastOnce, false, body).await.is_ok() {
                                    counters.corrupt_written.fetch_add(1, Ordering::Relaxed);
                                }
                            }
                        }
                    },
                    _ = tick.tick() => {
                        let seq = counters.next_seq.load(Ordering::Relaxed);
                        let body = message(&config, config.gen.reading(seq));
                        if session.client.publish(&topic, QoS::AtLeastOnce, false, body).await.is_ok() {
                            counters.next_seq.store(seq + 1, Ordering::Relaxed);
                            counters.written.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            }
        });
        Ok(MqttSensor { handle, acked })
    }

    /// Publishes the broker acknowledged.
    pub fn acked(&self) -> u64 {
        self.acked.load(Ordering::Relaxed)
    }
}
