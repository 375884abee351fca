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
const TRANSPORTS: [&str; 4] = ["serial", "tcp", "tcp-listen", "mqtt"];
const CODECS: [&str; 4] = ["lines", "nmea", "frame", "json"];

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
    /// `transport` and `codec` settings of the heading.
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
            settings = spans
                .iter()
                .filter_map(|s| s.split_once(" = "))
                .map(|(k, v)| {
                    (
                        k.to_string(),
                        value(v).unwrap().as_str().unwrap().to_string(),
                    )
                })
                .collect();
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
    fn setting(&self, key: &str) -> Option<&str> {
        self.settings
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every place the row applies to: each of its tables, and for a sensor
    /// key every transport unless the heading names one.
    fn places(&self) -> Vec<Place<'_>> {
        let codec = self.setting("codec").unwrap_or("lines");
        let transports = match self.setting("transport") {
            Some(own) => vec![own],
            None => TRANSPORTS.to_vec(),
        };
        let mut places = Vec::new();
        for table in &self.tables {
            let each = if table == "[[sensor]]" {
                transports.clone()
            } else {
                vec!["tcp"]
            };
            places.extend(each.into_iter().map(|transport| Place {
                table,
                transport,
                codec,
            }));
        }
        places
    }

    /// The same key under the transports or codecs its heading excludes.
    fn elsewhere(&self) -> Vec<Place<'_>> {
        let mut places = Vec::new();
        let place = |transport, codec| Place {
            table: "[[sensor]]",
            transport,
            codec,
        };
        if let Some(own) = self.setting("transport") {
            places.extend(
                TRANSPORTS
                    .iter()
                    .filter(|t| **t != own)
                    .map(|t| place(t, "lines")),
            );
        }
        if let Some(own) = self.setting("codec") {
            places.extend(
                CODECS
                    .iter()
                    .filter(|c| **c != own)
                    .map(|c| place("tcp", c)),
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

/// A sensor "barn-gps" with the keys `transport` needs.
fn sensor(transport: &str, codec: &str) -> Table {
    let mut s = table(&[
        ("id", "barn-gps".into()),
        ("transport", transport.into()),
        ("codec", codec.into()),
    ]);
    let link = match transport {
        "serial" => vec![("device", "/dev/ttyUSB0".into())],
        "tcp" => vec![("address", "192.168.1.40:4001".into())],
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

/// A valid file with a group of two sensors, then `key` set to `value`
/// (or removed, for `None`) at `place`.
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
    let transport = match (key, value) {
        ("transport", Some(Value::String(t))) => t.as_str(),
        _ => place.transport,
    };
    let mut gps = sensor(transport, place.codec);
    let target = match place.table {
        "[gateway]" => &mut gateway,
        "[upstream]" => &mut upstream,
        "[supervisor]" => &mut supervisor,
        "[[group]]" => &mut group,
        _ => &mut gps,
    };
    match value {
        Some(v) => target.insert(key.to_string(), v.clone()),
        None => target.remove(key),
    };
    let mut doc = table(&[("gateway", gateway.into()), ("upstream", upstream.into())]);
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
    // transport, codec, checksum, on_corrupt, restart, parity, strategy, on_exhausted
    assert!(
        word_keys >= 8,
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
    assert_eq!(checked, (2, 1), "(valid examples, error examples)");
}
