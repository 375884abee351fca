//! The fleet as the broker tells it: messages in, one view per gateway out.
//! No I/O and no clock of its own (the arrival time comes in with each
//! message), in the shape of `runtime/src/decision.rs`, so every rule
//! below is a unit test.

use std::collections::{BTreeMap, VecDeque};

use crate::message::{CrashReport, DeadLetter, SensorState, Status};
use crate::topic::{self, Topic};
use crate::window::CrashWindow;
use crate::FleetError;

/// Crash reports kept per gateway for "latest crashes".
pub const LATEST: usize = 10;

/// What the broker said about one gateway.
#[derive(Debug, Clone, Default)]
pub struct Gateway {
    /// The last `status`; `None` until one arrives (a gateway seen only
    /// through its other topics).
    pub status: Option<Status>,
    /// Each sensor's retained state, by sensor name.
    pub sensors: BTreeMap<String, SensorState>,
    /// Crashes of the last hour.
    pub crashes: CrashWindow,
    /// Dead letters of the last hour (reason `deadletter`).
    pub dead_letters: CrashWindow,
    /// The latest crash reports, newest last.
    pub latest: VecDeque<CrashReport>,
    /// The retained supervision tree, as published.
    pub tree: Option<serde_json::Value>,
    /// When anything last arrived about it (ms since the epoch).
    pub last_seen_ms: u64,
}

impl Gateway {
    /// Sensors whose retained state is `quarantined`, by name.
    pub fn quarantined(&self) -> impl Iterator<Item = (&str, &SensorState)> {
        self.sensors
            .iter()
            .filter(|(_, s)| s.state == "quarantined")
            .map(|(name, s)| (name.as_str(), s))
    }
}

/// Every gateway under one prefix.
#[derive(Debug, Clone)]
pub struct Fleet {
    prefix: String,
    gateways: BTreeMap<String, Gateway>,
    dead_letter_serial: u64,
}

impl Fleet {
    /// An empty fleet reading topics under `prefix`.
    pub fn new(prefix: &str) -> Self {
        Self {
            prefix: topic::normalise(prefix).to_string(),
            gateways: BTreeMap::new(),
            dead_letter_serial: 0,
        }
    }

    /// The prefix, normalised.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The gateways, by id.
    pub fn gateways(&self) -> &BTreeMap<String, Gateway> {
        &self.gateways
    }

    /// Takes in one message that arrived at `now_ms`. Topics the view
    /// does not read are ignored (`Ok(false)`); an unreadable payload is an
    /// error the caller logs, and changes nothing.
    pub fn apply(&mut self, topic: &str, payload: &[u8], now_ms: u64) -> Result<bool, FleetError> {
        let Some(parsed) = topic::parse(&self.prefix, topic) else {
            return Ok(false);
        };
        let gateway_id = parsed.gateway;
        // An empty retained payload clears the topic (a retained message
        // deleted by an operator): forget what it held.
        if payload.is_empty() {
            if let Some(gateway) = self.gateways.get_mut(gateway_id) {
                match parsed.topic {
                    Topic::Status => gateway.status = None,
                    Topic::State(sensor) => {
                        gateway.sensors.remove(sensor);
                    }
                    Topic::Tree => gateway.tree = None,
                    Topic::Crash(_) | Topic::DeadLetter(_) => {}
                }
            }
            return Ok(true);
        }
        let serial = self.dead_letter_serial;
        let gateway = self.gateways.entry(gateway_id.to_string()).or_default();
        match parsed.topic {
            Topic::Status => gateway.status = Some(Status::parse(payload)?),
            Topic::State(sensor) => {
                let state = SensorState::parse(payload)?;
                gateway.sensors.insert(sensor.to_string(), state);
            }
            Topic::Tree => gateway.tree = Some(serde_json::from_slice(payload)?),
            Topic::Crash(sensor) => {
                let report = CrashReport::parse(gateway_id, sensor, payload)?;
                crash(gateway, report, now_ms);
            }
            Topic::DeadLetter(sensor) => {
                let letter = DeadLetter::parse(payload)?;
                let at = at(&letter.ts, now_ms);
                // Dead letters of one read share a `ts`: no key tells a
                // redelivery from a sibling, so each one counts.
                gateway
                    .dead_letters
                    .record(at, sensor, "deadletter", serial.to_string());
                self.dead_letter_serial += 1;
            }
        }
        gateway.last_seen_ms = now_ms;
        // No pruning here: a burst of replayed reports would make each
        // message walk the whole window. Counts read the hour anyway, the
        // window is bounded, and the faces prune once per snapshot.
        Ok(true)
    }

