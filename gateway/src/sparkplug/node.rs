//! The edge node's state machine, without I/O (the session feeds it and
//! sends what it returns): births after every connection and on request,
//! `seq` 0..=255 restarting at each NBIRTH, a DBIRTH before a device's
//! first DDATA, DDEATH when a sensor stops, and readings kept in a bounded
//! queue while nothing may be published, replayed as historical at the
//! next birth.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use super::device::Device;
use super::payload::{self, Reading};
use super::proto::Payload;
use crate::config::{Config, FieldConfig};

/// Readings kept while the node may not publish (session down, or the
/// primary host offline); past this the oldest are dropped and counted.
pub const QUEUE: usize = 10_000;

/// The name of the node's rebirth control metric.
pub const REBIRTH: &str = "Node Control/Rebirth";

/// A message to publish (QoS 0, not retained).
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    /// Its topic.
    pub topic: String,
    /// Its payload.
    pub payload: Payload,
}

/// Topic names of one edge node (`spBv1.0/<group>/<TYPE>/<node>[/<device>]`).
#[derive(Debug, Clone)]
pub struct NodeTopics {
    group: String,
    node: String,
}

impl NodeTopics {
    /// The topics of node `node` in group `group`.
    pub fn new(group: &str, node: &str) -> Self {
        Self {
            group: group.to_string(),
            node: node.to_string(),
        }
    }

    /// A node-level topic: `NBIRTH`, `NDEATH`, `NCMD`.
    pub fn node(&self, kind: &str) -> String {
        format!("spBv1.0/{}/{kind}/{}", self.group, self.node)
    }

    /// A device-level topic: `DBIRTH`, `DDATA`, `DDEATH`, `DCMD`.
    pub fn device(&self, kind: &str, device: &str) -> String {
        format!("spBv1.0/{}/{kind}/{}/{device}", self.group, self.node)
    }
}

/// Each sensor's declared fields, by sensor id; a Modbus unit
/// (`<bus>/<unit>`) takes its bus's.
#[derive(Debug, Clone, Default)]
pub struct Fields(HashMap<String, Arc<[FieldConfig]>>);

impl Fields {
    /// The fields every sensor of `config` declares.
    pub fn of(config: &Config) -> Self {
        Self(
            config
                .sensors()
                .map(|s| (s.id.clone(), Arc::from(s.fields.as_slice())))
                .collect(),
        )
    }

    /// The fields of `sensor` (none if unknown).
    pub fn get(&self, sensor: &str) -> &[FieldConfig] {
        let bus = sensor.split('/').next().unwrap_or(sensor);
        self.0
            .get(sensor)
            .or_else(|| self.0.get(bus))
            .map_or(&[], |f| f)
    }
}

/// The edge node.
pub struct Node {
    topics: NodeTopics,
    boot: u64,
    fields: Fields,
    bd_seq: u8,
    seq: u8,
    /// NBIRTH went out on this session and publishing is allowed.
    online: bool,
    devices: BTreeMap<String, Device>,
    queue: VecDeque<Reading>,
    /// Readings dropped from the full queue since the last birth.
    dropped: u64,
}

impl Node {
    /// A node with no session yet.
    pub fn new(topics: NodeTopics, boot: u64, fields: Fields) -> Self {
        Self {
            topics,
            boot,
            fields,
            bd_seq: 0,
            seq: 0,
            online: false,
            devices: BTreeMap::new(),
            queue: VecDeque::new(),
            dropped: 0,
        }
    }

    /// The topics.
    pub fn topics(&self) -> &NodeTopics {
        &self.topics
    }

    /// True once NBIRTH went out on this session.
    pub fn is_online(&self) -> bool {
        self.online
    }

    /// Takes the declared fields of a reloaded config.
    pub fn set_fields(&mut self, fields: Fields) {
        self.fields = fields;
    }

    /// Readings waiting for the next birth.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// A new session is being opened with `bd_seq` in its Will: nothing is
    /// published until [`birth`](Self::birth).
    pub fn connecting(&mut self, bd_seq: u8) {
        self.bd_seq = bd_seq;
        self.offline();
    }

    /// Publishing stopped (connection lost, or the primary host went
    /// offline): every birth is void.
    pub fn offline(&mut self) {
        self.online = false;
        for device in self.devices.values_mut() {
            device.born = false;
        }
    }

    /// The NDEATH of this session (the Will, or sent before a clean
    /// disconnect): only `bdSeq`, no `seq`.
    pub fn death(&self, now_ms: u64) -> Outgoing {
        Outgoing {
            topic: self.topics.node("NDEATH"),
            payload: Payload {
                timestamp: Some(now_ms),
                metrics: vec![payload::int64("bdSeq", i64::from(self.bd_seq), now_ms)],
                ..Payload::default()
            },
        }
    }

