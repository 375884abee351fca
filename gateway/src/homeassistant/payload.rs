//! The discovery config of one entity (a declared field of a sensor): a
//! pure function of the gateway's names and the field, so the exact JSON
//! Home Assistant receives is unit-tested here.
//!
//! Availability has two entries, both required (`availability_mode`
//! `all`): the gateway's retained `status` (its Last Will says `offline`
//! when the process dies) and the sensor's retained `state` (only `running`
//! is available). Home Assistant compares the rendered template with
//! `payload_available` and `payload_not_available` and ignores anything
//! else, so the state's template maps every other state to the
//! not-available word rather than passing it through.

use serde::Serialize;

use super::names;
use crate::config::FieldConfig;
use crate::topics::Topics;

/// What the sensor's `state` template renders for `running`.
pub const SENSOR_AVAILABLE: &str = "running";
/// What it renders for every other state (restarting, quarantined,
/// stopped).
pub const SENSOR_NOT_AVAILABLE: &str = "not_running";

/// Device classes whose value is not a number (Home Assistant refuses a
/// state class on them).
const NOT_NUMBERS: [&str; 3] = ["date", "enum", "timestamp"];

/// Device classes of meters, whose state class is `total` or
/// `total_increasing` (Home Assistant refuses `measurement` on them); the
/// config cannot say which, so they get none.
const METERS: [&str; 5] = ["energy", "gas", "monetary", "volume", "water"];

/// Python dict methods: Jinja reads `a.items` as the method, not the
/// member, so such names are written `a['items']`.
const DICT_METHODS: [&str; 11] = [
    "clear",
    "copy",
    "fromkeys",
    "get",
    "items",
    "keys",
    "pop",
    "popitem",
    "setdefault",
    "update",
    "values",
];

#[derive(Serialize)]
struct SensorDiscovery<'a> {
    name: String,
    unique_id: String,
    state_topic: String,
    value_template: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    unit_of_measurement: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    device_class: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    state_class: Option<&'static str>,
    availability: [Availability; 2],
    availability_mode: &'static str,
    device: Device<'a>,
}

#[derive(Serialize)]
struct Availability {
    topic: String,
    value_template: String,
    payload_available: &'static str,
    payload_not_available: &'static str,
}

#[derive(Serialize)]
struct Device<'a> {
    identifiers: [String; 1],
    name: &'a str,
    manufacturer: &'static str,
    model: &'static str,
    sw_version: &'static str,
}

/// The retained discovery config of `field` of `sensor` on `gateway`, as
/// JSON (keys in a fixed order).
pub fn discovery_config(
    gateway: &str,
    topics: &Topics,
    sensor: &str,
    field: &FieldConfig,
) -> Vec<u8> {
    let config = SensorDiscovery {
        name: format!("{sensor} {}", field.name),
        unique_id: names::unique_id(gateway, sensor, &field.name),
        state_topic: topics.telemetry(sensor),
        value_template: value_template(&field.json_path),
        unit_of_measurement: field.unit.as_deref(),
        device_class: field.device_class.as_deref(),
        state_class: state_class(field),
        availability: [
            Availability {
                topic: topics.status(),
                value_template: "{{ value_json.state }}".into(),
                payload_available: "online",
                payload_not_available: "offline",
            },
            Availability {
                topic: topics.state(sensor),
                value_template: format!(
                    "{{{{ '{SENSOR_AVAILABLE}' if value_json.state == 'running' else '{SENSOR_NOT_AVAILABLE}' }}}}"
                ),
                payload_available: SENSOR_AVAILABLE,
                payload_not_available: SENSOR_NOT_AVAILABLE,
            },
        ],
        availability_mode: "all",
        device: Device {
            identifiers: [names::device_identifier(gateway)],
            name: gateway,
            manufacturer: "edgevisor",
            model: "edgevisor gateway",
            sw_version: env!("CARGO_PKG_VERSION"),
        },
    };
    crate::payload::to_vec(&config)
}

/// `measurement` when the field is a number measured now: it has a unit
/// or a device class, and the class is neither one of a value that is not
/// a number nor one of a meter's running total. Without it Home Assistant
/// keeps no long-term statistics; with a wrong one it logs a warning, so
/// when in doubt there is none.
pub fn state_class(field: &FieldConfig) -> Option<&'static str> {
    let class = field.device_class.as_deref();
    if field.unit.is_none() && class.is_none() {
        return None;
    }
    let excluded = class.is_some_and(|c| NOT_NUMBERS.contains(&c) || METERS.contains(&c));
    (!excluded).then_some("measurement")
}

