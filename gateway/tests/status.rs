//! `edgevisor status` against a running service: a real Mosquitto, a tcp
//! sensor fed by a simulator, the gateway as a process, and the real
//! `edgevisor status` binary reading the service's socket.
#![allow(clippy::unwrap_used)]

mod support;

use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use edgevisor_devices::codec::CodecKind;
use edgevisor_harness::sim::tcp::TcpSensorServer;
use edgevisor_harness::sim::{Fault, SimConfig};
use nix::sys::signal::Signal;
use serde_json::Value;
use support::{header, Gateway, Mosquitto, TempDir, Upstream};

/// What one `edgevisor status` run printed.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

async fn status(args: &[&str], config: &Path) -> Run {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_edgevisor"))
        .arg("status")
        .args(args)
        .arg("--config")
        .arg(config)
        // The service under test is not systemd's: its socket is in state_dir.
        .env_remove("RUNTIME_DIRECTORY")
        .output()
        .await
        .unwrap();
    Run {
        code: out.status.code(),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

async fn status_json(config: &Path) -> Value {
    let run = status(&["--json"], config).await;
    assert_eq!(run.code, Some(0), "status failed: {}", run.stderr);
    serde_json::from_str(&run.stdout).unwrap()
}

/// Every (path, state) of a tree document, parents first.
fn paths_and_states(tree: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut stack: Vec<&Value> = tree["children"].as_array().unwrap().iter().rev().collect();
    while let Some(child) = stack.pop() {
        out.push((
            child["path"].as_str().unwrap().to_string(),
            child["state"].as_str().unwrap().to_string(),
        ));
        stack.extend(child["children"].as_array().unwrap().iter().rev());
    }
    out
}

fn config_for(dir: &TempDir, port: u16, sensor: std::net::SocketAddr) -> String {
    header("gw-status", port, &dir.0.join("state"))
        + &format!(
            "\n[[sensor]]\nid = \"weather\"\ntransport = \"tcp\"\naddress = \"{sensor}\"\ncodec = \"lines\"\nread_timeout = \"5s\"\n"
        )
}

async fn wait_for_socket(path: &Path, gateway: &Gateway) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "no socket at {}; log:\n{}",
            path.display(),
            gateway.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_shows_the_live_tree_and_a_crash_within_a_second() {
    let broker = Mosquitto::start().await.unwrap();
    let upstream = Upstream::connect(broker.port()).await;
    let sim = TcpSensorServer::start(SimConfig::new(CodecKind::Lines, 50.0))
        .await
        .unwrap();
    let dir = TempDir::new("status");
    let config = config_for(&dir, broker.port(), sim.addr());
    let socket: PathBuf = dir.0.join("state").join("status.sock");
    let mut gateway = Gateway::start_in(dir, &config).await;
    let config_path = gateway.config.clone();
    wait_for_socket(&socket, &gateway).await;

    let meta = std::fs::metadata(&socket).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o660, "socket mode");
    // The service's user and group, as it created its state_dir.
    let state = std::fs::metadata(socket.parent().unwrap()).unwrap();
    assert_eq!(
        (meta.uid(), meta.gid()),
        (state.uid(), state.gid()),
        "owner"
    );

    // The tree matches the retained `tree` topic once the sensor runs.
    upstream
        .wait("weather running in the retained tree", 10, |m| {
            m.iter()
                .rev()
                .find(|m| m.topic.ends_with("/tree"))
                .is_some_and(|t| {
                    paths_and_states(&t.json)
                        == vec![("root/weather".to_string(), "running".to_string())]
                })
        })
        .await;
    let doc = status_json(&config_path).await;
    let retained = upstream.on("/tree").last().unwrap().json.clone();
    assert_eq!(paths_and_states(&doc["tree"]), paths_and_states(&retained));
    assert_eq!(doc["gateway"], "gw-status");
    assert_eq!(doc["tree"]["children"][0]["restarts"], 0);
    assert!(doc["tree"]["children"][0]["uptime_ms"].is_u64());
    upstream
        .wait("status online", 10, |m| {
            m.iter().any(|m| m.topic.ends_with("/status"))
        })
        .await;
    let doc = status_json(&config_path).await;
    assert_eq!(doc["uplink"]["connected"], true, "{doc}");
    assert!(doc["uplink"]["connected_at"].is_string(), "{doc}");
    assert_eq!(
        doc["uplink"]["broker"],
        format!("mqtt://127.0.0.1:{}", broker.port())
    );
    assert!(
        doc["outbox"]["depth"].is_u64() && doc["outbox"]["dropped"].is_object(),
        "{doc}"
    );
    assert_eq!(doc["crashes"], serde_json::json!([]));

    // A corrupt frame: the crash is in `status` within a second.
    let injected = Instant::now();
    sim.handle.inject(Fault::BadChecksum);
    let crash = loop {
        let doc = status_json(&config_path).await;
        if let Some(crash) = doc["crashes"].as_array().unwrap().last() {
            break crash.clone();
        }
        assert!(
            injected.elapsed() < Duration::from_secs(1),
            "no crash in status after 1 s: {doc}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(crash["path"], "root/weather");
    assert_eq!(crash["reason"], "corrupt_frame");
    assert!(crash["evidence_hex"]
        .as_str()
        .unwrap()
        .starts_with(&hex::encode("seq=bad ")));
    upstream
        .wait("the crash report upstream", 10, |m| {
            m.iter().any(|m| m.topic.ends_with("/crash/weather"))
        })
        .await;
    assert_eq!(
        crash,
        upstream.on("/crash/weather")[0].json,
        "status shows the report as sent"
    );

    // The text fits 80 columns and names the crash and its evidence.
    let run = status(&[], &config_path).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(
        run.stdout.lines().all(|l| l.chars().count() <= 80),
        "{}",
        run.stdout
    );
    for part in [
        "gw-status",
        "root/weather",
        "corrupt_frame -> restart",
        "evidence 7365713d626164",
    ] {
        assert!(
            run.stdout.contains(part),
            "missing {part:?}:\n{}",
            run.stdout
        );
    }

    // A clean stop removes the socket; then status says what is wrong.
    gateway.signal(Signal::SIGTERM);
    assert_eq!(gateway.exit_code(20).await, Some(0));
    assert!(!socket.exists(), "socket removed at a clean stop");
    let run = status(&["--socket", socket.to_str().unwrap()], &config_path).await;
    assert_eq!(run.code, Some(1));
    assert!(run.stdout.is_empty());
    for part in [
        socket.to_str().unwrap(),
        "no socket there",
        "Is the service running?",
    ] {
        assert!(
            run.stderr.contains(part),
            "missing {part:?}:\n{}",
            run.stderr
        );
    }
    // Found from the config as `run` finds it (unless this machine runs a
    // real service, whose /run/edgevisor socket would then answer).
    if !Path::new("/run/edgevisor/status.sock").exists() {
        let run = status(&[], &config_path).await;
        assert_eq!(run.code, Some(1));
        assert!(
            run.stderr.contains(socket.to_str().unwrap()),
            "{}",
            run.stderr
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_services_socket_is_reported_stale_and_replaced_at_start() {
    let broker = Mosquitto::start().await.unwrap();
    let sensor = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dir = TempDir::new("status-stale");
    let config = config_for(&dir, broker.port(), sensor.local_addr().unwrap());
    let socket = dir.0.join("state").join("status.sock");
    let gateway = Gateway::start_in(dir, &config).await;
    let config_path = gateway.config.clone();
    wait_for_socket(&socket, &gateway).await;
    let dir = gateway.kill().await;
    assert!(socket.exists(), "SIGKILL leaves the socket behind");
    let run = status(&["--socket", socket.to_str().unwrap()], &config_path).await;
    assert_eq!(run.code, Some(1));
    assert!(run.stderr.contains("stale socket"), "{}", run.stderr);

    let mut gateway = Gateway::start_in(dir, &config).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let run = status(&["--json"], &config_path).await;
        if run.code == Some(0) {
            let doc: Value = serde_json::from_str(&run.stdout).unwrap();
            assert_eq!(doc["boot"], 2, "the new service answers");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{}\n{}",
            run.stderr,
            gateway.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    gateway.signal(Signal::SIGTERM);
    assert_eq!(gateway.exit_code(20).await, Some(0));
    drop(sensor);
}
