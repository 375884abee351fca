//! Home Assistant MQTT discovery end to end (SPEC section 11): a real
//! Mosquitto, JSON sensors over TCP, the gateway as a process, and a
//! subscriber that does what Home Assistant's MQTT integration does with
//! what it receives: keeps each entity's discovery config, renders its
//! value, and decides its availability from the availability entries
//! (each topic's latest message whose rendered template is the available or
//! not-available word; every entry available with `availability_mode`
//! `all`; unavailable until each entry has said something).
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use edgevisor_devices::codec::CodecKind;
use edgevisor_harness::sim::tcp::TcpSensorServer;
use edgevisor_harness::sim::SimConfig;
use nix::sys::signal::Signal;
use rumqttc::{AsyncClient, Event, Incoming, MqttOptions, QoS};
use serde_json::Value;
use support::{header, Gateway, Mosquitto, TempDir};
use tokio::task::JoinHandle;

/// What a Home Assistant connected to the broker has seen.
#[derive(Default)]
struct Seen {
    /// Every payload per topic, in arrival order (an empty one is a
    /// retained delete).
    history: HashMap<String, Vec<Vec<u8>>>,
}

/// A Home Assistant stand-in: subscribes to the discovery prefix and the
/// gateway's topics, and applies Home Assistant's rules to them.
struct HomeAssistant {
    seen: Arc<Mutex<Seen>>,
    client: AsyncClient,
    task: JoinHandle<()>,
}

