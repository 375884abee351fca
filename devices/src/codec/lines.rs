//! The `lines` codec: UTF-8 text, one reading per line (SPEC section 4).
//!
//! Framing: a line ends at `\n`; a `\r` right before it is dropped.
//! Data: `{"text":"<line>"}`, JSON-escaped.
//!
//! Corrupt, and how the stream continues:
//! - invalid UTF-8 or a NUL byte: the whole line is the evidence; decoding
//!   continues with the next line (`can_continue`);
//! - more than `max_frame` bytes without a newline: reported as soon as the
//!   limit is crossed; the buffered bytes are dropped and input is discarded
//!   up to the next `\n`, where decoding resynchronises;
//! - end of input inside a line: `Truncated`, nothing can follow.

use bytes::{Buf, BufMut, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use super::error::{CorruptFrame, CorruptKind, DecodeError, EncodeError};
use super::json_text;
use super::line_framer::LineFramer;
use crate::reading::Reading;

/// Decoder and encoder for the `lines` codec.
#[derive(Debug, Clone)]
pub struct LinesCodec {
    framer: LineFramer,
    max_frame: usize,
}

impl LinesCodec {
    /// A codec that refuses lines longer than `max_frame` bytes.
    pub fn new(max_frame: usize) -> Self {
        LinesCodec {
            framer: LineFramer::new("lines", max_frame),
            max_frame,
        }
    }

    /// Most bytes the decoder leaves buffered while waiting for more input.
    pub fn max_buffered(&self) -> usize {
        self.framer.max_buffered()
    }

    fn reading(line: &[u8]) -> Result<Reading, CorruptFrame> {
        if memchr::memchr(0, line).is_some() {
            return Err(CorruptFrame::new(
                CorruptKind::NulByte,
                "lines: NUL byte in line",
                line,
            ));
        }
        let text = std::str::from_utf8(line).map_err(|e| {
            CorruptFrame::new(
                CorruptKind::InvalidUtf8,
                format!("lines: invalid UTF-8 at byte {}", e.valid_up_to()),
                line,
            )
        })?;
        let mut json = String::with_capacity(text.len() + 11);
        json.push_str("{\"text\":");
        json_text::push_str(&mut json, text);
        json.push('}');
        Ok(super::trusted_reading(json))
    }
}

impl Decoder for LinesCodec {
    type Item = Reading;
    type Error = DecodeError;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Reading>, DecodeError> {
        let Some(span) = self.framer.next_line(buf)? else {
            return Ok(None);
        };
        let result = Self::reading(&buf[..span.content]);
        buf.advance(span.consumed);
        Ok(Some(result?))
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Reading>, DecodeError> {
        if let Some(item) = self.decode(buf)? {
            return Ok(Some(item));
        }
        match self.framer.finish(buf) {
            Some(err) => Err(err.into()),
            None => Ok(None),
        }
    }
}

impl Encoder<&str> for LinesCodec {
    type Error = EncodeError;

    /// Writes `line` followed by `\n`.
    fn encode(&mut self, line: &str, dst: &mut BytesMut) -> Result<(), EncodeError> {
        if line.len() > self.max_frame {
            return Err(EncodeError::TooLong {
                len: line.len(),
                max: self.max_frame,
            });
        }
        if line.bytes().any(|b| b == b'\n' || b == 0) || line.ends_with('\r') {
            return Err(EncodeError::Invalid(
                "a line cannot hold \\n, NUL or end in \\r".into(),
            ));
        }
        dst.reserve(line.len() + 1);
        dst.put_slice(line.as_bytes());
        dst.put_u8(b'\n');
        Ok(())
    }
}
