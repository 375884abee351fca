//! `transport = "tcp-listen"`: sensors connect in; one child per connection.
//!
//! [`TcpAcceptor`] owns the listening socket and hands every accepted
//! connection to a caller-supplied spawn function (the gateway starts a
//! supervised child there). At most `max_connections` connections are
//! live: each carries a [`ConnectionPermit`] that frees its slot when
//! dropped (with the connection's [`Link`]), and a connection arriving
//! while all slots are taken is closed at once and counted as refused.
//!
//! Accept errors such as EMFILE (out of file descriptors) last until
//! something else frees resources, so retries back off (50 ms doubling to
//! 5 s) and each failure episode is logged once at warn, then at debug
//! until an accept succeeds again.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use edgevisor_backoff::ExponentialBackoff;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Sleep;

use super::error::LinkError;
use super::stream::StreamLink;
use super::Link;
use crate::codec::{CodecConfig, CodecKind};

/// Retry schedule after failed accepts: quick for a one-off (a peer that
/// reset), slow enough not to spin when descriptors have run out. No
/// jitter: one acceptor has nobody to fall into lockstep with.
const ACCEPT_BACKOFF: ExponentialBackoff =
    ExponentialBackoff::new(Duration::from_millis(50), Duration::from_secs(5), 0.0);

/// A `transport = "tcp-listen"` sensor group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpListenConfig {
    /// Address to listen on, e.g. `0.0.0.0:5000` (port 0 picks a free one).
    pub listen: SocketAddr,
    /// Live connections allowed; more are refused and counted.
    pub max_connections: usize,
    /// TCP keepalive for accepted connections; `None` disables it.
    pub keepalive: Option<Duration>,
    /// Silence longer than this ends a connection's link with `timeout`.
    pub read_timeout: Duration,
    /// How to decode what the sensors send.
    pub codec: CodecConfig,
}

impl TcpListenConfig {
    /// SPEC default of 256 connections, 15 s keepalive, 30 s read timeout.
    pub fn new(listen: SocketAddr, codec: CodecKind) -> Self {
        TcpListenConfig {
            listen,
            max_connections: 256,
            keepalive: Some(Duration::from_secs(15)),
            read_timeout: super::DEFAULT_READ_TIMEOUT,
            codec: CodecConfig::new(codec),
        }
    }
}

/// Holds one of the `max_connections` slots until dropped.
#[derive(Debug)]
pub struct ConnectionPermit {
    _permit: OwnedSemaphorePermit,
}

/// One accepted sensor connection, with its slot.
#[derive(Debug)]
pub struct Accepted {
    /// The connection.
    pub stream: TcpStream,
    /// The sensor's address.
    pub peer: SocketAddr,
    /// Dropping this frees the slot; keep it as long as the connection lives.
    pub permit: ConnectionPermit,
    codec: CodecConfig,
    read_timeout: Duration,
}

impl Accepted {
    /// The connection as a link using the listener's codec and read
    /// timeout; the link holds the permit, so the slot frees when it drops.
    pub fn into_link(self) -> Link {
        let what = format!("tcp-listen peer {}", self.peer);
        let link = StreamLink::new(
            Box::new(self.stream),
            self.codec.decoder(),
            self.read_timeout,
            what,
        );
        Link::stream(link).with_permit(self.permit)
    }
}

/// Counters of an acceptor.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AcceptorStats {
    /// Connections handed to the spawn function.
    pub accepted: u64,
    /// Connections closed because `max_connections` were live.
    pub refused: u64,
    /// Connections live now (permits held).
    pub active: usize,
}

/// The listening side of a `tcp-listen` sensor group.
#[derive(Debug)]
pub struct TcpAcceptor {
    listener: TcpListener,
    local: SocketAddr,
    slots: Arc<Semaphore>,
    max: usize,
    accepted: AtomicU64,
    refused: AtomicU64,
    /// Consecutive failed accepts; kept here (not in `accept`'s future) so
    /// a caller that drops and re-creates that future stays in the episode.
    failures: AtomicU32,
    /// What each accepted connection is given; the rest of the config is
    /// not kept (an idle acceptor is waited on by every idle sensor).
    keepalive: Option<Duration>,
    read_timeout: Duration,
    codec: CodecConfig,
    /// The wait before retrying after a failed accept, while one runs.
    retry: Option<Pin<Box<Sleep>>>,
}

