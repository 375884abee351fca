//! `edgevisor swarm`: a fleet of simulated sensors of every transport with
//! fault injection, a real gateway process reading them, and an account of
//! everything that reached the upstream broker. It exits 0 only when no
//! reading the gateway accepted was lost.
//!
//! - `fleet`: simulators and the config that reads them;
//! - `faults`: the seeded fault plan;
//! - `account`: the books, by `(sensor, boot, seq)`;
//! - `process`: the gateway process, its CPU and memory;
//! - `report`: the final table and JSON.

pub mod account;
pub mod faults;
pub mod fleet;
pub mod process;
pub mod report;

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;
use edgevisor_devices::sim::broker::Mosquitto;
use rumqttc::{AsyncClient, Event, Incoming, MqttOptions, QoS};

use account::Account;
use faults::{FaultPlan, Injected};
use fleet::Mix;
use report::Report;

/// The swarm's options.
#[derive(Debug, Clone, clap::Args)]
pub struct SwarmArgs {
    /// Sensors in all, split 40 % tcp, 30 % tcp-listen, 20 % serial, 10 % mqtt.
    #[arg(long, default_value_t = 40)]
    pub sensors: usize,
    /// Override the number of tcp sensors.
    #[arg(long)]
    pub tcp: Option<usize>,
    /// Override the number of sensors connecting to the tcp-listen sensor.
    #[arg(long)]
    pub listen: Option<usize>,
    /// Override the number of serial sensors (pty pairs).
    #[arg(long)]
    pub serial: Option<usize>,
    /// Override the number of mqtt sensors.
    #[arg(long)]
    pub mqtt: Option<usize>,
    /// Readings per second per sensor.
    #[arg(long, default_value_t = 2.0)]
    pub rate: f64,
    /// How long the sensors send.
    #[arg(long, default_value = "20s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// Fault plan: `all`, `none`, or `corrupt=0.01,disconnect=0.005,silence=0.002,drip=0.005,unplug=0.005,broker-restart=10s` (rates per sensor per second).
    #[arg(long, default_value = "all")]
    pub faults: FaultPlan,
    /// Leave out the sensor that is made to flap until quarantined.
    #[arg(long)]
    pub no_flap: bool,
    /// Seed of the fault plan (random when absent).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Use this broker (`mqtt://host:port`) instead of starting a Mosquitto.
    #[arg(long)]
    pub broker: Option<String>,
    /// Write the final report as one JSON object to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Working directory (config, state, logs, pty links); a temporary one by default.
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// The gateway binary (default: this one).
    #[arg(long)]
    pub gateway_bin: Option<PathBuf>,
    /// No live progress line.
    #[arg(long)]
    pub quiet: bool,
}

impl SwarmArgs {
    fn mix(&self) -> Mix {
        let mut mix = Mix::split(self.sensors);
        mix.tcp = self.tcp.unwrap_or(mix.tcp);
        mix.listen = self.listen.unwrap_or(mix.listen);
        mix.serial = self.serial.unwrap_or(mix.serial);
        mix.mqtt = self.mqtt.unwrap_or(mix.mqtt);
        mix
    }
}

/// Where the broker comes from. An owned broker lives until the report is
/// done (it is killed when dropped).
#[derive(Clone)]
enum Broker {
    Owned(Arc<tokio::sync::Mutex<Mosquitto>>),
    External,
}

