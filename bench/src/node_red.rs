//! Node-RED 4 as a forwarder: installed from npm into
//! `target/bench-node-red/` when missing, run headless (no editor, no HTTP
//! server) with a flow of `tcp in` (server, stream, lines split on `\n`,
//! strings) -> `json` -> `mqtt out` (QoS 1) to the private broker. Its
//! `tcp in` node listens on every interface (it has no host setting); only
//! the bench's own loopback traffic reaches it.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::Context;
use serde_json::json;
use tokio::process::{Child, Command};

use crate::report::note;
use crate::workdir::free_port;

/// An installed Node-RED.
pub struct NodeRed {
    red_js: PathBuf,
}

/// Finds Node-RED, installing it with `npm install node-red@4` if needed;
/// `None` (and a `# node_red skipped` line) when that is impossible here.
pub async fn prepare(root: &Path) -> anyhow::Result<Option<NodeRed>> {
    let dir = root.join("target/bench-node-red");
    let red_js = dir.join("node_modules/node-red/red.js");
    if red_js.is_file() {
        return Ok(Some(NodeRed { red_js }));
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    note("installing Node-RED 4 with npm (once)");
    let log = std::fs::File::create(dir.join("npm.log")).context("creating npm.log")?;
    let installed = Command::new("npm")
        .args(["install", "--no-audit", "--no-fund", "--prefix"])
        .arg(&dir)
        .arg("node-red@4")
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .status()
        .await;
    match installed {
        Ok(s) if s.success() && red_js.is_file() => Ok(Some(NodeRed { red_js })),
        Ok(s) => skipped(&format!(
            "npm install node-red@4 failed ({s}); see {}/npm.log",
            dir.display()
        )),
        Err(e) => skipped(&format!("npm not available ({e})")),
    }
}

fn skipped(why: &str) -> anyhow::Result<Option<NodeRed>> {
    println!("# node_red skipped: {why}");
    Ok(None)
}

impl NodeRed {
    /// Writes the flow and settings into `dir` and starts Node-RED; its
    /// `tcp in` listens on `port`, its `mqtt out` publishes on `topic`.
    pub fn start(
        &self,
        dir: &Path,
        port: u16,
        broker_port: u16,
        topic: &str,
    ) -> anyhow::Result<Child> {
        std::fs::write(
            dir.join("flows.json"),
            flows(port, broker_port, topic).to_string(),
        )
        .context("writing flows.json")?;
        let settings = dir.join("settings.js");
        std::fs::write(&settings, settings_js(dir, free_port()?)?)
            .context("writing settings.js")?;
        let log =
            std::fs::File::create(dir.join("node-red.log")).context("creating node-red.log")?;
        Command::new("node")
            .arg(&self.red_js)
            .arg("--settings")
            .arg(&settings)
            .arg("--userDir")
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .context("starting node (Node-RED)")
    }
}

/// The flow: `tcp in` -> `json` -> `mqtt out`. Ids look like the editor's:
/// Node-RED takes any property value equal to a node id for a reference
/// (an id "json" made it report a circular config dependency).
fn flows(port: u16, broker_port: u16, topic: &str) -> serde_json::Value {
    let id = |n: u32| format!("be4c0000000000{n:02}");
    json!([
        {"id": id(1), "type": "tab", "label": "bench"},
        {"id": id(2), "type": "tcp in", "z": id(1), "server": "server", "host": "",
         "port": port.to_string(), "datamode": "stream", "datatype": "utf8", "newline": "\\n",
         "topic": "", "trim": false, "base64": false, "tls": "", "wires": [[id(3)]]},
        {"id": id(3), "type": "json", "z": id(1), "property": "payload", "action": "obj",
         "pretty": false, "wires": [[id(4)]]},
        {"id": id(4), "type": "mqtt out", "z": id(1), "topic": topic, "qos": "1",
         "retain": "false", "broker": id(5), "wires": []},
        {"id": id(5), "type": "mqtt-broker", "name": "bench", "broker": "127.0.0.1",
         "port": broker_port.to_string(), "clientid": "nodered-bench", "autoConnect": true,
         "usetls": false, "protocolVersion": "4", "keepalive": "60", "cleansession": true}
    ])
}

/// Headless settings: no editor or HTTP nodes, quiet logs, no telemetry.
fn settings_js(dir: &Path, ui_port: u16) -> anyhow::Result<String> {
    let settings = json!({
        "flowFile": "flows.json",
        "userDir": dir.display().to_string(),
        "uiHost": "127.0.0.1",
        "uiPort": ui_port,
        "httpAdminRoot": false,
        "httpNodeRoot": false,
        "credentialSecret": false,
        "diagnostics": {"enabled": false, "ui": false},
        "runtimeState": {"enabled": false},
        "telemetry": {"enabled": false, "updateNotification": false},
        "externalModules": {"autoInstall": false},
        "logging": {"console": {"level": "warn", "metrics": false, "audit": false}},
    });
    Ok(format!(
        "module.exports = {};\n",
        serde_json::to_string_pretty(&settings)?
    ))
}