impl TcpAcceptor {
    /// Binds the listening socket; errors (address in use, no permission)
    /// are `io`.
    pub async fn bind(config: &TcpListenConfig) -> Result<Self, LinkError> {
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|e| LinkError::io(format!("listen {}", config.listen), e))?;
        Self::with_listener(listener, config)
    }

    /// Takes a socket already bound and listening, such as one systemd
    /// passed (socket activation): connections that arrived before it was
    /// taken wait in its backlog and are accepted first.
    pub fn from_std(
        listener: std::net::TcpListener,
        config: &TcpListenConfig,
    ) -> Result<Self, LinkError> {
        let context = || format!("listen {} (passed socket)", config.listen);
        listener
            .set_nonblocking(true)
            .map_err(|e| LinkError::io(context(), e))?;
        let listener = TcpListener::from_std(listener).map_err(|e| LinkError::io(context(), e))?;
        Self::with_listener(listener, config)
    }

    fn with_listener(listener: TcpListener, config: &TcpListenConfig) -> Result<Self, LinkError> {
        let local = listener
            .local_addr()
            .map_err(|e| LinkError::io(format!("listen {}", config.listen), e))?;
        Ok(TcpAcceptor {
            listener,
            local,
            slots: Arc::new(Semaphore::new(config.max_connections)),
            max: config.max_connections,
            accepted: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            failures: AtomicU32::new(0),
            keepalive: config.keepalive,
            read_timeout: config.read_timeout,
            codec: config.codec,
            retry: None,
        })
    }

    /// The bound address (the real port when configured with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Current counters.
    pub fn stats(&self) -> AcceptorStats {
        AcceptorStats {
            accepted: self.accepted.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
            active: self.max - self.slots.available_permits(),
        }
    }

    /// Waits for the next connection that gets a slot, closing (and
    /// counting) those that arrive while all slots are taken. Transient
    /// accept errors (a peer that reset, out of file descriptors) are
    /// logged and retried, so this only returns a connection. Cancel-safe.
    pub async fn accept(&mut self) -> Accepted {
        std::future::poll_fn(|cx| self.poll_accept(cx)).await
    }

    /// [`TcpAcceptor::accept`] as a poll, for a caller that keeps the
    /// acceptor in a stream of its own: it waits on the listener's own
    /// registration, with no future to store (the future of
    /// `TcpListener::accept` is about 180 bytes, kept by every idle
    /// listener).
    pub fn poll_accept(&mut self, cx: &mut Context<'_>) -> Poll<Accepted> {
        loop {
            if let Some(retry) = self.retry.as_mut() {
                ready!(retry.as_mut().poll(cx));
                self.retry = None;
            }
            let (stream, peer) = match ready!(self.listener.poll_accept(cx)) {
                Ok(accepted) => {
                    self.accept_recovered();
                    accepted
                }
                Err(e) => {
                    // Boxed: only an acceptor in a failure episode holds a timer.
                    self.retry = Some(Box::pin(tokio::time::sleep(self.accept_failed(&e))));
                    continue;
                }
            };
            if let Some(accepted) = self.admit(stream, peer) {
                return Poll::Ready(accepted);
            }
        }
    }

    /// Gives a new connection a slot, or closes (and counts) it when all
    /// slots are taken.
    fn admit(&self, stream: TcpStream, peer: SocketAddr) -> Option<Accepted> {
        let Ok(permit) = Arc::clone(&self.slots).try_acquire_owned() else {
            self.refused.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(listen = %self.local, %peer, max = self.max, "max_connections reached; connection refused");
            drop(stream);
            return None;
        };
        if let Some(every) = self.keepalive {
            if let Err(e) = super::tcp::set_keepalive(&stream, every) {
                tracing::debug!(%peer, error = %e, "could not enable keepalive");
            }
        }
        self.accepted.fetch_add(1, Ordering::Relaxed);
        Some(Accepted {
            stream,
            peer,
            permit: ConnectionPermit { _permit: permit },
            codec: self.codec,
            read_timeout: self.read_timeout,
        })
    }

    /// Counts a failed accept, logs it (warn for the first of an episode,
    /// debug after) and returns how long to wait before the next try.
    fn accept_failed(&self, error: &std::io::Error) -> Duration {
        let failures = record_failure(&self.failures);
        let delay = ACCEPT_BACKOFF.delay(failures, 0.5);
        if failures == 1 {
            tracing::warn!(listen = %self.local, %error, retry_in = ?delay, "accept failed; retrying with backoff (repeats logged at debug)");
        } else {
            tracing::debug!(listen = %self.local, %error, failures, retry_in = ?delay, "accept failed again");
        }
        delay
    }

    /// Ends a failure episode, if one was going on.
    fn accept_recovered(&self) {
        let failures = self.failures.swap(0, Ordering::Relaxed);
        if failures > 0 {
            tracing::info!(listen = %self.local, failures, "accepting again");
        }
    }

    /// Accepts forever, calling `spawn` for each connection. Stop it by
    /// dropping the future (e.g. in a `select!` with a shutdown signal).
    pub async fn run<F: FnMut(Accepted)>(&mut self, mut spawn: F) {
        loop {
            spawn(self.accept().await);
        }
    }
}

/// One more consecutive failure; returns the count (1 for the first).
fn record_failure(failures: &AtomicU32) -> u32 {
    let previous = failures
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
            Some(n.saturating_add(1))
        })
        .unwrap_or_else(|n| n); // the closure always returns Some
    previous.saturating_add(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_retries_back_off_to_five_seconds() {
        let failures = AtomicU32::new(0);
        let delays: Vec<u128> = (0..9)
            .map(|_| {
                ACCEPT_BACKOFF
                    .delay(record_failure(&failures), 0.5)
                    .as_millis()
            })
            .collect();
        assert_eq!(delays, [50, 100, 200, 400, 800, 1600, 3200, 5000, 5000]);
        failures.store(u32::MAX, Ordering::Relaxed);
        assert_eq!(record_failure(&failures), u32::MAX);
    }
}
