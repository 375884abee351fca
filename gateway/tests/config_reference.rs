//! `docs/configuration.md`, the operator's reference, checked against the
//! parser so that it stays true:
//!
//! - its key tables list exactly the keys the parser takes, per TOML table
//!   (`edgevisor::config::table_keys`, read from the serde structs);
//! - every default it states is the one the code applies, and the policy,
//!   `read_timeout` and `max_frame` defaults are the libraries' constants;
//! - every example and allowed value is accepted where it is documented,
//!   and transport or codec keys are rejected elsewhere; every word the
//!   parser knows for a key is listed;
//! - its full examples are valid, and its error example is exactly what
//!   `edgevisor check` prints.
//!
//! The page's format is described in its last section, "Keeping this page
//! true".
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use edgevisor::config::{table_keys, Config};
use toml::{Table, Value};

const HEADER: &str = "| key | type | default | allowed values | example | what it does |";
const TRANSPORTS: [&str; 6] = [
    "serial",
    "tcp",
    "tcp-listen",
    "mqtt",
    "modbus-rtu",
    "modbus-tcp",
];
const CODECS: [&str; 5] = ["lines", "nmea", "frame", "json", "modbus"];
/// The transports of a Modbus bus, the only ones with `[[sensor.unit]]`.
const MODBUS: [&str; 2] = ["modbus-rtu", "modbus-tcp"];

/// Whether `transport` takes `codec`: modbus goes with the Modbus
/// transports only, the stream codecs with the others.
fn takes(transport: &str, codec: &str) -> bool {
    MODBUS.contains(&transport) == (codec == "modbus")
}

/// The codec a place under `transport` gets when its heading names none.
fn codec_for(transport: &str) -> &'static str {
    if MODBUS.contains(&transport) {
        "modbus"
    } else {
        "lines"
    }
}

/// A transport that takes `codec`.
fn transport_for(codec: &str) -> &'static str {
    if codec == "modbus" {
        "modbus-tcp"
    } else {
        "tcp"
    }
}

fn reference() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/configuration.md");
    std::fs::read_to_string(path).unwrap()
}

/// One row of a key table, with what its heading says.
#[derive(Debug)]
struct Row {
    line: usize,
    /// The TOML tables the row applies to (`[gateway]`, `[[sensor]]`).
    tables: Vec<String>,
    /// `transport` and `codec` settings of the heading; a key named with
    /// several values (`transport = "serial"` or `"modbus-rtu"`) is listed
    /// once per value.
    settings: Vec<(String, String)>,
    key: String,
    default: String,
    allowed: String,
    example: String,
}

/// The texts between backticks.
fn backticked(s: &str) -> Vec<&str> {
    s.split('`').skip(1).step_by(2).collect()
}

/// `s` read as a TOML value.
fn value(s: &str) -> Option<Value> {
    format!("v = {s}").parse::<Table>().ok()?.remove("v")
}

/// The `key = "value"` spans of a heading; a span that is only a string
/// (`"tcp"`) is one more value of the key before it.
fn settings_of(spans: &[&str]) -> Vec<(String, String)> {
    let mut settings: Vec<(String, String)> = Vec::new();
    for span in spans {
        let (key, text) = match span.split_once(" = ") {
            Some((k, v)) => (k.to_string(), v),
            None => match settings.last() {
                Some((k, _)) => (k.clone(), *span),
                None => continue,
            },
        };
        if let Some(Value::String(v)) = value(text) {
            settings.push((key, v));
        }
    }
    settings
}

