//! A `tcp-listen` sensor: a `rest_for_one` supervisor whose first child is
//! the acceptor; each accepted connection is a temporary child added after
//! it (at most `max_connections`: the acceptor holds a permit per live
//! connection). A connection that crashes is closed and forgotten, and its
//! sensor connects again; the other connections are untouched. The acceptor
//! crashing (its port taken, say) takes every connection down with it, as
//! `rest_for_one` says. A peer closing its connection (`eof`) is the normal
//! end of that connection, not a crash: sensors that connect, send and hang
//! up produce no crash reports; corrupt frames and silence do.
//!
//! One supervisor per sensor rather than a pool supervisor beside the
//! acceptor: an idle sensor costs one supervisor task and one acceptor task.

use std::sync::Arc;

use edgevisor_devices::link::tcp_listen::{Accepted, TcpAcceptor};
use edgevisor_runtime::{
    ChildContext, ChildSpec, Crash, Restart, Running, Shutdown, Strategy, SupervisorSpec,
};

use super::{links, worker, Gateway};
use crate::config::SensorConfig;

/// The supervisor of one `tcp-listen` sensor.
pub fn spec(sensor: &Arc<SensorConfig>, gateway: &Arc<Gateway>) -> ChildSpec {
    let node = SupervisorSpec::new(Strategy::RestForOne)
        .policy(gateway.policy(&sensor.policy))
        .child(acceptor(sensor, gateway));
    ChildSpec::supervisor(sensor.id.clone(), node)
}

fn acceptor(sensor: &Arc<SensorConfig>, gateway: &Arc<Gateway>) -> ChildSpec {
    let sensor = sensor.clone();
    let gateway = gateway.clone();
    ChildSpec::with_start("acceptor", move |ctx| {
        let (sensor, gateway) = (sensor.clone(), gateway.clone());
        async move {
            let config = links::listener(&sensor)
                .ok_or_else(|| Crash::new("io", "not a tcp-listen sensor"))?;
            let acceptor = TcpAcceptor::bind(&config)
                .await
                .map_err(|e| worker::crash(&e))?;
            tracing::info!(sensor = %sensor.id, listen = %acceptor.local_addr(), "listening");
            // An idle sensor's acceptor waits here, so this future is kept
            // small: what a connection needs is boxed, and no stop signal is
            // awaited (the acceptor is stopped by aborting it).
            let body = async move {
                loop {
                    let accepted = acceptor.accept().await;
                    let child = connection(accepted, &sensor, &gateway);
                    Box::pin(add(child, &sensor, &ctx)).await;
                }
            };
            Ok(Running::new(body))
        }
    })
    // It holds nothing that needs an orderly end: the listener closes when
    // its task is dropped.
    .shutdown(Shutdown::Brutal)
}

/// The temporary child that reads one accepted connection.
fn connection(accepted: Accepted, sensor: &Arc<SensorConfig>, gateway: &Arc<Gateway>) -> ChildSpec {
    let peer = accepted.peer.to_string();
    let link = std::sync::Mutex::new(Some(accepted.into_link()));
    let (sensor, gateway) = (sensor.clone(), gateway.clone());
    ChildSpec::worker(peer, move |ctx| {
        let link = link.lock().ok().and_then(|mut l| l.take());
        let (sensor, gateway) = (sensor.clone(), gateway.clone());
        async move {
            let Some(link) = link else { return Ok(()) };
            match worker::pump(link, &sensor, &gateway, &ctx).await {
                Err(crash) if crash.reason == "eof" => Ok(()),
                other => other,
            }
        }
    })
    .restart(Restart::Temporary)
}

/// Adds a connection's child after the acceptor. Should the supervisor be
/// stopping the acceptor meanwhile, it aborts this wait with the acceptor.
async fn add(child: ChildSpec, sensor: &SensorConfig, ctx: &ChildContext) {
    let peer = child.id().to_string();
    if let Err(error) = ctx.supervisor().start_child(child).await {
        tracing::warn!(sensor = %sensor.id, %peer, %error, "connection refused");
    }
}
