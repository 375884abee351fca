//! One case's world: a Mosquitto of its own (behind a proxy the case can
//! slow down or cut), simulated sensors, the real gateway as a child
//! process, and the swarm's books of everything that reached the broker.
//! The gateway can be killed and started again; its CPU, peak memory and
//! logs are kept across its lives.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;

use super::proxy::Proxy;
use crate::sim::broker::{free_port, Mosquitto};
use crate::swarm::account::Account;
use crate::swarm::config::{RunConfig, Table};
use crate::swarm::fleet::{self, Fleet, Mix, SPAN};
use crate::swarm::process::GatewayProcess;

/// What a case needs set up.
pub struct Setup {
    /// Simulated sensors.
    pub mix: Mix,
    /// Readings per second per sensor.
    pub rate: f64,
    /// `[upstream]` keys beyond the URL (bounds, credentials).
    pub upstream: Table,
    /// Config lines for the broker (limits, a password file).
    pub broker: String,
    /// `[supervisor]` keys.
    pub supervisor: Table,
    /// User name and password the observer logs in with, for a broker
    /// that wants one.
    pub observer_login: Option<(String, String)>,
    /// The gateway reaches the broker over TLS (`mqtts://localhost`), with
    /// the server certificates in this folder (`sim::certs`); the observer
    /// keeps a plain listener.
    pub tls: Option<PathBuf>,
    /// `max_frame` for every sensor (the default is the codec's).
    pub max_frame: Option<i64>,
}

impl Setup {
    /// Ten TCP sensors at 20 readings/s each, the swarm's supervisor.
    pub fn standard() -> Self {
        Self {
            mix: Mix {
                tcp: 10,
                listen: 0,
                serial: 0,
                mqtt: 0,
                modbus: 0,
            },
            rate: 20.0,
            upstream: Table::new(),
            broker: String::new(),
            supervisor: crate::swarm::supervisor(),
            observer_login: None,
            tls: None,
            max_frame: None,
        }
    }
}

/// A running case.
pub struct Rig {
    /// The case's folder (config, state, logs).
    pub dir: PathBuf,
    /// The upstream broker, ours.
    pub broker: Mosquitto,
    /// Between the gateway and the broker.
    pub proxy: Proxy,
    /// The sensors.
    pub fleet: Fleet,
    /// What reached the broker.
    pub account: Arc<Mutex<Account>>,
    /// The gateway binary and its config.
    pub binary: PathBuf,
    /// The config file.
    pub config: PathBuf,
    gateway: Option<GatewayProcess>,
    observer: tokio::task::JoinHandle<()>,
    lives: u32,
    cpu_s: f64,
    peak_rss: u64,
}

impl Rig {
    /// Starts the broker, the proxy, the sensors, the observer and the
    /// gateway, and waits until the gateway's first reading arrives.
    pub async fn start(setup: Setup, binary: &Path, dir: &Path) -> anyhow::Result<Self> {
        let mut broker_conf = setup.broker.clone();
        let tls_port = free_port()?;
        if let Some(certs) = &setup.tls {
            broker_conf += &format!(
                "\nlistener {tls_port} 127.0.0.1\ncertfile {0}/server.crt\nkeyfile {0}/server.key\n",
                certs.display()
            );
        }
        let broker = Mosquitto::start_with(&broker_conf)
            .await
            .context("cannot start mosquitto (install the mosquitto package)")?;
        let target = if setup.tls.is_some() {
            tls_port
        } else {
            broker.port()
        };
        let proxy = Proxy::start(target).await?;
        let listen = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
        let mut fleet = fleet::start(setup.mix, setup.rate, false, broker.port(), dir, listen)
            .await
            .context("cannot start the simulated sensors")?;
        if let Some(max_frame) = setup.max_frame {
            for sensor in &mut fleet.sensors {
                sensor.insert("max_frame".into(), max_frame.into());
            }
        }
        let mut upstream = setup.upstream;
        if setup.tls.is_some() {
            let url = format!("mqtts://localhost:{}", proxy.port);
            upstream.insert("url".into(), url.into());
        }
        let config = RunConfig::new("matrix", dir, proxy.port, &fleet.sensors)
            .supervisor(setup.supervisor)
            .upstream(upstream)
            .write(binary)
            .await?;
        let account = Arc::new(Mutex::new(Account::default()));
        let books = account.clone();
        let login = setup.observer_login.clone();
        let observer =
            crate::swarm::observe_as(broker.port(), "matrix", login, move |kind, payload| {
                books.lock().unwrap_or_else(PoisonError::into_inner).book(
                    kind,
                    payload,
                    SystemTime::now(),
                );
            })
            .await?;
        let mut rig = Self {
            dir: dir.to_path_buf(),
            broker,
            proxy,
            fleet,
            account,
            binary: binary.to_path_buf(),
            config,
            gateway: None,
            observer,
            lives: 0,
            cpu_s: 0.0,
            peak_rss: 0,
        };
        rig.start_gateway()?;
        Ok(rig)
    }

