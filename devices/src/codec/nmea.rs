//! The `nmea` codec: NMEA 0183 sentences (SPEC section 4).
//!
//! Framing: a sentence starts at `$` or `!` and ends at `\n` (`\r\n` usually;
//! a bare `\n` is accepted). `max_frame` (default 256) bounds the sentence
//! from its start character to the checksum, line ending excluded.
//! Empty lines and whitespace between sentences are skipped silently.
//!
//! Data: `{"address":"GPGGA","talker":"GP","sentence":"GGA","fields":[..]}`;
//! proprietary addresses (`PMTK001`) have talker `"P"`.
//!
//! Corrupt, and how the stream resynchronises:
//! - bytes that are not a sentence (no `$`/`!`): the run up to the next
//!   `$`/`!`, or through the next `\n`, is one error (`NoStart`);
//! - a sentence interrupted by another `$`/`!` before its line ending: the
//!   fragment is one error (`Malformed`), decoding resumes at the new start;
//! - bad checksum (`want` is the checksum computed over the received bytes,
//!   `got` the one the sentence carries), missing checksum when required,
//!   non-ASCII, bad address or bad `*HH`: the sentence is the evidence,
//!   decoding continues after its line ending;
//! - over `max_frame` without a terminator: reported when the limit is
//!   crossed, then input is discarded up to the next `$`, `!` or `\n`;
//! - end of input inside a sentence: `Truncated`, nothing can follow.
//!
//! Not supported: NMEA 4.0 tag blocks (`\s:...*hh\`) before the `$`; they
//! are reported as bytes that are not a sentence.

