//! `edgevisor matrix`: the fault matrix. Every fault an edge box meets, run
//! one at a time against the real gateway binary, a Mosquitto of the
//! matrix's own and simulated sensors, with every reading counted by the
//! swarm's books. One line per case: accepted, delivered, lost,
//! duplicates, recovery time, peak RSS and the verdict. Lost must be 0,
//! except where a documented drop policy applies (the outbox bound): then
//! the gateway's own drop counts must equal the loss exactly.
//!
//! - `rig`: one case's broker, proxy, sensors, gateway and books;
//! - `proxy`: the link to the broker, slowed or cut on demand;
//! - `cases`: the cases themselves.

mod cases;
pub mod proxy;
pub mod rig;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;

use cases::Outcome;

/// `println!` that does not panic when stdout went away (`| head`).
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// The matrix's options.
#[derive(Debug, Clone, clap::Args)]
pub struct MatrixArgs {
    /// Also run the slow cases: the broker flapping for a minute and the
    /// soak at 1,000 sensors.
    #[arg(long)]
    pub long: bool,
    /// Only these cases (comma-separated names, as printed).
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
    /// How long the soak runs with `--long`.
    #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
    pub soak: Duration,
    /// The gateway binary (default: this one).
    #[arg(long)]
    pub gateway_bin: Option<PathBuf>,
    /// Write every case's figures as JSON lines to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Keep each case's folder (config, state, gateway logs) and say where.
    #[arg(long)]
    pub keep: bool,
    /// List the cases and exit.
    #[arg(long)]
    pub list: bool,
}

/// How a case is run.
#[derive(Clone, Copy)]
enum Speed {
    /// In CI: seconds each.
    Fast,
    /// Only with `--long`.
    Long,
}

/// Every case, in the order they run.
const CASES: &[(&str, Speed, &str)] = &[
    (
        "journald-absent",
        Speed::Fast,
        "plain load, no journald: the baseline",
    ),
    (
        "broker-killed",
        Speed::Fast,
        "broker SIGKILLed, back after 3 s",
    ),
    (
        "broker-frozen",
        Speed::Fast,
        "broker SIGSTOPped for 8 s (4 keep-alives)",
    ),
    (
        "slow-broker",
        Speed::Fast,
        "link to the broker at 4 KB/s for 10 s",
    ),
    (
        "partition-overflow",
        Speed::Fast,
        "link cut for 15 s with a 1 MiB outbox: drop-oldest, counts must match",
    ),
    (
        "wrong-password",
        Speed::Fast,
        "broker refuses the password; fixed on disk + SIGHUP",
    ),
    (
        "untrusted-tls",
        Speed::Fast,
        "broker's certificate from an untrusted CA; right CA + SIGHUP",
    ),
    (
        "message-too-big",
        Speed::Fast,
        "one reading over the broker's message_size_limit: set aside, reported",
    ),
    (
        "refused-topic",
        Speed::Fast,
        "check refuses topic prefixes brokers reject or rewrite",
    ),
    (
        "serial-replug",
        Speed::Fast,
        "4 serial ptys unplugged and re-plugged 5 times",
    ),
    (
        "silent-sensors",
        Speed::Fast,
        "half the sensors silent past read_timeout",
    ),
    (
        "corrupt-storm",
        Speed::Fast,
        "half the sensors send corrupt frames for 6 s",
    ),
    (
        "disk-full",
        Speed::Fast,
        "state directory full for 8 s (a tmpfs; needs root)",
    ),
    (
        "disk-stays-full",
        Speed::Fast,
        "state directory full for good (a tmpfs; needs root): the reserve lets the outbox recover",
    ),
    (
        "read-only-state",
        Speed::Fast,
        "state directory read-only at start (a tmpfs; needs root): refused, then runs once writable",
    ),
    (
        "gateway-sigkill",
        Speed::Fast,
        "gateway SIGKILLed under load 20 times",
    ),
    (
        "sigterm-under-load",
        Speed::Fast,
        "SIGTERM at 1,000 readings/s: exit within 15 s",
    ),
    (
        "broker-flapping",
        Speed::Long,
        "broker down/up every 2 s for a minute",
    ),
    (
        "clock-stepped",
        Speed::Long,
        "wall clock +1 h, then -1 h, 8 s each (the machine's; needs root)",
    ),
    (
        "soak",
        Speed::Long,
        "1,000 sensors for --soak (1 h), RSS every minute",
    ),
];

/// One case's line.
#[derive(Debug, serde::Serialize)]
pub struct Line {
    /// The case's name.
    pub case: String,
    /// Pass, fail, or why it could not run.
    pub verdict: String,
    /// The books and the case's note.
    #[serde(flatten)]
    pub tally: rig::Tally,
    /// Seconds from the fault's end to everything accepted delivered.
    pub recovery_s: Option<f64>,
    /// What was seen.
    pub note: String,
    /// The case's own checks that failed, and a loss or drain problem.
    pub failures: Vec<String>,
}

