//! `[metrics]` end to end (SPEC section 10): the real binary, a Mosquitto
//! the test starts (and kills), sensors on real sockets, and every scrape
//! parsed by a strict OpenMetrics parser. Shows readings and crashes by
//! reason counted, the outbox rising while the uplink is cut and falling
//! after, and `/healthz` turning 503 when the root or the uplink hangs.
#![allow(clippy::unwrap_used)]

#[path = "support/openmetrics.rs"]
mod openmetrics;
mod support;

use std::net::SocketAddr;
use std::time::Duration;

use openmetrics::Scrape;
use support::{free_port, header, Gateway, Mosquitto, TempDir};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One HTTP/1.0 GET: status code and body.
async fn get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(addr).await.ok()?;
    let request = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await.ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    Some((status, body.to_string()))
}

/// A scrape of `/metrics`, which must parse.
async fn scrape(addr: SocketAddr) -> Scrape {
    let (status, body) = get(addr, "/metrics").await.expect("metrics answer");
    assert_eq!(status, 200, "{body}");
    openmetrics::parse(&body).unwrap_or_else(|e| panic!("{e}\n{body}"))
}

/// Scrapes until `done` holds (panics after `secs`).
async fn until(addr: SocketAddr, what: &str, secs: u64, done: impl Fn(&Scrape) -> bool) -> Scrape {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if get(addr, "/healthz").await.is_some() {
            let s = scrape(addr).await;
            if done(&s) {
                return s;
            }
            if tokio::time::Instant::now() > deadline {
                panic!("{what}: not within {secs}s; last scrape: {:#?}", s.samples);
            }
        } else if tokio::time::Instant::now() > deadline {
            panic!("{what}: metrics endpoint not up within {secs}s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn listen_config(
    broker: u16,
    state: &std::path::Path,
    metrics: SocketAddr,
    sensors: SocketAddr,
) -> String {
    header("gw1", broker, state)
        + &format!(
            "\n[metrics]\nlisten = \"{metrics}\"\n\n[[sensor]]\nid = \"nodes\"\ntransport = \"tcp-listen\"\nlisten = \"{sensors}\"\ncodec = \"json\"\nread_timeout = \"1s\"\n"
        )
}

async fn send_readings(sensors: SocketAddr, from: u32, count: u32) {
    let mut conn = TcpStream::connect(sensors).await.unwrap();
    for n in from..from + count {
        conn.write_all(format!("{{\"n\":{n}}}\n").as_bytes())
            .await
            .unwrap();
    }
    conn.flush().await.unwrap();
    conn.shutdown().await.unwrap();
}

fn local(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readings_crashes_by_reason_and_the_outbox_through_an_uplink_cut() {
    let mut broker = Mosquitto::start().await.unwrap();
    let (metrics, sensors) = (local(free_port()), local(free_port()));
    let dir = TempDir::new("metrics-flow");
    let config = listen_config(broker.port(), &dir.0.join("state"), metrics, sensors);
    let gateway = Gateway::start_in(dir, &config).await;
    let connected = |s: &Scrape| s.value("edgevisor_uplink_connected", &[]) == Some(1.0);
    until(metrics, "uplink connected", 10, connected).await;

    send_readings(sensors, 1, 20).await;
    let readings = |n: f64| {
        move |s: &Scrape| {
            s.value("edgevisor_sensor_readings_total", &[("sensor", "nodes")]) == Some(n)
        }
    };
    let s = until(metrics, "20 readings counted", 10, readings(20.0)).await;
    let last = s
        .value(
            "edgevisor_sensor_last_reading_timestamp_seconds",
            &[("sensor", "nodes")],
        )
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(
        (now - last).abs() < 30.0,
        "last reading at {last}, now {now}"
    );

    // Two corrupt frames on two connections, and one silent connection
    // that times out: crashes counted by reason, under the sensor's path.
    for _ in 0..2 {
        let mut bad = TcpStream::connect(sensors).await.unwrap();
        bad.write_all(b"not json\n").await.unwrap();
        let mut sink = Vec::new();
        let _ = bad.read_to_end(&mut sink).await; // the gateway closes it
    }
    let silent = TcpStream::connect(sensors).await.unwrap();
    let crashes = |reason: &'static str, n: f64| {
        move |s: &Scrape| {
            s.value(
                "edgevisor_child_restarts_total",
                &[("child", "root/nodes"), ("reason", reason)],
            )
            .is_some_and(|v| v >= n)
        }
    };
    until(
        metrics,
        "2 corrupt_frame crashes",
        10,
        crashes("corrupt_frame", 2.0),
    )
    .await;
    let s = until(metrics, "a timeout crash", 10, crashes("timeout", 1.0)).await;
    drop(silent);
    assert_eq!(s.types["edgevisor_child_restarts"], "counter");
    assert_eq!(
        s.value(
            "edgevisor_child_restarts_total",
            &[("child", "root/nodes"), ("reason", "corrupt_frame")]
        ),
        Some(2.0),
        "each corrupt frame counted once"
    );
    assert_eq!(
        s.value("edgevisor_child_up", &[("child", "root/nodes")]),
        Some(1.0)
    );
    assert!(
        s.samples.iter().all(|x| !x
            .labels
            .get("child")
            .is_some_and(|c| c.contains("127.0.0.1"))),
        "no series per connection: {:?}",
        s.samples
    );

    // The uplink cut: the outbox holds the readings, then drains.
    broker.kill().await.unwrap();
    until(metrics, "uplink down", 15, |s| {
        s.value("edgevisor_uplink_connected", &[]) == Some(0.0)
    })
    .await;
    send_readings(sensors, 21, 30).await;
    let held = |s: &Scrape| {
        s.value("edgevisor_outbox_messages", &[("class", "telemetry")])
            .is_some_and(|v| v >= 30.0)
    };
    let s = until(metrics, "30 readings held", 10, held).await;
    assert!(
        s.value("edgevisor_outbox_bytes", &[("class", "telemetry")])
            .unwrap()
            > 30.0 * 50.0
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let s = scrape(metrics).await;
    let age = s
        .value(
            "edgevisor_outbox_oldest_age_seconds",
            &[("class", "telemetry")],
        )
        .unwrap();
    assert!(age >= 1.0, "the oldest reading waits: {age}");

    broker.restart().await.unwrap();
    let drained = |s: &Scrape| {
        connected(s) && s.value("edgevisor_outbox_messages", &[("class", "telemetry")]) == Some(0.0)
    };
    let s = until(metrics, "outbox drained after the cut", 30, drained).await;
    assert!(s.value("edgevisor_uplink_reconnects_total", &[]).unwrap() >= 1.0);
    let acked = s.value("edgevisor_uplink_acked_total", &[]).unwrap();
    assert!(acked >= 50.0, "acked {acked}: {:#?}", s.samples);
    assert_eq!(
        s.value("edgevisor_sensor_readings_total", &[("sensor", "nodes")]),
        Some(50.0)
    );
    assert_eq!(
        s.value(
            "edgevisor_outbox_dropped_total",
            &[("class", "telemetry"), ("reason", "full")]
        ),
        Some(0.0)
    );
    assert!(s
        .value("edgevisor_outbox_written_bytes_total", &[])
        .is_some());
    drop(gateway);
}

/// Waits for `/healthz` to answer `status`; returns the body.
async fn health_becomes(addr: SocketAddr, status: u16, secs: u64, gateway: &Gateway) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some((got, body)) = get(addr, "/healthz").await {
            if got == status {
                return body;
            }
        }
        if tokio::time::Instant::now() > deadline {
            panic!(
                "/healthz never answered {status} within {secs}s; log:\n{}",
                gateway.log()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_turns_503_when_the_root_hangs_or_the_uplink_loop_stops() {
    let broker = Mosquitto::start().await.unwrap();
    for (hook, keep_alive, reason) in [
        ("EDGEVISOR_TEST_HANG_AFTER", "5s", "root supervisor"),
        ("EDGEVISOR_TEST_HANG_UPLINK_AFTER", "1s", "uplink"),
    ] {
        let (metrics, sensors) = (local(free_port()), local(free_port()));
        let dir = TempDir::new("metrics-health");
        let config = listen_config(broker.port(), &dir.0.join("state"), metrics, sensors).replace(
            "keep_alive = \"5s\"",
            &format!("keep_alive = \"{keep_alive}\""),
        );
        let gateway = Gateway::start_with_env(dir, &config, &[(hook, "2s")]).await;
        let ok = health_becomes(metrics, 200, 10, &gateway).await;
        assert_eq!(ok, "ok\n");
        let body = health_becomes(metrics, 503, 20, &gateway).await;
        assert!(body.contains(reason), "{hook}: {body}");
        // The metrics still answer: the endpoint runs beside what hung.
        scrape(metrics).await;
    }
}
