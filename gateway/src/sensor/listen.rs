//! A `tcp-listen` sensor: a supervisor whose children are its live
//! connections, one temporary child each (at most `max_connections`: the
//! listener holds a permit per live connection). The listener is the
//! supervisor's source of children (`SupervisorSpec::source`): the
//! supervisor's own loop accepts, so an idle sensor costs one task.
//!
//! - A connection that crashes (corrupt frame, silence) is closed and
//!   forgotten, and its sensor connects again; the other connections are
//!   untouched.
//! - A peer closing its connection (`eof`) is the normal end of that
//!   connection, not a crash: sensors that connect, send and hang up
//!   produce no crash reports; corrupt frames and silence do.
//! - Binding the port is part of the sensor's start: a port already taken
//!   fails that start, and the sensor's own restart window applies (its
//!   state goes to `restarting`, then `quarantined` if it keeps failing).
//!   A socket systemd passed for the sensor's address (socket activation,
//!   `crate::systemd::InheritedSockets`) is taken instead of binding.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::Stream;

use edgevisor_devices::link::tcp_listen::{Accepted, TcpAcceptor};
use edgevisor_runtime::{ChildSource, ChildSpec, Crash, Restart, Strategy, SupervisorSpec};

use super::{links, worker, Gateway};
use crate::config::{LinkConfig, SensorConfig};

/// The supervisor of one `tcp-listen` sensor.
pub fn spec(sensor: &Arc<SensorConfig>, gateway: &Arc<Gateway>) -> ChildSpec {
    // The listener's permits cap live connections. The pool's own cap is
    // a backstop set higher, so that a connection whose end the supervisor
    // has not processed yet cannot get a new one refused.
    let max_children = match sensor.link {
        LinkConfig::TcpListen {
            max_connections, ..
        } => max_connections.saturating_mul(2),
        _ => 1,
    };
    let (source_sensor, source_gateway) = (sensor.clone(), gateway.clone());
    let node = SupervisorSpec::new(Strategy::Dynamic { max_children })
        .policy(gateway.policy(&sensor.policy))
        .source(move || listen(source_sensor.clone(), source_gateway.clone()));
    ChildSpec::supervisor(sensor.id.clone(), node)
}

/// Binds the sensor's port and yields a connection child per accepted
/// connection.
async fn listen(sensor: Arc<SensorConfig>, gateway: Arc<Gateway>) -> Result<ChildSource, Crash> {
    let config =
        links::listener(&sensor).ok_or_else(|| Crash::new("io", "not a tcp-listen sensor"))?;
    let acceptor = match gateway.inherited.listener(config.listen) {
        Some(Ok(passed)) => TcpAcceptor::from_std(passed, &config),
        Some(Err(e)) => {
            let message = format!("listen {} (passed socket): {e}", config.listen);
            return Err(Crash::new("io", message));
        }
        None => TcpAcceptor::bind(&config).await,
    }
    .map_err(|e| worker::crash(&e))?;
    tracing::info!(sensor = %sensor.id, listen = %acceptor.local_addr(), "listening");
    Ok(Box::pin(Connections {
        acceptor,
        sensor,
        gateway,
    }))
}

/// The listener as a stream of connection children. Polled by its
/// supervisor's loop; it stores no future (every idle sensor keeps one).
struct Connections {
    acceptor: TcpAcceptor,
    sensor: Arc<SensorConfig>,
    gateway: Arc<Gateway>,
}

impl Stream for Connections {
    type Item = ChildSpec;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<ChildSpec>> {
        let this = self.get_mut();
        this.acceptor
            .poll_accept(cx)
            .map(|accepted| Some(connection(accepted, &this.sensor, &this.gateway)))
    }
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
