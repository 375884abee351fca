//! The swarm's books: everything that arrived upstream, counted so that a
//! loss cannot hide. Telemetry is keyed by `(sensor, boot, seq)` (SPEC's
//! dedup key) and by the simulator's own reading number; `accepted` comes
//! from the gateway's retained `status` (highest seq per sensor handed to its
//! outbox); lost = accepted but never delivered.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::SystemTime;

use serde_json::Value;

use super::fleet::SPAN;

/// What arrived upstream, so far.
#[derive(Default)]
pub struct Account {
    delivered: HashMap<(String, u64), HashSet<u64>>,
    /// Telemetry messages seen more than once.
    pub duplicates: u64,
    /// Reading numbers delivered per simulator (`number / SPAN`).
    pub sim_delivered: HashMap<u64, HashSet<u64>>,
    accepted: HashMap<(String, u64), u64>,
    /// Telemetry the gateway says it dropped at its outbox bound, per
    /// `(sensor, boot)` (the highest count seen: it only grows in a boot).
    dropped: HashMap<(String, u64), u64>,
    seen_reports: HashSet<u64>,
    /// Crash reports by reason.
    pub crashes_by_reason: BTreeMap<String, u64>,
    /// Crash reports by sensor and reason.
    pub crashes_by_sensor: HashMap<(String, String), u64>,
    /// Crash reports by action.
    pub actions: BTreeMap<String, u64>,
    /// Dead letters per sensor.
    pub dead_letters: BTreeMap<String, u64>,
    /// Latest retained state per sensor.
    pub states: BTreeMap<String, String>,
    /// Milliseconds from the gateway's `ts` to arrival here.
    pub latencies_ms: Vec<f64>,
    /// Telemetry messages received (with duplicates).
    pub received: u64,
    /// Reports on `crash/_outbox` saying a message was set aside, not sent.
    pub set_aside: u64,
}

/// The simulator's own number in a telemetry `data` object.
pub fn sim_number(codec: &str, data: &Value) -> Option<u64> {
    if codec == "modbus" {
        // The swarm's bus: register `n` counts the unit's replies.
        let (unit, n) = (data["unit"].as_u64()?, data["values"]["n"].as_u64()?);
        return Some((super::fleet::MODBUS_BASE + unit) * super::fleet::SPAN + n);
    }
    crate::sim::seq_in_data(codec.parse().ok()?, data)
}

impl Account {
    /// Books one upstream message (`kind` is the topic level after the
    /// gateway id: `telemetry/x`, `crash/x`, `status`, ...).
    pub fn book(&mut self, kind: &str, payload: &[u8], received: SystemTime) {
        let Ok(json) = serde_json::from_slice::<Value>(payload) else {
            return;
        };
        let (level, sensor) = kind.split_once('/').unwrap_or((kind, ""));
        // Reports are delivered at least once: count each one once.
        if matches!(level, "crash" | "deadletter") && !self.seen_reports.insert(hash(payload)) {
            return;
        }
        match level {
            "telemetry" => self.telemetry(sensor, &json, received),
            "crash" => {
                if sensor == "_outbox"
                    && json["error"]
                        .as_str()
                        .is_some_and(|e| e.contains("set aside"))
                {
                    self.set_aside += 1;
                }
                let reason = json["reason"].as_str().unwrap_or("?").to_string();
                *self.crashes_by_reason.entry(reason.clone()).or_default() += 1;
                *self
                    .crashes_by_sensor
                    .entry((sensor.to_string(), reason))
                    .or_default() += 1;
                *self
                    .actions
                    .entry(json["action"].as_str().unwrap_or("?").to_string())
                    .or_default() += 1;
            }
            "deadletter" => *self.dead_letters.entry(sensor.to_string()).or_default() += 1,
            "state" => {
                if let Some(state) = json["state"].as_str() {
                    self.states.insert(sensor.to_string(), state.to_string());
                }
            }
            "status" => {
                let boot = json["boot"].as_u64().unwrap_or(0);
                if let Some(accepted) = json["accepted"].as_object() {
                    for (sensor, n) in accepted {
                        let slot = self.accepted.entry((sensor.clone(), boot)).or_default();
                        *slot = (*slot).max(n.as_u64().unwrap_or(0));
                    }
                }
                if let Some(dropped) = json["dropped"].as_object() {
                    for (sensor, n) in dropped {
                        let slot = self.dropped.entry((sensor.clone(), boot)).or_default();
                        *slot = (*slot).max(n.as_u64().unwrap_or(0));
                    }
                }
            }
            _ => {}
        }
    }

    fn telemetry(&mut self, sensor: &str, json: &Value, received: SystemTime) {
        self.received += 1;
        let (Some(boot), Some(seq)) = (json["boot"].as_u64(), json["seq"].as_u64()) else {
            return;
        };
        if !self
            .delivered
            .entry((sensor.to_string(), boot))
            .or_default()
            .insert(seq)
        {
            self.duplicates += 1;
            return;
        }
        if let Some(n) = sim_number(json["codec"].as_str().unwrap_or(""), &json["data"]) {
            self.sim_delivered.entry(n / SPAN).or_default().insert(n);
        }
        if let Some(ts) = json["ts"]
            .as_str()
            .and_then(|t| humantime::parse_rfc3339(t).ok())
        {
            if let Ok(d) = received.duration_since(ts) {
                self.latencies_ms.push(d.as_secs_f64() * 1000.0);
            }
        }
    }

