//! Test kit: workers the test crashes by remote control, and an event log
//! that renders events as short strings so sequences can be compared whole.
#![allow(dead_code, clippy::unwrap_used)] // shared by several test files; tests may panic on setup errors

use std::sync::Arc;
use std::time::Duration;

use edgevisor_runtime::{ChildSpec, Crash, Event, EventKind, StopReason};
use tokio::sync::{broadcast, mpsc, Mutex};

/// What a remote-controlled worker does next.
#[derive(Debug, Clone, Copy)]
pub enum Cmd {
    Crash,
    Panic,
    Exit,
}

/// Sends commands to whichever incarnation of a worker is running.
#[derive(Clone)]
pub struct Remote(mpsc::UnboundedSender<Cmd>);

/// A command to a child that no longer exists (a temporary child removed by
/// its supervisor) goes nowhere, as a message to a dead process would.
impl Remote {
    pub fn crash(&self) {
        let _ = self.0.send(Cmd::Crash);
    }
    pub fn panic(&self) {
        let _ = self.0.send(Cmd::Panic);
    }
    pub fn exit(&self) {
        let _ = self.0.send(Cmd::Exit);
    }
}

/// A worker that runs until told to crash, panic or exit, or until asked to
/// stop. Every incarnation reads the same command queue.
pub fn worker(id: &str) -> (ChildSpec, Remote) {
    let (tx, rx) = mpsc::unbounded_channel();
    let rx = Arc::new(Mutex::new(rx));
    let spec = ChildSpec::worker(id, move |ctx| {
        let rx = rx.clone();
        async move {
            let mut rx = rx.lock().await;
            tokio::select! {
                _ = ctx.shutdown_requested() => Ok(()),
                cmd = rx.recv() => match cmd {
                    Some(Cmd::Crash) => Err(Crash::new("io", "told to crash").with_evidence(&b"\xde\xad"[..], false)),
                    Some(Cmd::Panic) => panic!("told to panic"),
                    Some(Cmd::Exit) => Ok(()),
                    None => std::future::pending().await,
                },
            }
        }
    });
    (spec, Remote(tx))
}

/// A worker that ignores shutdown requests.
pub fn stubborn(id: &str) -> ChildSpec {
    ChildSpec::worker(id, |_ctx| std::future::pending::<Result<(), Crash>>())
}

/// Lets every task run until the tree is idle (paused time advances only
/// when nothing is runnable, so this returns once all is quiet).
pub async fn settle() {
    tokio::time::sleep(Duration::from_micros(1)).await;
}

/// Renders an event as `kind path details`.
pub fn describe(event: &Event) -> String {
    let path = &event.path;
    match &event.kind {
        EventKind::Started { restarts } => format!("start {path} {restarts}"),
        EventKind::Crashed {
            crash,
            restarts_in_window,
            action,
            ..
        } => {
            format!(
                "crash {path} {} {} {restarts_in_window}",
                crash.reason,
                action.as_str()
            )
        }
        EventKind::Restarting { delay } => format!("restarting {path} {}ms", delay.as_millis()),
        EventKind::Quarantined { for_ } => format!("quarantine {path} {}s", for_.as_secs()),
        EventKind::Escalated { crash } => format!("escalate {path} {}", crash.reason),
        EventKind::Stopped { reason } => {
            let how = match reason {
                StopReason::Shutdown => "shutdown",
                StopReason::Killed => "killed",
                StopReason::Exited => "exited",
                StopReason::Crashed => "crashed",
            };
            format!("stop {path} {how}")
        }
    }
}

/// Collects the events of a tree.
pub struct Log {
    rx: broadcast::Receiver<Arc<Event>>,
    pub events: Vec<Arc<Event>>,
}

impl Log {
    pub fn new(rx: broadcast::Receiver<Arc<Event>>) -> Self {
        Self {
            rx,
            events: Vec::new(),
        }
    }

    /// Settles the tree, then returns the events that arrived since the last
    /// call, rendered.
    pub async fn take(&mut self) -> Vec<String> {
        settle().await;
        let mut out = Vec::new();
        while let Ok(event) = self.rx.try_recv() {
            out.push(describe(&event));
            self.events.push(event);
        }
        out
    }

    /// Only the rendered events that start with `prefix`.
    pub async fn take_kind(&mut self, prefix: &str) -> Vec<String> {
        self.take()
            .await
            .into_iter()
            .filter(|e| e.starts_with(prefix))
            .collect()
    }
}
