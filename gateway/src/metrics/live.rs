//! Figures kept by the parts that own them, read at a scrape: the sensors'
//! counters (bumped where a reading is numbered or a frame skipped), the
//! outbox's figures (kept by its state as messages come and go) and the
//! uplink's (kept by its connection task). Nothing is recounted here: a
//! scrape reads atomics and the outbox's running totals.

use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;

use crate::outbox::{Class, Outbox};
use crate::sensor::{Counters, Gateway};
use crate::uplink::Uplink;

/// The live parts a scrape reads.
pub struct Live {
    /// Per-sensor counters.
    pub gateway: Arc<Gateway>,
    /// The outbox.
    pub outbox: Outbox,
    /// The upstream connection.
    pub uplink: Arc<Uplink>,
}

impl fmt::Debug for Live {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Live")
    }
}

/// The `class` label's values, by `Class as usize`.
const CLASSES: [(Class, &str); 2] = [(Class::Report, "report"), (Class::Telemetry, "telemetry")];

impl Collector for Live {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), fmt::Error> {
        self.encode_sensors(&mut encoder)?;
        self.encode_outbox(&mut encoder)?;
        self.encode_uplink(&mut encoder)
    }
}

impl Live {
    fn encode_sensors(&self, encoder: &mut DescriptorEncoder<'_>) -> fmt::Result {
        let sensors = self.gateway.all_counters();
        per_sensor(
            encoder,
            &sensors,
            "sensor_readings",
            "Readings handed to the outbox (numbered with seq) since start.",
            MetricType::Counter,
            |c| Some(ConstCounter::new(c.seq.load(Ordering::Relaxed))),
        )?;
        per_sensor(
            encoder,
            &sensors,
            "sensor_dead_letters",
            "Corrupt frames skipped and sent as dead letters (on_corrupt = \"skip\").",
            MetricType::Counter,
            |c| Some(ConstCounter::new(c.skipped.load(Ordering::Relaxed))),
        )?;
        per_sensor(
            encoder,
            &sensors,
            "sensor_last_reading_timestamp_seconds",
            "When the sensor's last reading was taken (Unix time).",
            MetricType::Gauge,
            |c| match c.last_reading_ms.load(Ordering::Relaxed) {
                0 => None,
                ms => Some(ConstGauge::new(ms as f64 / 1000.0)),
            },
        )
    }

    fn encode_outbox(&self, encoder: &mut DescriptorEncoder<'_>) -> fmt::Result {
        let stats = self.outbox.stats();
        let per_class = |encoder: &mut DescriptorEncoder<'_>,
                         name: &str,
                         help: &str,
                         value: &dyn Fn(&crate::outbox::ClassFigures) -> f64|
         -> fmt::Result {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            for (class, label) in CLASSES {
                let figures = &stats.classes[class as usize];
                let labels = [("class", label)];
                let metric = family.encode_family(&labels)?;
                ConstGauge::new(value(figures)).encode(metric)?;
            }
            Ok(())
        };
        per_class(
            encoder,
            "outbox_messages",
            "Messages held in the outbox, awaiting the broker's PUBACK.",
            &|f| f.messages as f64,
        )?;
        per_class(
            encoder,
            "outbox_bytes",
            "Topic and payload bytes held in the outbox.",
            &|f| f.bytes as f64,
        )?;
        per_class(
            encoder,
            "outbox_oldest_age_seconds",
            "Age of the oldest message held (0 when none).",
            &|f| f.oldest_age.map_or(0.0, |a| a.as_secs_f64()),
        )?;
        let mut dropped = encoder.encode_descriptor(
            "outbox_dropped",
            "Messages dropped: reason full is the outbox bound (oldest telemetry first), set_aside a message the broker will not take.",
            None,
            MetricType::Counter,
        )?;
        for (class, label) in CLASSES {
            let full = stats.classes[class as usize].dropped;
            let labels = [("class", label), ("reason", "full")];
            let metric = dropped.encode_family(&labels)?;
            ConstCounter::new(full).encode(metric)?;
        }
        for (class, label) in CLASSES {
            let set_aside = stats.classes[class as usize].set_aside;
            let labels = [("class", label), ("reason", "set_aside")];
            let metric = dropped.encode_family(&labels)?;
            ConstCounter::new(set_aside).encode(metric)?;
        }
        let written = encoder.encode_descriptor(
            "outbox_written_bytes",
            "Bytes the gateway process has caused to be written to storage (the kernel's write_bytes; the outbox is nearly all of it).",
            None,
            MetricType::Counter,
        )?;
        ConstCounter::new(written_bytes()).encode(written)
    }

    fn encode_uplink(&self, encoder: &mut DescriptorEncoder<'_>) -> fmt::Result {
        let connected = encoder.encode_descriptor(
            "uplink_connected",
            "1 while the upstream broker connection is up.",
            None,
            MetricType::Gauge,
        )?;
        ConstGauge::new(i64::from(self.uplink.is_connected())).encode(connected)?;
        let connects = self.uplink.history().connects;
        let reconnects = encoder.encode_descriptor(
            "uplink_reconnects",
            "Connections to the upstream broker after the first.",
            None,
            MetricType::Counter,
        )?;
        ConstCounter::new(connects.saturating_sub(1)).encode(reconnects)?;
        let acked = encoder.encode_descriptor(
            "uplink_acked",
            "Publishes the upstream broker acknowledged (PUBACK).",
            None,
            MetricType::Counter,
        )?;
        ConstCounter::new(self.uplink.acked()).encode(acked)
    }
}

/// One family with a `{sensor}` series per sensor that `value` gives a
/// figure for.
fn per_sensor<M: EncodeMetric>(
    encoder: &mut DescriptorEncoder<'_>,
    sensors: &[(String, Arc<Counters>)],
    name: &str,
    help: &str,
    kind: MetricType,
    value: impl Fn(&Counters) -> Option<M>,
) -> fmt::Result {
    let mut family = encoder.encode_descriptor(name, help, None, kind)?;
    for (sensor, counters) in sensors {
        let Some(metric) = value(counters) else {
            continue;
        };
        let labels = [("sensor", sensor.as_str())];
        metric.encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

/// `write_bytes` of `/proc/self/io`, 0 where it cannot be read.
fn written_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/io")
        .ok()
        .and_then(|io| {
            io.lines()
                .find_map(|l| l.strip_prefix("write_bytes:"))
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(0)
}
