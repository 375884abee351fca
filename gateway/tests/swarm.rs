//! The swarm as CI runs it: 200 sensors of every transport (and a Modbus
//! TCP bus of 20 units) for 20 s with every fault kind, against a Mosquitto
//! the test starts and restarts in the middle of the run. Nothing accepted may be lost, every corrupt frame must
//! come back as a crash report, and the flapping sensor must be quarantined.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use support::{schemas, Mosquitto, TempDir, Upstream};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_200_sensor_swarm_with_every_fault_loses_nothing() {
    let mut broker = Mosquitto::start().await.unwrap();
    // Every payload the swarm's gateway publishes is checked against
    // schemas/ as it arrives (support::Upstream).
    let upstream = Upstream::connect(broker.port()).await;
    let dir = TempDir::new("swarm");
    let json = dir.0.join("report.json");
    let mut swarm = tokio::process::Command::new(env!("CARGO_BIN_EXE_edgevisor"))
        .args([
            "swarm",
            "--sensors",
            "200",
            "--rate",
            "2",
            "--duration",
            "20s",
            "--seed",
            "42",
            "--modbus",
            "20",
            "--quiet",
        ])
        .args([
            "--faults",
            "corrupt=0.01,disconnect=0.005,silence=0.002,drip=0.005,unplug=0.01",
        ])
        .arg("--broker")
        .arg(broker.url())
        .arg("--json")
        .arg(&json)
        .arg("--dir")
        .arg(dir.0.join("work"))
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    // The broker restart of the fault plan, done by the test that owns it.
    tokio::time::sleep(Duration::from_secs(10)).await;
    broker.kill().await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    broker.restart().await.unwrap();
    let status = tokio::time::timeout(Duration::from_secs(180), swarm.wait())
        .await
        .unwrap()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    println!("{}", serde_json::to_string_pretty(&report).unwrap());
    let mut checked = std::collections::BTreeMap::new();
    for m in upstream.all() {
        *checked.entry(schemas::schema_for(&m.topic)).or_insert(0u64) += 1;
    }
    println!("payloads checked against their schema: {checked:?}");
    assert_eq!(report["lost"], 0, "nothing accepted is lost");
    assert!(
        report["delivered"].as_u64().unwrap() > 5_000,
        "the swarm delivered"
    );
    assert_eq!(report["gateway_exit"], 0);
    // Every unit of the bus delivered, through the broker restart.
    for unit in 1..=20 {
        let topic = format!("telemetry/modbus/unit-{unit:03}");
        assert!(upstream.on(&topic).len() > 20, "{topic}");
    }
    assert_eq!(
        status.code(),
        Some(0),
        "the swarm exits 0 when nothing was lost"
    );
    for kind in ["corrupt", "disconnect", "silence", "drip", "unplug", "flap"] {
        assert!(
            report["injected"][kind].as_u64().unwrap_or(0) > 0,
            "fault {kind} was injected: {}",
            report["injected"]
        );
    }
    let written = report["corrupt_written"].as_u64().unwrap();
    assert!(written > 0);
    assert_eq!(
        report["crash_reports"]["corrupt_frame"], written,
        "one crash report per corrupt frame written"
    );
    if report["corrupt_written_mqtt"].as_u64().unwrap() > 0 {
        assert!(
            report["dead_letters"].as_u64().unwrap() > 0,
            "skipped corrupt messages become dead letters"
        );
    }
    assert!(
        report["crash_reports"]["timeout"].as_u64().unwrap_or(0) > 0,
        "silence is reported as timeout"
    );
    let quarantined: Vec<&str> = report["quarantined_sensors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        quarantined.contains(&"flap"),
        "the flapping sensor is quarantined: {quarantined:?}"
    );
}