impl HomeAssistant {
    async fn connect(port: u16) -> Self {
        let options = MqttOptions::new(format!("ha-{}", fastrand::u32(..)), "127.0.0.1", port);
        let (client, mut eventloop) = AsyncClient::new(options, 64);
        let seen: Arc<Mutex<Seen>> = Arc::default();
        let sink = seen.clone();
        let (subscribed_tx, subscribed) = tokio::sync::oneshot::channel();
        let subscriber = client.clone();
        let task = tokio::spawn(async move {
            let mut subscribed_tx = Some(subscribed_tx);
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Incoming::ConnAck(_))) => {
                        for filter in ["homeassistant/#", "edgevisor/#"] {
                            let _ = subscriber.subscribe(filter, QoS::AtLeastOnce).await;
                        }
                    }
                    Ok(Event::Incoming(Incoming::SubAck(_))) => {
                        if let Some(tx) = subscribed_tx.take() {
                            let _ = tx.send(());
                        }
                    }
                    Ok(Event::Incoming(Incoming::Publish(p))) => {
                        let mut seen = sink.lock().unwrap();
                        let history = seen.history.entry(p.topic.clone()).or_default();
                        history.push(p.payload.to_vec());
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
        });
        tokio::time::timeout(Duration::from_secs(10), subscribed)
            .await
            .unwrap()
            .unwrap();
        Self { seen, client, task }
    }

    /// Payloads seen on `topic` so far.
    fn history(&self, topic: &str) -> Vec<Vec<u8>> {
        let seen = self.seen.lock().unwrap();
        seen.history.get(topic).cloned().unwrap_or_default()
    }

    /// The entity's discovery config, as Home Assistant holds it now (none
    /// after an empty payload).
    fn config(&self, topic: &str) -> Option<Value> {
        let last = self.history(topic).pop()?;
        (!last.is_empty()).then(|| serde_json::from_slice(&last).unwrap())
    }

    /// Home Assistant's availability of the entity `config` describes.
    fn available(&self, config: &Value) -> bool {
        assert_eq!(config["availability_mode"], "all", "{config}");
        let entries = config["availability"].as_array().unwrap();
        assert!(!entries.is_empty());
        entries.iter().all(|entry| {
            let topic = entry["topic"].as_str().unwrap();
            entry_available(entry, &self.history(topic))
        })
    }

    /// The entity's state: its value template over the latest telemetry.
    fn value(&self, config: &Value) -> Option<String> {
        let latest = self
            .history(config["state_topic"].as_str().unwrap())
            .pop()?;
        let json: Value = serde_json::from_slice(&latest).unwrap();
        Some(render(config["value_template"].as_str().unwrap(), &json))
    }

    /// Says what Home Assistant says when it starts (not retained, as
    /// Home Assistant's default birth message).
    async fn birth(&self) {
        self.client
            .publish("homeassistant/status", QoS::AtLeastOnce, false, "online")
            .await
            .unwrap();
    }

    /// Waits until `done` holds, or panics after `secs` naming `what`.
    async fn wait(&self, what: &str, secs: u64, done: impl Fn(&Self) -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        while !done(self) {
            if tokio::time::Instant::now() > deadline {
                let mut topics: Vec<String> =
                    self.seen.lock().unwrap().history.keys().cloned().collect();
                topics.sort();
                panic!("timed out after {secs}s waiting for {what}; topics seen: {topics:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for HomeAssistant {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One availability entry by Home Assistant's rule: the latest payload on
/// its topic whose rendering is `payload_available` or
/// `payload_not_available` decides; anything else is ignored; nothing yet
/// is unavailable.
fn entry_available(entry: &Value, history: &[Vec<u8>]) -> bool {
    let template = entry["value_template"].as_str().unwrap();
    let (yes, no) = (
        entry["payload_available"].as_str().unwrap(),
        entry["payload_not_available"].as_str().unwrap(),
    );
    for payload in history.iter().rev() {
        let Ok(json) = serde_json::from_slice::<Value>(payload) else {
            continue;
        };
        let rendered = render(template, &json);
        if rendered == yes {
            return true;
        }
        if rendered == no {
            return false;
        }
    }
    false
}

/// Renders the two kinds of Jinja templates discovery uses (and panics on
/// any other, so a change in the gateway's templates is noticed here):
/// `{{ value_json.a.b['c'] }}` and `{{ 'x' if value_json.a == 'y' else 'z' }}`.
/// A member that is not there renders empty, as Jinja's undefined does.
fn render(template: &str, value_json: &Value) -> String {
    let inner = template
        .strip_prefix("{{ ")
        .and_then(|t| t.strip_suffix(" }}"))
        .unwrap_or_else(|| panic!("not a {{{{ }}}} template: {template}"));
    if let Some((then, rest)) = inner.split_once(" if ") {
        let (test, otherwise) = rest.split_once(" else ").unwrap();
        let (path, expected) = test.split_once(" == ").unwrap();
        let picked = lookup(path, value_json);
        let chosen = if picked == literal(expected) {
            then
        } else {
            otherwise
        };
        return literal(chosen);
    }
    lookup(inner, value_json)
}

fn literal(quoted: &str) -> String {
    quoted
        .strip_prefix('\'')
        .and_then(|q| q.strip_suffix('\''))
        .unwrap_or_else(|| panic!("not a quoted string: {quoted}"))
        .to_string()
}

/// `value_json.a.b['c']` in `json`, rendered as Jinja would.
fn lookup(path: &str, json: &Value) -> String {
    let mut rest = path
        .strip_prefix("value_json")
        .unwrap_or_else(|| panic!("not a value_json path: {path}"));
    let mut value = Some(json);
    while !rest.is_empty() {
        let member;
        if let Some(after) = rest.strip_prefix("['") {
            let end = after.find("']").unwrap();
            member = &after[..end];
            rest = &after[end + 2..];
        } else {
            let after = rest.strip_prefix('.').unwrap();
            let end = after.find(['.', '[']).unwrap_or(after.len());
            member = &after[..end];
            rest = &after[end..];
        }
        value = value.and_then(|v| v.get(member));
    }
    match value {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

fn json_sensor(id: &str, addr: std::net::SocketAddr, fields: &str) -> String {
    format!("\n[[sensor]]\nid = \"{id}\"\ntransport = \"tcp\"\naddress = \"{addr}\"\ncodec = \"json\"\nread_timeout = \"5s\"\n{fields}")
}

const TEMPERATURE: &str = "\n[[sensor.field]]\nname = \"temperature\"\njson_path = \"$.temp\"\nunit = \"°C\"\ndevice_class = \"temperature\"\n";
const SEQ: &str = "\n[[sensor.field]]\nname = \"seq\"\njson_path = \"$.seq\"\n";
const DISCOVERY: &str = "\n[homeassistant]\ndiscovery = true\n";

#[test]
fn the_state_template_makes_every_state_but_running_unavailable() {
    let topics = edgevisor::topics::Topics::new("edgevisor", "gw");
    let field = edgevisor::config::FieldConfig {
        name: "t".into(),
        json_path: vec!["t".into()],
        unit: None,
        device_class: None,
    };
    let config: Value = serde_json::from_slice(&edgevisor::homeassistant::discovery_config(
        "gw", &topics, "s", &field,
    ))
    .unwrap();
    let state = &config["availability"][1];
    assert_eq!(state["topic"], "edgevisor/gw/state/s");
    let with = |word: &str| {
        entry_available(
            state,
            &[format!(r#"{{"state":"{word}","restarts":0,"since":"x"}}"#).into_bytes()],
        )
    };
    assert!(with("running"));
    for word in ["restarting", "quarantined", "stopped"] {
        assert!(!with(word), "{word}");
    }
    let status = &config["availability"][0];
    let said = |payload: &str| entry_available(status, &[payload.as_bytes().to_vec()]);
    assert!(said(r#"{"state":"online","boot":1}"#));
    assert!(!said(r#"{"state":"offline","boot":1}"#));
    assert!(!entry_available(status, &[]), "nothing heard: unavailable");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entities_appear_with_values_and_go_unavailable_when_the_gateway_is_killed() {
    let broker = Mosquitto::start().await.unwrap();
    let ha = HomeAssistant::connect(broker.port()).await;
    let sim = TcpSensorServer::start(SimConfig::new(CodecKind::Json, 20.0))
        .await
        .unwrap();
    let dir = TempDir::new("ha-kill");
    let config = header("gw-ha", broker.port(), &dir.0.join("state"))
        + DISCOVERY
        + &json_sensor("weather", sim.addr(), &format!("{TEMPERATURE}{SEQ}"));
    let gateway = Gateway::start_in(dir, &config).await;

    let topic = "homeassistant/sensor/gw-ha_weather/temperature/config";
    ha.wait("the temperature entity's discovery config", 15, |ha| {
        ha.config(topic).is_some()
    })
    .await;
    let entity = ha.config(topic).unwrap();
    assert_eq!(entity["unique_id"], "gw-ha_weather_temperature");
    assert_eq!(entity["state_topic"], "edgevisor/gw-ha/telemetry/weather");
    assert_eq!(entity["value_template"], "{{ value_json.data.temp }}");
    assert_eq!(entity["unit_of_measurement"], "°C");
    assert_eq!(entity["state_class"], "measurement");
    assert_eq!(entity["device"]["identifiers"][0], "edgevisor_gw-ha");
    let seq = ha
        .config("homeassistant/sensor/gw-ha_weather/seq/config")
        .expect("the seq entity too");
    assert!(seq.get("state_class").is_none(), "no unit, no class: {seq}");

    ha.wait("the entity available with a number", 15, |ha| {
        ha.available(&entity) && ha.value(&entity).is_some_and(|v| v.parse::<f64>().is_ok())
    })
    .await;

    let dir = gateway.kill().await;
    ha.wait("the entity unavailable after SIGKILL", 15, |ha| {
        !ha.available(&entity)
    })
    .await;
    let status = ha.history("edgevisor/gw-ha/status").pop().unwrap();
    let status: Value = serde_json::from_slice(&status).unwrap();
    assert_eq!(status["state"], "offline", "the Last Will made it so");
    drop(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configs_are_sent_again_at_the_birth_and_deleted_when_a_reload_removes_them() {
    let broker = Mosquitto::start().await.unwrap();
    let ha = HomeAssistant::connect(broker.port()).await;
    let weather = TcpSensorServer::start(SimConfig::new(CodecKind::Json, 10.0))
        .await
        .unwrap();
    let barn = TcpSensorServer::start(SimConfig::new(CodecKind::Json, 10.0))
        .await
        .unwrap();
    let dir = TempDir::new("ha-reload");
    let head = header("gw-hb", broker.port(), &dir.0.join("state")) + DISCOVERY;
    let config = head.clone()
        + &json_sensor("weather", weather.addr(), &format!("{TEMPERATURE}{SEQ}"))
        + &json_sensor("barn", barn.addr(), TEMPERATURE);
    let mut gateway = Gateway::start_in(dir, &config).await;

    let weather_temp = "homeassistant/sensor/gw-hb_weather/temperature/config";
    let weather_seq = "homeassistant/sensor/gw-hb_weather/seq/config";
    let barn_temp = "homeassistant/sensor/gw-hb_barn/temperature/config";
    let all = [weather_temp, weather_seq, barn_temp];
    ha.wait("three discovery configs", 15, |ha| {
        all.iter().all(|t| ha.config(t).is_some())
    })
    .await;
    let entity = ha.config(barn_temp).unwrap();
    ha.wait("the barn entity available", 15, |ha| ha.available(&entity))
        .await;

    // Home Assistant restarts while the gateway stays connected.
    let before: Vec<usize> = all.iter().map(|t| ha.history(t).len()).collect();
    ha.birth().await;
    ha.wait("every config again after the birth message", 10, |ha| {
        all.iter()
            .zip(&before)
            .all(|(t, n)| ha.history(t).len() > *n)
    })
    .await;
    let after_birth: Vec<usize> = all.iter().map(|t| ha.history(t).len()).collect();

    // Reload without the barn sensor and without weather's seq field.
    gateway.rewrite(&(head + &json_sensor("weather", weather.addr(), TEMPERATURE)));
    gateway.signal(Signal::SIGHUP);
    ha.wait("empty configs for what the reload removed", 15, |ha| {
        ha.config(barn_temp).is_none() && ha.config(weather_seq).is_none()
    })
    .await;
    for gone in [barn_temp, weather_seq] {
        assert_eq!(ha.history(gone).last().unwrap(), &Vec::<u8>::new());
    }
    // The removed sensor's state said `stopped` while the gateway stayed
    // online: the entity it had was unavailable even before the delete.
    ha.wait("the removed sensor's entity unavailable", 10, |ha| {
        !ha.available(&entity)
    })
    .await;
    assert!(ha.config(weather_temp).is_some(), "the kept entity stays");
    assert_eq!(
        ha.history(weather_temp).len(),
        after_birth[0],
        "an unchanged config is not sent again by a reload"
    );

    // A Home Assistant starting now finds only what is left retained.
    let late = HomeAssistant::connect(broker.port()).await;
    late.wait("the retained config of the kept entity", 10, |ha| {
        ha.config(weather_temp).is_some()
    })
    .await;
    // The marker goes through the broker after the retained messages (one
    // connection's deliveries keep their order).
    let marker = "homeassistant/test/marker";
    late.client
        .publish(marker, QoS::AtLeastOnce, false, "x")
        .await
        .unwrap();
    late.wait("the marker", 10, |ha| !ha.history(marker).is_empty())
        .await;
    assert!(
        late.history(barn_temp).is_empty(),
        "the barn config is gone"
    );
    assert!(
        late.history(weather_seq).is_empty(),
        "the seq config is gone"
    );
    // A clean stop: the status says `stopped` (neither word, so Home
    // Assistant ignores it) and each sensor's state `stopped`, which is
    // what makes the entities unavailable.
    let kept = ha.config(weather_temp).unwrap();
    assert!(ha.available(&kept));
    gateway.signal(Signal::SIGTERM);
    assert_eq!(gateway.exit_code(20).await, Some(0));
    ha.wait("the kept entity unavailable after a clean stop", 10, |ha| {
        !ha.available(&kept)
    })
    .await;
}
