use serde_json::json;

use super::*;
use crate::sparkplug::proto::metric::Value;

fn fields() -> Fields {
    let temp = FieldConfig {
        name: "temp".into(),
        json_path: vec!["t".into()],
        unit: Some("°C".into()),
        device_class: None,
    };
    let mut map = HashMap::new();
    map.insert("meters".to_string(), Arc::from(vec![temp.clone()]));
    map.insert("weather".to_string(), Arc::from(vec![temp]));
    Fields(map)
}

fn node() -> Node {
    let mut node = Node::new(NodeTopics::new("plant", "gw"), 7, fields());
    node.connecting(3);
    node
}

fn reading(sensor: &str, t: serde_json::Value, historical: bool) -> Reading {
    Reading {
        sensor: sensor.into(),
        ts_ms: 1000,
        data: json!({ "t": t }),
        historical,
    }
}

/// `(topic kind and rest, seq)` of each message.
fn shape(out: &[Outgoing]) -> Vec<(String, Option<u64>)> {
    out.iter()
        .map(|o| {
            let rest = o.topic.trim_start_matches("spBv1.0/plant/").to_string();
            (rest, o.payload.seq)
        })
        .collect()
}

fn s(topic: &str, seq: u64) -> (String, Option<u64>) {
    (topic.to_string(), Some(seq))
}

#[test]
fn nbirth_then_dbirth_then_ddata_with_continuous_seq() {
    let mut n = node();
    let birth = n.birth(1);
    assert_eq!(shape(&birth), [s("NBIRTH/gw", 0)]);
    let names: Vec<_> = birth[0]
        .payload
        .metrics
        .iter()
        .map(|m| m.name.clone().unwrap())
        .collect();
    assert_eq!(names[..2], ["bdSeq", REBIRTH]);
    assert_eq!(birth[0].payload.metrics[0].value, Some(Value::LongValue(3)));
    let out = n.readings(vec![reading("weather", json!(20.5), false)], 2);
    assert_eq!(
        shape(&out),
        [s("DBIRTH/gw/weather", 1), s("DDATA/gw/weather", 2)]
    );
    let data = &out[1].payload.metrics[0];
    assert_eq!(data.value, Some(Value::DoubleValue(20.5)));
    assert_eq!((data.is_historical, data.timestamp), (None, Some(1000)));
    let out = n.readings(vec![reading("weather", json!(21), false)], 3);
    assert_eq!(shape(&out), [s("DDATA/gw/weather", 3)]);
}

#[test]
fn seq_wraps_from_255_to_0() {
    let mut n = node();
    n.birth(1);
    let batch: Vec<_> = (0..300)
        .map(|i| reading("weather", json!(i), false))
        .collect();
    let out = n.readings(batch, 2);
    let seqs: Vec<u64> = out.iter().map(|o| o.payload.seq.unwrap()).collect();
    for pair in seqs.windows(2) {
        assert_eq!(pair[1], (pair[0] + 1) % 256);
    }
    assert!(seqs.contains(&255) && seqs.contains(&0));
}

#[test]
fn ndeath_carries_the_sessions_bdseq_and_no_seq() {
    let n = node();
    let death = n.death(5);
    assert_eq!(death.topic, "spBv1.0/plant/NDEATH/gw");
    assert_eq!(death.payload.seq, None);
    assert_eq!(death.payload.metrics.len(), 1);
    assert_eq!(death.payload.metrics[0].value, Some(Value::LongValue(3)));
}

