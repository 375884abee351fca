//! The counting subscriber: a raw MQTT 3.1.1 client (rumqttc's I/O-free
//! `mqttbytes` on a `TcpStream`) with a QoS 1 subscription to one topic
//! filter. It acknowledges every message and counts the distinct readings
//! delivered, keyed by the `(conn, n)` the load generator put in each line,
//! which every forwarder passes through (edgevisor and the floor inside
//! their envelope's `data`, Node-RED as the whole payload).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use bytes::BytesMut;
use rumqttc::mqttbytes::v4::{Connect, Packet, PubAck, Subscribe};
use rumqttc::mqttbytes::{Error as MqttError, QoS};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::load::PROBE_CONN;

const MAX_PACKET: usize = 1 << 20;

/// What the subscriber has seen so far.
#[derive(Debug, Default)]
pub struct Counts {
    distinct: AtomicU64,
    total: AtomicU64,
    probes: AtomicU64,
    subscribed: AtomicBool,
    /// Microseconds after `base` of the first and latest delivery, plus one (0: none yet).
    first_us: AtomicU64,
    last_us: AtomicU64,
}

/// A running subscriber; its task ends when dropped.
pub struct Subscriber {
    counts: Arc<Counts>,
    base: Instant,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Subscriber {
    /// Connects to the broker on `port` (retrying for up to `patience`, so
    /// it may be started before the broker) and subscribes to `filter`.
    pub fn start(
        port: u16,
        client_id: &str,
        clean: bool,
        filter: &str,
        patience: Duration,
    ) -> Self {
        let counts = Arc::new(Counts::default());
        let base = Instant::now();
        let (c, id, filter) = (counts.clone(), client_id.to_string(), filter.to_string());
        let task = tokio::spawn(async move {
            let stream = connect(port, patience).await?;
            run(stream, &id, clean, &filter, &c, base).await
        });
        Self { counts, base, task }
    }

    /// Distinct readings delivered.
    pub fn distinct(&self) -> u64 {
        self.counts.distinct.load(Ordering::Relaxed)
    }

    /// All readings delivered, duplicates included.
    pub fn total(&self) -> u64 {
        self.counts.total.load(Ordering::Relaxed)
    }

    /// Probe readings delivered.
    pub fn probes(&self) -> u64 {
        self.counts.probes.load(Ordering::Relaxed)
    }

    fn at(&self, us: &AtomicU64) -> Option<Instant> {
        match us.load(Ordering::Relaxed) {
            0 => None,
            v => Some(self.base + Duration::from_micros(v - 1)),
        }
    }

    /// When the first reading arrived.
    pub fn first_delivery(&self) -> Option<Instant> {
        self.at(&self.counts.first_us)
    }

    /// When the latest reading arrived.
    pub fn last_delivery(&self) -> Option<Instant> {
        self.at(&self.counts.last_us)
    }

    /// Waits until the broker acknowledged the subscription.
    pub async fn wait_subscribed(&mut self, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        while !self.counts.subscribed.load(Ordering::Relaxed) {
            if self.task.is_finished() {
                return match (&mut self.task).await {
                    Ok(Err(e)) => Err(e.context("subscriber")),
                    _ => bail!("subscriber stopped before subscribing"),
                };
            }
            if Instant::now() > deadline {
                bail!("subscriber not subscribed within {timeout:?}");
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        Ok(())
    }

    /// Waits until `want` distinct readings arrived; false on timeout.
    pub async fn wait_for(&self, want: u64, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while self.distinct() < want {
            if Instant::now() > deadline || self.task.is_finished() {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        true
    }

    /// Sends nothing more; the broker keeps a persistent session's queue.
    pub fn stop(self) {
        self.task.abort();
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn connect(port: u16, patience: Duration) -> anyhow::Result<TcpStream> {
    let deadline = Instant::now() + patience;
    loop {
        match TcpStream::connect(("127.0.0.1", port)).await {
            Ok(s) => return Ok(s),
            Err(e) if Instant::now() > deadline => {
                return Err(e).context(format!("subscriber connecting to 127.0.0.1:{port}"))
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

async fn run(
    mut stream: TcpStream,
    client_id: &str,
    clean: bool,
    filter: &str,
    counts: &Counts,
    base: Instant,
) -> anyhow::Result<()> {
    stream.set_nodelay(true)?;
    let mut out = BytesMut::new();
    let mut connect = Connect::new(client_id);
    connect.keep_alive = 0;
    connect.clean_session = clean;
    Packet::Connect(connect).write(&mut out, MAX_PACKET)?;
    let mut subscribe = Subscribe::new(filter, QoS::AtLeastOnce);
    subscribe.pkid = 1; // zero is not a valid packet id; the broker hangs up
    Packet::Subscribe(subscribe).write(&mut out, MAX_PACKET)?;
    stream.write_all(&out).await?;
    out.clear();
    let mut tally = Tally::default();
    let mut buf = BytesMut::with_capacity(1 << 18);
    loop {
        if buf.capacity() - buf.len() < 1 << 16 {
            buf.reserve(1 << 18);
        }
        if stream.read_buf(&mut buf).await? == 0 {
            bail!("broker closed the subscriber's connection");
        }
        loop {
            match Packet::read(&mut buf, MAX_PACKET) {
                Ok(Packet::Publish(p)) => {
                    if p.qos == QoS::AtLeastOnce {
                        Packet::PubAck(PubAck::new(p.pkid)).write(&mut out, MAX_PACKET)?;
                    }
                    tally.count(&p.payload, counts, base);
                }
                Ok(Packet::SubAck(_)) => counts.subscribed.store(true, Ordering::Relaxed),
                Ok(_) => {}
                Err(MqttError::InsufficientBytes(_)) => break,
                Err(e) => return Err(e).context("subscriber reading from the broker"),
            }
        }
        if !out.is_empty() {
            stream.write_all(&out).await?;
            out.clear();
        }
    }
}

/// Distinct `(conn, n)` pairs, one bit set per connection.
#[derive(Default)]
struct Tally {
    seen: Vec<Vec<u64>>,
}

impl Tally {
    fn count(&mut self, payload: &[u8], counts: &Counts, base: Instant) {
        let Some((conn, n)) = reading_id(payload) else {
            return;
        };
        if conn == PROBE_CONN {
            counts.probes.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let us = base.elapsed().as_micros() as u64 + 1;
        let _ = counts
            .first_us
            .compare_exchange(0, us, Ordering::Relaxed, Ordering::Relaxed);
        counts.last_us.store(us, Ordering::Relaxed);
        counts.total.fetch_add(1, Ordering::Relaxed);
        if self.insert(conn as usize, n) {
            counts.distinct.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Marks a reading; true if it was new.
    fn insert(&mut self, conn: usize, n: u64) -> bool {
        if conn >= 1 << 20 {
            return false;
        }
        if self.seen.len() <= conn {
            self.seen.resize_with(conn + 1, Vec::new);
        }
        let bits = &mut self.seen[conn];
        let (word, bit) = ((n / 64) as usize, 1u64 << (n % 64));
        if bits.len() <= word {
            bits.resize(word + 1 + word / 2, 0);
        }
        let new = bits[word] & bit == 0;
        bits[word] |= bit;
        new
    }
}

/// The `(conn, n)` of a reading: the numbers after `{"conn":` and `,"n":`.
fn reading_id(payload: &[u8]) -> Option<(u32, u64)> {
    let at = find(payload, b"{\"conn\":")? + 8;
    let (conn, len) = number(&payload[at..])?;
    let rest = payload[at + len..].strip_prefix(b",\"n\":")?;
    let (n, _) = number(rest)?;
    Some((u32::try_from(conn).ok()?, n))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn number(bytes: &[u8]) -> Option<(u64, usize)> {
    let len = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
    let text = std::str::from_utf8(&bytes[..len]).ok()?;
    Some((text.parse().ok()?, len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_reading_in_an_envelope_or_bare() {
        let env = br#"{"gateway":"g","sensor":"s","boot":1,"seq":9,"ts":"x","codec":"json","data":{"conn":12,"n":345,"v":21.5}}"#;
        assert_eq!(reading_id(env), Some((12, 345)));
        assert_eq!(reading_id(br#"{"conn":0,"n":1,"v":21.5}"#), Some((0, 1)));
        assert_eq!(reading_id(br#"{"state":"online"}"#), None);
    }

    #[test]
    fn counts_each_reading_once() {
        let mut t = Tally::default();
        assert!(t.insert(3, 1000));
        assert!(!t.insert(3, 1000));
        assert!(t.insert(3, 1001) && t.insert(0, 0));
    }
}
