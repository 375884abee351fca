//! Parsing one NMEA sentence (start character through checksum, line
//! ending already removed) into its SPEC data object.
//!
//! One vectorised pass over the body computes the XOR checksum and finds
//! non-ASCII bytes, bytes JSON must escape, stray `*` and commas; the JSON
//! text is then written with exact capacity, a copy per field.

use super::error::{CorruptFrame, CorruptKind};
use super::json_text;
use super::ChecksumPolicy;
use crate::reading::Reading;

fn corrupt(kind: CorruptKind, msg: impl Into<String>, bytes: &[u8]) -> CorruptFrame {
    CorruptFrame::new(kind, msg, bytes)
}

/// The NMEA checksum: XOR of the bytes between `$`/`!` and `*`.
pub(super) fn checksum(body: &[u8]) -> u8 {
    Scan::of(body).xor
}

/// Parses one sentence (`$` through checksum, no line ending).
pub(super) fn parse(s: &[u8], policy: ChecksumPolicy) -> Result<Reading, CorruptFrame> {
    let len = s.len();
    let (body, stated) = if len >= 4 && s[len - 3] == b'*' {
        (&s[1..len - 3], Some(&s[len - 2..]))
    } else {
        (&s[1..], None)
    };
    let scan = Scan::of(body);
    // No stated checksum has no bytes to be non-ASCII.
    if scan.non_ascii || !stated.unwrap_or_default().is_ascii() {
        return Err(corrupt(
            CorruptKind::NonAscii,
            "nmea non-ASCII byte in sentence",
            s,
        ));
    }
    if scan.star {
        return Err(corrupt(
            CorruptKind::Malformed,
            "nmea malformed checksum field (want *HH at the end)",
            s,
        ));
    }
    match stated {
        Some(hh) => {
            let mut got = [0u8; 1];
            if hex::decode_to_slice(hh, &mut got).is_err() {
                return Err(corrupt(
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
                return Err(corrupt(CorruptKind::ChecksumMismatch, msg, s));
            }
        }
        None if policy == ChecksumPolicy::Required => {
            return Err(corrupt(
                CorruptKind::MissingChecksum,
                "nmea checksum missing (checksum = \"required\")",
                s,
            ));
        }
        None => {}
    }
    // ASCII was checked above, so this cannot fail; no unsafe needed.
    let body = std::str::from_utf8(body)
        .map_err(|_| corrupt(CorruptKind::NonAscii, "nmea non-ASCII byte in sentence", s))?;
    let (address, fields) = match memchr::memchr(b',', body.as_bytes()) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    let (talker, sentence) = split_address(address).ok_or_else(|| {
        corrupt(
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
        if let Some(f) = self.fields.map(str::as_bytes) {
            // Write into a slice of the exact final size: no capacity or
            // length bookkeeping per byte. `commas - 1` commas are in `f`.
            let start = bytes.len();
            bytes.resize(start + f.len() + 2 * commas, b'"');
            let dst = &mut bytes[start + 1..];
            let mut j = 0;
            for &b in f {
                if b == b',' {
                    dst[j..j + 3].copy_from_slice(b"\",\"");
                    j += 3;
                } else {
                    dst[j] = b;
                    j += 1;
                }
            }
        }
        bytes.extend_from_slice(b"]}");
        // Whole `str` pieces and ASCII punctuation, so always UTF-8; should
        // that ever break, the slow path still builds the right object
        // rather than an empty one.
        String::from_utf8(bytes).unwrap_or_else(|_| self.json_escaped())
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

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn parts<'a>(address: &'a str, fields: Option<&'a str>) -> Parts<'a> {
        let (talker, sentence) = split_address(address).unwrap_or(("", ""));
        Parts {
            address,
            talker,
            sentence,
            fields,
        }
    }

    #[test]
    fn fields_become_a_full_object() {
        let p = parts("GPGGA", Some("1,,3"));
        let want = r#"{"address":"GPGGA","talker":"GP","sentence":"GGA","fields":["1","","3"]}"#;
        assert_eq!(p.json_plain(3), want);
        assert_eq!(p.json_escaped(), want);
        let bare = r#"{"address":"GPGGA","talker":"GP","sentence":"GGA","fields":[]}"#;
        assert_eq!(parts("GPGGA", None).json_plain(0), bare);
    }

    proptest! {
        #[test]
        fn fast_and_slow_paths_agree(fields in proptest::collection::vec("[A-Za-z0-9 .:/+-]{0,8}", 1..8)) {
            let fields = fields.join(",");
            let commas = 1 + fields.matches(',').count();
            let p = parts("GPRMC", Some(&fields));
            let json = p.json_plain(commas);
            prop_assert_eq!(&json, &p.json_escaped());
            let value: serde_json::Value = serde_json::from_str(&json).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(value["fields"].as_array().map(Vec::len), Some(commas));
        }
    }
}
