//! The floor's upstream side: one MQTT 3.1.1 connection (rumqttc's I/O-free
//! `mqttbytes` codec), a writer that encodes every waiting reading as a
//! QoS 1 PUBLISH into one buffer and writes it with one `write_all`, and a
//! reader that counts PUBACKs. At most `IN_FLIGHT` readings go unacknowledged,
//! so packet ids (which wrap at 65,535) are never reused while in flight.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use anyhow::{bail, Context};
use bytes::{Bytes, BytesMut};
use rumqttc::mqttbytes::v4::{ConnAck, Connect, ConnectReturnCode, Packet, Publish};
use rumqttc::mqttbytes::{Error as MqttError, QoS};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedReadHalf;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, Notify};

const MAX_PACKET: usize = 1 << 20;
const IN_FLIGHT: u64 = 32_768;

/// edgevisor's telemetry envelope (SPEC section 5) for one sensor.
pub struct Envelope {
    head: Vec<u8>,
    topic: String,
}

impl Envelope {
    /// The envelope of `sensor` on `gateway`, published on `topic`.
    pub fn new(gateway: &str, sensor: &str, topic: &str) -> anyhow::Result<Self> {
        let head = format!(
            "{{\"gateway\":{},\"sensor\":{},\"boot\":1,\"seq\":",
            serde_json::to_string(gateway)?,
            serde_json::to_string(sensor)?
        );
        Ok(Self {
            head: head.into_bytes(),
            topic: topic.to_string(),
        })
    }

    /// `{"gateway":G,"sensor":S,"boot":1,"seq":K,"ts":T,"codec":"json","data":<line>}`.
    fn wrap(&self, out: &mut Vec<u8>, seq: u64, ts: &str, line: &[u8]) {
        out.clear();
        out.extend_from_slice(&self.head);
        out.extend_from_slice(seq.to_string().as_bytes());
        out.extend_from_slice(b",\"ts\":\"");
        out.extend_from_slice(ts.as_bytes());
        out.extend_from_slice(b"\",\"codec\":\"json\",\"data\":");
        out.extend_from_slice(line);
        out.push(b'}');
    }
}

/// PUBACKs received so far, and a wake-up for a writer waiting on them.
#[derive(Default)]
struct Acks {
    count: AtomicU64,
    notify: Notify,
}

/// Connects to the broker and publishes every batch from `rx`.
pub async fn run(
    broker: SocketAddr,
    envelope: Envelope,
    mut rx: mpsc::Receiver<Vec<Bytes>>,
) -> anyhow::Result<()> {
    let mut stream = TcpStream::connect(broker)
        .await
        .with_context(|| format!("floor connecting to {broker}"))?;
    stream.set_nodelay(true)?;
    handshake(&mut stream).await?;
    let (reader, mut writer) = stream.into_split();
    let acks = Arc::new(Acks::default());
    let ack_task = tokio::spawn(read_acks(reader, acks.clone()));
    let (mut seq, mut pkid, mut sent) = (0u64, 0u16, 0u64);
    let (mut batches, mut out, mut payload) =
        (Vec::new(), BytesMut::with_capacity(1 << 20), Vec::new());
    while rx.recv_many(&mut batches, 64).await > 0 {
        let ts = humantime::format_rfc3339_millis(SystemTime::now()).to_string();
        for line in batches.drain(..).flatten() {
            seq += 1;
            pkid = pkid.checked_add(1).unwrap_or(1);
            envelope.wrap(&mut payload, seq, &ts, &line);
            let mut publish = Publish::new(
                envelope.topic.as_str(),
                QoS::AtLeastOnce,
                payload.as_slice(),
            );
            publish.pkid = pkid;
            publish.write(&mut out)?;
        }
        // A batch larger than the window waits for everything before it.
        let batch = (seq - sent).min(IN_FLIGHT);
        while sent.saturating_sub(acks.count.load(Ordering::Acquire)) + batch > IN_FLIGHT {
            if ack_task.is_finished() {
                bail!("the broker connection closed");
            }
            acks.notify.notified().await;
        }
        writer
            .write_all(&out)
            .await
            .context("floor writing to the broker")?;
        out.clear();
        sent = seq;
    }
    Ok(())
}

async fn handshake(stream: &mut TcpStream) -> anyhow::Result<()> {
    let mut buf = BytesMut::new();
    let mut connect = Connect::new("floor-bench");
    connect.keep_alive = 0;
    Packet::Connect(connect).write(&mut buf, MAX_PACKET)?;
    stream.write_all(&buf).await?;
    buf.clear();
    loop {
        if stream.read_buf(&mut buf).await? == 0 {
            bail!("the broker closed the connection before CONNACK");
        }
        match Packet::read(&mut buf, MAX_PACKET) {
            Ok(Packet::ConnAck(ConnAck {
                code: ConnectReturnCode::Success,
                ..
            })) => return Ok(()),
            Ok(other) => bail!("the broker answered CONNECT with {other:?}"),
            Err(MqttError::InsufficientBytes(_)) => continue,
            Err(e) => return Err(e).context("reading CONNACK"),
        }
    }
}

async fn read_acks(mut reader: OwnedReadHalf, acks: Arc<Acks>) -> anyhow::Result<()> {
    let mut buf = BytesMut::with_capacity(64 * 1024);
    loop {
        if reader.read_buf(&mut buf).await? == 0 {
            acks.notify.notify_one();
            bail!("the broker closed the connection");
        }
        let mut n = 0;
        loop {
            match Packet::read(&mut buf, MAX_PACKET) {
                Ok(Packet::PubAck(_)) => n += 1,
                Ok(_) => {}
                Err(MqttError::InsufficientBytes(_)) => break,
                Err(e) => return Err(e).context("reading PUBACKs"),
            }
        }
        if n > 0 {
            acks.count.fetch_add(n, Ordering::Release);
            acks.notify.notify_one();
        }
    }
}