/// `{{ value_json.data.env.temp }}` for `$.env.temp`: the telemetry
/// envelope holds the reading under `data`. A member that is not a plain
/// identifier, or that Jinja would read as a dict method, is subscripted.
pub fn value_template(path: &[String]) -> String {
    let mut template = String::from("{{ value_json.data");
    for member in path {
        if is_attribute(member) {
            template.push('.');
            template.push_str(member);
        } else {
            template.push_str("['");
            template.push_str(&member.replace('\\', "\\\\"));
            template.push_str("']");
        }
    }
    template.push_str(" }}");
    template
}

fn is_attribute(member: &str) -> bool {
    let mut chars = member.chars();
    let starts = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    starts
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !DICT_METHODS.contains(&member)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(path: &[&str], unit: Option<&str>, class: Option<&str>) -> FieldConfig {
        FieldConfig {
            name: "temperature".into(),
            json_path: path.iter().map(|m| m.to_string()).collect(),
            unit: unit.map(String::from),
            device_class: class.map(String::from),
        }
    }

    #[test]
    fn the_discovery_config_is_exactly_this() {
        let topics = Topics::new("edgevisor", "barn-pi-01");
        let temp = field(&["env", "temp"], Some("°C"), Some("temperature"));
        let json = discovery_config("barn-pi-01", &topics, "weather", &temp);
        let expected = concat!(
            r#"{"name":"weather temperature","unique_id":"barn-pi-01_weather_temperature","#,
            r#""state_topic":"edgevisor/barn-pi-01/telemetry/weather","#,
            r#""value_template":"{{ value_json.data.env.temp }}","#,
            r#""unit_of_measurement":"°C","device_class":"temperature","state_class":"measurement","#,
            r#""availability":[{"topic":"edgevisor/barn-pi-01/status","value_template":"{{ value_json.state }}","payload_available":"online","payload_not_available":"offline"},"#,
            r#"{"topic":"edgevisor/barn-pi-01/state/weather","value_template":"{{ 'running' if value_json.state == 'running' else 'not_running' }}","payload_available":"running","payload_not_available":"not_running"}],"#,
            r#""availability_mode":"all","#,
            r#""device":{"identifiers":["edgevisor_barn-pi-01"],"name":"barn-pi-01","manufacturer":"edgevisor","model":"edgevisor gateway","sw_version":"#,
        );
        let expected = format!("{expected}\"{}\"}}}}", env!("CARGO_PKG_VERSION"));
        assert_eq!(String::from_utf8(json).unwrap(), expected);
    }

    #[test]
    fn a_field_without_unit_or_class_has_neither_nor_a_state_class() {
        let topics = Topics::new("p", "gw");
        let plain = field(&["text"], None, None);
        let json: serde_json::Value =
            serde_json::from_slice(&discovery_config("gw", &topics, "bus/unit", &plain)).unwrap();
        let object = json.as_object().unwrap();
        for key in ["unit_of_measurement", "device_class", "state_class"] {
            assert!(!object.contains_key(key), "{key} in {json}");
        }
        assert_eq!(json["unique_id"], "gw_bus_unit_temperature");
        assert_eq!(json["state_topic"], "p/gw/telemetry/bus/unit");
        assert_eq!(json["availability"][1]["topic"], "p/gw/state/bus/unit");
    }

    #[test]
    fn state_class_only_for_numbers_measured_now() {
        let cases = [
            (Some("°C"), None, Some("measurement")),
            (None, Some("temperature"), Some("measurement")),
            (Some("W"), Some("power"), Some("measurement")),
            (None, None, None),
            (Some("kWh"), Some("energy"), None),
            (Some("m³"), Some("gas"), None),
            (None, Some("enum"), None),
            (None, Some("timestamp"), None),
        ];
        for (unit, class, expected) in cases {
            assert_eq!(
                state_class(&field(&["v"], unit, class)),
                expected,
                "{unit:?} {class:?}"
            );
        }
    }

    #[test]
    fn members_jinja_cannot_read_as_attributes_are_subscripted() {
        let template =
            |path: &[&str]| value_template(&path.iter().map(|m| m.to_string()).collect::<Vec<_>>());
        assert_eq!(template(&["temp"]), "{{ value_json.data.temp }}");
        assert_eq!(
            template(&["probe-1", "0", "items", "ok_2"]),
            "{{ value_json.data['probe-1']['0']['items'].ok_2 }}"
        );
        assert_eq!(template(&["a\\b"]), "{{ value_json.data['a\\\\b'] }}");
    }
}
