//! A supervisor's source of children: a stream, opened as the supervisor
//! starts, that yields children to add at run time (a listener's accepted
//! connections). The run loop polls it itself, so an idle listener costs no
//! task, no child record and no cancellation token of its own: the source
//! is as light as its stream's state.
//!
//! Opening the source is part of the supervisor's start phase: a failure
//! (a port already taken) fails the supervisor's start, and its parent
//! applies its restart policy to it like to any crash. A source that ends
//! ends its supervisor with a crash (reason `io`); sources are expected to
//! retry their own transient errors and never end.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;

use futures_util::future::BoxFuture;
use futures_util::Stream;

use super::core::Core;
use crate::child::ChildSpec;
use crate::crash::Crash;

/// The children a source yields, as they arrive.
pub type ChildSource = Pin<Box<dyn Stream<Item = ChildSpec> + Send>>;

type Open = dyn Fn() -> BoxFuture<'static, Result<ChildSource, Crash>> + Send + Sync;

/// How to open a supervisor's source, at each of its starts.
#[derive(Clone)]
pub(crate) struct Source(Arc<Open>);

impl Source {
    pub(crate) fn new<F, Fut>(open: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<ChildSource, Crash>> + Send + 'static,
    {
        Self(Arc::new(move || Box::pin(open())))
    }
}

impl fmt::Debug for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Source")
    }
}

impl Core {
    /// Opens the spec's source, if it has one, as the last step of the start.
    pub(super) async fn open_source(&mut self) -> Result<(), Crash> {
        if let Some(source) = &self.spec.source {
            let opened = (source.0)().await?;
            self.source = Some(opened);
        }
        Ok(())
    }

    /// Adds a child the source yielded. Refused children (a duplicate id, a
    /// full dynamic pool, a failed start) are dropped: the source holds
    /// nothing else of them, and a connection refused this way is closed.
    pub(super) async fn add_from_source(&mut self, child: ChildSpec) {
        let _ = self.add_child(child).await;
    }
}

/// The next child of `source`; never resolves when there is none. A
/// `poll_fn` rather than an `async fn`: the future is part of every idle
/// supervisor's and is kept to a pointer.
pub(super) fn next_child(
    source: &mut Option<ChildSource>,
) -> impl Future<Output = Option<ChildSpec>> + '_ {
    std::future::poll_fn(move |cx| match source {
        Some(source) => source.as_mut().poll_next(cx),
        None => Poll::Pending,
    })
}

/// The crash of a supervisor whose source ended. Its reason is `io`: a
/// source reads from outside (a socket), and `io` is the word the gateway's
/// crash reports use for a link that failed.
pub(super) fn source_ended() -> Crash {
    Crash::new("io", "its source of children ended")
}
