//! The fault matrix's cases. Each sets up a [`Rig`], injects its fault
//! under load, lets it heal, and returns what the books say plus the case's
//! own checks (a clear log line, no hot loop, a drop count that matches).

//!
//! - `broker`: the upstream side (killed, frozen, flapping, slow,
//!   partitioned, refusing the password, the certificate, a message or a
//!   topic);
//! - `sensors`: the sensor side (unplugged, silent, corrupt);
//! - `gateway`: the gateway itself (killed, stopped, no journald, the clock
//!   stepped, an hour's soak);
//! - `storage`: its state directory (full, read-only).

mod broker;
mod gateway;
mod sensors;
mod storage;

pub use broker::*;
pub use gateway::*;
pub use sensors::*;
pub use storage::*;

use std::path::Path;
use std::time::Duration;

use super::rig::{Rig, Setup, Tally};

/// The fault is over: measures the recovery (`Rig::catch_up`, at most a
/// minute), lets the load run `after`, then drains and adds up. Returns
/// the outcome and every gateway log of the case.
async fn healed(rig: Rig, after: Duration) -> (Outcome, String) {
    let recovery = rig.catch_up(Duration::from_secs(60)).await;
    tokio::time::sleep(after).await;
    let logs = rig.logs();
    let mut out = Outcome::from(rig.finish().await);
    out.recovery = recovery;
    (out, logs)
}

/// What a case established.
#[derive(Debug, Default)]
pub struct Outcome {
    /// The books once drained.
    pub tally: Tally,
    /// From the end of the fault until everything accepted by then arrived.
    pub recovery: Option<Duration>,
    /// Under a documented policy (drop-oldest at the outbox bound, a
    /// message the broker refuses set aside with a report), the loss the
    /// gateway itself reported: the books must show exactly this loss.
    pub expected_loss: Option<u64>,
    /// The case's own checks that failed.
    pub failures: Vec<String>,
    /// One line of what was seen, for the report.
    pub note: String,
    /// Why the case could not run here (not a failure).
    pub skipped: Option<String>,
}

impl Outcome {
    fn from(tally: Tally) -> Self {
        Self {
            tally,
            ..Self::default()
        }
    }

    fn skipped(why: impl Into<String>) -> Self {
        Self {
            skipped: Some(why.into()),
            ..Self::default()
        }
    }

    fn check(&mut self, ok: bool, what: impl Into<String>) {
        if !ok {
            self.failures.push(what.into());
        }
    }
}

/// The load every case runs under before its fault.
const WARM_UP: Duration = Duration::from_secs(3);

async fn rig(setup: Setup, binary: &Path, dir: &Path) -> anyhow::Result<Rig> {
    let rig = Rig::start(setup, binary, dir).await?;
    rig.first_delivery(Duration::from_secs(15)).await?;
    tokio::time::sleep(WARM_UP).await;
    Ok(rig)
}
