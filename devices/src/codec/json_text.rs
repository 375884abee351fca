//! Small helpers to assemble the JSON text of a reading by hand.
//!
//! Codecs write their data objects straight into a `String` of exact
//! capacity (a copy per field instead of serde's per-byte escaping), then
//! wrap it as a `RawValue`. Strings that need escaping take serde_json's
//! path, so the output is always correct JSON.

/// Whether `bytes` hold anything JSON strings must escape.
pub(crate) fn needs_escape(bytes: &[u8]) -> bool {
    bytes.iter().any(|&b| b < 0x20 || b == b'"' || b == b'\\')
}

/// Appends `s` as a JSON string literal, quoted and escaped.
pub(crate) fn push_str(out: &mut String, s: &str) {
    if needs_escape(s.as_bytes()) {
        // Serialising a str to a String cannot fail.
        if let Ok(quoted) = serde_json::to_string(s) {
            out.push_str(&quoted);
        }
    } else {
        push_plain(out, s);
    }
}

/// Appends `s`, known to need no escaping, quoted.
pub(crate) fn push_plain(out: &mut String, s: &str) {
    out.push('"');
    out.push_str(s);
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_only_when_needed() {
        let mut s = String::new();
        push_str(&mut s, "a\"b\\c\u{1}");
        assert_eq!(s, r#""a\"b\\c\u0001""#);
        s.clear();
        push_str(&mut s, "plain é");
        assert_eq!(s, "\"plain é\"");
    }
}
