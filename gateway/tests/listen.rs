//! `tcp-listen` sensors end to end:
//! - one with 200 connected sensors, 20 of which send a corrupt frame: the
//!   20 are crashed and reported one by one, the other 180 deliver every
//!   reading they wrote, without a gap;
//! - one whose port is taken: its own start fails, the others deliver.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use base64::Engine;
use edgevisor_devices::codec::CodecKind;
use edgevisor_harness::sim::tcp::TcpSensorClient;
use edgevisor_harness::sim::{Fault, SimConfig};
use nix::sys::signal::Signal;
use support::{free_port, header, Gateway, Mosquitto, TempDir, Upstream};

const CLIENTS: u64 = 200;
const CORRUPTING: u64 = 20;
/// Each client numbers its readings from `k * SPAN`, so a reading's number
/// tells which client wrote it.
const SPAN: u64 = 1_000_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_connections_twenty_corrupt_the_rest_deliver_without_a_gap() {
    let broker = Mosquitto::start().await.unwrap();
    let upstream = Upstream::connect(broker.port()).await;
    let port = free_port();
    let dir = TempDir::new("e2e-listen");
    let config = header("gw5", broker.port(), &dir.0.join("state"))
        + &format!("\n[[sensor]]\nid = \"nodes\"\ntransport = \"tcp-listen\"\nlisten = \"127.0.0.1:{port}\"\ncodec = \"frame\"\nmax_connections = 256\nread_timeout = \"10s\"\n");
    let mut gateway = Gateway::start_in(dir, &config).await;
    upstream
        .wait("online", 10, |m| {
            m.iter().any(|m| m.topic.ends_with("gw5/status"))
        })
        .await;

    let target = format!("127.0.0.1:{port}").parse().unwrap();
    let mut clients: Vec<TcpSensorClient> = (1..=CLIENTS)
        .map(|k| {
            let mut sim = SimConfig::new(CodecKind::Frame, 20.0);
            sim.first_seq = k * SPAN;
            TcpSensorClient::start(sim, target, Duration::from_millis(100))
        })
        .collect();
    upstream
        .wait("every client delivering", 20, |_| {
            upstream.seqs("nodes").len() as u64 > CLIENTS * 5
        })
        .await;
    for client in clients.iter().take(CORRUPTING as usize) {
        client.handle.inject(Fault::BadChecksum);
    }
    upstream
        .wait("20 crash reports", 20, |_| {
            upstream.on("crash/nodes").len() as u64 >= CORRUPTING
        })
        .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    for client in &mut clients {
        client.handle.stop_and_wait().await;
    }
    let written: HashMap<u64, u64> = clients
        .iter()
        .enumerate()
        .map(|(i, c)| (i as u64 + 1, c.handle.written()))
        .collect();
    let expected: u64 = written
        .iter()
        .filter(|(k, _)| **k > CORRUPTING)
        .map(|(_, n)| n)
        .sum();
    let delivered_good = || {
        upstream
            .on("telemetry/nodes")
            .iter()
            .filter_map(|m| {
                let b64 = m.json["data"]["payload_b64"].as_str()?;
                let bytes = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
                Some(u64::from_be_bytes(bytes.get(..8)?.try_into().ok()?))
            })
            .filter(|seq| seq / SPAN > CORRUPTING)
            .collect::<BTreeSet<u64>>()
    };
    upstream
        .wait("every good reading", 20, |_| {
            delivered_good().len() as u64 >= expected
        })
        .await;
    let delivered = delivered_good();
    for k in CORRUPTING + 1..=CLIENTS {
        let n = written[&k];
        let got: Vec<u64> = delivered.range(k * SPAN..(k + 1) * SPAN).copied().collect();
        let want: Vec<u64> = (k * SPAN..k * SPAN + n).collect();
        assert_eq!(got, want, "client {k} wrote {n} readings");
    }
    let reports = upstream.on("crash/nodes");
    assert!(
        reports
            .iter()
            .all(|r| r.json["reason"] == "corrupt_frame" && r.json["action"] == "none"),
        "{:?}",
        reports[0].json
    );
    let paths: BTreeSet<String> = reports
        .iter()
        .map(|r| r.json["path"].as_str().unwrap().to_string())
        .collect();
    assert!(
        paths.len() as u64 >= CORRUPTING,
        "one report per corrupt connection"
    );
    assert!(
        paths.iter().all(|p| p.starts_with("root/nodes/127.0.0.1:")),
        "{paths:?}"
    );
    gateway.signal(Signal::SIGTERM);
    assert_eq!(gateway.exit_code(20).await, Some(0));
}

/// Binding the port is part of a tcp-listen sensor's start: a port that is
/// already taken is that sensor's `start_failed` crash under its own window
/// (quarantined once the window is spent), and the gateway's other sensors
/// keep delivering.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_taken_port_fails_its_sensor_and_leaves_the_others_alone() {
    let broker = Mosquitto::start().await.unwrap();
    let upstream = Upstream::connect(broker.port()).await;
    let squatter = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = squatter.local_addr().unwrap().port();
    let free = free_port();
    let dir = TempDir::new("e2e-listen-taken");
    let sensor = |id: &str, port: u16| {
        format!("\n[[sensor]]\nid = \"{id}\"\ntransport = \"tcp-listen\"\nlisten = \"127.0.0.1:{port}\"\ncodec = \"json\"\n")
    };
    let config = header("gw6", broker.port(), &dir.0.join("state"))
        + &sensor("taken", taken)
        + &sensor("free", free);
    let mut gateway = Gateway::start_in(dir, &config).await;
    upstream
        .wait("the taken sensor quarantined", 20, |_| {
            upstream
                .on("state/taken")
                .last()
                .is_some_and(|m| m.json["state"] == "quarantined")
        })
        .await;
    let report = &upstream.on("crash/taken")[0].json;
    assert_eq!(report["reason"], "start_failed", "{report}");
    assert_eq!(report["path"], "root/taken", "{report}");

    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", free))
        .await
        .unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut stream, b"{\"t\":21.5}\n")
        .await
        .unwrap();
    upstream
        .wait("a reading from the free sensor", 10, |_| {
            !upstream.on("telemetry/free").is_empty()
        })
        .await;
    drop(squatter);
    gateway.signal(Signal::SIGTERM);
    assert_eq!(gateway.exit_code(20).await, Some(0));
}
