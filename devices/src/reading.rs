//! The unit a link delivers: one decoded sensor reading.
//!
//! Its `data` is the JSON text of the SPEC section 4 data object, as a
//! [`JsonObject`] the gateway can embed verbatim into the telemetry payload
//! without parsing or re-serialising it.

use crate::json_object::JsonObject;

/// One decoded reading.
#[derive(Debug, Clone)]
pub struct Reading {
    data: JsonObject,
}

impl Reading {
    /// Codecs are the only producers, which is what guarantees `data` is a
    /// JSON object.
    pub(crate) fn new(data: JsonObject) -> Self {
        Reading { data }
    }

    /// The SPEC data object; serialises verbatim as `"data": {...}`.
    pub fn data(&self) -> &JsonObject {
        &self.data
    }

    /// The same as [`data`](Self::data), as text.
    pub fn data_json(&self) -> &str {
        self.data.as_str()
    }

    /// Takes the data out, for a payload struct that owns it.
    pub fn into_data(self) -> JsonObject {
        self.data
    }
}
