//! Errors shared by all codecs.
//!
//! A decoder reports two very different things: the peer sent bytes that break
//! the wire format ([`CorruptFrame`], which the SPEC turns into a crash with
//! reason `corrupt_frame` or a dead letter), and the transport failed
//! ([`DecodeError::Io`]). Keeping them apart lets the caller decide whether to
//! skip and continue or to give up.

use std::fmt;

/// Most evidence bytes kept with a corrupt frame: the SPEC caps
/// `evidence_hex` at 256 bytes so a crash report stays small.
pub const MAX_EVIDENCE: usize = 256;

/// The bytes that proved a frame corrupt, capped at [`MAX_EVIDENCE`], so an
/// operator can see what the sensor actually sent.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Evidence {
    bytes: Vec<u8>,
    truncated: bool,
}

impl Evidence {
    /// Keeps the first [`MAX_EVIDENCE`] bytes of `bytes` and remembers whether
    /// anything was cut, because reports must say when they are partial.
    pub fn new(bytes: &[u8]) -> Self {
        let keep = bytes.len().min(MAX_EVIDENCE);
        Evidence {
            bytes: bytes[..keep].to_vec(),
            truncated: bytes.len() > MAX_EVIDENCE,
        }
    }

    /// The kept bytes (at most [`MAX_EVIDENCE`]).
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// True when the offending input was longer than what is kept; maps to
    /// the crash report's `evidence_truncated`.
    pub fn truncated(&self) -> bool {
        self.truncated
    }

    /// Lower-case hex of the kept bytes, ready for `evidence_hex`.
    pub fn to_hex(&self) -> String {
        hex::encode(&self.bytes)
    }
}

impl fmt::Debug for Evidence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Evidence({}", self.to_hex())?;
        if self.truncated {
            write!(f, "...")?;
        }
        write!(f, ")")
    }
}

/// Which rule of SPEC section 4 a frame broke; lets tests and metrics tell
/// corruption kinds apart without parsing messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CorruptKind {
    /// More bytes than `max_frame` without the end of the frame.
    TooLong,
    /// `lines`/`json`: the line is not UTF-8.
    InvalidUtf8,
    /// `lines`: the line holds a NUL byte.
    NulByte,
    /// `nmea`: bytes that are not a sentence (no `$`/`!` where one must start).
    NoStart,
    /// `nmea`: a byte above 0x7F.
    NonAscii,
    /// `nmea`: the `*HH` checksum does not match the sentence.
    ChecksumMismatch,
    /// `nmea`: no `*HH` while the sensor requires checksums.
    MissingChecksum,
    /// `nmea`: the sentence is structurally broken (bad address, bad `*HH`,
    /// or interrupted by the start of another sentence).
    Malformed,
    /// `frame`: the CRC-16 does not match.
    BadCrc,
    /// `frame`: the version byte is not 0x01.
    UnknownVersion,
    /// `json`: not valid JSON.
    InvalidJson,
    /// `json`: valid JSON, but not an object.
    NotAnObject,
    /// The input ended inside a frame.
    Truncated,
}

/// A frame that breaks its codec's rules.
///
/// The decoder has already consumed the offending bytes when it returns
/// this, so when [`can_continue`](Self::can_continue) is true, decoding again
/// yields the next frame (after resynchronising); this is what makes
/// `on_corrupt = "skip"` possible.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct CorruptFrame {
    kind: CorruptKind,
    message: String,
    evidence: Evidence,
    can_continue: bool,
}

impl CorruptFrame {
    /// A corrupt frame after which the stream can continue (the usual case:
    /// the decoder skipped the bad bytes).
    pub fn new(kind: CorruptKind, message: impl Into<String>, bytes: &[u8]) -> Self {
        CorruptFrame {
            kind,
            message: message.into(),
            evidence: Evidence::new(bytes),
            can_continue: true,
        }
    }

    /// The input ended inside a frame: nothing can follow.
    pub fn truncated(codec: &str, bytes: &[u8]) -> Self {
        CorruptFrame {
            kind: CorruptKind::Truncated,
            message: format!(
                "{codec} stream ended inside a frame ({} bytes)",
                bytes.len()
            ),
            evidence: Evidence::new(bytes),
            can_continue: false,
        }
    }

    /// The same frame, marked as not ending the stream (MQTT messages are
    /// independent of each other).
    pub(crate) fn continuable(mut self) -> Self {
        self.can_continue = true;
        self
    }

    /// Which rule was broken.
    pub fn kind(&self) -> CorruptKind {
        self.kind
    }

    /// Human message in SPEC style, e.g. `nmea checksum mismatch: want 4A got 47`.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The offending bytes (at most 256).
    pub fn evidence(&self) -> &Evidence {
        &self.evidence
    }

    /// Whether more frames can be decoded from the same stream.
    pub fn can_continue(&self) -> bool {
        self.can_continue
    }
}

/// Everything a decoder can fail with.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The peer broke the wire format.
    #[error(transparent)]
    Corrupt(#[from] CorruptFrame),
    /// The transport failed (required by `tokio_util::codec::Decoder`).
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}

/// Why an encoder (used by the simulators) refused an item.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    /// The item would exceed the codec's `max_frame`; shorten it or raise the limit.
    #[error("frame of {len} bytes exceeds max_frame {max}")]
    TooLong {
        /// Encoded length.
        len: usize,
        /// The codec's limit.
        max: usize,
    },
    /// The item cannot be represented in this codec (e.g. a newline in a line).
    #[error("cannot encode: {0}")]
    Invalid(String),
    /// The transport failed (required by `tokio_util::codec::Encoder`).
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evidence_is_capped_at_256_bytes() {
        let e = Evidence::new(&[7u8; 300]);
        assert_eq!(e.bytes().len(), 256);
        assert!(e.truncated());
        let e = Evidence::new(&[7u8; 256]);
        assert!(!e.truncated());
    }

    #[test]
    fn truncated_frames_cannot_continue() {
        let c = CorruptFrame::truncated("lines", b"abc");
        assert!(!c.can_continue());
        assert_eq!(c.kind(), CorruptKind::Truncated);
        assert!(CorruptFrame::new(CorruptKind::BadCrc, "x", b"").can_continue());
    }
}
