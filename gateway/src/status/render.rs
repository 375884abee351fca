//! The status document as text for a terminal: a header, the upstream link,
//! the outbox, the tree one child per line, and the last crashes newest
//! first. Every line is cut to 80 columns. It reads the document as plain
//! JSON, so a field a newer or older service lacks shows as `-`.

use std::fmt::Write;

use serde_json::Value;

/// The terminal width every line fits in.
pub const WIDTH: usize = 80;

/// Width of the tree's path column.
const PATH: usize = 33;

/// Hex digits of evidence shown on a crash's line (the JSON has it all).
const EVIDENCE_SHOWN: usize = 40;

/// `doc` as text, with at most `crashes` crash reports.
pub fn render(doc: &Value, crashes: usize) -> String {
    let mut out = String::new();
    header(&mut out, doc);
    uplink(&mut out, &doc["uplink"]);
    outbox(&mut out, &doc["outbox"]);
    out.push('\n');
    tree(&mut out, &doc["tree"]);
    recent(&mut out, &doc["crashes"], crashes);
    out.lines().map(|line| cut(line, WIDTH) + "\n").collect()
}

fn header(out: &mut String, doc: &Value) {
    let _ = writeln!(
        out,
        "{}  boot {}  edgevisor {}  pid {}  started {}",
        text(&doc["gateway"]),
        text(&doc["boot"]),
        text(&doc["version"]),
        text(&doc["pid"]),
        text(&doc["started_at"]),
    );
}

fn uplink(out: &mut String, link: &Value) {
    let state = if link["connected"] == true {
        format!("connected since {}", text(&link["connected_at"]))
    } else if link["connected_at"].is_string() {
        format!("DISCONNECTED, last up {}", text(&link["connected_at"]))
    } else {
        "DISCONNECTED, never connected".to_string()
    };
    let _ = writeln!(
        out,
        "upstream  {}\n          {state}",
        text(&link["broker"])
    );
    if link["last_error"].is_string() {
        let _ = writeln!(
            out,
            "          last error at {}:\n            {}",
            text(&link["last_error_at"]),
            text(&link["last_error"])
        );
    }
}

fn outbox(out: &mut String, outbox: &Value) {
    let oldest = outbox["oldest_age_ms"]
        .as_u64()
        .map(|ms| format!(", oldest {}", duration(ms)))
        .unwrap_or_default();
    let bytes = bytesize::ByteSize(outbox["bytes"].as_u64().unwrap_or(0));
    let _ = writeln!(
        out,
        "outbox    {} queued, {bytes}{oldest}",
        text(&outbox["depth"])
    );
    if let Some(dropped) = outbox["dropped"].as_object().filter(|d| !d.is_empty()) {
        let list: Vec<String> = dropped
            .iter()
            .map(|(sensor, n)| format!("{sensor} {}", text(n)))
            .collect();
        let _ = writeln!(out, "          dropped (outbox full): {}", list.join(", "));
    }
    if outbox["storage_error"].is_string() {
        let _ = writeln!(
            out,
            "          STORAGE ERROR: {}",
            text(&outbox["storage_error"])
        );
    }
}

fn tree(out: &mut String, tree: &Value) {
    let _ = writeln!(
        out,
        "{:<PATH$} {:<11} {:>8}  {:<7} LAST CRASH",
        "CHILD", "STATE", "RESTARTS", "UPTIME"
    );
    let mut stack: Vec<&Value> = children(tree).iter().rev().collect();
    if stack.is_empty() {
        let _ = writeln!(out, "(no children)");
    }
    while let Some(child) = stack.pop() {
        let uptime = child["uptime_ms"].as_u64().map(duration);
        let _ = writeln!(
            out,
            "{:<PATH$} {:<11} {:>8}  {:<7} {}",
            cut(&text(&child["path"]), PATH),
            text(&child["state"]),
            text(&child["restarts"]),
            uptime.as_deref().unwrap_or("-"),
            text(&child["last_reason"]),
        );
        stack.extend(children(child).iter().rev());
    }
}

fn children(node: &Value) -> &[Value] {
    node["children"].as_array().map_or(&[], Vec::as_slice)
}

fn recent(out: &mut String, crashes: &Value, shown: usize) {
    let all = crashes.as_array().map_or(&[][..], Vec::as_slice);
    if all.is_empty() || shown == 0 {
        return;
    }
    let _ = writeln!(
        out,
        "\nLAST CRASHES, NEWEST FIRST ({} of {} kept)",
        shown.min(all.len()),
        all.len()
    );
    for crash in all.iter().rev().take(shown) {
        let backoff = match crash["backoff_ms"].as_u64() {
            Some(ms) if crash["action"] == "restart" => format!(" in {}", duration(ms)),
            _ => String::new(),
        };
        // The window's counts are in the JSON; the line keeps to 80 columns.
        let _ = writeln!(
            out,
            "{} {} {} -> {}{backoff}\n  {}",
            text(&crash["ts"]),
            text(&crash["path"]),
            text(&crash["reason"]),
            text(&crash["action"]),
            text(&crash["error"]),
        );
        evidence(out, crash);
    }
}

