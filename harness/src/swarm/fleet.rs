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

use crate::sim::modbus::{
    Animation, Fault as ModbusFault, FaultMode, ModbusSim, Table as ModbusTable, TcpSim,
};
use crate::sim::mqtt::MqttSensor;
use crate::sim::serial::PtySensor;
use crate::sim::tcp::{TcpSensorClient, TcpSensorServer};
use crate::sim::{SimConfig, SimHandle};
use edgevisor_devices::codec::CodecKind;

use super::config::{table, Table};

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
    /// Units on one Modbus TCP bus (0: no bus).
    pub modbus: usize,
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
            modbus: 0,
        }
    }

    /// All sensors.
    pub fn total(&self) -> usize {
        self.tcp + self.listen + self.serial + self.mqtt + self.modbus
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

/// The swarm's simulators plus the `[[sensor]]` tables for them.
pub struct Fleet {
    /// Every simulator.
    pub sims: Vec<Sim>,
    /// The gateway's `[[sensor]]` tables, one per gateway sensor.
    pub sensors: Vec<Table>,
    /// Id of the flapping sensor, if any.
    pub flap: Option<String>,
    /// The Modbus bus, if the mix has one.
    pub modbus: Option<ModbusBus>,
}

impl Fleet {
    /// Readings the simulators have sent: written by the stream and MQTT
    /// simulators, answered by the Modbus units.
    pub fn sent(&self) -> u64 {
        self.sims.iter().map(|s| s.handle().written()).sum::<u64>()
            + self.modbus.as_ref().map_or(0, ModbusBus::replies)
    }
}

/// Modbus unit `u` numbers its readings from `(MODBUS_BASE + u) * SPAN`:
/// far above any other simulator's numbers.
pub const MODBUS_BASE: u64 = 1_000_000;

/// A simulated Modbus TCP server with one unit per gateway unit child. Each
/// unit's input registers 0-1 count the replies that read them, so every
/// poll reads a new number.
pub struct ModbusBus {
    /// Its units, values, faults and counts.
    pub sim: ModbusSim,
    /// Unit ids, from 1.
    pub units: Vec<u8>,
    _server: TcpSim,
}

impl ModbusBus {
    /// Every unit stops answering (the run's silent phase).
    pub fn silence(&self) {
        for unit in &self.units {
            // Only fails for an unknown unit.
            let _ = self
                .sim
                .set_fault(*unit, Some((ModbusFault::Silent, FaultMode::Always)));
        }
    }

    /// Gives every unit a voltage in input registers 2-3 (float32) that
    /// moves with each `ModbusSim::tick`.
    pub fn animate(&self) {
        for unit in &self.units {
            let volts = Animation::Sawtooth {
                min: 228.0,
                max: 232.0,
                step: 0.4,
            };
            // Only fails for an unknown unit or register.
            let _ = self.sim.animate(*unit, ModbusTable::Input, 2, volts);
        }
    }

    /// `unit` answers one request in `one_in` with exception 6 (slave
    /// device busy), which a poll does not retry: a crash report each time.
    pub fn flaky(&self, unit: u8, one_in: u32) {
        let busy = ModbusFault::Exception(6);
        let _ = self
            .sim
            .set_fault(unit, Some((busy, FaultMode::OneIn(one_in))));
    }

    /// Polls answered so far.
    pub fn replies(&self) -> u64 {
        self.units.iter().map(|u| self.sim.counts(*u).replies).sum()
    }
}

/// Longer than the swarm's final drain, during which the sensors are
/// silent; the silence fault lasts longer still.
const READ_TIMEOUT: &str = "10s";

/// A fleet being started: each step adds simulators and the sensor tables
/// that read them, numbering simulators from 1.
struct Builder {
    fleet: Fleet,
    rate: f64,
    index: u64,
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
    let mut b = Builder {
        fleet: Fleet {
            sims: Vec::new(),
            sensors: Vec::new(),
            flap: None,
            modbus: None,
        },
        rate,
        index: 1,
    };
    for i in 0..mix.tcp {
        b.tcp(i).await?;
    }
    if flap {
        b.flap().await?;
    }
    b.listen(mix.listen, listen);
    for i in 0..mix.serial {
        b.serial(i, dir).await?;
    }
    b.mqtt(mix.mqtt, broker_port)?;
    if mix.modbus > 0 {
        b.modbus(mix.modbus, rate).await?;
    }
    Ok(b.fleet)
}

impl Builder {
    /// A Modbus TCP bus `modbus` of `units` units, each polled `rate` times
    /// a second (at most 253 units: Modbus TCP unit ids 1 to 253 here).
    async fn modbus(&mut self, units: usize, rate: f64) -> std::io::Result<()> {
        let ids: Vec<u8> = (1..=units.min(253))
            .filter_map(|u| u8::try_from(u).ok())
            .collect();
        let invalid = |e: crate::sim::modbus::ModbusSimError| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string())
        };
        let mut sim = ModbusSim::new(&ids);
        for unit in &ids {
            sim = sim
                .with_counter(*unit, ModbusTable::Input, 0)
                .map_err(invalid)?;
        }
        let server = sim.serve_tcp().await?;
        let poll = format!("{}ms", (1000.0 / rate.max(0.01)).round() as u64);
        let register = |name: &str, address: i64, kind: &str| {
            toml::Value::from(table([
                ("name", name.into()),
                ("table", "input".into()),
                ("address", address.into()),
                ("type", kind.into()),
            ]))
        };
        let registers = toml::Value::Array(vec![
            register("n", 0, "uint32"),
            register("volts", 2, "float32"),
        ]);
        let unit_tables = ids
            .iter()
            .map(|u| {
                table([
                    ("id", format!("unit-{u:03}").into()),
                    ("unit_id", i64::from(*u).into()),
                    ("poll", poll.as_str().into()),
                    ("registers", registers.clone()),
                ])
                .into()
            })
            .collect();
        self.fleet.sensors.push(table([
            ("id", "modbus".into()),
            ("transport", "modbus-tcp".into()),
            ("codec", "modbus".into()),
            ("address", server.addr().to_string().into()),
            ("timeout", "500ms".into()),
            ("unit", toml::Value::Array(unit_tables)),
        ]));
        self.fleet.modbus = Some(ModbusBus {
            sim,
            units: ids,
            _server: server,
        });
        Ok(())
    }

    /// The next simulator's config: its codec, the rate, its numbering.
    fn next(&self, codec: CodecKind, rate: f64) -> SimConfig {
        let mut c = SimConfig::new(codec, rate);
        c.first_seq = self.base();
        c
    }

    fn base(&self) -> u64 {
        self.index * SPAN
    }

    fn push(&mut self, sensor: &str, kind: Kind, codec: CodecKind, device: Device) {
        self.fleet.sims.push(Sim {
            sensor: sensor.to_string(),
            kind,
            codec,
            base: self.base(),
            device,
        });
        self.index += 1;
    }

    /// TCP sensor `i`: a simulator the gateway connects to.
    async fn tcp(&mut self, i: usize) -> std::io::Result<()> {
        let (id, codec) = (format!("tcp-{i:04}"), codec(i));
        let server = TcpSensorServer::start(self.next(codec, self.rate)).await?;
        self.fleet.sensors.push(table([
            ("id", id.as_str().into()),
            ("transport", "tcp".into()),
            ("address", server.addr().to_string().into()),
            ("codec", codec.as_str().into()),
            ("read_timeout", READ_TIMEOUT.into()),
            ("connect_timeout", "2s".into()),
        ]));
        self.push(&id, Kind::Tcp, codec, Device::Tcp(server));
        Ok(())
    }

    /// The sensor made to flap until quarantined: low intensity, a long
    /// quarantine.
    async fn flap(&mut self) -> std::io::Result<()> {
        let server =
            TcpSensorServer::start(self.next(CodecKind::Lines, self.rate.max(5.0))).await?;
        self.fleet.sensors.push(table([
            ("id", "flap".into()),
            ("transport", "tcp".into()),
            ("address", server.addr().to_string().into()),
            ("codec", "lines".into()),
            ("read_timeout", READ_TIMEOUT.into()),
            ("intensity", 3.into()),
            ("period", "60s".into()),
            ("quarantine_for", "1h".into()),
        ]));
        self.push("flap", Kind::Tcp, CodecKind::Lines, Device::Tcp(server));
        self.fleet.flap = Some("flap".to_string());
        Ok(())
    }

    /// `count` simulators connecting to one `tcp-listen` sensor.
    fn listen(&mut self, count: usize, listen: SocketAddr) {
        if count == 0 {
            return;
        }
        self.fleet.sensors.push(table([
            ("id", "nodes".into()),
            ("transport", "tcp-listen".into()),
            ("listen", listen.to_string().into()),
            ("codec", "frame".into()),
            (
                "max_connections",
                i64::try_from(count + 64).unwrap_or(i64::MAX).into(),
            ),
            ("read_timeout", READ_TIMEOUT.into()),
        ]));
        for _ in 0..count {
            let client = TcpSensorClient::start(
                self.next(CodecKind::Frame, self.rate),
                listen,
                Duration::from_millis(200),
            );
            self.push(
                "nodes",
                Kind::Listen,
                CodecKind::Frame,
                Device::Listen(client),
            );
        }
    }

    /// Serial sensor `i`: a pty pair behind a stable symlink in `dir`.
    async fn serial(&mut self, i: usize, dir: &Path) -> std::io::Result<()> {
        let (id, codec) = (format!("serial-{i:04}"), codec(i + 1));
        let link = dir.join(&id);
        let pty = PtySensor::start(self.next(codec, self.rate), Some(link.clone())).await?;
        self.fleet.sensors.push(table([
            ("id", id.as_str().into()),
            ("transport", "serial".into()),
            ("device", link.display().to_string().into()),
            ("baud", 115_200.into()),
            ("codec", codec.as_str().into()),
            ("read_timeout", READ_TIMEOUT.into()),
        ]));
        self.push(&id, Kind::Serial, codec, Device::Serial(pty));
        Ok(())
    }

    /// `count` simulators publishing on the broker, read by one `mqtt`
    /// sensor that skips corrupt input.
    fn mqtt(&mut self, count: usize, broker_port: u16) -> std::io::Result<()> {
        if count == 0 {
            return Ok(());
        }
        let url = format!("mqtt://127.0.0.1:{broker_port}");
        let topics = toml::Value::Array(vec!["swarm-sensors/+".into()]);
        self.fleet.sensors.push(table([
            ("id", "mqtt".into()),
            ("transport", "mqtt".into()),
            ("url", url.as_str().into()),
            ("topics", topics),
            ("codec", "json".into()),
            ("on_corrupt", "skip".into()),
            ("read_timeout", "1h".into()),
        ]));
        for i in 0..count {
            let sensor = MqttSensor::start(
                self.next(CodecKind::Json, self.rate),
                &url,
                &format!("swarm-sensors/{i}"),
                &format!("swarm-sim-{i}-{}", std::process::id()),
            )
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string()))?;
            self.push("mqtt", Kind::Mqtt, CodecKind::Json, Device::Mqtt(sensor));
        }
        Ok(())
    }
}
