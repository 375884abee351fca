//! Benchmark: sustained readings per second through the durable outbox and
//! the uplink to a local Mosquitto (started here on an ephemeral port), with
//! a 1 KiB payload; the fsyncs that cost, and the bytes written per reading.
//! Prints `name value unit` lines.
//!
//! `cargo run --release -p edgevisor --example outbox_bench [-- READINGS]`
//!
//! The producer appends one reading per call (as a sensor does) and keeps
//! at most `AHEAD` readings unacknowledged, so the figure is what the whole
//! path sustains, not how fast memory fills.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use edgevisor::config::{BrokerUrl, UpstreamConfig};
use edgevisor::outbox::{Message, Outbox, DB_FILE};
use edgevisor::uplink::Uplink;
use edgevisor_harness::sim::broker::Mosquitto;

const AHEAD: u64 = 8192;

fn write_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/io")
        .ok()
        .and_then(|io| {
            io.lines()
                .find_map(|l| l.strip_prefix("write_bytes: ").map(str::to_string))
        })
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// The uplink settings of the bench: the local broker, no TLS, no login.
fn upstream(port: u16) -> UpstreamConfig {
    UpstreamConfig {
        url: BrokerUrl {
            tls: false,
            host: "127.0.0.1".into(),
            port,
        },
        client_id: "outbox-bench".into(),
        username: None,
        password_file: None,
        ca_file: None,
        topic_prefix: "edgevisor".into(),
        keep_alive: Duration::from_secs(30),
        outbox_max_bytes: 256 << 20,
        client_cert: None,
        max_message_size: 1 << 28,
        replay_rate: None,
    }
}

/// Appends `readings` 1 KiB readings as sensors do: in batches, waiting for
/// room, and never more than `AHEAD` ahead of the acks.
async fn produce(outbox: &Outbox, uplink: &Uplink, readings: u64) {
    let topic: std::sync::Arc<str> = "edgevisor/bench/telemetry/s".into();
    let sensor: std::sync::Arc<str> = "s".into();
    let data = "x".repeat(1024 - 120);
    let mut appended = 0u64;
    while appended < readings {
        while appended - uplink.acked() >= AHEAD {
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        // As a sensor does: wait while the disk falls behind.
        outbox.room().await;
        let upto = (appended + 256).min(readings);
        for seq in appended + 1..=upto {
            let payload = format!(
                "{{\"gateway\":\"bench\",\"sensor\":\"s\",\"boot\":1,\"seq\":{seq},\"ts\":\"2026-11-25T00:00:00.000Z\",\"codec\":\"lines\",\"data\":{{\"text\":\"{data}\"}}}}"
            );
            outbox.append(vec![Message::telemetry(
                sensor.clone(),
                topic.clone(),
                seq,
                payload.into_bytes(),
            )]);
        }
        appended = upto;
        tokio::task::yield_now().await;
    }
    while uplink.acked() < readings {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let readings: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200_000);
    let broker = Mosquitto::start().await.unwrap();
    let dir = std::env::temp_dir().join(format!("edgevisor-outbox-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (outbox, _) = Outbox::open(&dir, 256 << 20);
    let uplink = Uplink::start(
        &upstream(broker.port()),
        "edgevisor/bench/status".into(),
        b"{}".to_vec(),
        outbox.clone(),
        std::sync::Arc::new(|error: &str| {
            edgevisor::outbox::Message::report(
                "_outbox".into(),
                "edgevisor/bench/crash/_outbox".into(),
                error.as_bytes().to_vec(),
            )
        }),
        Default::default(),
    )
    .unwrap();
    while !uplink.is_connected() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let io_before = write_bytes();
    let fsyncs_before = outbox.stats().fsyncs;
    let started = Instant::now();
    produce(&outbox, &uplink, readings).await;
    let elapsed = started.elapsed().as_secs_f64();
    outbox.sync();
    let stats = outbox.stats();
    let written = write_bytes() - io_before;
    let db = std::fs::metadata(dir.join(DB_FILE)).map_or(0, |m| m.len());
    println!(
        "outbox_throughput {:.0} readings/s",
        readings as f64 / elapsed
    );
    println!(
        "outbox_fsyncs {:.0} per_s",
        (stats.fsyncs - fsyncs_before) as f64 / elapsed
    );
    println!(
        "outbox_bytes_written {:.0} bytes/reading",
        written as f64 / readings as f64
    );
    println!("outbox_commits {} total", stats.commits);
    println!("outbox_readings {readings} total");
    println!(
        "outbox_dropped {} total",
        stats.dropped.values().sum::<u64>()
    );
    println!("outbox_file {db} bytes");
    drop(uplink);
    drop(outbox);
    let _ = std::fs::remove_dir_all(&dir);
}