    /// Unique telemetry messages delivered.
    pub fn delivered(&self) -> u64 {
        self.delivered.values().map(|s| s.len() as u64).sum()
    }

    /// Readings the gateway accepted: as its status says, or more where a
    /// later reading of the same sensor and boot already arrived.
    pub fn accepted(&self) -> u64 {
        self.accepted_upto().values().sum()
    }

    /// Per `(sensor, boot)`, the highest `seq` known accepted.
    fn accepted_upto(&self) -> HashMap<&(String, u64), u64> {
        let mut upto: HashMap<&(String, u64), u64> =
            self.accepted.iter().map(|(key, n)| (key, *n)).collect();
        for (key, got) in &self.delivered {
            let highest = got.iter().copied().max().unwrap_or(0);
            let slot = upto.entry(key).or_default();
            *slot = (*slot).max(highest);
        }
        upto
    }

    /// Telemetry the gateway said it dropped at its outbox bound, all boots.
    pub fn dropped(&self) -> u64 {
        self.dropped.values().sum()
    }

    /// Per sensor, all boots: what the gateway said it dropped.
    pub fn dropped_by_sensor(&self) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        for ((sensor, _), n) in &self.dropped {
            *out.entry(sensor.clone()).or_default() += n;
        }
        out
    }

    /// The latest boot whose status reported accepted readings.
    pub fn latest_accepting_boot(&self) -> u64 {
        self.accepted
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|((_, boot), _)| *boot)
            .max()
            .unwrap_or(0)
    }

    /// Per sensor: (accepted, unique delivered), for diagnosis.
    pub fn per_sensor(&self) -> BTreeMap<String, (u64, u64)> {
        let mut out: BTreeMap<String, (u64, u64)> = BTreeMap::new();
        for ((sensor, _), n) in &self.accepted {
            out.entry(sensor.clone()).or_default().0 += n;
        }
        for ((sensor, _), got) in &self.delivered {
            out.entry(sensor.clone()).or_default().1 += got.len() as u64;
        }
        out
    }

    /// Accepted readings not (yet) delivered, per sensor. A reading is
    /// accepted when the status says so, or when a later reading of the
    /// same sensor and boot arrived (readings enter the outbox in `seq`
    /// order): a gateway killed before its next status still cannot hide a
    /// hole.
    pub fn lost(&self) -> BTreeMap<String, u64> {
        let mut lost = BTreeMap::new();
        for ((sensor, boot), accepted) in self.accepted_upto() {
            let got = self.delivered.get(&(sensor.clone(), *boot));
            let missing = (1..=accepted)
                .filter(|s| !got.is_some_and(|g| g.contains(s)))
                .count() as u64;
            if missing > 0 {
                *lost.entry(sensor.clone()).or_default() += missing;
            }
        }
        lost
    }
}

fn hash(bytes: &[u8]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn losses_and_duplicates_are_counted_by_sensor_boot_seq() {
        let mut a = Account::default();
        let now = SystemTime::now();
        let t = |seq: u64| {
            format!(
                r#"{{"gateway":"g","sensor":"s","boot":1,"seq":{seq},"ts":"2026-01-01T00:00:00.000Z","codec":"json","data":{{"seq":{}}}}}"#,
                SPAN + seq
            )
        };
        for seq in [1, 2, 2, 4] {
            a.book("telemetry/s", t(seq).as_bytes(), now);
        }
        a.book(
            "status",
            br#"{"state":"online","boot":1,"accepted":{"s":4}}"#,
            now,
        );
        assert_eq!(a.duplicates, 1);
        assert_eq!(a.delivered(), 3);
        assert_eq!(a.accepted(), 4);
        assert_eq!(a.lost().get("s"), Some(&1));
        assert_eq!(a.sim_delivered[&1].len(), 3);
    }

    #[test]
    fn a_hole_below_a_delivered_reading_is_lost_before_any_status() {
        let mut a = Account::default();
        let t = |seq: u64| {
            format!(r#"{{"sensor":"s","boot":2,"seq":{seq},"codec":"json","data":{{}}}}"#)
        };
        for seq in [1, 3] {
            a.book("telemetry/s", t(seq).as_bytes(), SystemTime::now());
        }
        assert_eq!(a.lost().get("s"), Some(&1), "seq 2 went missing");
    }

    #[test]
    fn simulator_numbers_come_out_of_every_codec() {
        assert_eq!(
            sim_number("lines", &serde_json::json!({"text": "seq=17 temp=1.0"})),
            Some(17)
        );
        assert_eq!(
            sim_number("nmea", &serde_json::json!({"fields": ["18", "x"]})),
            Some(18)
        );
        assert_eq!(
            sim_number("json", &serde_json::json!({"seq": 19})),
            Some(19)
        );
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD.encode(20u64.to_be_bytes());
        assert_eq!(
            sim_number("frame", &serde_json::json!({"payload_b64": b64})),
            Some(20)
        );
    }
}
