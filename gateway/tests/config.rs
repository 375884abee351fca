//! The config file: SPEC's example, the shipped configs, and each kind of
//! error located at the right line and column, through the library and
//! through `edgevisor check`.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use edgevisor::config::{
    Config, ConfigError, GroupStrategy, LinkConfig, OnCorrupt, OnExhausted, RootChild, Transport,
};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn errors(text: &str) -> Vec<ConfigError> {
    Config::parse(Path::new("test.toml"), text).unwrap_err().0
}

fn located(text: &str) -> Vec<(usize, usize, String)> {
    errors(text)
        .into_iter()
        .map(|e| (e.line, e.column, e.message))
        .collect()
}

const MINIMAL: &str = "[gateway]\nid = \"gw\"\n\n[upstream]\nurl = \"mqtt://127.0.0.1:1883\"\n";

#[test]
fn the_spec_example_parses_and_lacks_only_the_sensor_its_group_names() {
    let text = std::fs::read_to_string(fixture("spec-example.toml")).unwrap();
    let errs = located(&text);
    assert_eq!(
        errs,
        [(
            26,
            12,
            "group \"barn\" lists unknown sensor \"barn-modem\"".to_string()
        )]
    );
}

#[test]
fn the_spec_example_with_its_modem_resolves_every_default() {
    let mut text = std::fs::read_to_string(fixture("spec-example.toml")).unwrap();
    text.push_str("\n[[sensor]]\nid = \"barn-modem\"\ntransport = \"tcp\"\naddress = \"10.0.0.2:23\"\ncodec = \"lines\"\n");
    let config = Config::parse(Path::new("spec.toml"), &text).unwrap();
    assert_eq!(config.gateway.id, "barn-pi-01");
    assert_eq!(config.upstream.client_id, "edgevisor-barn-pi-01");
    assert_eq!(config.upstream.outbox_max_bytes, 64 * 1024 * 1024);
    assert_eq!(
        config.root.on_exhausted,
        OnExhausted::Escalate,
        "root always escalates"
    );
    let ids: Vec<&str> = config
        .children
        .iter()
        .map(|c| match c {
            RootChild::Sensor(s) => s.id.as_str(),
            RootChild::Group(g) => g.id.as_str(),
        })
        .collect();
    assert_eq!(ids, ["barn", "weather", "field-nodes", "zigbee"]);
    let RootChild::Group(barn) = &config.children[0] else {
        panic!("barn is a group")
    };
    assert_eq!(barn.strategy, GroupStrategy::RestForOne);
    let members: Vec<&str> = barn.sensors.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(
        members,
        ["barn-modem", "barn-gps"],
        "group order, not file order"
    );
    let gps = &barn.sensors[1];
    assert_eq!(
        (gps.policy.intensity, gps.policy.period),
        (3, Duration::from_secs(30))
    );
    assert_eq!(
        gps.policy.on_exhausted,
        OnExhausted::Escalate,
        "from the group"
    );
    assert_eq!(gps.max_frame, 256, "NMEA default");
    assert_eq!(gps.read_timeout, Duration::from_secs(30));
    let weather = config.sensors().find(|s| s.id == "weather").unwrap();
    assert_eq!(
        weather.policy.on_exhausted,
        OnExhausted::Quarantine,
        "sensors default to quarantine"
    );
    assert_eq!(weather.policy.intensity, 5);
    assert_eq!(
        weather.read_timeout,
        Duration::from_secs(30),
        "SPEC default read_timeout"
    );
    assert_eq!(weather.max_frame, 4096);
    assert_eq!(weather.on_corrupt, OnCorrupt::Crash);
    let nodes = config.sensors().find(|s| s.id == "field-nodes").unwrap();
    assert!(matches!(
        nodes.link,
        LinkConfig::TcpListen {
            max_connections: 256,
            ..
        }
    ));
    let zigbee = config.sensors().find(|s| s.id == "zigbee").unwrap();
    assert_eq!(zigbee.link.transport(), Transport::Mqtt);
}

#[test]
fn every_shipped_config_passes_check() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs");
    let mut checked = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            if let Err(e) = Config::load(&path) {
                panic!("{} does not pass check:\n{e}", path.display());
            }
            checked.push(path.file_name().unwrap().to_string_lossy().to_string());
        }
    }
    checked.sort();
    for required in ["demo.toml", "raspberry-pi.toml"] {
        assert!(
            checked.iter().any(|c| c == required),
            "{required} missing from configs/: {checked:?}"
        );
    }
}

