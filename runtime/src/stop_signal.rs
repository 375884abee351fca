//! A child's stop request, cheap to poll again and again.
//!
//! A sensor's read loop waits on its socket and on "stop" together, and is
//! woken once per reading. Polling a `CancellationToken`'s future takes two
//! locks every time (the token's tree node, then its `Notify`'s waiter
//! list): with 10,000 connections that was 2 % of the gateway's CPU
//! (`docs/benchmarks.md`, "Scale"). A [`StopSignal`] hands the token its own
//! waker, which notes that the token woke the task before waking it; the
//! token's future is polled again only then (or when the task's waker
//! changed). Every other poll is one flag load and one waker comparison.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Wake, Waker};

use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

/// Resolves once the child is asked to stop; made once, polled often
/// ([`crate::ChildContext::stop_signal`]).
pub struct StopSignal {
    wait: Pin<Box<WaitForCancellationFutureOwned>>,
    relay: Arc<Relay>,
    relay_waker: Waker,
    /// The task's waker the relay passes wake-ups on to.
    task: Option<Waker>,
    /// The stop was seen: every later poll is ready too.
    fired: bool,
}

/// The waker the token holds: marks the wake-up as the token's, then wakes
/// the task.
struct Relay {
    woken: AtomicBool,
    task: Mutex<Option<Waker>>,
}

impl Wake for Relay {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        let task = self
            .task
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if let Some(task) = task {
            task.wake();
        }
    }
}

impl StopSignal {
    /// A signal that fires when `token` is cancelled.
    pub(crate) fn new(token: CancellationToken) -> Self {
        let relay = Arc::new(Relay {
            woken: AtomicBool::new(false),
            task: Mutex::new(None),
        });
        Self {
            wait: Box::pin(token.cancelled_owned()),
            relay_waker: Waker::from(relay.clone()),
            relay,
            task: None,
            fired: false,
        }
    }
}

impl Future for StopSignal {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        if this.fired {
            return Poll::Ready(());
        }
        let same_task = this.task.as_ref().is_some_and(|t| t.will_wake(cx.waker()));
        if same_task && !this.relay.woken.load(Ordering::Acquire) {
            return Poll::Pending;
        }
        if !same_task {
            let waker = cx.waker().clone();
            *this
                .relay
                .task
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Some(waker.clone());
            this.task = Some(waker);
        }
        // Cleared before the token is asked: a cancel that lands during the
        // poll either is seen by it or sets the flag again.
        this.relay.woken.store(false, Ordering::Release);
        let polled = this
            .wait
            .as_mut()
            .poll(&mut Context::from_waker(&this.relay_waker));
        this.fired = polled.is_ready();
        polled
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn fires_on_cancel_after_many_quiet_polls() {
        let token = CancellationToken::new();
        let mut signal = StopSignal::new(token.clone());
        let (tx, mut rx) = tokio::sync::mpsc::channel::<u32>(1);
        let cancel = token.clone();
        let sender = tokio::spawn(async move {
            for n in 0..1_000 {
                tx.send(n).await.unwrap();
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
            cancel.cancel();
        });
        // The task is woken 1,000 times by the channel, then once by the
        // token; only the last wake-up may end the loop.
        let mut received = 0;
        loop {
            tokio::select! {
                () = &mut signal => break,
                Some(_) = rx.recv() => received += 1,
            }
        }
        assert_eq!(received, 1_000);
        assert!(token.is_cancelled());
        sender.await.unwrap();
    }

    #[tokio::test]
    async fn fires_at_once_for_a_token_already_cancelled_and_stays_fired() {
        let token = CancellationToken::new();
        token.cancel();
        let mut signal = StopSignal::new(token);
        (&mut signal).await;
        // A loop that keeps selecting on it after the stop sees it at once.
        tokio::time::timeout(Duration::from_secs(5), &mut signal)
            .await
            .expect("still fired");
    }

    #[tokio::test]
    async fn follows_the_future_to_another_task() {
        let token = CancellationToken::new();
        let mut signal = StopSignal::new(token.clone());
        // Polled once with another waker, then awaited in a task:
        // the task's waker must be the one woken.
        let waker = Waker::noop();
        assert!(Pin::new(&mut signal)
            .poll(&mut Context::from_waker(waker))
            .is_pending());
        let waiter = tokio::spawn(signal);
        tokio::task::yield_now().await;
        token.cancel();
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("the moved signal fired")
            .unwrap();
    }
}
