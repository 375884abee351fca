//! Runtime events turned into what the broker sees: a crash report in the
//! outbox for every crash, retained `state/<sensor>` on every change, and
//! the retained `tree`, republished on change at most once a second. Every
//! crash is also logged with its sensor, path, reason and action, kept
//! among the [`RecentCrashes`] that `edgevisor status` shows, and counted
//! in the metrics: one place for each event.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use edgevisor_runtime::{Action, Event, EventKind, SupervisorHandle};
use serde_json::value::RawValue;
use tokio::sync::broadcast;

use crate::metrics::TreeMetrics;
use crate::outbox::Message;
use crate::payload;
use crate::sensor::Gateway;
use crate::shutdown::Shutdown;
use crate::tree_payload;
use crate::uplink::{Render, Uplink};

/// The last crash reports, newest last, exactly as they went to the
/// outbox: a bounded ring filled where reports are made, read by
/// `edgevisor status`.
pub struct RecentCrashes {
    capacity: usize,
    reports: Mutex<VecDeque<Arc<RawValue>>>,
}

impl RecentCrashes {
    /// A ring keeping the last `capacity` reports.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            reports: Mutex::new(VecDeque::with_capacity(capacity)),
        }
    }

    /// Keeps `report` (a crash report payload), forgetting the oldest past
    /// the capacity.
    pub fn record(&self, report: &[u8]) {
        let Ok(text) = String::from_utf8(report.to_vec()) else {
            return;
        };
        let Ok(raw) = RawValue::from_string(text) else {
            return; // not JSON: `payload::to_vec` never makes such a body
        };
        let mut reports = self.reports.lock().unwrap_or_else(PoisonError::into_inner);
        if reports.len() >= self.capacity {
            reports.pop_front();
        }
        if self.capacity > 0 {
            reports.push_back(Arc::from(raw));
        }
    }

    /// The reports kept, oldest first.
    pub fn list(&self) -> Vec<Arc<RawValue>> {
        let reports = self.reports.lock().unwrap_or_else(PoisonError::into_inner);
        reports.iter().cloned().collect()
    }
}

