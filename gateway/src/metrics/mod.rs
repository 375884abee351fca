//! `[metrics]` (SPEC section 10): OpenMetrics text at `GET /metrics` and a
//! health check at `GET /healthz`, served on the service's runtime.
//!
//! Every figure is counted where its event happens and only read at a
//! scrape:
//!
//! - `tree`: the tree's events (up, quarantined, crashes by reason),
//!   counted by the reports task beside the log line of each crash;
//! - `live`: the sensors' counters, the outbox's and the uplink's figures,
//!   kept by their owners;
//! - `health`: the `/healthz` rule;
//! - `http`: hyper, two routes.

mod health;
mod http;
mod live;
mod tree;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use edgevisor_runtime::SupervisorHandle;
use prometheus_client::registry::Registry;
use tokio::time::Instant;

pub use live::Live;
pub use tree::TreeMetrics;

use crate::shutdown::Background;
use crate::systemd::probe_root;
use crate::uplink::Uplink;
use health::UplinkTurns;

/// Longest the root may take to answer the health check's ping.
const ROOT_PROBE: Duration = Duration::from_secs(1);

/// What the two routes read.
pub struct Endpoint {
    registry: Registry,
    root: SupervisorHandle,
    uplink: Arc<Uplink>,
    turns: Mutex<UplinkTurns>,
}

impl Endpoint {
    /// The routes' sources: the tree's figures, the live parts, the root
    /// and the uplink's keep-alive (which bounds a live loop's silence).
    pub fn new(
        tree: &TreeMetrics,
        live: Live,
        root: SupervisorHandle,
        keep_alive: Duration,
    ) -> Self {
        let uplink = live.uplink.clone();
        let mut registry = Registry::with_prefix("edgevisor");
        tree.register(&mut registry);
        registry.register_collector(Box::new(live));
        let turns = UplinkTurns::new(keep_alive);
        let endpoint = Self {
            registry,
            root,
            uplink,
            turns: Mutex::new(turns),
        };
        endpoint.uplink_idle(); // the first look starts the clock
        endpoint
    }

    /// The OpenMetrics text of every family.
    pub fn scrape(&self) -> Result<String, std::fmt::Error> {
        let mut body = String::with_capacity(16 * 1024);
        prometheus_client::encoding::text::encode(&mut body, &self.registry)?;
        Ok(body)
    }

    /// `/healthz`'s answer.
    pub async fn health(&self) -> Result<String, String> {
        let root = probe_root(&self.root, ROOT_PROBE).await;
        let (idle, limit) = self.uplink_idle();
        health::verdict(root, idle, limit)
    }

    fn uplink_idle(&self) -> (Duration, Duration) {
        let mut turns = self.turns.lock().unwrap_or_else(PoisonError::into_inner);
        let idle = turns.idle_for(self.uplink.progress(), Instant::now());
        (idle, turns.limit())
    }
}

/// Serves `endpoint` on `listen` until the service stops.
pub fn start(listen: SocketAddr, endpoint: Endpoint, background: &mut Background) {
    let endpoint = Arc::new(endpoint);
    background.spawn_loop("metrics", http::serve(listen, endpoint));
}
