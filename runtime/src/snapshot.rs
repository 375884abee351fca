//! A live picture of the tree: every child's path, state, restart count and
//! uptime, taken without pausing anything (each supervisor's table is locked
//! only long enough to copy it).

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use crate::child::ChildKind;

/// Where a child is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChildState {
    /// Its start phase is running.
    Starting,
    /// Its body is running.
    Running,
    /// Waiting out its backoff before a restart.
    Restarting,
    /// Parked after exhausting its window; retried later.
    Quarantined,
    /// Down for good (temporary, transient after a normal exit, or its
    /// supervisor is shutting down).
    Stopped,
}

impl ChildState {
    /// The SPEC word for `state/<sensor>`: `running`, `restarting`,
    /// `quarantined` or `stopped` (a child in its start phase reports
    /// `restarting` once it has been restarted, `running` otherwise).
    pub fn as_str(&self) -> &'static str {
        match self {
            ChildState::Starting | ChildState::Running => "running",
            ChildState::Restarting => "restarting",
            ChildState::Quarantined => "quarantined",
            ChildState::Stopped => "stopped",
        }
    }
}

/// One child as it is now.
#[derive(Debug, Clone, PartialEq)]
pub struct ChildSnapshot {
    /// Its id.
    pub id: Arc<str>,
    /// Its full path, e.g. `root/barn/barn-gps`.
    pub path: String,
    /// Worker or supervisor.
    pub kind: ChildKind,
    /// Its state.
    pub state: ChildState,
    /// Restarts over its whole life.
    pub restarts: u32,
    /// How long the current run has lasted, when running.
    pub uptime: Option<Duration>,
    /// How long it has been in its current state.
    pub in_state_for: Duration,
    /// Reason of its last crash, if any.
    pub last_reason: Option<Cow<'static, str>>,
    /// For a running nested supervisor, its own children.
    pub children: Vec<ChildSnapshot>,
}

/// A supervisor and everything below it.
#[derive(Debug, Clone, PartialEq)]
pub struct TreeSnapshot {
    /// The supervisor's path.
    pub path: String,
    /// Its strategy, as a word (`one_for_one`, ...).
    pub strategy: &'static str,
    /// Its children in start order.
    pub children: Vec<ChildSnapshot>,
}

impl TreeSnapshot {
    /// Every child at every depth, parents before their children.
    pub fn flatten(&self) -> Vec<&ChildSnapshot> {
        let mut out = Vec::new();
        let mut stack: Vec<&ChildSnapshot> = self.children.iter().rev().collect();
        while let Some(child) = stack.pop() {
            out.push(child);
            stack.extend(child.children.iter().rev());
        }
        out
    }

    /// The child at `path`, at any depth.
    pub fn find(&self, path: &str) -> Option<&ChildSnapshot> {
        self.flatten().into_iter().find(|c| c.path == path)
    }
}
