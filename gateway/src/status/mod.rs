//! `edgevisor status`: the running service answers on a Unix socket with
//! one JSON document (the live tree, the uplink, the outbox, the last crash
//! reports) and closes; the CLI prints it as text or as JSON. No broker is
//! needed, so it works on the box while the uplink is down.
//!
//! - `socket`: where the socket lives, and the service's side (bind with
//!   restrictive permissions, answer, remove at a clean stop);
//! - `client`: the CLI's side (find the socket, read, print, `--watch`);
//! - `render`: the document as text that fits 80 columns (pure).
//!
//! The document's figures are taken, not recomputed: the tree from the root
//! supervisor's snapshot (the same JSON as the retained `tree` topic), the
//! link from the uplink's history, the outbox from `Outbox::stats`, the
//! crashes from the ring filled where reports are made.

mod client;
mod render;
mod socket;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::SystemTime;

use edgevisor_runtime::SupervisorHandle;
use serde::Serialize;
use serde_json::value::RawValue;

pub use client::{command, upstream_line, Options, StatusError};
pub use render::render;
pub use socket::{service_socket, start, BindError, RUNTIME_DIR, SOCKET_FILE};

use crate::outbox::Outbox;
use crate::payload;
use crate::reports::RecentCrashes;
use crate::tree_payload::TreePayload;
use crate::uplink::Uplink;

/// Crash reports the service keeps for `status`.
pub const RECENT_CRASHES: usize = 10;

/// Where the document's figures come from.
pub struct Sources {
    /// `gateway.id`.
    pub gateway: String,
    /// This start's boot number.
    pub boot: u64,
    /// When the service started (RFC 3339).
    pub started_at: String,
    /// The upstream broker URL, as configured.
    pub broker: String,
    /// The root supervisor.
    pub root: SupervisorHandle,
    /// The upstream connection.
    pub uplink: Arc<Uplink>,
    /// The outbox.
    pub outbox: Outbox,
    /// The last crash reports.
    pub crashes: Arc<RecentCrashes>,
}

#[derive(Serialize)]
struct Document<'a> {
    gateway: &'a str,
    boot: u64,
    version: &'static str,
    pid: u32,
    started_at: &'a str,
    now: String,
    uplink: UplinkView<'a>,
    outbox: OutboxView,
    tree: TreePayload<'a>,
    crashes: Vec<&'a RawValue>,
}

#[derive(Serialize)]
struct UplinkView<'a> {
    broker: &'a str,
    connected: bool,
    connected_at: Option<String>,
    connects: u64,
    last_error: Option<String>,
    last_error_at: Option<String>,
    /// While down: since when and why, as `STATUS=` says it.
    down: Option<String>,
    acked: u64,
}

#[derive(Serialize)]
struct OutboxView {
    depth: u64,
    bytes: u64,
    oldest_age_ms: Option<u64>,
    dropped: BTreeMap<String, u64>,
    storage_error: Option<String>,
}

/// The status document now, as the socket sends it.
pub fn document(sources: &Sources) -> Vec<u8> {
    let history = sources.uplink.history();
    let down = history.down().filter(|_| !sources.uplink.is_connected());
    let (last_error_at, last_error) = match history.last_error {
        Some((at, error)) => (Some(payload::timestamp(at)), Some(error)),
        None => (None, None),
    };
    let stats = sources.outbox.stats();
    let crashes = sources.crashes.list();
    let snapshot = sources.root.snapshot();
    let doc = Document {
        gateway: &sources.gateway,
        boot: sources.boot,
        version: env!("CARGO_PKG_VERSION"),
        pid: std::process::id(),
        started_at: &sources.started_at,
        now: payload::timestamp(SystemTime::now()),
        uplink: UplinkView {
            broker: &sources.broker,
            connected: sources.uplink.is_connected(),
            connected_at: history.connected_at.map(payload::timestamp),
            connects: history.connects,
            last_error,
            last_error_at,
            down,
            acked: sources.uplink.acked(),
        },
        outbox: OutboxView {
            depth: stats.depth,
            bytes: stats.bytes,
            oldest_age_ms: stats
                .oldest_age
                .map(|age| u64::try_from(age.as_millis()).unwrap_or(u64::MAX)),
            dropped: stats.dropped,
            storage_error: stats.storage_error,
        },
        tree: TreePayload(&snapshot),
        crashes: crashes.iter().map(|c| &**c).collect(),
    };
    payload::to_vec(&doc)
}
