//! The Sparkplug B payload, as the subset of `sparkplug_b.proto` (package
//! `org.eclipse.tahu.protobuf`) this edge node writes and a host reads:
//! `Payload`, `Metric` with its scalar values, and the `PropertySet` that
//! carries a metric's unit. Written by hand with `prost` derives, with the
//! field numbers and types of the official schema, so no `protoc` or build
//! script is needed and no EPL-licensed file is shipped. Fields and values
//! left out (templates, data sets, metadata, extensions) are skipped by a
//! decoder like any unknown field.

/// Sparkplug's `DataType` numbers for the metric types used here.
pub mod data_type {
    /// 64-bit signed integer, carried in `long_value` (two's complement).
    pub const INT64: u32 = 4;
    /// 64-bit float, `double_value`.
    pub const DOUBLE: u32 = 10;
    /// `boolean_value`.
    pub const BOOLEAN: u32 = 11;
    /// UTF-8 text, `string_value`.
    pub const STRING: u32 = 12;
}

/// A Sparkplug B message body: every NBIRTH, NDEATH, DBIRTH, DDATA,
/// DDEATH and NCMD is one of these.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Payload {
    /// Milliseconds since the Unix epoch, UTC, when the message was made.
    #[prost(uint64, optional, tag = "1")]
    pub timestamp: Option<u64>,
    /// The metrics.
    #[prost(message, repeated, tag = "2")]
    pub metrics: Vec<Metric>,
    /// The message sequence number, 0..=255 (absent in NDEATH).
    #[prost(uint64, optional, tag = "3")]
    pub seq: Option<u64>,
    /// Correlation id (unused here).
    #[prost(string, optional, tag = "4")]
    pub uuid: Option<String>,
    /// Opaque bytes (unused here).
    #[prost(bytes = "vec", optional, tag = "5")]
    pub body: Option<Vec<u8>>,
}

/// One named value of a node or device.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Metric {
    /// Its name (`temp`, `bdSeq`, `Node Control/Rebirth`).
    #[prost(string, optional, tag = "1")]
    pub name: Option<String>,
    /// Alias (unused: names are always sent).
    #[prost(uint64, optional, tag = "2")]
    pub alias: Option<u64>,
    /// Milliseconds since the Unix epoch when the value was taken.
    #[prost(uint64, optional, tag = "3")]
    pub timestamp: Option<u64>,
    /// A [`data_type`] number.
    #[prost(uint32, optional, tag = "4")]
    pub datatype: Option<u32>,
    /// The value was taken earlier and is delivered late (after an outage).
    #[prost(bool, optional, tag = "5")]
    pub is_historical: Option<bool>,
    /// Not to be stored by the host (unused).
    #[prost(bool, optional, tag = "6")]
    pub is_transient: Option<bool>,
    /// The metric has no value now (the declared field was missing).
    #[prost(bool, optional, tag = "7")]
    pub is_null: Option<bool>,
    /// Properties such as `engUnit`.
    #[prost(message, optional, tag = "9")]
    pub properties: Option<PropertySet>,
    /// The value, unless `is_null`.
    #[prost(oneof = "metric::Value", tags = "10, 11, 12, 13, 14, 15, 16")]
    pub value: Option<metric::Value>,
}

/// The value kinds of a [`Metric`].
pub mod metric {
    /// A metric's value; which one follows its `datatype`.
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Value {
        /// Int8..Int32, UInt8..UInt32.
        #[prost(uint32, tag = "10")]
        IntValue(u32),
        /// Int64, UInt64, DateTime.
        #[prost(uint64, tag = "11")]
        LongValue(u64),
        /// Float.
        #[prost(float, tag = "12")]
        FloatValue(f32),
        /// Double.
        #[prost(double, tag = "13")]
        DoubleValue(f64),
        /// Boolean.
        #[prost(bool, tag = "14")]
        BooleanValue(bool),
        /// String, Text, UUID.
        #[prost(string, tag = "15")]
        StringValue(String),
        /// Bytes, File.
        #[prost(bytes = "vec", tag = "16")]
        BytesValue(Vec<u8>),
    }
}

/// Named properties of a metric (parallel lists of keys and values).
#[derive(Clone, PartialEq, prost::Message)]
pub struct PropertySet {
    /// Property names.
    #[prost(string, repeated, tag = "1")]
    pub keys: Vec<String>,
    /// Their values, in the order of `keys`.
    #[prost(message, repeated, tag = "2")]
    pub values: Vec<PropertyValue>,
}

/// One property's value.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PropertyValue {
    /// A [`data_type`] number.
    #[prost(uint32, optional, tag = "1")]
    pub r#type: Option<u32>,
    /// No value.
    #[prost(bool, optional, tag = "2")]
    pub is_null: Option<bool>,
    /// The value.
    #[prost(oneof = "property_value::Value", tags = "3, 4, 5, 6, 7, 8")]
    pub value: Option<property_value::Value>,
}

/// The value kinds of a [`PropertyValue`].
pub mod property_value {
    /// A property's value.
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Value {
        /// 32-bit and smaller integers.
        #[prost(uint32, tag = "3")]
        IntValue(u32),
        /// 64-bit integers.
        #[prost(uint64, tag = "4")]
        LongValue(u64),
        /// Float.
        #[prost(float, tag = "5")]
        FloatValue(f32),
        /// Double.
        #[prost(double, tag = "6")]
        DoubleValue(f64),
        /// Boolean.
        #[prost(bool, tag = "7")]
        BooleanValue(bool),
        /// String.
        #[prost(string, tag = "8")]
        StringValue(String),
    }
}

impl Metric {
    /// The metric's value as a number, if it holds one (for hosts and tests).
    pub fn as_f64(&self) -> Option<f64> {
        match self.value.as_ref()? {
            metric::Value::DoubleValue(v) => Some(*v),
            metric::Value::FloatValue(v) => Some(f64::from(*v)),
            // Int64 travels as two's complement in the u64.
            metric::Value::LongValue(v) => Some(*v as i64 as f64),
            metric::Value::IntValue(v) => Some(f64::from(*v)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn field_numbers_are_those_of_sparkplug_b_proto() {
        // Payload{timestamp: 1, seq: 2, metrics: [Metric{name: "a",
        // datatype: 10, is_historical: true, double_value: 1.0}]},
        // encoded by hand from the official field numbers.
        let mut metric = vec![0x0a, 0x01, b'a', 0x20, 0x0a, 0x28, 0x01, 0x69];
        metric.extend_from_slice(&1.0f64.to_le_bytes());
        let mut bytes = vec![0x08, 0x01, 0x12, metric.len() as u8];
        bytes.extend_from_slice(&metric);
        bytes.extend_from_slice(&[0x18, 0x02]);
        let payload = Payload::decode(bytes.as_slice()).unwrap();
        assert_eq!(payload.timestamp, Some(1));
        assert_eq!(payload.seq, Some(2));
        let m = &payload.metrics[0];
        assert_eq!(m.name.as_deref(), Some("a"));
        assert_eq!(m.datatype, Some(data_type::DOUBLE));
        assert_eq!(m.is_historical, Some(true));
        assert_eq!(m.value, Some(metric::Value::DoubleValue(1.0)));
        assert_eq!(payload.encode_to_vec(), bytes);
    }
}
