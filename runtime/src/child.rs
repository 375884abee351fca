//! Child specs and what a running child sees.
//!
//! A child is started by its start function. The function gets a
//! [`ChildContext`] (its identity, a shutdown signal, its restart count) and
//! returns either a [`Running`] body straight away or a future that does the
//! start phase (open a port, say) and then returns the body; an error from
//! that phase is a `start_failed` crash. A restart calls the start function
//! again: a restarted child begins from scratch, as in OTP. State that must
//! outlive restarts has to be held deliberately, in something the start
//! closure captures (an `Arc`), so that every such case is visible in code.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio_util::sync::CancellationToken;

use crate::crash::Crash;
use crate::handle::SupervisorHandle;
use crate::policy::RestartPolicy;
use crate::stop_signal::StopSignal;
use crate::supervisor::SupervisorSpec;

/// OTP restart types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Restart {
    /// Always restarted, even after a normal exit.
    Permanent,
    /// Restarted only after a crash.
    Transient,
    /// Never restarted, and forgotten once it ends (a connection, say: its
    /// record would otherwise stay behind in every strategy).
    Temporary,
}

/// How a child is stopped when its supervisor stops it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shutdown {
    /// Ask it to stop (its [`ChildContext::shutdown_requested`] fires), wait
    /// this long, then abort it.
    Timeout(Duration),
    /// Abort it at once.
    Brutal,
    /// Ask it to stop and wait as long as it takes (the default for nested
    /// supervisors, whose own children have timeouts).
    Infinity,
}

/// Whether a child is a worker or a nested supervisor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildKind {
    /// Does the work: a sensor, a link.
    Worker,
    /// Supervises children of its own.
    Supervisor,
}

/// A child's body: the future that is the child's life. Ending with `Err` or
/// a panic is a crash; `Ok(())` is a normal exit.
pub struct Running(pub(crate) Pin<Box<dyn Future<Output = Result<(), Crash>> + Send>>);

impl Running {
    /// Wraps a body future.
    pub fn new(body: impl Future<Output = Result<(), Crash>> + Send + 'static) -> Self {
        Self(Box::pin(body))
    }
}

/// What a start function hands back: a body at once, or a start phase that
/// yields one.
pub enum Starting {
    /// Started; this is the body.
    Ready(Running),
    /// Start phase still to run; the supervisor awaits it before starting
    /// the next sibling, as OTP awaits `init/1`.
    Pending(BoxFuture<'static, Result<Running, Crash>>),
}

/// The start function type, shared by all incarnations of a child.
pub(crate) type StartFn = dyn Fn(ChildContext) -> Starting + Send + Sync;

/// How a child is started: a user function, or a nested supervisor the
/// runtime builds itself.
#[derive(Clone)]
pub(crate) enum ChildStart {
    Worker(Arc<StartFn>),
    Supervisor(Arc<SupervisorSpec>),
}

/// Everything a supervisor needs to start, restart and stop one child.
#[derive(Clone)]
pub struct ChildSpec {
    pub(crate) id: Arc<str>,
    pub(crate) start: ChildStart,
    pub(crate) restart: Restart,
    pub(crate) shutdown: Shutdown,
    pub(crate) policy: Option<Arc<RestartPolicy>>,
}

impl ChildSpec {
    /// A worker whose body starts at once: `body(ctx)` is the child's life.
    pub fn worker<F, Fut>(id: impl Into<Arc<str>>, body: F) -> Self
    where
        F: Fn(ChildContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), Crash>> + Send + 'static,
    {
        let start = move |ctx: ChildContext| Starting::Ready(Running::new(body(ctx)));
        Self::from_start(id, Arc::new(start))
    }

