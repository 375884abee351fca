//! A driver that feeds a decoder input in chunks and checks its contract;
//! shared by the unit tests, the property tests and the fuzz targets.

use bytes::BytesMut;
use tokio_util::codec::Decoder;

use super::{CodecConfig, CorruptKind, DecodeError};

/// What one decode step produced, reduced to what tests compare.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A reading, as its data JSON text.
    Reading(String),
    /// A corrupt frame of this kind.
    Corrupt(CorruptKind),
}

/// Feeds `chunks` one by one as successive reads, then signals end of
/// input, and returns everything decoded. Checks, after every step, the
/// contract the links rely on; returns `Err` with a description if the
/// decoder buffered more than `max_buffered`, returned I/O errors from
/// memory, produced data that is not a JSON object, or kept going after a
/// corrupt frame that said it cannot continue.
pub fn decode_chunks<'a>(
    config: &CodecConfig,
    chunks: impl IntoIterator<Item = &'a [u8]>,
) -> Result<Vec<Outcome>, String> {
    let mut dec = config.decoder();
    let limit = dec.max_buffered();
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        loop {
            match step(dec.decode(&mut buf), &mut out)? {
                Step::More => continue,
                Step::NeedInput => break,
                Step::Stop => return Ok(out),
            }
        }
        if buf.len() > limit {
            return Err(format!("buffered {} bytes, limit {limit}", buf.len()));
        }
    }
    while let Step::More = step(dec.decode_eof(&mut buf), &mut out)? {}
    if !buf.is_empty() {
        return Err(format!("{} bytes left after end of input", buf.len()));
    }
    Ok(out)
}

enum Step {
    More,
    NeedInput,
    Stop,
}

fn step(
    r: Result<Option<crate::Reading>, DecodeError>,
    out: &mut Vec<Outcome>,
) -> Result<Step, String> {
    match r {
        Ok(Some(reading)) => {
            let text = reading.data_json().to_owned();
            let value: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| format!("data {text:?} is not JSON: {e}"))?;
            if !value.is_object() {
                return Err(format!("data {text:?} is not an object"));
            }
            out.push(Outcome::Reading(text));
            Ok(Step::More)
        }
        Ok(None) => Ok(Step::NeedInput),
        Err(DecodeError::Corrupt(c)) => {
            if c.evidence().bytes().len() > super::MAX_EVIDENCE {
                return Err("evidence over 256 bytes".into());
            }
            out.push(Outcome::Corrupt(c.kind()));
            Ok(if c.can_continue() {
                Step::More
            } else {
                Step::Stop
            })
        }
        Err(DecodeError::Io(e)) => Err(format!("i/o error from memory: {e}")),
    }
}
