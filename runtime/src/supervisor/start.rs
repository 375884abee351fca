//! Starting children: the initial start in spec order, a single start or
//! restart (calling the start function, awaiting its start phase, spawning
//! the body), and the task that runs a child's body and reports its end.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures_util::FutureExt;
use tokio::time::Instant;

use super::core::Core;
use super::exit::ExitMsg;
use super::table::{Mail, Shared};
use crate::child::{ChildContext, ChildSpec, ChildStart, Running, Starting};
use crate::crash::{reason, Crash};
use crate::event::EventKind;
use crate::handle::SupervisorHandle;
use crate::snapshot::ChildState;

impl Core {
    /// Starts the spec's children in order, stopping early if told to stop.
    pub(super) async fn start_initial(&mut self) {
        let now = Instant::now();
        let keys: Vec<u64> = {
            let mut table = self.shared.table();
            table.reserve_exact(self.spec.children.len());
            self.spec
                .children
                .iter()
                .map(|spec| table.push(spec.clone(), now))
                .collect()
        };
        for key in keys {
            if self.shared.mailbox.stop_requested() {
                return;
            }
            self.start_or_report(key, false).await;
        }
    }

    /// Starts a child; a failed start is fed back as a crash so that the
    /// restart policy applies to it like to any other crash.
    pub(crate) async fn start_or_report(&mut self, key: u64, is_restart: bool) {
        if let Err(StartFailed { epoch, crash }) = self.start(key, is_restart).await {
            let _ = self.shared.mailbox.send(Mail::Exit(ExitMsg {
                key,
                epoch,
                outcome: Err(crash),
            }));
        }
    }

    /// Calls the child's start function, awaits its start phase (unless the
    /// supervisor is told to stop meanwhile) and spawns its body. `Ok` also
    /// when the child went away or the supervisor was told to stop.
    pub(super) async fn start(&mut self, key: u64, is_restart: bool) -> Result<(), StartFailed> {
        let now = Instant::now();
        let Some(Attempt {
            spec,
            restarts,
            epoch,
        }) = self.begin_start(key, is_restart, now)
        else {
            return Ok(());
        };
        let called = self.call_start(&spec, restarts);
        let failed = |crash| StartFailed {
            epoch,
            crash: start_failed(crash),
        };
        let running = match called.starting.map_err(failed)? {
            Starting::Ready(running) => running,
            Starting::Pending(phase) => {
                let shared = self.shared.clone();
                tokio::select! {
                    biased;
                    () = shared.mailbox.stopped() => return Ok(()),
                    result = AssertUnwindSafe(phase).catch_unwind() => result
                        .unwrap_or_else(|panic| Err(Crash::from_panic(panic)))
                        .map_err(failed)?,
                }
            }
        };
        let task = tokio::spawn(run_child(running, key, epoch, self.shared.clone()));
        let restarts = {
            let mut table = self.shared.table();
            let Some(child) = table.get_mut(key).filter(|c| c.epoch == epoch) else {
                task.abort();
                return Ok(());
            };
            child.task = Some(task);
            child.stop = called.stop;
            child.nested = called.nested;
            child.started_at = now;
            child.set_state(ChildState::Running, Instant::now());
            child.restarts
        };
        self.emit(&spec.id, || EventKind::Started { restarts });
        Ok(())
    }

    /// Marks child `key` as starting under a new epoch; `None` when the
    /// child is gone.
    fn begin_start(&mut self, key: u64, is_restart: bool, now: Instant) -> Option<Attempt> {
        let mut table = self.shared.table();
        let child = table.get_mut(key)?;
        child.epoch = child.epoch.wrapping_add(1);
        if is_restart {
            child.restarts = child.restarts.saturating_add(1);
        }
        child.set_state(ChildState::Starting, now);
        Some(Attempt {
            spec: child.spec.clone(),
            restarts: child.restarts,
            epoch: child.epoch,
        })
    }

    /// Runs a worker's start function (catching a panic in it) with a
    /// context of its own, or builds a nested supervisor. A worker is told to
    /// stop through its context's token; a nested supervisor through its
    /// mailbox, and has no token.
    fn call_start(&mut self, spec: &ChildSpec, restarts: u32) -> Called {
        match &spec.start {
            ChildStart::Worker(start) => {
                let stop = tokio_util::sync::CancellationToken::new();
                let ctx = ChildContext {
                    id: spec.id.clone(),
                    parent: SupervisorHandle::new(self.shared.clone()),
                    stop: stop.clone(),
                    restarts,
                };
                let result = std::panic::catch_unwind(AssertUnwindSafe(|| start(ctx)));
                Called {
                    starting: result.map_err(Crash::from_panic),
                    nested: None,
                    stop: Some(stop),
                }
            }
            ChildStart::Supervisor(nested_spec) => {
                let path: Arc<str> = format!("{}/{}", self.shared.path, spec.id).into();
                let shared = Shared::new(path, nested_spec.strategy, self.shared.bus.clone());
                let mut core = Core::new(shared.clone(), nested_spec.clone(), self.rng.u64(..));
                let start_phase = async move {
                    core.start_initial().await;
                    core.open_source().await?;
                    Ok(Running::new(core.run_started()))
                };
                Called {
                    starting: Ok(Starting::Pending(Box::pin(start_phase))),
                    nested: Some(shared),
                    stop: None,
                }
            }
        }
    }
}

/// A start that failed: the epoch it ran under and why.
pub(super) struct StartFailed {
    pub(super) epoch: u32,
    pub(super) crash: Crash,
}

/// One start attempt, prepared under the table lock.
struct Attempt {
    spec: ChildSpec,
    /// Restarts so far, for the worker's context.
    restarts: u32,
    epoch: u32,
}

/// What calling a start function gave.
struct Called {
    starting: Result<Starting, Crash>,
    /// The nested supervisor's shared state, when the child is one.
    nested: Option<Arc<Shared>>,
    /// A worker's stop token.
    stop: Option<tokio_util::sync::CancellationToken>,
}

/// A child's task: runs the body, turns a panic into a crash, reports the end.
async fn run_child(body: Running, key: u64, epoch: u32, parent: Arc<Shared>) {
    let outcome = AssertUnwindSafe(body.0)
        .catch_unwind()
        .await
        .unwrap_or_else(|panic| Err(Crash::from_panic(panic)));
    // The supervisor may be gone (shutting down); then nobody needs to know.
    let _ = parent.mailbox.send(Mail::Exit(ExitMsg {
        key,
        epoch,
        outcome,
    }));
}

/// A start-phase error keeps its message and evidence under reason
/// `start_failed`.
fn start_failed(crash: Crash) -> Crash {
    if crash.reason == reason::START_FAILED {
        return crash;
    }
    Crash {
        message: format!("{}: {}", crash.reason, crash.message),
        reason: reason::START_FAILED.into(),
        ..crash
    }
}
