//! edgevisor's memory figures: idle RSS with 10 and 1,000 `tcp-listen`
//! sensors (no connections), the cost of each additional idle sensor, the
//! time from process start to `READY=1` with 1,000 sensors, and (with
//! `--long`) RSS sampled every second for 60 s while offered three times
//! the rate it sustains (found by a ramp first).

use std::time::Duration;

use anyhow::Context;
use tokio::process::Child;
use tokio::time::Instant;

use crate::edgevisor::{self, ListenSensor, Notifier};
use crate::forwarder::{terminate, Running};
use crate::load::{Load, Probe};
use crate::mosquitto::Mosquitto;
use crate::options::Options;
use crate::proc_stats;
use crate::report::{note, Report};
use crate::subscriber::Subscriber;
use crate::workdir::{free_ports, WorkDir};

/// How long an idle gateway settles before its RSS is read.
const SETTLE: Duration = Duration::from_secs(3);

/// A started gateway with `sensors` idle tcp-listen sensors.
struct Gateway {
    child: Child,
    _notifier: Notifier,
    ready: Duration,
    ports: Vec<u16>,
    _dir: WorkDir,
}

async fn start_gateway(
    opts: &Options,
    broker: u16,
    sensors: usize,
    outbox_max: &str,
) -> anyhow::Result<Gateway> {
    let dir = WorkDir::new(&opts.root, &format!("idle-{sensors}"))?;
    let ports = free_ports(sensors)?;
    let tables: Vec<ListenSensor> = ports
        .iter()
        .enumerate()
        .map(|(i, &port)| ListenSensor {
            id: format!("s{i:04}"),
            port,
            max_connections: None,
        })
        .collect();
    let text = edgevisor::config_text(&dir.path().join("state"), broker, outbox_max, &tables)?;
    let config = edgevisor::write_checked(&opts.edgevisor, dir.path(), &text).await?;
    let (child, mut notifier) = edgevisor::start(&opts.edgevisor, &config, dir.path()).await?;
    let ready = notifier.wait_ready(Duration::from_secs(60)).await?;
    Ok(Gateway {
        child,
        _notifier: notifier,
        ready,
        ports,
        _dir: dir,
    })
}

/// Runs the memory cases and prints their figures.
pub async fn run(opts: &Options, report: &mut Report) -> anyhow::Result<()> {
    let mut broker = Mosquitto::start_new(&opts.root).await?;
    let mut idle = [0u64; 2];
    for (slot, sensors) in [(0, 10), (1, 1000)] {
        note(&format!(
            "edgevisor.idle: {sensors} tcp-listen sensors, no connections"
        ));
        let mut gw = start_gateway(opts, broker.port(), sensors, "64MiB").await?;
        // Every listener answers (READY=1 should already mean so).
        for &port in [gw.ports[0], gw.ports[sensors - 1]].iter() {
            drop(Probe::connect(([127, 0, 0, 1], port).into(), Duration::from_secs(5)).await?);
        }
        tokio::time::sleep(SETTLE).await;
        let pid = gw.child.id().context("edgevisor exited")?;
        let (rss, _) = proc_stats::rss_kib(pid)?;
        idle[slot] = rss;
        report.figure(
            &format!("edgevisor.idle.s{sensors}.rss"),
            rss as f64 / 1024.0,
            "MiB",
        );
        report.figure(
            &format!("edgevisor.idle.s{sensors}.ready_ms"),
            gw.ready.as_secs_f64() * 1e3,
            "ms",
        );
        terminate(&mut gw.child, Duration::from_secs(30)).await?;
    }
    let per_sensor = idle[1].saturating_sub(idle[0]) as f64 / 990.0;
    report.figure("edgevisor.idle.per_sensor", per_sensor, "KiB");
    broker.stop().await?;
    if opts.long {
        overload(opts, report).await?;
    }
    Ok(())
}

/// Offers 3x the sustained rate for 60 s and samples RSS every second.
async fn overload(opts: &Options, report: &mut Report) -> anyhow::Result<()> {
    use crate::forwarder::Kind;
    let Some((mut broker, fw, sub, _probe)) = crate::scenario::setup(Kind::Edgevisor, opts).await?
    else {
        return Ok(());
    };
    let sustained = calibrate(&fw, &sub).await?;
    report.figure("edgevisor.overload.sustained", sustained, "readings/s");
    let offered = 3.0 * sustained;
    note(&format!(
        "edgevisor.overload: offering {offered:.0}/s for 60 s"
    ));
    let pid = fw.pid()?;
    let load = Load::connect(fw.listen, 10, 1000).await?;
    let delivered_before = sub.distinct();
    let sending = tokio::spawn(load.run(offered, Duration::from_secs(60)));
    let (mut min, mut max, mut last) = (u64::MAX, 0u64, 0u64);
    let start = Instant::now();
    for second in 1..=60u32 {
        tokio::time::sleep_until(start + Duration::from_secs(u64::from(second))).await;
        (last, _) = proc_stats::rss_kib(pid)?;
        (min, max) = (min.min(last), max.max(last));
    }
    let sent = sending.await.context("overload load")??;
    let delivered = sub.distinct() - delivered_before;
    report.figure("edgevisor.overload.offered_rate", offered, "readings/s");
    report.figure(
        "edgevisor.overload.accepted_rate",
        sent.sent as f64 / 60.0,
        "readings/s",
    );
    report.figure(
        "edgevisor.overload.delivered_rate",
        delivered as f64 / start.elapsed().as_secs_f64(),
        "readings/s",
    );
    report.figure("edgevisor.overload.rss_min", min as f64 / 1024.0, "MiB");
    report.figure("edgevisor.overload.rss_max", max as f64 / 1024.0, "MiB");
    report.figure("edgevisor.overload.rss_last", last as f64 / 1024.0, "MiB");
    let _ = fw.stop().await?;
    drop(sent);
    broker.stop().await
}

/// The highest rate of a doubling ramp (3 s each, from 5,000/s) that
/// edgevisor delivers in full with at most 2 s of lag: what it sustains end
/// to end here, broker and subscriber included. An all-out load is no
/// measure: delivery slows while ingest takes the CPU.
async fn calibrate(fw: &Running, sub: &Subscriber) -> anyhow::Result<f64> {
    let mut sustained = 0.0;
    let mut rate = 5_000.0;
    for step in 0..6 {
        let load = Load::connect(fw.listen, 10, step * 10).await?;
        let want = sub.distinct() + load.run(rate, Duration::from_secs(3)).await?.sent;
        if !sub.wait_for(want, Duration::from_secs(2)).await {
            // Start the overload from an empty outbox.
            let _ = sub.wait_for(want, Duration::from_secs(60)).await;
            break;
        }
        sustained = rate;
        rate *= 2.0;
    }
    Ok(sustained)
}
