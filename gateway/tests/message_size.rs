//! A reading larger than the broker accepts (Mosquitto's
//! `message_size_limit`) is set aside with a report, never resent forever,
//! and does not hold back the readings behind it: found when tried from
//! outside (issue 19), where the gateway reconnected every 250 ms and
//! resent the message for as long as it ran.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use support::{header, Gateway, Mosquitto, TempDir, Upstream};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

/// Serves one connection: `before` small lines, one line of `big` bytes,
/// then small lines numbered on, one every 20 ms, for as long as it lives.
async fn sensor(listener: TcpListener, before: u64, big: usize) {
    let (mut socket, _) = listener.accept().await.unwrap();
    let mut seq = 1;
    while seq <= before {
        socket
            .write_all(format!("n={seq}\n").as_bytes())
            .await
            .unwrap();
        seq += 1;
    }
    socket
        .write_all(format!("big={}\n", "x".repeat(big)).as_bytes())
        .await
        .unwrap();
    loop {
        if socket
            .write_all(format!("n={seq}\n").as_bytes())
            .await
            .is_err()
        {
            return;
        }
        seq += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn run(gateway_id: &str, limit_key: &str) -> (Upstream, Gateway, Mosquitto) {
    let broker = Mosquitto::start_with("message_size_limit 2048")
        .await
        .unwrap();
    let upstream = Upstream::connect(broker.port()).await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(sensor(listener, 5, 4000));
    let dir = TempDir::new("message-size");
    let config = header(gateway_id, broker.port(), &dir.0.join("state"))
        .replace("keep_alive = \"5s\"\n", &format!("keep_alive = \"5s\"\n{limit_key}"))
        + &format!("\n[[sensor]]\nid = \"s\"\ntransport = \"tcp\"\naddress = \"{address}\"\ncodec = \"lines\"\nmax_frame = 65536\n");
    let gateway = Gateway::start_in(dir, &config).await;
    (upstream, gateway, broker)
}

fn line(m: &support::Msg) -> String {
    m.json["data"]["text"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Waits for the report and 20 readings after the big one, checks that the
/// big one never arrived and the ones before it did; returns the report's
/// `error`.
async fn the_big_one_is_set_aside_and_the_rest_flow(upstream: &Upstream) -> String {
    upstream
        .wait("a report and readings after the big one", 30, |_| {
            let after = upstream
                .on("telemetry/s")
                .iter()
                .filter(|m| {
                    line(m).starts_with("n=") && line(m)[2..].parse::<u64>().unwrap_or(0) > 5
                })
                .count();
            after >= 20 && !upstream.on("crash/_outbox").is_empty()
        })
        .await;
    let report = &upstream.on("crash/_outbox")[0].json;
    let error = report["error"].as_str().unwrap();
    assert!(error.contains("set aside, not sent"), "{error}");
    assert!(error.contains("telemetry/s"), "{error}");
    assert!(upstream
        .on("telemetry/s")
        .iter()
        .all(|m| !line(m).starts_with("big=")));
    // The readings before it arrived too.
    for n in 1..=5 {
        let text = format!("n={n}");
        assert!(
            upstream.on("telemetry/s").iter().any(|m| line(m) == text),
            "{text}"
        );
    }
    error.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_limit_configured_the_big_reading_is_never_sent() {
    let (upstream, gateway, _broker) = run("ms1", "max_message_size = \"2KiB\"\n").await;
    let error = the_big_one_is_set_aside_and_the_rest_flow(&upstream).await;
    assert!(
        error.contains("upstream.max_message_size (2048 bytes)"),
        "{error}"
    );
    let lost = gateway.log().matches("upstream connection lost").count();
    assert_eq!(lost, 0, "{}", gateway.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_it_the_broker_refusing_it_three_times_sets_it_aside() {
    let (upstream, gateway, _broker) = run("ms2", "").await;
    let error = the_big_one_is_set_aside_and_the_rest_flow(&upstream).await;
    assert!(
        error.contains(
            "closed the connection 3 times in a row when it was the only message in flight"
        ),
        "{error}"
    );
    // Each lost connection narrows the suspect down (one message at a
    // time after a loss: the broker's reset discards the PUBACKs of the
    // ones before it), then three losses over it set it aside; after that
    // the connection holds.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let log = gateway.log();
    let lost = log.matches("upstream connection lost").count();
    assert!(lost <= 12, "reconnected {lost} times:\n{log}");
    let after = log.split("set aside").nth(1).unwrap_or_default();
    assert!(!after.contains("upstream connection lost"), "{log}");
}
