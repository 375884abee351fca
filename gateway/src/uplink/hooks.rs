//! What other parts of the gateway may ask of the uplink's connection,
//! beyond the outbox and the retained values: a copy of every telemetry
//! message the broker acknowledged (for the Sparkplug edge node), and
//! topics to subscribe to on every connection (Home Assistant's birth
//! message). Both are off unless asked for, and then cost one map insert
//! per telemetry message and a channel send per batch of PUBACKs.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::outbox::{Class, Stored};

/// A telemetry message the broker acknowledged.
#[derive(Debug, Clone)]
pub struct Delivered {
    /// Its topic (`<prefix>/<gateway>/telemetry/<sensor>`).
    pub topic: Arc<str>,
    /// Its payload, the telemetry envelope.
    pub payload: Bytes,
    /// It waited in the outbox while the link was down: it was there when
    /// the connection that delivered it came up.
    pub historical: bool,
}

/// A message the broker sent on one of the subscribed topics.
#[derive(Debug, Clone)]
pub struct Heard {
    /// The topic it came on.
    pub topic: String,
    /// Its payload.
    pub payload: Bytes,
}

/// Listeners of the connection, given to [`super::Uplink::start`].
#[derive(Default)]
pub struct Hooks {
    /// Receives each batch of acknowledged telemetry. Never waited for: a
    /// batch that does not fit is dropped (and logged), so a slow consumer
    /// cannot hold up delivery.
    pub delivered: Option<mpsc::Sender<Vec<Delivered>>>,
    /// Topic filters subscribed to (QoS 0) on every connection.
    pub subscribe: Vec<String>,
    /// Receives what comes on `subscribe`, dropped when full.
    pub heard: Option<mpsc::Sender<Heard>>,
}

/// One connection's telemetry awaiting its PUBACK, kept for the
/// `delivered` listener.
pub struct Tap {
    sender: mpsc::Sender<Vec<Delivered>>,
    /// The outbox's last id when the connection came up: messages up to it
    /// are historical.
    backlog_through: u64,
    pending: HashMap<u64, Delivered>,
}

impl Tap {
    /// A tap for a new connection, or `None` without a listener.
    pub fn new(hooks: &Hooks, backlog_through: u64) -> Option<Self> {
        Some(Self {
            sender: hooks.delivered.clone()?,
            backlog_through,
            pending: HashMap::new(),
        })
    }

    /// A message was sent.
    pub fn sent(&mut self, message: &Stored) {
        if message.class == Class::Telemetry {
            self.pending.insert(
                message.id,
                Delivered {
                    topic: message.topic.clone(),
                    payload: message.payload.clone(),
                    historical: message.id <= self.backlog_through,
                },
            );
        }
    }

    /// The broker acknowledged these outbox messages.
    pub fn acked(&mut self, ids: &[u64]) {
        let batch: Vec<Delivered> = ids
            .iter()
            .filter_map(|id| self.pending.remove(id))
            .collect();
        if batch.is_empty() {
            return;
        }
        if let Err(mpsc::error::TrySendError::Full(batch)) = self.sender.try_send(batch) {
            tracing::warn!(
                messages = batch.len(),
                "the listener of delivered telemetry fell behind; its copy of these messages was dropped"
            );
        }
    }
}