    /// Forgets crashes that left the hour ending at `now_ms`; called once
    /// per snapshot.
    pub fn prune(&mut self, now_ms: u64) {
        for gateway in self.gateways.values_mut() {
            gateway.crashes.prune(now_ms);
            gateway.dead_letters.prune(now_ms);
        }
    }
}

fn crash(gateway: &mut Gateway, report: CrashReport, now_ms: u64) {
    let at = at(&report.ts, now_ms);
    if !gateway
        .crashes
        .record(at, &report.sensor, &report.reason, report.key())
    {
        return; // a redelivery
    }
    // Newest by `ts` last: a replayed report slots in where it happened.
    let place = gateway
        .latest
        .iter()
        .rposition(|r| r.ts <= report.ts)
        .map_or(0, |i| i + 1);
    gateway.latest.insert(place, report);
    while gateway.latest.len() > LATEST {
        gateway.latest.pop_front();
    }
}

/// When an event happened: its own `ts`, or the arrival time when that is
/// unreadable or ahead of this machine's clock.
fn at(ts: &str, now_ms: u64) -> u64 {
    crate::message::millis(ts).map_or(now_ms, |t| t.min(now_ms))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{millis, rfc3339};

    const NOW: u64 = 1_800_000_000_000;

    fn crash_json(sensor: &str, reason: &str, at: u64, restarts: u64) -> Vec<u8> {
        serde_json::json!({
            "gateway": "gw1", "boot": 3, "ts": rfc3339(at), "path": format!("root/{sensor}"),
            "sensor": sensor, "reason": reason, "error": "boom", "evidence_hex": "2447",
            "evidence_truncated": false, "restarts_in_window": restarts, "intensity": 5,
            "period_ms": 60000, "action": "restart", "backoff_ms": 100
        })
        .to_string()
        .into_bytes()
    }

    #[test]
    fn status_state_and_tree_build_a_gateways_view() {
        let mut fleet = Fleet::new("edgevisor");
        let status = format!(
            r#"{{"state":"online","boot":3,"version":"0.1.0","started_at":"{}"}}"#,
            rfc3339(NOW - 65_000)
        );
        assert!(fleet
            .apply("edgevisor/gw1/status", status.as_bytes(), NOW)
            .unwrap());
        let quarantined = format!(
            r#"{{"state":"quarantined","restarts":2,"since":"{}"}}"#,
            rfc3339(NOW)
        );
        fleet
            .apply("edgevisor/gw1/state/dead", quarantined.as_bytes(), NOW)
            .unwrap();
        fleet
            .apply(
                "edgevisor/gw1/state/ok",
                br#"{"state":"running","restarts":0,"since":"2026-11-24T10:00:00.123Z"}"#,
                NOW,
            )
            .unwrap();
        fleet
            .apply(
                "edgevisor/gw1/tree",
                br#"{"path":"root","strategy":"one_for_one","children":[]}"#,
                NOW,
            )
            .unwrap();
        let gw = &fleet.gateways()["gw1"];
        assert_eq!(gw.status.as_ref().map(Status::word), Some("online"));
        assert_eq!(
            gw.quarantined().map(|(n, _)| n).collect::<Vec<_>>(),
            ["dead"]
        );
        assert_eq!(gw.tree.as_ref().unwrap()["strategy"], "one_for_one");
        assert_eq!(gw.last_seen_ms, NOW);
    }

    #[test]
    fn the_will_and_a_clean_stop_replace_online() {
        let mut fleet = Fleet::new("edgevisor");
        fleet
            .apply("edgevisor/gw1/status", br#"{"state":"online","boot":1,"version":"0.1.0","started_at":"2026-11-24T10:00:00.123Z"}"#, NOW)
            .unwrap();
        fleet
            .apply(
                "edgevisor/gw1/status",
                br#"{"state":"offline","boot":1}"#,
                NOW,
            )
            .unwrap();
        assert_eq!(
            fleet.gateways()["gw1"].status,
            Some(Status::Offline { boot: Some(1) })
        );
        fleet
            .apply("edgevisor/gw1/status", br#""stopped""#, NOW)
            .unwrap();
        assert_eq!(
            fleet.gateways()["gw1"].status.as_ref().map(Status::word),
            Some("stopped")
        );
    }

    #[test]
    fn crashes_count_once_per_report_and_the_latest_are_kept_in_time_order() {
        let mut fleet = Fleet::new("edgevisor");
        for i in 0..12u64 {
            let payload = crash_json("gps", "corrupt_frame", NOW - 1_000 * (12 - i), i + 1);
            fleet
                .apply("edgevisor/gw1/crash/gps", &payload, NOW)
                .unwrap();
        }
        // A redelivery of the last one, and one replayed from an outage.
        let again = crash_json("gps", "corrupt_frame", NOW - 1_000, 12);
        fleet.apply("edgevisor/gw1/crash/gps", &again, NOW).unwrap();
        let old = crash_json("weather", "timeout", NOW - 30 * 60_000, 1);
        fleet
            .apply("edgevisor/gw1/crash/weather", &old, NOW)
            .unwrap();
        let gw = &fleet.gateways()["gw1"];
        assert_eq!(gw.crashes.total(NOW), 13);
        assert_eq!(gw.crashes.by_sensor(NOW)[0], ("gps".to_string(), 12));
        assert_eq!(gw.latest.len(), LATEST);
        let times: Vec<u64> = gw.latest.iter().map(|r| millis(&r.ts).unwrap()).collect();
        assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
        assert_eq!(gw.latest.back().unwrap().restarts_in_window, 12);
    }

    #[test]
    fn a_gateway_clock_running_ahead_counts_at_arrival() {
        let mut fleet = Fleet::new("edgevisor");
        let ahead = crash_json("gps", "io", NOW + 2 * 3_600_000, 1);
        fleet.apply("edgevisor/gw1/crash/gps", &ahead, NOW).unwrap();
        assert_eq!(fleet.gateways()["gw1"].crashes.per_minute(NOW)[59], 1);
    }

    #[test]
    fn dead_letters_count_each_and_telemetry_is_ignored() {
        let mut fleet = Fleet::new("edgevisor");
        let letter = format!(
            r#"{{"sensor":"gps","boot":1,"ts":"{}","error":"x","evidence_hex":""}}"#,
            rfc3339(NOW - 1_000)
        );
        fleet
            .apply("edgevisor/gw1/deadletter/gps", letter.as_bytes(), NOW)
            .unwrap();
        fleet
            .apply("edgevisor/gw1/deadletter/gps", letter.as_bytes(), NOW)
            .unwrap();
        assert_eq!(fleet.gateways()["gw1"].dead_letters.total(NOW), 2);
        assert!(!fleet
            .apply("edgevisor/gw1/telemetry/gps", b"{}", NOW)
            .unwrap());
    }

    #[test]
    fn a_bad_payload_is_an_error_and_an_empty_one_clears_the_retained_value() {
        let mut fleet = Fleet::new("edgevisor");
        assert!(fleet.apply("edgevisor/gw1/state/a", b"{", NOW).is_err());
        fleet
            .apply(
                "edgevisor/gw1/state/a",
                br#"{"state":"running","restarts":0,"since":""}"#,
                NOW,
            )
            .unwrap();
        fleet.apply("edgevisor/gw1/state/a", b"", NOW).unwrap();
        assert!(fleet.gateways()["gw1"].sensors.is_empty());
    }
}
