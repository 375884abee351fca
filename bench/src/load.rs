//! The load generator: N TCP connections sending JSON lines
//! `{"conn":C,"n":K,"v":21.5}\n` at a fixed total rate. Every ~10 ms each
//! connection sends the lines that are due by then in one write, with the
//! connections' schedules staggered so they do not all fire at once. A
//! connection that falls behind (the forwarder stopped reading) sends at
//! most 100 ms worth at its next turn; what it skipped is `offered` but not
//! `sent`.

use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::time::{Instant, MissedTickBehavior};

/// The `conn` of probe readings, which the subscriber counts apart.
pub const PROBE_CONN: u32 = 999_999;

/// How often connections send what is due.
const TICK: Duration = Duration::from_millis(10);

/// Tasks sharing the connections (the machine has 2 cores).
const SHARDS: usize = 2;

/// Connected load connections, ready to send.
pub struct Load {
    conns: Vec<Conn>,
}

struct Conn {
    id: u32,
    stream: Option<TcpStream>,
    scheduled: u64,
}

/// What a load run did. Holds the connections open until dropped.
#[derive(Default)]
pub struct Sent {
    /// Lines written to the sockets.
    pub sent: u64,
    /// Lines due by the schedule (sent plus skipped while behind).
    pub offered: u64,
    /// Connections that failed to write.
    pub failed: u64,
    streams: Vec<TcpStream>,
}

impl Load {
    /// Opens `connections` connections to `addr`, one after another; their
    /// `conn` numbers start at `first_id`.
    pub async fn connect(
        addr: SocketAddr,
        connections: usize,
        first_id: usize,
    ) -> anyhow::Result<Self> {
        let mut conns = Vec::with_capacity(connections);
        for id in first_id..first_id + connections {
            let stream = TcpStream::connect(addr)
                .await
                .with_context(|| format!("load connection {id} to {addr}"))?;
            stream.set_nodelay(true)?;
            let id = u32::try_from(id)?;
            conns.push(Conn {
                id,
                stream: Some(stream),
                scheduled: 0,
            });
        }
        Ok(Self { conns })
    }

    /// Sends `rate` lines per second in total for `duration`.
    pub async fn run(self, rate: f64, duration: Duration) -> anyhow::Result<Sent> {
        let total = self.conns.len().max(1);
        let per_conn = rate / total as f64;
        let start = Instant::now();
        let mut shards: Vec<Vec<Conn>> = (0..SHARDS).map(|_| Vec::new()).collect();
        for (i, c) in self.conns.into_iter().enumerate() {
            shards[i % SHARDS].push(c);
        }
        let tasks: Vec<_> = shards
            .into_iter()
            .map(|conns| tokio::spawn(shard(conns, per_conn, total, start, duration)))
            .collect();
        let mut sum = Sent::default();
        for t in tasks {
            let s = t.await.context("load task")?;
            sum.sent += s.sent;
            sum.offered += s.offered;
            sum.failed += s.failed;
            sum.streams.extend(s.streams);
        }
        Ok(sum)
    }
}

async fn shard(
    mut conns: Vec<Conn>,
    per_conn: f64,
    total: usize,
    start: Instant,
    duration: Duration,
) -> Sent {
    let mut out = Sent::default();
    let max_burst = (per_conn * 0.1).ceil() as u64 + 1;
    let mut buf = Vec::with_capacity(64 * 1024);
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let elapsed = start.elapsed().min(duration);
        for c in &mut conns {
            let phase = f64::from(c.id) % total as f64 / total as f64;
            let target = (per_conn * elapsed.as_secs_f64() + phase).floor() as u64;
            let due = target.saturating_sub(c.scheduled);
            out.offered += due;
            let first = c.scheduled;
            c.scheduled = target;
            let Some(stream) = c.stream.as_mut() else {
                continue;
            };
            let lines = due.min(max_burst);
            if lines == 0 {
                continue;
            }
            buf.clear();
            for n in first + 1..=first + lines {
                let _ = writeln!(buf, "{{\"conn\":{},\"n\":{n},\"v\":21.5}}", c.id);
            }
            if stream.write_all(&buf).await.is_ok() {
                out.sent += lines;
            } else {
                out.failed += 1;
                c.stream = None;
            }
        }
        if elapsed >= duration {
            break;
        }
    }
    out.streams = conns.into_iter().filter_map(|c| c.stream).collect();
    out
}

/// A connection sending probe readings, to learn when a forwarder delivers
/// end to end (Node-RED drops messages until its MQTT client connected).
pub struct Probe {
    stream: TcpStream,
    n: u64,
}

impl Probe {
    /// Connects, retrying for up to `patience` while the forwarder starts.
    pub async fn connect(addr: SocketAddr, patience: Duration) -> anyhow::Result<Self> {
        let deadline = Instant::now() + patience;
        loop {
            match TcpStream::connect(addr).await {
                Ok(stream) => return Ok(Self { stream, n: 0 }),
                Err(e) if Instant::now() > deadline => {
                    return Err(e).context(format!("forwarder not listening on {addr}"))
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
    }

    /// Sends one probe reading.
    pub async fn send(&mut self) -> anyhow::Result<()> {
        self.n += 1;
        let line = format!("{{\"conn\":{PROBE_CONN},\"n\":{},\"v\":0}}\n", self.n);
        self.stream
            .write_all(line.as_bytes())
            .await
            .context("sending a probe")
    }
}
