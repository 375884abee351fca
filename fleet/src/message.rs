//! The payloads of SPEC section 5 as the fleet view reads them: tolerant
//! readers (a field an older or newer gateway lacks takes a default) of
//! `status`, `state/<sensor>`, crash reports and dead letters. Timestamps
//! are turned into milliseconds since the Unix epoch here, once.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::FleetError;

/// A gateway's `status`, as its last retained value says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum Status {
    /// The service runs and is connected.
    Online {
        /// Service starts on that box.
        boot: u64,
        /// The gateway's release.
        version: String,
        /// When this boot started, ms since the epoch (`None` if unreadable).
        started_at: Option<u64>,
    },
    /// The broker published the Will: the connection was lost.
    Offline {
        /// The boot that went away.
        boot: Option<u64>,
    },
    /// The service stopped cleanly.
    Stopped {
        /// The boot that stopped.
        boot: Option<u64>,
    },
}

impl Status {
    /// Reads a `status` payload: the SPEC object, or the bare JSON string
    /// `"stopped"` / `"offline"` a minimal gateway might publish.
    pub fn parse(payload: &[u8]) -> Result<Self, FleetError> {
        #[derive(Deserialize)]
        struct Raw {
            state: String,
            boot: Option<u64>,
            version: Option<String>,
            started_at: Option<String>,
        }
        let raw = match serde_json::from_slice::<serde_json::Value>(payload)? {
            serde_json::Value::String(state) => Raw {
                state,
                boot: None,
                version: None,
                started_at: None,
            },
            value => serde_json::from_value::<Raw>(value)?,
        };
        match raw.state.as_str() {
            "online" => Ok(Status::Online {
                boot: raw.boot.unwrap_or(0),
                version: raw.version.unwrap_or_default(),
                started_at: raw.started_at.as_deref().and_then(millis),
            }),
            "offline" => Ok(Status::Offline { boot: raw.boot }),
            "stopped" => Ok(Status::Stopped { boot: raw.boot }),
            other => Err(FleetError::Payload(format!("unknown status {other:?}"))),
        }
    }

    /// `online`, `offline` or `stopped`.
    pub fn word(&self) -> &'static str {
        match self {
            Status::Online { .. } => "online",
            Status::Offline { .. } => "offline",
            Status::Stopped { .. } => "stopped",
        }
    }

    /// The boot the status is about, if it says.
    pub fn boot(&self) -> Option<u64> {
        match self {
            Status::Online { boot, .. } => Some(*boot),
            Status::Offline { boot } | Status::Stopped { boot } => *boot,
        }
    }
}

/// A sensor's retained `state/<sensor>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SensorState {
    /// `running`, `restarting`, `quarantined` or `stopped`.
    pub state: String,
    /// Restarts this boot.
    #[serde(default)]
    pub restarts: u64,
    /// When it entered this state (RFC 3339).
    #[serde(default)]
    pub since: String,
}

impl SensorState {
    /// Reads a `state/<sensor>` payload.
    pub fn parse(payload: &[u8]) -> Result<Self, FleetError> {
        Ok(serde_json::from_slice(payload)?)
    }
}

/// One crash report (SPEC section 5), the fields the view shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrashReport {
    /// The gateway (filled from the topic when the payload lacks it).
    #[serde(default)]
    pub gateway: String,
    /// The boot it happened in.
    #[serde(default)]
    pub boot: u64,
    /// When it was seen, RFC 3339.
    #[serde(default)]
    pub ts: String,
    /// The child's place in the tree.
    #[serde(default)]
    pub path: String,
    /// The sensor it belongs to.
    #[serde(default)]
    pub sensor: String,
    /// `corrupt_frame`, `io`, `eof`, `timeout`, `panic`, `start_failed`, `exhausted`.
    #[serde(default)]
    pub reason: String,
    /// For a person.
    #[serde(default)]
    pub error: String,
    /// The offending bytes, hex.
    #[serde(default)]
    pub evidence_hex: String,
    /// The bytes were cut at 256.
    #[serde(default)]
    pub evidence_truncated: bool,
    /// Restarts in the window, this one included.
    #[serde(default)]
    pub restarts_in_window: u64,
    /// Restarts allowed in the window.
    #[serde(default)]
    pub intensity: u64,
    /// `restart`, `quarantine`, `escalate` or `none`.
    #[serde(default)]
    pub action: String,
    /// Delay before the restart.
    #[serde(default)]
    pub backoff_ms: u64,
}

