//! Running the real `edgevisor` binary: its config built with the `toml`
//! crate (tcp-listen sensors on free ports, the outbox in a fresh directory
//! on disk), checked with `edgevisor check`, started with `edgevisor run`
//! under a `NOTIFY_SOCKET` of our own so its `READY=1` can be timed, and
//! with the environment the packaged systemd unit sets.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context};
use tokio::net::UnixDatagram;
use tokio::process::{Child, Command};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// The gateway id of every bench config (topics `edgevisor/bench/...`).
pub const GATEWAY: &str = "bench";

/// One `tcp-listen` sensor of a generated config.
pub struct ListenSensor {
    /// Sensor id (the topic suffix).
    pub id: String,
    /// Port on 127.0.0.1.
    pub port: u16,
    /// `max_connections`, or the default when `None`.
    pub max_connections: Option<i64>,
}

/// The text of a config with the given sensors, upstream on `broker_port`.
pub fn config_text(
    state_dir: &Path,
    broker_port: u16,
    outbox_max: &str,
    sensors: &[ListenSensor],
) -> anyhow::Result<String> {
    config_with_metrics(state_dir, broker_port, outbox_max, sensors, None)
}

/// [`config_text`] with `[metrics] listen` when `metrics` is set.
pub fn config_with_metrics(
    state_dir: &Path,
    broker_port: u16,
    outbox_max: &str,
    sensors: &[ListenSensor],
    metrics: Option<std::net::SocketAddr>,
) -> anyhow::Result<String> {
    let mut gateway = toml::Table::new();
    gateway.insert("id".into(), GATEWAY.into());
    gateway.insert("state_dir".into(), state_dir.display().to_string().into());
    let mut upstream = toml::Table::new();
    upstream.insert(
        "url".into(),
        format!("mqtt://127.0.0.1:{broker_port}").into(),
    );
    upstream.insert("outbox_max_bytes".into(), outbox_max.into());
    let sensors: Vec<toml::Value> = sensors
        .iter()
        .map(|s| {
            let mut t = toml::Table::new();
            t.insert("id".into(), s.id.clone().into());
            t.insert("transport".into(), "tcp-listen".into());
            t.insert("listen".into(), format!("127.0.0.1:{}", s.port).into());
            t.insert("codec".into(), "json".into());
            if let Some(max) = s.max_connections {
                t.insert("max_connections".into(), max.into());
            }
            t.insert("read_timeout".into(), "1h".into());
            toml::Value::Table(t)
        })
        .collect();
    let mut doc = toml::Table::new();
    doc.insert("gateway".into(), toml::Value::Table(gateway));
    doc.insert("upstream".into(), toml::Value::Table(upstream));
    doc.insert("sensor".into(), toml::Value::Array(sensors));
    if let Some(listen) = metrics {
        let mut table = toml::Table::new();
        table.insert("listen".into(), listen.to_string().into());
        doc.insert("metrics".into(), toml::Value::Table(table));
    }
    toml::to_string(&doc).context("writing the edgevisor config")
}

/// Writes the config into `dir` and has `edgevisor check` validate it.
pub async fn write_checked(binary: &Path, dir: &Path, text: &str) -> anyhow::Result<PathBuf> {
    let path = dir.join("edgevisor.toml");
    std::fs::write(&path, text).context("writing edgevisor.toml")?;
    let out = Command::new(binary)
        .args(["check", "--config"])
        .arg(&path)
        .output()
        .await
        .with_context(|| {
            format!(
                "running {} check (build it: cargo build --release)",
                binary.display()
            )
        })?;
    if !out.status.success() {
        bail!(
            "edgevisor check rejected the generated config:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(path)
}

/// The notify socket of a started `edgevisor run`, read in a task.
pub struct Notifier {
    /// When the process was spawned.
    pub spawned: Instant,
    ready: watch::Receiver<Option<Instant>>,
    notify_task: JoinHandle<()>,
}

impl Notifier {
    /// Waits for `READY=1`; returns how long after the spawn it came.
    pub async fn wait_ready(&mut self, timeout: Duration) -> anyhow::Result<Duration> {
        let ready = tokio::time::timeout(timeout, self.ready.wait_for(Option::is_some))
            .await
            .with_context(|| format!("edgevisor sent no READY=1 within {timeout:?}"))?
            .context("notify socket closed")?;
        let at = ready.unwrap_or_else(Instant::now);
        Ok(at.duration_since(self.spawned))
    }
}

impl Drop for Notifier {
    fn drop(&mut self) {
        self.notify_task.abort();
    }
}

/// Starts `edgevisor run --config <config>` with `NOTIFY_SOCKET` set (its
/// stderr goes to `edgevisor.log` in `dir`). Keep the notifier as long as
/// the process runs: a full socket queue would block its `sd_notify` calls.
pub async fn start(binary: &Path, config: &Path, dir: &Path) -> anyhow::Result<(Child, Notifier)> {
    let socket_path = dir.join("notify.sock");
    let _ = std::fs::remove_file(&socket_path);
    let socket = UnixDatagram::bind(&socket_path).context("binding the notify socket")?;
    let log = std::fs::File::create(dir.join("edgevisor.log")).context("creating edgevisor.log")?;
    let spawned = Instant::now();
    let child = Command::new(binary)
        .args(["run", "--log-format", "text", "--config"])
        .arg(config)
        .env("NOTIFY_SOCKET", &socket_path)
        .envs(unit_environment())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))?;
    let (tx, ready) = watch::channel(None);
    let notify_task = tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        while let Ok(n) = socket.recv(&mut buf).await {
            let text = String::from_utf8_lossy(&buf[..n]);
            if text.lines().any(|l| l == "READY=1") && tx.borrow().is_none() {
                let _ = tx.send(Some(Instant::now()));
            }
        }
    });
    Ok((
        child,
        Notifier {
            spawned,
            ready,
            notify_task,
        },
    ))
}

/// The `Environment=` settings of the packaged unit
/// (`systemd/edgevisor.service`): the bench runs the binary as the unit
/// does.
fn unit_environment() -> Vec<(String, String)> {
    const UNIT: &str = include_str!("../../systemd/edgevisor.service");
    UNIT.lines()
        .filter_map(|line| line.trim().strip_prefix("Environment="))
        .flat_map(str::split_whitespace)
        .filter_map(|pair| {
            let (key, value) = pair.split_once('=')?;
            Some((key.to_string(), value.trim_matches('"').to_string()))
        })
        .collect()
}

/// The number of telemetry messages `edgevisor outbox stats` reports.
pub async fn outbox_telemetry(binary: &Path, config: &Path) -> anyhow::Result<u64> {
    let out = Command::new(binary)
        .args(["outbox", "stats", "--config"])
        .arg(config)
        .output()
        .await
        .context("running edgevisor outbox stats")?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| {
            let mut words = l.split_whitespace();
            (words.next()? == "telemetry").then(|| words.next()?.parse().ok())?
        })
        .with_context(|| format!("no telemetry line in `edgevisor outbox stats`: {text}"))
}
