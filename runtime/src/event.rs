//! The event stream: every start, crash, restart, quarantine, escalation and
//! stop in the tree, with the child's path, for crash reports, logs and live
//! views.
//!
//! Events are broadcast: each subscriber gets every event from the moment it
//! subscribed, and one that falls more than the bus capacity behind is told
//! how many it missed (`RecvError::Lagged`) instead of slowing the tree. When
//! nobody subscribes, no event is even built.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast;
use tokio::time::Instant;

use crate::crash::Crash;

/// What the supervisor did about a crash; the `action` of a crash report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Restarted after `delay`.
    Restart {
        /// Backoff before the restart.
        delay: Duration,
    },
    /// Parked for `for_`.
    Quarantine {
        /// How long.
        for_: Duration,
    },
    /// The supervisor gave up and fails to its parent.
    Escalate,
    /// Left down (temporary child, or shutting down).
    None,
}

impl Action {
    /// The SPEC word: `restart`, `quarantine`, `escalate`, `none`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Action::Restart { .. } => "restart",
            Action::Quarantine { .. } => "quarantine",
            Action::Escalate => "escalate",
            Action::None => "none",
        }
    }
}

/// How a child came to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// Stopped on request within its shutdown timeout.
    Shutdown,
    /// Aborted: brutal shutdown, or it ignored the request past its timeout.
    Killed,
    /// Ended normally and is not restarted (transient or temporary).
    Exited,
    /// Crashed and is not restarted (temporary).
    Crashed,
}

/// What happened.
#[derive(Debug, Clone, PartialEq)]
pub enum EventKind {
    /// The child is running; `restarts` is its lifetime restart count.
    Started {
        /// Restarts so far.
        restarts: u32,
    },
    /// The child crashed (or failed to start) and `action` follows.
    Crashed {
        /// Reason, message, evidence.
        crash: Crash,
        /// Restarts inside the window that counted this crash.
        restarts_in_window: u32,
        /// The window's limit.
        intensity: u32,
        /// The window's length.
        period: Duration,
        /// What the supervisor does about it.
        action: Action,
    },
    /// The child will be started again after `delay` (after its own crash
    /// or because the strategy restarts it with a failed sibling).
    Restarting {
        /// Backoff before the start.
        delay: Duration,
    },
    /// The child is parked and will be retried after `for_`.
    Quarantined {
        /// How long.
        for_: Duration,
    },
    /// The supervisor at this path gave up and fails to its parent.
    Escalated {
        /// Why it gave up.
        crash: Crash,
    },
    /// The child stopped.
    Stopped {
        /// How.
        reason: StopReason,
    },
}

/// One event about the child (or supervisor) at `path`.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// When, on the monotonic clock.
    pub at: Instant,
    /// Path of the subject, e.g. `root/barn/barn-gps`.
    pub path: Arc<str>,
    /// The subject's id (last path segment).
    pub id: Arc<str>,
    /// What happened.
    pub kind: EventKind,
}

/// The tree-wide broadcast bus.
#[derive(Clone)]
pub(crate) struct EventBus {
    tx: broadcast::Sender<Arc<Event>>,
}

impl EventBus {
    pub(crate) fn new(capacity: usize) -> Self {
        let (tx, _) = broadcast::channel(capacity.max(1));
        Self { tx }
    }

    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.tx.subscribe()
    }

    /// Builds and sends the event only when someone listens.
    pub(crate) fn emit(&self, supervisor: &str, id: &Arc<str>, kind: impl FnOnce() -> EventKind) {
        if self.tx.receiver_count() == 0 {
            return;
        }
        let path: Arc<str> = if supervisor.is_empty() {
            id.clone()
        } else {
            format!("{supervisor}/{id}").into()
        };
        let event = Event {
            at: Instant::now(),
            path,
            id: id.clone(),
            kind: kind(),
        };
        // A send error only means every receiver left meanwhile.
        let _ = self.tx.send(Arc::new(event));
    }
}
