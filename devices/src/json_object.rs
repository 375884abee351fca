//! [`JsonObject`]: the JSON text of a reading's data object.
//!
//! The gateway embeds a reading's data verbatim into its telemetry payload
//! (`{"gateway":..,"data":{...}}`), so the text must be valid JSON and must
//! not be parsed again on the way out. `serde_json::value::RawValue` gives
//! that, but can only be built by re-parsing the text (or with `unsafe`,
//! which this crate forbids); for the text the codecs assemble themselves
//! that parse was half the cost of decoding an NMEA sentence.
//!
//! A `JsonObject` is built only inside this crate: by the `json` codec
//! after validating the input, or by the other codecs, which write their
//! SPEC data objects with proper escaping. It serialises verbatim through
//! serde_json's `RawValue` marker; because that marker is a serde_json
//! implementation detail, the path is verified once per process and, should
//! a future serde_json drop it, serialisation falls back to building a real
//! `RawValue` (slower, still correct). A unit test pins the fast path.

use std::fmt;
use std::sync::OnceLock;

use serde::ser::{Error as _, Serialize, SerializeStruct, Serializer};
use serde_json::value::RawValue;

/// serde_json's private name for "emit this string verbatim".
const MARKER: &str = "$serde_json::private::RawValue";

/// JSON text of one object, valid by construction. Serialises verbatim.
#[derive(Clone, PartialEq, Eq)]
pub struct JsonObject(Box<str>);

impl JsonObject {
    /// Wraps text a codec validated or assembled itself.
    pub(crate) fn from_trusted(json: String) -> Self {
        JsonObject(json.into_boxed_str())
    }

    /// The JSON text, for callers that build payloads by hand.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The text as a `RawValue`, for APIs that want one (this copies it).
    pub fn to_raw_value(&self) -> Result<Box<RawValue>, serde_json::Error> {
        if marker_works() {
            return serde_json::value::to_raw_value(&Verbatim(&self.0));
        }
        RawValue::from_string(self.0.to_string())
    }
}

impl fmt::Display for JsonObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for JsonObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JsonObject({})", self.0)
    }
}

impl Serialize for JsonObject {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if marker_works() {
            return Verbatim(&self.0).serialize(s);
        }
        let raw = RawValue::from_string(self.0.to_string()).map_err(S::Error::custom)?;
        raw.serialize(s)
    }
}

struct Verbatim<'a>(&'a str);

impl Serialize for Verbatim<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct(MARKER, 1)?;
        st.serialize_field(MARKER, self.0)?;
        st.end()
    }
}

/// Whether serde_json still honours the marker (checked once per process).
fn marker_works() -> bool {
    static WORKS: OnceLock<bool> = OnceLock::new();
    *WORKS.get_or_init(|| {
        let sample = r#"{"a":[1,"x"]}"#;
        serde_json::to_string(&Verbatim(sample)).is_ok_and(|out| out == sample)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialises_verbatim_inside_a_payload() {
        assert!(
            marker_works(),
            "serde_json changed its RawValue marker: serialising data now re-parses it"
        );
        let data = JsonObject::from_trusted(r#"{"text":"a\"b"}"#.to_owned());
        let payload = serde_json::json!({"gateway": "g", "data": data});
        assert_eq!(
            payload.to_string(),
            r#"{"data":{"text":"a\"b"},"gateway":"g"}"#
        );
        let out = serde_json::to_string(&("x", &data)).expect("serialises");
        assert_eq!(out, r#"["x",{"text":"a\"b"}]"#);
        assert_eq!(data.to_raw_value().expect("valid").get(), data.as_str());
    }
}
