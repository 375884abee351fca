//! The MQTT link against a real Mosquitto started by the test on an
//! ephemeral port.

use std::time::Duration;

use edgevisor_devices::codec::CodecKind;
use edgevisor_devices::link::mqtt::{self, MqttConfig};
use edgevisor_devices::link::Link;
use edgevisor_harness::sim::broker::Mosquitto;
use edgevisor_harness::sim::mqtt::MqttSensor;
use edgevisor_harness::sim::{seq_of, Fault, SimConfig};

const T: Duration = Duration::from_secs(5);

fn config(broker: &Mosquitto, id: &str, codec: CodecKind) -> MqttConfig {
    let mut c = MqttConfig::new(broker.url(), vec!["sensors/+/state".into()], id, codec);
    c.read_timeout = Duration::from_secs(4);
    c.reconnect_initial = Duration::from_millis(50);
    c.reconnect_max = Duration::from_millis(200);
    c.keep_alive = Duration::from_secs(2);
    c
}

async fn next_seq(link: &mut Link, codec: CodecKind) -> u64 {
    let r = tokio::time::timeout(T, link.next())
        .await
        .expect("reading in time")
        .expect("reading");
    seq_of(codec, &r).expect("seq")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_link_decodes_messages_and_survives_a_broker_restart() {
    let mut broker = Mosquitto::start().await.expect("mosquitto");
    assert_ne!(broker.port(), 1883, "never the system broker");
    let mut link = mqtt::subscribe(&config(&broker, "link-json", CodecKind::Json))
        .await
        .expect("subscribe");
    let sensor = MqttSensor::start(
        SimConfig::new(CodecKind::Json, 100.0),
        &broker.url(),
        "sensors/zb1/state",
        "sim-zb1",
    )
    .expect("url");
    let a = next_seq(&mut link, CodecKind::Json).await;
    let b = next_seq(&mut link, CodecKind::Json).await;
    assert!(b > a);

    // Corrupt messages are reported and the link goes on.
    sensor.handle.inject(Fault::BadChecksum);
    let mut corrupt = 0;
    for _ in 0..20 {
        match tokio::time::timeout(T, link.next()).await.expect("in time") {
            Ok(_) => {}
            Err(e) => {
                assert_eq!(e.as_str(), "corrupt_frame");
                assert!(e.can_continue());
                corrupt += 1;
            }
        }
    }
    assert_eq!(corrupt, 1);

    broker.restart().await.expect("restart");
    // Readings published after the restart arrive: the link reconnected and
    // subscribed again.
    let deadline = tokio::time::Instant::now() + T;
    let before = sensor.handle.written();
    loop {
        let s = next_seq(&mut link, CodecKind::Json).await;
        if s > before + 5 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no readings after restart"
        );
    }
    assert!(
        link.mqtt_connects() >= Some(2),
        "{:?}",
        link.mqtt_connects()
    );
    assert!(sensor.acked() > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_link_decodes_nmea_and_frames_per_message() {
    let broker = Mosquitto::start().await.expect("mosquitto");
    for codec in [CodecKind::Nmea, CodecKind::Frame, CodecKind::Lines] {
        let mut link = mqtt::subscribe(&config(&broker, &format!("link-{codec}"), codec))
            .await
            .expect("subscribe");
        let _sensor = MqttSensor::start(
            SimConfig::new(codec, 200.0),
            &broker.url(),
            &format!("sensors/{codec}/state"),
            &format!("sim-{codec}"),
        )
        .expect("url");
        let a = next_seq(&mut link, codec).await;
        let b = next_seq(&mut link, codec).await;
        assert_eq!(b, a + 1, "{codec}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_topic_ends_with_timeout_and_a_dead_broker_fails_to_subscribe() {
    let mut broker = Mosquitto::start().await.expect("mosquitto");
    let mut cfg = config(&broker, "link-silent", CodecKind::Json);
    cfg.read_timeout = Duration::from_millis(300);
    let mut link = mqtt::subscribe(&cfg).await.expect("subscribe");
    let err = tokio::time::timeout(T, link.next())
        .await
        .expect("in time")
        .expect_err("timeout");
    assert_eq!(err.as_str(), "timeout");

    broker.kill().await.expect("kill");
    cfg.connect_timeout = Duration::from_millis(500);
    let err = mqtt::subscribe(&cfg).await.expect_err("no broker");
    assert_eq!(err.as_str(), "io", "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_broker_is_silence() {
    let broker = Mosquitto::start().await.expect("mosquitto");
    let mut cfg = config(&broker, "link-frozen", CodecKind::Json);
    cfg.read_timeout = Duration::from_millis(500);
    let mut link = mqtt::subscribe(&cfg).await.expect("subscribe");
    let _sensor = MqttSensor::start(
        SimConfig::new(CodecKind::Json, 100.0),
        &broker.url(),
        "sensors/f/state",
        "sim-f",
    )
    .expect("url");
    next_seq(&mut link, CodecKind::Json).await;
    broker.pause().expect("SIGSTOP");
    let mut err = None;
    for _ in 0..1000 {
        if let Err(e) = tokio::time::timeout(T, link.next()).await.expect("in time") {
            err = Some(e);
            break;
        }
    }
    assert_eq!(err.map(|e| e.as_str()), Some("timeout"));
    broker.resume().expect("SIGCONT");
}
