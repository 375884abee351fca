//! The run loop of one supervisor: start the children in order, then react
//! to exits, run-time requests and due timers until told to stop or until
//! the restart intensity is exhausted.
//!
//! What it does on each is in the sibling files: `start` (starting and
//! restarting a child), `exit` (a child's end and the decision on it),
//! `commands` (run-time requests), `timers` (delayed starts), `strategy`
//! and `stop`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use tokio::time::Sleep;

use super::commands::refuse;
use super::mailbox::Next;
use super::source::{next_child, source_ended, ChildSource};
use super::table::{Mail, Shared};
use super::timers::Timers;
use crate::crash::Crash;
use crate::error::Exhausted;
use crate::event::{EventKind, StopReason};
use crate::intensity::IntensityWindow;
use crate::policy::RestartPolicy;
use crate::supervisor::SupervisorSpec;

/// Mail handled in one go before the loop looks at stop requests again.
const MAIL_BATCH: usize = 1024;

/// The state only the run loop touches.
pub(crate) struct Core {
    pub(crate) shared: Arc<Shared>,
    pub(super) spec: Arc<SupervisorSpec>,
    pub(crate) timers: Timers,
    /// The window shared by children without a policy of their own.
    pub(crate) window: IntensityWindow,
    pub(super) rng: fastrand::Rng,
    /// The supervisor's own policy, shared with each decision that uses it.
    pub(super) policy: Arc<RestartPolicy>,
    /// The opened source of children, until the run loop takes it.
    pub(super) source: Option<ChildSource>,
}

impl Core {
    pub(crate) fn new(shared: Arc<Shared>, spec: Arc<SupervisorSpec>, seed: u64) -> Self {
        let policy = spec.policy.clone();
        Self {
            shared,
            spec,
            timers: Timers::default(),
            window: IntensityWindow::default(),
            rng: fastrand::Rng::with_seed(seed),
            policy,
            source: None,
        }
    }

    /// Runs the root supervisor; its exhaustion is the tree's failure.
    pub(crate) async fn run_root(self) -> Result<(), Exhausted> {
        let shared = self.shared.clone();
        let result = self.run().await;
        if result.is_ok() {
            // A nested supervisor's stop is reported by its parent; the
            // root has none, so it reports its own.
            let root: Arc<str> = shared.path.clone();
            shared.bus.emit("", &root, || EventKind::Stopped {
                reason: StopReason::Shutdown,
            });
        }
        result.map_err(|crash| Exhausted {
            path: shared.path.to_string(),
            crash,
        })
    }

    /// Runs to the end: `Ok` after a requested stop, `Err` (reason
    /// `exhausted`) when the supervisor gave up.
    pub(crate) async fn run(mut self) -> Result<(), Crash> {
        self.start_initial().await;
        self.open_source().await?;
        self.run_started().await
    }

    /// The part of [`Core::run`] after the initial children have started;
    /// a nested supervisor runs its start phase first so that, as in OTP,
    /// its parent reports it started only once its children are.
    ///
    /// An `async` block rather than an `async fn`: the latter keeps `self`
    /// twice in its future (the argument and the body's copy of it), and an
    /// idle supervisor's task is this future.
    #[allow(clippy::manual_async_fn)] // on purpose: see above
    pub(super) fn run_started(mut self) -> impl Future<Output = Result<(), Crash>> + Send {
        async move {
            let result = self.serve().await;
            Box::pin(self.stop_all()).await;
            if let Err(crash) = &result {
                self.emit_self(|| EventKind::Escalated {
                    crash: crash.clone(),
                });
            }
            let done = result.clone().map_err(|crash| Exhausted {
                path: self.shared.path.to_string(),
                crash,
            });
            // Only this loop sets it, once, as it ends.
            let _ = self.shared.done.set(Box::new(done));
            for mail in self.shared.mailbox.close() {
                if let Mail::Command(command) = *mail {
                    refuse(&self.shared.path, command);
                }
            }
            result
        }
    }

    /// The loop an idle supervisor waits in. What it calls on an exit, a
    /// command or a timer is boxed: those futures (starts, restarts, stops)
    /// are large and rare, and inlined they would make every idle
    /// supervisor's task as large as its biggest one.
    async fn serve(&mut self) -> Result<(), Crash> {
        let shared = self.shared.clone();
        // Made on the first timer: most supervisors never schedule one.
        let mut sleep: Option<Pin<Box<Sleep>>> = None;
        // Dropped (a listener closed) as the loop ends, before the children
        // stop.
        let mut source = self.source.take();
        loop {
            let next = self.timers.next_deadline();
            if let Some(at) = next {
                match sleep.as_mut() {
                    Some(sleep) => sleep.as_mut().reset(at),
                    None => sleep = Some(Box::pin(tokio::time::sleep_until(at))),
                }
            }
            let due = async {
                match sleep.as_mut() {
                    Some(sleep) if next.is_some() => sleep.as_mut().await,
                    _ => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                next = shared.mailbox.next() => {
                    let Next::Mail(mail) = next else {
                        return Ok(());
                    };
                    self.on_mail(*mail).await?;
                    for _ in 0..MAIL_BATCH {
                        match shared.mailbox.try_recv() {
                            Some(mail) => self.on_mail(*mail).await?,
                            None => break,
                        }
                    }
                }
                () = due => Box::pin(self.fire_timers()).await,
                child = next_child(&mut source) => match child {
                    Some(child) => Box::pin(self.add_from_source(child)).await,
                    None => return Err(source_ended()),
                },
            }
        }
    }

    /// Handles one piece of mail; `Err` when an exit exhausted the restart
    /// intensity.
    fn on_mail(&mut self, mail: Mail) -> BoxFuture<'_, Result<(), Crash>> {
        match mail {
            Mail::Exit(exit) => Box::pin(self.on_exit(exit)),
            Mail::Command(command) => Box::pin(async move {
                self.on_command(command).await;
                Ok(())
            }),
        }
    }

    /// Emits an event about child `id` of this supervisor.
    pub(crate) fn emit(&self, id: &Arc<str>, kind: impl FnOnce() -> EventKind) {
        self.shared.bus.emit(&self.shared.path, id, kind);
    }

    /// Emits an event about this supervisor itself.
    fn emit_self(&self, kind: impl FnOnce() -> EventKind) {
        let path = &self.shared.path;
        let (parent, id) = path.rsplit_once('/').unwrap_or(("", path));
        self.shared.bus.emit(parent, &Arc::from(id), kind);
    }
}

impl Drop for Core {
    /// A supervisor dropped without a clean stop (its parent aborted it, or
    /// gave up on its start phase) takes its children with it instead of
    /// leaving them running unsupervised.
    fn drop(&mut self) {
        // Requests still queued are dropped: their callers learn that the
        // supervisor is not running, and later ones are refused.
        drop(self.shared.mailbox.close());
        for child in self.shared.table().children_mut() {
            if let Some(task) = child.task.take() {
                task.abort();
            }
        }
    }
}
