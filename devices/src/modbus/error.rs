//! Why a poll failed: the SPEC reason, a message naming the function, unit
//! and address (and the exception by name), and the request and reply bytes
//! as evidence.

use crate::link::EndReason;

use super::frame::{ReplyError, Request};

/// A failed poll of one unit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct PollError {
    /// `timeout`, `corrupt_frame` or `io`.
    pub reason: EndReason,
    /// For a person: what was asked of whom, and what went wrong.
    pub message: String,
    /// The request as sent (empty when the port could not be opened).
    pub request: Vec<u8>,
    /// What came back, possibly nothing.
    pub reply: Vec<u8>,
    /// The exception code, when the unit answered with one.
    pub exception: Option<u8>,
    /// The port lost its framing or cannot be trusted any more (i/o error,
    /// bytes that are not Modbus TCP, repeated silence on TCP): the bus
    /// closes it and opens it again for the next request.
    pub(crate) reopen: bool,
}

impl PollError {
    /// No (complete) reply within the timeout, after every retry.
    pub(crate) fn timeout(request: &Request, frame: &[u8], got: &[u8], tries: u32) -> Self {
        let after = if tries > 1 {
            format!(" after {tries} tries")
        } else {
            String::new()
        };
        let received = if got.is_empty() {
            String::new()
        } else {
            format!(" ({} bytes of a reply)", got.len())
        };
        PollError {
            reason: EndReason::Timeout,
            message: format!("{}: no reply{after}{received}", request.describe()),
            request: frame.to_vec(),
            reply: got.to_vec(),
            exception: None,
            reopen: false,
        }
    }

    /// A reply that is not an answer: an exception is reported as
    /// `corrupt_frame` too, since the unit refused what its map asks for.
    pub(crate) fn reply(request: &Request, frame: &[u8], got: &[u8], error: &ReplyError) -> Self {
        PollError {
            reason: EndReason::CorruptFrame,
            message: format!("{}: {error}", request.describe()),
            request: frame.to_vec(),
            reply: got.to_vec(),
            exception: match error {
                ReplyError::Exception { code } => Some(*code),
                ReplyError::Corrupt(_) | ReplyError::Framing(_) => None,
            },
            reopen: matches!(error, ReplyError::Framing(_)),
        }
    }

    /// The port failed (open, write, read, closed).
    pub(crate) fn io(context: String, source: &std::io::Error, request: &[u8]) -> Self {
        PollError {
            reason: EndReason::Io,
            message: format!("{context}: {source}"),
            request: request.to_vec(),
            reply: Vec::new(),
            exception: None,
            reopen: true,
        }
    }

    /// The port could not be opened.
    pub(crate) fn link(error: &crate::link::LinkError) -> Self {
        PollError {
            reason: EndReason::Io,
            message: error.to_string(),
            request: Vec::new(),
            reply: Vec::new(),
            exception: None,
            reopen: true,
        }
    }

    /// The same error, closing the port (a write that could not finish).
    pub(crate) fn reopening(mut self) -> Self {
        self.reopen = true;
        self
    }

    /// Whether another try of the same request may succeed: a timeout or a
    /// garbled reply (noise on the line), but not an exception (the unit
    /// answered on purpose) nor a dead port.
    pub(crate) fn retryable(&self) -> bool {
        self.reason == EndReason::Timeout
            || (self.reason == EndReason::CorruptFrame && self.exception.is_none())
    }
}
