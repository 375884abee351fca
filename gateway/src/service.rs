//! `edgevisor run`: the service. Boot counter, outbox, uplink, the tree,
//! its reports and the `edgevisor status` socket, then signals:
//! SIGTERM/SIGINT drain and stop cleanly (exit 0),
//! SIGHUP reloads, the root giving up ends the process (exit 3) after the
//! outbox had its chance to drain.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use edgevisor_runtime::{Supervisor, SupervisorHandle};
use tokio::signal::unix::{signal, SignalKind};
use tokio::time::Instant;

use crate::config::Config;
use crate::homeassistant::{self, Discovery};
use crate::outbox::{notice, Outbox};
use crate::payload::{self, Status};
use crate::sensor::Gateway;
use crate::shutdown::Background;
use crate::sparkplug::Sparkplug;
use crate::systemd::Systemd;
use crate::topics::Topics;
use crate::tree::Layout;
use crate::uplink::Uplink;
use crate::{boot, metrics, reload, reports, status, tree};

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// Stopped by a signal after draining: exit 0.
    Clean,
    /// The root supervisor gave up: exit 3.
    RootExhausted,
}

/// Time allowed for the outbox to drain at a clean stop.
const DRAIN: Duration = Duration::from_secs(10);

/// Time allowed for the background tasks (crash reports, status, systemd)
/// to finish once the tree has stopped.
const BACKGROUND_STOP: Duration = Duration::from_secs(2);

/// Runs the service until a signal or the root's exhaustion.
pub async fn run(config: Config) -> anyhow::Result<Ending> {
    let mut service = Service::start(config)?;
    let ending = service.serve().await?;
    service.stop(ending).await;
    Ok(ending)
}

/// A running service: what `run` starts, serves signals with, and stops.
struct Service {
    config: Config,
    boot: u64,
    topics: Topics,
    outbox: Outbox,
    uplink: Arc<Uplink>,
    discovery: Arc<Discovery>,
    gateway: Arc<Gateway>,
    root: SupervisorHandle,
    background: Background,
    systemd: Systemd,
    /// `[sparkplug]`'s edge node, when set.
    sparkplug: Option<Sparkplug>,
}