use bytes::{Buf, BufMut, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use super::error::{CorruptFrame, CorruptKind, DecodeError, EncodeError};
use super::nmea_sentence;
use super::ChecksumPolicy;
use crate::reading::Reading;

/// Decoder and encoder for the `nmea` codec.
#[derive(Debug, Clone)]
pub struct NmeaCodec {
    max_frame: usize,
    checksum: ChecksumPolicy,
    /// Dropping input after an over-long run, until `$`, `!` or `\n`.
    discarding: bool,
}

fn is_start(b: u8) -> bool {
    b == b'$' || b == b'!'
}

impl NmeaCodec {
    /// A codec for sentences up to `max_frame` bytes, with the given
    /// checksum policy.
    pub fn new(max_frame: usize, checksum: ChecksumPolicy) -> Self {
        NmeaCodec {
            max_frame,
            checksum,
            discarding: false,
        }
    }

    /// Most bytes the decoder leaves buffered while waiting for more input.
    pub fn max_buffered(&self) -> usize {
        self.max_frame + 1
    }

    fn corrupt(kind: CorruptKind, msg: impl Into<String>, bytes: &[u8]) -> CorruptFrame {
        CorruptFrame::new(kind, msg, bytes)
    }

    fn too_long(&self, bytes: &[u8]) -> CorruptFrame {
        Self::corrupt(
            CorruptKind::TooLong,
            format!("nmea sentence longer than max_frame {}", self.max_frame),
            bytes,
        )
    }

    /// Whether `len` unterminated bytes already exceed the limit (a trailing
    /// `\r` may still be the start of the line ending).
    fn over_limit(&self, buf: &[u8]) -> bool {
        let len = buf.len();
        len > self.max_frame + 1 || (len == self.max_frame + 1 && buf[len - 1] != b'\r')
    }

    /// Handles bytes that do not start a sentence.
    fn garbage(&mut self, buf: &mut BytesMut) -> Result<Option<Reading>, CorruptFrame> {
        match memchr::memchr3(b'$', b'!', b'\n', buf) {
            Some(i) => {
                let end = if buf[i] == b'\n' { i + 1 } else { i };
                let err = Self::corrupt(
                    CorruptKind::NoStart,
                    "nmea bytes outside a sentence (no $ or !)",
                    &buf[..end],
                );
                buf.advance(end);
                Err(err)
            }
            None if self.over_limit(buf) => {
                let err = Self::corrupt(
                    CorruptKind::NoStart,
                    "nmea bytes outside a sentence (no $ or !)",
                    buf,
                );
                buf.clear();
                self.discarding = true;
                Err(err)
            }
            None => Ok(None),
        }
    }

    /// Handles a buffer starting with `$` or `!`.
    fn sentence(&mut self, buf: &mut BytesMut) -> Result<Option<Reading>, CorruptFrame> {
        let Some(off) = memchr::memchr3(b'\n', b'$', b'!', &buf[1..]) else {
            if self.over_limit(buf) {
                let err = self.too_long(buf);
                buf.clear();
                self.discarding = true;
                return Err(err);
            }
            return Ok(None);
        };
        let end = off + 1;
        if buf[end] != b'\n' {
            let err = if end > self.max_frame {
                self.too_long(&buf[..end])
            } else {
                Self::corrupt(
                    CorruptKind::Malformed,
                    "nmea sentence interrupted by the start of another",
                    &buf[..end],
                )
            };
            buf.advance(end);
            return Err(err);
        }
        let content = if buf[end - 1] == b'\r' { end - 1 } else { end };
        let result = if content > self.max_frame {
            Err(self.too_long(&buf[..content]))
        } else {
            nmea_sentence::parse(&buf[..content], self.checksum)
        };
        buf.advance(end + 1);
        result.map(Some)
    }
}

impl Decoder for NmeaCodec {
    type Item = Reading;
    type Error = DecodeError;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Reading>, DecodeError> {
        loop {
            if self.discarding {
                match memchr::memchr3(b'$', b'!', b'\n', buf) {
                    Some(i) => {
                        buf.advance(if buf[i] == b'\n' { i + 1 } else { i });
                        self.discarding = false;
                    }
                    None => {
                        buf.clear();
                        return Ok(None);
                    }
                }
            }
            let Some(&first) = buf.first() else {
                return Ok(None);
            };
            if first == b'\n' {
                buf.advance(1);
                continue;
            }
            // Stray whitespace between sentences (`\r\r\n`, padding) is not data.
            if matches!(first, b'\r' | b' ' | b'\t') {
                let ws = buf
                    .iter()
                    .take_while(|b| matches!(b, b'\r' | b' ' | b'\t'))
                    .count();
                match buf.get(ws) {
                    None if ws <= self.max_frame => return Ok(None),
                    Some(b'\n') => {
                        buf.advance(ws + 1);
                        continue;
                    }
                    Some(&b) if is_start(b) => {
                        buf.advance(ws);
                        continue;
                    }
                    _ => {}
                }
            }
            let result = if is_start(first) {
                self.sentence(buf)
            } else {
                self.garbage(buf)
            };
            return Ok(result?);
        }
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Reading>, DecodeError> {
        if let Some(item) = self.decode(buf)? {
            return Ok(Some(item));
        }
        self.discarding = false;
        if buf.iter().all(|b| matches!(b, b'\r' | b' ' | b'\t')) {
            buf.clear();
            return Ok(None);
        }
        let err = CorruptFrame::truncated("nmea", buf);
        buf.clear();
        Err(err.into())
    }
}

impl Encoder<&str> for NmeaCodec {
    type Error = EncodeError;

    /// Writes `sentence` (e.g. `"$GPGGA,1,2"`, without checksum) followed by
    /// its `*HH` checksum and `\r\n`.
    fn encode(&mut self, sentence: &str, dst: &mut BytesMut) -> Result<(), EncodeError> {
        let bytes = sentence.as_bytes();
        if bytes.len() + 3 > self.max_frame {
            return Err(EncodeError::TooLong {
                len: bytes.len() + 3,
                max: self.max_frame,
            });
        }
        let valid_body = bytes
            .iter()
            .skip(1)
            .all(|&b| b.is_ascii() && !matches!(b, b'$' | b'!' | b'*' | b'\r' | b'\n'));
        if bytes.is_empty() || !is_start(bytes[0]) || !valid_body {
            return Err(EncodeError::Invalid(
                "an NMEA sentence starts with $ or ! and holds only ASCII without $ ! * CR LF"
                    .into(),
            ));
        }
        let sum = nmea_sentence::checksum(&bytes[1..]);
        dst.reserve(bytes.len() + 5);
        dst.put_slice(bytes);
        dst.put_u8(b'*');
        dst.put_slice(hex::encode_upper([sum]).as_bytes());
        dst.put_slice(b"\r\n");
        Ok(())
    }
}
