//! The fleet view's MQTT client against a real Mosquitto: SPEC-shaped
//! messages published by the test arrive, retained ones on subscribing,
//! events through a shared subscription group, and the client comes back
//! by itself after the broker was killed and restarted.
#![allow(clippy::unwrap_used, missing_docs)]

use std::time::Duration;

use edgevisor_fleet::model::Fleet;
use edgevisor_fleet::mqtt::{self, Feed, Options};
use edgevisor_harness::sim::broker::Mosquitto;
use rumqttc::{AsyncClient, MqttOptions, QoS};
use tokio::sync::mpsc;

/// Publishes `(topic, payload, retain)` at QoS 1 and waits until sent.
async fn publish(port: u16, messages: &[(&str, String, bool)]) {
    let options = MqttOptions::new(format!("pub-{}", fastrand::u32(..)), "127.0.0.1", port);
    let (client, mut eventloop) = AsyncClient::new(options, 64);
    for (topic, payload, retain) in messages {
        client
            .publish(*topic, QoS::AtLeastOnce, *retain, payload.clone())
            .await
            .unwrap();
    }
    let mut acked = 0;
    while acked < messages.len() {
        if let rumqttc::Event::Incoming(rumqttc::Packet::PubAck(_)) =
            tokio::time::timeout(Duration::from_secs(5), eventloop.poll())
                .await
                .unwrap()
                .unwrap()
        {
            acked += 1;
        }
    }
    client.disconnect().await.unwrap();
    let _ = tokio::time::timeout(Duration::from_secs(1), eventloop.poll()).await;
}

/// The next feed item that `want` accepts, within 10 s.
async fn next(rx: &mut mpsc::Receiver<Feed>, what: &str, want: impl Fn(&Feed) -> bool) -> Feed {
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let feed = rx.recv().await.unwrap();
            if want(&feed) {
                return feed;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no {what} within 10 s"))
}

fn start(port: u16, share: Option<&str>) -> (mpsc::Receiver<Feed>, tokio::task::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(256);
    let task = mqtt::spawn(
        Options {
            broker: format!("mqtt://127.0.0.1:{port}"),
            prefix: "edgevisor".into(),
            share: share.map(String::from),
            client_id: format!("fleet-test-{}", fastrand::u32(..)),
            login: None,
            ca_file: None,
        },
        tx,
    )
    .unwrap();
    (rx, task)
}

fn status() -> String {
    r#"{"state":"online","boot":1,"version":"0.1.0","started_at":"2026-11-24T10:00:00.123Z"}"#
        .into()
}

fn crash(n: u64) -> String {
    format!(
        r#"{{"gateway":"gw1","boot":1,"ts":"2026-11-24T10:00:0{n}.000Z","path":"root/gps","sensor":"gps","reason":"corrupt_frame","error":"x","evidence_hex":"24","evidence_truncated":false,"restarts_in_window":{n},"intensity":5,"period_ms":60000,"action":"restart","backoff_ms":10}}"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retained_values_and_events_arrive_and_the_client_survives_a_broker_restart() {
    let mut broker = Mosquitto::start().await.unwrap();
    publish(broker.port(), &[("edgevisor/gw1/status", status(), true)]).await;
    let (mut rx, task) = start(broker.port(), None);
    next(&mut rx, "CONNACK", |f| *f == Feed::Connected).await;
    let retained = next(
        &mut rx,
        "the retained status",
        |f| matches!(f, Feed::Message { topic, .. } if topic == "edgevisor/gw1/status"),
    )
    .await;
    let mut fleet = Fleet::new("edgevisor");
    if let Feed::Message { topic, payload } = retained {
        fleet.apply(&topic, &payload, 0).unwrap();
    }
    assert_eq!(
        fleet.gateways()["gw1"].status.as_ref().unwrap().word(),
        "online"
    );

    // Give the SUBACK a moment, then an event and a telemetry message the
    // view does not subscribe to.
    tokio::time::sleep(Duration::from_millis(200)).await;
    publish(
        broker.port(),
        &[
            ("edgevisor/gw1/telemetry/gps", "{}".into(), false),
            ("edgevisor/gw1/crash/gps", crash(1), false),
        ],
    )
    .await;
    let event = next(&mut rx, "the crash", |f| matches!(f, Feed::Message { .. })).await;
    assert!(matches!(event, Feed::Message { ref topic, .. } if topic == "edgevisor/gw1/crash/gps"));

    broker.kill().await.unwrap();
    next(&mut rx, "the loss", |f| matches!(f, Feed::Disconnected(_))).await;
    broker.restart().await.unwrap();
    next(&mut rx, "the reconnection", |f| *f == Feed::Connected).await;
    // Resubscribed: a new event arrives without anything done by the test.
    tokio::time::sleep(Duration::from_millis(200)).await;
    publish(
        broker.port(),
        &[("edgevisor/gw1/crash/gps", crash(2), false)],
    )
    .await;
    next(
        &mut rx,
        "an event after the restart",
        |f| matches!(f, Feed::Message { topic, .. } if topic == "edgevisor/gw1/crash/gps"),
    )
    .await;
    task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_views_in_one_share_group_split_the_events_and_both_get_the_retained_values() {
    let broker = Mosquitto::start().await.unwrap();
    publish(broker.port(), &[("edgevisor/gw1/status", status(), true)]).await;
    let mut views = [
        start(broker.port(), Some("ops")),
        start(broker.port(), Some("ops")),
    ];
    for (rx, _) in &mut views {
        next(
            rx,
            "the retained status",
            |f| matches!(f, Feed::Message { topic, .. } if topic == "edgevisor/gw1/status"),
        )
        .await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let crashes: Vec<(&str, String, bool)> = (1..=8)
        .map(|n| ("edgevisor/gw1/crash/gps", crash(n), false))
        .collect();
    publish(broker.port(), &crashes).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut counts = Vec::new();
    for (rx, task) in &mut views {
        let mut n = 0;
        while let Ok(feed) = rx.try_recv() {
            if matches!(feed, Feed::Message { ref topic, .. } if topic.contains("/crash/")) {
                n += 1;
            }
            assert!(
                !matches!(feed, Feed::ShareRefused(_)),
                "Mosquitto supports $share"
            );
        }
        counts.push(n);
        task.abort();
    }
    assert_eq!(
        counts.iter().sum::<usize>(),
        8,
        "each event once to the group: {counts:?}"
    );
}
