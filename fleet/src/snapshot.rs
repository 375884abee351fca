//! The view both faces draw: the fleet at one instant, with rates worked
//! out and times made relative, as plain data. The terminal renders it as
//! text; the web page gets it as JSON from `/api/fleet` (its field names
//! are that endpoint's contract).

use serde::Serialize;

use crate::message::{rfc3339, CrashReport, SensorState, Status};
use crate::model::{Fleet, Gateway};
use crate::window::MINUTES;

/// How the view reaches the broker, as shown in both faces.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Link {
    /// The broker URL.
    pub broker: String,
    /// Connected now.
    pub connected: bool,
    /// Why the last connection attempt or connection failed.
    pub last_error: Option<String>,
    /// The shared subscription group, when events are read through one.
    pub share: Option<String>,
    /// Filters the broker refused on the shared group and that are read
    /// plainly instead.
    pub share_refused: Vec<String>,
    /// Messages on the view's topics whose payload could not be read
    /// (logged at warn, which only shows with a log subscriber).
    pub unreadable: u64,
    /// The last of them: topic and why.
    pub last_unreadable: Option<String>,
    /// The web page's address, when it is served.
    pub page: Option<String>,
    /// When the view first connected (ms since the epoch): crash reports
    /// are not retained, so rates count only what arrived since.
    pub since_ms: Option<u64>,
}

/// The whole fleet at one instant.
#[derive(Debug, Clone, Serialize)]
pub struct FleetSnapshot {
    /// When (RFC 3339).
    pub at: String,
    /// The topic prefix.
    pub prefix: String,
    /// The broker link.
    pub link: Link,
    /// Seconds the view has been receiving events (at most an hour
    /// matters): what the crash counts cover.
    pub watching_s: u64,
    /// Every gateway, by id.
    pub gateways: Vec<GatewaySnapshot>,
}

impl FleetSnapshot {
    /// Gateways whose status is `online`.
    pub fn online(&self) -> usize {
        self.gateways.iter().filter(|g| g.state == "online").count()
    }
}

/// One gateway at one instant.
#[derive(Debug, Clone, Serialize)]
pub struct GatewaySnapshot {
    /// Its id.
    pub id: String,
    /// `online`, `offline`, `stopped`, or `unknown` (no status seen).
    pub state: String,
    /// Its boot counter, if known.
    pub boot: Option<u64>,
    /// Its release, while online.
    pub version: Option<String>,
    /// Seconds since this boot started, while online.
    pub uptime_s: Option<u64>,
    /// Each sensor's state.
    pub sensors: Vec<SensorSnapshot>,
    /// Names of the quarantined sensors.
    pub quarantined: Vec<String>,
    /// Crashes in the last hour.
    pub crashes_hour: u64,
    /// Whether `crashes_hour` is a floor (too many to keep).
    pub crashes_floor: bool,
    /// Crashes in the last hour per sensor, most first.
    pub by_sensor: Vec<Count>,
    /// Crashes in the last hour per reason, most first.
    pub by_reason: Vec<Count>,
    /// Crashes per minute over the last hour, oldest first.
    pub per_minute: Vec<u64>,
    /// Crashes per 10 seconds over the last 10 minutes, oldest first.
    pub per_10s: Vec<u64>,
    /// Dead letters in the last hour.
    pub dead_letters_hour: u64,
    /// The latest crash reports, newest first.
    pub latest: Vec<CrashReport>,
    /// The retained supervision tree (`schemas/tree.schema.json`).
    pub tree: Option<serde_json::Value>,
    /// Seconds since anything arrived about it.
    pub last_seen_s: u64,
}

/// One sensor's retained state.
#[derive(Debug, Clone, Serialize)]
pub struct SensorSnapshot {
    /// Its name.
    pub name: String,
    /// Its state, restarts and since when.
    #[serde(flatten)]
    pub state: SensorState,
}

/// A count in the last hour.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Count {
    /// A sensor or reason.
    pub name: String,
    /// Crashes in the last hour.
    pub count: u64,
}

