//! The gateway end to end: a real Mosquitto started by the test, simulated
//! sensors from the devices crate, the `edgevisor` binary as a process, and
//! an upstream subscriber checking SPEC section 5's topics and payloads.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use edgevisor_devices::codec::CodecKind;
use edgevisor_harness::sim::tcp::TcpSensorServer;
use edgevisor_harness::sim::{Fault, SimConfig};
use nix::sys::signal::Signal;
use support::{gap_free, header, Gateway, Mosquitto, TempDir, Upstream};

fn tcp_sensor(id: &str, addr: std::net::SocketAddr, codec: &str, extra: &str) -> String {
    format!("\n[[sensor]]\nid = \"{id}\"\ntransport = \"tcp\"\naddress = \"{addr}\"\ncodec = \"{codec}\"\nread_timeout = \"5s\"\n{extra}\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn telemetry_flows_and_a_corrupt_frame_becomes_a_crash_report_then_readings_resume() {
    let broker = Mosquitto::start().await.unwrap();
    let upstream = Upstream::connect(broker.port()).await;
    let sim = TcpSensorServer::start(SimConfig::new(CodecKind::Lines, 50.0))
        .await
        .unwrap();
    let dir = TempDir::new("e2e-crash");
    let config = header("gw1", broker.port(), &dir.0.join("state"))
        + &tcp_sensor("weather", sim.addr(), "lines", "");
    let mut gateway = Gateway::start_in(dir, &config).await;

    upstream
        .wait("status online", 10, |m| {
            m.iter()
                .any(|m| m.topic == "edgevisor/gw1/status" && m.json["state"] == "online")
        })
        .await;
    upstream
        .wait("10 readings", 10, |m| {
            m.iter()
                .filter(|m| m.topic == "edgevisor/gw1/telemetry/weather")
                .count()
                >= 10
        })
        .await;
    let first_msg = upstream.on("telemetry/weather")[0].clone();
    let first = &first_msg.json;
    let positions: Vec<usize> = ["gateway", "sensor", "boot", "seq", "ts", "codec", "data"]
        .iter()
        .map(|k| first_msg.raw.find(&format!("\"{k}\":")).unwrap())
        .collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "SPEC key order: {}",
        first_msg.raw
    );
    assert_eq!(first.as_object().unwrap().len(), 7);
    assert_eq!(
        (
            first["gateway"].as_str(),
            first["sensor"].as_str(),
            first["codec"].as_str()
        ),
        (Some("gw1"), Some("weather"), Some("lines"))
    );
    assert_eq!(first["seq"], 1);
    assert!(first["data"]["text"]
        .as_str()
        .unwrap()
        .starts_with("seq=1 "));
    let ts = first["ts"].as_str().unwrap();
    assert!(
        ts.len() == 24 && ts.ends_with('Z') && ts.as_bytes()[19] == b'.',
        "RFC 3339 with ms: {ts}"
    );

    sim.handle.inject(Fault::BadChecksum);
    upstream
        .wait("a crash report", 10, |m| {
            m.iter().any(|m| m.topic == "edgevisor/gw1/crash/weather")
        })
        .await;
    let report = upstream.on("crash/weather")[0].json.clone();
    assert_eq!(report["reason"], "corrupt_frame");
    assert_eq!(report["action"], "restart");
    assert_eq!(report["path"], "root/weather");
    assert_eq!(report["sensor"], "weather");
    assert_eq!(report["gateway"], "gw1");
    assert_eq!(report["restarts_in_window"], 1);
    assert_eq!(report["intensity"], 5);
    assert_eq!(report["period_ms"], 60_000);
    assert_eq!(report["evidence_truncated"], false);
    let evidence = report["evidence_hex"].as_str().unwrap();
    assert!(
        evidence.starts_with(&hex::encode("seq=bad ")) && evidence.contains("fffe"),
        "{evidence}"
    );
    for key in ["ts", "error", "backoff_ms", "boot"] {
        assert!(!report[key].is_null(), "crash report lacks {key}: {report}");
    }
    let crashes_at = upstream.seqs("weather").len();
    upstream
        .wait("readings after the restart", 10, |_| {
            upstream.seqs("weather").len() > crashes_at + 10
        })
        .await;
    assert!(
        gap_free(&upstream.seqs("weather")),
        "seq stays gap-free across the restart"
    );
    gateway.signal(Signal::SIGTERM);
    assert_eq!(gateway.exit_code(20).await, Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sensor_corrupting_past_its_intensity_is_quarantined_while_others_deliver() {
    let broker = Mosquitto::start().await.unwrap();
    let upstream = Upstream::connect(broker.port()).await;
    let flappy = TcpSensorServer::start(SimConfig::new(CodecKind::Nmea, 20.0))
        .await
        .unwrap();
    let steady = TcpSensorServer::start(SimConfig::new(CodecKind::Json, 20.0))
        .await
        .unwrap();
    let dir = TempDir::new("e2e-quarantine");
    let config = header("gw2", broker.port(), &dir.0.join("state"))
        + &tcp_sensor(
            "flappy",
            flappy.addr(),
            "nmea",
            "intensity = 2\nperiod = \"60s\"\nquarantine_for = \"1h\"",
        )
        + &tcp_sensor("steady", steady.addr(), "json", "");
    let mut gateway = Gateway::start_in(dir, &config).await;
    upstream
        .wait("readings of both", 10, |_| {
            !upstream.seqs("flappy").is_empty() && !upstream.seqs("steady").is_empty()
        })
        .await;
    for n in 1..=3u64 {
        let connections = flappy
            .handle
            .counters()
            .connections
            .load(std::sync::atomic::Ordering::Relaxed);
        flappy.handle.inject(Fault::BadChecksum);
        upstream
            .wait("crash", 10, |_| {
                upstream.on("crash/flappy").len() as u64 >= n
            })
            .await;
        if n < 3 {
            let c = &flappy.handle.counters().connections;
            let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
            while c.load(std::sync::atomic::Ordering::Relaxed) <= connections
                && tokio::time::Instant::now() < deadline
            {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    let crashes = upstream.on("crash/flappy");
    let actions: Vec<&str> = crashes
        .iter()
        .map(|m| m.json["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["restart", "restart", "quarantine"]);
    upstream
        .wait("state quarantined", 10, |_| {
            upstream
                .on("state/flappy")
                .last()
                .is_some_and(|m| m.json["state"] == "quarantined")
        })
        .await;
    let steady_before = upstream.seqs("steady").len();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        upstream.seqs("steady").len() >= steady_before + 10,
        "the sibling keeps delivering"
    );
    assert!(gap_free(&upstream.seqs("steady")));
    // The retained state is what a newcomer sees.
    let late = Upstream::connect(broker.port()).await;
    late.wait("retained quarantined state", 5, |m| {
        m.iter().any(|m| {
            m.topic.ends_with("state/flappy") && m.retain && m.json["state"] == "quarantined"
        })
    })
    .await;
    gateway.signal(Signal::SIGTERM);
    assert_eq!(gateway.exit_code(20).await, Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_leaves_the_last_will_and_sigterm_publishes_stopped() {
    let broker = Mosquitto::start().await.unwrap();
    let upstream = Upstream::connect(broker.port()).await;
    let sim = TcpSensorServer::start(SimConfig::new(CodecKind::Lines, 10.0))
        .await
        .unwrap();
    let dir = TempDir::new("e2e-will");
    let config = header("gw3", broker.port(), &dir.0.join("state"))
        + &tcp_sensor("w", sim.addr(), "lines", "");
    let gateway = Gateway::start_in(dir, &config).await;
    upstream
        .wait("online", 10, |m| {
            m.iter()
                .any(|m| m.topic.ends_with("gw3/status") && m.json["state"] == "online")
        })
        .await;
    let dir = gateway.kill().await;
    upstream
        .wait("offline will", 10, |m| {
            m.iter().any(|m| {
                m.topic.ends_with("gw3/status")
                    && m.json == serde_json::json!({"state": "offline", "boot": 1})
            })
        })
        .await;

    let mut gateway = Gateway::start_in(dir, &config).await;
    upstream
        .wait("online again, boot 2", 10, |m| {
            m.iter().any(|m| {
                m.topic.ends_with("gw3/status")
                    && m.json["state"] == "online"
                    && m.json["boot"] == 2
            })
        })
        .await;
    gateway.signal(Signal::SIGTERM);
    assert_eq!(gateway.exit_code(20).await, Some(0));
    upstream
        .wait("stopped", 10, |m| {
            m.iter().any(|m| {
                m.topic.ends_with("gw3/status")
                    && m.json == serde_json::json!({"state": "stopped", "boot": 2})
            })
        })
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let last = upstream.on("gw3/status").last().unwrap().json.clone();
    assert_eq!(last["state"], "stopped", "no Last Will after a clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_restarts_only_the_changed_sensor() {
    let broker = Mosquitto::start().await.unwrap();
    let upstream = Upstream::connect(broker.port()).await;
    let a = TcpSensorServer::start(SimConfig::new(CodecKind::Lines, 20.0))
        .await
        .unwrap();
    let b = TcpSensorServer::start(SimConfig::new(CodecKind::Lines, 20.0))
        .await
        .unwrap();
    let dir = TempDir::new("e2e-hup");
    let base = header("gw4", broker.port(), &dir.0.join("state"));
    let before = base.clone()
        + &tcp_sensor("a", a.addr(), "lines", "")
        + &tcp_sensor("b", b.addr(), "lines", "");
    let mut gateway = Gateway::start_in(dir, &before).await;
    upstream
        .wait("both deliver", 10, |_| {
            upstream.seqs("a").len() > 5 && upstream.seqs("b").len() > 5
        })
        .await;
    let a_connections = a
        .handle
        .counters()
        .connections
        .load(std::sync::atomic::Ordering::Relaxed);
    let b_connections = b
        .handle
        .counters()
        .connections
        .load(std::sync::atomic::Ordering::Relaxed);
    let states_a = upstream.on("state/a").len();

    let after = base
        + &tcp_sensor("a", a.addr(), "lines", "")
        + &tcp_sensor("b", b.addr(), "lines", "connect_timeout = \"3s\"");
    gateway.rewrite(&after);
    gateway.signal(Signal::SIGHUP);
    let b_conn = &b.handle.counters().connections;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while b_conn.load(std::sync::atomic::Ordering::Relaxed) == b_connections
        && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        b_conn.load(std::sync::atomic::Ordering::Relaxed) > b_connections,
        "b reconnected after the reload; log:\n{}",
        gateway.log()
    );
    let seen = upstream.seqs("a").len();
    upstream
        .wait("more readings", 10, |_| {
            upstream.seqs("a").len() > seen + 10 && upstream.seqs("b").len() > 20
        })
        .await;
    assert_eq!(
        a.handle
            .counters()
            .connections
            .load(std::sync::atomic::Ordering::Relaxed),
        a_connections,
        "a was not touched"
    );
    assert_eq!(
        upstream.on("state/a").len(),
        states_a,
        "a's state never changed"
    );
    assert!(gap_free(&upstream.seqs("a")), "a's seq continues unbroken");
    assert!(
        gap_free(&upstream.seqs("b")),
        "b's seq continues too (same boot)"
    );

    // An invalid config is rejected and nothing changes.
    gateway.rewrite("[gateway]\nid = \"gw4\"\nbogus = 1\n");
    gateway.signal(Signal::SIGHUP);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let seen = upstream.seqs("a").len();
    upstream
        .wait("still delivering", 10, |_| {
            upstream.seqs("a").len() > seen + 5
        })
        .await;
    assert!(
        gateway.log().contains("reload rejected"),
        "{}",
        gateway.log()
    );
    gateway.signal(Signal::SIGTERM);
    assert_eq!(gateway.exit_code(20).await, Some(0));
}

/// Until the system clock is known to be synchronised, telemetry says so
/// (`EDGEVISOR_CLOCK` stands in for systemd's answer here).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsynchronised_clock_is_flagged_in_telemetry() {
    let broker = Mosquitto::start().await.unwrap();
    let upstream = Upstream::connect(broker.port()).await;
    let sim = TcpSensorServer::start(SimConfig::new(CodecKind::Lines, 50.0))
        .await
        .unwrap();
    let dir = TempDir::new("e2e-clock");
    let config = header("gw9", broker.port(), &dir.0.join("state"))
        + &tcp_sensor("weather", sim.addr(), "lines", "");
    let gateway = Gateway::start_with_env(dir, &config, &[("EDGEVISOR_CLOCK", "unsynced")]).await;
    upstream
        .wait("readings", 10, |m| {
            m.iter()
                .filter(|m| m.topic == "edgevisor/gw9/telemetry/weather")
                .count()
                >= 3
        })
        .await;
    for m in upstream.on("telemetry/weather") {
        assert_eq!(m.json["clock"], "unsynced", "{}", m.raw);
        assert!(
            m.raw.contains(r#"Z","clock":"unsynced","codec":"lines""#),
            "{}",
            m.raw
        );
    }
    assert!(gateway
        .log()
        .contains("the system clock is not synchronised"));
}
