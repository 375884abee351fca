//! What the edge node reacts to besides its broker: batches of telemetry
//! the uplink delivered, the tree's events (a sensor running again, or
//! quarantined or stopped) and the stop. One cancel-safe `next` serves both
//! the connected loop and the reconnect wait, so neither falls behind.

use std::sync::Arc;

use edgevisor_runtime::{Event, EventKind};
use tokio::sync::{broadcast, mpsc, watch};

use super::node::Fields;
use super::payload::{self, Reading};
use crate::sensor::Gateway;
use crate::uplink::Delivered;

/// One thing that happened.
#[derive(Debug)]
pub enum Input {
    /// Telemetry the upstream broker acknowledged.
    Readings(Vec<Reading>),
    /// A sensor started (`true`) or was quarantined or stopped (`false`).
    Sensor(String, bool),
    /// A reload changed the declared fields.
    Fields(Fields),
    /// The service is stopping.
    Stop,
}

/// The node's inputs.
pub struct Inputs {
    delivered: Option<mpsc::Receiver<Vec<Delivered>>>,
    events: Option<broadcast::Receiver<Arc<Event>>>,
    gateway: Arc<Gateway>,
    stop: watch::Receiver<bool>,
    fields: watch::Receiver<Fields>,
}

impl Inputs {
    /// Inputs from these sources.
    pub fn new(
        delivered: mpsc::Receiver<Vec<Delivered>>,
        events: broadcast::Receiver<Arc<Event>>,
        gateway: Arc<Gateway>,
        stop: watch::Receiver<bool>,
        fields: watch::Receiver<Fields>,
    ) -> Self {
        Self {
            delivered: Some(delivered),
            events: Some(events),
            gateway,
            stop,
            fields,
        }
    }

    /// True once a stop was asked for.
    pub fn stopping(&self) -> bool {
        *self.stop.borrow()
    }

    /// The next input (cancel-safe). A closed source is left alone; with
    /// both closed only the stop remains.
    pub async fn next(&mut self) -> Input {
        loop {
            if self.stopping() {
                return Input::Stop;
            }
            tokio::select! {
                batch = recv(&mut self.delivered) => match batch {
                    Some(batch) => return Input::Readings(readings(batch)),
                    None => self.delivered = None,
                },
                event = next_event(&mut self.events) => match event {
                    Ok(event) => {
                        if let Some(input) = self.sensor_change(&event) {
                            return input;
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        tracing::warn!(missed, "Sparkplug fell behind the tree's events; some sensor changes were missed");
                    }
                    Err(broadcast::error::RecvError::Closed) => self.events = None,
                },
                _ = self.stop.changed() => return Input::Stop,
                Ok(()) = self.fields.changed() => {
                    return Input::Fields(self.fields.borrow_and_update().clone());
                }
            }
        }
    }

    /// Telemetry already delivered and not yet taken, without waiting (at
    /// a stop, so the last readings still go out before NDEATH).
    pub fn delivered_now(&mut self) -> Vec<Reading> {
        let mut all = Vec::new();
        if let Some(delivered) = &mut self.delivered {
            while let Ok(batch) = delivered.try_recv() {
                all.extend(readings(batch));
            }
        }
        all
    }

    /// A sensor's own start, quarantine or stop (not a group's, nor a
    /// tcp-listen connection's).
    fn sensor_change(&self, event: &Event) -> Option<Input> {
        let layout = self.gateway.layout();
        let place = crate::tree::sensor_place(&event.path, &layout)?;
        if !place.own_level || place.group {
            return None;
        }
        let alive = match event.kind {
            EventKind::Started { .. } => true,
            EventKind::Quarantined { .. } | EventKind::Stopped { .. } => false,
            _ => return None,
        };
        Some(Input::Sensor(place.sensor.to_string(), alive))
    }
}

async fn recv(delivered: &mut Option<mpsc::Receiver<Vec<Delivered>>>) -> Option<Vec<Delivered>> {
    match delivered {
        Some(delivered) => delivered.recv().await,
        None => std::future::pending().await,
    }
}

async fn next_event(
    events: &mut Option<broadcast::Receiver<Arc<Event>>>,
) -> Result<Arc<Event>, broadcast::error::RecvError> {
    match events {
        Some(events) => events.recv().await,
        None => std::future::pending().await,
    }
}

/// The readings of a batch; a payload that is not a telemetry envelope
/// (never made by this gateway) is logged and skipped.
fn readings(batch: Vec<Delivered>) -> Vec<Reading> {
    batch
        .into_iter()
        .filter_map(|d| match payload::reading(&d.payload, d.historical) {
            Ok(reading) => Some(reading),
            Err(error) => {
                tracing::warn!(topic = %d.topic, %error, "Sparkplug skipped a telemetry message");
                None
            }
        })
        .collect()
}
