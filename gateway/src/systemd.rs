//! systemd integration (SPEC section 7) through `sd_notify`: `READY=1` once
//! the tree is up, a `STATUS=` line on change (at most once a second),
//! `WATCHDOG=1` only while the gateway is really alive, `RELOADING=1` /
//! `READY=1` around SIGHUP and `STOPPING=1` at shutdown. Without
//! `NOTIFY_SOCKET` (not under systemd) nothing is sent and no task runs.
//!
//! The heartbeat pings at half of `WATCHDOG_USEC`, from a tokio task, and
//! only when (see `liveness`):
//! - the root supervisor's loop answers a probe (a deadlocked or stuck root
//!   stops the pings);
//! - the uplink's event loop turned within `max(2 x keep_alive, 60 s)`;
//! - the runtime runs the task at all (a stalled runtime stops the pings).
//!
//! Debugging hook: `EDGEVISOR_TEST_HANG_AFTER=<duration>` (e.g. `2s`) makes
//! the root supervisor hang for real after that long, by asking it to start
//! a child (`debug-hang`) whose start phase never ends: the root then serves
//! neither crashes nor commands, the heartbeat's probe goes unanswered and
//! the pings stop while the process lives on. SIGTERM still stops it. It is
//! for testing watchdog setups (`systemd-run -p WatchdogSec=...`) and is
//! never set by the unit.

mod liveness;
mod sockets;
mod status;

use std::sync::Arc;
use std::time::Duration;

use edgevisor_runtime::{ChildSpec, Crash, Running, SupervisorHandle};
use sd_notify::NotifyState;
use tokio::time::Instant;

pub use liveness::{probe_root, RootHealth, UplinkWatch};
pub use sockets::InheritedSockets;
pub use status::Summary;

use crate::outbox::Outbox;
use crate::shutdown::Background;
use crate::uplink::Uplink;

/// The environment variable of the debugging hook (see the module doc).
pub const HANG_AFTER_ENV: &str = "EDGEVISOR_TEST_HANG_AFTER";

/// Id of the child the debugging hook starts; left out of `STATUS=`.
const HANG_CHILD: &str = "debug-hang";

/// `STATUS=` is sent at most this often.
const STATUS_EVERY: Duration = Duration::from_secs(1);

/// What the service's notifier tasks watch.
pub struct Watched {
    /// The root supervisor.
    pub root: SupervisorHandle,
    /// The upstream connection.
    pub uplink: Arc<Uplink>,
    /// The outbox (for its depth).
    pub outbox: Outbox,
    /// The gateway context (for which paths are groups and buses).
    pub gateway: Arc<crate::sensor::Gateway>,
    /// The upstream keep-alive, which bounds a live event loop's silence.
    pub keep_alive: Duration,
}

/// The service's link to systemd. Inert when not under systemd.
pub struct Systemd {
    enabled: bool,
}

impl Systemd {
    /// Starts the notifier: `READY=1` and the first `STATUS=` as soon as the
    /// root supervisor serves (its initial start is done), then status
    /// updates and, if systemd set `WATCHDOG_USEC`, the heartbeat. Also arms
    /// the debugging hook if its variable is set. Its tasks run in
    /// `background` and stop with it; the heartbeat keeps pinging through
    /// the drain at a clean stop, so a long drain is not taken for a hang.
    pub fn start(watched: Watched, background: &mut Background) -> Self {
        arm_hang_hook(&watched.root, background);
        let enabled = std::env::var_os("NOTIFY_SOCKET").is_some();
        if !enabled {
            return Self { enabled };
        }
        let watched = Arc::new(watched);
        background.spawn_loop("systemd status", ready_then_status(watched.clone()));
        if let Some(timeout) = sd_notify::watchdog_enabled() {
            tracing::info!(watchdog = ?timeout, "systemd watchdog enabled");
            background.spawn_loop("systemd watchdog", heartbeat(watched, timeout));
        }
        Self { enabled }
    }

