//! The upstream MQTT connection (SPEC section 5): retained `status` with a
//! Last Will, retained `state/<sensor>` and `tree`, and everything the outbox
//! holds, each message acknowledged to the outbox only after its PUBACK.
//!
//! - `options`: client options, Last Will, credentials, TLS;
//! - `session`: packet ids to outbox ids, and the event-loop task;
//! - `feeder`: retained values, then the outbox, within the window;
//! - `topics`: topic names.

mod feeder;
mod options;
mod session;
pub mod topics;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use rumqttc::AsyncClient;
use tokio::task::JoinHandle;
use tokio::time::Instant;

pub use options::OptionsError;
pub use topics::Topics;

use crate::config::UpstreamConfig;
use crate::outbox::Outbox;
use feeder::Retained;
use session::Session;

/// Publishes awaiting their PUBACK at most (rumqttc's inflight limit too).
pub const WINDOW: u16 = 512;

/// A running uplink.
pub struct Uplink {
    client: AsyncClient,
    session: Arc<Session>,
    retained: Arc<Retained>,
    outbox: Outbox,
    tasks: Vec<JoinHandle<()>>,
}

impl Uplink {
    /// Connects (in the background, retrying with backoff) and starts
    /// draining `outbox`. `will` is the Last Will payload for `will_topic`.
    pub fn start(
        upstream: &UpstreamConfig,
        will_topic: String,
        will: Vec<u8>,
        outbox: Outbox,
    ) -> Result<Self, OptionsError> {
        let options = options::mqtt_options(upstream, will_topic, will)?;
        let (client, eventloop) = AsyncClient::new(options, usize::from(WINDOW) * 2);
        let session = Arc::new(Session::default());
        let retained = Arc::new(Retained::default());
        let tasks = vec![
            tokio::spawn(session::drive(eventloop, session.clone(), outbox.clone())),
            tokio::spawn(feeder::feed(
                session.clone(),
                client.clone(),
                outbox.clone(),
                retained.clone(),
            )),
        ];
        Ok(Self {
            client,
            session,
            retained,
            outbox,
            tasks,
        })
    }

    /// Sets a retained value (status, state, tree): published now if
    /// connected, and again after every reconnect.
    pub fn set_retained(&self, topic: String, payload: Vec<u8>) {
        self.retained.set(topic, payload);
    }

    /// True while the broker connection is up.
    pub fn is_connected(&self) -> bool {
        self.session.is_connected()
    }

    /// Event-loop turns so far; stops growing if the loop hangs.
    pub fn progress(&self) -> u64 {
        self.session.progress.load(Ordering::Relaxed)
    }

    /// Messages acknowledged by the broker since start.
    pub fn acked(&self) -> u64 {
        self.session.acked.load(Ordering::Relaxed)
    }

    /// True when the outbox is empty, every retained value was sent and
    /// every publish was acknowledged.
    pub fn is_drained(&self) -> bool {
        let (_, connected, in_window) = self.session.window();
        connected && in_window == 0 && self.retained.all_sent() && self.outbox.stats().depth == 0
    }

    /// Clean stop: waits (until `deadline`) for the outbox to drain, sets
    /// retained `status` to `stopped_payload`, waits for its ack, then
    /// disconnects so the broker does not publish the Last Will.
    pub async fn stop(&self, status_topic: String, stopped_payload: Vec<u8>, deadline: Instant) {
        self.wait_drained(deadline).await;
        self.retained.set(status_topic, stopped_payload);
        self.wait_drained(deadline + Duration::from_secs(1)).await;
        self.session.stopping.store(true, Ordering::Relaxed);
        let _ = self.client.try_disconnect();
        tokio::time::sleep(Duration::from_millis(50)).await;
        for task in &self.tasks {
            task.abort();
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