impl Service {
    /// Boot counter, outbox, uplink, the tree, then its background tasks.
    fn start(config: Config) -> anyhow::Result<Self> {
        let state_dir = config.gateway.state_dir.clone();
        let boot = boot::next_boot(&state_dir).with_context(|| {
            format!(
                "cannot keep the boot counter in state_dir {}",
                state_dir.display()
            )
        })?;
        let topics = Topics::new(&config.upstream.topic_prefix, &config.gateway.id);
        let (outbox, opened) = Outbox::open(&state_dir, config.upstream.outbox_max_bytes);
        outbox.append(notice::on_open(&opened, &config.gateway.id, boot, &topics));
        let will = payload::to_vec(&status("offline", boot, None));
        let (mut hooks, heard) = Discovery::hooks(&config);
        let delivered = config.sparkplug.as_ref().map(|_| {
            let (sender, receiver) = crate::sparkplug::delivered_channel();
            hooks.delivered = Some(sender);
            receiver
        });
        let uplink = Arc::new(
            Uplink::start(
                &config.upstream,
                topics.status(),
                will,
                outbox.clone(),
                set_aside_reporter(&config.gateway.id, boot, &topics),
                hooks,
            )
            .context("cannot set up the upstream connection")?,
        );
        let started_at = payload::timestamp(SystemTime::now());
        uplink.set_retained(
            topics.status(),
            payload::to_vec(&status("online", boot, Some(&started_at))),
        );
        let discovery = Discovery::start(&config, uplink.clone());
        let inherited = crate::systemd::InheritedSockets::from_env();
        let unused = inherited.unused(&config.listen_addresses());
        if !unused.is_empty() {
            tracing::warn!(sockets = ?unused, "systemd passed sockets no tcp-listen sensor listens on; make edgevisor.socket's ListenStream= match the config");
        }
        let gateway = Gateway::new(
            config.gateway.id.clone(),
            boot,
            topics.clone(),
            outbox.clone(),
            inherited,
        );
        gateway.set_layout(Layout::of(&config));
        crate::clock::check();
        tracing::info!(gateway = %config.gateway.id, boot, upstream = %config.upstream.url, "starting");
        let supervisor = Supervisor::new("root", tree::root(&config, &gateway))
            .context("the config describes an invalid tree")?
            .event_capacity(tree::event_capacity(config.sensor_count()));
        let events = supervisor.subscribe();
        let sparkplug_events = supervisor.subscribe();
        let root = supervisor.spawn();
        let sparkplug = match delivered {
            Some(delivered) => {
                Sparkplug::start(&config, boot, gateway.clone(), delivered, sparkplug_events)
                    .context("cannot start the Sparkplug edge node")?
            }
            None => None,
        };
        let mut background = Background::default();
        crate::clock::watch(&mut background);
        if let Some(heard) = heard {
            let listener = homeassistant::listen(discovery.clone(), heard);
            background.spawn_loop("home assistant birth", listener);
        }
        let tree = root.clone();
        let (reporting, linked) = (gateway.clone(), uplink.clone());
        let crashes = Arc::new(reports::RecentCrashes::new(status::RECENT_CRASHES));
        let recent = crashes.clone();
        let tree_metrics = Arc::new(metrics::TreeMetrics::default());
        let counted = tree_metrics.clone();
        background.spawn("crash reports", move |shutdown| {
            reports::run(events, tree, reporting, linked, recent, counted, shutdown)
        });
        if let Some(served) = &config.metrics {
            let live = metrics::Live {
                gateway: gateway.clone(),
                outbox: outbox.clone(),
                uplink: uplink.clone(),
            };
            let endpoint = metrics::Endpoint::new(
                &tree_metrics,
                live,
                root.clone(),
                config.upstream.keep_alive,
            );
            metrics::start(served.listen, endpoint, &mut background);
        }
        let sources = status::Sources {
            gateway: config.gateway.id.clone(),
            boot,
            started_at: started_at.clone(),
            broker: config.upstream.url.to_string(),
            root: root.clone(),
            uplink: uplink.clone(),
            outbox: outbox.clone(),
            crashes,
        };
        status::start(&state_dir, sources, &mut background);
        let publisher = publish_status(uplink.clone(), gateway.clone(), outbox.clone(), started_at);
        background.spawn_loop("status publisher", publisher);
        let watched = crate::systemd::Watched {
            root: root.clone(),
            uplink: uplink.clone(),
            outbox: outbox.clone(),
            gateway: gateway.clone(),
            keep_alive: config.upstream.keep_alive,
        };
        let systemd = Systemd::start(watched, &mut background);
        Ok(Self {
            config,
            boot,
            topics,
            outbox,
            uplink,
            discovery,
            gateway,
            root,
            background,
            systemd,
            sparkplug,
        })
    }

    /// Serves signals until a stop (SIGTERM, SIGINT) or the root's
    /// exhaustion; SIGHUP reloads.
    async fn serve(&mut self) -> anyhow::Result<Ending> {
        let mut term = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
        let mut int = signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?;
        let mut hup = signal(SignalKind::hangup()).context("cannot listen for SIGHUP")?;
        loop {
            tokio::select! {
                _ = term.recv() => return Ok(Ending::Clean),
                _ = int.recv() => return Ok(Ending::Clean),
                _ = hup.recv() => self.reload().await,
                result = self.root.wait() => return Ok(match result {
                    Err(exhausted) => {
                        tracing::error!(error = %exhausted, "root supervisor gave up");
                        Ending::RootExhausted
                    }
                    Ok(()) => Ending::Clean,
                }),
            }
        }
    }

    async fn reload(&mut self) {
        tracing::info!(config = %self.config.path.display(), "SIGHUP: reloading");
        self.systemd.reloading();
        let path = self.config.path.clone();
        if reload::reload(&path, &mut self.config, &self.root, &self.gateway).await {
            // Removed sensors and fields get an empty retained config.
            self.discovery.update(&self.config);
            if let Some(sparkplug) = &self.sparkplug {
                sparkplug.reload(&self.config);
            }
        }
        // A password or certificate fixed on disk is tried at once.
        self.uplink.retry_now();
        self.systemd.reloaded();
    }

