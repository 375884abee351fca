//! The children's records of one supervisor, and the part of the supervisor
//! that handles and snapshots share with its run loop.
//!
//! The run loop is the only writer. It locks the table for short,
//! synchronous steps and never across an `.await` or a call into user code,
//! so a snapshot can be taken at any moment without stopping anything.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::{oneshot, SetOnce};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::backoff::BackoffState;
use crate::child::ChildSpec;
use crate::error::{Exhausted, StartChildError, TerminateChildError};
use crate::event::EventBus;
use crate::intensity::IntensityWindow;
use crate::snapshot::{ChildSnapshot, ChildState, TreeSnapshot};
use crate::supervisor::Strategy;

use super::exit::ExitMsg;
use super::mailbox::Mailbox;

/// Requests a handle sends to the run loop.
pub(crate) enum Command {
    Start(ChildSpec, oneshot::Sender<Result<(), StartChildError>>),
    Terminate(Arc<str>, oneshot::Sender<Result<(), TerminateChildError>>),
    /// A liveness probe: only a serving loop answers it.
    Ping(oneshot::Sender<()>),
}

/// What reaches a supervisor's run loop: its handles' requests and its
/// children's ends, in one mailbox (`mailbox.rs`).
pub(crate) enum Mail {
    Command(Command),
    Exit(ExitMsg),
}

/// What handles, snapshots and the run loop of one supervisor share.
pub(crate) struct Shared {
    pub(crate) path: Arc<str>,
    pub(crate) strategy: Strategy,
    pub(crate) bus: EventBus,
    /// Mail, and the stop request ([`Mailbox::request_stop`]).
    pub(crate) mailbox: Mailbox,
    /// How the supervisor ended, once it has. Boxed: set once at the end,
    /// it would otherwise add its size to every running supervisor.
    pub(crate) done: SetOnce<Box<Result<(), Exhausted>>>,
    table: Mutex<Table>,
}

impl Shared {
    /// The shared part of a new supervisor; only its run loop reads the
    /// mailbox.
    pub(crate) fn new(path: Arc<str>, strategy: Strategy, bus: EventBus) -> Arc<Self> {
        Arc::new(Self {
            path,
            strategy,
            bus,
            mailbox: Mailbox::default(),
            done: SetOnce::new(),
            table: Mutex::new(Table::default()),
        })
    }

    /// Locks the table. A poisoned lock only means a panic elsewhere while
    /// it was held; the records are plain data and stay usable.
    pub(crate) fn table(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn snapshot(&self) -> TreeSnapshot {
        let now = Instant::now();
        let children = self
            .table()
            .children()
            .map(|child| child.snapshot(&self.path, now))
            .collect();
        TreeSnapshot {
            path: self.path.to_string(),
            strategy: self.strategy.as_str(),
            children,
        }
    }
}

/// One child's record.
pub(crate) struct Child {
    pub(crate) spec: ChildSpec,
    /// Bumped at every start, stop and schedule: exits and timers carrying
    /// an older epoch are stale and ignored.
    pub(crate) epoch: u32,
    pub(crate) state: ChildState,
    pub(crate) task: Option<JoinHandle<()>>,
    pub(crate) stop: Option<CancellationToken>,
    pub(crate) restarts: u32,
    pub(crate) started_at: Instant,
    pub(crate) since: Instant,
    pub(crate) backoff: BackoffState,
    /// The child's own window, when it has a policy of its own.
    pub(crate) window: Option<IntensityWindow>,
    pub(crate) last_reason: Option<Cow<'static, str>>,
    /// The nested supervisor's shared part while it runs.
    pub(crate) nested: Option<Arc<Shared>>,
}

impl Child {
    pub(crate) fn new(spec: ChildSpec, now: Instant) -> Self {
        let window = spec.policy.as_ref().map(|_| IntensityWindow::default());
        Self {
            spec,
            epoch: 0,
            state: ChildState::Starting,
            task: None,
            stop: None,
            restarts: 0,
            started_at: now,
            since: now,
            backoff: BackoffState::default(),
            window,
            last_reason: None,
            nested: None,
        }
    }

    pub(crate) fn set_state(&mut self, state: ChildState, now: Instant) {
        self.state = state;
        self.since = now;
    }

    /// How long the current run has lasted at `now`, when running: for
    /// snapshots and for the live view alike.
    pub(crate) fn uptime(&self, now: Instant) -> Option<std::time::Duration> {
        matches!(self.state, ChildState::Running)
            .then(|| now.saturating_duration_since(self.started_at))
    }