/// Runs the selected cases one after the other, printing a line for each;
/// true when every case passed.
pub async fn run(args: MatrixArgs) -> anyhow::Result<bool> {
    if args.list {
        for (name, speed, what) in CASES {
            let long = matches!(speed, Speed::Long)
                .then_some(" (--long)")
                .unwrap_or("");
            say!("{name:<20} {what}{long}");
        }
        return Ok(true);
    }
    let binary = match &args.gateway_bin {
        Some(b) => b.clone(),
        None => std::env::current_exe().context("cannot find the edgevisor binary")?,
    };
    for name in &args.only {
        anyhow::ensure!(
            CASES.iter().any(|(n, _, _)| n == name),
            "unknown case {name:?}; `edgevisor matrix --list` shows them"
        );
    }
    let mut json = match &args.json {
        Some(path) => Some(
            std::fs::File::create(path)
                .with_context(|| format!("cannot create {}", path.display()))?,
        ),
        None => None,
    };
    say!("{}", header());
    let mut all_passed = true;
    for (name, speed, _) in CASES {
        let chosen = if args.only.is_empty() {
            matches!(speed, Speed::Fast) || args.long
        } else {
            args.only.iter().any(|o| o == name)
        };
        if !chosen {
            continue;
        }
        let dir = crate::swarm::lifetime::RunDir::temporary(
            &format!("edgevisor-matrix-{name}-"),
            args.keep,
        )?;
        let began = Instant::now();
        let line = match one(name, &binary, dir.path(), &args).await {
            Ok(outcome) => judge(name, outcome),
            Err(error) => Line {
                case: name.to_string(),
                verdict: "error".into(),
                tally: rig::Tally::default(),
                recovery_s: None,
                note: String::new(),
                failures: vec![format!("{error:#}")],
            },
        };
        all_passed &= line.verdict != "FAIL" && line.verdict != "error";
        say!("{}", row(&line, began.elapsed()));
        for failure in &line.failures {
            say!("#   {name}: {failure}");
        }
        if let Some(path) = dir.stays() {
            say!("#   {name}: kept in {}", path.display());
        }
        if let Some(file) = &mut json {
            use std::io::Write as _;
            writeln!(file, "{}", serde_json::to_string(&line)?)?;
        }
    }
    Ok(all_passed)
}

async fn one(name: &str, binary: &Path, dir: &Path, args: &MatrixArgs) -> anyhow::Result<Outcome> {
    match name {
        "journald-absent" => cases::journald_absent(binary, dir).await,
        "broker-killed" => cases::broker_killed(binary, dir).await,
        "broker-frozen" => cases::broker_frozen(binary, dir).await,
        "slow-broker" => cases::slow_broker(binary, dir).await,
        "partition-overflow" => cases::partition_overflow(binary, dir).await,
        "wrong-password" => cases::wrong_password(binary, dir).await,
        "untrusted-tls" => cases::untrusted_tls(binary, dir).await,
        "message-too-big" => cases::message_too_big(binary, dir).await,
        "refused-topic" => cases::refused_topic(binary, dir).await,
        "disk-full" => cases::disk_fault(binary, dir, cases::DiskFault::Full).await,
        "read-only-state" => cases::disk_fault(binary, dir, cases::DiskFault::ReadOnly).await,
        "disk-stays-full" => cases::disk_fault(binary, dir, cases::DiskFault::StaysFull).await,
        "clock-stepped" => cases::clock_stepped(binary, dir).await,
        "serial-replug" => cases::serial_replug(binary, dir).await,
        "silent-sensors" => cases::silent_sensors(binary, dir).await,
        "corrupt-storm" => cases::corrupt_storm(binary, dir).await,
        "gateway-sigkill" => cases::gateway_sigkill(binary, dir).await,
        "sigterm-under-load" => cases::sigterm_under_load(binary, dir).await,
        "broker-flapping" => cases::broker_flapping(binary, dir, Duration::from_secs(60)).await,
        "soak" => cases::soak(binary, dir, args.soak).await,
        _ => anyhow::bail!("unknown case {name}"),
    }
}

/// The verdict: the case's checks, then the books. Lost must be 0, or
/// under the drop policy equal to what the gateway reported dropped.
fn judge(name: &str, mut outcome: Outcome) -> Line {
    if let Some(why) = outcome.skipped.take() {
        return Line {
            case: name.to_string(),
            verdict: "skip".into(),
            tally: outcome.tally,
            recovery_s: None,
            note: why,
            failures: Vec::new(),
        };
    }
    let t = &outcome.tally;
    if !t.drained {
        outcome
            .failures
            .push("readings still missing a minute after the load stopped".into());
    }
    if let Some(reported) = outcome.expected_loss {
        if t.lost != reported {
            outcome.failures.push(format!(
                "lost {} but the gateway reported {reported} (dropped or set aside)",
                t.lost
            ));
        }
    } else if t.lost > 0 {
        outcome
            .failures
            .push(format!("{} accepted readings lost", t.lost));
    }
    Line {
        case: name.to_string(),
        verdict: if outcome.failures.is_empty() {
            "pass"
        } else {
            "FAIL"
        }
        .into(),
        recovery_s: outcome.recovery.map(|r| r.as_secs_f64()),
        tally: outcome.tally,
        note: outcome.note,
        failures: outcome.failures,
    }
}

fn header() -> String {
    format!(
        "{:<20} {:>9} {:>9} {:>7} {:>7} {:>6} {:>10} {:>8} {:>6}  {}",
        "case",
        "accepted",
        "delivered",
        "lost",
        "dropped",
        "dups",
        "recovery_s",
        "rss_mib",
        "took_s",
        "verdict"
    )
}

fn row(line: &Line, took: Duration) -> String {
    let t = &line.tally;
    let recovery = line
        .recovery_s
        .map_or_else(|| "-".to_string(), |r| format!("{r:.2}"));
    let mut out = format!(
        "{:<20} {:>9} {:>9} {:>7} {:>7} {:>6} {:>10} {:>8.1} {:>6.0}  {}",
        line.case,
        t.accepted,
        t.delivered,
        t.lost,
        t.dropped,
        t.duplicates,
        recovery,
        t.peak_rss_bytes as f64 / 1_048_576.0,
        took.as_secs_f64(),
        line.verdict
    );
    if !line.note.is_empty() {
        let _ = write!(out, "  ({})", line.note);
    }
    out
}