#[test]
fn an_unknown_key_is_located_and_a_near_miss_suggested() {
    let text = format!("{MINIMAL}\n[[sensor]]\nid = \"gps\"\ntransport = \"serial\"\ndevice = \"/dev/ttyUSB0\"\nbaudrate = 9600\ncodec = \"nmea\"\n");
    let errs = errors(&text);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!((errs[0].line, errs[0].column), (11, 1));
    assert!(
        errs[0].message.starts_with("unknown field `baudrate`"),
        "{}",
        errs[0].message
    );
    assert_eq!(errs[0].hint.as_deref(), Some("did you mean `baud`?"));
}

#[test]
fn a_bad_duration_is_located_at_its_value() {
    let text = format!("{MINIMAL}\n[supervisor]\nperiod = \"sixty seconds\"\n");
    assert_eq!(located(&text)[0].0, 8);
    assert_eq!(located(&text)[0].1, 10);
    assert!(located(&text)[0]
        .2
        .contains("invalid duration \"sixty seconds\""));
}

#[test]
fn a_duplicate_id_points_at_the_second_and_names_the_first() {
    let sensor = "\n[[sensor]]\nid = \"w\"\ntransport = \"tcp\"\naddress = \"10.0.0.1:1\"\ncodec = \"lines\"\n";
    let text = format!("{MINIMAL}{sensor}{sensor}");
    let errs = errors(&text);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!(
        (errs[0].line, errs[0].column, errs[0].message.as_str()),
        (14, 6, "duplicate id \"w\"")
    );
    assert!(errs[0]
        .hint
        .as_deref()
        .unwrap()
        .contains("line 8, column 6"));
}

#[test]
fn a_missing_required_key_names_the_transport_and_the_fix() {
    let text =
        format!("{MINIMAL}\n[[sensor]]\nid = \"w\"\ntransport = \"tcp\"\ncodec = \"lines\"\n");
    let errs = errors(&text);
    assert_eq!((errs[0].line, errs[0].column), (9, 13));
    assert_eq!(errs[0].message, "tcp sensor \"w\" needs `address`");
    assert_eq!(
        errs[0].hint.as_deref(),
        Some("add address = \"192.168.1.40:4001\"")
    );
    let errs = errors("[gateway]\nid = \"gw\"\n[upstream]\n");
    assert!(
        errs[0].message.starts_with("missing field `url`"),
        "{errs:?}"
    );
    assert_eq!(errs[0].line, 3);
}

#[test]
fn an_unknown_group_member_is_located_in_the_list() {
    let text = format!("{MINIMAL}\n[[group]]\nid = \"g\"\nsensors = [\"w\", \"ghost\"]\n\n[[sensor]]\nid = \"w\"\ntransport = \"tcp\"\naddress = \"10.0.0.1:1\"\ncodec = \"lines\"\n");
    assert_eq!(
        located(&text),
        [(
            9,
            17,
            "group \"g\" lists unknown sensor \"ghost\"".to_string()
        )]
    );
}

/// The one error of `text`: (line, column, message, hint).
fn only_error(text: &str) -> (usize, usize, String, String) {
    let errs = errors(text);
    assert_eq!(errs.len(), 1, "{errs:?}");
    let e = errs.into_iter().next().unwrap();
    (e.line, e.column, e.message, e.hint.unwrap_or_default())
}

#[test]
fn keep_alive_outside_mqtts_range_is_located_at_its_own_line() {
    let (line, col, message, hint) = only_error(&format!("{MINIMAL}keep_alive = \"500ms\"\n"));
    assert_eq!((line, col), (6, 14), "at keep_alive, not at url");
    assert_eq!(message, "keep_alive must be at least 1s");
    assert!(hint.contains("keep_alive = \"30s\""), "{hint}");

    let (line, col, message, hint) = only_error(&format!("{MINIMAL}keep_alive = \"65536s\"\n"));
    assert_eq!((line, col), (6, 14));
    assert_eq!(
        message,
        "keep_alive must be at most 65535s (got 18h 12m 16s)"
    );
    assert!(hint.contains("1s to 65535s"), "{hint}");

    let config = Config::parse(
        Path::new("test.toml"),
        &format!("{MINIMAL}keep_alive = \"65535s\"\n"),
    )
    .unwrap();
    assert_eq!(config.upstream.keep_alive, Duration::from_secs(65535));
}

#[test]
fn a_zero_read_or_connect_timeout_is_rejected_with_a_hint() {
    let sensor = "\n[[sensor]]\nid = \"w\"\ntransport = \"tcp\"\naddress = \"10.0.0.1:1\"\ncodec = \"lines\"\n";
    let (line, col, message, hint) =
        only_error(&format!("{MINIMAL}{sensor}read_timeout = \"0s\"\n"));
    assert_eq!(
        (line, col, message.as_str()),
        (12, 16, "read_timeout must be more than 0")
    );
    assert!(hint.contains("read_timeout = \"30s\""), "{hint}");

    let (line, col, message, hint) =
        only_error(&format!("{MINIMAL}{sensor}connect_timeout = \"0ms\"\n"));
    assert_eq!(
        (line, col, message.as_str()),
        (12, 19, "connect_timeout must be more than 0")
    );
    assert!(hint.contains("connect_timeout = \"10s\""), "{hint}");
}

