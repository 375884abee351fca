//! The `frame` codec: binary frames with a CRC (SPEC section 4).
//!
//! Layout: `A5 5A` sync, version `01`, payload length (u16 big-endian,
//! `<= max_frame`), payload, CRC-16/CCITT-FALSE (big-endian) over version,
//! length and payload. Data: `{"payload_b64":"..."}` (standard alphabet,
//! padded).
//!
//! Bytes before a sync pair are not an error: they are skipped and counted
//! ([`FrameCodec::skipped_bytes`]).
//!
//! Corrupt, and how the stream resynchronises:
//! - unknown version or length over the limit: the 5 header bytes are the
//!   evidence;
//! - bad CRC: the whole frame is the evidence;
//! - in all three cases only the sync pair is consumed and the decoder
//!   scans for the next one, because a corrupt length cannot be trusted to
//!   find the end of the frame (the rest of a bad frame is then counted as
//!   skipped bytes);
//! - end of input inside a frame: `Truncated`, nothing can follow.

use base64::Engine as _;
use bytes::{Buf, BufMut, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use super::error::{CorruptFrame, CorruptKind, DecodeError, EncodeError};
use crate::reading::Reading;

/// First byte of the sync pair.
pub const SYNC0: u8 = 0xA5;
/// Second byte of the sync pair.
pub const SYNC1: u8 = 0x5A;
/// The only version this codec understands.
pub const VERSION: u8 = 0x01;
/// Sync (2) + version (1) + length (2).
const HEADER: usize = 5;
/// Header plus CRC.
const OVERHEAD: usize = HEADER + 2;

/// CRC-16/CCITT-FALSE, with a 16-way table for throughput.
static CRC: crc::Crc<u16, crc::Table<16>> =
    crc::Crc::<u16, crc::Table<16>>::new(&crc::CRC_16_IBM_3740);

/// Decoder and encoder for the `frame` codec.
#[derive(Debug, Clone)]
pub struct FrameCodec {
    max_frame: usize,
    skipped: u64,
}

impl FrameCodec {
    /// A codec that refuses payloads longer than `max_frame` bytes
    /// (at most 65535, what the length field can say).
    pub fn new(max_frame: usize) -> Self {
        FrameCodec {
            max_frame: max_frame.min(u16::MAX as usize),
            skipped: 0,
        }
    }

    /// Bytes skipped while looking for a sync pair, since creation.
    pub fn skipped_bytes(&self) -> u64 {
        self.skipped
    }

    /// Most bytes the decoder leaves buffered while waiting for more input.
    pub fn max_buffered(&self) -> usize {
        self.max_frame + OVERHEAD
    }

    /// The CRC the SPEC prescribes, for encoders and tests.
    pub fn crc(bytes: &[u8]) -> u16 {
        CRC.checksum(bytes)
    }

    /// Drops bytes before the next sync pair; true when one is at the front.
    fn sync(&mut self, buf: &mut BytesMut) -> bool {
        if buf.len() >= 2 && buf[0] == SYNC0 && buf[1] == SYNC1 {
            return true;
        }
        let mut from = 0;
        while let Some(off) = memchr::memchr(SYNC0, &buf[from..]) {
            let at = from + off;
            match buf.get(at + 1) {
                Some(&SYNC1) => {
                    self.skip(buf, at);
                    return true;
                }
                Some(_) => from = at + 1,
                // A trailing A5 may be the first half of a sync pair.
                None => {
                    self.skip(buf, at);
                    return false;
                }
            }
        }
        let all = buf.len();
        self.skip(buf, all);
        false
    }

    fn skip(&mut self, buf: &mut BytesMut, n: usize) {
        self.skipped += n as u64;
        buf.advance(n);
    }

    fn corrupt(buf: &mut BytesMut, kind: CorruptKind, msg: String, evidence: usize) -> DecodeError {
        let err = CorruptFrame::new(kind, msg, &buf[..evidence]);
        // Consume only the sync pair: the rest is rescanned.
        buf.advance(2);
        err.into()
    }

    fn reading(payload: &[u8]) -> Reading {
        let b64_len = payload.len().div_ceil(3) * 4;
        let mut json = String::with_capacity(b64_len + 18);
        json.push_str("{\"payload_b64\":\"");
        base64::engine::general_purpose::STANDARD.encode_string(payload, &mut json);
        json.push_str("\"}");
        super::trusted_reading(json)
    }
}

impl Decoder for FrameCodec {
    type Item = Reading;
    type Error = DecodeError;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Reading>, DecodeError> {
        if !self.sync(buf) || buf.len() < HEADER {
            return Ok(None);
        }
        let version = buf[2];
        if version != VERSION {
            let msg = format!("frame unknown version 0x{version:02X} (want 0x{VERSION:02X})");
            return Err(Self::corrupt(buf, CorruptKind::UnknownVersion, msg, HEADER));
        }
        let len = u16::from_be_bytes([buf[3], buf[4]]) as usize;
        if len > self.max_frame {
            let msg = format!("frame length {len} exceeds max_frame {}", self.max_frame);
            return Err(Self::corrupt(buf, CorruptKind::TooLong, msg, HEADER));
        }
        let total = OVERHEAD + len;
        if buf.len() < total {
            buf.reserve(total - buf.len());
            return Ok(None);
        }
        let want = CRC.checksum(&buf[2..HEADER + len]);
        let got = u16::from_be_bytes([buf[HEADER + len], buf[HEADER + len + 1]]);
        if want != got {
            let msg = format!("frame crc mismatch: want {want:04X} got {got:04X}");
            return Err(Self::corrupt(buf, CorruptKind::BadCrc, msg, total));
        }
        let reading = Self::reading(&buf[HEADER..HEADER + len]);
        buf.advance(total);
        Ok(Some(reading))
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Reading>, DecodeError> {
        if let Some(item) = self.decode(buf)? {
            return Ok(Some(item));
        }
        if buf.len() <= 1 {
            // Nothing, or a lone A5 that never became a sync pair.
            let n = buf.len();
            self.skip(buf, n);
            return Ok(None);
        }
        // Only the start of a frame can be left after `decode`.
        let err = CorruptFrame::truncated("frame", buf);
        buf.clear();
        Err(err.into())
    }
}

impl Encoder<&[u8]> for FrameCodec {
    type Error = EncodeError;

    /// Writes one frame carrying `payload`.
    fn encode(&mut self, payload: &[u8], dst: &mut BytesMut) -> Result<(), EncodeError> {
        if payload.len() > self.max_frame {
            return Err(EncodeError::TooLong {
                len: payload.len(),
                max: self.max_frame,
            });
        }
        let start = dst.len();
        dst.reserve(OVERHEAD + payload.len());
        dst.put_slice(&[SYNC0, SYNC1, VERSION]);
        dst.put_u16(payload.len() as u16);
        dst.put_slice(payload);
        let crc = CRC.checksum(&dst[start + 2..]);
        dst.put_u16(crc);
        Ok(())
    }
}
