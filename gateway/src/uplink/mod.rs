//! The upstream MQTT connection (SPEC section 5): retained `status` with a
//! Last Will, retained `state/<sensor>` and `tree`, and everything the outbox
//! holds, each message acknowledged to the outbox only after its PUBACK.
//!
//! One task, on a thread and runtime of its own (so that thousands of
//! sensor tasks do not delay its turn after each PUBACK), owns the
//! connection and drives an I/O-free MQTT codec
//! (rumqttc's `mqttbytes`): it encodes every publish the window allows into
//! one buffer and writes it with one call, and applies the PUBACKs of one
//! read in one batch. rumqttc's own event loop flushes each packet and
//! forgets its queue on reconnect (`../shared/notes/uplink.md`); here the
//! outbox is the queue, so after every reconnect the uplink simply starts
//! again from the oldest unacknowledged message.
//!
//! - `options`: the CONNECT packet, Last Will, credentials, TLS;
//! - `connection`: TCP/TLS and the CONNECT/CONNACK handshake;
//! - `wire`: one connection's traffic;
//! - `keepalive`: when to ping and when to give up (pure, unit-tested);
//! - `session`: packet ids to outbox ids (pure, unit-tested);
//! - `feeder`: retained values, then the outbox, within the window;
//! - `refused`: messages the broker will not take, set aside and reported;
//! - `history`: when it last connected and the last error, for
//!   `edgevisor status`.

mod connection;
mod feeder;
mod history;
mod hooks;
mod keepalive;
mod options;
mod refused;
mod replay;
mod session;
mod wire;

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

pub use connection::CONNECT_TIMEOUT;
pub use history::LinkHistory;
pub use hooks::{Delivered, Heard, Hooks};
pub use options::OptionsError;
pub use refused::Reporter;

use crate::config::UpstreamConfig;
use crate::outbox::Outbox;
pub(crate) use connection::{open, read_packet, ConnectionError, Stream};
pub use feeder::Render;
use feeder::Retained;
pub(crate) use keepalive::{Due, KeepAlive};
pub(crate) use options::{connect_options, ConnectOptions};

/// Publishes awaiting their PUBACK at most. With 10,000 sensor
/// connections on two cores a PUBACK takes tens of milliseconds to come
/// back, and 512 capped delivery near 40,000 readings/s (docs/benchmarks.md,
/// Scale); 2,048 carries the 50,000/s that machine can offer.
pub const WINDOW: u16 = 2048;

/// Figures the connection task publishes for the handle.
#[derive(Default)]
struct Shared {
    connected: AtomicBool,
    in_flight: AtomicUsize,
    /// Counts connection-loop turns; a watchdog can tell a live loop from a
    /// hung one.
    progress: AtomicU64,
    /// Publishes acknowledged since start.
    acked: AtomicU64,
    /// Last connection and last error.
    history: history::History,
    /// Ends a reconnect backoff early (SIGHUP: the credentials may have
    /// been fixed on disk).
    retry_now: tokio::sync::Notify,
}

/// What the connection task works with.
struct Parts {
    options: ConnectOptions,
    /// What `options` were made from: made again before every connection
    /// attempt, so a password or CA file changed on disk is used without a
    /// restart.
    source: OptionsSource,
    outbox: Outbox,
    retained: Arc<Retained>,
    shared: Arc<Shared>,
    /// Reports a message set aside (`refused`).
    reporter: Reporter,
    /// `upstream.max_message_size`: larger messages are never sent.
    max_message_size: usize,
    /// `upstream.replay_rate` (`replay`).
    replay_rate: Option<u32>,
    /// Listeners beyond the outbox (`hooks`).
    hooks: Hooks,
}

/// The inputs of [`options::connect_options`].
struct OptionsSource {
    upstream: UpstreamConfig,
    will_topic: String,
    will: Vec<u8>,
}

impl Parts {
    /// Reads the credential and certificate files again. A file that cannot
    /// be used now (unreadable, or readable by every user) is reported and
    /// the options made last are kept.
    fn refresh_options(&mut self) {
        let s = &self.source;
        match options::connect_options(&s.upstream, s.will_topic.clone(), s.will.clone()) {
            Ok(options) => self.options = options,
            Err(error) => {
                tracing::warn!(%error, "cannot read the upstream credentials again; using the ones read before");
            }
        }
    }
}

