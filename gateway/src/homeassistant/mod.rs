//! Home Assistant MQTT discovery (SPEC section 11): a retained discovery
//! config per declared field (`[[sensor.field]]`) of every sensor, so Home
//! Assistant creates one entity each, reading the sensor's telemetry topic
//! and available while the gateway is `online` and the sensor `running`.
//! Everything goes through the uplink's retained values: sent again after
//! every reconnect, again when Home Assistant's birth message says
//! `online`, and replaced by an empty retained payload (which deletes the
//! entity) when a reload removes a sensor or a field.
//!
//! - `names`: topics and ids, the only place that spells them;
//! - `payload`: one entity's config (pure, tested against the exact JSON);
//! - `publisher`: what is published now, reloads and the birth message.

mod names;
mod payload;
mod publisher;

use std::collections::BTreeMap;

pub use names::{birth_topic, config_topic, device_identifier, node_id, unique_id};
pub use payload::{
    discovery_config, state_class, value_template, SENSOR_AVAILABLE, SENSOR_NOT_AVAILABLE,
};
pub use publisher::{listen, Discovery};

use crate::config::{Config, FieldConfig, LinkConfig};
use crate::topics::Topics;

/// One entity: a declared field of a sensor as it publishes telemetry (a
/// Modbus bus's fields apply to each unit, `<bus>/<unit>`; a tcp-listen
/// sensor's connections all publish under its own id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entity<'a> {
    /// The sensor name in topics.
    pub sensor: String,
    /// The field.
    pub field: &'a FieldConfig,
}

/// Every entity `config` declares, in tree order, whether or not discovery
/// is on (`edgevisor check` counts them).
pub fn entities(config: &Config) -> Vec<Entity<'_>> {
    let mut entities = Vec::new();
    for sensor in config.sensors() {
        let names: Vec<String> = match &sensor.link {
            LinkConfig::Modbus(m) => m
                .units
                .iter()
                .map(|u| format!("{}/{}", sensor.id, u.id))
                .collect(),
            _ => vec![sensor.id.clone()],
        };
        for name in names {
            entities.extend(sensor.fields.iter().map(|field| Entity {
                sensor: name.clone(),
                field,
            }));
        }
    }
    entities
}

/// The retained discovery configs `config` asks for, by topic; none when
/// discovery is off.
pub fn configs(config: &Config) -> BTreeMap<String, Vec<u8>> {
    let Some(ha) = &config.homeassistant else {
        return BTreeMap::new();
    };
    let gateway = &config.gateway.id;
    let topics = Topics::new(&config.upstream.topic_prefix, gateway);
    entities(config)
        .into_iter()
        .map(|e| {
            (
                config_topic(&ha.prefix, gateway, &e.sensor, &e.field.name),
                discovery_config(gateway, &topics, &e.sensor, e.field),
            )
        })
        .collect()
}

/// What to publish to go from the configs `old` to `new`: each new or
/// changed config, and an empty payload (a retained delete, which removes
/// the entity from Home Assistant) for each topic that is gone.
pub fn changes(
    old: &BTreeMap<String, Vec<u8>>,
    new: &BTreeMap<String, Vec<u8>>,
) -> Vec<(String, Vec<u8>)> {
    let gone = old
        .keys()
        .filter(|topic| !new.contains_key(*topic))
        .map(|topic| (topic.clone(), Vec::new()));
    let changed = new
        .iter()
        .filter(|(topic, payload)| old.get(*topic) != Some(payload))
        .map(|(topic, payload)| (topic.clone(), payload.clone()));
    gone.chain(changed).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(entries: &[(&str, &str)]) -> BTreeMap<String, Vec<u8>> {
        entries
            .iter()
            .map(|(t, p)| (t.to_string(), p.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn a_reload_deletes_what_is_gone_and_sends_what_changed() {
        let old = map(&[("a", "1"), ("b", "1"), ("c", "1")]);
        let new = map(&[("b", "1"), ("c", "2"), ("d", "1")]);
        let changes = changes(&old, &new);
        let text: Vec<(&str, &[u8])> = changes
            .iter()
            .map(|(t, p)| (t.as_str(), p.as_slice()))
            .collect();
        assert_eq!(text, [("a", &b""[..]), ("c", &b"2"[..]), ("d", &b"1"[..])]);
        assert!(super::changes(&new, &new).is_empty());
    }

    #[test]
    fn modbus_units_and_plain_sensors_each_get_their_fields() {
        let text = r#"
[gateway]
id = "gw1"
[upstream]
url = "mqtt://127.0.0.1:1883"
[homeassistant]
discovery = true
[[sensor]]
id = "weather"
transport = "tcp"
address = "127.0.0.1:4001"
codec = "json"
[[sensor.field]]
name = "temperature"
json_path = "$.env.temp"
unit = "°C"
[[sensor.field]]
name = "humidity"
json_path = "$.env.rh"
[[sensor]]
id = "meters"
transport = "modbus-tcp"
address = "127.0.0.1:502"
codec = "modbus"
[[sensor.unit]]
id = "a"
unit_id = 1
registers = [{ name = "power", table = "input", address = 0, type = "uint16" }]
[[sensor.unit]]
id = "b"
unit_id = 2
registers = [{ name = "power", table = "input", address = 0, type = "uint16" }]
[[sensor.field]]
name = "power"
json_path = "$.power"
unit = "W"
"#;
        let config = Config::parse(std::path::Path::new("t.toml"), text).unwrap();
        let topics: Vec<String> = configs(&config).into_keys().collect();
        assert_eq!(
            topics,
            [
                "homeassistant/sensor/gw1_meters_a/power/config",
                "homeassistant/sensor/gw1_meters_b/power/config",
                "homeassistant/sensor/gw1_weather/humidity/config",
                "homeassistant/sensor/gw1_weather/temperature/config",
            ]
        );
        let unit_b: serde_json::Value = serde_json::from_slice(
            &configs(&config)["homeassistant/sensor/gw1_meters_b/power/config"],
        )
        .unwrap();
        assert_eq!(unit_b["state_topic"], "edgevisor/gw1/telemetry/meters/b");
        assert_eq!(unit_b["unique_id"], "gw1_meters_b_power");
        assert!(
            crate::config::summary(&config).ends_with(
                "home assistant discovery: 4 entity(ies) (declared fields) under homeassistant/sensor/\n"
            ),
            "{}",
            crate::config::summary(&config)
        );
        let mut off = config.clone();
        off.homeassistant = None;
        assert!(configs(&off).is_empty());
        assert_eq!(entities(&off).len(), 4);
        assert!(!crate::config::summary(&off).contains("home assistant"));
    }
}