impl CrashReport {
    /// Reads a crash report that came on `crash/<sensor>` of `gateway`.
    pub fn parse(gateway: &str, sensor: &str, payload: &[u8]) -> Result<Self, FleetError> {
        let mut report: CrashReport = serde_json::from_slice(payload)?;
        if report.gateway.is_empty() {
            report.gateway = gateway.to_string();
        }
        if report.sensor.is_empty() {
            report.sensor = sensor.to_string();
        }
        Ok(report)
    }

    /// What identifies one crash across redeliveries: the outbox delivers
    /// at least once, and a duplicate must not count twice in a rate.
    pub fn key(&self) -> String {
        format!(
            "{}|{}|{}|{}|{}",
            self.boot, self.ts, self.path, self.restarts_in_window, self.reason
        )
    }
}

/// A dead letter: a corrupt frame skipped (`on_corrupt = "skip"`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct DeadLetter {
    /// When it was skipped, RFC 3339.
    #[serde(default)]
    pub ts: String,
    /// The boot.
    #[serde(default)]
    pub boot: u64,
}

impl DeadLetter {
    /// Reads a `deadletter/<sensor>` payload.
    pub fn parse(payload: &[u8]) -> Result<Self, FleetError> {
        Ok(serde_json::from_slice(payload)?)
    }
}

/// RFC 3339 to ms since the epoch; `None` when unreadable or before 1970.
pub fn millis(ts: &str) -> Option<u64> {
    let at = humantime::parse_rfc3339(ts).ok()?;
    Some(at.duration_since(UNIX_EPOCH).ok()?.as_millis() as u64)
}

/// ms since the epoch as RFC 3339 with milliseconds.
pub fn rfc3339(ms: u64) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

/// Now, in ms since the epoch (the one place the wall clock is read).
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_reads_the_three_spec_shapes_and_a_bare_string() {
        let online = br#"{"state":"online","boot":7,"version":"0.1.0","started_at":"2026-11-24T10:00:00.123Z"}"#;
        assert_eq!(
            Status::parse(online).unwrap(),
            Status::Online {
                boot: 7,
                version: "0.1.0".into(),
                started_at: millis("2026-11-24T10:00:00.123Z"),
            }
        );
        assert_eq!(
            Status::parse(br#"{"state":"offline","boot":7}"#).unwrap(),
            Status::Offline { boot: Some(7) }
        );
        assert_eq!(
            Status::parse(br#"{"state":"stopped","boot":7}"#).unwrap(),
            Status::Stopped { boot: Some(7) }
        );
        assert_eq!(
            Status::parse(br#""stopped""#).unwrap(),
            Status::Stopped { boot: None }
        );
        assert!(Status::parse(br#"{"state":"dancing"}"#).is_err());
        assert!(Status::parse(b"not json").is_err());
    }

    #[test]
    fn a_crash_report_takes_gateway_and_sensor_from_the_topic_when_missing() {
        let report = CrashReport::parse(
            "gw1",
            "gps",
            br#"{"ts":"2026-11-24T10:00:00.123Z","reason":"io"}"#,
        )
        .unwrap();
        assert_eq!(
            (report.gateway.as_str(), report.sensor.as_str()),
            ("gw1", "gps")
        );
        assert_eq!(report.reason, "io");
    }

    #[test]
    fn timestamps_round_trip_in_milliseconds() {
        let ms = millis("2026-11-24T10:00:00.123Z").unwrap();
        assert_eq!(ms % 1000, 123);
        assert_eq!(rfc3339(ms), "2026-11-24T10:00:00.123Z");
        assert_eq!(millis("yesterday"), None);
    }
}