    /// SIGHUP received: `RELOADING=1` (with the `MONOTONIC_USEC` newer
    /// systemd versions require).
    pub fn reloading(&self) {
        if self.enabled {
            let mut states = vec![NotifyState::Reloading];
            if let Ok(now) = NotifyState::monotonic_usec_now() {
                states.push(now);
            }
            send(&states);
        }
    }

    /// Reload finished (taken or rejected): `READY=1` again.
    pub fn reloaded(&self) {
        if self.enabled {
            send(&[NotifyState::Ready]);
        }
    }

    /// Shutdown begins: `STOPPING=1`.
    pub fn stopping(&self) {
        if self.enabled {
            send(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
        }
    }
}

fn send(states: &[NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::debug!(error = %e, "sd_notify failed");
    }
}

fn summary(watched: &Watched) -> Summary {
    let mut summary = Summary::new(
        &watched.root.live(),
        &watched.gateway.layout(),
        &[HANG_CHILD],
        watched.outbox.stats().depth,
        watched.uplink.is_connected(),
    );
    summary.down = watched.uplink.history().down();
    summary
}

/// Waits for the tree to be up, says so, then keeps `STATUS=` current.
async fn ready_then_status(watched: Arc<Watched>) {
    loop {
        match probe_root(&watched.root, Duration::from_secs(1)).await {
            RootHealth::Serving => break,
            RootHealth::Finished => return,
            RootHealth::Unresponsive => {}
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut last = summary(&watched);
    let line = last.line();
    send(&[NotifyState::Ready, NotifyState::Status(&line)]);
    tracing::info!(status = %line, "tree up; told systemd READY=1");
    let mut tick = tokio::time::interval(STATUS_EVERY);
    loop {
        tick.tick().await;
        let now = summary(&watched);
        if now != last {
            send(&[NotifyState::Status(&now.line())]);
            last = now;
        }
    }
}

/// Pings the watchdog every `timeout / 2` while everything is alive; says
/// once in the log what stopped the pings, and when they resume.
async fn heartbeat(watched: Arc<Watched>, timeout: Duration) {
    let every = timeout / 2;
    // Leave the probe part of the interval, so a slow answer still pings
    // in time; cap it so a long watchdog still notices a hang promptly.
    let probe_timeout = (every / 2).min(Duration::from_secs(5));
    let mut uplink = UplinkWatch::new(
        watched.keep_alive,
        watched.uplink.progress(),
        Instant::now(),
    );
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut withheld = false;
    loop {
        tick.tick().await;
        let root = probe_root(&watched.root, probe_timeout).await;
        let uplink_alive = uplink.observe(watched.uplink.progress(), Instant::now());
        if root == RootHealth::Serving && uplink_alive {
            send(&[NotifyState::Watchdog]);
            if withheld {
                tracing::info!("watchdog pings resumed");
                withheld = false;
            }
        } else if !withheld {
            tracing::error!(root = ?root, uplink_alive, "not pinging the systemd watchdog: the gateway looks hung");
            withheld = true;
        }
    }
}

/// The delay a debugging hook's environment variable `name` sets, if it
/// is set and reads as a duration (a bad one is logged and ignored).
pub fn hook_delay(name: &str) -> Option<Duration> {
    let value = std::env::var_os(name)?;
    match humantime::parse_duration(&value.to_string_lossy()) {
        Ok(after) => Some(after),
        Err(e) => {
            tracing::warn!(error = %e, "ignoring {name}");
            None
        }
    }
}

/// The debugging hook of the module doc.
fn arm_hang_hook(root: &SupervisorHandle, background: &mut Background) {
    let Some(after) = hook_delay(HANG_AFTER_ENV) else {
        return;
    };
    let root = root.clone();
    background.spawn_loop("debug hang hook", async move {
        tokio::time::sleep(after).await;
        tracing::warn!("{HANG_AFTER_ENV}: hanging the root supervisor on purpose");
        let stuck = ChildSpec::with_start(HANG_CHILD, |_| {
            std::future::pending::<Result<Running, Crash>>()
        });
        let _ = root.start_child(stuck).await;
    });
}
