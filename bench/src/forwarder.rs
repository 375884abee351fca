//! The three forwarders under test, started the same way for the bench:
//! each listens for the load on a free TCP port of 127.0.0.1 and publishes
//! to the private broker under its own topic prefix, in a process of its
//! own so `/proc` can account for it.

use std::net::SocketAddr;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use anyhow::{bail, Context};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::process::{Child, Command};

use crate::edgevisor::{self, ListenSensor, GATEWAY};
use crate::node_red;
use crate::options::Options;
use crate::report::note;
use crate::workdir::{free_port, WorkDir};

/// Which forwarder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The product: `edgevisor run`.
    Edgevisor,
    /// The product with `[metrics]` on, scraped every second (a tenth of
    /// Prometheus's usual interval is the harsher case): what the
    /// endpoint costs.
    EdgevisorMetrics,
    /// The bench's minimal forwarder (`edgevisor-bench floor`).
    Floor,
    /// Node-RED 4 from npm: `tcp in` -> `json` -> `mqtt out`.
    NodeRed,
}

impl Kind {
    /// Parses a name of `--only`.
    pub fn parse(name: &str) -> anyhow::Result<Self> {
        match name.trim() {
            "edgevisor" => Ok(Self::Edgevisor),
            "edgevisor-metrics" | "edgevisor_metrics" => Ok(Self::EdgevisorMetrics),
            "floor" => Ok(Self::Floor),
            "node-red" | "node_red" | "nodered" => Ok(Self::NodeRed),
            other => bail!(
                "unknown forwarder {other:?}: use edgevisor, edgevisor-metrics, floor or node-red"
            ),
        }
    }

    /// The name in figure lines.
    pub fn name(self) -> &'static str {
        match self {
            Self::Edgevisor => "edgevisor",
            Self::EdgevisorMetrics => "edgevisor_metrics",
            Self::Floor => "floor",
            Self::NodeRed => "node_red",
        }
    }

    /// The topic prefix it publishes readings under.
    fn prefix(self) -> &'static str {
        match self {
            Self::Edgevisor | Self::EdgevisorMetrics => "edgevisor",
            Self::Floor => "floor",
            Self::NodeRed => "nodered",
        }
    }
}

/// A started forwarder.
pub struct Running {
    /// The process measured.
    pub child: Child,
    /// Where the load connects.
    pub listen: SocketAddr,
    /// The subscriber's filter: the telemetry topics only.
    pub filter: String,
    /// Keeps reading edgevisor's notify socket.
    _notifier: Option<edgevisor::Notifier>,
    /// Scrapes `/metrics` every second (edgevisor-metrics).
    _scraper: Option<Scraper>,
    /// Where `/metrics` is served (edgevisor-metrics).
    pub metrics: Option<SocketAddr>,
    _dir: WorkDir,
}

impl Running {
    /// The process id.
    pub fn pid(&self) -> anyhow::Result<u32> {
        self.child.id().context("forwarder already exited")
    }

    /// SIGTERM, then waits (up to 30 s, then SIGKILL).
    pub async fn stop(mut self) -> anyhow::Result<ExitStatus> {
        terminate(&mut self.child, Duration::from_secs(30)).await
    }
}

/// The `max_connections` edgevisor's load sensor gets: the largest
/// connection count of the matrix and some slack, at least 2,000.
fn max_connections(opts: &Options) -> i64 {
    let most = opts.connections.iter().copied().max().unwrap_or(0);
    i64::try_from(most.saturating_add(64)).map_or(i64::MAX, |n| n.max(2000))
}

