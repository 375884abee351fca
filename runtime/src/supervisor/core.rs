//! The run loop of one supervisor: start the children in order, then react
//! to exits, run-time requests and due timers until told to stop or until
//! the restart intensity is exhausted.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures_util::FutureExt;
use tokio::sync::mpsc;
use tokio::time::{Instant, Sleep};

use super::spec::validate_child;
use super::table::{Command, Shared};
use super::timers::Timers;
use crate::child::{ChildContext, ChildSpec, ChildStart, Running, Starting};
use crate::crash::{reason, Crash};
use crate::decision::{decide, Decision, Ending, Exit};
use crate::error::{Exhausted, SpecError, StartChildError, TerminateChildError};
use crate::event::{Action, EventKind, StopReason};
use crate::handle::SupervisorHandle;
use crate::intensity::IntensityWindow;
use crate::policy::RestartPolicy;
use crate::snapshot::ChildState;
use crate::supervisor::{Strategy, SupervisorSpec};

/// Exits handled in one go before the loop looks at stop requests again.
const EXIT_BATCH: usize = 1024;

/// A child's end as reported by its task (or by a failed start). Sent
/// boxed, as commands are: an idle channel keeps a block of 32 slots, and
/// a slot the size of a pointer keeps an idle supervisor small.
pub(crate) struct ExitMsg {
    key: u64,
    epoch: u32,
    outcome: Result<(), Crash>,
}

/// The state only the run loop touches.
pub(crate) struct Core {
    pub(crate) shared: Arc<Shared>,
    spec: Arc<SupervisorSpec>,
    exits_tx: mpsc::UnboundedSender<Box<ExitMsg>>,
    exits_rx: mpsc::UnboundedReceiver<Box<ExitMsg>>,
    commands: mpsc::UnboundedReceiver<Box<Command>>,
    pub(crate) timers: Timers,
    /// The window shared by children without a policy of their own.
    pub(crate) window: IntensityWindow,
    rng: fastrand::Rng,
    /// The supervisor's own policy, shared with each decision that uses it.
    policy: Arc<RestartPolicy>,
}

