//! The demo's live view: the supervision tree (each child's state, restarts
//! and last crash reason) and the latest crash reports, built from what the
//! gateway publishes upstream. It makes frames; `screen` lays them out.

use std::collections::VecDeque;

use serde_json::Value;

/// Crash reports kept for the view: more than a tall terminal shows.
const CRASHES_KEPT: usize = 64;

/// What the view shows.
#[derive(Default)]
pub struct View {
    tree: Option<Value>,
    crashes: VecDeque<String>,
    telemetry: u64,
    dead_letters: u64,
}

/// One frame, in sections the screen fits by priority: the header, then the
/// tree, then as many crash reports as there are rows left.
pub struct Frame {
    /// Always shown; its first line starts with `edgevisor demo` and the
    /// seconds since the start.
    pub header: Vec<String>,
    /// A blank line, the title and the tree.
    pub tree: Vec<String>,
    /// A blank line, the title and the crash reports, newest first.
    pub crashes: Vec<String>,
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
                self.crashes.push_front(crash_line(&json));
                self.crashes.truncate(CRASHES_KEPT);
            }
            _ => {}
        }
    }

    /// The frame at `elapsed` seconds, for the broker at `broker`.
    pub fn frame(&self, elapsed: f64, broker: &str) -> Frame {
        let header = vec![
            format!(
                "edgevisor demo  {elapsed:5.1}s  readings delivered {}  dead letters {}",
                self.telemetry, self.dead_letters
            ),
            format!("broker {broker}  Ctrl-C stops"),
        ];
        let mut tree = vec![
            String::new(),
            "supervision tree (state, restarts, last crash reason):".to_string(),
        ];
        match &self.tree {
            Some(root) => {
                let strategy = root["strategy"].as_str().unwrap_or("");
                tree.push(format!("  root ({strategy})"));
                for child in root["children"].as_array().into_iter().flatten() {
                    node(&mut tree, child, 2);
                }
            }
            None => tree.push("  (waiting for the gateway)".to_string()),
        }
        let mut crashes = vec![String::new(), "latest crash reports:".to_string()];
        if self.crashes.is_empty() {
            crashes.push("  (none yet)".to_string());
        }
        crashes.extend(self.crashes.iter().map(|line| format!("  {line}")));
        Frame {
            header,
            tree,
            crashes,
        }
    }
}

/// One crash report on one line, most telling first: time, where, why,
/// what the supervisor did, then the error and the evidence, which a
/// narrow terminal cuts.
fn crash_line(json: &Value) -> String {
    let evidence = json["evidence_hex"].as_str().unwrap_or("");
    let evidence = match evidence.get(..24) {
        Some(head) if evidence.len() > 24 => format!("{head}..."),
        _ => evidence.to_string(),
    };
    let path = json["path"].as_str().unwrap_or("");
    format!(
        "{} {:<15} {:<13} -> {:<10} {} [{}]",
        json["ts"].as_str().unwrap_or("").get(11..23).unwrap_or(""),
        // Every path starts at the root the tree above shows.
        path.strip_prefix("root/").unwrap_or(path),
        json["reason"].as_str().unwrap_or(""),
        json["action"].as_str().unwrap_or(""),
        json["error"]
            .as_str()
            .unwrap_or("")
            .chars()
            .take(96)
            .collect::<String>(),
        evidence
    )
}

fn node(out: &mut Vec<String>, child: &Value, depth: usize) {
    let state = child["state"].as_str().unwrap_or("?");
    let mark = match state {
        "running" => "+",
        "restarting" => "~",
        "quarantined" => "!",
        _ => "-",
    };
    let id = child["id"].as_str().unwrap_or("?");
    let indent = depth * 2;
    let line = format!(
        "{:indent$}{mark} {:<22} {:<12} restarts {:<3} {}",
        "",
        id,
        state,
        child["restarts"].as_u64().unwrap_or(0),
        child["last_reason"].as_str().unwrap_or(""),
    );
    out.push(line.trim_end().to_string());
    let children = child["children"].as_array().map_or(&[][..], Vec::as_slice);
    // A tcp-listen sensor's children are its connections, named by the
    // peer's address, hundreds of them at times: show them as a count.
    let peer = |c: &Value| {
        c["id"]
            .as_str()
            .is_some_and(|id| id.parse::<std::net::SocketAddr>().is_ok())
    };
    if !children.is_empty() && children.iter().all(peer) {
        let inner = indent + 2;
        out.push(format!("{:inner$}+ {} connection(s)", "", children.len()));
        return;
    }
    for grandchild in children {
        node(out, grandchild, depth + 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_crash_is_one_line_without_the_root() {
        let mut view = View::default();
        let crash = br#"{"ts":"2025-01-01T12:00:01.250Z","path":"root/barn/tcp-0001",
            "reason":"corrupt_frame","action":"restart","error":"frame crc mismatch",
            "evidence_hex":"a55a0100200000000000000000000000"}"#;
        view.book("crash/tcp-0001", crash);
        let frame = view.frame(1.0, "mqtt://127.0.0.1:1883");
        let line = frame.crashes.last().expect("a crash line");
        assert!(line.starts_with("  12:00:01.250 barn/tcp-0001 "), "{line}");
        assert!(line.contains("corrupt_frame -> restart"), "{line}");
        assert!(line.ends_with("[a55a01002000000000000000...]"), "{line}");
        assert!(frame.header[0].starts_with("edgevisor demo    1.0s"));
    }
}
