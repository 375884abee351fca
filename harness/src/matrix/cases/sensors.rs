//! Faults on the sensor side: ports unplugged, sensors silent or corrupt.

use std::path::Path;
use std::time::{Duration, Instant};

use super::{healed, rig, Outcome};
use crate::matrix::rig::Setup;
use crate::sim::Fault;
use crate::swarm::fleet::Kind;

/// Four serial sensors on ptys are unplugged and re-plugged every 2 s for
/// 10 s, six TCP sensors beside them.
pub async fn serial_replug(binary: &Path, dir: &Path) -> anyhow::Result<Outcome> {
    let mut setup = Setup::standard();
    (setup.mix.tcp, setup.mix.serial) = (6, 4);
    let rig = rig(setup, binary, dir).await?;
    for _ in 0..5 {
        for sim in rig.fleet.sims.iter().filter(|s| s.kind == Kind::Serial) {
            sim.handle().inject(Fault::Remove);
            sim.handle().inject(Fault::Replug);
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let (mut out, _) = healed(rig, Duration::from_secs(3)).await;
    let io = out.tally.crashes.get("io").copied().unwrap_or(0)
        + out.tally.crashes.get("eof").copied().unwrap_or(0);
    out.check(io > 0, "no io or eof crash report for an unplugged port");
    out.note = format!("{io} io/eof crash reports for 20 unplugs");
    Ok(out)
}

/// Half the sensors fall silent for 12 s, past their 10 s `read_timeout`.
pub async fn silent_sensors(binary: &Path, dir: &Path) -> anyhow::Result<Outcome> {
    let rig = rig(Setup::standard(), binary, dir).await?;
    for sim in rig.fleet.sims.iter().step_by(2) {
        sim.handle().inject(Fault::Silence(Duration::from_secs(12)));
    }
    tokio::time::sleep(Duration::from_secs(14)).await;
    let (mut out, _) = healed(rig, Duration::ZERO).await;
    let timeouts = out.tally.crashes.get("timeout").copied().unwrap_or(0);
    out.check(
        timeouts >= 5,
        format!("{timeouts} timeout crash reports for 5 silent sensors"),
    );
    out.note = format!("{timeouts} timeout crash reports");
    Ok(out)
}

/// Half the sensors send a corrupt frame every 100 ms for 6 s: crash
/// reports and quarantines for them, nothing for the other half.
pub async fn corrupt_storm(binary: &Path, dir: &Path) -> anyhow::Result<Outcome> {
    let rig = rig(Setup::standard(), binary, dir).await?;
    let began = Instant::now();
    while began.elapsed() < Duration::from_secs(6) {
        for sim in rig.fleet.sims.iter().step_by(2) {
            sim.handle().inject(Fault::BadChecksum);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let recovery = rig.catch_up(Duration::from_secs(30)).await;
    let healthy: Vec<String> = rig
        .fleet
        .sims
        .iter()
        .skip(1)
        .step_by(2)
        .map(|s| s.sensor.clone())
        .collect();
    let hit_healthy = {
        let books = rig
            .account
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        books
            .crashes_by_sensor
            .keys()
            .filter(|(sensor, _)| healthy.contains(sensor))
            .count()
    };
    let mut out = Outcome::from(rig.finish().await);
    out.recovery = recovery;
    let corrupt = out.tally.crashes.get("corrupt_frame").copied().unwrap_or(0);
    out.check(corrupt > 0, "no corrupt_frame crash report");
    out.check(
        hit_healthy == 0,
        format!("{hit_healthy} healthy sensors got crash reports"),
    );
    out.note = format!("{corrupt} corrupt_frame reports, healthy half untouched");
    Ok(out)
}
