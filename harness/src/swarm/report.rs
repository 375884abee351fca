//! The swarm's final table (and the same as one JSON object): what was sent,
//! accepted, delivered, duplicated and lost, crash reports by reason,
//! restarts, quarantines, latency, and the gateway's CPU and memory.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::{Mutex, PoisonError};

use super::account::Account;
use super::faults::{FaultPlan, Injected};
use super::fleet::Mix;
use super::process::Usage;
use super::SwarmArgs;

/// Everything a swarm run established.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    /// Sensors per transport.
    pub sensors: Mix,
    /// Readings per second per sensor.
    pub rate_hz: f64,
    /// How long the sensors sent.
    pub duration_s: f64,
    /// Seed of the fault plan (repeat a run with it).
    pub seed: u64,
    /// The fault rates.
    pub faults: FaultPlan,
    /// Faults injected, by kind.
    pub injected: Injected,
    /// Readings the simulators wrote completely.
    pub sent: u64,
    /// Readings the gateway accepted (status `accepted`).
    pub accepted: u64,
    /// Unique readings delivered upstream.
    pub delivered: u64,
    /// Telemetry messages delivered more than once.
    pub duplicates: u64,
    /// Accepted but not delivered: must be 0.
    pub lost: u64,
    /// Lost readings per sensor.
    pub lost_by_sensor: BTreeMap<String, u64>,
    /// Sent by a simulator but never accepted (in flight when a link broke).
    pub not_accepted: u64,
    /// Crash reports by reason, until the sensors were silenced for the drain.
    pub crash_reports: BTreeMap<String, u64>,
    /// Crash reports that arrived during the final drain (mostly sensors
    /// silent past their read timeout while the harness waited).
    pub crash_reports_during_drain: u64,
    /// Corrupt frames the stream simulators (tcp, listen, serial) wrote:
    /// each must come back as one `corrupt_frame` crash report.
    pub corrupt_written: u64,
    /// Corrupt messages the MQTT simulators published: their sensor skips
    /// corrupt input, so each must come back as one dead letter.
    pub corrupt_written_mqtt: u64,
    /// Dead letters received.
    pub dead_letters: u64,
    /// Crash reports whose action was `restart`.
    pub restarts: u64,
    /// Crash reports whose action was `quarantine`.
    pub quarantines: u64,
    /// Sensors whose last state was `quarantined`.
    pub quarantined_sensors: Vec<String>,
    /// Median time from the gateway's `ts` to arrival upstream.
    pub latency_p50_ms: f64,
    /// 99th percentile of the same.
    pub latency_p99_ms: f64,
    /// CPU seconds the gateway process used.
    pub gateway_cpu_s: f64,
    /// Peak resident memory of the gateway process.
    pub gateway_peak_rss_bytes: u64,
    /// Delivered readings per gateway CPU second.
    pub readings_per_cpu_s: f64,
    /// The gateway's exit code after SIGTERM.
    pub gateway_exit: Option<i32>,
    /// False when the final drain gave up after a minute with readings
    /// still missing.
    pub drained: bool,
}

/// What the simulators wrote, counted once they were silenced.
pub(super) struct Written {
    /// Readings written completely.
    pub(super) sent: u64,
    /// Corrupt frames written by the stream simulators.
    pub(super) corrupt: u64,
    /// Corrupt messages published by the MQTT simulators.
    pub(super) corrupt_mqtt: u64,
}

/// Crash reports and actions booked while the sensors were sending, before
/// the drain added crashes of its own.
pub(super) struct RunBooks {
    pub(super) crashes: BTreeMap<String, u64>,
    pub(super) actions: BTreeMap<String, u64>,
}

/// How the run ended, for the report.
pub(super) struct Ending {
    pub(super) written: Written,
    pub(super) run: RunBooks,
    pub(super) injected: Injected,
    pub(super) drained: bool,
    pub(super) usage: Usage,
    pub(super) gateway_exit: Option<i32>,
}

impl RunBooks {
    /// Crashes and actions as the run left them: the drain keeps the
    /// sensors silent, and those that stay silent past their read timeout
    /// would add crashes the fault plan did not cause.
    pub(super) fn now(account: &Mutex<Account>) -> Self {
        let books = account.lock().unwrap_or_else(PoisonError::into_inner);
        Self {
            crashes: books.crashes_by_reason.clone(),
            actions: books.actions.clone(),
        }
    }
}

