//! The demo's live view: the supervision tree (each child's state, restarts
//! and last crash reason) and the latest crash reports, redrawn in place from
//! what the gateway publishes upstream.

use std::collections::VecDeque;
use std::fmt::Write;

use serde_json::Value;

/// What the view shows.
#[derive(Default)]
pub struct View {
    tree: Option<Value>,
    crashes: VecDeque<String>,
    telemetry: u64,
    dead_letters: u64,
}

impl View {
    /// Takes one upstream message (`kind` is the topic after the gateway id).
    pub fn book(&mut self, kind: &str, payload: &[u8]) {
        let Ok(json) = serde_json::from_slice::<Value>(payload) else {
            return;
        };
        match kind.split('/').next().unwrap_or("") {
            "tree" => self.tree = Some(json),
            "telemetry" => self.telemetry += 1,
            "deadletter" => self.dead_letters += 1,
            "crash" => {
                let evidence = json["evidence_hex"].as_str().unwrap_or("");
                let evidence = if evidence.len() > 24 {
                    format!("{}...", &evidence[..24])
                } else {
                    evidence.to_string()
                };
                self.crashes.push_front(format!(
                    "{} {:<28} {:<13} -> {:<10} {} [{}]",
                    json["ts"].as_str().unwrap_or("").get(11..23).unwrap_or(""),
                    json["path"].as_str().unwrap_or(""),
                    json["reason"].as_str().unwrap_or(""),
                    json["action"].as_str().unwrap_or(""),
                    json["error"]
                        .as_str()
                        .unwrap_or("")
                        .chars()
                        .take(48)
                        .collect::<String>(),
                    evidence
                ));
                self.crashes.truncate(8);
            }
            _ => {}
        }
    }

    /// The whole screen.
    pub fn render(&self, elapsed: f64, broker: &str) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "edgevisor demo  {elapsed:5.1}s  broker {broker}  readings delivered {}  dead letters {}", self.telemetry, self.dead_letters);
        let _ = writeln!(
            out,
            "\nsupervision tree (state, restarts, last crash reason):"
        );
        match &self.tree {
            Some(tree) => {
                let _ = writeln!(out, "  root ({})", tree["strategy"].as_str().unwrap_or(""));
                for child in tree["children"].as_array().into_iter().flatten() {
                    node(&mut out, child, 2);
                }
            }
            None => out.push_str("  (waiting for the gateway)\n"),
        }
        let _ = writeln!(out, "\nlatest crash reports:");
        if self.crashes.is_empty() {
            out.push_str("  (none yet)\n");
        }
        for line in &self.crashes {
            let _ = writeln!(out, "  {line}");
        }
        out
    }
}

fn node(out: &mut String, child: &Value, depth: usize) {
    let state = child["state"].as_str().unwrap_or("?");
    let mark = match state {
        "running" => "+",
        "restarting" => "~",
        "quarantined" => "!",
        _ => "-",
    };
    let kids = child["children"].as_array().map_or(0, Vec::len);
    let id = child["id"].as_str().unwrap_or("?");
    // A connection pool can hold hundreds of children: show a count.
    if id == "conns" {
        let _ = writeln!(
            out,
            "{:indent$}{mark} conns: {kids} connection(s)",
            "",
            indent = depth * 2
        );
        return;
    }
    let _ = writeln!(
        out,
        "{:indent$}{mark} {:<22} {:<12} restarts {:<3} {}",
        "",
        id,
        state,
        child["restarts"].as_u64().unwrap_or(0),
        child["last_reason"].as_str().unwrap_or(""),
        indent = depth * 2
    );
    for grandchild in child["children"].as_array().into_iter().flatten() {
        node(out, grandchild, depth + 1);
    }
}