    /// NBIRTH (seq 0), a DBIRTH for every running device with known
    /// values, then the queued readings as historical DDATA. After each
    /// connection (once the primary host is online) and on a rebirth
    /// request.
    pub fn birth(&mut self, now_ms: u64) -> Vec<Outgoing> {
        self.offline();
        self.online = true;
        self.seq = 0;
        let mut out = vec![Outgoing {
            topic: self.topics.node("NBIRTH"),
            payload: Payload {
                timestamp: Some(now_ms),
                metrics: vec![
                    payload::int64("bdSeq", i64::from(self.bd_seq), now_ms),
                    payload::boolean(REBIRTH, false, now_ms),
                    payload::int64("edgevisor/boot", self.boot as i64, now_ms),
                    payload::string("edgevisor/version", env!("CARGO_PKG_VERSION"), now_ms),
                ],
                seq: Some(0),
                ..Payload::default()
            },
        }];
        let ids: Vec<String> = self.devices.keys().cloned().collect();
        for id in ids {
            if self.devices[&id].alive {
                self.device_birth(&id, now_ms, &mut out);
            }
        }
        if self.dropped > 0 {
            tracing::warn!(
                dropped = self.dropped,
                "Sparkplug: readings dropped while the node could not publish (queue full)"
            );
            self.dropped = 0;
        }
        let queued: Vec<Reading> = self.queue.drain(..).collect();
        out.extend(self.readings(queued, now_ms));
        out
    }

    /// Readings acknowledged upstream: DDATA now (after a DBIRTH where
    /// needed), or queued as historical while the node may not publish.
    /// A reading of a stopped sensor (it arrives late) goes out between a
    /// DBIRTH and a DDEATH, so the host gets it and the device stays dead.
    pub fn readings(&mut self, readings: Vec<Reading>, now_ms: u64) -> Vec<Outgoing> {
        if !self.online {
            for mut reading in readings {
                reading.historical = true;
                if self.queue.len() >= QUEUE {
                    self.queue.pop_front();
                    self.dropped += 1;
                }
                self.queue.push_back(reading);
            }
            return Vec::new();
        }
        let mut out = Vec::new();
        let mut dead = Vec::new();
        for reading in readings {
            let id = payload::device_id(&reading.sensor);
            let values = payload::values(self.fields.get(&reading.sensor), &reading.data);
            let device = self.devices.entry(id.clone()).or_default();
            if device.take(&values, reading.ts_ms) {
                self.device_birth(&id, now_ms, &mut out);
            }
            let device = &self.devices[&id];
            let data = device.data(&values, reading.ts_ms, reading.historical, now_ms);
            if !device.alive && !dead.contains(&id) {
                dead.push(id.clone());
            }
            out.push(self.numbered(self.topics.device("DDATA", &id), data));
        }
        for id in dead {
            self.device_death(&id, now_ms, &mut out);
        }
        out
    }

    /// The sensor started (`alive`) or was quarantined or stopped: DBIRTH
    /// with its last values, or DDEATH.
    pub fn sensor(&mut self, sensor: &str, alive: bool, now_ms: u64) -> Vec<Outgoing> {
        let id = payload::device_id(sensor);
        let mut out = Vec::new();
        let device = self.devices.entry(id.clone()).or_default();
        device.alive = alive;
        if !self.online {
            return out;
        }
        if alive && !device.born && device.can_be_born() {
            self.device_birth(&id, now_ms, &mut out);
        } else if !alive {
            self.device_death(&id, now_ms, &mut out);
        }
        out
    }

    fn device_birth(&mut self, id: &str, now_ms: u64, out: &mut Vec<Outgoing>) {
        let Some(device) = self.devices.get_mut(id) else {
            return;
        };
        let Some(payload) = device.birth(now_ms) else {
            return;
        };
        device.born = true;
        out.push(self.numbered(self.topics.device("DBIRTH", id), payload));
    }

    fn device_death(&mut self, id: &str, now_ms: u64, out: &mut Vec<Outgoing>) {
        let Some(device) = self.devices.get_mut(id).filter(|d| d.born) else {
            return;
        };
        device.born = false;
        let payload = Payload {
            timestamp: Some(now_ms),
            ..Payload::default()
        };
        out.push(self.numbered(self.topics.device("DDEATH", id), payload));
    }

    /// The payload with the next `seq` (1..=255, then 0 again: NBIRTH
    /// took 0).
    fn numbered(&mut self, topic: String, mut payload: Payload) -> Outgoing {
        self.seq = self.seq.wrapping_add(1);
        payload.seq = Some(u64::from(self.seq));
        Outgoing { topic, payload }
    }
}

#[cfg(test)]
mod tests;
