//! Clock honesty: a Raspberry Pi has no real-time clock, so until NTP has
//! set it the system clock may be days off (or the image's build date),
//! and every `ts` with it. Until the clock is known to be synchronised,
//! telemetry carries `"clock":"unsynced"`; `(boot, seq)` orders readings
//! whatever `ts` says.
//!
//! Known how:
//! - `/run/systemd/timesync/synchronized` exists (systemd-timesyncd
//!   creates it once it has set the clock): synchronised;
//! - otherwise `timedatectl show -p NTPSynchronized` (systemd reads the
//!   kernel's flag, so chrony and ntpd count too): `yes` or `no`;
//! - `EDGEVISOR_CLOCK=synced|unsynced` overrides both, for a box whose
//!   time source systemd does not see.
//!
//! When none of them can tell (no systemd), nothing is claimed. The check
//! runs at start and every 30 s until the clock is synchronised.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::shutdown::Background;

/// Whether the clock is known not to be synchronised.
static UNSYNCED: AtomicBool = AtomicBool::new(false);

/// systemd-timesyncd's mark of a synchronised clock.
const TIMESYNC_MARK: &str = "/run/systemd/timesync/synchronized";
/// The override's variable.
const OVERRIDE: &str = "EDGEVISOR_CLOCK";
/// Time between two checks while the clock is not synchronised.
const CHECK_EVERY: Duration = Duration::from_secs(30);

/// True while the clock is known not to be synchronised: telemetry then
/// says so. One relaxed load per reading.
pub fn unsynced() -> bool {
    UNSYNCED.load(Ordering::Relaxed)
}

/// What the clock's state is, when something can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Synced,
    Unsynced,
}

/// Checks the clock once, before the first reading is stamped (at most
/// 2 s, when systemd is slow to answer).
pub fn check() {
    UNSYNCED.store(state() == Some(State::Unsynced), Ordering::Relaxed);
}

/// Starts watching the clock (in `background`) until it is synchronised.
pub fn watch(background: &mut Background) {
    background.spawn_loop("clock", async {
        let mut warned = false;
        loop {
            let known = tokio::task::spawn_blocking(state).await.ok().flatten();
            match known {
                Some(State::Unsynced) => {
                    if !warned {
                        tracing::warn!("the system clock is not synchronised; telemetry carries \"clock\":\"unsynced\" until it is");
                        warned = true;
                    }
                    UNSYNCED.store(true, Ordering::Relaxed);
                }
                _ => {
                    UNSYNCED.store(false, Ordering::Relaxed);
                    if warned && known == Some(State::Synced) {
                        tracing::info!("the system clock is synchronised");
                    }
                    return;
                }
            }
            tokio::time::sleep(CHECK_EVERY).await;
        }
    });
}

/// What can be known of the clock now. Blocks for at most 2 s.
fn state() -> Option<State> {
    match std::env::var(OVERRIDE).as_deref() {
        Ok("synced") => return Some(State::Synced),
        Ok("unsynced") => return Some(State::Unsynced),
        _ => {}
    }
    if Path::new(TIMESYNC_MARK).exists() {
        return Some(State::Synced);
    }
    // On a thread of its own, so a systemd that does not answer costs the
    // caller 2 s, not a hang.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let output = std::process::Command::new("timedatectl")
            .args(["show", "--property=NTPSynchronized", "--value"])
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .output();
        let _ = tx.send(output);
    });
    let output = rx.recv_timeout(Duration::from_secs(2)).ok()?.ok()?;
    if !output.status.success() {
        return None;
    }
    match String::from_utf8_lossy(&output.stdout).trim() {
        "yes" => Some(State::Synced),
        "no" => Some(State::Unsynced),
        _ => None,
    }
}
