//! The simulated sensors of a swarm and the gateway config that reads them:
//! TCP sensors the gateway connects to (one `[[sensor]]` each), TCP sensors
//! that connect to one `tcp-listen` sensor, serial sensors on pty pairs (one
//! `[[sensor]]` each, by a stable symlink like `/dev/serial/by-id/`), and
//! MQTT sensors publishing to the broker under one `mqtt` sensor. Each
//! simulator numbers its readings from its own base (`index * SPAN`), so a
//! reading's number tells which simulator wrote it.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use edgevisor_devices::codec::CodecKind;
use edgevisor_devices::sim::mqtt::MqttSensor;
use edgevisor_devices::sim::serial::PtySensor;
use edgevisor_devices::sim::tcp::{TcpSensorClient, TcpSensorServer};
use edgevisor_devices::sim::{SimConfig, SimHandle};

/// Readings of one simulator are numbered `base .. base + SPAN`.
pub const SPAN: u64 = 1_000_000_000;

/// Sensor counts per transport.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Mix {
    /// Sensors the gateway connects to.
    pub tcp: usize,
    /// Sensors connecting to the gateway's `tcp-listen` sensor.
    pub listen: usize,
    /// Sensors on pty pairs.
    pub serial: usize,
    /// Sensors publishing on the broker.
    pub mqtt: usize,
}

impl Mix {
    /// `total` sensors split 40 % tcp, 30 % listen, 20 % serial, 10 % mqtt.
    pub fn split(total: usize) -> Self {
        let tcp = total * 4 / 10;
        let listen = total * 3 / 10;
        let serial = total * 2 / 10;
        Self {
            tcp,
            listen,
            serial,
            mqtt: total - tcp - listen - serial,
        }
    }

    /// All sensors.
    pub fn total(&self) -> usize {
        self.tcp + self.listen + self.serial + self.mqtt
    }
}

/// How a simulator reaches the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Kind {
    /// Gateway connects to it.
    Tcp,
    /// It connects to the gateway.
    Listen,
    /// Pty pair.
    Serial,
    /// Publishes on the broker.
    Mqtt,
}

/// One simulator and the gateway sensor that reads it.
pub struct Sim {
    /// Gateway sensor id (shared by all listen sims, and by all mqtt sims).
    pub sensor: String,
    /// Transport.
    pub kind: Kind,
    /// Codec it speaks.
    pub codec: CodecKind,
    /// First reading number.
    pub base: u64,
    /// The simulator itself.
    pub device: Device,
}

/// A running simulator of one transport.
pub enum Device {
    /// Gateway connects to it.
    Tcp(TcpSensorServer),
    /// It connects to the gateway.
    Listen(TcpSensorClient),
    /// A pty pair behind a symlink.
    Serial(PtySensor),
    /// Publishes on the broker.
    Mqtt(MqttSensor),
}

impl Sim {
    /// Its controls: fault injection and counters.
    pub fn handle(&self) -> &SimHandle {
        match &self.device {
            Device::Tcp(d) => &d.handle,
            Device::Listen(d) => &d.handle,
            Device::Serial(d) => &d.handle,
            Device::Mqtt(d) => &d.handle,
        }
    }
}

/// Codecs are dealt round-robin so every codec is exercised.
fn codec(i: usize) -> CodecKind {
    [
        CodecKind::Lines,
        CodecKind::Nmea,
        CodecKind::Frame,
        CodecKind::Json,
    ][i % 4]
}

fn config(codec: CodecKind, rate: f64, base: u64) -> SimConfig {
    let mut c = SimConfig::new(codec, rate);
    c.first_seq = base;
    c
}

/// The swarm's simulators plus the `[[sensor]]` tables for them.
pub struct Fleet {
    /// Every simulator.
    pub sims: Vec<Sim>,
    /// Gateway config tables.
    pub sensors_toml: String,
    /// Id of the flapping sensor, if any.
    pub flap: Option<String>,
}

