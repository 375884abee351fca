//! `edgevisor swarm`: a fleet of simulated sensors of every transport with
//! fault injection, a real gateway process reading them, and an account of
//! everything that reached the upstream broker. It exits 0 only when no
//! reading the gateway accepted was lost.
//!
//! - `fleet`: simulators and the config that reads them;
//! - `faults`: the seeded fault plan, and the task that injects it;
//! - `account`: the books, by `(sensor, boot, seq)`;
//! - `process`: the gateway process, its CPU and memory;
//! - `observer`: the MQTT client that reads what the gateway publishes;
//! - `config`: the gateway config of a run, written with `toml`;
//! - `report`: the final table and JSON.

pub mod account;
pub mod faults;
pub mod fleet;
pub mod process;
pub mod report;

pub mod config;
mod observer;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use crate::sim::broker::Mosquitto;
use anyhow::Context;

use account::Account;
use config::RunConfig;
use faults::{FaultPlan, Injected};
use fleet::Mix;
pub use observer::observe;
use report::{Ending, Report, RunBooks, Written};

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

/// The upstream broker of a run and the port it listens on.
struct Upstream {
    broker: Broker,
    port: u16,
}

/// Runs a swarm to the end and returns its report.
pub async fn run(args: SwarmArgs) -> anyhow::Result<Report> {
    let seed = args.seed.unwrap_or_else(|| fastrand::u64(..));
    let dir = work_dir(&args)?;
    let upstream = upstream(&args).await?;
    let listen = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let fleet = fleet::start(
        args.mix(),
        args.rate,
        !args.no_flap,
        upstream.port,
        &dir,
        listen,
    )
    .await
    .context("cannot start the simulated sensors")?;
    let binary = match &args.gateway_bin {
        Some(b) => b.clone(),
        None => std::env::current_exe().context("cannot find the edgevisor binary")?,
    };
    let config_path = write_config(&dir, upstream.port, &fleet, &binary).await?;
    let account = Arc::new(Mutex::new(Account::default()));
    let observer = observe_into(upstream.port, account.clone()).await?;
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
    send(&args, &mut gateway, &fleet, &account).await?;
    faults.abort();
    let written = silence(&fleet).await;
    let run = RunBooks::now(&account);
    let drained = drain(&account).await;
    let usage = gateway.usage();
    let gateway_exit = gateway.stop().await;
    for sim in &fleet.sims {
        sim.handle().stop();
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    observer.abort();
    drop(upstream);
    if !args.quiet {
        eprintln!();
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
    let report = Report::build(&args, seed, &account, ending);
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_vec_pretty(&report)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(report)
}

/// The working directory, created.
fn work_dir(args: &SwarmArgs) -> anyhow::Result<PathBuf> {
    let dir = args.dir.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("edgevisor-swarm-{}", std::process::id()))
    });
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(dir)
}

/// The swarm's gateway config: fast backoff and a short quarantine, so
/// faults run their course within the run.
async fn write_config(
    dir: &Path,
    port: u16,
    fleet: &fleet::Fleet,
    binary: &Path,
) -> anyhow::Result<PathBuf> {
    RunConfig {
        gateway_id: "swarm",
        dir,
        broker_port: port,
        supervisor: config::table([
            ("backoff_initial", "50ms".into()),
            ("backoff_max", "1s".into()),
            ("backoff_reset", "10s".into()),
            ("intensity", 10.into()),
            ("period", "10s".into()),
            ("quarantine_for", "5s".into()),
        ]),
        groups: Vec::new(),
        sensors: &fleet.sensors,
    }
    .write(binary)
    .await
}

/// The broker given by `--broker`, or a Mosquitto of our own.
async fn upstream(args: &SwarmArgs) -> anyhow::Result<Upstream> {
    match &args.broker {
        Some(url) => {
            let port = config::broker_port(url)?;
            Ok(Upstream {
                broker: Broker::External,
                port,
            })
        }
        None => {
            let m = Mosquitto::start().await.context(
                "cannot start mosquitto (install it, or pass --broker mqtt://host:port)",
            )?;
            let port = m.port();
            Ok(Upstream {
                broker: Broker::Owned(Arc::new(tokio::sync::Mutex::new(m))),
                port,
            })
        }
    }
}

/// Books everything the gateway `swarm` publishes into `account`.
async fn observe_into(
    port: u16,
    account: Arc<Mutex<Account>>,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    observe(port, "swarm", move |kind, payload| {
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
            anyhow::bail!(
                "the gateway exited early with {code}; see {}",
                gateway.log.display()
            );
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
        sent: fleet.sims.iter().map(|s| s.handle().written()).sum(),
        corrupt: corrupt(false),
        corrupt_mqtt: corrupt(true),
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
