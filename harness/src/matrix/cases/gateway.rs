//! Faults of the gateway process itself.

use std::path::Path;
use std::time::{Duration, Instant};

use super::{healed, rig, Outcome};
use crate::matrix::rig::Setup;

/// Plain load with nothing wrong; the gateway runs without journald (no
/// `JOURNAL_STREAM`, no journal socket in its environment), logging to
/// stderr.
pub async fn journald_absent(binary: &Path, dir: &Path) -> anyhow::Result<Outcome> {
    let rig = rig(Setup::standard(), binary, dir).await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let logs = rig.logs();
    let mut out = Outcome::from(rig.finish().await);
    out.check(!logs.contains("panicked"), "the gateway panicked");
    out.note = "logs to stderr when journald is absent".into();
    Ok(out)
}

/// The gateway is SIGKILLed under load 20 times in a row and started
/// again each time, each life killed at a random moment after its status
/// reported what it accepted (so a loss of an accepted reading shows).
pub async fn gateway_sigkill(binary: &Path, dir: &Path) -> anyhow::Result<Outcome> {
    let mut rig = rig(Setup::standard(), binary, dir).await?;
    let mut boot = rig.accepting_boot_after(0, Duration::from_secs(10)).await;
    let mut unbooked = 0;
    for _ in 0..20 {
        // Each life's acceptances are on the books (its status said so)
        // before it dies, at a random moment after that.
        tokio::time::sleep(Duration::from_millis(fastrand::u64(0..1000))).await;
        rig.kill_gateway().await;
        rig.start_gateway()?;
        let next = rig
            .accepting_boot_after(boot, Duration::from_secs(10))
            .await;
        unbooked += u32::from(next == boot);
        boot = next;
    }
    let (mut out, _) = healed(rig, Duration::from_secs(1)).await;
    out.check(
        unbooked == 0,
        format!("{unbooked} lives never reported what they accepted"),
    );
    out.note = format!(
        "20 kills, {} duplicates (at-least-once)",
        out.tally.duplicates
    );
    Ok(out)
}

/// SIGTERM under load: the gateway must exit within 15 s (tree stop plus
/// at most 10 s of outbox drain); what it did not deliver is delivered by
/// the next start.
pub async fn sigterm_under_load(binary: &Path, dir: &Path) -> anyhow::Result<Outcome> {
    let mut setup = Setup::standard();
    setup.rate = 100.0;
    let mut rig = rig(setup, binary, dir).await?;
    let took = rig.terminate_gateway(Duration::from_secs(15)).await;
    rig.start_gateway()?;
    let (mut out, _) = healed(rig, Duration::ZERO).await;
    out.check(
        took.is_some(),
        "the gateway did not exit within 15 s of SIGTERM",
    );
    out.note = match took {
        Some(t) => format!("exited {:.2} s after SIGTERM", t.as_secs_f64()),
        None => "killed after 15 s".into(),
    };
    Ok(out)
}

/// An hour (`span`) at 1,000 sensors (a `tcp-listen` sensor), RSS sampled
/// every minute: it must stay flat.
pub async fn soak(binary: &Path, dir: &Path, span: Duration) -> anyhow::Result<Outcome> {
    let mut setup = Setup::standard();
    (setup.mix.tcp, setup.mix.listen, setup.rate) = (0, 1000, 1.0);
    let mut rig = rig(setup, binary, dir).await?;
    let began = Instant::now();
    let mut samples = Vec::new();
    while began.elapsed() < span {
        tokio::time::sleep(Duration::from_secs(60).min(span)).await;
        if let Some(g) = rig.gateway() {
            samples.push(g.rss_bytes());
        }
    }
    let mut out = Outcome::from(rig.finish().await);
    let mib = |b: u64| b as f64 / 1_048_576.0;
    let (first, last) = (
        samples.first().copied().unwrap_or(0),
        samples.last().copied().unwrap_or(0),
    );
    let max = samples.iter().copied().max().unwrap_or(0);
    out.check(
        mib(last) <= mib(first) * 1.2 + 2.0,
        format!("RSS grew from {:.1} to {:.1} MiB", mib(first), mib(last)),
    );
    out.note = format!(
        "RSS per minute (MiB): {}; max {:.1}",
        samples
            .iter()
            .map(|b| format!("{:.1}", mib(*b)))
            .collect::<Vec<_>>()
            .join(" "),
        mib(max)
    );
    Ok(out)
}

/// The wall clock is stepped +1 h for 8 s, put back, then -1 h for 8 s and
/// put back, under load (a Pi without a real-time clock whose NTP sync
/// lands late, or a wrong manual fix). Supervision runs on the monotonic
/// clock: no sensor may time out or restart over it, and nothing is lost.
/// Changing the clock needs root; it changes it for the whole machine, so
/// the case runs only with `--long`.
pub async fn clock_stepped(binary: &Path, dir: &Path) -> anyhow::Result<Outcome> {
    if !nix::unistd::geteuid().is_root() {
        return Ok(Outcome::skipped("needs root to set the clock"));
    }
    let rig = rig(Setup::standard(), binary, dir).await?;
    for step in [3600i64, -3600] {
        let (wall, mono) = (std::time::SystemTime::now(), Instant::now());
        let shifted = if step > 0 {
            wall + Duration::from_secs(step.unsigned_abs())
        } else {
            wall - Duration::from_secs(step.unsigned_abs())
        };
        set_clock(shifted).await?;
        tokio::time::sleep(Duration::from_secs(8)).await;
        set_clock(wall + mono.elapsed()).await?;
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    let (mut out, _) = healed(rig, Duration::ZERO).await;
    let crashes: u64 = out.tally.crashes.values().sum();
    out.check(
        crashes == 0,
        format!("{crashes} crash reports over a clock step"),
    );
    out.note = "clock +1 h and -1 h for 8 s each; no crash report".into();
    Ok(out)
}

async fn set_clock(to: std::time::SystemTime) -> anyhow::Result<()> {
    let since = to.duration_since(std::time::UNIX_EPOCH)?;
    let status = tokio::process::Command::new("date")
        .arg("-s")
        .arg(format!("@{}.{:09}", since.as_secs(), since.subsec_nanos()))
        .stdout(std::process::Stdio::null())
        .status()
        .await?;
    anyhow::ensure!(status.success(), "date -s failed");
    Ok(())
}
