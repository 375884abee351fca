//! Crash reports about the outbox itself, so that what happened to the
//! store reaches upstream like any other fault: a corrupt database moved
//! aside at start, and each storage fault episode (disk full, read-only,
//! I/O error). They go to `crash/_outbox` with `path` `"outbox"`, reason
//! `io` and action `none` (SPEC section 5's crash report shape), through the
//! outbox as class Report, so they are sent once connected.

use std::time::SystemTime;

use super::{Message, Opened, Stats};
use crate::payload;
use crate::topics::Topics;

/// The `<sensor>` level of the outbox's own crash topic. A sensor could be
/// called `_outbox` too; the `path` `"outbox"` (child paths start with
/// `root/`) tells the two apart.
pub const SENSOR: &str = "_outbox";

/// A crash report about the outbox, ready to append.
pub fn crash_report(gateway: &str, boot: u64, topics: &Topics, error: &str) -> Message {
    let ts = payload::timestamp(SystemTime::now());
    let report = payload::CrashReport {
        gateway,
        boot,
        ts: &ts,
        path: "outbox",
        sensor: SENSOR,
        reason: "io",
        error,
        evidence_hex: String::new(),
        evidence_truncated: false,
        restarts_in_window: 0,
        intensity: 0,
        period_ms: 0,
        action: "none",
        backoff_ms: 0,
    };
    Message::report(
        SENSOR.into(),
        topics.crash(SENSOR).into(),
        payload::to_vec(&report),
    )
}

/// Logs how opening went and returns the report to send about it (a corrupt
/// file moved aside), if any. A storage fault at open is reported like any
/// other episode, by [`FaultWatch`].
pub fn on_open(opened: &Opened, gateway: &str, boot: u64, topics: &Topics) -> Vec<Message> {
    tracing::info!(path = %opened.path.display(), recovered = opened.recovered, "outbox opened");
    match &opened.moved_aside {
        Some((to, why)) => {
            let error = format!(
                "outbox database was corrupt ({why}); moved aside to {} and started afresh",
                to.display()
            );
            vec![crash_report(gateway, boot, topics, &error)]
        }
        None => Vec::new(),
    }
}

/// Notices new storage fault episodes in successive [`Stats`], so each is
/// reported once however long it lasts.
#[derive(Debug, Default)]
pub struct FaultWatch {
    reported: u64,
}

impl FaultWatch {
    /// The error of a fault episode not reported yet, if any.
    pub fn new_fault(&mut self, stats: &Stats) -> Option<String> {
        if stats.storage_faults <= self.reported {
            return None;
        }
        self.reported = stats.storage_faults;
        Some(
            stats
                .storage_error
                .clone()
                .unwrap_or_else(|| "outbox storage failed (since recovered)".into()),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_fault_episode_is_reported_once() {
        let mut watch = FaultWatch::default();
        let mut stats = Stats::default();
        assert_eq!(watch.new_fault(&stats), None);
        stats.storage_faults = 1;
        stats.storage_error = Some("disk full".into());
        assert_eq!(watch.new_fault(&stats).as_deref(), Some("disk full"));
        assert_eq!(watch.new_fault(&stats), None);
        stats.storage_faults = 2;
        assert!(watch.new_fault(&stats).is_some());
    }

    #[test]
    fn the_report_has_the_crash_report_shape() {
        let m = crash_report("gw", 3, &Topics::new("edgevisor", "gw"), "disk full");
        assert_eq!(&*m.topic, "edgevisor/gw/crash/_outbox");
        let v: serde_json::Value = serde_json::from_slice(&m.payload).unwrap();
        assert_eq!(v["reason"], "io");
        assert_eq!(v["action"], "none");
        assert_eq!(v["error"], "disk full");
    }
}
