//! The `nmea` codec: NMEA 0183 sentences (SPEC section 4).
//!
//! Framing: a sentence starts at `$` or `!` and ends at `\n` (`\r\n` usually;
//! a bare `\n` is accepted). `max_frame` (default 256) bounds the sentence
//! from its start character to the checksum, line ending excluded.
//! Empty lines are skipped silently.
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
use super::json_text;
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
            self.parse(&buf[..content])
        };
        buf.advance(end + 1);
        result.map(Some)
    }

    /// Parses one sentence (`$` through checksum, no line ending).
    fn parse(&self, s: &[u8]) -> Result<Reading, CorruptFrame> {
        let len = s.len();
        let (body, stated) = if len >= 4 && s[len - 3] == b'*' {
            (&s[1..len - 3], Some(&s[len - 2..]))
        } else {
            (&s[1..], None)
        };
        let scan = Scan::of(body);
        if scan.non_ascii || !stated.unwrap_or_default().is_ascii() {
            return Err(Self::corrupt(
                CorruptKind::NonAscii,
                "nmea non-ASCII byte in sentence",
                s,
            ));
        }
        if scan.star {
            return Err(Self::corrupt(
                CorruptKind::Malformed,
                "nmea malformed checksum field (want *HH at the end)",
                s,
            ));
        }
        match stated {
            Some(hh) => {
                let mut got = [0u8; 1];
                if hex::decode_to_slice(hh, &mut got).is_err() {
                    return Err(Self::corrupt(
                        CorruptKind::Malformed,
                        "nmea malformed checksum field (want *HH)",
                        s,
                    ));
                }
                if scan.xor != got[0] {
                    let msg = format!(
                        "nmea checksum mismatch: want {:02X} got {:02X}",
                        scan.xor, got[0]
                    );
                    return Err(Self::corrupt(CorruptKind::ChecksumMismatch, msg, s));
                }
            }
            None if self.checksum == ChecksumPolicy::Required => {
                return Err(Self::corrupt(
                    CorruptKind::MissingChecksum,
                    "nmea checksum missing (checksum = \"required\")",
                    s,
                ));
            }
            None => {}
        }
        // ASCII was checked above, so this cannot fail; no unsafe needed.
        let body = std::str::from_utf8(body).map_err(|_| {
            Self::corrupt(CorruptKind::NonAscii, "nmea non-ASCII byte in sentence", s)
        })?;
        let (address, fields) = match memchr::memchr(b',', body.as_bytes()) {
            Some(i) => (&body[..i], Some(&body[i + 1..])),
            None => (body, None),
        };
        let (talker, sentence) = split_address(address).ok_or_else(|| {
            Self::corrupt(
                CorruptKind::Malformed,
                format!("nmea malformed address {address:?}"),
                s,
            )
        })?;
        let parts = Parts {
            address,
            talker,
            sentence,
            fields,
        };
        let json = if scan.escape {
            parts.json_escaped()
        } else {
            parts.json_plain(scan.commas)
        };
        Ok(super::trusted_reading(json))
    }
}

/// What one pass over a sentence body finds (a loop LLVM vectorises).
struct Scan {
    xor: u8,
    non_ascii: bool,
    escape: bool,
    star: bool,
    commas: usize,
}

impl Scan {
    fn of(body: &[u8]) -> Scan {
        // Only u8 accumulators, so the loop runs 16 bytes at a time.
        let (mut xor, mut flags, mut commas) = (0u8, 0u8, 0usize);
        for chunk in body.chunks(255) {
            let mut c = 0u8;
            for &b in chunk {
                xor ^= b;
                let escape = (b < 0x20) | (b == b'"') | (b == b'\\');
                flags |= (b >> 7) | (u8::from(escape) << 1) | (u8::from(b == b'*') << 2);
                c += u8::from(b == b',');
            }
            commas += usize::from(c);
        }
        Scan {
            xor,
            non_ascii: flags & 1 != 0,
            escape: flags & 2 != 0,
            star: flags & 4 != 0,
            commas,
        }
    }
}

/// The pieces of a parsed sentence, borrowed from the input.
struct Parts<'a> {
    address: &'a str,
    talker: &'a str,
    sentence: &'a str,
    /// Everything after the first comma; `None` when there is no comma.
    fields: Option<&'a str>,
}

impl Parts<'_> {
    fn head(&self, out: &mut String, push: fn(&mut String, &str)) {
        out.push_str("{\"address\":");
        push(out, self.address);
        out.push_str(",\"talker\":");
        push(out, self.talker);
        out.push_str(",\"sentence\":");
        push(out, self.sentence);
        out.push_str(",\"fields\":[");
    }

    /// JSON text when nothing needs escaping: exact capacity, no reallocation.
    fn json_plain(&self, commas: usize) -> String {
        // `commas` counted the comma after the address too.
        let fields_len = self.fields.map_or(0, |f| f.len() + 2 * commas);
        let mut out = String::with_capacity(52 + 2 * self.address.len() + fields_len);
        self.head(&mut out, json_text::push_plain);
        let mut bytes = out.into_bytes();
        if let Some(f) = self.fields {
            bytes.push(b'"');
            // Fields are short: a byte loop beats a memchr call per comma.
            for &b in f.as_bytes() {
                if b == b',' {
                    bytes.extend_from_slice(b"\",\"");
                } else {
                    bytes.push(b);
                }
            }
            bytes.push(b'"');
        }
        bytes.extend_from_slice(b"]}");
        // Only ASCII was written (checked by `Scan`); this is a fast check.
        String::from_utf8(bytes).unwrap_or_default()
    }

    /// JSON text when some byte needs escaping (rare: NMEA forbids them).
    fn json_escaped(&self) -> String {
        let mut out = String::new();
        self.head(&mut out, json_text::push_str);
        if let Some(f) = self.fields {
            for (i, field) in f.split(',').enumerate() {
                if i > 0 {
                    out.push(',');
                }
                json_text::push_str(&mut out, field);
            }
        }
        out.push_str("]}");
        out
    }
}

/// Splits an address into talker and sentence: `GPGGA` -> (`GP`, `GGA`),
/// `PMTK001` -> (`P`, `MTK001`). `None` when it is not alphanumeric or too
/// short to hold both.
fn split_address(address: &str) -> Option<(&str, &str)> {
    if !address.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    let at = if address.starts_with('P') { 1 } else { 2 };
    if address.len() <= at {
        return None;
    }
    Some(address.split_at(at))
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
            if first == b'\n' || (first == b'\r' && buf.get(1) == Some(&b'\n')) {
                buf.advance(if first == b'\n' { 1 } else { 2 });
                continue;
            }
            if first == b'\r' && buf.len() == 1 {
                return Ok(None);
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
        if buf.is_empty() || buf[..] == b"\r"[..] {
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
        let sum = Scan::of(&bytes[1..]).xor;
        dst.reserve(bytes.len() + 5);
        dst.put_slice(bytes);
        dst.put_u8(b'*');
        dst.put_slice(hex::encode_upper([sum]).as_bytes());
        dst.put_slice(b"\r\n");
        Ok(())
    }
}
