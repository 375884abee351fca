//! Codecs: turn the bytes a sensor sends into [`Reading`]s (SPEC section 4).
//!
//! Each codec is a `tokio_util::codec::Decoder` (and an `Encoder`, used by
//! the simulators) with a documented contract: what "corrupt" means for it,
//! how it resynchronises, what it does at end of input, and how much it
//! buffers. All decoders share these rules:
//!
//! - after `decode` returns `Ok(None)`, at most [`ReadingDecoder::max_buffered`]
//!   bytes remain in the buffer, whatever the peer sends;
//! - a [`CorruptFrame`] is returned after the offending bytes were consumed,
//!   so decoding again continues the stream (when `can_continue`);
//! - `decode_eof` reports an unfinished frame as `Truncated`.

mod error;
mod frame;
mod json;
mod json_text;
mod line_framer;
mod lines;
mod nmea;
mod nmea_sentence;
pub mod testing;

use std::fmt;
use std::str::FromStr;

use bytes::{BufMut, BytesMut};
use tokio_util::codec::Decoder;

pub use error::{CorruptFrame, CorruptKind, DecodeError, EncodeError, Evidence, MAX_EVIDENCE};
pub use frame::FrameCodec;
pub use json::JsonCodec;
pub use lines::LinesCodec;
pub use nmea::NmeaCodec;

use crate::json_object::JsonObject;
use crate::reading::Reading;

/// SPEC default `max_frame` for every codec but NMEA.
pub const DEFAULT_MAX_FRAME: usize = 4096;
/// SPEC default `max_frame` for NMEA: room for long proprietary sentences.
pub const DEFAULT_NMEA_MAX_FRAME: usize = 256;

/// The four wire formats of SPEC section 4, named as in the config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CodecKind {
    /// `lines`
    Lines,
    /// `nmea`
    Nmea,
    /// `frame`
    Frame,
    /// `json`
    Json,
}

impl CodecKind {
    /// All kinds, for tests and benchmarks that cover every codec.
    pub const ALL: [CodecKind; 4] = [
        CodecKind::Lines,
        CodecKind::Nmea,
        CodecKind::Frame,
        CodecKind::Json,
    ];

    /// The config name (`"lines"`, `"nmea"`, `"frame"`, `"json"`).
    pub fn as_str(self) -> &'static str {
        match self {
            CodecKind::Lines => "lines",
            CodecKind::Nmea => "nmea",
            CodecKind::Frame => "frame",
            CodecKind::Json => "json",
        }
    }

    /// The SPEC default `max_frame` for this codec.
    pub fn default_max_frame(self) -> usize {
        match self {
            CodecKind::Nmea => DEFAULT_NMEA_MAX_FRAME,
            _ => DEFAULT_MAX_FRAME,
        }
    }
}

impl fmt::Display for CodecKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown codec name in a config.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown codec {0:?}: expected lines, nmea, frame or json")]
pub struct UnknownCodec(pub String);

impl FromStr for CodecKind {
    type Err = UnknownCodec;

    fn from_str(s: &str) -> Result<Self, UnknownCodec> {
        CodecKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| UnknownCodec(s.to_owned()))
    }
}

/// NMEA `checksum = "required" | "optional"`: old receivers send none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ChecksumPolicy {
    /// A sentence without `*HH` is corrupt (SPEC default).
    #[default]
    Required,
    /// A sentence without `*HH` is accepted; one with a wrong one is not.
    Optional,
}

impl FromStr for ChecksumPolicy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "required" => Ok(ChecksumPolicy::Required),
            "optional" => Ok(ChecksumPolicy::Optional),
            _ => Err(format!(
                "unknown checksum policy {s:?}: expected required or optional"
            )),
        }
    }
}

/// A sensor's codec settings, as the gateway maps them from its config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodecConfig {
    /// Which wire format.
    pub kind: CodecKind,
    /// Largest frame accepted (see each codec for what is counted).
    pub max_frame: usize,
    /// NMEA only.
    pub checksum: ChecksumPolicy,
}