    fn snapshot(&self, parent: &str, now: Instant) -> ChildSnapshot {
        ChildSnapshot {
            id: self.spec.id.clone(),
            path: format!("{parent}/{}", self.spec.id),
            kind: self.spec.kind(),
            state: self.state,
            restarts: self.restarts,
            uptime: self.uptime(now),
            in_state_for: now.saturating_duration_since(self.since),
            last_reason: self.last_reason.clone(),
            children: self
                .nested
                .as_ref()
                .map(|nested| nested.snapshot().children)
                .unwrap_or_default(), // a worker has no children
        }
    }
}

/// Children in start order, each with the key it was given at start.
///
/// A plain vector kept sorted by key: most supervisors here hold one to a
/// few children (a sensor's own supervisor holds one), where a `BTreeMap`
/// leaf (eleven slots) costs several KiB per supervisor. Lookups by key are
/// binary searches; by id a scan, until the table has held more than
/// [`INDEX_FROM`] children, when the ids get an index: a dynamic pool (a
/// `tcp-listen` sensor's connections) holds thousands, and a scan for each
/// accepted connection's id made accepting 10,000 of them quadratic.
/// Records are boxed, so that removing one from such a pool moves
/// pointers, not records.
#[derive(Default)]
pub(crate) struct Table {
    children: Vec<(u64, Box<Child>)>,
    next_key: u64,
    /// Keys by id, once the table has held more than [`INDEX_FROM`]
    /// children.
    by_id: Option<HashMap<Arc<str>, u64>>,
}

/// Children a table holds before its ids are indexed.
const INDEX_FROM: usize = 32;

impl Table {
    /// Makes room for exactly `more` children: the initial ones are known,
    /// and a sensor's supervisor holds one.
    pub(crate) fn reserve_exact(&mut self, more: usize) {
        self.children.reserve_exact(more);
    }

    /// Appends a child after all existing ones and returns its key.
    pub(crate) fn push(&mut self, spec: ChildSpec, now: Instant) -> u64 {
        let key = self.next_key;
        self.next_key += 1;
        let id = spec.id.clone();
        self.children.push((key, Box::new(Child::new(spec, now))));
        match &mut self.by_id {
            Some(index) => {
                index.entry(id).or_insert(key);
            }
            None if self.children.len() > INDEX_FROM => {
                let mut index = HashMap::with_capacity(self.children.len() * 2);
                for (key, child) in &self.children {
                    index.entry(child.spec.id.clone()).or_insert(*key);
                }
                self.by_id = Some(index);
            }
            None => {}
        }
        key
    }

    pub(crate) fn remove(&mut self, key: u64) -> Option<Child> {
        let at = self.position(key)?;
        let (_, child) = self.children.remove(at);
        if let Some(index) = &mut self.by_id {
            if index.get(&*child.spec.id) == Some(&key) {
                index.remove(&*child.spec.id);
            }
        }
        Some(*child)
    }

    pub(crate) fn get(&self, key: u64) -> Option<&Child> {
        self.position(key).map(|at| &*self.children[at].1)
    }

    pub(crate) fn get_mut(&mut self, key: u64) -> Option<&mut Child> {
        self.position(key).map(|at| &mut *self.children[at].1)
    }

    /// The key of the child named `id`.
    pub(crate) fn key_of(&self, id: &str) -> Option<u64> {
        if let Some(index) = &self.by_id {
            return index.get(id).copied();
        }
        self.children
            .iter()
            .find(|(_, child)| &*child.spec.id == id)
            .map(|(key, _)| *key)
    }

    pub(crate) fn len(&self) -> usize {
        self.children.len()
    }

    /// Every child, in start order.
    pub(crate) fn children(&self) -> impl Iterator<Item = &Child> {
        self.children.iter().map(|(_, child)| &**child)
    }

    /// Every child, in start order, to change.
    pub(crate) fn children_mut(&mut self) -> impl Iterator<Item = &mut Child> {
        self.children.iter_mut().map(|(_, child)| &mut **child)
    }

    /// Keys in start order from `from` (inclusive) on.
    pub(crate) fn keys_from(&self, from: u64) -> Vec<u64> {
        let at = self.children.partition_point(|(key, _)| *key < from);
        self.children[at..].iter().map(|(key, _)| *key).collect()
    }

    fn position(&self, key: u64) -> Option<usize> {
        self.children.binary_search_by_key(&key, |(k, _)| *k).ok()
    }
}
