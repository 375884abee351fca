//! The throughput matrix: for every connection count, rate and forwarder,
//! a fresh broker, the forwarder, the counting subscriber and the load;
//! then its figures. Also the order of the whole run (`run_all`).

use std::time::Duration;

use anyhow::{bail, Context};
use tokio::time::Instant;

use crate::forwarder::{self, Kind, Running};
use crate::load::{Load, Probe};
use crate::mosquitto::Mosquitto;
use crate::options::Options;
use crate::perf::SyscallCounter;
use crate::proc_stats::{self, Delta};
use crate::report::{note, Case, Report, Runs};
use crate::subscriber::Subscriber;
use crate::{backlog, memory};

/// Runs every section the options ask for, printing figures as they come.
pub async fn run_all(opts: Options) -> anyhow::Result<()> {
    if opts.runs_edgevisor() && !opts.edgevisor.is_file() {
        bail!(
            "no edgevisor binary at {}: build it (cargo build --release -p edgevisor) or pass --edgevisor PATH",
            opts.edgevisor.display()
        );
    }
    let mut report = Report::default();
    if opts.throughput {
        let names: Vec<&str> = opts.forwarders.iter().map(|k| k.name()).collect();
        for &connections in &opts.connections {
            for &rate in &opts.rates {
                let case = Case { connections, rate };
                for run in Runs::new(opts.repeat) {
                    for &kind in &opts.forwarders {
                        let name = case.prefix(kind.name(), run);
                        note(&format!(
                            "{name}: {connections} connections, {rate}/s for {:?}",
                            opts.duration
                        ));
                        if let Err(e) = throughput(kind, case, &name, &opts, &mut report).await {
                            println!("# {name} failed: {e:#}");
                        }
                    }
                }
                report.medians(&names, case, opts.repeat);
                report.ratios(&names, case, opts.repeat);
            }
        }
    }
    if opts.backlog && opts.runs_edgevisor() {
        note("edgevisor.backlog: broker down while 10k/s arrive for 10 s, then up");
        if let Err(e) = backlog::run(&opts, &mut report).await {
            println!("# edgevisor.backlog failed: {e:#}");
        }
    }
    if opts.memory && opts.runs_edgevisor() {
        if let Err(e) = memory::run(&opts, &mut report).await {
            println!("# edgevisor memory failed: {e:#}");
        }
    }
    Ok(())
}

