//! The payload contract of `schemas/` (docs/mqtt.md), checked from the
//! tests: which schema a topic's payload must match, and the check itself.
//! [`super::Upstream`] runs it on every message it receives, so every
//! integration test that watches the broker also checks what it saw.

use std::collections::HashMap;
use std::sync::OnceLock;

use jsonschema::Validator;
use serde_json::Value;

/// The schema files, by name (`schemas/<name>.schema.json`), compiled in so
/// a test binary needs no working directory.
pub const SCHEMAS: [(&str, &str); 6] = [
    (
        "status",
        include_str!("../../../schemas/status.schema.json"),
    ),
    (
        "telemetry",
        include_str!("../../../schemas/telemetry.schema.json"),
    ),
    ("crash", include_str!("../../../schemas/crash.schema.json")),
    (
        "deadletter",
        include_str!("../../../schemas/deadletter.schema.json"),
    ),
    ("state", include_str!("../../../schemas/state.schema.json")),
    ("tree", include_str!("../../../schemas/tree.schema.json")),
];

/// Each schema compiled once per test binary (draft 2020-12, `format`
/// asserted as well as the patterns).
pub fn validator(name: &str) -> &'static Validator {
    static COMPILED: OnceLock<HashMap<&'static str, Validator>> = OnceLock::new();
    let compiled = COMPILED.get_or_init(|| {
        SCHEMAS
            .iter()
            .map(|(name, text)| {
                let schema: Value = serde_json::from_str(text)
                    .unwrap_or_else(|e| panic!("schemas/{name}.schema.json is not JSON: {e}"));
                let validator = jsonschema::draft202012::options()
                    .should_validate_formats(true)
                    .build(&schema)
                    .unwrap_or_else(|e| panic!("schemas/{name}.schema.json is not a schema: {e}"));
                (*name, validator)
            })
            .collect()
    });
    compiled
        .get(name)
        .unwrap_or_else(|| panic!("no schema called {name:?}"))
}

/// The schema a topic's payload must match. `topic` is a full topic under
/// a one-level prefix, `<prefix>/<gateway>/<kind>[/<sensor>]`, as every test
/// here uses (`edgevisor/...`); `None` for a topic the gateway does not
/// publish.
pub fn schema_for(topic: &str) -> Option<&'static str> {
    let levels: Vec<&str> = topic.split('/').skip(2).collect();
    match levels.as_slice() {
        ["status"] => Some("status"),
        ["tree"] => Some("tree"),
        // A Modbus unit's sensor name is `<bus>/<unit>` (SPEC section 9).
        ["telemetry", _] | ["telemetry", _, _] => Some("telemetry"),
        ["crash", _] | ["crash", _, _] => Some("crash"),
        ["deadletter", _] | ["deadletter", _, _] => Some("deadletter"),
        ["state", _] | ["state", _, _] => Some("state"),
        _ => None,
    }
}

/// Checks one payload against schema `name`; the error names every
/// violation and quotes the payload.
pub fn check(name: &str, payload: &[u8]) -> Result<(), String> {
    let json: Value = serde_json::from_slice(payload).map_err(|e| {
        format!(
            "not JSON ({e}): {}",
            String::from_utf8_lossy(payload)
                .chars()
                .take(300)
                .collect::<String>()
        )
    })?;
    let problems: Vec<String> = validator(name)
        .iter_errors(&json)
        .map(|e| format!("at {:?}: {e}", e.instance_path().as_str()))
        .collect();
    if problems.is_empty() {
        return Ok(());
    }
    Err(format!(
        "does not match schemas/{name}.schema.json: {}; payload {}",
        problems.join("; "),
        String::from_utf8_lossy(payload)
            .chars()
            .take(600)
            .collect::<String>()
    ))
}

/// Checks a message received on `topic`: its payload against the topic's
/// schema. A topic the gateway does not publish is itself an error.
pub fn check_message(topic: &str, payload: &[u8]) -> Result<(), String> {
    let name = schema_for(topic)
        .ok_or_else(|| format!("{topic}: not a topic edgevisor publishes (docs/mqtt.md)"))?;
    check(name, payload).map_err(|e| format!("{topic}: {e}"))
}
