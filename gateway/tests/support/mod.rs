//! End-to-end test kit: a Mosquitto the test starts, an upstream subscriber
//! that records everything under the gateway's prefix, and the gateway as a
//! real child process with its own state directory.
#![allow(dead_code, clippy::unwrap_used)]

pub mod schemas;
pub mod sparkplug;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use rumqttc::{AsyncClient, Event, Incoming, MqttOptions, QoS};
use serde_json::Value;
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;

#[allow(unused_imports)] // not every test file starts a broker this way
pub use edgevisor_harness::sim::broker::Mosquitto;

/// One message seen upstream.
#[derive(Debug, Clone)]
pub struct Msg {
    pub topic: String,
    pub json: Value,
    /// The payload as sent (key order preserved).
    pub raw: String,
    pub retain: bool,
    /// When the subscriber got it.
    pub arrived: std::time::SystemTime,
}

/// Records every message under `edgevisor/#`, and checks each payload
/// against its schema in `schemas/` as it arrives: a test that reads what
/// arrived (or drops its `Upstream`) fails if any payload broke the contract.
pub struct Upstream {
    msgs: Arc<Mutex<Vec<Msg>>>,
    /// Payloads that did not match their schema, with why.
    invalid: Arc<Mutex<Vec<String>>>,
    task: JoinHandle<()>,
}

