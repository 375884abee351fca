//! `transport = "tcp"`: the gateway connects out to a sensor (or a
//! serial-to-Ethernet converter) and reads from it.
//!
//! Connecting is bounded by `connect_timeout`; TCP keepalive notices a peer
//! that vanished without closing (power cut) even when `read_timeout` is
//! long; a closed or reset connection is `eof`.

use std::time::Duration;

use socket2::{SockRef, TcpKeepalive};
use tokio::net::TcpStream;

use super::error::LinkError;
use super::stream::StreamLink;
use super::Link;
use crate::codec::{CodecConfig, CodecKind};

/// A `transport = "tcp"` sensor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpConfig {
    /// `host:port`; names are resolved at each connect.
    pub address: String,
    /// Give up connecting after this long.
    pub connect_timeout: Duration,
    /// Idle time before TCP keepalive probes (also their interval); `None` disables them.
    pub keepalive: Option<Duration>,
    /// Silence longer than this ends the link with `timeout`.
    pub read_timeout: Duration,
    /// How to decode what the sensor sends.
    pub codec: CodecConfig,
}

impl TcpConfig {
    /// Defaults: 5 s connect timeout, 15 s keepalive, 30 s read timeout.
    pub fn new(address: impl Into<String>, codec: CodecKind) -> Self {
        TcpConfig {
            address: address.into(),
            connect_timeout: Duration::from_secs(5),
            keepalive: Some(Duration::from_secs(15)),
            read_timeout: super::DEFAULT_READ_TIMEOUT,
            codec: CodecConfig::new(codec),
        }
    }
}

/// Turns on TCP keepalive so a silently dead peer is detected.
pub(crate) fn set_keepalive(stream: &TcpStream, every: Duration) -> std::io::Result<()> {
    let ka = TcpKeepalive::new()
        .with_time(every)
        .with_interval(every)
        .with_retries(3);
    SockRef::from(stream).set_tcp_keepalive(&ka)
}

/// Connects to the sensor.
pub async fn connect(config: &TcpConfig) -> Result<Link, LinkError> {
    let context = format!("connect {}", config.address);
    let stream =
        match tokio::time::timeout(config.connect_timeout, TcpStream::connect(&config.address))
            .await
        {
            Err(_) => {
                let e = std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("no answer within {:?}", config.connect_timeout),
                );
                return Err(LinkError::io(context, e));
            }
            Ok(Err(e)) => return Err(LinkError::io(context, e)),
            Ok(Ok(s)) => s,
        };
    if let Some(every) = config.keepalive {
        set_keepalive(&stream, every)
            .map_err(|e| LinkError::io(format!("keepalive {}", config.address), e))?;
    }
    let what = format!("tcp {}", config.address);
    Ok(Link::stream(StreamLink::new(
        Box::new(stream),
        config.codec.decoder(),
        config.read_timeout,
        what,
    )))
}