fn evidence(out: &mut String, crash: &Value) {
    let hex = crash["evidence_hex"].as_str().unwrap_or_default();
    if hex.is_empty() {
        return;
    }
    let more = if hex.len() > EVIDENCE_SHOWN {
        "…"
    } else {
        ""
    };
    let capped = if crash["evidence_truncated"] == true {
        ", capped"
    } else {
        ""
    };
    let _ = writeln!(
        out,
        "  evidence {}{more} ({} bytes{capped})",
        &hex[..hex.len().min(EVIDENCE_SHOWN)],
        hex.len() / 2
    );
}

/// A JSON value as a word: strings bare, numbers as written, null as `-`.
fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => "-".to_string(),
        other => other.to_string(),
    }
}

/// A duration in milliseconds, short: `850ms`, `12s`, `3m05s`, `1h02m`,
/// `2d03h`.
fn duration(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0 => format!("{ms}ms"),
        1..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        3600..=86_399 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d{:02}h", s / 86_400, s % 86_400 / 3600),
    }
}

/// `line` cut to `width` characters, the last one an ellipsis when cut.
fn cut(line: &str, width: usize) -> String {
    if line.chars().count() <= width {
        return line.to_string();
    }
    let mut kept: String = line.chars().take(width.saturating_sub(1)).collect();
    kept.push('…');
    kept
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn doc() -> Value {
        let long = "x".repeat(200);
        json!({
            "gateway": "barn-pi-01", "boot": 7, "version": "0.1.0", "pid": 42,
            "started_at": "2026-11-24T10:00:00.123Z",
            "uplink": {"broker": "mqtts://broker.example.net:8883", "connected": false,
                "connected_at": "2026-11-24T10:00:01.000Z", "connects": 1,
                "last_error": format!("connection lost: {long}"),
                "last_error_at": "2026-11-24T11:00:00.000Z", "acked": 10},
            "outbox": {"depth": 12, "bytes": 3500, "oldest_age_ms": 65_000,
                "dropped": {"barn-gps": 3}, "storage_error": null},
            "tree": {"path": "root", "strategy": "one_for_one", "children": [
                {"path": "root/barn", "state": "running", "restarts": 0, "uptime_ms": 3_725_000,
                 "last_reason": null, "children": [
                    {"path": "root/barn/barn-gps", "state": "restarting", "restarts": 3,
                     "uptime_ms": null, "last_reason": "corrupt_frame", "children": []}]},
                {"path": format!("root/{long}"), "state": "quarantined", "restarts": 5,
                 "uptime_ms": null, "last_reason": "timeout", "children": []}]},
            "crashes": [
                {"ts": "2026-11-24T10:00:00.123Z", "path": "root/barn/barn-gps",
                 "reason": "corrupt_frame", "error": "nmea checksum mismatch",
                 "evidence_hex": "ab".repeat(256), "evidence_truncated": true,
                 "restarts_in_window": 3, "intensity": 5, "period_ms": 60_000,
                 "action": "restart", "backoff_ms": 400},
                {"ts": "2026-11-24T10:00:05.000Z", "path": "root/weather",
                 "reason": "timeout", "error": "silent for 30s", "evidence_hex": "",
                 "evidence_truncated": false, "restarts_in_window": 5, "intensity": 5,
                 "period_ms": 60_000, "action": "quarantine", "backoff_ms": 0}]
        })
    }

    #[test]
    fn every_line_fits_80_columns_and_the_parts_are_there() {
        let text = render(&doc(), 5);
        assert!(text.lines().all(|l| l.chars().count() <= WIDTH), "{text}");
        for part in [
            "barn-pi-01  boot 7",
            "DISCONNECTED, last up 2026-11-24T10:00:01.000Z",
            "last error at 2026-11-24T11:00:00.000Z:\n            connection lost: xxx",
            "12 queued, 3.4 KiB, oldest 1m05s",
            "dropped (outbox full): barn-gps 3",
            "root/barn                         running            0  1h02m",
            "root/barn/barn-gps                restarting         3  -       corrupt_frame",
            "LAST CRASHES, NEWEST FIRST (2 of 2 kept)",
            "root/barn/barn-gps corrupt_frame -> restart in 400ms\n  nmea checksum mismatch\n",
            "(256 bytes, capped)",
            "root/weather timeout -> quarantine\n  silent for 30s\n",
        ] {
            assert!(text.contains(part), "missing {part:?} in\n{text}");
        }
        let newest = text.find("root/weather timeout").unwrap();
        let older = text.find("root/barn/barn-gps corrupt").unwrap();
        assert!(newest < older, "newest first:\n{text}");
    }

    #[test]
    fn crashes_are_limited_and_missing_fields_show_as_dashes() {
        let text = render(&doc(), 1);
        assert!(text.contains("(1 of 2 kept)") && !text.contains("nmea checksum"));
        let empty = render(&json!({}), 5);
        assert!(empty.contains("DISCONNECTED, never connected"), "{empty}");
        assert!(empty.contains("(no children)"), "{empty}");
    }

    #[test]
    fn durations_are_short() {
        assert_eq!(duration(850), "850ms");
        assert_eq!(duration(12_000), "12s");
        assert_eq!(duration(185_000), "3m05s");
        assert_eq!(duration(3_725_000), "1h02m");
        assert_eq!(duration(183_600_000), "2d03h");
    }
}
