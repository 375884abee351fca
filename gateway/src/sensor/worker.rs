//! The body of a sensor child: read the link, hand telemetry to the outbox,
//! and end with the link's reason when it fails. A corrupt frame crashes the
//! child with the frame as evidence, unless the sensor skips corrupt frames,
//! in which case it is counted and sent as a dead letter.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::BytesMut;
use edgevisor_devices::link::{Link, LinkError};
use edgevisor_devices::Reading;
use edgevisor_runtime::{ChildContext, ChildSpec, Crash};

use super::{links, Counters, Gateway};
use crate::config::{OnCorrupt, SensorConfig};
use crate::outbox::Message;
use crate::payload::{self, TelemetryEnvelope, TimestampCache};

/// The child of a serial, tcp or mqtt sensor: opening the link is part of
/// its body, so a slow connect never blocks its supervisor.
pub fn spec(sensor: &Arc<SensorConfig>, gateway: &Arc<Gateway>) -> ChildSpec {
    let sensor = sensor.clone();
    let gateway = gateway.clone();
    ChildSpec::worker(sensor.id.clone(), move |ctx| {
        let (sensor, gateway) = (sensor.clone(), gateway.clone());
        async move {
            let client_id = format!("edgevisor-{}-{}", gateway.id, sensor.id);
            let link = tokio::select! {
                _ = ctx.shutdown_requested() => return Ok(()),
                link = links::open(&sensor, &client_id) => link.map_err(|e| crash(&e))?,
            };
            pump(link, &sensor, &gateway, &ctx).await
        }
    })
}

/// Reads `link` until it fails or the child is asked to stop. Every reading
/// that arrived together (one read of the link) goes to the outbox in one
/// call, under one timestamp.
pub async fn pump(
    mut link: Link,
    sensor: &SensorConfig,
    gateway: &Gateway,
    ctx: &ChildContext,
) -> Result<(), Crash> {
    let mut telemetry = Telemetry::new(gateway, &sensor.id, sensor.codec.as_str());
    let mut readings = Vec::new();
    // Made once, and asked only when a stop woke the task: a fresh stop
    // waiter per reading, or the token's own future, cost locks per wake-up.
    let mut shutdown = ctx.stop_signal();
    loop {
        // Cancel-safe: `next_batch` waits only while `readings` is empty.
        let next = tokio::select! {
            _ = &mut shutdown => {
                drain(&mut link, &mut telemetry, &mut readings, gateway);
                return Ok(());
            }
            next = async {
                gateway.outbox.room().await;
                link.next_batch(&mut readings).await
            } => next,
        };
        match next {
            Ok(()) => gateway.outbox.append(telemetry.messages(&mut readings)),
            Err(error) if error.can_continue() && sensor.on_corrupt == OnCorrupt::Skip => {
                dead_letter(gateway, &telemetry.sensor, &telemetry.counters, &error);
            }
            Err(error) => return Err(crash(&error)),
        }
    }
}

/// Most batches a stopping child still takes from its link.
const DRAIN_BATCHES: usize = 64;

/// At a stop: takes in the readings the link already holds (the socket's
/// receive buffer, bytes read but not yet framed) without waiting for
/// more. A sensor that sent them before the stop loses nothing that
/// reached the gateway; a restart under load (socket activation) then
/// loses only what was still on the wire when the connection closed.
fn drain(
    link: &mut Link,
    telemetry: &mut Telemetry,
    readings: &mut Vec<Reading>,
    gateway: &Gateway,
) {
    use futures_util::FutureExt;
    // First what the kernel holds, read directly: the runtime may not have
    // seen the last bytes yet, and polling the link trusts what it saw.
    // Then links that cannot read directly (serial, MQTT) as the runtime
    // sees them. Nothing more now, or the link ended or met a corrupt
    // frame: what came before it is taken, the rest is not waited for.
    if link.take_buffered(readings).is_ok() {
        for _ in 0..DRAIN_BATCHES {
            match link.next_batch(readings).now_or_never() {
                Some(Ok(())) => {}
                Some(Err(_)) | None => break,
            }
        }
    }
    if !readings.is_empty() {
        gateway.outbox.append(telemetry.messages(readings));
    }
}

/// What turns one sensor's readings into telemetry messages.
pub struct Telemetry {
    clock: TimestampCache,
    counters: Arc<Counters>,
    sensor: Arc<str>,
    topic: Arc<str>,
    envelope: TelemetryEnvelope,
}

impl Telemetry {
    /// Telemetry of the sensor named `sensor` (a Modbus unit's is
    /// `<bus>/<unit>`), numbered by its boot-long counter.
    pub fn new(gateway: &Gateway, sensor: &str, codec: &str) -> Self {
        Telemetry {
            clock: TimestampCache::default(),
            counters: gateway.counters(sensor),
            sensor: sensor.into(),
            topic: gateway.topics.telemetry(sensor).into(),
            envelope: TelemetryEnvelope::new(&gateway.id, sensor, gateway.boot, codec),
        }
    }

    /// Numbers the readings (one gap-free block of `seq`) and renders them,
    /// emptying `readings`. The payloads are rendered into one buffer and
    /// split off it: one allocation for the batch instead of one per
    /// reading, and the outbox's and uplink's copies of a payload share it.
    pub fn messages(&mut self, readings: &mut Vec<Reading>) -> Vec<Message> {
        let now = SystemTime::now();
        let ts = self.clock.format(now);
        let count = readings.len() as u64;
        let unix_ms = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        self.counters
            .last_reading_ms
            .store(unix_ms, Ordering::Relaxed);
        let first = self.counters.seq.fetch_add(count, Ordering::Relaxed) + 1;
        let size = readings
            .iter()
            .map(|r| self.envelope.len_at_most(ts, r.data_json()))
            .sum();
        let mut buffer = BytesMut::with_capacity(size);
        readings
            .drain(..)
            .zip(first..)
            .map(|(reading, seq)| {
                self.envelope
                    .render_into(&mut buffer, seq, ts, reading.data_json());
                let body = buffer.split().freeze();
                Message::telemetry(self.sensor.clone(), self.topic.clone(), seq, body)
            })
            .collect()
    }
}

fn dead_letter(gateway: &Gateway, id: &Arc<str>, counters: &Counters, error: &LinkError) {
    counters.skipped.fetch_add(1, Ordering::Relaxed);
    let ts = payload::timestamp(SystemTime::now());
    // Errors without evidence (not a corrupt frame) send `evidence_hex: ""`.
    let evidence_hex = error.evidence().map(|e| e.to_hex()).unwrap_or_default();
    let error_text = error.to_string();
    tracing::warn!(sensor = %id, error = %error_text, evidence_hex = %evidence_hex, "corrupt frame skipped");
    let body = payload::DeadLetter {
        sensor: id,
        boot: gateway.boot,
        ts: &ts,
        error: &error_text,
        evidence_hex,
    };
    gateway.outbox.append(vec![Message::report(
        id.clone(),
        gateway.topics.deadletter(id).into(),
        payload::to_vec(&body),
    )]);
}

/// A link failure as a crash: SPEC reason, message, evidence.
pub fn crash(error: &LinkError) -> Crash {
    let crash = Crash::new(error.reason().as_str(), error.to_string());
    match error.evidence() {
        Some(evidence) => crash.with_evidence(evidence.bytes(), evidence.truncated()),
        None => crash,
    }
}