    /// Starts the gateway (again), logging to `gateway-<life>.log` at INFO.
    pub fn start_gateway(&mut self) -> anyhow::Result<()> {
        self.lives += 1;
        let log = self.dir.join(format!("gateway-{}.log", self.lives));
        // INFO: the cases look for recoveries, which are logged at INFO.
        let process = GatewayProcess::start_logging(&self.binary, &self.config, log, "info")
            .context("cannot start the gateway")?;
        self.gateway = Some(process);
        Ok(())
    }

    /// The running gateway, if any.
    pub fn gateway(&mut self) -> Option<&mut GatewayProcess> {
        self.gateway.as_mut()
    }

    /// Notes the running gateway's CPU and peak memory before it ends.
    fn book_usage(&mut self) {
        if let Some(g) = &self.gateway {
            let usage = g.usage();
            self.cpu_s += usage.cpu_s;
            self.peak_rss = self.peak_rss.max(usage.peak_rss_bytes);
        }
    }

    /// SIGKILLs the gateway (no flush, no goodbye).
    pub async fn kill_gateway(&mut self) {
        self.book_usage();
        if let Some(mut g) = self.gateway.take() {
            g.kill().await;
        }
    }

    /// SIGTERMs the gateway and waits up to `bound`: how long it took, or
    /// `None` when it had to be killed.
    pub async fn terminate_gateway(&mut self, bound: Duration) -> Option<Duration> {
        self.book_usage();
        let mut g = self.gateway.take()?;
        let began = Instant::now();
        g.terminate_within(bound).await.map(|_| began.elapsed())
    }