impl Report {
    /// The final report from the books and how the run ended.
    pub(super) fn build(
        args: &SwarmArgs,
        seed: u64,
        account: &Mutex<Account>,
        ending: Ending,
    ) -> Self {
        let Ending {
            written,
            run,
            injected,
            drained,
            usage,
            gateway_exit,
        } = ending;
        let mut books = account.lock().unwrap_or_else(PoisonError::into_inner);
        let lost_by_sensor = books.lost();
        if std::env::var_os("EDGEVISOR_SWARM_DEBUG").is_some() {
            eprintln!("{:?}", books.per_sensor());
        }
        let sim_delivered: u64 = books.sim_delivered.values().map(|s| s.len() as u64).sum();
        let mut latencies = std::mem::take(&mut books.latencies_ms);
        Report {
            sensors: args.mix(),
            rate_hz: args.rate,
            duration_s: args.duration.as_secs_f64(),
            seed,
            faults: args.faults,
            injected,
            sent: written.sent,
            accepted: books.accepted(),
            delivered: books.delivered(),
            duplicates: books.duplicates,
            lost: lost_by_sensor.values().sum(),
            lost_by_sensor,
            not_accepted: written.sent.saturating_sub(sim_delivered),
            crash_reports_during_drain: books.crashes_by_reason.values().sum::<u64>()
                - run.crashes.values().sum::<u64>(),
            crash_reports: run.crashes,
            corrupt_written: written.corrupt,
            corrupt_written_mqtt: written.corrupt_mqtt,
            dead_letters: books.dead_letters.values().sum(),
            restarts: run.actions.get("restart").copied().unwrap_or(0),
            quarantines: run.actions.get("quarantine").copied().unwrap_or(0),
            quarantined_sensors: books
                .states
                .iter()
                .filter(|(_, s)| *s == "quarantined")
                .map(|(k, _)| k.clone())
                .collect(),
            latency_p50_ms: 0.0,
            latency_p99_ms: 0.0,
            gateway_cpu_s: 0.0,
            gateway_peak_rss_bytes: 0,
            readings_per_cpu_s: 0.0,
            gateway_exit,
            drained,
        }
        .with_usage(&mut latencies, usage)
    }

    /// The run passes when nothing accepted was lost and the gateway
    /// stopped cleanly.
    pub fn passed(&self) -> bool {
        self.lost == 0 && self.gateway_exit == Some(0)
    }

    /// Builds the latency and usage figures.
    pub fn with_usage(mut self, latencies: &mut [f64], usage: Usage) -> Self {
        latencies.sort_by(f64::total_cmp);
        let pct = |p: f64| {
            latencies
                .get(((latencies.len() as f64 - 1.0) * p).round() as usize)
                .copied()
                .unwrap_or(0.0)
        };
        self.latency_p50_ms = pct(0.5);
        self.latency_p99_ms = pct(0.99);
        self.gateway_cpu_s = usage.cpu_s;
        self.gateway_peak_rss_bytes = usage.peak_rss_bytes;
        self.readings_per_cpu_s = if usage.cpu_s > 0.0 {
            self.delivered as f64 / usage.cpu_s
        } else {
            0.0
        };
        self
    }

    /// The table people read.
    pub fn table(&self) -> String {
        let mut t = String::new();
        let s = self.sensors;
        let _ = writeln!(t, "swarm: {} sensors (tcp {}, listen {}, serial {}, mqtt {}, modbus units {}) at {} Hz for {:.0} s, seed {}", s.total(), s.tcp, s.listen, s.serial, s.mqtt, s.modbus, self.rate_hz, self.duration_s, self.seed);
        let row = |t: &mut String, k: &str, v: String| {
            let _ = writeln!(t, "  {k:<24} {v}");
        };
        row(&mut t, "faults injected", format!("{:?}", self.injected));
        row(&mut t, "sent", self.sent.to_string());
        row(&mut t, "accepted", self.accepted.to_string());
        row(&mut t, "delivered", self.delivered.to_string());
        row(&mut t, "duplicates", self.duplicates.to_string());
        row(
            &mut t,
            "lost",
            format!(
                "{}{}",
                self.lost,
                if self.lost == 0 { "" } else { "  <-- FAIL" }
            ),
        );
        row(
            &mut t,
            "not accepted (in flight)",
            self.not_accepted.to_string(),
        );
        row(
            &mut t,
            "crash reports",
            format!(
                "{:?} (+{} during the drain)",
                self.crash_reports, self.crash_reports_during_drain
            ),
        );
        row(
            &mut t,
            "corrupt frames written",
            format!(
                "{} (stream), {} (mqtt)",
                self.corrupt_written, self.corrupt_written_mqtt
            ),
        );
        row(&mut t, "dead letters", self.dead_letters.to_string());
        row(&mut t, "restarts", self.restarts.to_string());
        row(
            &mut t,
            "quarantines",
            format!("{} {:?}", self.quarantines, self.quarantined_sensors),
        );
        row(
            &mut t,
            "latency p50 / p99",
            format!("{:.1} / {:.1} ms", self.latency_p50_ms, self.latency_p99_ms),
        );
        row(
            &mut t,
            "gateway CPU",
            format!(
                "{:.2} s ({:.0} readings per CPU-second)",
                self.gateway_cpu_s, self.readings_per_cpu_s
            ),
        );
        row(
            &mut t,
            "gateway peak RSS",
            format!("{:.1} MiB", self.gateway_peak_rss_bytes as f64 / 1048576.0),
        );
        row(&mut t, "gateway exit", format!("{:?}", self.gateway_exit));
        if !self.drained {
            row(
                &mut t,
                "drain",
                "gave up after 60 s with accepted readings missing".into(),
            );
        }
        t
    }
}