#[test]
fn a_baud_beyond_u32_is_rejected_not_replaced_by_9600() {
    let sensor = "\n[[sensor]]\nid = \"gps\"\ntransport = \"serial\"\ndevice = \"/dev/ttyUSB0\"\ncodec = \"nmea\"\n";
    for bad in ["4294967296", "0", "-9600"] {
        let (line, col, message, hint) = only_error(&format!("{MINIMAL}{sensor}baud = {bad}\n"));
        assert_eq!((line, col), (12, 8), "{bad}");
        assert_eq!(message, format!("invalid baud {bad}"));
        assert!(hint.contains("baud = 115200"), "{hint}");
    }
    let text = format!("{MINIMAL}{sensor}baud = 4294967295\n");
    let config = Config::parse(Path::new("test.toml"), &text).unwrap();
    let RootChild::Sensor(gps) = &config.children[0] else {
        panic!("gps is a sensor")
    };
    assert!(
        matches!(gps.link, LinkConfig::Serial { baud: u32::MAX, .. }),
        "{:?}",
        gps.link
    );
}

#[test]
fn every_error_of_a_file_is_reported_at_once() {
    let text = "[gateway]\nid = \"bad id\"\n\n[upstream]\nurl = \"http://x\"\nkeepalive = \"1s\"\n\n[supervisor]\nintensity = 0\n";
    let lines: Vec<usize> = errors(text).iter().map(|e| e.line).collect();
    assert_eq!(lines, [2, 5, 6, 9]);
}

#[test]
fn check_exits_2_with_file_line_col_and_0_with_a_summary() {
    let bin = env!("CARGO_BIN_EXE_edgevisor");
    let dir = std::env::temp_dir().join(format!("edgevisor-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, format!("{MINIMAL}\n[supervisor]\nintensity = 0\n")).unwrap();
    let out = Command::new(bin)
        .args(["check", "--config"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "{}:8:13: intensity must be at least 1 (got 0)",
            bad.display()
        )),
        "{stderr}"
    );
    assert!(stderr.contains("hint: "), "{stderr}");

    let good = dir.join("good.toml");
    std::fs::write(&good, format!("{MINIMAL}\n[[sensor]]\nid = \"w\"\ntransport = \"tcp\"\naddress = \"10.0.0.1:1\"\ncodec = \"lines\"\n")).unwrap();
    let out = Command::new(bin)
        .args(["check", "--config"])
        .arg(&good)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("valid; gateway gw with 1 sensor(s)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("w                tcp 10.0.0.1:1"),
        "{stdout}"
    );

    let out = Command::new(bin)
        .args(["check", "--config"])
        .arg(dir.join("absent.toml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read the config file"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_client_certificate_needs_its_key_and_a_tls_broker() {
    let text = "[gateway]\nid = \"gw\"\n\n[upstream]\nurl = \"mqtt://127.0.0.1:1883\"\nclient_cert_file = \"/etc/edgevisor/client.crt\"\n";
    let errs = located(text);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!((errs[0].0, errs[0].1), (6, 20));
    assert_eq!(
        errs[0].2,
        "client_cert_file and client_key_file go together"
    );
    let text = format!("{text}client_key_file = \"/etc/edgevisor/client.key\"\n");
    let errs = located(&text);
    assert_eq!(errs[0].2, "a client certificate needs a TLS broker");
    let ok = text
        .replace("mqtt://", "mqtts://")
        .replace(":1883", ":8883");
    let config = Config::parse(Path::new("t.toml"), &ok).unwrap();
    let client = config.upstream.client_cert.unwrap();
    assert_eq!(client.key_file, Path::new("/etc/edgevisor/client.key"));
}

#[test]
fn a_replay_rate_out_of_range_is_located_with_the_fix_and_a_good_one_is_kept() {
    let bad = format!("{MINIMAL}replay_rate = 0\n");
    assert_eq!(
        located(&bad),
        [(
            6,
            15,
            "replay_rate must be 1 to 1000000 messages a second (got 0)".to_string()
        )]
    );
    let good = Config::parse(
        Path::new("t.toml"),
        &format!("{MINIMAL}replay_rate = 500\n"),
    )
    .unwrap();
    assert_eq!(good.upstream.replay_rate, Some(500));
    let unset = Config::parse(Path::new("t.toml"), MINIMAL).unwrap();
    assert_eq!(unset.upstream.replay_rate, None, "unlimited by default");
}
