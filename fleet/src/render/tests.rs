use super::*;
use crate::message::rfc3339;
use crate::model::Fleet;
use crate::snapshot::{snapshot, Link};

const NOW: u64 = 1_800_000_000_000;

fn fleet() -> FleetSnapshot {
    let mut fleet = Fleet::new("edgevisor");
    let online = format!(
        r#"{{"state":"online","boot":3,"version":"0.1.0","started_at":"{}"}}"#,
        rfc3339(NOW - 3_725_000)
    );
    fleet
        .apply("edgevisor/barn-pi-01/status", online.as_bytes(), NOW)
        .unwrap();
    fleet
        .apply(
            "edgevisor/shed-pi-02/status",
            br#"{"state":"offline","boot":9}"#,
            NOW,
        )
        .unwrap();
    let quarantined = format!(
        r#"{{"state":"quarantined","restarts":2,"since":"{}"}}"#,
        rfc3339(NOW - 5_000)
    );
    fleet
        .apply(
            "edgevisor/barn-pi-01/state/dead-port",
            quarantined.as_bytes(),
            NOW,
        )
        .unwrap();
    fleet
        .apply(
            "edgevisor/barn-pi-01/state/gps",
            br#"{"state":"running","restarts":3,"since":""}"#,
            NOW,
        )
        .unwrap();
    for (i, (sensor, reason)) in [
        ("gps", "corrupt_frame"),
        ("gps", "corrupt_frame"),
        ("dead-port", "start_failed"),
    ]
    .into_iter()
    .enumerate()
    {
        let crash = serde_json::json!({
            "gateway": "barn-pi-01", "boot": 3, "ts": rfc3339(NOW - 10_000 + i as u64 * 1000),
            "path": format!("root/{sensor}"), "sensor": sensor, "reason": reason,
            "error": "nmea checksum mismatch: want 4A got 47, and a long tail that will not fit in eighty columns",
            "evidence_hex": "2447504747412c31323334ff", "restarts_in_window": i + 1, "action": "restart"
        });
        fleet
            .apply(
                &format!("edgevisor/barn-pi-01/crash/{sensor}"),
                crash.to_string().as_bytes(),
                NOW,
            )
            .unwrap();
    }
    let link = Link {
        broker: "mqtt://127.0.0.1:1883".into(),
        connected: true,
        page: Some("http://127.0.0.1:8080/".into()),
        ..Link::default()
    };
    snapshot(&fleet, &link, NOW)
}

#[test]
fn the_table_shows_each_gateway_quarantine_rates_and_evidence() {
    let text = render(&fleet(), Style::default());
    println!("{text}");
    let line = |start: &str| {
        text.lines()
            .find(|l| l.starts_with(start))
            .unwrap_or_else(|| panic!("no line starting {start:?} in\n{text}"))
            .to_string()
    };
    assert!(line("edgevisor fleet").contains("mqtt://127.0.0.1:1883"));
    assert!(line("broker connected").contains("2 gateways, 1 online  page http://127.0.0.1:8080/"));
    let barn: Vec<String> = line("barn-pi-01")
        .split_whitespace()
        .map(String::from)
        .collect();
    assert_eq!(
        barn,
        [
            "barn-pi-01",
            "online",
            "3",
            "0.1.0",
            "1h02m",
            "2",
            "1",
            "3",
            "0"
        ]
    );
    let shed: Vec<String> = line("shed-pi-02")
        .split_whitespace()
        .map(String::from)
        .collect();
    assert_eq!(
        shed,
        ["shed-pi-02", "offline", "9", "-", "-", "0", "0", "0", "0"]
    );
    assert!(line("  barn-pi-01/dead-port").contains("restarts 2"));
    let top = line("  barn-pi-01/gps");
    assert!(top.contains(" 2") && top.contains("corrupt_frame"), "{top}");
    assert!(text.contains("start_failed"));
    assert!(
        text.contains("  nmea checksum mismatch: want 4A got~  2447504747412c31...  \"$GPGGA,1\""),
        "{text}"
    );
    assert!(text.lines().all(|l| l.chars().count() <= WIDTH), "{text}");
}

#[test]
fn colour_adds_escapes_only() {
    let style = Style {
        color: true,
        ..Style::default()
    };
    let colored = render(&fleet(), style);
    assert!(colored.contains("\x1b[32monline"));
    let mut stripped = String::new();
    let mut chars = colored.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            chars.by_ref().find(|d| *d == 'm');
        } else {
            stripped.push(c);
        }
    }
    assert_eq!(stripped, render(&fleet(), Style::default()));
}

#[test]
fn an_empty_fleet_and_a_lost_broker_say_so() {
    let snap = snapshot(
        &Fleet::new("site/a"),
        &Link {
            broker: "mqtt://x:1883".into(),
            last_error: Some("connection refused".into()),
            ..Link::default()
        },
        NOW,
    );
    let text = render(&snap, Style::default());
    assert!(
        text.contains("BROKER NOT CONNECTED (connection refused)"),
        "{text}"
    );
    assert!(
        text.contains("no gateway has published under site/a/"),
        "{text}"
    );
}

#[test]
fn uptime_and_cuts() {
    assert_eq!(uptime(42), "42s");
    assert_eq!(uptime(307), "5m07s");
    assert_eq!(uptime(3_720), "1h02m");
    assert_eq!(uptime(273_600), "3d04h");
    assert_eq!(fit("abcdef", 4), "abc~");
    assert_eq!(cut("\x1b[1mabcdef\x1b[0m", 3), "\x1b[1mabc\x1b[0m");
    assert_eq!(evidence("00414243", 2), "0041...  \".A\"");
}
