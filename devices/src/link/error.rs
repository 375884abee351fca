//! Why a link ended: the SPEC reasons `corrupt_frame`, `io`, `eof` and
//! `timeout`, with the message and evidence a crash report carries.

use std::fmt;
use std::time::Duration;

use crate::codec::{CorruptFrame, Evidence};

/// The SPEC crash reason a [`LinkError`] maps to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EndReason {
    /// `corrupt_frame`: the sensor sent bytes that break its codec.
    CorruptFrame,
    /// `io`: the transport failed (open, connect, read).
    Io,
    /// `eof`: the device went away (connection closed, USB unplugged).
    Eof,
    /// `timeout`: silence longer than `read_timeout`.
    Timeout,
}

impl EndReason {
    /// The SPEC name, as used in crash reports.
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::CorruptFrame => "corrupt_frame",
            EndReason::Io => "io",
            EndReason::Eof => "eof",
            EndReason::Timeout => "timeout",
        }
    }
}

impl fmt::Display for EndReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a link failed. After a `Corrupt` error that
/// [`can_continue`](Self::can_continue), calling `next()` again continues
/// the stream (`on_corrupt = "skip"`); after any other error the link is
/// finished and the caller should drop it (a supervisor restarts it).
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// The sensor sent a corrupt frame.
    #[error("{0}")]
    Corrupt(CorruptFrame),
    /// The transport failed; `context` says what was being done.
    #[error("{context}: {source}")]
    Io {
        /// What the link was doing, e.g. `connect 10.0.0.5:4001`.
        context: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The device went away. A frame cut off by the end is kept as evidence
    /// (and named in the message; without one the message has no suffix).
    #[error("device closed the stream{}", .truncated.as_ref().map(|t| format!(" ({t})")).unwrap_or_default())]
    Eof {
        /// The unfinished frame, if input ended inside one.
        truncated: Option<CorruptFrame>,
    },
    /// Nothing arrived for `read_timeout`.
    #[error("no data for {0:?} (read_timeout)")]
    Timeout(Duration),
    /// `next()` was called again after the link ended with this reason.
    #[error("link already ended ({0})")]
    Ended(EndReason),
}

impl LinkError {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        LinkError::Io {
            context: context.into(),
            source,
        }
    }

    /// The SPEC reason for a crash report.
    pub fn reason(&self) -> EndReason {
        match self {
            LinkError::Corrupt(_) => EndReason::CorruptFrame,
            LinkError::Io { .. } => EndReason::Io,
            LinkError::Eof { .. } => EndReason::Eof,
            LinkError::Timeout(_) => EndReason::Timeout,
            LinkError::Ended(r) => *r,
        }
    }

    /// `corrupt_frame`, `io`, `eof` or `timeout`.
    pub fn as_str(&self) -> &'static str {
        self.reason().as_str()
    }

    /// The bytes behind the error, for `evidence_hex`.
    pub fn evidence(&self) -> Option<&Evidence> {
        match self {
            LinkError::Corrupt(c) => Some(c.evidence()),
            LinkError::Eof { truncated: Some(c) } => Some(c.evidence()),
            _ => None,
        }
    }

    /// The corrupt frame, for dead letters.
    pub fn corrupt_frame(&self) -> Option<&CorruptFrame> {
        match self {
            LinkError::Corrupt(c) => Some(c),
            _ => None,
        }
    }

    /// Whether `next()` may be called again.
    pub fn can_continue(&self) -> bool {
        matches!(self, LinkError::Corrupt(c) if c.can_continue())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::CorruptKind;

    #[test]
    fn reasons_use_spec_names() {
        let c = LinkError::Corrupt(CorruptFrame::new(
            CorruptKind::BadCrc,
            "frame crc mismatch",
            b"\xA5",
        ));
        assert_eq!(c.as_str(), "corrupt_frame");
        assert!(c.can_continue());
        assert_eq!(c.evidence().map(|e| e.bytes().to_vec()), Some(vec![0xA5]));
        assert_eq!(LinkError::Eof { truncated: None }.as_str(), "eof");
        assert_eq!(
            LinkError::Timeout(Duration::from_secs(1)).as_str(),
            "timeout"
        );
        let io = LinkError::io("open /dev/x", std::io::Error::other("boom"));
        assert_eq!(io.as_str(), "io");
        assert!(!io.can_continue());
        assert_eq!(io.to_string(), "open /dev/x: boom");
    }
}