/// Starts `mix` (plus a flapping sensor when `flap`) at `rate` readings/s.
pub async fn start(
    mix: Mix,
    rate: f64,
    flap: bool,
    broker_port: u16,
    dir: &Path,
    listen: SocketAddr,
) -> std::io::Result<Fleet> {
    let mut sims = Vec::new();
    let mut toml = String::new();
    let mut index = 1u64;
    // Longer than the swarm's final drain, during which the sensors are
    // silent; the silence fault lasts longer still.
    let read_timeout = "10s";
    for i in 0..mix.tcp {
        let (id, codec) = (format!("tcp-{i:04}"), codec(i));
        let server = TcpSensorServer::start(config(codec, rate, index * SPAN)).await?;
        toml += &format!(
            "\n[[sensor]]\nid = \"{id}\"\ntransport = \"tcp\"\naddress = \"{}\"\ncodec = \"{}\"\nread_timeout = \"{read_timeout}\"\nconnect_timeout = \"2s\"\n",
            server.addr(),
            codec.as_str()
        );
        sims.push(Sim {
            sensor: id,
            kind: Kind::Tcp,
            codec,
            base: index * SPAN,
            device: Device::Tcp(server),
        });
        index += 1;
    }
    let flap_id = if flap {
        let server =
            TcpSensorServer::start(config(CodecKind::Lines, rate.max(5.0), index * SPAN)).await?;
        toml += &format!(
            "\n[[sensor]]\nid = \"flap\"\ntransport = \"tcp\"\naddress = \"{}\"\ncodec = \"lines\"\nread_timeout = \"{read_timeout}\"\nintensity = 3\nperiod = \"60s\"\nquarantine_for = \"1h\"\n",
            server.addr()
        );
        sims.push(Sim {
            sensor: "flap".into(),
            kind: Kind::Tcp,
            codec: CodecKind::Lines,
            base: index * SPAN,
            device: Device::Tcp(server),
        });
        index += 1;
        Some("flap".to_string())
    } else {
        None
    };
    if mix.listen > 0 {
        toml += &format!(
            "\n[[sensor]]\nid = \"nodes\"\ntransport = \"tcp-listen\"\nlisten = \"{listen}\"\ncodec = \"frame\"\nmax_connections = {}\nread_timeout = \"{read_timeout}\"\n",
            mix.listen + 64
        );
        for _ in 0..mix.listen {
            let client = TcpSensorClient::start(
                config(CodecKind::Frame, rate, index * SPAN),
                listen,
                Duration::from_millis(200),
            );
            sims.push(Sim {
                sensor: "nodes".into(),
                kind: Kind::Listen,
                codec: CodecKind::Frame,
                base: index * SPAN,
                device: Device::Listen(client),
            });
            index += 1;
        }
    }
    for i in 0..mix.serial {
        let (id, codec) = (format!("serial-{i:04}"), codec(i + 1));
        let link = dir.join(format!("serial-{i:04}"));
        let pty = PtySensor::start(config(codec, rate, index * SPAN), Some(link.clone())).await?;
        toml += &format!(
            "\n[[sensor]]\nid = \"{id}\"\ntransport = \"serial\"\ndevice = \"{}\"\nbaud = 115200\ncodec = \"{}\"\nread_timeout = \"{read_timeout}\"\n",
            link.display(),
            codec.as_str()
        );
        sims.push(Sim {
            sensor: id,
            kind: Kind::Serial,
            codec,
            base: index * SPAN,
            device: Device::Serial(pty),
        });
        index += 1;
    }
    if mix.mqtt > 0 {
        toml += &format!(
            "\n[[sensor]]\nid = \"mqtt\"\ntransport = \"mqtt\"\nurl = \"mqtt://127.0.0.1:{broker_port}\"\ntopics = [\"swarm-sensors/+\"]\ncodec = \"json\"\non_corrupt = \"skip\"\nread_timeout = \"1h\"\n"
        );
        for i in 0..mix.mqtt {
            let url = format!("mqtt://127.0.0.1:{broker_port}");
            let sensor = MqttSensor::start(
                config(CodecKind::Json, rate, index * SPAN),
                &url,
                &format!("swarm-sensors/{i}"),
                &format!("swarm-sim-{i}-{}", std::process::id()),
            )
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string()))?;
            sims.push(Sim {
                sensor: "mqtt".into(),
                kind: Kind::Mqtt,
                codec: CodecKind::Json,
                base: index * SPAN,
                device: Device::Mqtt(sensor),
            });
            index += 1;
        }
    }
    Ok(Fleet {
        sims,
        sensors_toml: toml,
        flap: flap_id,
    })
}
