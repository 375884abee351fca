//! Logging without journald: whatever `--log-format` asks for, a gateway on
//! a machine (or container) without journald logs to stderr and runs
//! normally; `json` gives one JSON object per line with the crash line's
//! structured fields. Skipped where journald really listens, since its
//! absence cannot be faked for the real socket path.
#![allow(clippy::unwrap_used)]

#[allow(unused_imports)] // the kit's Mosquitto is not needed here
mod support;

use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use support::{header, TempDir};
use tokio::io::AsyncReadExt;
use tokio::process::Command;
use tokio::time::{sleep, timeout};

fn journald_present() -> bool {
    std::path::Path::new("/run/systemd/journal/socket").exists()
}

/// Runs the gateway for a moment with `format`, with a sensor whose address
/// refuses connections (so it crashes and logs a crash line), and no
/// broker. Returns the exit code and stderr.
async fn run_with(format: &str) -> (Option<i32>, String) {
    let dir = TempDir::new(&format!("logs-{format}"));
    let refused = support::free_port();
    let config = format!(
        "{}\n[[sensor]]\nid = \"probe\"\ntransport = \"tcp\"\naddress = \"127.0.0.1:{refused}\"\ncodec = \"lines\"\nread_timeout = \"5s\"\n",
        header("logs-gw", support::free_port(), &dir.0.join("state"))
    );
    let path = dir.0.join("edgevisor.toml");
    std::fs::write(&path, config).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_edgevisor"))
        .args(["run", "--log-format", format, "--config"])
        .arg(&path)
        .env("RUST_LOG", "info")
        .env_remove("JOURNAL_STREAM")
        .env_remove("NOTIFY_SOCKET")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let reader = tokio::spawn(async move {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text).await;
        text
    });
    sleep(Duration::from_millis(1500)).await;
    kill(Pid::from_raw(child.id().unwrap() as i32), Signal::SIGTERM).unwrap();
    let status = timeout(Duration::from_secs(20), child.wait())
        .await
        .unwrap()
        .unwrap();
    (status.code(), reader.await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_journald_every_format_logs_to_stderr_and_runs() {
    if journald_present() {
        eprintln!("skipped: journald listens on this machine");
        return;
    }
    let (auto, journald, json) =
        tokio::join!(run_with("auto"), run_with("journald"), run_with("json"));

    for (format, (code, stderr)) in [("auto", &auto), ("journald", &journald)] {
        assert_eq!(*code, Some(0), "{format}: stderr:\n{stderr}");
        assert!(stderr.contains("starting"), "{format}: stderr:\n{stderr}");
        assert!(
            stderr.contains("root/probe crashed"),
            "{format}: stderr:\n{stderr}"
        );
    }
    assert!(
        journald
            .1
            .contains("journald is not reachable; logging to stderr"),
        "stderr:\n{}",
        journald.1
    );
    assert!(
        !auto.1.contains("journald is not reachable"),
        "auto falls back silently"
    );

    let (code, stderr) = &json;
    assert_eq!(*code, Some(0), "stderr:\n{stderr}");
    let lines: Vec<serde_json::Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let crash = lines
        .iter()
        .find(|l| l["fields"]["SENSOR"] == "probe")
        .unwrap_or_else(|| panic!("no crash line with SENSOR=probe:\n{stderr}"));
    assert_eq!(crash["fields"]["CHILD_PATH"], "root/probe");
    assert!(crash["fields"]["REASON"].is_string());
    assert!(crash["fields"]["ACTION"].is_string());
}
