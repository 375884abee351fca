//! Links: async sources of decoded readings, one per sensor connection.
//!
//! A [`Link`] is opened by its transport's function ([`serial::open`],
//! [`tcp::connect`], [`tcp_listen::Accepted::into_link`],
//! [`mqtt::subscribe`]) and read with [`Link::next`] until it fails with a
//! [`LinkError`] whose [`reason`](LinkError::reason) is one of the SPEC's
//! `corrupt_frame`, `io`, `eof`, `timeout`. Only a recoverable corrupt frame
//! lets the caller go on reading; every other error finishes the link.

mod error;
pub mod mqtt;
pub mod serial;
mod stats;
mod stream;
pub mod tcp;
pub mod tcp_listen;
mod url;

use std::time::Duration;

pub use error::{EndReason, LinkError};
pub use stats::LinkStats;
pub use stream::READ_CHUNK;
pub use url::{split_host_port, AddressError, BrokerUrl, InvalidUrl, MQTTS_PORT, MQTT_PORT};

use crate::Reading;
use stream::StreamLink;

/// SPEC default `read_timeout` (section 3): silence longer than this ends a
/// link with `timeout`. The one definition: the gateway's config resolver
/// uses it for sensors that set none.
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(30);

enum Inner {
    Stream(StreamLink),
    Mqtt(mqtt::MqttLink),
}

/// One sensor connection delivering readings.
pub struct Link {
    inner: Inner,
    ended: Option<EndReason>,
    _permit: Option<tcp_listen::ConnectionPermit>,
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Link")
            .field("ended", &self.ended)
            .field("stats", &self.stats())
            .finish()
    }
}

impl Link {
    fn stream(link: StreamLink) -> Self {
        Link {
            inner: Inner::Stream(link),
            ended: None,
            _permit: None,
        }
    }

    fn mqtt(link: mqtt::MqttLink) -> Self {
        Link {
            inner: Inner::Mqtt(link),
            ended: None,
            _permit: None,
        }
    }

    fn with_permit(mut self, permit: tcp_listen::ConnectionPermit) -> Self {
        self._permit = Some(permit);
        self
    }

    /// The next reading, or why the link failed. Cancel-safe: dropping the
    /// future (a `select!` with a shutdown signal) loses nothing.
    pub async fn next(&mut self) -> Result<Reading, LinkError> {
        if let Some(reason) = self.ended {
            return Err(LinkError::Ended(reason));
        }
        let result = match &mut self.inner {
            Inner::Stream(s) => s.next().await,
            Inner::Mqtt(m) => m.next().await,
        };
        self.note(result)
    }

    /// Appends the readings that arrived together (everything one read of
    /// a stream decoded, or one MQTT message) to `out`, so the caller hands
    /// them on in one step; or says why the link failed. Readings decoded
    /// before a failure are delivered first and the failure on the next
    /// call. Cancel-safe like [`next`](Self::next).
    pub async fn next_batch(&mut self, out: &mut Vec<Reading>) -> Result<(), LinkError> {
        if let Some(reason) = self.ended {
            return Err(LinkError::Ended(reason));
        }
        let result = match &mut self.inner {
            Inner::Stream(s) => s.next_batch(out).await,
            Inner::Mqtt(m) => m.next().await.map(|reading| out.push(reading)),
        };
        self.note(result)
    }

    /// Takes, without waiting, the readings this link holds now, including
    /// bytes the kernel received that the runtime has not seen yet: what a
    /// stopping child hands over before its link closes. A TCP link reads
    /// its socket directly; other links take only what they already hold
    /// (the caller may then poll [`Self::next_batch`] once more).
    pub fn take_buffered(&mut self, out: &mut Vec<Reading>) -> Result<(), LinkError> {
        if let Some(reason) = self.ended {
            return Err(LinkError::Ended(reason));
        }
        let result = match &mut self.inner {
            Inner::Stream(s) => s.take_buffered(out),
            Inner::Mqtt(_) => Ok(()),
        };
        self.note(result)
    }

    /// Remembers an error that finishes the link.
    fn note<T>(&mut self, result: Result<T, LinkError>) -> Result<T, LinkError> {
        if let Err(e) = &result {
            if !e.can_continue() {
                self.ended = Some(e.reason());
            }
        }
        result
    }

    /// Counters since the link was opened.
    pub fn stats(&self) -> LinkStats {
        match &self.inner {
            Inner::Stream(s) => s.stats,
            Inner::Mqtt(m) => m.stats,
        }
    }
}