impl CodecConfig {
    /// SPEC defaults for `kind`.
    pub fn new(kind: CodecKind) -> Self {
        CodecConfig {
            kind,
            max_frame: kind.default_max_frame(),
            checksum: ChecksumPolicy::Required,
        }
    }

    /// A fresh decoder (one per connection: decoders hold framing state).
    pub fn decoder(&self) -> ReadingDecoder {
        match self.kind {
            CodecKind::Lines => ReadingDecoder::Lines(LinesCodec::new(self.max_frame)),
            CodecKind::Nmea => ReadingDecoder::Nmea(NmeaCodec::new(self.max_frame, self.checksum)),
            CodecKind::Frame => ReadingDecoder::Frame(FrameCodec::new(self.max_frame)),
            CodecKind::Json => ReadingDecoder::Json(JsonCodec::new(self.max_frame)),
        }
    }
}

/// Any of the four decoders, chosen at run time from a [`CodecConfig`].
#[derive(Debug, Clone)]
pub enum ReadingDecoder {
    /// `lines`
    Lines(LinesCodec),
    /// `nmea`
    Nmea(NmeaCodec),
    /// `frame`
    Frame(FrameCodec),
    /// `json`
    Json(JsonCodec),
}

impl ReadingDecoder {
    /// Most bytes left buffered after `decode` returns `Ok(None)`.
    pub fn max_buffered(&self) -> usize {
        match self {
            ReadingDecoder::Lines(c) => c.max_buffered(),
            ReadingDecoder::Nmea(c) => c.max_buffered(),
            ReadingDecoder::Frame(c) => c.max_buffered(),
            ReadingDecoder::Json(c) => c.max_buffered(),
        }
    }

    /// Bytes skipped before `frame` sync pairs (0 for other codecs).
    pub fn skipped_bytes(&self) -> u64 {
        match self {
            ReadingDecoder::Frame(c) => c.skipped_bytes(),
            _ => 0,
        }
    }

    /// Decodes one self-contained message (an MQTT payload). `json` takes
    /// the whole message as one object; the others decode the frames in it,
    /// a line-based message needing no final newline.
    pub fn decode_message(&mut self, msg: &[u8]) -> Vec<Result<Reading, CorruptFrame>> {
        if let ReadingDecoder::Json(c) = self {
            return vec![c.decode_message(msg)];
        }
        let mut buf = BytesMut::with_capacity(msg.len() + 1);
        buf.put_slice(msg);
        if matches!(self, ReadingDecoder::Lines(_) | ReadingDecoder::Nmea(_))
            && !msg.ends_with(b"\n")
        {
            buf.put_u8(b'\n');
        }
        let mut out = Vec::new();
        loop {
            match self.decode_eof(&mut buf) {
                Ok(Some(r)) => out.push(Ok(r)),
                Ok(None) => break,
                Err(DecodeError::Corrupt(c)) => {
                    let stop = !c.can_continue();
                    out.push(Err(c));
                    if stop {
                        break;
                    }
                }
                // Decoding from memory does no I/O.
                Err(DecodeError::Io(_)) => break,
            }
        }
        out
    }
}

impl Decoder for ReadingDecoder {
    type Item = Reading;
    type Error = DecodeError;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Reading>, DecodeError> {
        match self {
            ReadingDecoder::Lines(c) => c.decode(buf),
            ReadingDecoder::Nmea(c) => c.decode(buf),
            ReadingDecoder::Frame(c) => c.decode(buf),
            ReadingDecoder::Json(c) => c.decode(buf),
        }
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Reading>, DecodeError> {
        match self {
            ReadingDecoder::Lines(c) => c.decode_eof(buf),
            ReadingDecoder::Nmea(c) => c.decode_eof(buf),
            ReadingDecoder::Frame(c) => c.decode_eof(buf),
            ReadingDecoder::Json(c) => c.decode_eof(buf),
        }
    }
}

/// Wraps JSON text a codec assembled itself (valid by construction).
fn trusted_reading(json: String) -> Reading {
    Reading::new(JsonObject::from_trusted(json))
}
