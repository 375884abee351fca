//! From edgevisor's telemetry to Sparkplug metrics, without I/O: the
//! envelope of an acknowledged telemetry message read back into a
//! [`Reading`], its declared fields picked from `data` as typed values
//! (numbers as Double, booleans as Boolean, text as String, a missing
//! field as null), or the whole `data` as one String metric `json` for a
//! sensor that declares none.

use std::time::SystemTime;

use serde::Deserialize;

use super::proto::{data_type, metric, Metric, PropertySet, PropertyValue};
use crate::config::FieldConfig;

/// The metric that carries a sensor's whole `data` when it declares no
/// fields.
pub const JSON_METRIC: &str = "json";

/// One reading, as the Sparkplug node needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    /// The sensor's id (`meters/meter-1` for a Modbus unit).
    pub sensor: String,
    /// When it was taken, in ms since the Unix epoch.
    pub ts_ms: u64,
    /// Its `data`.
    pub data: serde_json::Value,
    /// It waited out an outage before it was delivered.
    pub historical: bool,
}

/// Why a telemetry message could not be read back.
#[derive(Debug, thiserror::Error)]
pub enum EnvelopeError {
    /// Not the telemetry envelope of SPEC section 5.
    #[error("not a telemetry envelope: {0}")]
    Json(#[from] serde_json::Error),
    /// `ts` is not RFC 3339.
    #[error("bad ts {0:?} in a telemetry envelope")]
    Timestamp(String),
}

#[derive(Deserialize)]
struct Envelope {
    sensor: String,
    ts: String,
    data: serde_json::Value,
}

/// Reads a telemetry envelope (`{"gateway":..,"sensor":..,"ts":..,"data":..}`).
pub fn reading(payload: &[u8], historical: bool) -> Result<Reading, EnvelopeError> {
    let envelope: Envelope = serde_json::from_slice(payload)?;
    let at = humantime::parse_rfc3339(&envelope.ts)
        .map_err(|_| EnvelopeError::Timestamp(envelope.ts.clone()))?;
    Ok(Reading {
        sensor: envelope.sensor,
        ts_ms: millis(at),
        data: envelope.data,
        historical,
    })
}

/// Milliseconds since the Unix epoch (0 before it).
pub fn millis(at: SystemTime) -> u64 {
    at.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A sensor id as a Sparkplug device id: Sparkplug ids are single topic
/// levels, so `/` (a Modbus unit, `<bus>/<unit>`) becomes `_`.
pub fn device_id(sensor: &str) -> String {
    sensor.replace('/', "_")
}

/// One metric's value in a reading; `value` is `None` when the field is
/// missing (or JSON null).
#[derive(Debug, Clone, PartialEq)]
pub struct FieldValue {
    /// The metric's name (the field's name, or [`JSON_METRIC`]).
    pub name: String,
    /// Its value.
    pub value: Option<metric::Value>,
    /// Its unit, sent as the `engUnit` property in a DBIRTH.
    pub unit: Option<String>,
}

impl FieldValue {
    /// The Sparkplug datatype of the value; `None` for a null.
    pub fn datatype(&self) -> Option<u32> {
        self.value.as_ref().map(datatype_of)
    }
}

/// The Sparkplug datatype of a value made by [`typed`].
pub fn datatype_of(value: &metric::Value) -> u32 {
    match value {
        metric::Value::DoubleValue(_) | metric::Value::FloatValue(_) => data_type::DOUBLE,
        metric::Value::BooleanValue(_) => data_type::BOOLEAN,
        metric::Value::LongValue(_) => data_type::INT64,
        _ => data_type::STRING,
    }
}

/// The metric values of `data` for a sensor declaring `fields` (the whole
/// `data` as JSON text in [`JSON_METRIC`] when it declares none).
pub fn values(fields: &[FieldConfig], data: &serde_json::Value) -> Vec<FieldValue> {
    if fields.is_empty() {
        return vec![FieldValue {
            name: JSON_METRIC.to_string(),
            value: Some(metric::Value::StringValue(data.to_string())),
            unit: None,
        }];
    }
    fields
        .iter()
        .map(|field| FieldValue {
            name: field.name.clone(),
            value: field.pick(data).and_then(typed),
            unit: field.unit.clone(),
        })
        .collect()
}

/// A JSON value as a metric value: a number as Double, a boolean as
/// Boolean, text as String, an object or array as its JSON text; null as
/// no value.
pub fn typed(value: &serde_json::Value) -> Option<metric::Value> {
    use serde_json::Value as J;
    Some(match value {
        J::Null => return None,
        J::Bool(b) => metric::Value::BooleanValue(*b),
        J::Number(n) => metric::Value::DoubleValue(n.as_f64()?),
        J::String(s) => metric::Value::StringValue(s.clone()),
        J::Array(_) | J::Object(_) => metric::Value::StringValue(value.to_string()),
    })
}

/// A metric as sent: `datatype` is the one declared in the device's
/// DBIRTH (a null keeps it); `unit` goes in as `engUnit` when given.
pub fn metric(
    field: &FieldValue,
    datatype: u32,
    ts_ms: u64,
    historical: bool,
    with_unit: bool,
) -> Metric {
    let properties = field
        .unit
        .as_ref()
        .filter(|_| with_unit)
        .map(|unit| PropertySet {
            keys: vec!["engUnit".to_string()],
            values: vec![PropertyValue {
                r#type: Some(data_type::STRING),
                is_null: None,
                value: Some(super::proto::property_value::Value::StringValue(
                    unit.clone(),
                )),
            }],
        });
    Metric {
        name: Some(field.name.clone()),
        timestamp: Some(ts_ms),
        datatype: Some(datatype),
        is_historical: historical.then_some(true),
        is_null: field.value.is_none().then_some(true),
        properties,
        value: field.value.clone(),
        ..Metric::default()
    }
}

/// An Int64 metric (`bdSeq`).
pub fn int64(name: &str, value: i64, ts_ms: u64) -> Metric {
    Metric {
        name: Some(name.to_string()),
        timestamp: Some(ts_ms),
        datatype: Some(data_type::INT64),
        // Int64 travels as two's complement in the u64.
        value: Some(metric::Value::LongValue(value as u64)),
        ..Metric::default()
    }
}

/// A Boolean metric (`Node Control/Rebirth`).
pub fn boolean(name: &str, value: bool, ts_ms: u64) -> Metric {
    Metric {
        name: Some(name.to_string()),
        timestamp: Some(ts_ms),
        datatype: Some(data_type::BOOLEAN),
        value: Some(metric::Value::BooleanValue(value)),
        ..Metric::default()
    }
}

/// A String metric.
pub fn string(name: &str, value: &str, ts_ms: u64) -> Metric {
    Metric {
        name: Some(name.to_string()),
        timestamp: Some(ts_ms),
        datatype: Some(data_type::STRING),
        value: Some(metric::Value::StringValue(value.to_string())),
        ..Metric::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn field(name: &str, path: &[&str], unit: Option<&str>) -> FieldConfig {
        FieldConfig {
            name: name.into(),
            json_path: path.iter().map(|s| s.to_string()).collect(),
            unit: unit.map(str::to_string),
            device_class: None,
        }
    }

    #[test]
    fn an_envelope_reads_back_with_its_time_in_ms() {
        let body = br#"{"gateway":"gw","sensor":"meters/m1","boot":3,"seq":7,"ts":"2026-11-24T10:00:00.123Z","codec":"json","data":{"t":1}}"#;
        let r = reading(body, true).unwrap();
        assert_eq!(r.sensor, "meters/m1");
        assert_eq!(r.ts_ms, 1_795_514_400_123);
        assert_eq!(r.data, json!({"t": 1}));
        assert!(r.historical);
        assert!(reading(b"{}", false).is_err());
        let bad_ts = br#"{"sensor":"s","ts":"yesterday","data":{}}"#;
        assert!(matches!(
            reading(bad_ts, false),
            Err(EnvelopeError::Timestamp(_))
        ));
    }

    #[test]
    fn declared_fields_become_typed_metrics_and_missing_ones_null() {
        let fields = [
            field("temp", &["env", "temp"], Some("°C")),
            field("ok", &["ok"], None),
            field("name", &["name"], None),
            field("gone", &["nowhere"], None),
        ];
        let data = json!({"env": {"temp": 21}, "ok": true, "name": "barn"});
        let v = values(&fields, &data);
        assert_eq!(v[0].value, Some(metric::Value::DoubleValue(21.0)));
        assert_eq!(v[0].datatype(), Some(data_type::DOUBLE));
        assert_eq!(v[1].datatype(), Some(data_type::BOOLEAN));
        assert_eq!(v[2].value, Some(metric::Value::StringValue("barn".into())));
        assert_eq!(v[3].value, None);
        let m = metric(&v[3], data_type::DOUBLE, 5, true, false);
        assert_eq!(
            (m.is_null, m.datatype, m.is_historical, m.timestamp),
            (Some(true), Some(data_type::DOUBLE), Some(true), Some(5))
        );
        let unit = metric(&v[0], data_type::DOUBLE, 5, false, true);
        assert_eq!(unit.is_historical, None);
        assert_eq!(unit.properties.unwrap().keys, ["engUnit"]);
    }

    #[test]
    fn a_sensor_without_fields_sends_its_data_as_json_text() {
        let v = values(&[], &json!({"text": "seq=1"}));
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].name, JSON_METRIC);
        assert_eq!(
            v[0].value,
            Some(metric::Value::StringValue(r#"{"text":"seq=1"}"#.into()))
        );
    }

    #[test]
    fn device_ids_have_no_slash() {
        assert_eq!(device_id("meters/meter-1"), "meters_meter-1");
        assert_eq!(device_id("weather"), "weather");
    }
}
