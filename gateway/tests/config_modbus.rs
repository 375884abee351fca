//! Modbus buses in the config (SPEC section 9): SPEC's own example resolves
//! with every default, and maps that cannot be polled are refused at the
//! register that is wrong, with a hint.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::Duration;

use edgevisor::config::{Config, LinkConfig};
use edgevisor_devices::modbus::{Endpoint, Table, ValueType, WordOrder};

const HEADER: &str = "[gateway]\nid = \"gw\"\n\n[upstream]\nurl = \"mqtt://127.0.0.1:1883\"\n";

/// SPEC section 9's example, verbatim.
const SPEC_BUS: &str = r#"
[[sensor]]
id = "meters"
transport = "modbus-rtu"
device = "/dev/serial/by-id/usb-FTDI_RS485-if00-port0"
baud = 9600
parity = "none"
codec = "modbus"
timeout = "500ms"             # per request; default 1s
retries = 1                   # extra tries per request before the poll fails; default 1
delay_between = "10ms"        # quiet time between requests on the line; default 0

[[sensor.unit]]
id = "meter-1"                # topic-safe; the unit's sensor name is "meters/meter-1"
unit_id = 1                   # 1..=247 (0 for a TCP device that ignores it)
poll = "5s"
registers = [
  { name = "voltage", table = "input", address = 0, type = "float32", order = "ABCD" },
  { name = "power",   table = "input", address = 12, type = "float32", order = "ABCD", scale = 1.0 },
  { name = "relay",   table = "coil",  address = 0, type = "bool" },
  { name = "energy",  table = "holding", address = 342, type = "uint32", order = "CDAB", scale = 0.01 },
]
"#;

fn located(text: &str) -> Vec<(usize, usize, String, String)> {
    Config::parse(Path::new("t.toml"), text)
        .unwrap_err()
        .0
        .into_iter()
        .map(|e| (e.line, e.column, e.message, e.hint.unwrap_or_default()))
        .collect()
}

#[test]
fn the_spec_example_resolves_with_its_values_and_defaults() {
    let config = Config::parse(Path::new("t.toml"), &format!("{HEADER}{SPEC_BUS}")).unwrap();
    let bus = config.sensors().next().unwrap();
    let LinkConfig::Modbus(m) = &bus.link else {
        panic!("{:?}", bus.link)
    };
    let Endpoint::Rtu(port) = &m.bus.endpoint else {
        panic!()
    };
    assert_eq!(port.baud, 9600);
    assert_eq!(
        (m.bus.timeout, m.bus.retries, m.bus.delay_between),
        (Duration::from_millis(500), 1, Duration::from_millis(10))
    );
    let unit = &m.units[0];
    assert_eq!((unit.id.as_str(), unit.unit.unit_id), ("meter-1", 1));
    assert_eq!(unit.poll, Duration::from_secs(5));
    let energy = &unit.unit.registers[3];
    assert_eq!(
        (
            energy.table,
            energy.address,
            energy.kind,
            energy.order,
            energy.scale
        ),
        (
            Table::Holding,
            342,
            ValueType::UInt32,
            WordOrder::Cdab,
            0.01
        )
    );
    // voltage and power do not touch: three tables, four requests.
    assert_eq!(unit.unit.reads.len(), 4);
    // The unit falls back to the bus's policy, which is the defaults here.
    assert_eq!(unit.policy, bus.policy);
}

#[test]
fn maps_that_cannot_be_polled_are_refused_at_the_register() {
    let text = format!(
        "{HEADER}\n[[sensor]]\nid = \"m\"\ntransport = \"modbus-tcp\"\naddress = \"10.0.0.9:502\"\ncodec = \"modbus\"\n\n[[sensor.unit]]\nid = \"u\"\nunit_id = 300\nregisters = [\n{}\n]\n",
        [
            r#"  { name = "a", table = "input", address = 0, type = "float32" },"#,
            r#"  { name = "b", table = "input", address = 1, type = "uint16" },"#,
            r#"  { name = "flag", table = "holding", address = 5, type = "bool" },"#,
            r#"  { name = "n", table = "holding", address = 9, type = "int16", order = "CDAB" },"#,
            r#"  { name = "s", table = "holding", address = 20, type = "string", length = 200 },"#,
            r#"  { name = "r", table = "coil", address = 70000, type = "bool" },"#,
        ]
        .join("\n")
    );
    let errors = located(&text);
    let at: Vec<(usize, usize)> = errors.iter().map(|e| (e.0, e.1)).collect();
    assert_eq!(
        at,
        vec![(15, 11), (20, 73), (21, 76), (22, 43)],
        "{errors:#?}"
    );
    assert_eq!(errors[0].2, "invalid unit_id 300");
    assert!(
        errors[1].2.contains("`order` does not apply to type int16"),
        "{errors:?}"
    );
    assert!(errors[2].2.contains("invalid length 200"), "{errors:?}");
    assert!(errors[3].2.contains("invalid address 70000"), "{errors:?}");
    // With those fixed, the map itself is checked: the overlap and the bool
    // in a register table, each at its entry.
    let fixed = text
        .replace("unit_id = 300", "unit_id = 0")
        .replace(", order = \"CDAB\"", "")
        .replace("length = 200", "length = 2")
        .replace("70000", "7");
    let errors = located(&fixed);
    let found: Vec<(usize, usize, &str)> =
        errors.iter().map(|e| (e.0, e.1, e.2.as_str())).collect();
    assert_eq!(
        found,
        vec![
            (18, 3, "\"b\" overlaps \"a\" in the input table"),
            (19, 3, "type bool cannot be read from the holding table"),
        ]
    );
    assert!(errors[0].3.contains("a 32-bit value takes 2 registers"));
}

#[test]
fn codec_and_transport_must_agree_and_keys_stay_with_their_transport() {
    let text = format!(
        "{HEADER}\n[[sensor]]\nid = \"m\"\ntransport = \"modbus-tcp\"\naddress = \"10.0.0.9:502\"\ncodec = \"lines\"\nread_timeout = \"5s\"\n\n[[sensor.unit]]\nid = \"u\"\nunit_id = 1\nregisters = [{{ name = \"v\", table = \"input\", address = 0, type = \"uint16\" }}]\n\n[[sensor]]\nid = \"t\"\ntransport = \"tcp\"\naddress = \"10.0.0.9:4001\"\ncodec = \"modbus\"\nretries = 2\n"
    );
    let messages: Vec<String> = located(&text).into_iter().map(|e| e.2).collect();
    assert_eq!(
        messages,
        vec![
            "transport modbus-tcp cannot use codec lines",
            "`read_timeout` is a serial/tcp/tcp-listen/mqtt key, but sensor \"m\" uses transport modbus-tcp",
            "transport tcp cannot use codec modbus",
            "`retries` is a modbus-rtu/modbus-tcp key, but sensor \"t\" uses transport tcp",
        ],
    );
    let lonely = format!(
        "{HEADER}\n[[sensor]]\nid = \"m\"\ntransport = \"modbus-tcp\"\naddress = \"10.0.0.9:502\"\ncodec = \"modbus\"\n"
    );
    let errors = located(&lonely);
    assert_eq!(errors[0].2, "Modbus bus \"m\" has no units");
}
