//! Every name Home Assistant sees, in one place: discovery topics, the
//! birth topic, unique ids and the device identifier. Home Assistant keys
//! its entity registry on these, so a change here orphans every entity an
//! installation has: they are fixed by SPEC section 11 and tested.

/// Topic levels and ids may not hold a `/` where a sensor name can (a
/// Modbus unit is `<bus>/<unit>`): it becomes `_`.
fn flat(name: &str) -> String {
    name.replace('/', "_")
}

/// Home Assistant's node id for a sensor: `<gateway>_<sensor>`, one topic
/// level.
pub fn node_id(gateway: &str, sensor: &str) -> String {
    flat(&format!("{gateway}_{sensor}"))
}

/// The retained discovery config's topic:
/// `<prefix>/sensor/<gateway>_<sensor>/<field>/config`.
pub fn config_topic(prefix: &str, gateway: &str, sensor: &str, field: &str) -> String {
    format!(
        "{prefix}/sensor/{}/{}/config",
        node_id(gateway, sensor),
        flat(field)
    )
}

/// Where Home Assistant announces itself (`online` after a start):
/// `<prefix>/status`.
pub fn birth_topic(prefix: &str) -> String {
    format!("{prefix}/status")
}

/// The entity's `unique_id`: `<gateway>_<sensor>_<field>`, unique across
/// gateways as long as gateway ids are.
pub fn unique_id(gateway: &str, sensor: &str, field: &str) -> String {
    flat(&format!("{gateway}_{sensor}_{field}"))
}

/// The device's identifier: one device per gateway.
pub fn device_identifier(gateway: &str) -> String {
    format!("edgevisor_{gateway}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slash_in_a_sensor_name_becomes_an_underscore() {
        assert_eq!(
            config_topic("homeassistant", "gw1", "bus/meter", "power"),
            "homeassistant/sensor/gw1_bus_meter/power/config"
        );
        assert_eq!(
            unique_id("gw1", "bus/meter", "power"),
            "gw1_bus_meter_power"
        );
        assert_eq!(node_id("gw1", "weather"), "gw1_weather");
    }

    #[test]
    fn birth_and_device_names() {
        assert_eq!(birth_topic("ha"), "ha/status");
        assert_eq!(device_identifier("gw1"), "edgevisor_gw1");
    }
}
