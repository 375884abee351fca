//! The JSON payloads of SPEC section 5, byte for byte: topics are built in
//! `topics`, bodies here. Telemetry is the hot path: its envelope is
//! rendered by [`TelemetryEnvelope`] from parts escaped once per sensor,
//! with the codec's data object embedded verbatim (already valid JSON), so
//! a reading is never parsed or serialised twice. The rarer payloads go
//! through serde.
//!
//! Field names and order are SPEC section 5's, which documents them; they
//! are not documented again one by one.
#![allow(missing_docs)]

use std::time::SystemTime;

use bytes::BufMut;
use serde::Serialize;

/// RFC 3339 UTC with milliseconds, e.g. `2026-11-24T10:00:00.123Z`.
pub fn timestamp(at: SystemTime) -> String {
    humantime::format_rfc3339_millis(at).to_string()
}

/// [`timestamp`] for a stream of readings: the date and time of day are
/// formatted once per second, each call then writes three digits. Formatting
/// the whole date cost more than rendering a reading's envelope, and with
/// many quiet connections each read carries a single reading.
#[derive(Debug, Default)]
pub struct TimestampCache {
    /// The second (since the epoch) that `text` was formatted for.
    second: Option<u64>,
    text: String,
}

impl TimestampCache {
    /// `timestamp(at)`.
    pub fn format(&mut self, at: SystemTime) -> &str {
        let Ok(since) = at.duration_since(SystemTime::UNIX_EPOCH) else {
            self.second = None;
            self.text = timestamp(at);
            return &self.text;
        };
        let second = since.as_secs();
        if self.second != Some(second) {
            self.second = Some(second);
            self.text = timestamp(at);
        }
        // `text` ends in `.mmmZ`, all ASCII.
        let millis = since.subsec_millis();
        let cut = self.text.len().saturating_sub(4);
        self.text.truncate(cut);
        for digit in [millis / 100, millis / 10 % 10, millis % 10] {
            self.text.push(char::from(b'0' + digit as u8));
        }
        self.text.push('Z');
        &self.text
    }
}

/// Renders one sensor's telemetry payloads. Everything that is the same for
/// every reading of the sensor (gateway, sensor, boot, codec) is escaped
/// once here; a reading then costs a few buffer copies and an integer
/// format, instead of a serde pass over the whole envelope.
#[derive(Debug, Clone)]
pub struct TelemetryEnvelope {
    /// `{"gateway":G,"sensor":S,"boot":N,"seq":`
    head: String,
    /// `,"codec":C,"data":`
    codec: String,
    /// The same after `,"clock":"unsynced"`, used while the system clock is
    /// not synchronised (`crate::clock`).
    codec_unsynced: String,
}

impl TelemetryEnvelope {
    /// The envelope of `sensor`'s readings in this boot.
    pub fn new(gateway: &str, sensor: &str, boot: u64, codec: &str) -> Self {
        Self {
            head: format!(
                r#"{{"gateway":{},"sensor":{},"boot":{boot},"seq":"#,
                json_string(gateway),
                json_string(sensor)
            ),
            codec: format!(r#","codec":{},"data":"#, json_string(codec)),
            codec_unsynced: format!(
                r#","clock":"unsynced","codec":{},"data":"#,
                json_string(codec)
            ),
        }
    }

    /// The payload of reading `seq`, taken at `ts` (see [`timestamp`]),
    /// with `data` (a JSON object) embedded verbatim.
    pub fn render(&self, seq: u64, ts: &str, data: &str) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len_at_most(ts, data));
        self.render_into(&mut out, seq, ts, data);
        out
    }

    /// Appends the payload of reading `seq` to `out`: a batch's payloads
    /// go into one buffer, each then split off it without a copy.
    pub fn render_into(&self, out: &mut impl BufMut, seq: u64, ts: &str, data: &str) {
        let mut seq_text = itoa::Buffer::new();
        out.put_slice(self.head.as_bytes());
        out.put_slice(seq_text.format(seq).as_bytes());
        out.put_slice(Self::TS);
        out.put_slice(ts.as_bytes());
        out.put_u8(b'"');
        let tail = if crate::clock::unsynced() {
            &self.codec_unsynced
        } else {
            &self.codec
        };
        out.put_slice(tail.as_bytes());
        out.put_slice(data.as_bytes());
        out.put_u8(b'}');
    }

    /// The longest a payload with this `ts` and `data` can be (`seq` at
    /// its widest), to size buffers once.
    pub fn len_at_most(&self, ts: &str, data: &str) -> usize {
        const MAX_SEQ_DIGITS: usize = 20;
        self.head.len()
            + MAX_SEQ_DIGITS
            + Self::TS.len()
            + ts.len()
            + 1
            + self.codec_unsynced.len()
            + data.len()
            + 1
    }

    const TS: &'static [u8] = br#","ts":""#;
}

/// `text` as a JSON string literal. Serialising a `&str` cannot fail; the
/// fallback is unreachable but keeps the output valid JSON.
fn json_string(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| String::from("\"\""))
}

