//! `[sparkplug]`: a Sparkplug B 3.0 edge node beside the plain topics
//! (SPEC section 11, docs/sparkplug.md). The node is the gateway
//! (`spBv1.0/<group_id>/NBIRTH/<gateway.id>`), each sensor a device whose
//! metrics are its declared fields. Its data is the telemetry the upstream
//! broker acknowledged on the plain topics (the uplink's `delivered`
//! hook), so what waited in the outbox through an outage is flagged
//! historical; sensor states come from the tree's events.
//!
//! - `proto`: the Sparkplug B payload types (prost);
//! - `payload`: telemetry envelope and fields to metrics (pure);
//! - `device`, `node`: the births, deaths and `seq` (pure);
//! - `bdseq`: the bdSeq kept in `state_dir`;
//! - `inputs`: delivered telemetry, tree events and the stop;
//! - `session`: the MQTT session and its reconnects; `conn`: one
//!   connection; `commands`: NCMD and STATE payloads.

mod bdseq;
mod commands;
mod conn;
mod device;
mod inputs;
mod node;
pub mod payload;
pub mod proto;
mod session;

use std::sync::Arc;
use std::time::Duration;

use edgevisor_runtime::Event;
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinHandle;

pub use bdseq::FILE as BDSEQ_FILE;
pub use node::{NodeTopics, QUEUE, REBIRTH};

use crate::config::Config;
use crate::sensor::Gateway;
use crate::uplink::Delivered;

/// Batches of delivered telemetry the uplink may hand over before the node
/// takes them; beyond, the uplink drops the copy (and logs it).
pub const DELIVERED_BATCHES: usize = 1024;

/// Longest a clean stop waits for the NDEATH and DISCONNECT to go out.
const STOP_TIMEOUT: Duration = Duration::from_secs(3);

/// Why the edge node could not start.
#[derive(Debug, thiserror::Error)]
pub enum SparkplugError {
    /// The bdSeq file in `state_dir` cannot be read.
    #[error("cannot keep the Sparkplug bdSeq in state_dir: {0}")]
    BdSeq(#[from] std::io::Error),
}

/// The channel the uplink's `delivered` hook fills and the node empties.
pub fn delivered_channel() -> (mpsc::Sender<Vec<Delivered>>, mpsc::Receiver<Vec<Delivered>>) {
    mpsc::channel(DELIVERED_BATCHES)
}

/// A running edge node.
pub struct Sparkplug {
    stop: watch::Sender<bool>,
    fields: watch::Sender<node::Fields>,
    task: JoinHandle<()>,
}

impl Sparkplug {
    /// Starts the edge node of `config.sparkplug` (`None` when it is not
    /// set): `delivered` from [`delivered_channel`], given to the uplink's
    /// hooks; `events` from the tree.
    pub fn start(
        config: &Config,
        boot: u64,
        gateway: Arc<Gateway>,
        delivered: mpsc::Receiver<Vec<Delivered>>,
        events: broadcast::Receiver<Arc<Event>>,
    ) -> Result<Option<Self>, SparkplugError> {
        let Some(sparkplug) = &config.sparkplug else {
            return Ok(None);
        };
        let bdseq = bdseq::BdSeq::open(&config.gateway.state_dir)?;
        let topics = NodeTopics::new(&sparkplug.group_id, &config.gateway.id);
        let node = node::Node::new(topics, boot, node::Fields::of(config));
        let mut upstream = config.upstream.clone();
        upstream.client_id = format!("{}-spb", upstream.client_id);
        let settings = session::Settings {
            upstream,
            primary_host: sparkplug.primary_host.clone(),
        };
        let (stop, stopped) = watch::channel(false);
        let (fields, new_fields) = watch::channel(node::Fields::of(config));
        let inputs = inputs::Inputs::new(delivered, events, gateway, stopped, new_fields);
        let task = tokio::spawn(session::run(node, bdseq, settings, inputs));
        tracing::info!(group = %sparkplug.group_id, node = %config.gateway.id, "Sparkplug edge node starting");
        Ok(Some(Self { stop, fields, task }))
    }

    /// After a reload: the sensors' declared fields as `config` now has
    /// them. A device whose metrics change is born again (DBIRTH) with its
    /// next reading.
    pub fn reload(&self, config: &Config) {
        self.fields.send_replace(node::Fields::of(config));
    }

    /// Clean stop: the readings already delivered, NDEATH, then DISCONNECT
    /// (a clean DISCONNECT suppresses the Will, so NDEATH is sent by hand).
    /// Call it after the uplink drained, so the last telemetry is in.
    pub async fn stop(self) {
        self.stop.send_replace(true);
        let mut task = self.task;
        if tokio::time::timeout(STOP_TIMEOUT, &mut task).await.is_err() {
            tracing::warn!(
                "the Sparkplug session did not stop in time; its NDEATH is left to the Will"
            );
            task.abort();
        }
    }
}
