//! Delivery end to end (SPEC section 5, "Delivery"): the `edgevisor`
//! binary with its durable outbox, a real Mosquitto started here on an
//! ephemeral port (no persistence), 1,000 readings per scenario from a TCP
//! sensor, and an upstream subscriber. Each scenario asserts that every
//! accepted reading arrives, by `(sensor, boot, seq)`, and prints the
//! duplicates that at-least-once delivery produced.
//!
//! When the broker comes back, the gateway is held with SIGSTOP until a
//! fresh subscriber is in place: a broker without persistence forgets
//! subscriptions too, and what it accepted before anyone subscribed is not
//! the gateway's loss to count.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::Signal;
use support::{Gateway, Mosquitto, Msg, TempDir, Upstream};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

const READINGS: u64 = 1000;

/// A sensor that writes `READINGS` lines in total, `per_tick` every 20 ms,
/// across however many connections the gateway makes, then stays quiet.
struct LineSensor {
    addr: SocketAddr,
    written: Arc<AtomicU64>,
}

impl LineSensor {
    async fn start(per_tick: u64) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let written = Arc::new(AtomicU64::new(0));
        let counter = written.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut socket, _)) = listener.accept().await else {
                    return;
                };
                let counter = counter.clone();
                tokio::spawn(async move {
                    loop {
                        let n = counter.load(Ordering::SeqCst);
                        if n >= READINGS {
                            tokio::time::sleep(Duration::from_secs(3600)).await;
                            return;
                        }
                        let upto = (n + per_tick).min(READINGS);
                        let mut text = String::new();
                        for i in n + 1..=upto {
                            text.push_str(&format!("reading {i}\n"));
                        }
                        if socket.write_all(text.as_bytes()).await.is_err() {
                            return;
                        }
                        counter.store(upto, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                });
            }
        });
        Self { addr, written }
    }

    fn written(&self) -> u64 {
        self.written.load(Ordering::SeqCst)
    }
}

fn config(port: u16, state_dir: &std::path::Path, sensor: SocketAddr) -> String {
    format!(
        "[gateway]\nid = \"gw\"\nstate_dir = \"{}\"\n\n[upstream]\nurl = \"mqtt://127.0.0.1:{port}\"\nkeep_alive = \"1s\"\n\n[supervisor]\nbackoff_initial = \"20ms\"\nbackoff_max = \"200ms\"\n\n[[sensor]]\nid = \"s\"\ntransport = \"tcp\"\naddress = \"{sensor}\"\ncodec = \"lines\"\nread_timeout = \"1h\"\n",
        state_dir.display()
    )
}