/// A running uplink.
pub struct Uplink {
    shared: Arc<Shared>,
    retained: Arc<Retained>,
    outbox: Outbox,
    stop: watch::Sender<bool>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl Uplink {
    /// Connects (in the background, retrying with backoff) and starts
    /// draining `outbox`. `will` is the Last Will payload for `will_topic`.
    /// `reporter` builds the report about a message the broker will not
    /// take; `hooks` are the connection's other listeners.
    pub fn start(
        upstream: &UpstreamConfig,
        will_topic: String,
        will: Vec<u8>,
        outbox: Outbox,
        reporter: Reporter,
        hooks: Hooks,
    ) -> Result<Self, OptionsError> {
        let options = options::connect_options(upstream, will_topic.clone(), will.clone())?;
        let shared = Arc::new(Shared::default());
        let retained = Arc::new(Retained::default());
        let (stop, stopped) = watch::channel(false);
        let parts = Parts {
            options,
            source: OptionsSource {
                upstream: upstream.clone(),
                will_topic,
                will,
            },
            outbox: outbox.clone(),
            retained: retained.clone(),
            shared: shared.clone(),
            reporter,
            max_message_size: usize::try_from(upstream.max_message_size).unwrap_or(usize::MAX),
            replay_rate: upstream.replay_rate,
            hooks,
        };
        let task = spawn_own_thread(parts, stopped);
        Ok(Self {
            shared,
            retained,
            outbox,
            stop,
            task: Mutex::new(Some(task)),
        })
    }
    /// Sets a retained value (status, state, tree): published now if
    /// connected, and again after every reconnect.
    pub fn set_retained(&self, topic: String, payload: Vec<u8>) {
        self.retained.set(topic, payload);
    }

    /// Sets, or marks changed, a retained value that `render` makes from
    /// live state each time it is sent (the tree: large, and only worth
    /// keeping on the broker).
    pub fn set_retained_rendered(&self, topic: String, render: Render) {
        self.retained.set_rendered(topic, render);
    }

    /// While the broker cannot be reached: tries again now, with the
    /// credential files read again, instead of at the end of the backoff.
    /// For SIGHUP, after an operator fixed a password or certificate.
    pub fn retry_now(&self) {
        if !self.is_connected() {
            self.shared.retry_now.notify_one();
        }
    }

    /// True while the broker connection is up.
    pub fn is_connected(&self) -> bool {
        self.shared.connected.load(Ordering::Relaxed)
    }

    /// Connection-loop turns so far; stops growing if the loop hangs.
    pub fn progress(&self) -> u64 {
        self.shared.progress.load(Ordering::Relaxed)
    }

    /// Publishes acknowledged by the broker since start.
    pub fn acked(&self) -> u64 {
        self.shared.acked.load(Ordering::Relaxed)
    }

    /// When the link last connected and its last error.
    pub fn history(&self) -> LinkHistory {
        self.shared.history.get()
    }

    /// True when the outbox is empty, every retained value was sent and
    /// every publish was acknowledged.
    pub fn is_drained(&self) -> bool {
        self.is_connected()
            && self.shared.in_flight.load(Ordering::Relaxed) == 0
            && self.retained.all_sent()
            && self.outbox.stats().depth == 0
    }

    /// Clean stop: waits (until `deadline`) for the outbox to drain, sets
    /// retained `status` to `stopped_payload`, waits for its ack, then
    /// disconnects so the broker does not publish the Last Will.
    pub async fn stop(&self, status_topic: String, stopped_payload: Vec<u8>, deadline: Instant) {
        self.wait_drained(deadline).await;
        self.retained.set(status_topic, stopped_payload);
        self.wait_drained(deadline + Duration::from_secs(1)).await;
        self.stop.send_replace(true);
        let task = self
            .task
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(mut task) = task {
            // The task sends DISCONNECT and ends; a broker that does not take
            // it within the bound gets the connection dropped instead.
            if tokio::time::timeout(Duration::from_secs(2), &mut task)
                .await
                .is_err()
            {
                task.abort();
            }
        }
    }

    /// Waits until everything was acknowledged, or `deadline`, or the
    /// broker has been unreachable for a second: then nothing can drain, and
    /// the outbox keeps what is left for the next start.
    pub async fn wait_drained(&self, deadline: Instant) {
        let mut unreachable_since: Option<Instant> = None;
        while !self.is_drained() && Instant::now() < deadline {
            if self.is_connected() {
                unreachable_since = None;
            } else if unreachable_since.get_or_insert_with(Instant::now).elapsed()
                > Duration::from_secs(1)
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// Reconnect delay after `failures` consecutive failures: 250 ms doubling to
/// 30 s, +-20 % jitter, so a fleet does not reconnect in lock-step.
pub(crate) fn reconnect_delay(failures: u32) -> Duration {
    const RECONNECT: edgevisor_backoff::ExponentialBackoff =
        edgevisor_backoff::ExponentialBackoff::new(
            Duration::from_millis(250),
            Duration::from_secs(30),
            0.2,
        );
    RECONNECT.random_delay(failures)
}

/// Runs the connection loop on a thread of its own, with a single-threaded
/// runtime, and returns a task of the caller's runtime that ends with it.
/// Among thousands of sensor tasks on the shared runtime the uplink waited
/// its turn behind all of them after every PUBACK, and that wait, not the
/// cost of a reading, capped delivery with 10,000 connections. Falls back
/// to the shared runtime if the thread cannot be started.
fn spawn_own_thread(parts: Parts, stopped: watch::Receiver<bool>) -> JoinHandle<()> {
    let (done, finished) = tokio::sync::oneshot::channel::<()>();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build();
    let runtime = match runtime {
        Ok(runtime) => runtime,
        Err(error) => {
            tracing::warn!(%error, "uplink runs on the shared runtime: no runtime of its own");
            return tokio::spawn(drive(parts, stopped));
        }
    };
    arm_hang_hook(&runtime);
    let (parts_tx, parts_rx) = std::sync::mpsc::channel();
    let spawned = std::thread::Builder::new()
        .name("edgevisor-uplink".into())
        .spawn(move || {
            if let Ok((parts, stopped)) = parts_rx.recv() {
                runtime.block_on(drive(parts, stopped));
            }
            drop(done);
        });
    match spawned {
        Ok(_) => {
            let _ = parts_tx.send((parts, stopped));
            tokio::spawn(async move {
                let _ = finished.await;
            })
        }
        Err(error) => {
            tracing::warn!(%error, "uplink runs on the shared runtime: no thread of its own");
            tokio::spawn(drive(parts, stopped))
        }
    }
}

/// Debugging hook, like the root's (`crate::systemd::HANG_AFTER_ENV`):
/// `EDGEVISOR_TEST_HANG_UPLINK_AFTER=<duration>` blocks the uplink's
/// thread for good after that long, so its event loop stops turning while
/// the process lives on: for testing `/healthz` and watchdog setups. Never
/// set by the unit.
pub const HANG_UPLINK_AFTER_ENV: &str = "EDGEVISOR_TEST_HANG_UPLINK_AFTER";

fn arm_hang_hook(runtime: &tokio::runtime::Runtime) {
    let Some(after) = crate::systemd::hook_delay(HANG_UPLINK_AFTER_ENV) else {
        return;
    };
    runtime.spawn(async move {
        tokio::time::sleep(after).await;
        tracing::warn!("{HANG_UPLINK_AFTER_ENV}: hanging the uplink's thread on purpose");
        loop {
            std::thread::park();
        }
    });
}

/// Connects, serves the connection, and reconnects with backoff after a
/// failure, until a stop is asked for.
async fn drive(mut parts: Parts, mut stop: watch::Receiver<bool>) {
    let broker = format!("{}:{}", parts.options.host, parts.options.port);
    let mut failures = 0u32;
    let mut suspect = refused::Suspect::default();
    let mut last_first_unacked = None;
    let mut failure_log = history::FailureLog::default();
    loop {
        parts.shared.progress.fetch_add(1, Ordering::Relaxed);
        if *stop.borrow() {
            return;
        }
        if failures > 0 {
            parts.refresh_options();
        }
        let result: Result<(), connection::ConnectionError> = match connection::open(&parts.options)
            .await
        {
            Ok((stream, incoming)) => {
                failures = 0;
                failure_log.connected();
                tracing::info!(%broker, "upstream connected");
                parts.shared.history.connected();
                parts.shared.connected.store(true, Ordering::Relaxed);
                let served =
                    wire::serve(stream, incoming, &parts, &mut stop, last_first_unacked).await;
                parts.shared.connected.store(false, Ordering::Relaxed);
                parts.shared.in_flight.store(0, Ordering::Relaxed);
                match served {
                    Ok(()) => return,
                    Err(wire::Lost {
                        error,
                        first_unacked,
                        refused_alone,
                    }) => {
                        tracing::warn!(%broker, %error, "upstream connection lost; unacknowledged messages stay in the outbox");
                        failure_log.warned();
                        last_first_unacked = first_unacked;
                        if let Some(id) = suspect.lost(first_unacked.filter(|_| refused_alone)) {
                            let why = format!(
                                "the broker closed the connection {} times in a row when it was the only message in flight (over the broker's message size limit? set upstream.max_message_size to that limit)",
                                refused::LOSSES_BEFORE_SET_ASIDE
                            );
                            refused::set_aside(&parts.outbox, &parts.reporter, id, None, &why);
                        }
                        // Counted once, below: the first retry comes after
                        // the first step of the backoff, as after a refusal.
                        Err(error)
                    }
                }
            }
            Err(error) => Err(error),
        };
        if let Err(error) = result {
            parts.shared.history.failed(&error);
            failures += 1;
            let delay = reconnect_delay(failures);
            failure_log.failed(&broker, &error, delay);
            tokio::select! {
                _ = wait_turning(delay, &parts.shared.progress) => {}
                _ = parts.shared.retry_now.notified() => {
                    tracing::info!(%broker, "SIGHUP: trying upstream again now");
                }
                _ = stop.changed() => {}
            }
        }
    }
}

/// Sleeps `delay`, turning the progress counter every second: waiting out
/// a reconnect backoff is the loop at work, and `/healthz` allows it only
/// `2 * keep_alive` between turns.
async fn wait_turning(delay: Duration, progress: &AtomicU64) {
    let until = Instant::now() + delay;
    while Instant::now() < until {
        progress.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep_until(until.min(Instant::now() + Duration::from_secs(1))).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconnect_delay_grows_and_is_capped() {
        for _ in 0..50 {
            let first = reconnect_delay(1);
            assert!(first >= Duration::from_millis(200) && first <= Duration::from_millis(300));
            assert!(reconnect_delay(30) <= Duration::from_secs(36));
            assert!(reconnect_delay(30) >= Duration::from_secs(24));
        }
    }
}
