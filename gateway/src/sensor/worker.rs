//! The body of a sensor child: read the link, hand telemetry to the outbox,
//! and end with the link's reason when it fails. A corrupt frame crashes the
//! child with the frame as evidence, unless the sensor skips corrupt frames,
//! in which case it is counted and sent as a dead letter.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::SystemTime;

use edgevisor_devices::link::{Link, LinkError};
use edgevisor_devices::Reading;
use edgevisor_runtime::{ChildContext, ChildSpec, Crash};

use super::{links, Counters, Gateway};
use crate::config::{OnCorrupt, SensorConfig};
use crate::outbox::{Class, Message};
use crate::payload;

/// The child of a serial, tcp or mqtt sensor: opening the link is part of
/// its body, so a slow connect never blocks its supervisor.
pub fn spec(sensor: &SensorConfig, gateway: &Arc<Gateway>) -> ChildSpec {
    let sensor = Arc::new(sensor.clone());
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

/// Reads `link` until it fails or the child is asked to stop.
pub async fn pump(
    mut link: Link,
    sensor: &SensorConfig,
    gateway: &Gateway,
    ctx: &ChildContext,
) -> Result<(), Crash> {
    let counters = gateway.counters(&sensor.id);
    let sensor_id: Arc<str> = sensor.id.as_str().into();
    let topic = gateway.topics.telemetry(&sensor.id);
    loop {
        let next = tokio::select! {
            _ = ctx.shutdown_requested() => return Ok(()),
            next = link.next() => next,
        };
        match next {
            Ok(reading) => telemetry(gateway, sensor, &sensor_id, &topic, &counters, &reading),
            Err(error) if error.can_continue() && sensor.on_corrupt == OnCorrupt::Skip => {
                dead_letter(gateway, &sensor_id, &counters, &error);
            }
            Err(error) => return Err(crash(&error)),
        }
    }
}

fn telemetry(
    gateway: &Gateway,
    sensor: &SensorConfig,
    id: &Arc<str>,
    topic: &str,
    counters: &Counters,
    reading: &Reading,
) {
    let ts = payload::timestamp(SystemTime::now());
    let seq = counters.seq.fetch_add(1, Ordering::Relaxed) + 1;
    let body = payload::Telemetry {
        gateway: &gateway.id,
        sensor: &sensor.id,
        boot: gateway.boot,
        seq,
        ts: &ts,
        codec: sensor.codec.as_str(),
        data: reading.data(),
    };
    gateway.outbox.append(vec![Message {
        class: Class::Telemetry,
        sensor: id.clone(),
        topic: topic.to_string(),
        payload: payload::to_vec(&body),
    }]);
}

fn dead_letter(gateway: &Gateway, id: &Arc<str>, counters: &Counters, error: &LinkError) {
    counters.skipped.fetch_add(1, Ordering::Relaxed);
    let ts = payload::timestamp(SystemTime::now());
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
    gateway.outbox.append(vec![Message {
        class: Class::Report,
        sensor: id.clone(),
        topic: gateway.topics.deadletter(id),
        payload: payload::to_vec(&body),
    }]);
}

/// A link failure as a crash: SPEC reason, message, evidence.
pub fn crash(error: &LinkError) -> Crash {
    let crash = Crash::new(error.reason().as_str(), error.to_string());
    match error.evidence() {
        Some(evidence) => crash
            .with_evidence(evidence.bytes())
            .truncated(evidence.truncated()),
        None => crash,
    }
}
