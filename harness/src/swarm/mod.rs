//! `edgevisor swarm`: a fleet of simulated sensors of every transport with
//! fault injection, a real gateway process reading them, and an account of
//! everything that reached the upstream broker. It exits 0 only when no
//! reading the gateway accepted was lost.
//!
//! - `fleet`: simulators and the config that reads them;
//! - `faults`: the seeded fault plan, and the task that injects it;
//! - `account`: the books, by `(sensor, boot, seq)`;
//! - `process`: the gateway process, its CPU and memory;
//! - `lifetime`: the run's folder and the signals that stop a run early;
//! - `observer`: the MQTT client that reads what the gateway publishes;
//! - `config`: the gateway config of a run, written with `toml`;
//! - `report`: the final table and JSON.

pub mod account;
pub mod faults;
pub mod fleet;
pub mod lifetime;
pub mod process;
pub mod report;

pub mod config;
mod observer;
mod upstream;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;

use account::Account;
use config::RunConfig;
use faults::{FaultPlan, Injected};
use fleet::Mix;
use lifetime::{RunDir, StopSignals};
pub use observer::{observe, observe_as};
use report::{Ending, Report, RunBooks, Written};
use upstream::{Broker, Upstream};

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
    /// Units on one Modbus TCP bus, each polled `--rate` times a second
    /// (not part of `--sensors`).
    #[arg(long, default_value_t = 0)]
    pub modbus: usize,
    /// Readings per second per sensor.
    #[arg(long, default_value_t = 2.0)]
    pub rate: f64,
    /// How long the sensors send.
    #[arg(long, default_value = "20s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// How long to wait, after the sensors stop, for everything the
    /// gateway accepted to arrive upstream (longer for runs that saturate
    /// the machine and leave a backlog in the outbox).
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub drain_timeout: Duration,
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
    /// The gateway's id: several swarms can then share one broker (a
    /// scale run of many gateways, docs/scale.md).
    #[arg(long, value_name = "ID", default_value = "swarm")]
    pub gateway_id: String,
    /// Write the final report as one JSON object to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Working directory (config, state, logs, pty links), kept after the
    /// run; by default a temporary one, removed at the end.
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Keep the temporary working directory and say where it is.
    #[arg(long)]
    pub keep: bool,
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
        mix.modbus = self.modbus;
        mix
    }
}

/// Runs a swarm to the end and returns its report. SIGHUP, SIGTERM and
/// SIGINT end it early, as an error, once the gateway, the broker and the
/// temporary folder are gone.
pub async fn run(args: SwarmArgs) -> anyhow::Result<Report> {
    let mut signals = StopSignals::install()?;
    let dir = match &args.dir {
        Some(dir) => RunDir::given(dir.clone())?,
        None => RunDir::temporary("edgevisor-swarm-", args.keep)?,
    };
    let outcome = swarm(&args, dir.path(), &mut signals).await;
    if let (Some(path), None) = (dir.stays(), &args.dir) {
        // stderr may be a closed terminal by now: never fail on it.
        let _ = writeln!(
            std::io::stderr(),
            "edgevisor swarm: config, log and outbox kept in {}",
            path.display()
        );
    }
    outcome
}

