//! The link between outbox ids and MQTT packet ids, and the task that drives
//! rumqttc's event loop.
//!
//! rumqttc tells neither when a given publish was acknowledged nor which
//! packet id it got, and drops its queue on reconnect (see
//! `../shared/notes/uplink.md`). So the feeder publishes under the session
//! lock and records each outbox id in a FIFO in the same order; the event
//! loop pops that FIFO at each `Outgoing::Publish(pkid)` and acks the outbox
//! row at the matching PUBACK. On a connection error, under the same lock, it
//! drains rumqttc's queue (`EventLoop::clean`, so nothing stale is sent on
//! the next connection) and forgets every mapping: the feeder starts over
//! from the outbox, oldest first.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rumqttc::{
    AsyncClient, ClientError, ConnectReturnCode, Event, EventLoop, Incoming, Outgoing, QoS,
};
use tokio::sync::Notify;

use crate::outbox::Outbox;

/// What travels in one publish: an outbox row, or a retained value that is
/// re-sent on every connection anyway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Outbox message id.
    Outbox(u64),
    /// Retained topic (status, state, tree).
    Retained,
}

#[derive(Default)]
struct State {
    connected: bool,
    epoch: u64,
    fifo: VecDeque<Origin>,
    inflight: HashMap<u16, Origin>,
}

/// Shared by the feeder, the event-loop task and the handle.
#[derive(Default)]
pub struct Session {
    state: Mutex<State>,
    /// Wakes the feeder: connected, disconnected, or an ack freed the window.
    pub changed: Notify,
    connected: AtomicBool,
    /// Counts event-loop turns; a watchdog can tell a live loop from a hung one.
    pub progress: AtomicU64,
    /// Messages acknowledged since start.
    pub acked: AtomicU64,
    /// Set by a clean stop, so the closed connection is not reported as lost.
    pub stopping: AtomicBool,
}

impl Session {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// True while a broker connection is up.
    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }

    /// The connection number and how many publishes await their ack.
    pub fn window(&self) -> (u64, bool, usize) {
        let s = self.state();
        (s.epoch, s.connected, s.fifo.len() + s.inflight.len())
    }

    /// Publishes if still on connection `epoch`; records `origin` in send
    /// order. Returns false when the connection changed or rumqttc's queue is
    /// full (the caller waits and retries).
    pub fn publish(
        &self,
        client: &AsyncClient,
        epoch: u64,
        origin: Origin,
        topic: &str,
        retain: bool,
        payload: Vec<u8>,
    ) -> bool {
        let mut s = self.state();
        if !s.connected || s.epoch != epoch {
            return false;
        }
        match client.try_publish(topic, QoS::AtLeastOnce, retain, payload) {
            Ok(()) => {
                s.fifo.push_back(origin);
                true
            }
            Err(ClientError::TryRequest(_) | ClientError::Request(_)) => false,
        }
    }

    fn on_connected(&self) {
        let mut s = self.state();
        s.connected = true;
        s.epoch += 1;
        s.fifo.clear();
        s.inflight.clear();
        self.connected.store(true, Ordering::Relaxed);
        drop(s);
        self.changed.notify_one();
    }

    fn on_sent(&self, pkid: u16) {
        let mut s = self.state();
        if let Some(origin) = s.fifo.pop_front() {
            s.inflight.insert(pkid, origin);
        }
    }

    fn on_acked(&self, pkid: u16) -> Option<Origin> {
        let origin = self.state().inflight.remove(&pkid);
        if origin.is_some() {
            self.acked.fetch_add(1, Ordering::Relaxed);
            self.changed.notify_one();
        }
        origin
    }

    fn on_lost(&self, eventloop: &mut EventLoop) {
        let mut s = self.state();
        s.connected = false;
        self.connected.store(false, Ordering::Relaxed);
        // Anything published after rumqttc's own clean-up but before we
        // took the lock is still in its channel: drain it too.
        eventloop.clean();
        eventloop.pending.clear();
        s.fifo.clear();
        s.inflight.clear();
        drop(s);
        self.changed.notify_one();
    }
}

/// Reconnect delay after `failures` consecutive failures: 250 ms doubling to
/// 30 s, +-20 % jitter, so a fleet does not reconnect in lock-step.
fn reconnect_delay(failures: u32) -> Duration {
    let base = Duration::from_millis(250).saturating_mul(1 << failures.min(8).saturating_sub(1));
    base.min(Duration::from_secs(30))
        .mul_f64(0.8 + 0.4 * fastrand::f64())
}

/// Drives the event loop forever: reconnects with backoff, maps packet ids,
/// acks outbox rows on PUBACK.
pub async fn drive(mut eventloop: EventLoop, session: Arc<Session>, outbox: Outbox) {
    let mut failures = 0u32;
    loop {
        session.progress.fetch_add(1, Ordering::Relaxed);
        match eventloop.poll().await {
            Ok(Event::Incoming(Incoming::ConnAck(ack)))
                if ack.code == ConnectReturnCode::Success =>
            {
                failures = 0;
                tracing::info!(broker = %eventloop.mqtt_options.broker_address().0, "upstream connected");
                session.on_connected();
            }
            Ok(Event::Incoming(Incoming::ConnAck(ack))) => {
                tracing::warn!(code = ?ack.code, "upstream broker refused the connection");
                session.on_lost(&mut eventloop);
                failures += 1;
                tokio::time::sleep(reconnect_delay(failures)).await;
            }
            Ok(Event::Outgoing(Outgoing::Publish(pkid))) => session.on_sent(pkid),
            Ok(Event::Incoming(Incoming::PubAck(ack))) => {
                if let Some(Origin::Outbox(id)) = session.on_acked(ack.pkid) {
                    outbox.ack(&[id]);
                }
            }
            Ok(_) => {}
            Err(error) => {
                if session.stopping.load(Ordering::Relaxed) {
                    return;
                }
                if session.is_connected() || failures == 0 {
                    tracing::warn!(%error, "upstream connection lost; unacknowledged messages stay in the outbox");
                }
                session.on_lost(&mut eventloop);
                failures += 1;
                tokio::time::sleep(reconnect_delay(failures)).await;
            }
        }
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
