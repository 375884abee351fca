//! Supervisors: a spec (strategy, policy, children), validated when built,
//! then run as one tokio task that starts, watches, restarts and stops its
//! children.
//!
//! - `spec`: what the user describes;
//! - `table`: the children's records, shared with snapshots;
//! - `core`: the run loop;
//! - `start`: starting a child, and the task that runs its body;
//! - `exit`: a child's end, the restart decision on it, carried out;
//! - `commands`: run-time requests (start or terminate a child);
//! - `strategy`: which siblings a restart takes along;
//! - `stop`: stopping one child, or all of them;
//! - `timers`: delayed restarts and quarantine releases;
//! - `source`: children a supervisor adds from a stream (accepted connections).

mod commands;
mod core;
mod exit;
mod mailbox;
mod source;
mod spec;
mod start;
mod stop;
mod strategy;
mod table;
mod timers;

use std::sync::Arc;

use tokio::sync::broadcast;
use tokio::task::JoinHandle;

pub use self::source::ChildSource;
pub use self::spec::{Strategy, SupervisorSpec};
pub(crate) use self::table::{Command, Mail, Shared};

use self::core::Core;
use crate::error::{Exhausted, SpecError};
use crate::event::{Event, EventBus};
use crate::handle::SupervisorHandle;

/// Events kept for a subscriber that falls behind before it is told it lagged.
const DEFAULT_EVENT_CAPACITY: usize = 4096;

/// A validated root supervisor, not yet running. Subscribe to its events
/// before [`Supervisor::spawn`] so that no start event is missed.
pub struct Supervisor {
    name: Arc<str>,
    spec: SupervisorSpec,
    bus: EventBus,
    seed: u64,
}

impl Supervisor {
    /// Validates `spec` (recursively) for a root named `name`.
    pub fn new(name: impl Into<Arc<str>>, spec: SupervisorSpec) -> Result<Self, SpecError> {
        let name = name.into();
        spec.validate(&name)?;
        Ok(Self {
            name,
            spec,
            bus: EventBus::new(DEFAULT_EVENT_CAPACITY),
            seed: fastrand::u64(..),
        })
    }

    /// Sets how many events a slow subscriber may fall behind (default 4096).
    /// Only effective before the first `subscribe`.
    pub fn event_capacity(mut self, capacity: usize) -> Self {
        self.bus = EventBus::new(capacity);
        self
    }

    /// Seeds the jitter so a run can be reproduced.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// A receiver of every event of the tree from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.bus.subscribe()
    }

    /// Starts the tree on the current tokio runtime and returns its handle.
    pub fn spawn(self) -> SupervisorHandle {
        let (handle, _task) = self.spawn_task();
        handle
    }

    /// Starts the tree and returns the task too, for callers that want to
    /// await its end directly.
    pub fn spawn_task(self) -> (SupervisorHandle, JoinHandle<Result<(), Exhausted>>) {
        let shared = Shared::new(self.name.clone(), self.spec.strategy, self.bus);
        let handle = SupervisorHandle::new(shared.clone());
        let core = Core::new(shared, Arc::new(self.spec), self.seed);
        let task = tokio::spawn(core.run_root());
        (handle, task)
    }
}