impl Upstream {
    /// Subscribes on the broker at `port` and waits for the SUBACK.
    pub async fn connect(port: u16) -> Self {
        let mut options =
            MqttOptions::new(format!("observer-{}", fastrand::u32(..)), "127.0.0.1", port);
        options.set_keep_alive(Duration::from_secs(5));
        options.set_max_packet_size(1 << 22, 1 << 22);
        let (client, mut eventloop) = AsyncClient::new(options, 64);
        let msgs: Arc<Mutex<Vec<Msg>>> = Arc::default();
        let invalid: Arc<Mutex<Vec<String>>> = Arc::default();
        let rejected = invalid.clone();
        let (subscribed_tx, subscribed) = tokio::sync::oneshot::channel();
        let sink = msgs.clone();
        let task = tokio::spawn(async move {
            let mut subscribed_tx = Some(subscribed_tx);
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Incoming::ConnAck(_))) => {
                        let _ = client.subscribe("edgevisor/#", QoS::AtLeastOnce).await;
                    }
                    Ok(Event::Incoming(Incoming::SubAck(_))) => {
                        if let Some(tx) = subscribed_tx.take() {
                            let _ = tx.send(());
                        }
                    }
                    Ok(Event::Incoming(Incoming::Publish(p))) => {
                        if let Err(why) = schemas::check_message(&p.topic, &p.payload) {
                            rejected.lock().unwrap().push(why);
                        }
                        let json = serde_json::from_slice(&p.payload).unwrap_or(Value::Null);
                        sink.lock().unwrap().push(Msg {
                            topic: p.topic.clone(),
                            json,
                            raw: String::from_utf8_lossy(&p.payload).to_string(),
                            retain: p.retain,
                            arrived: std::time::SystemTime::now(),
                        });
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
        });
        tokio::time::timeout(Duration::from_secs(10), subscribed)
            .await
            .unwrap()
            .unwrap();
        Self {
            msgs,
            invalid,
            task,
        }
    }

    /// Everything so far; panics if a payload so far broke its schema.
    pub fn all(&self) -> Vec<Msg> {
        self.assert_valid();
        self.msgs.lock().unwrap().clone()
    }

    /// Panics if a payload so far did not match its schema, quoting the
    /// first five.
    pub fn assert_valid(&self) {
        let invalid = self.invalid.lock().unwrap();
        assert!(
            invalid.is_empty(),
            "{} payload(s) broke their schema:\n{}",
            invalid.len(),
            invalid
                .iter()
                .take(5)
                .cloned()
                .collect::<Vec<_>>()
                .join("\n")
        );
    }

    /// Messages on topics ending in `suffix` (e.g. `telemetry/weather`).
    pub fn on(&self, suffix: &str) -> Vec<Msg> {
        self.all()
            .into_iter()
            .filter(|m| m.topic.ends_with(suffix))
            .collect()
    }

    /// Waits until `done` holds for the messages so far, or panics after
    /// `secs` seconds naming `what`.
    pub async fn wait(&self, what: &str, secs: u64, done: impl Fn(&[Msg]) -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            if done(&self.all()) {
                return;
            }
            if tokio::time::Instant::now() > deadline {
                let tail: Vec<String> = self
                    .all()
                    .iter()
                    .rev()
                    .take(10)
                    .map(|m| format!("{} {}", m.topic, m.json))
                    .collect();
                panic!(
                    "timed out after {secs}s waiting for {what}; last messages:\n{}",
                    tail.join("\n")
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The gateway `seq`s of a sensor's telemetry, in arrival order.
    pub fn seqs(&self, sensor: &str) -> Vec<u64> {
        self.on(&format!("telemetry/{sensor}"))
            .iter()
            .map(|m| m.json["seq"].as_u64().unwrap())
            .collect()
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
        // Messages that arrived after the test last looked are checked too
        // (unless the test is already failing).
        if !std::thread::panicking() {
            self.assert_valid();
        }
    }
}

/// True when `seqs` (any order, duplicates allowed) is exactly 1..=max.
pub fn gap_free(seqs: &[u64]) -> bool {
    let mut sorted = seqs.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    sorted.iter().enumerate().all(|(i, s)| *s == i as u64 + 1)
}

/// A temp directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "edgevisor-{tag}-{}-{}",
            std::process::id(),
            fastrand::u32(..)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The gateway binary running one config.
pub struct Gateway {
    child: Child,
    pub dir: TempDir,
    pub config: PathBuf,
}

/// A config header for gateway `id` and the broker on `port`; append sensors.
pub fn header(id: &str, port: u16, state_dir: &Path) -> String {
    format!(
        "[gateway]\nid = \"{id}\"\nstate_dir = \"{}\"\n\n[upstream]\nurl = \"mqtt://127.0.0.1:{port}\"\nkeep_alive = \"5s\"\n\n[supervisor]\nbackoff_initial = \"20ms\"\nbackoff_max = \"200ms\"\n",
        state_dir.display()
    )
}

impl Gateway {
    /// Writes `config` into `dir` and starts the gateway on it (again, for
    /// a restart).
    pub async fn start_in(dir: TempDir, config: &str) -> Self {
        Self::start_with_env(dir, config, &[]).await
    }

    /// Like [`start_in`](Self::start_in), with extra environment variables.
    pub async fn start_with_env(dir: TempDir, config: &str, env: &[(&str, &str)]) -> Self {
        let path = dir.0.join("edgevisor.toml");
        std::fs::write(&path, config).unwrap();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.0.join("gateway.log"))
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_edgevisor"))
            .args(["run", "--config"])
            .arg(&path)
            .env("RUST_LOG", "info")
            // Tests see the same payloads whatever this machine's clock
            // service says (a test that wants otherwise overrides it).
            .env("EDGEVISOR_CLOCK", "synced")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        Self {
            child,
            dir,
            config: path,
        }
    }

    fn pid(&self) -> Pid {
        Pid::from_raw(self.child.id().unwrap() as i32)
    }

    pub fn signal(&self, signal: Signal) {
        kill(self.pid(), signal).unwrap();
    }

    /// Waits for the exit code (panics after `secs`).
    pub async fn exit_code(&mut self, secs: u64) -> Option<i32> {
        let status = tokio::time::timeout(Duration::from_secs(secs), self.child.wait()).await;
        match status {
            Ok(status) => status.unwrap().code(),
            Err(_) => panic!("gateway did not exit within {secs}s; log:\n{}", self.log()),
        }
    }

    /// SIGKILL, and wait for it to be gone; returns the directory for a restart.
    pub async fn kill(mut self) -> TempDir {
        self.signal(Signal::SIGKILL);
        let _ = self.child.wait().await;
        self.dir
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.0.join("gateway.log")).unwrap_or_default()
    }

    /// Rewrites the config file.
    pub fn rewrite(&self, config: &str) {
        std::fs::write(&self.config, config).unwrap();
    }
}

/// A free TCP port on 127.0.0.1 (probed, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