    /// Stops in order: the tree, the background tasks (joined), the uplink
    /// (after draining, with `stopped`, or leaving the Last Will when the
    /// root gave up), then commits what is still staged.
    async fn stop(self, ending: Ending) {
        self.systemd.stopping();
        match ending {
            Ending::Clean => {
                tracing::info!("stopping: sensors first, then draining the outbox");
                let _ = self.root.shutdown().await;
                self.background.stop(BACKGROUND_STOP).await;
                let stopped = payload::to_vec(&status("stopped", self.boot, None));
                let deadline = Instant::now() + DRAIN;
                self.uplink
                    .stop(self.topics.status(), stopped, deadline)
                    .await;
                let left = self.outbox.stats().depth;
                if left > 0 {
                    tracing::warn!(left, "stopped before the outbox drained");
                }
                // After the drain: the last acknowledged readings go out
                // on Sparkplug too, then its NDEATH.
                if let Some(sparkplug) = self.sparkplug {
                    sparkplug.stop().await;
                }
            }
            Ending::RootExhausted => {
                self.background.stop(BACKGROUND_STOP).await;
                // No clean disconnect: the broker publishes the Last Will.
                self.uplink.wait_drained(Instant::now() + DRAIN).await;
            }
        }
        // Commit what is still staged (and the acks' deletions) before exiting.
        let flush = self.outbox.clone();
        let _ = tokio::task::spawn_blocking(move || flush.sync()).await;
    }
}

fn status<'a>(state: &'a str, boot: u64, started_at: Option<&'a str>) -> Status<'a> {
    Status {
        state,
        boot,
        version: (state == "online").then_some(env!("CARGO_PKG_VERSION")),
        started_at,
        dropped: None,
        accepted: None,
        storage_error: None,
    }
}

/// Republishes `status` when the outbox's drop counts or the accepted
/// readings change (every 2 s at most).
async fn publish_status(
    uplink: Arc<Uplink>,
    gateway: Arc<Gateway>,
    outbox: Outbox,
    started_at: String,
) {
    let mut last = None;
    let mut faults = notice::FaultWatch::default();
    let mut tick = tokio::time::interval(Duration::from_secs(2));
    loop {
        tick.tick().await;
        let stats = outbox.stats();
        if let Some(error) = faults.new_fault(&stats) {
            let report = notice::crash_report(&gateway.id, gateway.boot, &gateway.topics, &error);
            outbox.append(vec![report]);
        }
        // `accepted` counts committed readings only (see docs/outbox.md).
        let current = Some((stats.dropped, outbox.accepted(), stats.storage_error));
        if current == last {
            continue;
        }
        if let Some((dropped, accepted, storage_error)) = &current {
            let mut body = status("online", gateway.boot, Some(&started_at));
            body.dropped = Some(dropped);
            body.accepted = Some(accepted);
            // Once per sensor whose count grew, not at every status update
            // (`accepted` changes those every 2 s while readings flow).
            let before = last.as_ref().map(|(dropped, _, _)| dropped);
            for (sensor, count) in dropped {
                if before.and_then(|b| b.get(sensor)) != Some(count) {
                    tracing::warn!(SENSOR = %sensor, dropped = count, "outbox full: oldest telemetry dropped");
                }
            }
            body.storage_error = storage_error.as_deref();
            uplink.set_retained(gateway.topics.status(), payload::to_vec(&body));
        }
        last = current;
    }
}

/// The report about a message the broker will not take, on `crash/_outbox`.
fn set_aside_reporter(gateway: &str, boot: u64, topics: &Topics) -> crate::uplink::Reporter {
    let (gateway, topics) = (gateway.to_string(), topics.clone());
    Arc::new(move |error: &str| notice::crash_report(&gateway, boot, &topics, error))
}
