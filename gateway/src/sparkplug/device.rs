//! One Sparkplug device (a sensor) as the node sees it: whether the host
//! has its birth on this session, whether its sensor runs, the metric
//! types its DBIRTH declared and its last values (what a rebirth sends).
//! Pure: it builds payloads, the node numbers and sends them.

use super::payload::{self, FieldValue};
use super::proto::{data_type, Metric, Payload};

/// A device's state on the node.
#[derive(Debug, Clone)]
pub struct Device {
    /// Its DBIRTH went out on this session (and no DDEATH since).
    pub born: bool,
    /// Its sensor runs (not quarantined or stopped).
    pub alive: bool,
    /// The metrics its last DBIRTH declared, with their datatypes.
    types: Vec<(String, u32)>,
    /// Its last values and their time, for the next DBIRTH.
    last: Option<(Vec<FieldValue>, u64)>,
}

impl Default for Device {
    fn default() -> Self {
        Self {
            born: false,
            alive: true,
            types: Vec::new(),
            last: None,
        }
    }
}

impl Device {
    /// True if values are known, so a DBIRTH can be made.
    pub fn can_be_born(&self) -> bool {
        self.last.is_some()
    }

    /// Takes a reading's values; true if they need a new DBIRTH first (the
    /// device is not born, or a metric changed its type or set).
    pub fn take(&mut self, values: &[FieldValue], ts_ms: u64) -> bool {
        let same_set = self.types.len() == values.len()
            && self.types.iter().zip(values).all(|((name, declared), v)| {
                name == &v.name && v.datatype().is_none_or(|t| t == *declared)
            });
        if !same_set {
            self.types = values
                .iter()
                .map(|v| {
                    let known = self.types.iter().find(|(n, _)| n == &v.name).map(|t| t.1);
                    // A null field keeps the type it had, or is text until
                    // a value says otherwise.
                    let t = v.datatype().or(known).unwrap_or(data_type::STRING);
                    (v.name.clone(), t)
                })
                .collect();
        }
        self.last = Some((values.to_vec(), ts_ms));
        !self.born || !same_set
    }

    /// A DBIRTH payload (without `seq`) with the last values, each with
    /// its unit; `None` before any reading.
    pub fn birth(&self, now_ms: u64) -> Option<Payload> {
        let (values, ts) = self.last.as_ref()?;
        Some(Payload {
            timestamp: Some(now_ms),
            metrics: self.metrics(values, *ts, false, true),
            ..Payload::default()
        })
    }

    /// A DDATA payload (without `seq`) for the values just taken.
    pub fn data(
        &self,
        values: &[FieldValue],
        ts_ms: u64,
        historical: bool,
        now_ms: u64,
    ) -> Payload {
        Payload {
            timestamp: Some(now_ms),
            metrics: self.metrics(values, ts_ms, historical, false),
            ..Payload::default()
        }
    }

    fn metrics(
        &self,
        values: &[FieldValue],
        ts: u64,
        historical: bool,
        units: bool,
    ) -> Vec<Metric> {
        values
            .iter()
            .zip(&self.types)
            .map(|(v, (_, t))| payload::metric(v, *t, ts, historical, units))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::super::proto::metric::Value;
    use super::*;

    fn v(name: &str, value: Option<Value>) -> FieldValue {
        FieldValue {
            name: name.into(),
            value,
            unit: None,
        }
    }

    #[test]
    fn a_device_is_born_again_only_when_its_metrics_change_type() {
        let mut d = Device::default();
        assert!(d.birth(1).is_none(), "no birth before a reading");
        assert!(d.take(&[v("t", Some(Value::DoubleValue(1.0))), v("s", None)], 10));
        d.born = true;
        let birth = d.birth(11).unwrap();
        assert_eq!(birth.metrics[0].datatype, Some(data_type::DOUBLE));
        assert_eq!(birth.metrics[1].datatype, Some(data_type::STRING));
        assert_eq!(birth.metrics[1].is_null, Some(true));
        assert!(!d.take(
            &[v("t", None), v("s", Some(Value::StringValue("x".into())))],
            12
        ));
        let data = d.data(&[v("t", None), v("s", None)], 12, true, 13);
        assert_eq!(
            data.metrics[0].datatype,
            Some(data_type::DOUBLE),
            "a null keeps its type"
        );
        assert_eq!(data.metrics[0].is_historical, Some(true));
        assert!(
            d.take(&[v("t", Some(Value::BooleanValue(true))), v("s", None)], 14),
            "Double to Boolean needs a new DBIRTH"
        );
        assert_eq!(
            d.birth(15).unwrap().metrics[0].datatype,
            Some(data_type::BOOLEAN)
        );
    }
}