/// Telemetry `(boot, seq)` in arrival order, over several subscribers
/// (each with how many of its first messages count: a subscriber that
/// reconnects to a restarted broker would count the same delivery twice).
fn arrivals(upstreams: &[(&Upstream, usize)]) -> Vec<(u64, u64)> {
    upstreams
        .iter()
        .flat_map(|(u, upto)| u.all().into_iter().take(*upto))
        .filter(|m| m.topic == "edgevisor/gw/telemetry/s")
        .map(|m| {
            (
                m.json["boot"].as_u64().unwrap(),
                m.json["seq"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// The last `accepted` count for sensor `s` in `status` of `boot`.
fn accepted(msgs: &[Msg], boot: u64) -> u64 {
    msgs.iter()
        .filter(|m| m.topic == "edgevisor/gw/status" && m.json["boot"] == boot)
        .filter_map(|m| m.json["accepted"]["s"].as_u64())
        .next_back()
        .unwrap_or(0)
}

/// Asserts that `(boot, 1..=upto)` all arrived; returns the duplicates.
fn assert_all_arrived(scenario: &str, got: &[(u64, u64)], boot: u64, upto: u64) -> usize {
    let of_boot: Vec<u64> = got
        .iter()
        .filter(|(b, _)| *b == boot)
        .map(|(_, s)| *s)
        .collect();
    let unique: BTreeSet<u64> = of_boot.iter().copied().collect();
    let missing: Vec<u64> = (1..=upto).filter(|s| !unique.contains(s)).collect();
    assert!(
        missing.is_empty(),
        "{scenario}: boot {boot}: {} of {upto} accepted readings lost, first {:?}",
        missing.len(),
        &missing[..missing.len().min(20)]
    );
    let duplicates = of_boot.len() - unique.len();
    println!(
        "{scenario}: boot {boot}: {upto} accepted, {} received, 0 lost, {duplicates} duplicates",
        of_boot.len()
    );
    duplicates
}

async fn wait_for(what: &str, secs: u64, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !done() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Brings the broker back while the gateway is frozen, so a subscriber is
/// in place before the gateway can publish again.
async fn restart_broker_under(broker: &mut Mosquitto, gateway: &Gateway) -> Upstream {
    gateway.signal(Signal::SIGSTOP);
    broker.restart().await.unwrap();
    let upstream = Upstream::connect(broker.port()).await;
    gateway.signal(Signal::SIGCONT);
    upstream
}

async fn all_arrive(
    scenario: &str,
    upstreams: &[(&Upstream, usize)],
    boot: u64,
    upto: u64,
) -> usize {
    wait_for(
        &format!("{scenario}: all {upto} readings upstream"),
        30,
        || {
            let got: BTreeSet<u64> = arrivals(upstreams)
                .into_iter()
                .filter(|(b, _)| *b == boot)
                .map(|(_, s)| s)
                .collect();
            (1..=upto).all(|s| got.contains(&s))
        },
    )
    .await;
    assert_all_arrived(scenario, &arrivals(upstreams), boot, upto)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_killed_and_restarted_mid_stream_loses_nothing() {
    let mut broker = Mosquitto::start().await.unwrap();
    let first = Upstream::connect(broker.port()).await;
    let sensor = LineSensor::start(10).await;
    let dir = TempDir::new("delivery-kill-broker");
    let cfg = config(broker.port(), &dir.0.join("state"), sensor.addr);
    let mut gateway = Gateway::start_in(dir, &cfg).await;
    wait_for("300 readings upstream", 20, || {
        first.on("telemetry/s").len() >= 300
    })
    .await;
    broker.kill().await.unwrap();
    let before_kill = first.all().len();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let second = restart_broker_under(&mut broker, &gateway).await;
    wait_for("the sensor to finish", 20, || sensor.written() >= READINGS).await;
    let upstreams = [(&first, before_kill), (&second, usize::MAX)];
    all_arrive("broker restart", &upstreams, 1, READINGS).await;
    second
        .wait("status accepted 1000", 10, |m| accepted(m, 1) == READINGS)
        .await;
    gateway.signal(Signal::SIGTERM);
    assert_eq!(gateway.exit_code(20).await, Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_frozen_past_keep_alive_then_thawed_loses_nothing() {
    let broker = Mosquitto::start().await.unwrap();
    let upstream = Upstream::connect(broker.port()).await;
    let sensor = LineSensor::start(10).await;
    let dir = TempDir::new("delivery-freeze");
    let cfg = config(broker.port(), &dir.0.join("state"), sensor.addr);
    let mut gateway = Gateway::start_in(dir, &cfg).await;
    wait_for("300 readings upstream", 20, || {
        upstream.on("telemetry/s").len() >= 300
    })
    .await;
    broker.pause().unwrap();
    // Keep-alive is 1 s: the gateway gives the connection up after 1.5 s.
    tokio::time::sleep(Duration::from_secs(3)).await;
    broker.resume().unwrap();
    wait_for("the sensor to finish", 20, || sensor.written() >= READINGS).await;
    all_arrive("broker frozen", &[(&upstream, usize::MAX)], 1, READINGS).await;
    assert!(
        gateway.log().contains("upstream connection lost"),
        "the freeze outlasted keep-alive:\n{}",
        gateway.log()
    );
    gateway.signal(Signal::SIGTERM);
    assert_eq!(gateway.exit_code(20).await, Some(0));
}

/// Boot-1 telemetry seqs in the outbox file of `state_dir`.
fn seqs_on_disk(state_dir: &std::path::Path) -> BTreeSet<u64> {
    let conn = rusqlite::Connection::open(state_dir.join("outbox.db")).unwrap();
    let mut statement = conn.prepare("SELECT payload FROM telemetry").unwrap();
    let payloads: Vec<Vec<u8>> = statement
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    payloads
        .iter()
        .map(|p| serde_json::from_slice::<serde_json::Value>(p).unwrap())
        .filter(|v| v["boot"] == 1)
        .map(|v| v["seq"].as_u64().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_sigkilled_mid_stream_delivers_what_it_accepted_after_restart() {
    let broker = Mosquitto::start().await.unwrap();
    let upstream = Upstream::connect(broker.port()).await;
    let sensor = LineSensor::start(4).await;
    let dir = TempDir::new("delivery-sigkill");
    let state_dir = dir.0.join("state");
    let cfg = config(broker.port(), &state_dir, sensor.addr);
    let gateway = Gateway::start_in(dir, &cfg).await;
    wait_for("300 readings upstream and a status", 20, || {
        upstream.on("telemetry/s").len() >= 300 && accepted(&upstream.all(), 1) > 0
    })
    .await;
    // Freeze the broker so the outbox fills with unacknowledged readings,
    // then kill the gateway without warning.
    broker.pause().unwrap();
    let accepted_before = accepted(&upstream.all(), 1);
    tokio::time::sleep(Duration::from_millis(800)).await;
    let dir = gateway.kill().await;
    broker.resume().unwrap();
    let held = seqs_on_disk(&state_dir);
    assert!(held.len() >= 50, "the outbox held readings: {}", held.len());
    let mut gateway = Gateway::start_in(dir, &cfg).await;
    let all = [(&upstream, usize::MAX)];
    all_arrive("gateway SIGKILL", &all, 1, accepted_before).await;
    wait_for("every reading the file held", 30, || {
        let got: BTreeSet<u64> = arrivals(&all)
            .into_iter()
            .filter(|(b, _)| *b == 1)
            .map(|(_, s)| s)
            .collect();
        held.is_subset(&got)
    })
    .await;
    wait_for("the sensor to finish", 20, || sensor.written() >= READINGS).await;
    upstream
        .wait("boot 2 status", 10, |m| accepted(m, 2) > 0)
        .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let accepted_after = accepted(&upstream.all(), 2);
    all_arrive("gateway SIGKILL", &all, 2, accepted_after).await;
    let boot1: BTreeSet<u64> = arrivals(&all)
        .into_iter()
        .filter(|(b, _)| *b == 1)
        .map(|(_, s)| s)
        .collect();
    println!(
        "gateway SIGKILL: status said {accepted_before} accepted before the kill; the file held {} unacknowledged (seq {}..={}); {} of boot 1 delivered; {accepted_after} in boot 2; {} lines written",
        held.len(),
        held.first().unwrap(),
        held.last().unwrap(),
        boot1.len(),
        sensor.written()
    );
    gateway.signal(Signal::SIGTERM);
    assert_eq!(gateway.exit_code(20).await, Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_down_for_the_whole_run_then_everything_drains_oldest_first() {
    let mut broker = Mosquitto::start().await.unwrap();
    broker.kill().await.unwrap();
    let sensor = LineSensor::start(10).await;
    let dir = TempDir::new("delivery-offline");
    let cfg = config(broker.port(), &dir.0.join("state"), sensor.addr);
    let mut gateway = Gateway::start_in(dir, &cfg).await;
    wait_for("the sensor to finish", 20, || sensor.written() >= READINGS).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let upstream = restart_broker_under(&mut broker, &gateway).await;
    let all = [(&upstream, usize::MAX)];
    all_arrive("broker down all along", &all, 1, READINGS).await;
    let mut first_seen = BTreeMap::new();
    for (i, (_, seq)) in arrivals(&all).into_iter().enumerate() {
        first_seen.entry(seq).or_insert(i);
    }
    let order: Vec<usize> = first_seen.values().copied().collect();
    assert!(
        order.windows(2).all(|w| w[0] < w[1]),
        "drained oldest first"
    );
    gateway.signal(Signal::SIGTERM);
    assert_eq!(gateway.exit_code(20).await, Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_replay_rate_live_readings_go_first_while_the_backlog_is_paced() {
    let mut broker = Mosquitto::start().await.unwrap();
    broker.kill().await.unwrap();
    // 200 readings a second; the backlog replays at 100 a second.
    let sensor = LineSensor::start(4).await;
    let dir = TempDir::new("delivery-replay");
    let cfg = config(broker.port(), &dir.0.join("state"), sensor.addr).replace(
        "keep_alive = \"1s\"\n",
        "keep_alive = \"1s\"\nreplay_rate = 100\n",
    );
    let mut gateway = Gateway::start_in(dir, &cfg).await;
    wait_for("a backlog of 400", 20, || sensor.written() >= 400).await;
    let upstream = restart_broker_under(&mut broker, &gateway).await;
    // The backlog is what waits when the gateway's connection comes up (its
    // retained status is the first thing it sends), not when the broker
    // does: its reconnect backoff lies in between.
    upstream
        .wait("the gateway connected", 20, |m| {
            m.iter().any(|m| m.topic == "edgevisor/gw/status")
        })
        .await;
    let backlog = sensor.written();
    all_arrive("replay", &[(&upstream, usize::MAX)], 1, READINGS).await;
    let telemetry = upstream.on("telemetry/s");
    let seq = |m: &Msg| m.json["seq"].as_u64().unwrap();
    let ts = |m: &Msg| humantime::parse_rfc3339(m.json["ts"].as_str().unwrap()).unwrap();
    // Readings that came after the reconnect went out as they arrived...
    let mut live_latency: Vec<Duration> = telemetry
        .iter()
        .filter(|m| seq(m) > backlog + 20)
        .map(|m| m.arrived.duration_since(ts(m)).unwrap_or_default())
        .collect();
    live_latency.sort();
    let median = live_latency[live_latency.len() / 2];
    // ...while the backlog took its time: 400 or so at 100 a second.
    let backlog_arrivals: Vec<std::time::SystemTime> = telemetry
        .iter()
        .filter(|m| seq(m) <= backlog.saturating_sub(20))
        .map(|m| m.arrived)
        .collect();
    let first = *backlog_arrivals.iter().min().unwrap();
    let last = *backlog_arrivals.iter().max().unwrap();
    let spread = last.duration_since(first).unwrap();
    println!(
        "replay: backlog {backlog} drained over {spread:?}; live median latency {median:?} ({} live readings)",
        live_latency.len()
    );
    assert!(
        median < Duration::from_millis(500),
        "live readings waited behind the backlog: median {median:?}"
    );
    assert!(
        spread >= Duration::from_secs(2),
        "the backlog of {backlog} went out in {spread:?}: not paced at 100/s"
    );
    gateway.signal(Signal::SIGTERM);
    assert_eq!(gateway.exit_code(20).await, Some(0));
}