fn rows(doc: &str) -> Vec<Row> {
    let (mut rows, mut tables, mut settings) = (Vec::new(), Vec::new(), Vec::new());
    let (mut fenced, mut in_table) = (false, false);
    for (i, line) in doc.lines().enumerate() {
        if line.starts_with("```") {
            fenced = !fenced;
        } else if fenced {
        } else if line.starts_with('#') {
            let spans = backticked(line);
            tables = spans
                .iter()
                .filter(|s| s.starts_with('['))
                .map(|s| s.to_string())
                .collect();
            settings = settings_of(&spans);
            in_table = false;
        } else if line.trim() == HEADER {
            in_table = true;
        } else if !line.starts_with('|') {
            in_table = false;
        } else if in_table && !line.starts_with("|---") {
            let cells: Vec<&str> = line
                .trim()
                .trim_matches('|')
                .split('|')
                .map(str::trim)
                .collect();
            assert_eq!(cells.len(), 6, "line {}: a key row has 6 cells", i + 1);
            assert!(
                !tables.is_empty(),
                "line {}: no TOML table in the heading",
                i + 1
            );
            let key = backticked(cells[0]);
            assert_eq!(key.len(), 1, "line {}: the key cell is one `key`", i + 1);
            rows.push(Row {
                line: i + 1,
                tables: tables.clone(),
                settings: settings.clone(),
                key: key[0].to_string(),
                default: cells[2].to_string(),
                allowed: cells[3].to_string(),
                example: cells[4].to_string(),
            });
        }
    }
    rows
}

/// Where a key is tried: a table of the file and, for `[[sensor]]`, the
/// transport and codec of the sensor that gets it.
#[derive(Debug, Clone, Copy)]
struct Place<'a> {
    table: &'a str,
    transport: &'a str,
    codec: &'a str,
}

impl Row {
    /// The values the heading gives `key`.
    fn setting(&self, key: &str) -> Vec<&str> {
        self.settings
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// Every place the row applies to: each of its tables; for a sensor
    /// key every transport the heading names (all when it names none) that
    /// takes its codec; for a unit or register key, both Modbus transports.
    fn places(&self) -> Vec<Place<'_>> {
        let codec = self.setting("codec").first().copied();
        let mut transports = self.setting("transport");
        if transports.is_empty() {
            transports = TRANSPORTS.to_vec();
        }
        let mut places = Vec::new();
        for table in &self.tables {
            let each = match table.as_str() {
                "[[sensor]]" => transports.clone(),
                t if t.starts_with("[[sensor.unit]]") => MODBUS.to_vec(),
                _ => vec!["tcp"],
            };
            places.extend(each.into_iter().filter_map(|transport| {
                let codec = codec.unwrap_or(codec_for(transport));
                takes(transport, codec).then_some(Place {
                    table,
                    transport,
                    codec,
                })
            }));
        }
        places
    }

    /// The same key under the transports or codecs its heading excludes,
    /// each with a codec it takes.
    fn elsewhere(&self) -> Vec<Place<'_>> {
        let mut places = Vec::new();
        let place = |transport, codec| Place {
            table: "[[sensor]]",
            transport,
            codec,
        };
        let own = self.setting("transport");
        if !own.is_empty() {
            places.extend(
                TRANSPORTS
                    .iter()
                    .filter(|t| !own.contains(t))
                    .map(|t| place(t, codec_for(t))),
            );
        }
        let own = self.setting("codec");
        if !own.is_empty() {
            places.extend(
                CODECS
                    .iter()
                    .filter(|c| !own.contains(c))
                    .map(|c| place(transport_for(c), c)),
            );
        }
        places
    }

    fn example(&self) -> Value {
        let text = backticked(&self.example).first().copied().unwrap_or("");
        value(text).unwrap_or_else(|| panic!("line {}: example is not a TOML value", self.line))
    }
}

