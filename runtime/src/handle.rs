//! A handle on a running supervisor: snapshot it, watch its events, add and
//! remove children at run time, stop it and wait for its end. Cheap to
//! clone; every child gets one of its parent through its context.

use std::sync::Arc;

use tokio::sync::{broadcast, oneshot};

use crate::child::ChildSpec;
use crate::error::{Exhausted, StartChildError, SupervisorStopped, TerminateChildError};
use crate::event::Event;
use crate::live::LiveChildren;
use crate::snapshot::TreeSnapshot;
use crate::supervisor::{Command, Mail, Shared, Strategy};

/// Talks to one supervisor of the tree.
#[derive(Clone)]
pub struct SupervisorHandle {
    shared: Arc<Shared>,
}

impl SupervisorHandle {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }

    /// The supervisor's path, e.g. `root/barn`.
    pub fn path(&self) -> &str {
        &self.shared.path
    }

    /// The supervisor's strategy.
    pub fn strategy(&self) -> Strategy {
        self.shared.strategy
    }

    /// Every child below this supervisor as it is now.
    pub fn snapshot(&self) -> TreeSnapshot {
        self.shared.snapshot()
    }

    /// The children as they are now, read in place (see [`LiveChildren`]):
    /// for rendering a large tree without copying it first.
    pub fn live(&self) -> LiveChildren<'_> {
        LiveChildren::new(&self.shared)
    }

    /// Events of the whole tree from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.shared.bus.subscribe()
    }

    /// Adds and starts a child (after the existing ones). A dynamic
    /// supervisor refuses it past `max_children`; any supervisor refuses a
    /// duplicate id or a child whose start fails.
    pub async fn start_child(&self, spec: ChildSpec) -> Result<(), StartChildError> {
        let (reply, answer) = oneshot::channel();
        let not_running = || StartChildError::NotRunning(self.shared.path.to_string());
        self.shared
            .mailbox
            .send(Mail::Command(Command::Start(spec, reply)))
            .map_err(|_| not_running())?;
        answer.await.map_err(|_| not_running())?
    }

    /// Stops the child `id` (within its shutdown policy) and forgets it.
    pub async fn terminate_child(&self, id: &str) -> Result<(), TerminateChildError> {
        let (reply, answer) = oneshot::channel();
        let not_running = || TerminateChildError::NotRunning(self.shared.path.to_string());
        self.shared
            .mailbox
            .send(Mail::Command(Command::Terminate(id.into(), reply)))
            .map_err(|_| not_running())?;
        answer.await.map_err(|_| not_running())?
    }

    /// Resolves once the supervisor's loop has answered: it serves commands
    /// (so its initial start is done) and is not stuck in a start phase or
    /// deadlocked. `Err` when it has stopped. A watchdog wraps it in a
    /// timeout; it changes nothing in the tree.
    pub async fn ping(&self) -> Result<(), SupervisorStopped> {
        let (reply, answer) = oneshot::channel();
        self.shared
            .mailbox
            .send(Mail::Command(Command::Ping(reply)))
            .map_err(|_| SupervisorStopped(self.shared.path.to_string()))?;
        answer
            .await
            .map_err(|_| SupervisorStopped(self.shared.path.to_string()))
    }

    /// The handle of the running nested supervisor `id`, if there is one.
    pub fn child_supervisor(&self, id: &str) -> Option<SupervisorHandle> {
        let table = self.shared.table();
        let key = table.key_of(id)?;
        let nested = table.get(key)?.nested.clone()?;
        Some(SupervisorHandle::new(nested))
    }

    /// Asks the supervisor to stop its children in reverse start order and
    /// waits until it has.
    pub async fn shutdown(&self) -> Result<(), Exhausted> {
        self.shared.mailbox.request_stop();
        self.wait().await
    }

    /// Waits for the supervisor's end: `Ok` after a requested stop, `Err`
    /// when it gave up.
    pub async fn wait(&self) -> Result<(), Exhausted> {
        (**self.shared.done.wait().await).clone()
    }

    /// True once the supervisor has ended.
    pub fn is_finished(&self) -> bool {
        self.shared.done.initialized()
    }
}

impl std::fmt::Debug for SupervisorHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SupervisorHandle")
            .field("path", &self.path())
            .finish()
    }
}
