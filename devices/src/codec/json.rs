//! The `json` codec: one JSON object per line, or per MQTT message (SPEC
//! section 4).
//!
//! Data: the object itself, validated but passed through as received (no
//! re-serialisation). Lines holding only whitespace are skipped, as most
//! NDJSON readers do.
//!
//! Corrupt, and how the stream continues:
//! - not valid JSON, or valid JSON that is not an object: the line is the
//!   evidence; decoding continues with the next line;
//! - more than `max_frame` bytes without a newline: reported when the limit
//!   is crossed, then input is discarded up to the next `\n`;
//! - end of input inside a line: `Truncated`, nothing can follow.

use bytes::{Buf, BufMut, BytesMut};
use serde_json::value::RawValue;
use tokio_util::codec::{Decoder, Encoder};

use super::error::{CorruptFrame, CorruptKind, DecodeError, EncodeError};
use super::line_framer::LineFramer;
use crate::json_object::JsonObject;
use crate::reading::Reading;

/// Decoder and encoder for the `json` codec.
#[derive(Debug, Clone)]
pub struct JsonCodec {
    framer: LineFramer,
    max_frame: usize,
}

impl JsonCodec {
    /// A codec that refuses objects longer than `max_frame` bytes.
    pub fn new(max_frame: usize) -> Self {
        JsonCodec {
            framer: LineFramer::new("json", max_frame),
            max_frame,
        }
    }

    /// Most bytes the decoder leaves buffered while waiting for more input.
    pub fn max_buffered(&self) -> usize {
        self.framer.max_buffered()
    }

    /// Decodes one whole MQTT message as one object: a message may be
    /// pretty-printed over several lines, so line framing does not apply.
    pub fn decode_message(&self, msg: &[u8]) -> Result<Reading, CorruptFrame> {
        if msg.len() > self.max_frame {
            return Err(CorruptFrame::new(
                CorruptKind::TooLong,
                format!(
                    "json message of {} bytes exceeds max_frame {}",
                    msg.len(),
                    self.max_frame
                ),
                msg,
            ));
        }
        Self::object(msg)
    }

    /// Validates `text` as exactly one JSON object (surrounding whitespace
    /// allowed) and copies it out as raw JSON.
    fn object(text: &[u8]) -> Result<Reading, CorruptFrame> {
        let raw: &RawValue = serde_json::from_slice(text).map_err(|e| {
            CorruptFrame::new(CorruptKind::InvalidJson, format!("json invalid: {e}"), text)
        })?;
        if !raw.get().starts_with('{') {
            return Err(CorruptFrame::new(
                CorruptKind::NotAnObject,
                "json value is not an object",
                text,
            ));
        }
        Ok(Reading::new(JsonObject::from_trusted(raw.get().to_owned())))
    }
}

impl Decoder for JsonCodec {
    type Item = Reading;
    type Error = DecodeError;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Reading>, DecodeError> {
        loop {
            let Some(span) = self.framer.next_line(buf)? else {
                return Ok(None);
            };
            let line = &buf[..span.content];
            if line.iter().all(u8::is_ascii_whitespace) {
                buf.advance(span.consumed);
                continue;
            }
            let result = Self::object(line);
            buf.advance(span.consumed);
            return Ok(Some(result?));
        }
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Reading>, DecodeError> {
        if let Some(item) = self.decode(buf)? {
            return Ok(Some(item));
        }
        if buf.iter().all(u8::is_ascii_whitespace) {
            buf.clear();
        }
        match self.framer.finish(buf) {
            Some(err) => Err(err.into()),
            None => Ok(None),
        }
    }
}

impl Encoder<&str> for JsonCodec {
    type Error = EncodeError;

    /// Writes one compact JSON object followed by `\n`.
    fn encode(&mut self, object: &str, dst: &mut BytesMut) -> Result<(), EncodeError> {
        if object.len() > self.max_frame {
            return Err(EncodeError::TooLong {
                len: object.len(),
                max: self.max_frame,
            });
        }
        if object.contains('\n') || !object.trim_start().starts_with('{') {
            return Err(EncodeError::Invalid(
                "expected one JSON object on one line".into(),
            ));
        }
        dst.reserve(object.len() + 1);
        dst.put_slice(object.as_bytes());
        dst.put_u8(b'\n');
        Ok(())
    }
}