impl Core {
    pub(crate) fn new(
        shared: Arc<Shared>,
        commands: mpsc::UnboundedReceiver<Box<Command>>,
        spec: Arc<SupervisorSpec>,
        seed: u64,
    ) -> Self {
        let (exits_tx, exits_rx) = mpsc::unbounded_channel();
        let policy = Arc::new(spec.policy.clone());
        Self {
            shared,
            spec,
            exits_tx,
            exits_rx,
            commands,
            timers: Timers::default(),
            window: IntensityWindow::default(),
            rng: fastrand::Rng::with_seed(seed),
            policy,
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
        self.run_started().await
    }

    /// The part of [`Core::run`] after the initial children have started;
    /// a nested supervisor runs its start phase first so that, as in OTP,
    /// its parent reports it started only once its children are.
    async fn run_started(mut self) -> Result<(), Crash> {
        let result = self.serve().await;
        self.stop_all().await;
        if let Err(crash) = &result {
            self.emit_self(|| EventKind::Escalated {
                crash: crash.clone(),
            });
        }
        let done = result.clone().map_err(|crash| Exhausted {
            path: self.shared.path.to_string(),
            crash,
        });
        self.shared.done.send_replace(Some(done));
        self.commands.close();
        while let Ok(command) = self.commands.try_recv() {
            refuse(&self.shared.path, *command);
        }
        result
    }

    async fn start_initial(&mut self) {
        let now = Instant::now();
        let keys: Vec<u64> = {
            let mut table = self.shared.table();
            self.spec
                .children
                .iter()
                .map(|spec| table.push(spec.clone(), now))
                .collect()
        };
        for key in keys {
            if self.shared.stop.is_cancelled() {
                return;
            }
            self.start_or_report(key, false).await;
        }
    }

    async fn serve(&mut self) -> Result<(), Crash> {
        let stop = self.shared.stop.clone();
        let mut sleep: std::pin::Pin<Box<Sleep>> =
            Box::pin(tokio::time::sleep(std::time::Duration::ZERO));
        loop {
            let next = self.timers.next_deadline();
            if let Some(at) = next {
                sleep.as_mut().reset(at);
            }
            tokio::select! {
                biased;
                _ = stop.cancelled() => return Ok(()),
                Some(exit) = self.exits_rx.recv() => {
                    self.on_exit(*exit).await?;
                    for _ in 0..EXIT_BATCH {
                        match self.exits_rx.try_recv() {
                            Ok(exit) => self.on_exit(*exit).await?,
                            Err(_) => break,
                        }
                    }
                }
                Some(command) = self.commands.recv() => self.on_command(*command).await,
                _ = sleep.as_mut(), if next.is_some() => self.fire_timers().await,
            }
        }
    }

    /// Starts a child; a failed start is fed back as a crash so that the
    /// restart policy applies to it like to any other crash.
    pub(crate) async fn start_or_report(&mut self, key: u64, is_restart: bool) {
        if let Err((epoch, crash)) = self.start(key, is_restart).await {
            let _ = self.exits_tx.send(Box::new(ExitMsg {
                key,
                epoch,
                outcome: Err(crash),
            }));
        }
    }

    /// Calls the child's start function, awaits its start phase (unless the
    /// supervisor is told to stop meanwhile) and spawns its body.
    async fn start(&mut self, key: u64, is_restart: bool) -> Result<(), (u32, Crash)> {
        let now = Instant::now();
        let (spec, ctx, epoch) = {
            let mut table = self.shared.table();
            let Some(child) = table.get_mut(key) else {
                return Ok(());
            };
            child.epoch = child.epoch.wrapping_add(1);
            if is_restart {
                child.restarts = child.restarts.saturating_add(1);
            }
            child.set_state(ChildState::Starting, now);
            let ctx = ChildContext {
                id: child.spec.id.clone(),
                parent: SupervisorHandle::new(self.shared.clone()),
                stop: tokio_util::sync::CancellationToken::new(),
                restarts: child.restarts,
            };
            (child.spec.clone(), ctx, child.epoch)
        };
        let (starting, nested) = self.call_start(&spec, ctx.clone());
        let running = match starting {
            Ok(Starting::Ready(running)) => running,
            Ok(Starting::Pending(phase)) => {
                let stop = self.shared.stop.clone();
                tokio::select! {
                    biased;
                    _ = stop.cancelled() => return Ok(()),
                    result = AssertUnwindSafe(phase).catch_unwind() => {
                        match result.unwrap_or_else(|panic| Err(Crash::from_panic(panic))) {
                            Ok(running) => running,
                            Err(crash) => return Err((epoch, start_failed(crash))),
                        }
                    }
                }
            }
            Err(crash) => return Err((epoch, start_failed(crash))),
        };
        let task = tokio::spawn(run_child(running, key, epoch, self.exits_tx.clone()));
        let restarts = {
            let mut table = self.shared.table();
            let Some(child) = table.get_mut(key).filter(|c| c.epoch == epoch) else {
                task.abort();
                return Ok(());
            };
            child.task = Some(task);
            child.stop = Some(ctx.stop);
            child.nested = nested;
            child.started_at = now;
            child.set_state(ChildState::Running, Instant::now());
            child.restarts
        };
        self.emit(&spec.id, || EventKind::Started { restarts });
        Ok(())
    }

    /// Runs the start function (catching a panic in it) or builds a nested
    /// supervisor.
    fn call_start(
        &mut self,
        spec: &ChildSpec,
        ctx: ChildContext,
    ) -> (Result<Starting, Crash>, Option<Arc<Shared>>) {
        match &spec.start {
            ChildStart::Worker(start) => {
                let result = std::panic::catch_unwind(AssertUnwindSafe(|| start(ctx)));
                (result.map_err(Crash::from_panic), None)
            }
            ChildStart::Supervisor(nested_spec) => {
                let path: Arc<str> = format!("{}/{}", self.shared.path, spec.id).into();
                let (shared, commands) = Shared::new(
                    path,
                    nested_spec.strategy,
                    self.shared.bus.clone(),
                    ctx.stop,
                );
                let mut core = Core::new(
                    shared.clone(),
                    commands,
                    nested_spec.clone(),
                    self.rng.u64(..),
                );
                let start_phase = async move {
                    core.start_initial().await;
                    Ok(Running::new(core.run_started()))
                };
                (Ok(Starting::Pending(Box::pin(start_phase))), Some(shared))
            }
        }
    }

    async fn on_exit(&mut self, exit: ExitMsg) -> Result<(), Crash> {
        let now = Instant::now();
        let sample = self.rng.f64();
        let (id, crash, verdict, policy) = {
            let mut table = self.shared.table();
            let Some(child) = table.get_mut(exit.key).filter(|c| c.epoch == exit.epoch) else {
                return Ok(());
            };
            child.task = None;
            child.stop = None;
            child.nested = None;
            let ending = if exit.outcome.is_ok() {
                Ending::Normal
            } else {
                Ending::Crash
            };
            let crash = match exit.outcome {
                Err(crash) => Some(crash),
                Ok(()) if child.spec.restart == crate::child::Restart::Permanent => {
                    Some(Crash::new(
                        reason::NORMAL,
                        "exited normally; permanent children are always restarted",
                    ))
                }
                Ok(()) => None,
            };
            if let Some(crash) = &crash {
                child.last_reason = Some(crash.reason.clone());
            }
            let policy = child
                .spec
                .policy
                .clone()
                .unwrap_or_else(|| self.policy.clone());
            let window = child.window.as_mut().unwrap_or(&mut self.window);
            let facts = Exit {
                ending,
                restart: child.spec.restart,
                ran_for: now.saturating_duration_since(child.started_at),
                now,
            };
            let verdict = decide(facts, &policy, window, &mut child.backoff, sample);
            (child.spec.id.clone(), crash, verdict, policy)
        };
        let action = match verdict.decision {
            Decision::Restart { delay } => Action::Restart { delay },
            Decision::Quarantine { for_ } => Action::Quarantine { for_ },
            Decision::Escalate => Action::Escalate,
            Decision::StayDown => Action::None,
        };
        if let Some(crash) = &crash {
            self.emit(&id, || EventKind::Crashed {
                crash: crash.clone(),
                restarts_in_window: verdict.restarts_in_window,
                intensity: policy.intensity,
                period: policy.period,
                action,
            });
        }
        match verdict.decision {
            Decision::Restart { delay } => self.restart_after(exit.key, delay).await,
            Decision::Quarantine { for_ } => self.quarantine(exit.key, for_),
            Decision::StayDown => self.leave_down(exit.key, crash.is_some()),
            Decision::Escalate => {
                // No crash means a permanent child returned normally (which
                // counts as a restart, as in OTP): say so instead of nothing.
                let last = crash.map_or_else(
                    || format!("{id}: {}", reason::NORMAL),
                    |c| format!("{id}: {c}"),
                );
                return Err(Crash::new(
                    reason::EXHAUSTED,
                    format!(
                        "more than {} restarts in {:?}; last: {last}",
                        policy.intensity, policy.period
                    ),
                ));
            }
        }
        Ok(())
    }

    /// A child that is not restarted: dynamic children are forgotten (their
    /// slot frees up), static ones stay visible as `stopped`.
    fn leave_down(&mut self, key: u64, crashed: bool) {
        let now = Instant::now();
        let id = {
            let mut table = self.shared.table();
            let Some(child) = table.get_mut(key) else {
                return;
            };
            child.set_state(ChildState::Stopped, now);
            let id = child.spec.id.clone();
            if matches!(self.shared.strategy, Strategy::Dynamic { .. }) {
                table.remove(key);
            }
            id
        };
        let reason = if crashed {
            StopReason::Crashed
        } else {
            StopReason::Exited
        };
        self.emit(&id, || EventKind::Stopped { reason });
    }

    async fn fire_timers(&mut self) {
        for (key, epoch) in self.timers.due(Instant::now()) {
            let due = self.shared.table().get_mut(key).is_some_and(|c| {
                c.epoch == epoch
                    && matches!(c.state, ChildState::Restarting | ChildState::Quarantined)
            });
            if due {
                self.start_or_report(key, true).await;
            }
        }
    }

    async fn on_command(&mut self, command: Command) {
        match command {
            Command::Start(spec, reply) => {
                let result = self.add_child(spec).await;
                let _ = reply.send(result);
            }
            Command::Terminate(id, reply) => {
                let result = self.remove_child(&id).await;
                let _ = reply.send(result);
            }
        }
    }

    async fn add_child(&mut self, spec: ChildSpec) -> Result<(), StartChildError> {
        let path = self.shared.path.clone();
        validate_child(&path, &spec)?;
        let id = spec.id.clone();
        let key = {
            let mut table = self.shared.table();
            if table.by_id.contains_key(&id) {
                return Err(SpecError::DuplicateChild {
                    supervisor: path.to_string(),
                    id: id.to_string(),
                }
                .into());
            }
            if let Strategy::Dynamic { max_children } = self.shared.strategy {
                if table.children.len() >= max_children {
                    return Err(StartChildError::MaxChildren {
                        supervisor: path.to_string(),
                        id: id.to_string(),
                        max: max_children,
                    });
                }
            }
            table.push(spec, Instant::now())
        };
        match self.start(key, false).await {
            Ok(()) => Ok(()),
            Err((_, crash)) => {
                self.shared.table().remove(key);
                Err(StartChildError::StartFailed {
                    supervisor: path.to_string(),
                    id: id.to_string(),
                    crash,
                })
            }
        }
    }

    async fn remove_child(&mut self, id: &str) -> Result<(), TerminateChildError> {
        let key = self.shared.table().by_id.get(id).copied();
        let Some(key) = key else {
            return Err(TerminateChildError::NotFound {
                supervisor: self.shared.path.to_string(),
                id: id.to_string(),
            });
        };
        self.stop_child(key, ChildState::Stopped).await;
        self.shared.table().remove(key);
        Ok(())
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
        for child in self.shared.table().children.values_mut() {
            if let Some(task) = child.task.take() {
                task.abort();
            }
        }
    }
}

/// A child's task: runs the body, turns a panic into a crash, reports the end.
async fn run_child(
    body: Running,
    key: u64,
    epoch: u32,
    exits: mpsc::UnboundedSender<Box<ExitMsg>>,
) {
    let outcome = AssertUnwindSafe(body.0)
        .catch_unwind()
        .await
        .unwrap_or_else(|panic| Err(Crash::from_panic(panic)));
    // The supervisor may be gone (shutting down); then nobody needs to know.
    let _ = exits.send(Box::new(ExitMsg {
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

/// Answers a request that arrived too late.
fn refuse(path: &str, command: Command) {
    match command {
        Command::Start(_, reply) => {
            let _ = reply.send(Err(StartChildError::NotRunning(path.to_string())));
        }
        Command::Terminate(_, reply) => {
            let _ = reply.send(Err(TerminateChildError::NotRunning(path.to_string())));
        }
    }
}