    /// Sends `signal` to the gateway (SIGHUP: read the config and
    /// credentials again).
    pub fn signal_gateway(&self, signal: nix::sys::signal::Signal) {
        let pid = self.gateway.as_ref().and_then(GatewayProcess::pid);
        if let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()) {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal);
        }
    }

    /// The gateway exited by itself: its exit code.
    pub fn gateway_exited(&mut self) -> Option<i32> {
        self.gateway.as_mut().and_then(GatewayProcess::exited)
    }

    /// Every gateway log so far, as one text.
    pub fn logs(&self) -> String {
        (1..=self.lives)
            .map(|n| {
                std::fs::read_to_string(self.dir.join(format!("gateway-{n}.log")))
                    .unwrap_or_default()
            })
            .collect()
    }

    /// (accepted, delivered, dropped) now.
    pub fn books(&self) -> (u64, u64, u64) {
        let a = self.account.lock().unwrap_or_else(PoisonError::into_inner);
        (a.accepted(), a.delivered(), a.dropped())
    }

    /// Waits until a status of a boot later than `boot` reported accepted
    /// readings: that life's acceptances are on the books. Returns the
    /// boot, or `boot` after `within`.
    pub async fn accepting_boot_after(&self, boot: u64, within: Duration) -> u64 {
        let began = Instant::now();
        loop {
            let latest = self
                .account
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .latest_accepting_boot();
            if latest > boot || began.elapsed() >= within {
                return latest;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until the gateway's first reading reaches the broker.
    pub async fn first_delivery(&self, within: Duration) -> anyhow::Result<()> {
        let began = Instant::now();
        while self.books().1 == 0 {
            anyhow::ensure!(
                began.elapsed() < within,
                "no reading reached the broker within {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    }

    /// From now until, for every sensor, the last reading it wrote before
    /// now (or a later one) has reached the broker: the recovery time once
    /// a fault ends. The outbox sends oldest first, so by then the backlog
    /// is through too. `None` after `within`.
    pub async fn catch_up(&self, within: Duration) -> Option<Duration> {
        let began = Instant::now();
        let targets: Vec<(u64, u64)> = self
            .fleet
            .sims
            .iter()
            .filter_map(|sim| {
                let next = sim.handle().counters().next_seq.load(Ordering::Relaxed);
                (next > sim.base).then_some((sim.base / SPAN, next - 1))
            })
            .collect();
        while began.elapsed() < within {
            let caught_up = {
                let a = self.account.lock().unwrap_or_else(PoisonError::into_inner);
                targets.iter().all(|(sim, last)| {
                    a.sim_delivered
                        .get(sim)
                        .is_some_and(|got| got.iter().any(|n| n >= last))
                })
            };
            if caught_up {
                return Some(began.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        None
    }

    /// Silences the sensors, waits for the drain (at most a minute), stops
    /// the gateway with SIGTERM and everything else, and adds it up.
    pub async fn finish(mut self) -> Tally {
        for sim in &self.fleet.sims {
            sim.handle()
                .inject(crate::sim::Fault::Silence(Duration::from_secs(3600)));
        }
        let drained = self.drain().await;
        self.book_usage();
        if let Some(mut g) = self.gateway.take() {
            g.stop().await;
        }
        for sim in &self.fleet.sims {
            sim.handle().stop();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        self.observer.abort();
        let _ = self.broker.kill().await;
        let a = self.account.lock().unwrap_or_else(PoisonError::into_inner);
        let lost: u64 = a.lost().values().sum();
        Tally {
            accepted: a.accepted(),
            delivered: a.delivered(),
            lost,
            dropped: a.dropped(),
            duplicates: a.duplicates,
            crashes: a.crashes_by_reason.clone(),
            set_aside: a.set_aside,
            drop_mismatch: {
                let dropped = a.dropped_by_sensor();
                let lost = a.lost();
                let sensors: std::collections::BTreeSet<&String> =
                    dropped.keys().chain(lost.keys()).collect();
                sensors
                    .into_iter()
                    .filter(|s| dropped.get(*s) != lost.get(*s))
                    .map(|s| {
                        format!(
                            "{s}: lost {}, reported dropped {}",
                            lost.get(s).unwrap_or(&0),
                            dropped.get(s).unwrap_or(&0)
                        )
                    })
                    .collect()
            },
            peak_rss_bytes: self.peak_rss,
            cpu_s: self.cpu_s,
            drained,
        }
    }

    /// Waits until accepted stopped moving for 3 s and everything accepted
    /// arrived or was dropped; false after a minute.
    async fn drain(&self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(60);
        let (mut last, mut stable_since) = (u64::MAX, Instant::now());
        while Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let a = self.account.lock().unwrap_or_else(PoisonError::into_inner);
            let accepted = a.accepted();
            if accepted != last {
                (last, stable_since) = (accepted, Instant::now());
            }
            let lost: u64 = a.lost().values().sum();
            if stable_since.elapsed() > Duration::from_secs(3) && lost <= a.dropped() + a.set_aside
            {
                return true;
            }
        }
        false
    }
}

/// A case's figures once it drained.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Tally {
    /// Readings the gateway said it accepted (status `accepted`, all boots).
    pub accepted: u64,
    /// Distinct readings that reached the broker.
    pub delivered: u64,
    /// Accepted but never delivered.
    pub lost: u64,
    /// What the gateway's status says it dropped at its outbox bound.
    pub dropped: u64,
    /// Deliveries beyond the first.
    pub duplicates: u64,
    /// Crash reports by reason.
    pub crashes: std::collections::BTreeMap<String, u64>,
    /// Reports on `crash/_outbox`: messages the broker refused, set aside.
    pub set_aside: u64,
    /// Sensors whose loss differs from what the gateway reported dropped
    /// for them (a drop policy must account for a loss sensor by sensor).
    pub drop_mismatch: Vec<String>,
    /// The gateway's peak resident memory over all its lives.
    pub peak_rss_bytes: u64,
    /// Its CPU over all its lives.
    pub cpu_s: f64,
    /// Everything accepted was accounted for within the drain's minute.
    pub drained: bool,
}
