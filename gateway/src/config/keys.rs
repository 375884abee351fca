//! The keys each table of the config file takes, read from the serde
//! structs in `raw` themselves: serde's derive hands a struct's field names
//! to `deserialize_struct`, and a deserializer that only records them and
//! stops is enough to list them. The operator's reference
//! (`docs/configuration.md`) is checked against this list, so the two cannot
//! drift apart (`gateway/tests/config_reference.rs`).

use std::cell::Cell;
use std::fmt;

use serde::de::{self, DeserializeOwned, Deserializer, Visitor};

use super::raw::{
    RawField, RawGateway, RawGroup, RawHomeAssistant, RawMetrics, RawPolicy, RawRegister,
    RawSensor, RawSparkplug, RawUnit, RawUpstream,
};

/// Every table of the file, written as its header is (`[gateway]`,
/// `[[sensor]]`), with the keys the parser accepts in it, in declaration
/// order. `[[group]]` and `[[sensor]]` include the `[supervisor]` keys.
pub fn table_keys() -> Vec<(&'static str, &'static [&'static str])> {
    vec![
        ("[gateway]", fields::<RawGateway>()),
        ("[upstream]", fields::<RawUpstream>()),
        ("[supervisor]", fields::<RawPolicy>()),
        ("[[group]]", fields::<RawGroup>()),
        ("[[sensor]]", fields::<RawSensor>()),
        ("[[sensor.unit]]", fields::<RawUnit>()),
        ("[[sensor.unit]] registers", fields::<RawRegister>()),
        ("[[sensor.field]]", fields::<RawField>()),
        ("[metrics]", fields::<RawMetrics>()),
        ("[homeassistant]", fields::<RawHomeAssistant>()),
        ("[sparkplug]", fields::<RawSparkplug>()),
    ]
}

/// The field names serde's derive declares for `T`.
fn fields<T: DeserializeOwned>() -> &'static [&'static str] {
    let seen = Cell::new(&[][..]);
    // Always an error: the recorder stops once it has the names.
    let _ = T::deserialize(Recorder(&seen));
    seen.get()
}

/// A deserializer that records the `fields` of `deserialize_struct` and
/// refuses everything else.
struct Recorder<'a>(&'a Cell<&'static [&'static str]>);

/// The only outcome of a [`Recorder`].
#[derive(Debug)]
struct Stop;

impl fmt::Display for Stop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("key recorder stopped")
    }
}

impl std::error::Error for Stop {}

impl de::Error for Stop {
    fn custom<T: fmt::Display>(_: T) -> Self {
        Stop
    }
}

impl<'de> Deserializer<'de> for Recorder<'_> {
    type Error = Stop;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
        Err(Stop)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Stop> {
        self.0.set(fields);
        Err(Stop)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map enum identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_recorder_sees_every_field_of_a_struct() {
        let keys = table_keys();
        let gateway = keys.iter().find(|(t, _)| *t == "[gateway]").unwrap().1;
        assert_eq!(gateway, ["id", "state_dir"]);
        let sensor = keys.iter().find(|(t, _)| *t == "[[sensor]]").unwrap().1;
        assert!(sensor.contains(&"topics") && sensor.contains(&"quarantine_for"));
    }
}