/// The fleet at `now_ms`.
pub fn snapshot(fleet: &Fleet, link: &Link, now_ms: u64) -> FleetSnapshot {
    FleetSnapshot {
        at: rfc3339(now_ms),
        prefix: fleet.prefix().to_string(),
        link: link.clone(),
        watching_s: link.since_ms.map_or(0, |t| now_ms.saturating_sub(t) / 1000),
        gateways: fleet
            .gateways()
            .iter()
            .map(|(id, gw)| gateway(id, gw, now_ms))
            .collect(),
    }
}

fn gateway(id: &str, gw: &Gateway, now_ms: u64) -> GatewaySnapshot {
    let (version, uptime_s) = match &gw.status {
        Some(Status::Online {
            version,
            started_at,
            ..
        }) => (
            Some(version.clone()),
            started_at.map(|t| now_ms.saturating_sub(t) / 1000),
        ),
        _ => (None, None),
    };
    let counts = |pairs: Vec<(String, u64)>| {
        pairs
            .into_iter()
            .map(|(name, count)| Count { name, count })
            .collect()
    };
    let per_minute = gw.crashes.per_minute(now_ms);
    debug_assert_eq!(per_minute.len(), MINUTES);
    GatewaySnapshot {
        id: id.to_string(),
        state: gw
            .status
            .as_ref()
            .map_or("unknown", Status::word)
            .to_string(),
        boot: gw.status.as_ref().and_then(Status::boot),
        version,
        uptime_s,
        sensors: gw
            .sensors
            .iter()
            .map(|(name, state)| SensorSnapshot {
                name: name.clone(),
                state: state.clone(),
            })
            .collect(),
        quarantined: gw.quarantined().map(|(n, _)| n.to_string()).collect(),
        crashes_hour: gw.crashes.total(now_ms),
        crashes_floor: gw.crashes.overflowed(),
        by_sensor: counts(gw.crashes.by_sensor(now_ms)),
        by_reason: counts(gw.crashes.by_reason(now_ms)),
        per_minute: per_minute.to_vec(),
        per_10s: gw.crashes.series(now_ms, 10_000, 60),
        dead_letters_hour: gw.dead_letters.total(now_ms),
        latest: gw.latest.iter().rev().cloned().collect(),
        tree: gw.tree.clone(),
        last_seen_s: now_ms.saturating_sub(gw.last_seen_ms) / 1000,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000_000;

    #[test]
    fn a_snapshot_says_state_uptime_quarantine_and_rates() {
        let mut fleet = Fleet::new("edgevisor");
        let status = format!(
            r#"{{"state":"online","boot":2,"version":"0.1.0","started_at":"{}"}}"#,
            rfc3339(NOW - 90_000)
        );
        fleet
            .apply("edgevisor/gw1/status", status.as_bytes(), NOW)
            .unwrap();
        fleet
            .apply(
                "edgevisor/gw1/state/dead",
                br#"{"state":"quarantined","restarts":2,"since":""}"#,
                NOW,
            )
            .unwrap();
        let crash = format!(
            r#"{{"ts":"{}","sensor":"dead","reason":"start_failed","path":"root/dead","boot":2}}"#,
            rfc3339(NOW - 1000)
        );
        fleet
            .apply("edgevisor/gw1/crash/dead", crash.as_bytes(), NOW)
            .unwrap();
        fleet
            .apply(
                "edgevisor/gw2/status",
                br#"{"state":"offline","boot":5}"#,
                NOW,
            )
            .unwrap();
        let snap = snapshot(&fleet, &Link::default(), NOW);
        assert_eq!(snap.online(), 1);
        let gw1 = &snap.gateways[0];
        assert_eq!((gw1.id.as_str(), gw1.state.as_str()), ("gw1", "online"));
        assert_eq!((gw1.boot, gw1.uptime_s), (Some(2), Some(90)));
        assert_eq!(gw1.quarantined, ["dead"]);
        assert_eq!(gw1.crashes_hour, 1);
        assert_eq!(
            gw1.by_reason,
            [Count {
                name: "start_failed".into(),
                count: 1
            }]
        );
        assert_eq!(gw1.per_minute.len(), MINUTES);
        let gw2 = &snap.gateways[1];
        assert_eq!(
            (gw2.state.as_str(), gw2.boot, gw2.uptime_s),
            ("offline", Some(5), None)
        );
        let json = serde_json::to_value(&snap).unwrap();
        assert_eq!(json["gateways"][0]["sensors"][0]["state"], "quarantined");
    }
}
