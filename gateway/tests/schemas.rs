//! The JSON Schemas in `schemas/` against the payloads the product renders
//! (its own serialisers, so a drift fails here first) and against payloads
//! that break one rule each: a schema that accepts too much fails this file.
//! Every payload the integration tests receive is checked too, by
//! `support::Upstream`.
#![allow(clippy::unwrap_used)]

mod support;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::time::Duration;

use edgevisor::outbox::notice;
use edgevisor::payload::{self, CrashReport, DeadLetter, SensorState, Status, TelemetryEnvelope};
use edgevisor::topics::Topics;
use edgevisor_runtime::{ChildKind, ChildSnapshot, ChildState, TreeSnapshot};
use serde_json::{json, Value};
use support::schemas::{check, check_message, schema_for, validator, SCHEMAS};

const TS: &str = "2026-11-24T10:00:00.123Z";

fn accepts(name: &str, payload: &Value) {
    if let Err(why) = check(name, payload.to_string().as_bytes()) {
        panic!("{name} rejects a good payload: {why}");
    }
}

fn rejects(name: &str, payload: &Value, what: &str) {
    assert!(
        !validator(name).is_valid(payload),
        "{name} accepts a bad payload ({what}): {payload}"
    );
}

/// `good` with the value at JSON pointer `at` replaced (`Some`) or removed.
fn with(good: &Value, at: &str, value: Option<Value>) -> Value {
    let mut bad = good.clone();
    let (parent, key) = at.rsplit_once('/').unwrap();
    let parent = bad.pointer_mut(parent).unwrap().as_object_mut().unwrap();
    match value {
        Some(value) => parent.insert(key.into(), value),
        None => parent.remove(key),
    };
    bad
}

/// Removing any key of the object at `at` that is not `optional`, or adding
/// one the schema does not name, must break `good`.
fn every_key_required_and_no_other(name: &str, good: &Value, at: &str, optional: &[&str]) {
    let object = good.pointer(at).unwrap().as_object().unwrap();
    for key in object.keys().filter(|k| !optional.contains(&k.as_str())) {
        rejects(name, &with(good, &format!("{at}/{key}"), None), key);
    }
    rejects(
        name,
        &with(good, &format!("{at}/extra"), Some(json!(1))),
        "extra key",
    );
}

fn parse(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap()
}

#[test]
fn every_schema_is_a_valid_draft_2020_12_schema() {
    for (name, text) in SCHEMAS {
        let schema: Value = serde_json::from_str(text).unwrap();
        assert_eq!(
            schema["$schema"], "https://json-schema.org/draft/2020-12/schema",
            "{name}"
        );
        if let Err(e) = jsonschema::meta::validate(&schema) {
            panic!("schemas/{name}.schema.json: {e}");
        }
        assert!(!validator(name).is_valid(&json!({})), "{name} accepts {{}}");
        assert!(!validator(name).is_valid(&json!([])), "{name} accepts []");
    }
}

#[test]
fn topics_map_to_their_schemas() {
    let topics = Topics::new("edgevisor", "gw");
    assert_eq!(schema_for(&topics.status()), Some("status"));
    assert_eq!(schema_for(&topics.tree()), Some("tree"));
    assert_eq!(schema_for(&topics.telemetry("s")), Some("telemetry"));
    assert_eq!(schema_for(&topics.crash("s")), Some("crash"));
    assert_eq!(schema_for(&topics.deadletter("s")), Some("deadletter"));
    assert_eq!(schema_for(&topics.state("s")), Some("state"));
    // A sensor may be called `status` or `tree`.
    assert_eq!(schema_for(&topics.state("status")), Some("state"));
    assert_eq!(schema_for("edgevisor/gw/telemetry"), None);
    assert_eq!(schema_for("edgevisor/gw/other/s"), None);
    assert!(check_message("edgevisor/gw/state/s", b"not json").is_err());
}

fn good_telemetry() -> Value {
    let envelope = TelemetryEnvelope::new("barn-pi-01", "barn-gps", 7, "nmea");
    let data = r#"{"address":"GPGGA","talker":"GP","sentence":"GGA","fields":["1"]}"#;
    parse(&envelope.render(1, TS, data))
}

