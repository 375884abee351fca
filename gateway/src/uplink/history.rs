//! What `edgevisor status` tells about the upstream link beyond "connected":
//! when it last connected and the last error, recorded by the connection
//! task where each happens.

use std::sync::{Mutex, PoisonError};
use std::time::SystemTime;

/// The link's history as `edgevisor status` shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LinkHistory {
    /// When the last CONNACK arrived.
    pub connected_at: Option<SystemTime>,
    /// Successful connections since start.
    pub connects: u64,
    /// The last connection failure or loss, and when it happened; kept
    /// after a reconnect so an operator can see why the link dropped.
    pub last_error: Option<(SystemTime, String)>,
}

/// The history, written by the connection task, read by `status`.
#[derive(Debug, Default)]
pub(super) struct History(Mutex<LinkHistory>);

impl History {
    /// A connection was made.
    pub(super) fn connected(&self) {
        let mut history = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        history.connected_at = Some(SystemTime::now());
        history.connects += 1;
    }

    /// A connection failed or was lost with `error`.
    pub(super) fn failed(&self, error: &dyn std::fmt::Display) {
        let mut history = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        history.last_error = Some((SystemTime::now(), error.to_string()));
    }

    /// A copy of the history now.
    pub(super) fn get(&self) -> LinkHistory {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_last_error_across_a_reconnect() {
        let history = History::default();
        history.failed(&"connection refused");
        history.connected();
        let seen = history.get();
        assert_eq!(seen.connects, 1);
        assert!(seen.connected_at.is_some());
        assert_eq!(seen.last_error.unwrap().1, "connection refused");
    }
}
