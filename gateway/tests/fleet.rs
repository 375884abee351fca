//! `edgevisor fleet` against real gateways: a Mosquitto started by the
//! test, three `edgevisor run` processes with TCP sensors that corrupt
//! frames (and a sensor that is quarantined on every other gateway), and
//! the fleet view as a process: its JSON, its table, its shared
//! subscriptions, and its web page in a real headless Chromium.
#![allow(clippy::unwrap_used)]

mod support;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use edgevisor_harness::gateways::Gateways;
use edgevisor_harness::sim::broker::free_port;
use serde_json::Value;
use support::{Mosquitto, TempDir};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};

const BIN: &str = env!("CARGO_BIN_EXE_edgevisor");

/// `edgevisor fleet ... --http 127.0.0.1:<port>` as a process.
struct FleetView {
    _child: Child,
    port: u16,
}

impl FleetView {
    fn start(broker: &Mosquitto, extra: &[&str]) -> Self {
        let port = free_port().unwrap();
        let child = Command::new(BIN)
            .args(["fleet", "--broker", &broker.url(), "--interval", "5s"])
            .args(["--http", &format!("127.0.0.1:{port}")])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        Self {
            _child: child,
            port,
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    /// `GET path` over a plain socket (no HTTP client in the dev tree).
    async fn get(&self, path: &str) -> Option<(String, String)> {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .ok()?;
        let request = format!("GET {path} HTTP/1.1\r\nHost: fleet\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut response = String::new();
        stream.read_to_string(&mut response).await.ok()?;
        let (head, body) = response.split_once("\r\n\r\n")?;
        Some((head.to_string(), body.to_string()))
    }

    /// `/api/fleet` once `done` holds for it, or a panic after `secs`.
    async fn wait(&self, what: &str, secs: u64, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        let mut last = Value::Null;
        loop {
            if let Some((_, body)) = self.get("/api/fleet").await {
                last = serde_json::from_str(&body).unwrap_or(Value::Null);
                if done(&last) {
                    return last;
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out after {secs}s waiting for {what}; last /api/fleet:\n{last:#}"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

fn gateway<'a>(fleet: &'a Value, id: &str) -> &'a Value {
    fleet["gateways"]
        .as_array()
        .and_then(|all| all.iter().find(|g| g["id"] == id))
        .unwrap_or(&Value::Null)
}

/// Every gateway online, the dead sensors quarantined, a crash rate and a
/// tree: what both tests wait for.
fn settled(fleet: &Value, ids: &[String]) -> bool {
    let all_online = ids.iter().all(|id| gateway(fleet, id)["state"] == "online");
    let quarantined = gateway(fleet, &ids[0])["quarantined"]
        .as_array()
        .is_some_and(|q| q.iter().any(|s| s == "dead-port"));
    let barn = gateway(fleet, &ids[0]);
    let crashed = barn["by_reason"]
        .as_array()
        .is_some_and(|r| r.iter().any(|c| c["name"] == "corrupt_frame"));
    all_online && quarantined && crashed && barn["tree"]["children"].is_array()
}

async fn fleet_of(count: usize, tag: &str) -> (Mosquitto, TempDir, Gateways) {
    let broker = Mosquitto::start().await.unwrap();
    let dir = TempDir::new(tag);
    let gateways = Gateways::start(Path::new(BIN), count, broker.port(), &dir.0)
        .await
        .unwrap();
    (broker, dir, gateways)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fleet_view_follows_real_gateways_through_crashes_quarantine_stop_and_loss() {
    let (broker, _dir, mut gateways) = fleet_of(3, "fleet-view").await;
    let ids = gateways.ids().to_vec();
    let view = FleetView::start(&broker, &[]);
    let shared = FleetView::start(&broker, &["--share", "ops"]);

    let fleet = view
        .wait("3 gateways online, a quarantine, crashes", 40, |f| {
            settled(f, &ids)
        })
        .await;
    assert_eq!(fleet["link"]["connected"], true);
    let barn = gateway(&fleet, &ids[0]);
    assert_eq!(barn["version"], env!("CARGO_PKG_VERSION"));
    assert!(
        barn["uptime_s"].as_u64().is_some() && barn["boot"] == 1,
        "{barn:#}"
    );
    assert!(barn["crashes_hour"].as_u64().unwrap() >= 1);
    assert!(
        barn["by_sensor"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["name"] == "weather"),
        "{barn:#}"
    );
    let latest = &barn["latest"][0];
    assert!(
        !latest["evidence_hex"].as_str().unwrap_or("").is_empty(),
        "the latest crash carries its evidence: {latest:#}"
    );
    let tree_ids: Vec<&str> = barn["tree"]["children"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["id"].as_str())
        .collect();
    assert_eq!(tree_ids, ["weather", "gps", "dead-port"]);
    assert!(
        gateway(&fleet, &ids[1])["quarantined"]
            .as_array()
            .unwrap()
            .is_empty(),
        "the second gateway has no dead sensor"
    );

    // Through a shared subscription group: the retained values still come
    // (plain subscriptions), the crashes through $share/ops.
    let through_share = shared
        .wait("the same through $share/ops", 30, |f| settled(f, &ids))
        .await;
    assert_eq!(through_share["link"]["share"], "ops");
    assert_eq!(
        through_share["link"]["share_refused"],
        serde_json::json!([])
    );

    // A clean stop says `stopped`; a killed gateway goes `offline` when
    // the broker gives up on it (keep-alive 5 s) and publishes its Will.
    assert_eq!(gateways.stop(1).await, Some(0));
    gateways.kill(2).await;
    view.wait("stopped and offline", 30, |f| {
        gateway(f, &ids[1])["state"] == "stopped" && gateway(f, &ids[2])["state"] == "offline"
    })
    .await;

    // The table, printed once into a pipe: no escapes, one line each.
    let out = Command::new(BIN)
        .args([
            "fleet",
            "--broker",
            &broker.url(),
            "--once",
            "--settle",
            "2s",
        ])
        .output()
        .await
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{text}");
    assert!(!text.contains('\x1b'), "no colours into a pipe:\n{text}");
    assert!(text.lines().all(|l| l.chars().count() <= 80), "{text}");
    let state_of = |id: &str| {
        text.lines()
            .find(|l| l.starts_with(id))
            .and_then(|l| l.split_whitespace().nth(1))
            .map(str::to_string)
    };
    assert_eq!(state_of(&ids[0]).as_deref(), Some("online"), "{text}");
    assert_eq!(state_of(&ids[1]).as_deref(), Some("stopped"), "{text}");
    assert_eq!(state_of(&ids[2]).as_deref(), Some("offline"), "{text}");
    assert!(text.contains(&format!("{}/dead-port", ids[0])), "{text}");
    gateways.stop_all().await;
}

#[tokio::test]
async fn without_a_broker_once_says_so_and_exits_1() {
    let port = free_port().unwrap();
    let out = Command::new(BIN)
        .args(["fleet", "--broker", &format!("mqtt://127.0.0.1:{port}")])
        .args(["--once", "--settle", "1s"])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no connection to"), "{stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("BROKER NOT CONNECTED"));
}

/// A Chromium to drive headless: `$EDGEVISOR_CHROMIUM`, else the usual
/// names on `PATH`.
fn chromium() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("EDGEVISOR_CHROMIUM") {
        return Some(path.into());
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .flat_map(|name| std::env::split_paths(&path).map(move |d| d.join(name)))
        .find(|p| p.is_file())
}

/// Where CI collects files: `$EDGEVISOR_ARTIFACTS`, else `artifacts/` in
/// the cargo target folder.
fn artifacts() -> PathBuf {
    let dir = match std::env::var_os("EDGEVISOR_ARTIFACTS") {
        Some(dir) => PathBuf::from(dir),
        None => std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"))
            .join("artifacts"),
    };
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn headless(chromium: &Path, profile: &Path, args: &[&str]) -> std::process::Output {
    let run = Command::new(chromium)
        .args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
        ])
        .args([
            "--no-first-run",
            "--disable-extensions",
            "--virtual-time-budget=5000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    tokio::time::timeout(Duration::from_secs(90), run)
        .await
        .expect("chromium finished within 90 s")
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_web_page_shows_the_swarm_in_a_real_chromium() {
    let Some(chromium) = chromium() else {
        println!("SKIPPED the_web_page_shows_the_swarm_in_a_real_chromium: no chromium on PATH (apt-get install chromium, or set EDGEVISOR_CHROMIUM)");
        return;
    };
    let (broker, dir, mut gateways) = fleet_of(3, "fleet-page").await;
    let ids = gateways.ids().to_vec();
    let view = FleetView::start(&broker, &[]);
    view.wait("3 gateways online, a quarantine, crashes", 40, |f| {
        settled(f, &ids)
    })
    .await;
    let (head, page) = view.get("/").await.unwrap();
    assert!(head.contains("text/html"), "{head}");
    assert!(page.contains("edgevisor fleet"));

    let profile = dir.0.join("chromium");
    let dom = headless(&chromium, &profile, &["--dump-dom", &view.url()]).await;
    let dom = String::from_utf8_lossy(&dom.stdout).to_string();
    for id in &ids {
        assert!(
            dom.contains(&format!("data-gateway=\"{id}\" data-state=\"online\"")),
            "{id} online in the page:\n{dom}"
        );
    }
    assert!(
        dom.contains("class=\"chip quarantined\" data-sensor=\"dead-port\""),
        "a quarantined sensor in the page"
    );
    let rate = regex_free_rate(&dom, "weather");
    assert!(rate >= 1, "a crash rate for weather in the page:\n{dom}");
    assert!(
        dom.contains("data-path=\"root/dead-port\""),
        "the tree is drawn"
    );
    assert!(dom.contains("<svg class=\"chart\""), "the chart is drawn");

    let png = artifacts().join("fleet.png");
    let _ = std::fs::remove_file(&png);
    let shot = headless(
        &chromium,
        &profile,
        &[
            "--window-size=1280,900",
            &format!("--screenshot={}", png.display()),
            &view.url(),
        ],
    )
    .await;
    let size = std::fs::metadata(&png).map(|m| m.len()).unwrap_or(0);
    assert!(
        size > 10_000,
        "a screenshot at {}: {size} bytes; chromium said {}",
        png.display(),
        String::from_utf8_lossy(&shot.stderr)
    );
    println!("screenshot: {}", png.display());
    gateways.stop_all().await;
}

/// The count in the first crash-rate row of `sensor` (`.../h`), 0 if none.
fn regex_free_rate(dom: &str, sensor: &str) -> u64 {
    let marker = format!("data-sensor=\"{sensor}\"><td>{sensor}</td><td class=\"n\">");
    dom.split(&marker)
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}