/// Starts `kind` against the broker on `broker_port`; `None` when it
/// cannot run here (Node-RED without npm), with a note why.
pub async fn start(
    kind: Kind,
    opts: &Options,
    broker_port: u16,
) -> anyhow::Result<Option<Running>> {
    let dir = WorkDir::new(&opts.root, kind.name())?;
    let port = free_port()?;
    let listen: SocketAddr = ([127, 0, 0, 1], port).into();
    let topic = format!("{}/{GATEWAY}/telemetry/load", kind.prefix());
    let filter = format!("{}/{GATEWAY}/telemetry/#", kind.prefix());
    let mut scraper = None;
    let mut scraper_addr = None;
    let (child, started) = match kind {
        Kind::Edgevisor | Kind::EdgevisorMetrics => {
            let sensor = ListenSensor {
                id: "load".into(),
                port,
                // Room for the largest connection count of the matrix.
                max_connections: Some(max_connections(opts)),
            };
            let metrics = match kind {
                Kind::EdgevisorMetrics => Some(SocketAddr::from(([127, 0, 0, 1], free_port()?))),
                _ => None,
            };
            let state = dir.path().join("state");
            let text =
                edgevisor::config_with_metrics(&state, broker_port, "1GiB", &[sensor], metrics)?;
            let config = edgevisor::write_checked(&opts.edgevisor, dir.path(), &text).await?;
            let (child, mut notifier) =
                edgevisor::start(&opts.edgevisor, &config, dir.path()).await?;
            notifier.wait_ready(Duration::from_secs(30)).await?;
            scraper = metrics.map(Scraper::start);
            scraper_addr = metrics;
            (child, Some(notifier))
        }
        Kind::Floor => {
            let exe = std::env::current_exe().context("locating the bench binary")?;
            let child = Command::new(exe)
                .arg("floor")
                .arg("--listen")
                .arg(listen.to_string())
                .arg("--broker")
                .arg(format!("127.0.0.1:{broker_port}"))
                .arg("--topic")
                .arg(&topic)
                .stdin(Stdio::null())
                .kill_on_drop(true)
                .spawn()
                .context("starting the floor forwarder")?;
            (child, None)
        }
        Kind::NodeRed => {
            let Some(node) = node_red::prepare(&opts.root).await? else {
                return Ok(None);
            };
            let child = node.start(dir.path(), port, broker_port, &topic)?;
            (child, None)
        }
    };
    Ok(Some(Running {
        child,
        listen,
        filter,
        _notifier: started,
        _scraper: scraper,
        metrics: scraper_addr,
        _dir: dir,
    }))
}

/// One GET of `/metrics`: the response's size, or `None` unless it was
/// a 200.
pub async fn scrape(addr: SocketAddr) -> Option<usize> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
    stream
        .write_all(b"GET /metrics HTTP/1.0\r\n\r\n")
        .await
        .ok()?;
    let mut body = Vec::new();
    stream.read_to_end(&mut body).await.ok()?;
    (body.starts_with(b"HTTP/1.0 200") || body.starts_with(b"HTTP/1.1 200")).then_some(body.len())
}

/// GETs `/metrics` every second, as Prometheus would (more often), until
/// dropped.
struct Scraper(tokio::task::JoinHandle<()>);

impl Scraper {
    fn start(addr: SocketAddr) -> Self {
        Self(tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            let mut failures = 0u32;
            loop {
                tick.tick().await;
                let scraped = async {
                    let mut stream = tokio::net::TcpStream::connect(addr).await?;
                    stream.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").await?;
                    let mut body = Vec::new();
                    stream.read_to_end(&mut body).await?;
                    Ok::<_, std::io::Error>(
                        body.starts_with(b"HTTP/1.0 200") || body.starts_with(b"HTTP/1.1 200"),
                    )
                }
                .await;
                if !matches!(scraped, Ok(true)) {
                    failures += 1;
                    if failures == 1 {
                        note(&format!("a scrape of {addr}/metrics failed: {scraped:?}"));
                    }
                }
            }
        }))
    }
}

impl Drop for Scraper {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Sends SIGTERM and waits up to `grace` for the exit, then kills.
pub async fn terminate(child: &mut Child, grace: Duration) -> anyhow::Result<ExitStatus> {
    if let Some(pid) = child.id() {
        let _ = kill(Pid::from_raw(i32::try_from(pid)?), Signal::SIGTERM);
    }
    match tokio::time::timeout(grace, child.wait()).await {
        Ok(status) => Ok(status?),
        Err(_) => {
            note(&format!(
                "process did not exit within {grace:?} of SIGTERM; killing it"
            ));
            child.kill().await?;
            Ok(child.wait().await?)
        }
    }
}
