//! Sparkplug test kit. A host application that subscribes to `spBv1.0/#`
//! (again after every reconnect: the test brokers keep no sessions),
//! decodes every payload with the gateway's own `sparkplug::proto` types
//! and records it in arrival order; can ask a node for a rebirth and play
//! a primary host's STATE. A TCP sensor whose every line the test writes.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use edgevisor::sparkplug::proto::{metric, Metric, Payload};
use prost::Message;
use rumqttc::{AsyncClient, Event, Incoming, MqttOptions, QoS};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// A TCP sensor the gateway connects to; the test decides each line.
pub struct Sensor {
    pub addr: SocketAddr,
    socket: Arc<tokio::sync::Mutex<Option<TcpStream>>>,
    accepting: JoinHandle<()>,
}

impl Sensor {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let socket: Arc<tokio::sync::Mutex<Option<TcpStream>>> = Arc::default();
        let latest = socket.clone();
        let accepting = tokio::spawn(async move {
            while let Ok((accepted, _)) = listener.accept().await {
                *latest.lock().await = Some(accepted);
            }
        });
        Self {
            addr,
            socket,
            accepting,
        }
    }

    /// Writes `line` to the gateway's current connection (waiting for one).
    pub async fn send(&self, line: &str) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(socket) = self.socket.lock().await.as_mut() {
                if socket
                    .write_all(format!("{line}\n").as_bytes())
                    .await
                    .is_ok()
                {
                    return;
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no gateway connection to write {line}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Forgets the connection (before the gateway restarts).
    pub async fn forget(&self) {
        *self.socket.lock().await = None;
    }

    /// Closes the connection and stops listening: the gateway's link
    /// ends and cannot connect again.
    pub async fn stop(&self) {
        self.accepting.abort();
        self.forget().await;
    }
}

/// One Sparkplug message seen by the host.
#[derive(Debug, Clone)]
pub struct SpMsg {
    /// `NBIRTH`, `DDATA`, `NDEATH`, ...
    pub kind: String,
    /// The device id for device messages.
    pub device: Option<String>,
    /// The decoded payload (STATE and other JSON give an empty one).
    pub payload: Payload,
}

impl SpMsg {
    /// The metric named `name` (panics if absent).
    pub fn metric(&self, name: &str) -> &Metric {
        self.payload
            .metrics
            .iter()
            .find(|m| m.name.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("no metric {name} in {:?}", self.payload))
    }

    /// `bdSeq` of an NBIRTH or NDEATH.
    pub fn bd_seq(&self) -> u64 {
        match self.metric("bdSeq").value {
            Some(metric::Value::LongValue(v)) => v,
            ref other => panic!("bdSeq is not Int64: {other:?}"),
        }
    }

    /// The String value of metric `name`.
    pub fn text(&self, name: &str) -> String {
        match &self.metric(name).value {
            Some(metric::Value::StringValue(s)) => s.clone(),
            other => panic!("{name} is not a String: {other:?}"),
        }
    }

    /// True for what an edge node numbers with `seq`.
    pub fn numbered(&self) -> bool {
        matches!(self.kind.as_str(), "NBIRTH" | "DBIRTH" | "DDATA" | "DDEATH")
    }
}

/// The host.
pub struct Host {
    msgs: Arc<Mutex<Vec<SpMsg>>>,
    subscribed: Arc<AtomicU32>,
    client: AsyncClient,
    task: JoinHandle<()>,
}

impl Host {
    /// Connects to the broker on `port` and waits for the SUBACK.
    pub async fn connect(port: u16) -> Self {
        let mut options =
            MqttOptions::new(format!("host-{}", fastrand::u32(..)), "127.0.0.1", port);
        options.set_keep_alive(Duration::from_secs(5));
        let (client, mut eventloop) = AsyncClient::new(options, 64);
        let msgs: Arc<Mutex<Vec<SpMsg>>> = Arc::default();
        let subscribed = Arc::new(AtomicU32::new(0));
        let (sink, acks, subscriber) = (msgs.clone(), subscribed.clone(), client.clone());
        let task = tokio::spawn(async move {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Incoming::ConnAck(_))) => {
                        let _ = subscriber.subscribe("spBv1.0/#", QoS::AtLeastOnce).await;
                    }
                    Ok(Event::Incoming(Incoming::SubAck(_))) => {
                        acks.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok(Event::Incoming(Incoming::Publish(p))) => {
                        let levels: Vec<&str> = p.topic.split('/').collect();
                        let kind = levels.get(2).copied().unwrap_or_default().to_string();
                        let device = levels.get(4).map(|d| d.to_string());
                        let payload = Payload::decode(p.payload.as_ref()).unwrap_or_default();
                        sink.lock().unwrap().push(SpMsg {
                            kind,
                            device,
                            payload,
                        });
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
        });
        let host = Self {
            msgs,
            subscribed,
            client,
            task,
        };
        host.wait_subscribed(1).await;
        host
    }

    /// Waits until the host has subscribed `times` times in all.
    pub async fn wait_subscribed(&self, times: u32) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        while self.subscribed.load(Ordering::SeqCst) < times {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the host did not subscribe"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Everything so far, in arrival order.
    pub fn all(&self) -> Vec<SpMsg> {
        self.msgs.lock().unwrap().clone()
    }

    /// Waits until `done` holds, or panics after `secs` naming `what`.
    pub async fn wait(&self, what: &str, secs: u64, done: impl Fn(&[SpMsg]) -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            let all = self.all();
            if done(&all) {
                return;
            }
            if tokio::time::Instant::now() > deadline {
                let tail: Vec<String> = all
                    .iter()
                    .rev()
                    .take(12)
                    .map(|m| format!("{} {:?} seq={:?}", m.kind, m.device, m.payload.seq))
                    .collect();
                panic!(
                    "timed out after {secs}s waiting for {what}; last messages (newest first):\n{}",
                    tail.join("\n")
                );
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Publishes `host`'s retained Sparkplug 3.0 STATE.
    pub async fn state(&self, host: &str, online: bool) {
        let ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis();
        self.client
            .publish(
                format!("spBv1.0/STATE/{host}"),
                QoS::AtLeastOnce,
                true,
                format!(r#"{{"online":{online},"timestamp":{ms}}}"#),
            )
            .await
            .unwrap();
    }

    /// Publishes NCMD `Node Control/Rebirth` = true to `group`/`node`.
    pub async fn rebirth(&self, group: &str, node: &str) {
        let payload = Payload {
            timestamp: Some(1),
            metrics: vec![Metric {
                name: Some("Node Control/Rebirth".into()),
                datatype: Some(11),
                value: Some(metric::Value::BooleanValue(true)),
                ..Metric::default()
            }],
            ..Payload::default()
        };
        self.client
            .publish(
                format!("spBv1.0/{group}/NCMD/{node}"),
                QoS::AtLeastOnce,
                false,
                payload.encode_to_vec(),
            )
            .await
            .unwrap();
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Count of messages of `kind` (for `device`, if given).
pub fn count(msgs: &[SpMsg], kind: &str, device: Option<&str>) -> usize {
    msgs.iter()
        .filter(|m| m.kind == kind && (device.is_none() || m.device.as_deref() == device))
        .count()
}

/// Asserts Sparkplug's ordering over everything an edge node sent: each
/// session starts with NBIRTH at seq 0, every later message has the next
/// seq (255 wraps to 0), and a device's DDATA comes after its DBIRTH in
/// the same birth (and no DDEATH between).
pub fn assert_ordered(msgs: &[SpMsg]) {
    let numbered: Vec<&SpMsg> = msgs.iter().filter(|m| m.numbered()).collect();
    let Some(first) = numbered.first() else {
        return;
    };
    assert_eq!(first.kind, "NBIRTH", "the first message must be NBIRTH");
    let mut born: Vec<String> = Vec::new();
    let mut last = 0u64;
    for (i, m) in numbered.iter().enumerate() {
        let seq = m.payload.seq.expect("numbered messages carry seq");
        if m.kind == "NBIRTH" {
            assert_eq!(seq, 0, "NBIRTH seq must be 0 (message {i})");
            born.clear();
        } else {
            assert_eq!(
                seq,
                (last + 1) % 256,
                "seq not continuous at message {i} ({})",
                m.kind
            );
        }
        last = seq;
        let device = m.device.clone().unwrap_or_default();
        match m.kind.as_str() {
            "DBIRTH" => born.push(device),
            "DDEATH" => born.retain(|d| d != &device),
            "DDATA" => assert!(
                born.contains(&device),
                "DDATA for {device} without a DBIRTH since the last NBIRTH (message {i})"
            ),
            _ => {}
        }
    }
}

/// What every Sparkplug test starts with: a broker, a host on it, the two
/// sensors and a gateway running [`config`] with the extra keys given.
pub struct Rig {
    pub broker: super::Mosquitto,
    pub host: Host,
    pub env: Sensor,
    pub raw: Sensor,
    pub gateway: super::Gateway,
}

impl Rig {
    /// Starts it all; `tag` names the temporary folder.
    pub async fn start(tag: &str, sparkplug: &str, env_extra: &str) -> Self {
        let broker = super::Mosquitto::start().await.unwrap();
        let host = Host::connect(broker.port()).await;
        let (env, raw) = (Sensor::start().await, Sensor::start().await);
        let dir = super::TempDir::new(tag);
        let state = dir.0.join("state");
        let cfg = config(
            broker.port(),
            &state,
            env.addr,
            raw.addr,
            sparkplug,
            env_extra,
        );
        let gateway = super::Gateway::start_in(dir, &cfg).await;
        Self {
            broker,
            host,
            env,
            raw,
            gateway,
        }
    }
}

/// A config for gateway `gw` under group `plant` (`sparkplug` holds extra
/// `[sparkplug]` keys): sensor `env` (json, declared fields; `env_extra`
/// adds keys) and `raw` (lines, no fields).
pub fn config(
    port: u16,
    state_dir: &std::path::Path,
    env: SocketAddr,
    raw: SocketAddr,
    sparkplug: &str,
    env_extra: &str,
) -> String {
    super::header("gw", port, state_dir)
        + &format!("\n[sparkplug]\ngroup_id = \"plant\"\n{sparkplug}\n")
        + &format!("\n[[sensor]]\nid = \"env\"\ntransport = \"tcp\"\naddress = \"{env}\"\ncodec = \"json\"\nread_timeout = \"1h\"\n{env_extra}\n")
        + "\n[[sensor.field]]\nname = \"temp\"\njson_path = \"$.temp\"\nunit = \"C\"\n"
        + "\n[[sensor.field]]\nname = \"ok\"\njson_path = \"$.ok\"\n"
        + "\n[[sensor.field]]\nname = \"tag\"\njson_path = \"$.tag\"\n"
        + "\n[[sensor.field]]\nname = \"missing\"\njson_path = \"$.nowhere\"\n"
        + &format!("\n[[sensor]]\nid = \"raw\"\ntransport = \"tcp\"\naddress = \"{raw}\"\ncodec = \"lines\"\nread_timeout = \"1h\"\n")
}

/// A line for `env`.
pub fn reading(tag: &str, temp: f64) -> String {
    format!(r#"{{"temp":{temp},"ok":true,"tag":"{tag}"}}"#)
}

/// The DDATA of `env` whose `tag` is `tag`.
pub fn env_data<'a>(msgs: &'a [SpMsg], tag: &str) -> Option<&'a SpMsg> {
    msgs.iter()
        .find(|m| m.kind == "DDATA" && m.device.as_deref() == Some("env") && m.text("tag") == tag)
}

/// The NBIRTHs so far.
pub fn nbirths(msgs: &[SpMsg]) -> Vec<&SpMsg> {
    msgs.iter().filter(|m| m.kind == "NBIRTH").collect()
}

/// True when every metric of `m` is flagged historical.
pub fn historical(m: &SpMsg) -> bool {
    m.payload
        .metrics
        .iter()
        .all(|metric| metric.is_historical == Some(true))
}