/// Runs a swarm to the end and returns its report.
pub async fn run(args: SwarmArgs) -> anyhow::Result<Report> {
    let seed = args.seed.unwrap_or_else(|| fastrand::u64(..));
    let mix = args.mix();
    let dir = args.dir.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("edgevisor-swarm-{}", std::process::id()))
    });
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let (broker, port) = match &args.broker {
        Some(url) => {
            let port = crate::config::Config::parse(
                std::path::Path::new("--broker"),
                &format!("[gateway]\nid=\"x\"\n[upstream]\nurl=\"{url}\"\n"),
            )
            .map_err(|e| anyhow::anyhow!("invalid --broker {url}: {e}"))?
            .upstream
            .url
            .port;
            (Broker::External, port)
        }
        None => {
            let m = Mosquitto::start().await.context(
                "cannot start mosquitto (install it, or pass --broker mqtt://host:port)",
            )?;
            let port = m.port();
            (Broker::Owned(Arc::new(tokio::sync::Mutex::new(m))), port)
        }
    };
    let listen = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let fleet = fleet::start(mix, args.rate, !args.no_flap, port, &dir, listen)
        .await
        .context("cannot start the simulated sensors")?;
    let config_path = dir.join("edgevisor.toml");
    let config = format!(
        "[gateway]\nid = \"swarm\"\nstate_dir = \"{}\"\n\n[upstream]\nurl = \"mqtt://127.0.0.1:{port}\"\nkeep_alive = \"5s\"\n\n[supervisor]\nbackoff_initial = \"50ms\"\nbackoff_max = \"1s\"\nbackoff_reset = \"10s\"\nintensity = 10\nperiod = \"10s\"\nquarantine_for = \"5s\"\n{}",
        dir.join("state").display(),
        fleet.sensors_toml
    );
    std::fs::write(&config_path, &config)?;
    crate::config::Config::parse(&config_path, &config)
        .map_err(|e| anyhow::anyhow!("generated config is invalid:\n{e}"))?;

    let account = Arc::new(Mutex::new(Account::default()));
    let books = account.clone();
    let observer = observe(port, "swarm", move |kind, payload| {
        books
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .book(kind, payload, SystemTime::now());
    })
    .await?;
    let binary = match &args.gateway_bin {
        Some(b) => b.clone(),
        None => std::env::current_exe().context("cannot find the edgevisor binary")?,
    };
    let mut gateway =
        process::GatewayProcess::start(&binary, &config_path, dir.join("gateway.log"))?;

    let injected = Arc::new(Mutex::new(Injected::new()));
    let began = Instant::now();
    let fleet = Arc::new(fleet);
    let faults = tokio::spawn(drive_faults(
        args.faults,
        seed,
        fleet.clone(),
        account.clone(),
        injected.clone(),
        broker.clone(),
    ));
    while began.elapsed() < args.duration {
        tokio::time::sleep(Duration::from_secs(1)).await;
        if let Some(code) = gateway.exited() {
            anyhow::bail!(
                "the gateway exited early with {code}; see {}",
                gateway.log.display()
            );
        }
        if !args.quiet {
            progress(began, &fleet, &account);
        }
    }
    faults.abort();
    // Quiet the sensors but keep their links open, so the drain below is
    // not disturbed by the crashes that closing every link would cause.
    for sim in &fleet.sims {
        sim.handle()
            .inject(edgevisor_devices::sim::Fault::Silence(Duration::from_secs(
                3600,
            )));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let sent: u64 = fleet.sims.iter().map(|s| s.handle().written()).sum();
    let corrupt = |mqtt: bool| -> u64 {
        fleet
            .sims
            .iter()
            .filter(|s| (s.kind == fleet::Kind::Mqtt) == mqtt)
            .map(|s| {
                s.handle()
                    .counters()
                    .corrupt_written
                    .load(std::sync::atomic::Ordering::Relaxed)
            })
            .sum()
    };
    let (corrupt_written, corrupt_written_mqtt) = (corrupt(false), corrupt(true));
    // Crashes and actions as the run left them: the drain below keeps the
    // sensors silent, and those that stay silent past their read timeout
    // would add crashes the fault plan did not cause.
    let (run_crashes, run_actions) = {
        let books = account.lock().unwrap_or_else(PoisonError::into_inner);
        (books.crashes_by_reason.clone(), books.actions.clone())
    };
    let drained = drain(&account).await;
    let usage = gateway.usage();
    let exit = gateway.stop().await;
    for sim in &fleet.sims {
        sim.handle().stop();
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    observer.abort();
    drop(broker);
    if !args.quiet {
        eprintln!();
    }
    let injected = injected
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    let mut books = account.lock().unwrap_or_else(PoisonError::into_inner);
    let lost_by_sensor = books.lost();
    if std::env::var_os("EDGEVISOR_SWARM_DEBUG").is_some() {
        eprintln!("{:?}", books.per_sensor());
    }
    let sim_delivered: u64 = books.sim_delivered.values().map(|s| s.len() as u64).sum();
    let mut latencies = std::mem::take(&mut books.latencies_ms);
    let report = Report {
        sensors: mix,
        rate_hz: args.rate,
        duration_s: args.duration.as_secs_f64(),
        seed,
        faults: args.faults,
        injected,
        sent,
        accepted: books.accepted(),
        delivered: books.delivered(),
        duplicates: books.duplicates,
        lost: lost_by_sensor.values().sum(),
        lost_by_sensor,
        not_accepted: sent.saturating_sub(sim_delivered),
        crash_reports_during_drain: books.crashes_by_reason.values().sum::<u64>()
            - run_crashes.values().sum::<u64>(),
        crash_reports: run_crashes,
        corrupt_written,
        corrupt_written_mqtt,
        dead_letters: books.dead_letters.values().sum(),
        restarts: run_actions.get("restart").copied().unwrap_or(0),
        quarantines: run_actions.get("quarantine").copied().unwrap_or(0),
        quarantined_sensors: books
            .states
            .iter()
            .filter(|(_, s)| *s == "quarantined")
            .map(|(k, _)| k.clone())
            .collect(),
        latency_p50_ms: 0.0,
        latency_p99_ms: 0.0,
        gateway_cpu_s: 0.0,
        gateway_peak_rss_bytes: 0,
        readings_per_cpu_s: 0.0,
        gateway_exit: exit,
        drained,
    }
    .with_usage(&mut latencies, usage);
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_vec_pretty(&report)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(report)
}

/// Subscribes to everything gateway `gateway_id` publishes on the broker
/// at `port` and hands each message (topic after the gateway id, payload) to
/// `sink`. Reconnects within milliseconds, so a restarted broker is rejoined
/// before the gateway (whose first retry waits at least 200 ms).
pub async fn observe(
    port: u16,
    gateway_id: &str,
    mut sink: impl FnMut(&str, &[u8]) + Send + 'static,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let mut options = MqttOptions::new(
        format!("{gateway_id}-observer-{}", std::process::id()),
        "127.0.0.1",
        port,
    );
    options.set_keep_alive(Duration::from_secs(5));
    options.set_max_packet_size(1 << 24, 1 << 24);
    let (client, mut eventloop) = AsyncClient::new(options, 1024);
    let (ready_tx, ready) = tokio::sync::oneshot::channel();
    let prefix = format!("edgevisor/{gateway_id}/");
    let task = tokio::spawn(async move {
        let mut ready_tx = Some(ready_tx);
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Incoming::ConnAck(_))) => {
                    let _ = client
                        .subscribe(format!("{prefix}#"), QoS::AtLeastOnce)
                        .await;
                }
                Ok(Event::Incoming(Incoming::SubAck(_))) => {
                    if let Some(tx) = ready_tx.take() {
                        let _ = tx.send(());
                    }
                }
                Ok(Event::Incoming(Incoming::Publish(p))) => {
                    sink(p.topic.strip_prefix(&prefix).unwrap_or(""), &p.payload);
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
    });
    tokio::time::timeout(Duration::from_secs(10), ready)
        .await
        .context("the upstream observer could not subscribe")?
        .ok();
    Ok(task)
}