    /// A worker with a start phase: `start(ctx)` opens what the child needs
    /// and returns its body; an error there is a `start_failed` crash.
    pub fn with_start<F, Fut>(id: impl Into<Arc<str>>, start: F) -> Self
    where
        F: Fn(ChildContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Running, Crash>> + Send + 'static,
    {
        let start = move |ctx: ChildContext| Starting::Pending(Box::pin(start(ctx)));
        Self::from_start(id, Arc::new(start))
    }

    /// A nested supervisor; trees nest to any depth.
    pub fn supervisor(id: impl Into<Arc<str>>, mut spec: SupervisorSpec) -> Self {
        // The spec lives as long as the child: keep no spare slots from
        // building it (a vector grown by one push holds four).
        spec.children.shrink_to_fit();
        Self {
            id: id.into(),
            start: ChildStart::Supervisor(Arc::new(spec)),
            restart: Restart::Permanent,
            shutdown: Shutdown::Infinity,
            policy: None,
        }
    }

    fn from_start(id: impl Into<Arc<str>>, start: Arc<StartFn>) -> Self {
        Self {
            id: id.into(),
            start: ChildStart::Worker(start),
            restart: Restart::Permanent,
            shutdown: Shutdown::Timeout(Duration::from_secs(5)),
            policy: None,
        }
    }

    /// Sets the restart type (default permanent).
    pub fn restart(mut self, restart: Restart) -> Self {
        self.restart = restart;
        self
    }

    /// Sets how the child is stopped (default: 5 s timeout for workers,
    /// infinity for supervisors).
    pub fn shutdown(mut self, shutdown: Shutdown) -> Self {
        self.shutdown = shutdown;
        self
    }

    /// Gives the child a restart window of its own, so its crashes neither
    /// use up nor are limited by its siblings' budget. On exhaustion its own
    /// `on_exhausted` applies (quarantine parks just this child).
    pub fn policy(mut self, policy: impl Into<Arc<RestartPolicy>>) -> Self {
        self.policy = Some(policy.into());
        self
    }

    /// The child's id among its siblings.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Worker or supervisor.
    pub fn kind(&self) -> ChildKind {
        match self.start {
            ChildStart::Worker(_) => ChildKind::Worker,
            ChildStart::Supervisor(_) => ChildKind::Supervisor,
        }
    }
}

impl std::fmt::Debug for ChildSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChildSpec")
            .field("id", &self.id)
            .field("kind", &self.kind())
            .field("restart", &self.restart)
            .field("shutdown", &self.shutdown)
            .field("own_policy", &self.policy.is_some())
            .finish()
    }
}

/// What a running child knows about itself and how it hears "stop".
#[derive(Clone)]
pub struct ChildContext {
    pub(crate) id: Arc<str>,
    pub(crate) parent: SupervisorHandle,
    pub(crate) stop: CancellationToken,
    pub(crate) restarts: u32,
}

impl ChildContext {
    /// The child's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The child's path in the tree, e.g. `root/barn/barn-gps`.
    pub fn path(&self) -> String {
        format!("{}/{}", self.parent.path(), self.id)
    }

    /// How many times this child has been restarted so far (0 on the first
    /// start). Lets a child log "attempt n" without keeping state itself.
    pub fn restarts(&self) -> u32 {
        self.restarts
    }

    /// Resolves when the supervisor asks the child to stop. A child that
    /// ignores it is aborted after its shutdown timeout.
    pub async fn shutdown_requested(&self) {
        self.stop.cancelled().await;
    }

    /// [`Self::shutdown_requested`] for a loop that waits on it together with
    /// something that wakes it often (a socket): made once and polled on
    /// every wake-up, it asks the stop token only when the token woke the
    /// task, where the plain future takes two locks per poll.
    pub fn stop_signal(&self) -> StopSignal {
        StopSignal::new(self.stop.clone())
    }

    /// True once a stop was asked for.
    pub fn is_shutting_down(&self) -> bool {
        self.stop.is_cancelled()
    }

    /// The stop signal as a token, to hand to sub-tasks the child spawns.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.stop.clone()
    }

    /// The supervisor this child runs under: lets an acceptor add children
    /// to a sibling dynamic supervisor, for instance.
    pub fn supervisor(&self) -> &SupervisorHandle {
        &self.parent
    }
}