/// The run itself, in `dir`. Whatever ends it (the end of the drain, the
/// gateway exiting, a signal), the gateway, the sensors and the broker are
/// stopped before it returns.
async fn swarm(args: &SwarmArgs, dir: &Path, signals: &mut StopSignals) -> anyhow::Result<Report> {
    let seed = args.seed.unwrap_or_else(|| fastrand::u64(..));
    let upstream = Upstream::start(args.broker.as_deref()).await?;
    let listen = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let mix = args.mix();
    let fleet = fleet::start(mix, args.rate, !args.no_flap, upstream.port, dir, listen)
        .await
        .context("cannot start the simulated sensors")?;
    let binary = match &args.gateway_bin {
        Some(b) => b.clone(),
        None => std::env::current_exe().context("cannot find the edgevisor binary")?,
    };
    let config_path = RunConfig::new(&args.gateway_id, dir, upstream.port, &fleet.sensors)
        .supervisor(supervisor())
        .write(&binary)
        .await?;
    let account = Arc::new(Mutex::new(Account::default()));
    let observer = observe_into(upstream.port, &args.gateway_id, account.clone()).await?;
    let mut gateway =
        process::GatewayProcess::start(&binary, &config_path, dir.join("gateway.log"))?;

    let injected = Arc::new(Mutex::new(Injected::new()));
    let fleet = Arc::new(fleet);
    let faults = tokio::spawn(faults::drive(
        args.faults,
        seed,
        fleet.clone(),
        account.clone(),
        injected.clone(),
        upstream.broker.clone(),
    ));
    let phases = async {
        send(args, &mut gateway, &fleet, &account).await?;
        faults.abort();
        let written = silence(&fleet).await;
        let run = RunBooks::now(&account);
        Ok((written, run, drain(&account, args.drain_timeout).await))
    };
    let outcome: anyhow::Result<_> = tokio::select! {
        biased;
        signal = signals.recv() => Err(anyhow::anyhow!(
            "stopped by {} before the end of the run", signal.name()
        )),
        outcome = phases => outcome,
    };
    faults.abort();
    let usage = gateway.usage();
    let gateway_exit = gateway.stop().await;
    shut_down(&fleet, observer, upstream).await;
    let (written, run, drained) = outcome?;
    if !args.quiet {
        let _ = writeln!(std::io::stderr());
    }
    let injected = injected
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    let ending = Ending {
        written,
        run,
        injected,
        drained,
        usage,
        gateway_exit,
    };
    let report = Report::build(args, seed, &account, ending);
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_vec_pretty(&report)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(report)
}

/// After the gateway stopped: the sensors stop, the observer gets a moment
/// for the last messages, and a broker of our own is killed and waited for.
async fn shut_down(
    fleet: &fleet::Fleet,
    observer: tokio::task::JoinHandle<()>,
    upstream: Upstream,
) {
    for sim in &fleet.sims {
        sim.handle().stop();
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    observer.abort();
    upstream.stop().await;
}

/// The swarm's supervisor: fast backoff and a short quarantine, so faults
/// run their course within the run.
pub(crate) fn supervisor() -> config::Table {
    config::table([
        ("backoff_initial", "50ms".into()),
        ("backoff_max", "1s".into()),
        ("backoff_reset", "10s".into()),
        ("intensity", 10.into()),
        ("period", "10s".into()),
        ("quarantine_for", "5s".into()),
    ])
}

/// Books everything gateway `gateway_id` publishes into `account`.
async fn observe_into(
    port: u16,
    gateway_id: &str,
    account: Arc<Mutex<Account>>,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    observe(port, gateway_id, move |kind, payload| {
        account.lock().unwrap_or_else(PoisonError::into_inner).book(
            kind,
            payload,
            SystemTime::now(),
        );
    })
    .await
}

/// The sending phase: waits `args.duration`, showing progress; fails if the
/// gateway exits meanwhile.
async fn send(
    args: &SwarmArgs,
    gateway: &mut process::GatewayProcess,
    fleet: &fleet::Fleet,
    account: &Mutex<Account>,
) -> anyhow::Result<()> {
    let began = Instant::now();
    while began.elapsed() < args.duration {
        tokio::time::sleep(Duration::from_secs(1)).await;
        if let Some(code) = gateway.exited() {
            return Err(gateway.failure(code));
        }
        if !args.quiet {
            progress(began, fleet, account);
        }
    }
    Ok(())
}

/// Quiets the sensors but keeps their links open, so the drain is not
/// disturbed by the crashes that closing every link would cause; then
/// counts what they wrote.
async fn silence(fleet: &fleet::Fleet) -> Written {
    if let Some(bus) = &fleet.modbus {
        bus.silence();
    }
    for sim in &fleet.sims {
        sim.handle()
            .inject(crate::sim::Fault::Silence(Duration::from_secs(3600)));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
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
    Written {
        sent: fleet.sent(),
        corrupt: corrupt(false),
        corrupt_mqtt: corrupt(true),
    }
}

fn progress(began: Instant, fleet: &fleet::Fleet, account: &Mutex<Account>) {
    let sent = fleet.sent();
    let books = account.lock().unwrap_or_else(PoisonError::into_inner);
    let crashes: u64 = books.crashes_by_reason.values().sum();
    // stderr may be a terminal that was just closed: never fail on it.
    let _ = write!(
        std::io::stderr(),
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
/// false when it gave up after `timeout`.
async fn drain(account: &Mutex<Account>, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
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