async fn drive_faults(
    plan: FaultPlan,
    seed: u64,
    fleet: Arc<fleet::Fleet>,
    account: Arc<Mutex<Account>>,
    injected: Arc<Mutex<Injected>>,
    broker: Broker,
) {
    let mut rng = fastrand::Rng::with_seed(seed);
    let began = Instant::now();
    let mut restarted = false;
    let mut ticks = 0u64;
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        ticks += 1;
        {
            let mut injected = injected.lock().unwrap_or_else(PoisonError::into_inner);
            faults::tick(&plan, &fleet.sims, &mut rng, &mut injected);
            if let Some(flap) = &fleet.flap {
                let quarantined = account
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .states
                    .get(flap)
                    .is_some_and(|s| s == "quarantined");
                if !quarantined && ticks % 3 == 0 {
                    if let Some(sim) = fleet.sims.iter().find(|s| &s.sensor == flap) {
                        sim.handle()
                            .inject(edgevisor_devices::sim::Fault::BadChecksum);
                        *injected.entry("flap").or_default() += 1;
                    }
                }
            }
        }
        if let (Some(at), Broker::Owned(m), false) = (plan.broker_restart_s, &broker, restarted) {
            if began.elapsed().as_secs_f64() >= at {
                restarted = true;
                let mut m = m.lock().await;
                let _ = m.kill().await;
                tokio::time::sleep(Duration::from_millis(500)).await;
                if let Err(e) = m.restart().await {
                    eprintln!("swarm: broker restart failed: {e}");
                }
                *injected
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .entry("broker-restart")
                    .or_default() += 1;
            }
        }
    }
}

fn progress(began: Instant, fleet: &fleet::Fleet, account: &Mutex<Account>) {
    let sent: u64 = fleet.sims.iter().map(|s| s.handle().written()).sum();
    let books = account.lock().unwrap_or_else(PoisonError::into_inner);
    let crashes: u64 = books.crashes_by_reason.values().sum();
    eprint!(
        "\r[{:>4.0}s] sent {sent}  accepted {}  delivered {}  duplicates {}  crashes {crashes}  quarantined {}   ",
        began.elapsed().as_secs_f64(),
        books.accepted(),
        books.delivered(),
        books.duplicates,
        books.states.values().filter(|s| *s == "quarantined").count()
    );
}

/// Waits until everything the gateway accepted has arrived and its
/// `accepted` figures stopped moving (status is republished every 2 s);
/// false when it gave up after a minute.
async fn drain(account: &Mutex<Account>) -> bool {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut stable_since = Instant::now();
    let mut last = 0;
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let books = account.lock().unwrap_or_else(PoisonError::into_inner);
        let accepted = books.accepted();
        if accepted != last {
            last = accepted;
            stable_since = Instant::now();
        }
        if stable_since.elapsed() > Duration::from_secs(3) && books.lost().is_empty() {
            return true;
        }
    }
    false
}
