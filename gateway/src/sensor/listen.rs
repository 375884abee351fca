//! A `tcp-listen` sensor: a supervisor holding a dynamic pool of connection
//! children (`conns`, at most `max_connections`) and the acceptor that adds
//! one to it per accepted connection. Connection children are temporary: a
//! connection that crashes is closed and its sensor connects again; the
//! other connections are untouched. A peer closing its connection (`eof`)
//! is the normal end of that connection, not a crash: sensors that connect,
//! send and hang up produce no crash reports; corrupt frames and silence do.

use std::sync::Arc;

use edgevisor_devices::link::tcp_listen::TcpAcceptor;
use edgevisor_runtime::{ChildSpec, Crash, Restart, Running, Strategy, SupervisorSpec};

use super::{links, worker, Gateway};
use crate::config::{LinkConfig, SensorConfig};

/// The supervisor of one `tcp-listen` sensor.
pub fn spec(sensor: &SensorConfig, gateway: &Arc<Gateway>) -> ChildSpec {
    let max = match sensor.link {
        LinkConfig::TcpListen {
            max_connections, ..
        } => max_connections,
        _ => 1,
    };
    let conns = SupervisorSpec::new(Strategy::Dynamic { max_children: max })
        .policy(sensor.policy.restart_policy());
    let node = SupervisorSpec::new(Strategy::OneForAll)
        .policy(sensor.policy.restart_policy())
        .child(ChildSpec::supervisor("conns", conns))
        .child(acceptor(sensor, gateway));
    ChildSpec::supervisor(sensor.id.clone(), node)
}

fn acceptor(sensor: &SensorConfig, gateway: &Arc<Gateway>) -> ChildSpec {
    let sensor = Arc::new(sensor.clone());
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
            let body = async move {
                let pool = ctx
                    .supervisor()
                    .child_supervisor("conns")
                    .ok_or_else(|| Crash::new("io", "connection pool is not running"))?;
                loop {
                    let accepted = tokio::select! {
                        _ = ctx.shutdown_requested() => return Ok(()),
                        accepted = acceptor.accept() => accepted,
                    };
                    let peer = accepted.peer.to_string();
                    let link = std::sync::Mutex::new(Some(accepted.into_link()));
                    let (conn_sensor, conn_gateway) = (sensor.clone(), gateway.clone());
                    let child = ChildSpec::worker(peer.clone(), move |ctx| {
                        let link = link.lock().ok().and_then(|mut l| l.take());
                        let (sensor, gateway) = (conn_sensor.clone(), conn_gateway.clone());
                        async move {
                            let Some(link) = link else { return Ok(()) };
                            match worker::pump(link, &sensor, &gateway, &ctx).await {
                                Err(crash) if crash.reason == "eof" => Ok(()),
                                other => other,
                            }
                        }
                    })
                    .restart(Restart::Temporary);
                    if let Err(error) = pool.start_child(child).await {
                        tracing::warn!(sensor = %sensor.id, %peer, %error, "connection refused");
                    }
                }
            };
            Ok(Running::new(body))
        }
    })
}