#[test]
fn telemetry() {
    let good = good_telemetry();
    accepts("telemetry", &good);
    for (codec, data) in [
        ("lines", r#"{"text":"21.5 C"}"#),
        ("frame", r#"{"payload_b64":"AQI="}"#),
        ("json", r#"{"t":21.5,"deep":{"a":[1,null]}}"#),
    ] {
        let envelope = TelemetryEnvelope::new("gw", "s_1", 1, codec);
        accepts("telemetry", &parse(&envelope.render(u64::MAX, TS, data)));
    }
    every_key_required_and_no_other("telemetry", &good, "", &[]);
    // `data` is the codec's: any object, any keys.
    accepts(
        "telemetry",
        &with(&good, "/data/anything", Some(json!([1]))),
    );
    for (at, value, what) in [
        ("/seq", json!(0), "seq counts from 1"),
        ("/seq", json!(1.5), "seq is an integer"),
        ("/boot", json!(0), "boot counts from 1"),
        ("/boot", json!("7"), "boot is a number"),
        (
            "/ts",
            json!("2026-11-24T10:00:00Z"),
            "ts without milliseconds",
        ),
        ("/ts", json!("2026-11-24T10:00:00.123+01:00"), "ts not UTC"),
        ("/ts", json!("2026-11-24 10:00:00.123Z"), "ts without T"),
        ("/ts", json!("2026-13-24T10:00:00.123Z"), "month 13"),
        ("/codec", json!("xml"), "unknown codec"),
        ("/data", json!([1, 2]), "data not an object"),
        ("/data", json!("21.5"), "data not an object"),
        ("/sensor", json!("barn/gps"), "a / in a sensor id"),
        ("/gateway", json!(""), "empty gateway id"),
    ] {
        rejects("telemetry", &with(&good, at, Some(value)), what);
    }
}

/// A Modbus unit's poll (SPEC section 9): sensor `<bus>/<unit>`, data
/// `{"unit", "values"}`, a NaN float as null.
#[test]
fn modbus_telemetry() {
    let envelope = TelemetryEnvelope::new("barn-pi-01", "meters/meter-1", 7, "modbus");
    let data = r#"{"unit":1,"values":{"voltage":229.8,"relay":true,"serial":"AB12","freq":null,"count":-3}}"#;
    let good = parse(&envelope.render(1, TS, data));
    accepts("telemetry", &good);
    every_key_required_and_no_other("telemetry", &good, "/data", &[]);
    accepts("telemetry", &with(&good, "/data/values", Some(json!({}))));
    accepts("telemetry", &with(&good, "/data/unit", Some(json!(255))));
    for (at, value, what) in [
        ("/data/unit", json!(256), "unit_id over 255"),
        ("/data/unit", json!(-1), "negative unit_id"),
        ("/data/unit", json!("1"), "unit_id a string"),
        ("/data/values", json!([229.8]), "values not an object"),
        ("/data/values/voltage", json!([1]), "a value that is a list"),
        (
            "/data/values/voltage",
            json!({"v": 1}),
            "a value that is an object",
        ),
        (
            "/sensor",
            json!("meters"),
            "a modbus reading without its unit",
        ),
        ("/sensor", json!("meters/meter-1/x"), "three levels"),
        ("/sensor", json!("meters/"), "an empty unit"),
        ("/sensor", json!("/meter-1"), "an empty bus"),
    ] {
        rejects("telemetry", &with(&good, at, Some(value)), what);
    }
    // A unit's name is for modbus readings only.
    rejects(
        "telemetry",
        &with(&good_telemetry(), "/sensor", Some(json!("meters/meter-1"))),
        "a stream codec under a unit's name",
    );
}

fn crash(reason: &str, action: &str, backoff_ms: u64, evidence: &[u8], truncated: bool) -> Value {
    parse(&payload::to_vec(&CrashReport {
        gateway: "barn-pi-01",
        boot: 7,
        ts: TS,
        path: "root/barn/barn-gps",
        sensor: "barn-gps",
        reason,
        error: "nmea checksum mismatch: want 4A got 47",
        evidence_hex: hex::encode(evidence),
        evidence_truncated: truncated,
        restarts_in_window: 3,
        intensity: 5,
        period_ms: 60_000,
        action,
        backoff_ms,
    }))
}

#[test]
fn crash_report() {
    // SPEC section 5's example, with its elided evidence written out.
    let spec = json!({"gateway":"barn-pi-01","boot":7,"ts":"2026-11-24T10:00:00.123Z",
        "path":"root/barn/barn-gps","sensor":"barn-gps",
        "reason":"corrupt_frame","error":"nmea checksum mismatch: want 4A got 47",
        "evidence_hex":"2447504747412c","evidence_truncated":false,
        "restarts_in_window":3,"intensity":5,"period_ms":60000,
        "action":"restart","backoff_ms":400});
    accepts("crash", &spec);
    let good = crash("corrupt_frame", "restart", 400, b"$GPGGA,", false);
    assert_eq!(good, spec, "the product renders SPEC's example");
    for reason in [
        "corrupt_frame",
        "io",
        "eof",
        "timeout",
        "panic",
        "start_failed",
        "exhausted",
    ] {
        for action in ["quarantine", "escalate", "none"] {
            accepts("crash", &crash(reason, action, 0, b"", false));
        }
    }
    accepts(
        "crash",
        &crash("corrupt_frame", "restart", 0, &[0xff; 256], true),
    );
    let outbox = notice::crash_report("gw", 3, &Topics::new("edgevisor", "gw"), "disk full");
    assert_eq!(schema_for(&outbox.topic), Some("crash"));
    accepts("crash", &parse(&outbox.payload));
    let conn = with(&good, "/path", Some(json!("root/nodes/[::1]:50000")));
    accepts("crash", &conn);
    // A Modbus unit's poll: sensor `<bus>/<unit>`, the request and its
    // reply as `>request<reply` (none after `<` when no reply came), 256
    // bytes together at most (SPEC section 9).
    let unit = with(&good, "/sensor", Some(json!("meters/meter-1")));
    let unit = with(&unit, "/path", Some(json!("root/meters/meter-1")));
    for evidence in [">010300000002c40b<018302c0f1", ">010300000002c40b<"] {
        accepts(
            "crash",
            &with(&unit, "/evidence_hex", Some(json!(evidence))),
        );
    }
    let request = "01".repeat(8);
    let full = with(
        &unit,
        "/evidence_hex",
        Some(json!(format!(">{request}<{}", "ab".repeat(248)))),
    );
    accepts("crash", &full);
    accepts(
        "crash",
        &with(&full, "/evidence_truncated", Some(json!(true))),
    );

    every_key_required_and_no_other("crash", &good, "", &[]);
    let long = "ab".repeat(257);
    for (at, value, what) in [
        ("/reason", json!("oops"), "unknown reason"),
        ("/reason", json!("normal"), "a reason outside SPEC"),
        ("/action", json!("retry"), "unknown action"),
        ("/evidence_hex", json!("2A"), "upper-case hex"),
        ("/evidence_hex", json!("abc"), "odd length"),
        ("/evidence_hex", json!("zz"), "not hex"),
        ("/evidence_hex", json!("0103<0183"), "a reply without `>`"),
        ("/evidence_hex", json!(">0103"), "a request without `<`"),
        ("/evidence_hex", json!("><0183"), "an empty request"),
        ("/evidence_hex", json!("<0183>0103"), "reply first"),
        ("/evidence_hex", json!(">0103<01<83"), "two replies"),
        ("/evidence_hex", json!(">0103<018"), "odd reply length"),
        ("/evidence_hex", json!(">0103<01A3"), "upper-case reply"),
        (
            "/evidence_hex",
            json!(format!(">0103<{}", "ab".repeat(255))),
            "an exchange over 256 bytes",
        ),
        ("/sensor", json!("meters/meter-1/x"), "three levels"),
        ("/sensor", json!("meters/"), "an empty unit"),
        ("/evidence_hex", json!(long), "over 256 bytes"),
        (
            "/evidence_truncated",
            json!("false"),
            "a string, not a boolean",
        ),
        (
            "/evidence_truncated",
            json!(true),
            "truncated below the cap",
        ),
        ("/path", json!("barn/barn-gps"), "a path outside root"),
        ("/path", json!("root"), "the root itself"),
        ("/restarts_in_window", json!(-1), "negative count"),
        ("/period_ms", json!(60.5), "fractional milliseconds"),
        ("/ts", json!("yesterday"), "not a timestamp"),
    ] {
        rejects("crash", &with(&good, at, Some(value)), what);
    }
    rejects(
        "crash",
        &with(
            &with(
                &unit,
                "/evidence_hex",
                Some(json!(format!(">{request}<{}", "ab".repeat(247)))),
            ),
            "/evidence_truncated",
            Some(json!(true)),
        ),
        "an exchange truncated below the cap",
    );
    let quarantined = crash("corrupt_frame", "quarantine", 0, b"", false);
    rejects(
        "crash",
        &with(&quarantined, "/backoff_ms", Some(json!(400))),
        "a backoff without a restart",
    );
}

#[test]
fn dead_letter() {
    let good = parse(&payload::to_vec(&DeadLetter {
        sensor: "zigbee",
        boot: 2,
        ts: TS,
        error: "not valid JSON: expected value at line 1 column 1",
        evidence_hex: hex::encode(b"{oops"),
    }));
    accepts("deadletter", &good);
    accepts("deadletter", &with(&good, "/evidence_hex", Some(json!(""))));
    accepts(
        "deadletter",
        &with(&good, "/sensor", Some(json!("meters/meter-1"))),
    );
    every_key_required_and_no_other("deadletter", &good, "", &[]);
    for (at, value, what) in [
        ("/evidence_hex", json!("ab".repeat(257)), "over 256 bytes"),
        ("/evidence_hex", json!("7B6F"), "upper-case hex"),
        ("/sensor", json!(""), "empty sensor"),
        ("/sensor", json!("a/b/c"), "three levels"),
        ("/ts", json!("2026-11-24T10:00:00.123"), "no zone"),
        ("/boot", json!(-2), "negative boot"),
        ("/error", json!(null), "error not a string"),
    ] {
        rejects("deadletter", &with(&good, at, Some(value)), what);
    }
}

#[test]
fn sensor_state() {
    for state in ["running", "restarting", "quarantined", "stopped"] {
        let good = parse(&payload::to_vec(&SensorState {
            state,
            restarts: 4,
            since: TS,
        }));
        accepts("state", &good);
        every_key_required_and_no_other("state", &good, "", &[]);
    }
    let good = json!({"state":"running","restarts":0,"since":TS});
    for (at, value, what) in [
        ("/state", json!("starting"), "not a SPEC state"),
        ("/state", json!("Running"), "wrong case"),
        ("/restarts", json!(-1), "negative restarts"),
        ("/since", json!(1_795_000_000), "a number, not a timestamp"),
    ] {
        rejects("state", &with(&good, at, Some(value)), what);
    }
}

fn status_of<'a>(
    state: &'a str,
    version: Option<&'a str>,
    started_at: Option<&'a str>,
) -> Status<'a> {
    Status {
        state,
        boot: 7,
        version,
        started_at,
        dropped: None,
        accepted: None,
        storage_error: None,
    }
}

#[test]
fn status() {
    let version = env!("CARGO_PKG_VERSION");
    let online = parse(&payload::to_vec(&status_of(
        "online",
        Some(version),
        Some(TS),
    )));
    accepts("status", &online);
    let counts = BTreeMap::from([
        ("barn-gps".to_string(), 12u64),
        ("w".to_string(), 0),
        ("meters/meter-1".to_string(), 3),
    ]);
    let mut full = status_of("online", Some(version), Some(TS));
    full.dropped = Some(&counts);
    full.accepted = Some(&counts);
    full.storage_error = Some("database or disk is full");
    let full = parse(&payload::to_vec(&full));
    accepts("status", &full);
    let offline = parse(&payload::to_vec(&status_of("offline", None, None)));
    let stopped = parse(&payload::to_vec(&status_of("stopped", None, None)));
    accepts("status", &offline);
    accepts("status", &stopped);

    every_key_required_and_no_other(
        "status",
        &full,
        "",
        &["dropped", "accepted", "storage_error"],
    );
    every_key_required_and_no_other("status", &offline, "", &[]);
    every_key_required_and_no_other("status", &stopped, "", &[]);
    for (at, value, what) in [
        ("/state", json!("starting"), "unknown state"),
        ("/version", json!("v1"), "not x.y.z"),
        (
            "/started_at",
            json!("2026-11-24T10:00:00Z"),
            "no milliseconds",
        ),
        ("/dropped", json!([1]), "dropped not a map"),
        ("/dropped/barn-gps", json!(-1), "negative drop count"),
        ("/dropped/barn gps", json!(1), "not a sensor id"),
        ("/accepted/w", json!("3"), "a string count"),
        ("/storage_error", json!(""), "an empty error"),
        ("/boot", json!(0), "boot 0"),
    ] {
        rejects("status", &with(&full, at, Some(value)), what);
    }
    let mut three_levels = full.clone();
    three_levels["dropped"]["a/b/c"] = json!(1);
    rejects("status", &three_levels, "a sensor name of three levels");
    rejects(
        "status",
        &with(&offline, "/version", Some(json!(version))),
        "a Will with a version",
    );
    rejects(
        "status",
        &with(&stopped, "/dropped", Some(json!({}))),
        "stopped with counts",
    );
}

fn child(
    path: &str,
    kind: ChildKind,
    state: ChildState,
    children: Vec<ChildSnapshot>,
) -> ChildSnapshot {
    let running = matches!(state, ChildState::Running);
    ChildSnapshot {
        id: path.rsplit('/').next().unwrap().into(),
        path: path.into(),
        kind,
        state,
        restarts: if running { 0 } else { 2 },
        uptime: running.then_some(Duration::from_millis(1500)),
        in_state_for: Duration::from_secs(1),
        last_reason: (!running).then_some(Cow::Borrowed("corrupt_frame")),
        children,
    }
}

fn good_tree() -> Value {
    use ChildKind::{Supervisor, Worker};
    use ChildState::{Quarantined, Restarting, Running, Stopped};
    let barn = vec![
        child("root/barn/barn-gps", Worker, Running, vec![]),
        child("root/barn/barn-weather", Worker, Restarting, vec![]),
    ];
    let nodes = vec![
        child("root/nodes/127.0.0.1:50000", Worker, Running, vec![]),
        child("root/nodes/[::1]:50001", Worker, Running, vec![]),
    ];
    let snapshot = TreeSnapshot {
        path: "root".into(),
        strategy: "one_for_one",
        children: vec![
            child("root/barn", Supervisor, Running, barn),
            child("root/nodes", Supervisor, Running, nodes),
            child("root/flappy", Worker, Quarantined, vec![]),
            child("root/gone", Worker, Stopped, vec![]),
        ],
    };
    serde_json::to_value(edgevisor::tree_payload::TreePayload(&snapshot)).unwrap()
}

#[test]
fn tree_snapshot() {
    let good = good_tree();
    accepts("tree", &good);
    accepts(
        "tree",
        &json!({"path":"root","strategy":"one_for_one","children":[]}),
    );
    every_key_required_and_no_other("tree", &good, "", &[]);
    every_key_required_and_no_other("tree", &good, "/children/0", &[]);
    every_key_required_and_no_other("tree", &good, "/children/1/children/1", &[]);
    for (at, value, what) in [
        ("/path", json!("barn"), "not the root"),
        ("/strategy", json!("one_for_many"), "unknown strategy"),
        ("/children", json!({}), "children not a list"),
        ("/children/0/state", json!("starting"), "not a SPEC state"),
        ("/children/0/kind", json!("process"), "unknown kind"),
        ("/children/0/path", json!("barn"), "a path outside root"),
        ("/children/0/restarts", json!(-1), "negative restarts"),
        ("/children/0/uptime_ms", json!("5"), "uptime a string"),
        ("/children/0/last_reason", json!("oops"), "unknown reason"),
        ("/children/0/children/0/id", json!("a/b"), "a / in an id"),
    ] {
        rejects("tree", &with(&good, at, Some(value)), what);
    }
    let sibling = good.pointer("/children/3").unwrap().clone();
    let parent = with(&good, "/children/2/children", Some(json!([sibling])));
    rejects("tree", &parent, "a worker with children");
    let supervisor = with(&parent, "/children/2/kind", Some(json!("supervisor")));
    accepts("tree", &supervisor);
}

/// The schema a `### ` heading of docs/mqtt.md documents, if any.
fn documented(heading: &str) -> Option<&'static str> {
    let topic = heading.strip_prefix("### `")?.split('`').next()?;
    schema_for(&format!("edgevisor/gw/{topic}"))
}

#[test]
fn the_examples_in_docs_mqtt_md_match_their_schemas() {
    let doc = include_str!("../../docs/mqtt.md");
    let (mut schema, mut block, mut checked) = (None, None::<String>, 0);
    for line in doc.lines() {
        if line.starts_with("### ") {
            schema = documented(line);
        } else if line == "```json" {
            block = Some(String::new());
        } else if line == "```" {
            let Some(text) = block.take() else { continue };
            let name = schema.expect("a json example under a payload heading");
            // One payload per line, or one payload over several lines.
            let payloads: Vec<Value> = match serde_json::from_str(&text) {
                Ok(one) => vec![one],
                Err(_) => text
                    .lines()
                    .map(|l| serde_json::from_str(l).unwrap())
                    .collect(),
            };
            for payload in payloads {
                accepts(name, &payload);
                checked += 1;
            }
        } else if let Some(text) = block.as_mut() {
            text.push_str(line);
            text.push('\n');
        }
    }
    assert!(
        checked >= 9,
        "only {checked} examples found in docs/mqtt.md"
    );
}
