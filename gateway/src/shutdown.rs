//! Stopping the service's background tasks (crash reports, the status
//! publisher, the systemd notifier) and waiting for them, as mini-redis's
//! `shutdown.rs` does: every task gets a [`Shutdown`] signal, and
//! [`Background::stop`] raises it and joins them all, so a clean stop
//! leaves nothing running. A task that does not finish within the bound is
//! aborted and named in the log.

use std::future::Future;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Tells a task that the service is stopping.
#[derive(Clone)]
pub struct Shutdown {
    signal: watch::Receiver<bool>,
}

impl Shutdown {
    /// True once the stop was asked for.
    pub fn is_shutdown(&self) -> bool {
        *self.signal.borrow()
    }

    /// Resolves when the stop is asked for (at once if it was). Cancel-safe.
    pub async fn recv(&mut self) {
        // An error means the sender is gone, which only happens after the
        // signal was raised: either way it is time to stop.
        let _ = self.signal.wait_for(|stop| *stop).await;
    }
}

/// The service's background tasks, by name.
pub struct Background {
    stop: watch::Sender<bool>,
    tasks: Vec<(&'static str, JoinHandle<()>)>,
}

impl Default for Background {
    fn default() -> Self {
        Self {
            stop: watch::channel(false).0,
            tasks: Vec::new(),
        }
    }
}

impl Background {
    /// A signal for a task started some other way.
    pub fn signal(&self) -> Shutdown {
        Shutdown {
            signal: self.stop.subscribe(),
        }
    }

    /// Spawns `task`, which is handed the stop signal and must end soon
    /// after it is raised.
    pub fn spawn<F, Fut>(&mut self, name: &'static str, task: F)
    where
        F: FnOnce(Shutdown) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let handle = tokio::spawn(task(self.signal()));
        self.tasks.push((name, handle));
    }

    /// Spawns a loop that has nothing to finish: it is dropped at its next
    /// await once the stop is raised.
    pub fn spawn_loop<Fut>(&mut self, name: &'static str, task: Fut)
    where
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.spawn(name, |mut shutdown| async move {
            tokio::select! {
                _ = shutdown.recv() => {}
                _ = task => {}
            }
        });
    }

    /// Raises the stop and waits for every task, at most `within` in all;
    /// stragglers are aborted (and logged by name).
    pub async fn stop(self, within: Duration) {
        self.stop.send_replace(true);
        let deadline = tokio::time::Instant::now() + within;
        for (name, mut handle) in self.tasks {
            if tokio::time::timeout_at(deadline, &mut handle)
                .await
                .is_err()
            {
                tracing::warn!(task = name, "background task did not stop in time; aborted");
                handle.abort();
                let _ = handle.await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn stop_joins_tasks_that_listen_and_aborts_those_that_do_not() {
        let mut background = Background::default();
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        background.spawn("listens", |mut shutdown| async move {
            shutdown.recv().await;
            let _ = done_tx.send(());
        });
        background.spawn("deaf", |_| std::future::pending());
        background.spawn_loop("loop", std::future::pending());
        let metrics = tokio::runtime::Handle::current().metrics();
        assert_eq!(metrics.num_alive_tasks(), 3);
        background.stop(Duration::from_secs(1)).await;
        assert!(done_rx.await.is_ok(), "the listening task saw the signal");
        tokio::task::yield_now().await;
        assert_eq!(metrics.num_alive_tasks(), 0, "nothing left running");
    }

    #[tokio::test]
    async fn a_late_subscriber_sees_a_raised_stop() {
        let background = Background::default();
        background.stop.send_replace(true);
        let mut shutdown = background.signal();
        assert!(shutdown.is_shutdown());
        shutdown.recv().await;
    }
}
