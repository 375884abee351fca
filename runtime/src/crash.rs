//! Why a child ended badly: a reason from a small vocabulary, a human message
//! and, when the child saw bad input, the offending bytes.
//!
//! Children return a [`Crash`] instead of panicking when they can ("let it
//! crash" still applies: returning the error ends the child and its
//! supervisor restarts it fresh). Panics are caught and turned into a
//! `Crash` with reason [`reason::PANIC`].

use std::any::Any;
use std::borrow::Cow;
use std::fmt;

/// The reasons the runtime itself produces. Children may use any short
/// snake_case word; the gateway uses `corrupt_frame`, `io`, `eof` and
/// `timeout` as SPEC section 5 lists them.
pub mod reason {
    /// The child panicked; the message is the panic's.
    pub const PANIC: &str = "panic";
    /// The start function returned an error.
    pub const START_FAILED: &str = "start_failed";
    /// A nested supervisor gave up after exhausting its intensity.
    pub const EXHAUSTED: &str = "exhausted";
    /// A permanent child returned normally and is restarted as OTP does.
    pub const NORMAL: &str = "normal";
}

/// The reason, message and evidence of one crash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Crash {
    /// A short machine-readable word, e.g. `corrupt_frame`.
    pub reason: Cow<'static, str>,
    /// What happened, for a person.
    pub message: String,
    /// The offending bytes, as far as whoever captured them kept them.
    pub evidence: Option<Vec<u8>>,
    /// True when the capture site cut the evidence short.
    pub evidence_truncated: bool,
    /// When the evidence is a request and its reply (a polled device): how
    /// many of its bytes were the request; the rest is the reply.
    pub evidence_request_len: Option<usize>,
}

impl Crash {
    /// A crash with a reason and a message and no evidence.
    pub fn new(reason: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
            message: message.into(),
            evidence: None,
            evidence_truncated: false,
            evidence_request_len: None,
        }
    }

    /// Attaches the offending bytes as the capture site kept them.
    ///
    /// The runtime knows nothing of frames, so it does not cap evidence: the
    /// one cap lives where bytes are captured (`edgevisor-devices` keeps at
    /// most SPEC's 256 bytes of a corrupt frame) and `truncated` says whether
    /// it cut them.
    pub fn with_evidence(mut self, bytes: impl Into<Vec<u8>>, truncated: bool) -> Self {
        self.evidence = Some(bytes.into());
        self.evidence_truncated = truncated;
        self
    }

    /// Attaches a request and the reply it got, kept apart so a report can
    /// show which bytes went which way. Like [`with_evidence`], it keeps
    /// what it is given: the capture site caps it.
    ///
    /// [`with_evidence`]: Self::with_evidence
    pub fn with_exchange(mut self, request: &[u8], reply: &[u8]) -> Self {
        let mut bytes = Vec::with_capacity(request.len() + reply.len());
        bytes.extend_from_slice(request);
        bytes.extend_from_slice(reply);
        self.evidence = Some(bytes);
        self.evidence_request_len = Some(request.len());
        self
    }

    /// Turns a caught panic payload into a crash, keeping its message.
    pub(crate) fn from_panic(payload: Box<dyn Any + Send>) -> Self {
        let message = if let Some(s) = payload.downcast_ref::<&'static str>() {
            (*s).to_string()
        } else if let Some(s) = payload.downcast_ref::<String>() {
            s.clone()
        } else {
            "panic with a non-string payload".to_string()
        };
        Self::new(reason::PANIC, message)
    }
}

impl fmt::Display for Crash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.reason, self.message)
    }
}

impl std::error::Error for Crash {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evidence_is_kept_as_captured() {
        let c = Crash::new("corrupt_frame", "bad").with_evidence(vec![7u8; 1000], false);
        assert_eq!(c.evidence.as_ref().map(Vec::len), Some(1000));
        assert!(!c.evidence_truncated);
        let c = Crash::new("corrupt_frame", "bad").with_evidence(&b"$GPGGA"[..], true);
        assert!(c.evidence_truncated);
    }

    #[test]
    fn panic_messages_survive_both_payload_types() {
        let c = Crash::from_panic(Box::new("static message"));
        assert_eq!(
            (c.reason.as_ref(), c.message.as_str()),
            ("panic", "static message")
        );
        let c = Crash::from_panic(Box::new(String::from("formatted 42")));
        assert_eq!(c.message, "formatted 42");
        let c = Crash::from_panic(Box::new(42u8));
        assert!(c.message.contains("non-string"));
    }
}