/// `crash/<sensor>`.
#[derive(Serialize)]
pub struct CrashReport<'a> {
    pub gateway: &'a str,
    pub boot: u64,
    pub ts: &'a str,
    pub path: &'a str,
    pub sensor: &'a str,
    pub reason: &'a str,
    pub error: &'a str,
    pub evidence_hex: String,
    pub evidence_truncated: bool,
    pub restarts_in_window: u32,
    pub intensity: u32,
    pub period_ms: u64,
    pub action: &'a str,
    pub backoff_ms: u64,
}

/// `deadletter/<sensor>`.
#[derive(Serialize)]
pub struct DeadLetter<'a> {
    pub sensor: &'a str,
    pub boot: u64,
    pub ts: &'a str,
    pub error: &'a str,
    pub evidence_hex: String,
}

/// `state/<sensor>` (retained).
#[derive(Serialize)]
pub struct SensorState<'a> {
    pub state: &'a str,
    pub restarts: u32,
    pub since: &'a str,
}

/// `status` (retained); the Last Will carries only `state` and `boot`.
#[derive(Serialize)]
pub struct Status<'a> {
    pub state: &'a str,
    pub boot: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<&'a str>,
    /// Telemetry dropped per sensor by the outbox bound (SPEC 5, Delivery).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dropped: Option<&'a std::collections::BTreeMap<String, u64>>,
    /// Highest telemetry `seq` handed to the outbox per sensor this boot:
    /// every seq up to it was accepted and will be delivered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accepted: Option<&'a std::collections::BTreeMap<String, u64>>,
    /// The outbox's storage error, while it lasts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage_error: Option<&'a str>,
}

/// Serializes a payload. Our payload types hold only strings, numbers,
/// string-keyed maps and `JsonObject`s, which serde_json cannot fail on;
/// should one ever fail, the message says so in a valid JSON body (and the
/// log), rather than going out empty.
pub fn to_vec<T: Serialize>(payload: &T) -> Vec<u8> {
    serde_json::to_vec(payload).unwrap_or_else(|error| {
        tracing::error!(%error, "a payload could not be serialised; sending an error body instead");
        format!(
            r#"{{"error":{}}}"#,
            json_string(&format!("payload not serialisable: {error}"))
        )
        .into_bytes()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use edgevisor_devices::JsonObject;

    /// `telemetry/<sensor>`, field for field: the shape [`TelemetryEnvelope`]
    /// renders by hand, as a serde type the tests check it against.
    #[derive(Serialize)]
    pub struct Telemetry<'a> {
        pub gateway: &'a str,
        pub sensor: &'a str,
        pub boot: u64,
        pub seq: u64,
        pub ts: &'a str,
        pub codec: &'a str,
        pub data: &'a JsonObject,
    }

    #[test]
    fn timestamps_are_rfc3339_utc_with_milliseconds() {
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(1_795_000_000_123);
        assert_eq!(timestamp(t), "2026-11-18T11:06:40.123Z");
    }

    #[test]
    fn the_timestamp_cache_writes_what_timestamp_does() {
        let mut cache = TimestampCache::default();
        let start = 1_795_000_000_000u64;
        // Within a second, across second, minute and day boundaries, and
        // backwards in time (a clock step).
        let offsets = [
            0, 1, 9, 10, 99, 100, 999, 1000, 1001, 59_999, 60_000, 86_399_999, 5, 0,
        ];
        for offset in offsets {
            let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(start + offset);
            assert_eq!(cache.format(t), timestamp(t), "offset {offset} ms");
        }
    }

    #[test]
    fn the_envelope_renders_what_serde_would_for_any_names() {
        use edgevisor_devices::codec::{CodecConfig, CodecKind};
        let mut decoder = CodecConfig::new(CodecKind::Json).decoder();
        let reading = decoder
            .decode_message(br#"{"t":"a\"b","n":[1,2]}"#)
            .remove(0)
            .unwrap();
        for (gateway, sensor, seq) in [("gw", "s", 1), ("g-1", "we\"ird\\", u64::MAX), ("", "x", 0)]
        {
            let ts = "2026-11-24T10:00:00.123Z";
            let by_serde = to_vec(&Telemetry {
                gateway,
                sensor,
                boot: 42,
                seq,
                ts,
                codec: "json",
                data: reading.data(),
            });
            let by_hand = TelemetryEnvelope::new(gateway, sensor, 42, "json").render(
                seq,
                ts,
                reading.data_json(),
            );
            assert_eq!(
                String::from_utf8(by_hand).unwrap(),
                String::from_utf8(by_serde).unwrap()
            );
        }
    }

    #[test]
    fn telemetry_embeds_data_verbatim_in_spec_key_order() {
        use edgevisor_devices::codec::{CodecConfig, CodecKind};
        let mut decoder = CodecConfig::new(CodecKind::Lines).decoder();
        let reading = decoder.decode_message(b"21.5 C").remove(0).unwrap();
        let data = reading.data();
        let t = Telemetry {
            gateway: "gw",
            sensor: "w",
            boot: 7,
            seq: 1,
            ts: "2026-11-24T10:00:00.123Z",
            codec: "lines",
            data,
        };
        assert_eq!(
            String::from_utf8(to_vec(&t)).unwrap(),
            r#"{"gateway":"gw","sensor":"w","boot":7,"seq":1,"ts":"2026-11-24T10:00:00.123Z","codec":"lines","data":{"text":"21.5 C"}}"#
        );
    }
}
