//! Stopping children: one at a time in reverse start order (OTP), or all at
//! once where they are independent of each other (a dynamic pool, and the
//! temporary children added last).

use std::sync::Arc;

use tokio::task::JoinHandle;
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;

use super::core::Core;
use super::table::Shared;
use crate::child::{Restart, Shutdown};
use crate::event::{EventKind, StopReason};
use crate::snapshot::ChildState;
use crate::supervisor::Strategy;

/// Asks a task to stop as its shutdown policy says and returns how it went.
/// An aborted task is not awaited: a child stuck in blocking code cannot
/// hold its supervisor hostage.
pub(crate) async fn stop_task(
    mut task: JoinHandle<()>,
    signal: StopSignal,
    shutdown: Shutdown,
) -> StopReason {
    let ask = || signal.send();
    match shutdown {
        Shutdown::Brutal => {
            task.abort();
            StopReason::Killed
        }
        Shutdown::Infinity => {
            ask();
            let _ = (&mut task).await;
            StopReason::Shutdown
        }
        Shutdown::Timeout(limit) => {
            ask();
            match timeout(limit, &mut task).await {
                Ok(_) => StopReason::Shutdown,
                Err(_) => {
                    task.abort();
                    StopReason::Killed
                }
            }
        }
    }
}

/// How a running child is asked to stop: a worker through its token, a
/// nested supervisor through its mailbox.
pub(crate) struct StopSignal {
    token: Option<CancellationToken>,
    nested: Option<Arc<Shared>>,
}

impl StopSignal {
    fn send(&self) {
        if let Some(token) = &self.token {
            token.cancel();
        }
        if let Some(nested) = &self.nested {
            nested.mailbox.request_stop();
        }
    }
}

/// A running child taken out of its record, ready to be stopped.
struct Stopping {
    id: Arc<str>,
    task: JoinHandle<()>,
    signal: StopSignal,
    shutdown: Shutdown,
}

impl Core {
    /// Takes a child's task out of its record and marks it `state`; returns
    /// nothing if it was not running.
    fn take_running(&self, key: u64, state: ChildState) -> Option<Stopping> {
        let now = tokio::time::Instant::now();
        let mut table = self.shared.table();
        let child = table.get_mut(key)?;
        child.epoch = child.epoch.wrapping_add(1);
        child.set_state(state, now);
        let signal = StopSignal {
            token: child.stop.take(),
            nested: child.nested.take(),
        };
        let task = child.task.take()?;
        Some(Stopping {
            id: child.spec.id.clone(),
            task,
            signal,
            shutdown: child.spec.shutdown,
        })
    }

    /// Stops one child and leaves its record in `state`.
    pub(crate) async fn stop_child(&mut self, key: u64, state: ChildState) {
        if let Some(s) = self.take_running(key, state) {
            let reason = stop_task(s.task, s.signal, s.shutdown).await;
            self.emit(&s.id, || EventKind::Stopped { reason });
        }
    }

    /// Stops every child in reverse start order, one after another (OTP),
    /// except that children independent of each other stop all at once:
    /// all of a dynamic pool's, and the temporary children added last
    /// (connections, say).
    pub(crate) async fn stop_all(&mut self) {
        let mut keys = self.shared.table().keys_from(0);
        keys.reverse();
        let together = if matches!(self.shared.strategy, Strategy::Dynamic { .. }) {
            keys.len()
        } else {
            let table = self.shared.table();
            keys.iter()
                .take_while(|&&key| {
                    table
                        .get(key)
                        .is_some_and(|c| c.spec.restart == Restart::Temporary)
                })
                .count()
        };
        let (newest, rest) = keys.split_at(together);
        self.stop_together(newest).await;
        for &key in rest {
            self.stop_child(key, ChildState::Stopped).await;
        }
    }

    /// Stops `keys` concurrently.
    async fn stop_together(&mut self, keys: &[u64]) {
        let stopping: Vec<Stopping> = keys
            .iter()
            .filter_map(|&key| self.take_running(key, ChildState::Stopped))
            .collect();
        let ids: Vec<Arc<str>> = stopping.iter().map(|s| s.id.clone()).collect();
        let reasons = futures_util::future::join_all(
            stopping
                .into_iter()
                .map(|s| stop_task(s.task, s.signal, s.shutdown)),
        )
        .await;
        for (id, reason) in ids.iter().zip(reasons) {
            self.emit(id, || EventKind::Stopped { reason });
        }
    }
}