/// Sends probe readings until one arrives through the forwarder: from then
/// on it delivers end to end.
pub async fn wait_end_to_end(
    fw: &Running,
    sub: &Subscriber,
    patience: Duration,
) -> anyhow::Result<Probe> {
    let deadline = Instant::now() + patience;
    let mut probe = Probe::connect(fw.listen, patience).await?;
    while sub.probes() == 0 {
        if Instant::now() > deadline {
            bail!("nothing arrived through the forwarder within {patience:?}");
        }
        probe.send().await?;
        let until = Instant::now() + Duration::from_millis(250);
        while sub.probes() == 0 && Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    Ok(probe)
}

/// Starts the broker, `kind`, and the subscriber on its telemetry topics,
/// and waits until readings flow end to end. `None`: the forwarder cannot
/// run here (already reported).
pub async fn setup(
    kind: Kind,
    opts: &Options,
) -> anyhow::Result<Option<(Mosquitto, Running, Subscriber, Probe)>> {
    let broker = Mosquitto::start_new(&opts.root).await?;
    let Some(fw) = forwarder::start(kind, opts, broker.port()).await? else {
        return Ok(None);
    };
    let mut sub = Subscriber::start(
        broker.port(),
        "bench-counter",
        true,
        &fw.filter,
        Duration::from_secs(5),
    );
    sub.wait_subscribed(Duration::from_secs(5)).await?;
    let probe = wait_end_to_end(&fw, &sub, Duration::from_secs(60)).await?;
    Ok(Some((broker, fw, sub, probe)))
}

async fn throughput(
    kind: Kind,
    Case { connections, rate }: Case,
    prefix: &str,
    opts: &Options,
    report: &mut Report,
) -> anyhow::Result<()> {
    let Some((mut broker, fw, sub, _probe)) = setup(kind, opts).await? else {
        return Ok(());
    };
    let load = Load::connect(fw.listen, connections, 0).await?;
    // Let the forwarder take in the connections before measuring.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (pid, broker_pid) = (fw.pid()?, broker.pid().context("broker not running")?);
    let before = proc_stats::sample(pid)?;
    let broker_before = proc_stats::cpu_seconds(broker_pid)?;
    let counter = SyscallCounter::start(pid);
    let sent = load.run(rate as f64, opts.duration).await?;
    let ended = Instant::now();
    let complete = sub.wait_for(sent.sent, opts.drain_timeout).await;
    let delta = proc_stats::sample(pid)?.since(&before);
    let all_syscalls = match counter {
        Some(c) => c.stop().await,
        None => None,
    };
    let broker_cpu = proc_stats::cpu_seconds(broker_pid)? - broker_before;
    let drain = match sub.last_delivery().filter(|_| complete) {
        Some(last) => last.saturating_duration_since(ended),
        None => ended.elapsed(),
    };
    let p = prefix;
    if sent.offered != sent.sent || sent.failed > 0 {
        report.figure(&format!("{p}.offered"), sent.offered as f64, "readings");
        report.figure(
            &format!("{p}.failed_connections"),
            sent.failed as f64,
            "connections",
        );
    }
    figures(report, p, sent.sent, &sub, &delta, drain);
    if let Some(n) = all_syscalls {
        report.figure(
            &format!("{p}.all_syscalls_per_reading"),
            n as f64 / sent.sent.max(1) as f64,
            "syscalls",
        );
    }
    report.figure(&format!("{p}.broker_cpu_s"), broker_cpu, "s");
    if let Some(addr) = fw.metrics {
        scrape_cost(addr, pid, p, rate, report).await?;
    }
    let status = fw.stop().await?;
    if !status.success() {
        note(&format!("{p}: the forwarder exited with {status}"));
    }
    drop(sent);
    broker.stop().await
}

/// Scrapes taken back to back to price one.
const SCRAPES: u32 = 1000;

/// What `/metrics` costs the gateway: its CPU over [`SCRAPES`] scrapes
/// taken back to back after the run, per scrape, and that as a share of
/// the gateway's CPU at `rate` (from the run's readings per CPU-second)
/// when scraped every second and every 15 s (Prometheus's default).
async fn scrape_cost(
    addr: std::net::SocketAddr,
    pid: u32,
    p: &str,
    rate: u64,
    report: &mut Report,
) -> anyhow::Result<()> {
    let before = proc_stats::cpu_seconds(pid)?;
    let mut bytes = 0;
    for _ in 0..SCRAPES {
        bytes = crate::forwarder::scrape(addr)
            .await
            .context("a scrape of /metrics failed")?;
    }
    let per_scrape = (proc_stats::cpu_seconds(pid)? - before) / f64::from(SCRAPES);
    report.figure(&format!("{p}.cpu_per_scrape_ms"), per_scrape * 1000.0, "ms");
    report.figure(&format!("{p}.scrape_bytes"), bytes as f64, "bytes");
    if let Some(per_cpu) = report
        .get(&crate::report::per_cpu_name(p))
        .filter(|v| *v > 0.0)
    {
        let busy = rate as f64 / per_cpu; // CPU-seconds per second at `rate`
        for (every, name) in [(1.0, "scrape_1s"), (15.0, "scrape_15s")] {
            let share = per_scrape / every / busy * 100.0;
            report.figure(&format!("{p}.metrics_cpu_share.{name}"), share, "%");
        }
    }
    Ok(())
}

/// The figures every delivery run prints under `prefix`.
pub fn figures(
    report: &mut Report,
    prefix: &str,
    sent: u64,
    sub: &Subscriber,
    d: &Delta,
    drain: Duration,
) {
    let delivered = sub.distinct();
    let per = |v: u64| v as f64 / sent.max(1) as f64;
    report.figure(&format!("{prefix}.sent"), sent as f64, "readings");
    report.figure(&format!("{prefix}.delivered"), delivered as f64, "readings");
    report.figure(
        &format!("{prefix}.lost"),
        sent.saturating_sub(delivered) as f64,
        "readings",
    );
    report.figure(
        &format!("{prefix}.duplicates"),
        (sub.total() - delivered) as f64,
        "readings",
    );
    report.figure(&format!("{prefix}.drain_s"), drain.as_secs_f64(), "s");
    report.figure(&format!("{prefix}.cpu_s"), d.cpu_s, "s");
    let per_cpu = if d.cpu_s > 0.0 {
        delivered as f64 / d.cpu_s
    } else {
        0.0
    };
    report.figure(
        &format!("{prefix}.readings_per_cpu_s"),
        per_cpu,
        "readings/s",
    );
    report.figure(
        &format!("{prefix}.peak_rss"),
        d.hwm_kib as f64 / 1024.0,
        "MiB",
    );
    report.figure(
        &format!("{prefix}.disk_bytes_per_reading"),
        per(d.write_bytes),
        "bytes",
    );
    report.figure(
        &format!("{prefix}.syscalls_per_reading"),
        per(d.syscalls),
        "syscalls",
    );
    report.figure(
        &format!("{prefix}.ctx_switches_per_reading"),
        per(d.ctx_switches),
        "switches",
    );
}