/// Follows the tree's events until the stream closes or the service stops;
/// at a stop it first handles every event already emitted (the children's
/// last states) and publishes the final tree.
pub async fn run(
    mut events: broadcast::Receiver<Arc<Event>>,
    tree: SupervisorHandle,
    gateway: Arc<Gateway>,
    uplink: Arc<Uplink>,
    recent: Arc<RecentCrashes>,
    metrics: Arc<TreeMetrics>,
    mut shutdown: Shutdown,
) {
    let mut states: HashMap<String, (&'static str, u32)> = HashMap::new();
    let mut tree_dirty = true;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let render_tree: Render = {
        let tree = tree.clone();
        Arc::new(move || tree_payload::render_live(&tree))
    };
    loop {
        tokio::select! {
            event = events.recv() => match event {
                Ok(event) => {
                    tree_dirty = true;
                    on_event(&event, &gateway, &uplink, &recent, &metrics, &mut states);
                }
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::warn!(missed, "crash reporting fell behind; events were missed");
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
            _ = tick.tick() => {
                if tree_dirty {
                    tree_dirty = false;
                    uplink.set_retained_rendered(gateway.topics.tree(), render_tree.clone());
                }
            }
            _ = shutdown.recv() => {
                while let Ok(event) = events.try_recv() {
                    on_event(&event, &gateway, &uplink, &recent, &metrics, &mut states);
                }
                // The last tree as it stands now, not as it will be once
                // everything has stopped.
                uplink.set_retained(gateway.topics.tree(), render_tree());
                return;
            }
        }
    }
}

fn on_event(
    event: &Event,
    gateway: &Gateway,
    uplink: &Uplink,
    recent: &RecentCrashes,
    metrics: &TreeMetrics,
    states: &mut HashMap<String, (&'static str, u32)>,
) {
    let layout = gateway.layout();
    let Some(place) = crate::tree::sensor_place(&event.path, &layout) else {
        return;
    };
    metrics.on_event(event, &place);
    let sensor = place.sensor;
    if let EventKind::Crashed {
        crash,
        restarts_in_window,
        intensity,
        period,
        action,
    } = &event.kind
    {
        let crashed = Crashed {
            crash,
            restarts_in_window: *restarts_in_window,
            intensity: *intensity,
            period: *period,
            action,
        };
        report_crash(event, sensor, &crashed, gateway, recent);
    }
    if place.own_level {
        publish_state(event, sensor, gateway, uplink, states);
    }
}

/// The fields of a `Crashed` event.
struct Crashed<'a> {
    crash: &'a edgevisor_runtime::Crash,
    restarts_in_window: u32,
    intensity: u32,
    period: Duration,
    action: &'a Action,
}

/// SPEC's `evidence_hex`: the bytes in hex, "" without any; a request and
/// its reply as `>request<reply`.
fn evidence_hex(crash: &edgevisor_runtime::Crash) -> String {
    let Some(bytes) = crash.evidence.as_deref() else {
        return String::new();
    };
    match crash.evidence_request_len {
        Some(n) if n <= bytes.len() => {
            let (request, reply) = bytes.split_at(n);
            format!(">{}<{}", hex::encode(request), hex::encode(reply))
        }
        _ => hex::encode(bytes),
    }
}

/// Logs a crash, puts its report in the outbox and keeps it among the
/// recent ones.
fn report_crash(
    event: &Event,
    sensor: &str,
    crashed: &Crashed<'_>,
    gateway: &Gateway,
    recent: &RecentCrashes,
) {
    let Crashed { crash, action, .. } = crashed;
    let evidence_hex = evidence_hex(crash);
    tracing::warn!(
        SENSOR = sensor,
        CHILD_PATH = %event.path,
        REASON = %crash.reason,
        ACTION = action.as_str(),
        EVIDENCE_HEX = %evidence_hex,
        "{} crashed: {}",
        event.path,
        crash.message
    );
    let ts = payload::timestamp(SystemTime::now());
    let report = payload::CrashReport {
        gateway: &gateway.id,
        boot: gateway.boot,
        ts: &ts,
        path: &event.path,
        sensor,
        reason: &crash.reason,
        error: &crash.message,
        evidence_hex,
        evidence_truncated: crash.evidence_truncated,
        restarts_in_window: crashed.restarts_in_window,
        intensity: crashed.intensity,
        period_ms: u64::try_from(crashed.period.as_millis()).unwrap_or(u64::MAX),
        action: action.as_str(),
        backoff_ms: match action {
            Action::Restart { delay } => u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
            _ => 0,
        },
    };
    let body = payload::to_vec(&report);
    recent.record(&body);
    gateway.outbox.append(vec![Message::report(
        sensor.into(),
        gateway.topics.crash(sensor).into(),
        body,
    )]);
}

/// Publishes the sensor's retained `state` when the event changes it.
fn publish_state(
    event: &Event,
    sensor: &str,
    gateway: &Gateway,
    uplink: &Uplink,
    states: &mut HashMap<String, (&'static str, u32)>,
) {
    let previous = states.get(sensor).copied().unwrap_or(("stopped", 0));
    let next = match &event.kind {
        EventKind::Started { restarts } => ("running", *restarts),
        EventKind::Crashed {
            action: Action::Restart { .. },
            ..
        }
        | EventKind::Restarting { .. } => ("restarting", previous.1),
        EventKind::Quarantined { .. } => ("quarantined", previous.1),
        EventKind::Stopped { .. } => ("stopped", previous.1),
        _ => return,
    };
    if next != previous || matches!(event.kind, EventKind::Started { .. }) {
        states.insert(sensor.to_string(), next);
        let since = payload::timestamp(SystemTime::now());
        let body = payload::SensorState {
            state: next.0,
            restarts: next.1,
            since: &since,
        };
        uplink.set_retained(gateway.topics.state(sensor), payload::to_vec(&body));
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recent_crashes_keep_the_last_ones_in_order() {
        let recent = RecentCrashes::new(2);
        for n in 1..=3 {
            recent.record(format!(r#"{{"n":{n}}}"#).as_bytes());
        }
        recent.record(b"not json");
        let kept: Vec<String> = recent.list().iter().map(|r| r.get().to_string()).collect();
        assert_eq!(kept, [r#"{"n":2}"#, r#"{"n":3}"#]);
    }
}