fn table(pairs: &[(&str, Value)]) -> Table {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

fn strings(items: &[&str]) -> Value {
    Value::Array(items.iter().map(|s| Value::from(*s)).collect())
}

/// A sensor "barn-gps" with the keys `transport` needs (a Modbus bus's
/// units are added by `file`).
fn sensor(transport: &str, codec: &str) -> Table {
    let mut s = table(&[
        ("id", "barn-gps".into()),
        ("transport", transport.into()),
        ("codec", codec.into()),
    ]);
    let link = match transport {
        "serial" | "modbus-rtu" => vec![("device", "/dev/ttyUSB0".into())],
        "tcp" | "modbus-tcp" => vec![("address", "192.168.1.40:4001".into())],
        "tcp-listen" => vec![("listen", "0.0.0.0:5000".into())],
        "mqtt" => vec![
            ("url", "mqtt://127.0.0.1:1883".into()),
            ("topics", strings(&["z/+"])),
        ],
        _ => vec![],
    };
    s.extend(table(&link));
    s
}

/// A register entry whose other keys fit `key = value`: a bool is read
/// from the coils, a string has a length, `order` is set on a 32-bit value.
fn register(key: &str, value: Option<&Value>) -> Table {
    let word = value.and_then(Value::as_str).unwrap_or("");
    let (table_word, kind) = match (key, word) {
        ("table", "coil" | "discrete") => (word, "bool"),
        ("type", "bool") => ("coil", "bool"),
        ("type", _) => ("holding", word),
        ("order", _) => ("holding", "uint32"),
        ("length", _) => ("holding", "string"),
        _ => ("holding", "uint16"),
    };
    let mut r = table(&[
        ("name", "voltage".into()),
        ("table", table_word.into()),
        ("address", 0.into()),
        ("type", kind.into()),
    ]);
    if kind == "string" {
        r.insert("length".into(), 1.into());
    }
    r
}

/// A valid file with a group of two sensors, then `key` set to `value`
/// (or removed, for `None`) at `place`. Under a Modbus transport the
/// sensor is a bus with one unit of one register.
fn file(place: Place<'_>, key: &str, value: Option<&Value>) -> String {
    let mut gateway = table(&[("id", "barn-pi-01".into())]);
    let mut upstream = table(&[("url", "mqtt://127.0.0.1:1883".into())]);
    let mut supervisor = Table::new();
    let mut group = table(&[
        ("id", "barn".into()),
        ("sensors", strings(&["barn-modem", "barn-gps"])),
    ]);
    let mut modem = sensor("tcp", "lines");
    modem.insert("id".into(), "barn-modem".into());
    // A transport or codec set by the row comes with a codec or transport
    // that takes it.
    let (transport, codec) = match (place.table, key, value) {
        ("[[sensor]]", "transport", Some(Value::String(t))) => {
            let codec = if takes(t, place.codec) {
                place.codec
            } else {
                codec_for(t)
            };
            (t.as_str(), codec)
        }
        ("[[sensor]]", "codec", Some(Value::String(c))) if !takes(place.transport, c) => {
            (transport_for(c), place.codec)
        }
        _ => (place.transport, place.codec),
    };
    let mut gps = sensor(transport, codec);
    let mut unit = table(&[("id", "meter-1".into()), ("unit_id", 1.into())]);
    let mut entry = match place.table {
        "[[sensor.unit]] registers" => register(key, value),
        _ => register("", None),
    };
    let mut field = table(&[
        ("name", "temperature".into()),
        ("json_path", "$.temp".into()),
    ]);
    let mut metrics = table(&[("listen", "127.0.0.1:9898".into())]);
    let mut homeassistant = Table::new();
    let mut sparkplug = table(&[("group_id", "barns".into())]);
    let target = match place.table {
        "[gateway]" => &mut gateway,
        "[[sensor.field]]" => &mut field,
        "[metrics]" => &mut metrics,
        "[homeassistant]" => &mut homeassistant,
        "[sparkplug]" => &mut sparkplug,
        "[upstream]" => &mut upstream,
        "[supervisor]" => &mut supervisor,
        "[[group]]" => &mut group,
        "[[sensor.unit]]" => &mut unit,
        "[[sensor.unit]] registers" => &mut entry,
        _ => &mut gps,
    };
    match value {
        Some(v) => target.insert(key.to_string(), v.clone()),
        None => target.remove(key),
    };
    // A client certificate comes with its key (and the other way round),
    // on a TLS broker.
    let partner = match (place.table, key, value) {
        ("[upstream]", "client_cert_file", Some(_)) => Some("client_key_file"),
        ("[upstream]", "client_key_file", Some(_)) => Some("client_cert_file"),
        _ => None,
    };
    if let Some(partner) = partner {
        upstream.insert(partner.into(), "/etc/edgevisor/partner.pem".into());
        upstream.insert("url".into(), "mqtts://127.0.0.1:8883".into());
    }
    let set_here = |table: &str, k: &str| place.table == table && key == k;
    if !set_here("[[sensor.unit]]", "registers") {
        unit.insert("registers".into(), Value::Array(vec![entry.into()]));
    }
    if MODBUS.contains(&transport) && !set_here("[[sensor]]", "unit") {
        gps.insert("unit".into(), Value::Array(vec![unit.into()]));
    }
    if place.table == "[[sensor.field]]" {
        gps.insert("field".into(), Value::Array(vec![field.into()]));
    }
    let mut doc = table(&[("gateway", gateway.into()), ("upstream", upstream.into())]);
    // The integration tables are there only when a row is tried in them.
    for (name, t) in [
        ("[metrics]", metrics),
        ("[homeassistant]", homeassistant),
        ("[sparkplug]", sparkplug),
    ] {
        if place.table == name {
            doc.insert(name.trim_matches(['[', ']']).into(), t.into());
        }
    }
    if !supervisor.is_empty() {
        doc.insert("supervisor".into(), supervisor.into());
    }
    doc.insert("group".into(), Value::Array(vec![group.into()]));
    doc.insert(
        "sensor".into(),
        Value::Array(vec![modem.into(), gps.into()]),
    );
    toml::to_string(&doc).unwrap()
}

fn parse(text: &str) -> Result<Config, String> {
    Config::parse(Path::new("t.toml"), text).map_err(|e| e.to_string())
}

fn assert_none(problems: Vec<String>) {
    assert!(
        problems.is_empty(),
        "docs/configuration.md:\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_reference_lists_exactly_the_keys_the_parser_takes() {
    let rows = rows(&reference());
    let known = table_keys();
    let mut problems = Vec::new();
    for (table, keys) in &known {
        let accepted: BTreeSet<&str> = keys.iter().copied().collect();
        let mut documented = BTreeSet::new();
        for row in rows.iter().filter(|r| r.tables.iter().any(|t| t == table)) {
            if !documented.insert(row.key.as_str()) {
                problems.push(format!(
                    "line {}: {table} `{}` is listed twice",
                    row.line, row.key
                ));
            }
        }
        for key in accepted.difference(&documented) {
            problems.push(format!("{table} `{key}`: the parser takes it; add a row"));
        }
        for key in documented.difference(&accepted) {
            problems.push(format!(
                "{table} `{key}`: listed, but the parser rejects it"
            ));
        }
    }
    for row in &rows {
        for table in row
            .tables
            .iter()
            .filter(|t| !known.iter().any(|(k, _)| k == t))
        {
            problems.push(format!(
                "line {}: the parser has no table {table}",
                row.line
            ));
        }
    }
    assert_none(problems);
}

#[test]
fn the_documented_defaults_are_the_ones_the_code_uses() {
    let mut problems = Vec::new();
    for row in rows(&reference()) {
        for place in row.places() {
            let at = format!(
                "line {} ({} `{}` at {place:?})",
                row.line, place.table, row.key
            );
            let unset = parse(&file(place, &row.key, None));
            if row.default.starts_with("required") {
                if unset.is_ok() {
                    problems.push(format!(
                        "{at}: said to be required, but a file without it is valid"
                    ));
                }
                continue;
            }
            let base = match unset {
                Ok(base) => base,
                Err(e) => {
                    problems.push(format!("{at}: a file without it is rejected:\n{e}"));
                    continue;
                }
            };
            let Some(text) = row
                .default
                .starts_with('`')
                .then(|| backticked(&row.default)[0])
            else {
                continue; // a default in words
            };
            match value(text).map(|v| parse(&file(place, &row.key, Some(&v)))) {
                None => problems.push(format!("{at}: default {text} is not a TOML value")),
                Some(Ok(set)) if set == base => {}
                Some(Ok(_)) => {
                    problems.push(format!("{at}: default {text} is not what the code applies"))
                }
                Some(Err(e)) => problems.push(format!("{at}: default {text} is rejected:\n{e}")),
            }
        }
    }
    assert_none(problems);
}

#[test]
fn the_documented_defaults_are_the_library_constants() {
    let rows = rows(&reference());
    let default = |key: &str| {
        let row = rows.iter().find(|r| r.key == key).unwrap();
        backticked(&row.default)[0].trim_matches('"').to_string()
    };
    let duration = |key: &str| humantime::parse_duration(&default(key)).unwrap();
    let policy = edgevisor_runtime::RestartPolicy::default();
    assert_eq!(default("intensity"), policy.intensity.to_string());
    assert_eq!(duration("period"), policy.period);
    assert_eq!(duration("backoff_initial"), policy.backoff_initial);
    assert_eq!(duration("backoff_max"), policy.backoff_max);
    assert_eq!(duration("backoff_reset"), policy.backoff_reset);
    assert_eq!(duration("quarantine_for"), policy.quarantine_for);
    assert_eq!(
        duration("read_timeout"),
        edgevisor_devices::link::DEFAULT_READ_TIMEOUT
    );
    let max_frame = edgevisor_devices::codec::DEFAULT_MAX_FRAME;
    assert_eq!(default("max_frame"), max_frame.to_string());
    assert!(duration("keep_alive") >= Duration::from_secs(1));
}

#[test]
fn examples_and_allowed_values_are_accepted_where_documented_only() {
    let mut problems = Vec::new();
    for row in rows(&reference()) {
        let example = row.example();
        let allowed = backticked(&row.allowed).into_iter().filter_map(value);
        let tried: Vec<Value> = std::iter::once(example.clone())
            .chain(allowed.filter(|v| v.is_str() || v.is_integer()))
            .collect();
        for place in row.places() {
            for v in &tried {
                if let Err(e) = parse(&file(place, &row.key, Some(v))) {
                    problems.push(format!(
                        "line {}: `{} = {v}` is rejected at {place:?}:\n{e}",
                        row.line, row.key
                    ));
                }
            }
        }
        for place in row.elsewhere() {
            if parse(&file(place, &row.key, Some(&example))).is_ok() {
                problems.push(format!(
                    "line {}: `{}` is also accepted at {place:?}",
                    row.line, row.key
                ));
            }
        }
    }
    assert_none(problems);
}

#[test]
fn every_word_the_parser_knows_is_listed() {
    let mut problems = Vec::new();
    let mut word_keys = 0;
    for row in rows(&reference()) {
        let place = row.places()[0];
        let Err(e) = parse(&file(place, &row.key, Some(&"not-a-word".into()))) else {
            continue;
        };
        let Some(line) = e
            .lines()
            .find(|l| l.contains("unknown variant `not-a-word`"))
        else {
            continue;
        };
        word_keys += 1;
        let listed = backticked(&row.allowed);
        let (_, expected) = line.split_once("expected").unwrap();
        for word in backticked(expected) {
            if !listed.contains(&format!("\"{word}\"").as_str()) {
                problems.push(format!(
                    "line {}: `{}` also takes \"{word}\"",
                    row.line, row.key
                ));
            }
        }
    }
    // transport, codec, checksum, on_corrupt, restart, parity, strategy,
    // on_exhausted, and a register's table, type and order
    assert!(
        word_keys >= 11,
        "only {word_keys} keys were found to take words"
    );
    assert_none(problems);
}

#[test]
fn the_examples_are_valid_and_the_error_example_is_what_check_prints() {
    let doc = reference();
    let blocks: Vec<(&str, String)> = doc
        .split("```")
        .skip(1)
        .step_by(2)
        .map(|b| {
            let (lang, body) = b.split_once('\n').unwrap();
            (lang.trim(), body.to_string())
        })
        .collect();
    let mut checked = (0, 0);
    for (i, (lang, body)) in blocks.iter().enumerate() {
        if *lang != "toml" || !body.contains("[gateway]") {
            continue;
        }
        let output = blocks
            .get(i + 1)
            .and_then(|(l, b)| (*l == "text").then_some(b));
        let Some(run) = output.and_then(|o| o.strip_prefix("$ edgevisor check --config ")) else {
            parse(body).unwrap();
            checked.0 += 1;
            continue;
        };
        let (name, expected) = run.split_once('\n').unwrap();
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("config-reference");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), body).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_edgevisor"))
            .args(["check", "--config", name])
            .current_dir(&dir)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        assert_eq!(String::from_utf8_lossy(&out.stderr), expected);
        checked.1 += 1;
    }
    assert_eq!(checked, (4, 1), "(valid examples, error examples)");
}
