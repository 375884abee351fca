//! edgevisor's backlog case: the broker is down while 10,000 readings/s
//! arrive for 10 s, so everything goes to the durable outbox; then the
//! broker starts and the outbox replays. The counting subscriber's session
//! is made persistent beforehand (a persistent broker remembers it across
//! the outage), so nothing replayed in the first instants is missed.

use std::time::Duration;

use anyhow::Context;
use tokio::time::Instant;

use crate::edgevisor::{self, ListenSensor, GATEWAY};
use crate::load::{Load, Probe};
use crate::mosquitto::Mosquitto;
use crate::options::Options;
use crate::proc_stats;
use crate::report::Report;
use crate::subscriber::Subscriber;
use crate::workdir::{free_port, WorkDir};

const RATE: f64 = 10_000.0;
const SENDING: Duration = Duration::from_secs(10);
const CONNECTIONS: usize = 10;
const CLIENT_ID: &str = "bench-backlog";

/// Runs the backlog case and prints `edgevisor.backlog.*`.
pub async fn run(opts: &Options, report: &mut Report) -> anyhow::Result<()> {
    let filter = format!("edgevisor/{GATEWAY}/telemetry/#");
    let mut broker = Mosquitto::prepare(&opts.root, true)?;
    remember_subscriber(&mut broker, &filter).await?;

    let dir = WorkDir::new(&opts.root, "backlog")?;
    let port = free_port()?;
    let sensor = ListenSensor {
        id: "load".into(),
        port,
        max_connections: Some(2000),
    };
    let text = edgevisor::config_text(&dir.path().join("state"), broker.port(), "1GiB", &[sensor])?;
    let config = edgevisor::write_checked(&opts.edgevisor, dir.path(), &text).await?;
    let (mut child, mut notifier) = edgevisor::start(&opts.edgevisor, &config, dir.path()).await?;
    notifier.wait_ready(Duration::from_secs(30)).await?;
    let pid = child.id().context("edgevisor exited")?;
    let addr = ([127, 0, 0, 1], port).into();
    drop(Probe::connect(addr, Duration::from_secs(10)).await?);
    let load = Load::connect(addr, CONNECTIONS, 0).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;

    let before = proc_stats::sample(pid)?;
    let started = Instant::now();
    // The connections stay open until the end, as a sensor's would.
    let load = load.run(RATE, SENDING).await?;
    let sent = load.sent;
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut stored = 0;
    while stored < sent && Instant::now() < deadline {
        stored = edgevisor::outbox_telemetry(&opts.edgevisor, &config).await?;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let written = started.elapsed();
    let buffered = proc_stats::sample(pid)?.since(&before);
    report.figure(&format!("{PREFIX}.sent"), sent as f64, "readings");
    report.figure(&format!("{PREFIX}.stored"), stored as f64, "readings");
    report.figure(
        &format!("{PREFIX}.write_rate"),
        stored as f64 / written.as_secs_f64(),
        "readings/s",
    );
    report.figure(
        &format!("{PREFIX}.disk_bytes_per_reading"),
        buffered.write_bytes as f64 / sent.max(1) as f64,
        "bytes",
    );
    report.figure(&format!("{PREFIX}.buffering_cpu_s"), buffered.cpu_s, "s");

    replay(opts, &mut broker, &filter, pid, sent, report).await?;
    crate::forwarder::terminate(&mut child, Duration::from_secs(30)).await?;
    drop((load, notifier));
    broker.stop().await
}

/// Where the backlog figures are named.
const PREFIX: &str = "edgevisor.backlog";

/// Makes the counting subscriber's session persistent on the (persistent)
/// broker, then stops the broker: the outage starts.
async fn remember_subscriber(broker: &mut Mosquitto, filter: &str) -> anyhow::Result<()> {
    broker.start().await?;
    let mut seed = Subscriber::start(
        broker.port(),
        CLIENT_ID,
        false,
        filter,
        Duration::from_secs(5),
    );
    seed.wait_subscribed(Duration::from_secs(5)).await?;
    seed.stop();
    tokio::time::sleep(Duration::from_millis(200)).await;
    broker.stop().await
}

/// Starts the broker and counts the replay of `sent` readings.
async fn replay(
    opts: &Options,
    broker: &mut Mosquitto,
    filter: &str,
    pid: u32,
    sent: u64,
    report: &mut Report,
) -> anyhow::Result<()> {
    let sub = Subscriber::start(
        broker.port(),
        CLIENT_ID,
        false,
        filter,
        Duration::from_secs(30),
    );
    let replay_before = proc_stats::sample(pid)?;
    broker.start().await?;
    let up = Instant::now();
    let complete = sub.wait_for(sent, opts.drain_timeout).await;
    let replay = proc_stats::sample(pid)?.since(&replay_before);
    let (first, last) = (
        sub.first_delivery(),
        sub.last_delivery().filter(|_| complete),
    );
    let delivered = sub.distinct();
    let p = PREFIX;
    report.figure(&format!("{p}.delivered"), delivered as f64, "readings");
    report.figure(
        &format!("{p}.lost"),
        sent.saturating_sub(delivered) as f64,
        "readings",
    );
    report.figure(
        &format!("{p}.duplicates"),
        sub.total().saturating_sub(delivered) as f64,
        "readings",
    );
    if let Some(first) = first {
        report.figure(
            &format!("{p}.reconnect_s"),
            first.saturating_duration_since(up).as_secs_f64(),
            "s",
        );
    }
    if let (Some(first), Some(last)) = (first, last) {
        let replaying = last
            .saturating_duration_since(first)
            .as_secs_f64()
            .max(1e-3);
        report.figure(
            &format!("{p}.replay_rate"),
            delivered as f64 / replaying,
            "readings/s",
        );
    }
    let drain = last.map_or(up.elapsed(), |l| l.saturating_duration_since(up));
    report.figure(&format!("{p}.drain_s"), drain.as_secs_f64(), "s");
    report.figure(&format!("{p}.replay_cpu_s"), replay.cpu_s, "s");
    report.figure(
        &format!("{p}.peak_rss"),
        replay.hwm_kib as f64 / 1024.0,
        "MiB",
    );
    Ok(())
}
