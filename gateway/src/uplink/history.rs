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
    /// Since when the link is down (the first failure after a connection,
    /// or after start); `None` while connected.
    pub down_since: Option<SystemTime>,
}

impl LinkHistory {
    /// For the `STATUS=` line while the link is down: "never connected
    /// (since 10:42:01 UTC; last error: ...)" or "disconnected since ...".
    pub fn down(&self) -> Option<String> {
        let since = self.down_since?;
        let at = crate::payload::timestamp(since);
        let at = at.get(11..19).unwrap_or(&at);
        let what = if self.connects == 0 {
            "never connected (since"
        } else {
            "disconnected (since"
        };
        let error = self
            .last_error
            .as_ref()
            .map(|(_, e)| format!("; last error: {e}"))
            .unwrap_or_default();
        Some(format!("{what} {at} UTC{error})"))
    }
}

/// Logs failed connection attempts without flooding the journal nor going
/// silent: the first at WARN, then at most one a minute, with how many
/// failed since and the last reason.
#[derive(Debug, Default)]
pub(super) struct FailureLog {
    last_warned: Option<tokio::time::Instant>,
    unreported: u32,
}

/// The least time between two warnings about failed attempts.
const WARN_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

impl FailureLog {
    /// An attempt failed with `error`; the next one is in `retry_in`.
    pub(super) fn failed(
        &mut self,
        broker: &str,
        error: &dyn std::fmt::Display,
        retry_in: std::time::Duration,
    ) {
        let now = tokio::time::Instant::now();
        self.unreported += 1;
        match self.last_warned {
            None => {
                tracing::warn!(%broker, %error, ?retry_in, "cannot connect upstream; retrying with backoff; telemetry waits in the outbox");
            }
            Some(at) if now.duration_since(at) >= WARN_EVERY => {
                tracing::warn!(%broker, %error, failed = self.unreported, ?retry_in, "still cannot connect upstream: {} attempts failed since the last warning", self.unreported);
            }
            Some(_) => {
                tracing::debug!(%broker, %error, ?retry_in, "cannot connect upstream");
                return;
            }
        }
        self.last_warned = Some(now);
        self.unreported = 0;
    }

    /// A warning about the link was just logged (a lost connection): the
    /// attempts that follow within the minute are not news.
    pub(super) fn warned(&mut self) {
        self.last_warned = Some(tokio::time::Instant::now());
        self.unreported = 0;
    }

    /// Connected: the next failure is news again.
    pub(super) fn connected(&mut self) {
        *self = FailureLog::default();
    }
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
        history.down_since = None;
    }

    /// A connection failed or was lost with `error`.
    pub(super) fn failed(&self, error: &dyn std::fmt::Display) {
        let mut history = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let now = SystemTime::now();
        history.last_error = Some((now, error.to_string()));
        history.down_since.get_or_insert(now);
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
        assert_eq!(seen.down(), None);
        assert_eq!(seen.last_error.unwrap().1, "connection refused");
    }

    #[test]
    fn down_says_since_when_and_why() {
        let history = History::default();
        history.failed(&"connect 127.0.0.1:1883: Connection refused");
        history.failed(&"connect 127.0.0.1:1883: Connection refused (again)");
        let down = history.get().down().unwrap();
        assert!(down.starts_with("never connected (since "), "{down}");
        assert!(
            down.ends_with(" UTC; last error: connect 127.0.0.1:1883: Connection refused (again))"),
            "{down}"
        );
        history.connected();
        history.failed(&"read from the broker: unexpected end of file");
        assert!(history
            .get()
            .down()
            .unwrap()
            .starts_with("disconnected (since "));
    }
}
