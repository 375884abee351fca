//! The tree read in place: each supervisor's children are visited under its
//! table lock, with nothing copied. A snapshot of a thousand sensors copies
//! every path and record (a few hundred kilobytes that the heap keeps long
//! after); rendering the retained tree from the live tables costs only the
//! output.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::child::ChildKind;
use crate::snapshot::ChildState;
use crate::supervisor::Shared;

/// The children of one supervisor, to be visited with [`LiveChildren::with`].
pub struct LiveChildren<'a> {
    shared: &'a Arc<Shared>,
    now: Instant,
}

/// One child as it is now, borrowed from its supervisor's table.
pub struct ChildView<'a> {
    /// Its id.
    pub id: &'a str,
    /// Its supervisor's path; the child's own is `{parent}/{id}`.
    pub parent: &'a str,
    /// Worker or supervisor.
    pub kind: ChildKind,
    /// Its state.
    pub state: ChildState,
    /// Restarts over its whole life.
    pub restarts: u32,
    /// How long the current run has lasted, when running.
    pub uptime: Option<Duration>,
    /// Reason of its last crash, if any.
    pub last_reason: Option<&'a str>,
    /// A running nested supervisor's own children.
    pub children: Option<LiveChildren<'a>>,
}

impl<'a> LiveChildren<'a> {
    pub(crate) fn new(shared: &'a Arc<Shared>) -> Self {
        Self {
            shared,
            now: Instant::now(),
        }
    }

    /// Calls `visit` with the children in start order. The supervisor's
    /// table stays locked until `visit` returns (nested ones while their
    /// own children are visited), so `visit` must not wait on anything.
    pub fn with<R>(&self, visit: impl FnOnce(&mut dyn Iterator<Item = ChildView<'_>>) -> R) -> R {
        let table = self.shared.table();
        let parent: &str = &self.shared.path;
        let mut children = table.children().map(|child| ChildView {
            id: &child.spec.id,
            parent,
            kind: child.spec.kind(),
            state: child.state,
            restarts: child.restarts,
            uptime: child.uptime(self.now),
            last_reason: child.last_reason.as_deref(),
            children: child.nested.as_ref().map(|nested| LiveChildren {
                shared: nested,
                now: self.now,
            }),
        });
        visit(&mut children)
    }
}
