//! Counters a link keeps, for metrics and for harnesses that prove no loss.

/// What a link has seen since it was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkStats {
    /// Readings delivered.
    pub readings: u64,
    /// Corrupt frames reported.
    pub corrupt: u64,
    /// Bytes read from the transport (byte-stream links) or received in
    /// messages (MQTT).
    pub bytes: u64,
    /// `frame` only: bytes skipped before sync pairs.
    pub skipped_bytes: u64,
}