#[test]
fn readings_while_offline_are_replayed_as_historical_after_the_births() {
    let mut n = node();
    n.birth(1);
    n.readings(vec![reading("weather", json!(1), false)], 2);
    n.connecting(4);
    assert!(n
        .readings(vec![reading("weather", json!(2), false)], 3)
        .is_empty());
    assert!(n
        .readings(vec![reading("meters/m1", json!(3), false)], 3)
        .is_empty());
    assert_eq!(n.queued(), 2);
    let out = n.birth(4);
    assert_eq!(
        shape(&out),
        [
            s("NBIRTH/gw", 0),
            s("DBIRTH/gw/weather", 1),
            s("DDATA/gw/weather", 2),
            s("DBIRTH/gw/meters_m1", 3),
            s("DDATA/gw/meters_m1", 4),
        ]
    );
    assert_eq!(
        out[1].payload.metrics[0].value,
        Some(Value::DoubleValue(1.0)),
        "last value known"
    );
    assert_eq!(
        out[1].payload.metrics[0].properties.as_ref().unwrap().keys,
        ["engUnit"]
    );
    for ddata in [&out[2], &out[4]] {
        assert_eq!(ddata.payload.metrics[0].is_historical, Some(true));
    }
    assert_eq!(n.queued(), 0);
    let live = n.readings(vec![reading("weather", json!(5), false)], 5);
    assert_eq!(live[0].payload.metrics[0].is_historical, None);
}

#[test]
fn the_queue_keeps_the_newest_readings() {
    let mut n = node();
    let batch: Vec<_> = (0..QUEUE + 5)
        .map(|i| reading("weather", json!(i), false))
        .collect();
    n.readings(batch, 1);
    assert_eq!(n.queued(), QUEUE);
    let out = n.birth(2);
    assert_eq!(
        out[2].payload.metrics[0].value,
        Some(Value::DoubleValue(5.0))
    );
}

#[test]
fn a_stopped_sensor_dies_and_is_born_again_when_it_runs() {
    let mut n = node();
    n.birth(1);
    n.readings(vec![reading("weather", json!(1), false)], 2);
    let out = n.sensor("weather", false, 3);
    assert_eq!(shape(&out), [s("DDEATH/gw/weather", 3)]);
    assert!(n.sensor("weather", false, 3).is_empty(), "one DDEATH");
    let late = n.readings(vec![reading("weather", json!(2), true)], 4);
    assert_eq!(
        shape(&late),
        [
            s("DBIRTH/gw/weather", 4),
            s("DDATA/gw/weather", 5),
            s("DDEATH/gw/weather", 6)
        ]
    );
    let out = n.sensor("weather", true, 5);
    assert_eq!(shape(&out), [s("DBIRTH/gw/weather", 7)]);
    assert_eq!(
        out[0].payload.metrics[0].value,
        Some(Value::DoubleValue(2.0))
    );
    assert!(
        n.sensor("never-read", false, 6).is_empty(),
        "never born, no DDEATH"
    );
}

#[test]
fn a_rebirth_numbers_from_zero_and_repeats_every_device_birth() {
    let mut n = node();
    n.birth(1);
    n.readings(
        vec![
            reading("weather", json!(1), false),
            reading("plain", json!(2), false),
        ],
        2,
    );
    let out = n.birth(3);
    assert_eq!(
        shape(&out),
        [
            s("NBIRTH/gw", 0),
            s("DBIRTH/gw/plain", 1),
            s("DBIRTH/gw/weather", 2)
        ]
    );
    assert_eq!(
        out[1].payload.metrics[0].name.as_deref(),
        Some(payload::JSON_METRIC)
    );
}

#[test]
fn fields_changed_by_a_reload_give_the_device_a_new_birth() {
    let mut n = node();
    n.birth(1);
    n.readings(vec![reading("plain", json!(1), false)], 2);
    let out = n.readings(vec![reading("plain", json!(2), false)], 3);
    assert_eq!(shape(&out), [s("DDATA/gw/plain", 3)]);
    let mut map = fields().0;
    map.insert("plain".to_string(), map["weather"].clone());
    n.set_fields(Fields(map));
    let out = n.readings(vec![reading("plain", json!(3), false)], 4);
    assert_eq!(
        shape(&out),
        [s("DBIRTH/gw/plain", 4), s("DDATA/gw/plain", 5)]
    );
    assert_eq!(out[0].payload.metrics[0].name.as_deref(), Some("temp"));
}
