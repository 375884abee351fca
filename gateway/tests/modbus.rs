//! Modbus buses end to end: the real binary polls the independent slave
//! simulator of the harness over a real TCP socket and a real pty, and
//! publishes to a real Mosquitto.
//!
//! - every type and byte order decodes to a table worked out by hand;
//! - a unit that never answers is quarantined while the other units on the
//!   bus keep their poll interval within 10 %;
//! - a late reply after a timeout is never taken as the answer to the next
//!   request (TCP: dropped by transaction id; RTU: refused as another
//!   unit's);
//! - an exception gives a crash report naming it, with both frames;
//! - an RTU adapter unplugged and re-plugged under the same by-id link gives
//!   a crash report, and polling resumes.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use edgevisor_harness::sim::modbus::{Fault, FaultMode, ModbusSim, Table};
use serde_json::{json, Value};
use support::{header, Gateway, Mosquitto, TempDir, Upstream};

/// The registers of the decode table: (address, words), all in the
/// holding table of unit 1.
const HOLDING: &[(u16, &[u16])] = &[
    (0, &[0xD431]),                          // uint16 54321
    (1, &[0xCFC7]),                          // int16 -12345
    (2, &[0x1234, 0x5678]),                  // uint32 305419896, ABCD
    (4, &[0x5678, 0x1234]),                  // the same, CDAB
    (6, &[0x3412, 0x7856]),                  // BADC
    (8, &[0x7856, 0x3412]),                  // DCBA
    (10, &[0xFFFF, 0xFFFE]),                 // int32 -2
    (12, &[0x4365, 0xCCCD]),                 // float32 229.8, ABCD
    (14, &[0xCCCD, 0x4365]),                 // CDAB
    (16, &[0x6543, 0xCDCC]),                 // BADC
    (18, &[0xCDCC, 0x6543]),                 // DCBA
    (20, &[0x0102, 0x0304, 0x0506, 0x0708]), // uint64 72623859790382856, ABCD
    (24, &[0x0708, 0x0506, 0x0304, 0x0102]), // CDAB
    (28, &[0x0201, 0x0403, 0x0605, 0x0807]), // BADC
    (32, &[0x0807, 0x0605, 0x0403, 0x0201]), // DCBA
    (36, &[0xFFFF, 0xFEE0, 0x8E04, 0xFB35]), // int64 -1234567890123
    (40, &[0xC093, 0x4A45, 0x6D5C, 0xFAAD]), // float64 -1234.5678, ABCD
    (44, &[0xADFA, 0x5C6D, 0x454A, 0x93C0]), // DCBA
    (48, &[0x5344, 0x4D31, 0x3230, 0x0000]), // string "SDM120" + NUL
    (52, &[2300]),                           // uint16 * 0.1 = 230
    (53, &[0xFE70]),                         // int16 -400 * 0.1 + 10 = -30
    (54, &[12345, 0]),                       // uint32 CDAB * 0.01 = 123.45
];

const MAP: &str = r#"registers = [
  { name = "u16", table = "holding", address = 0, type = "uint16" },
  { name = "i16", table = "holding", address = 1, type = "int16" },
  { name = "u32_abcd", table = "holding", address = 2, type = "uint32" },
  { name = "u32_cdab", table = "holding", address = 4, type = "uint32", order = "CDAB" },
  { name = "u32_badc", table = "holding", address = 6, type = "uint32", order = "BADC" },
  { name = "u32_dcba", table = "holding", address = 8, type = "uint32", order = "DCBA" },
  { name = "i32", table = "holding", address = 10, type = "int32" },
  { name = "f32_abcd", table = "holding", address = 12, type = "float32", order = "ABCD" },
  { name = "f32_cdab", table = "holding", address = 14, type = "float32", order = "CDAB" },
  { name = "f32_badc", table = "holding", address = 16, type = "float32", order = "BADC" },
  { name = "f32_dcba", table = "holding", address = 18, type = "float32", order = "DCBA" },
  { name = "u64_abcd", table = "holding", address = 20, type = "uint64" },
  { name = "u64_cdab", table = "holding", address = 24, type = "uint64", order = "CDAB" },
  { name = "u64_badc", table = "holding", address = 28, type = "uint64", order = "BADC" },
  { name = "u64_dcba", table = "holding", address = 32, type = "uint64", order = "DCBA" },
  { name = "i64", table = "holding", address = 36, type = "int64" },
  { name = "f64_abcd", table = "holding", address = 40, type = "float64" },
  { name = "f64_dcba", table = "holding", address = 44, type = "float64", order = "DCBA" },
  { name = "model", table = "holding", address = 48, type = "string", length = 4 },
  { name = "volts", table = "holding", address = 52, type = "uint16", scale = 0.1 },
  { name = "temp", table = "holding", address = 53, type = "int16", scale = 0.1, offset = 10 },
  { name = "energy", table = "holding", address = 54, type = "uint32", order = "CDAB", scale = 0.01 },
  { name = "input_f32", table = "input", address = 0, type = "float32" },
  { name = "relay0", table = "coil", address = 0, type = "bool" },
  { name = "relay1", table = "coil", address = 1, type = "bool" },
  { name = "relay2", table = "coil", address = 2, type = "bool" },
  { name = "door", table = "discrete", address = 0, type = "bool" },
]
"#;

fn expected_values() -> Value {
    json!({
        "u16": 54321, "i16": -12345,
        "u32_abcd": 305419896, "u32_cdab": 305419896, "u32_badc": 305419896, "u32_dcba": 305419896,
        "i32": -2,
        "f32_abcd": 229.8, "f32_cdab": 229.8, "f32_badc": 229.8, "f32_dcba": 229.8,
        "u64_abcd": 72623859790382856u64, "u64_cdab": 72623859790382856u64,
        "u64_badc": 72623859790382856u64, "u64_dcba": 72623859790382856u64,
        "i64": -1234567890123i64,
        "f64_abcd": -1234.5678, "f64_dcba": -1234.5678,
        "model": "SDM120",
        "volts": 230.0, "temp": -30.0, "energy": 123.45,
        "input_f32": 229.8,
        "relay0": true, "relay1": false, "relay2": true, "door": true,
    })
}

fn bus(id: &str, transport: &str, port_keys: &str, bus_keys: &str) -> String {
    format!(
        "\n[[sensor]]\nid = \"{id}\"\ntransport = \"{transport}\"\ncodec = \"modbus\"\n{port_keys}\n{bus_keys}\n"
    )
}

fn unit(id: &str, unit_id: u8, poll: &str, extra: &str, registers: &str) -> String {
    format!(
        "\n[[sensor.unit]]\nid = \"{id}\"\nunit_id = {unit_id}\npoll = \"{poll}\"\n{extra}\n{registers}\n"
    )
}

async fn online(upstream: &Upstream, gateway: &str) {
    let topic = format!("edgevisor/{gateway}/status");
    upstream
        .wait("online", 15, |m| {
            m.iter()
                .any(|m| m.topic == topic && m.json["state"] == "online")
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_type_and_byte_order_decodes_as_worked_out_by_hand() {
    let broker = Mosquitto::start().await.unwrap();
    let upstream = Upstream::connect(broker.port()).await;
    let sim = ModbusSim::new(&[1]);
    for (address, words) in HOLDING {
        sim.set_registers(1, Table::Holding, *address, words)
            .unwrap();
    }
    sim.set_registers(1, Table::Input, 0, &[0x4365, 0xCCCD])
        .unwrap();
    sim.set_bits(1, Table::Coils, 0, &[true, false, true])
        .unwrap();
    sim.set_bits(1, Table::Discrete, 0, &[true]).unwrap();
    let server = sim.serve_tcp().await.unwrap();
    let dir = TempDir::new("modbus-decode");
    let config = header("mb1", broker.port(), &dir.0.join("state"))
        + &bus(
            "meters",
            "modbus-tcp",
            &format!("address = \"{}\"", server.addr()),
            "timeout = \"500ms\"",
        )
        + &unit("m1", 1, "200ms", "", MAP);
    let _gateway = Gateway::start_in(dir, &config).await;
    online(&upstream, "mb1").await;
    upstream
        .wait("a reading of meters/m1", 10, |_| {
            !upstream.seqs("meters/m1").is_empty()
        })
        .await;
    let reading = &upstream.on("telemetry/meters/m1")[0];
    assert_eq!(reading.topic, "edgevisor/mb1/telemetry/meters/m1");
    assert_eq!(reading.json["sensor"], "meters/m1");
    assert_eq!(reading.json["codec"], "modbus");
    assert_eq!(reading.json["data"]["unit"], 1);
    assert_eq!(
        reading.json["data"]["values"],
        expected_values(),
        "{}",
        reading.raw
    );
    // The values keep the map's order.
    let names: Vec<&str> = reading
        .raw
        .split("\"values\":{")
        .nth(1)
        .unwrap()
        .split(',')
        .map(|kv| kv.split(':').next().unwrap().trim_matches('"'))
        .collect();
    assert_eq!(&names[..3], &["u16", "i16", "u32_abcd"]);
    // One request per table (holding 0..56, input, coils, discrete).
    assert_eq!(sim.counts(1).requests % 4, 0, "{:?}", sim.counts(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_unit_is_quarantined_and_the_others_keep_their_poll_interval() {
    let broker = Mosquitto::start().await.unwrap();
    let upstream = Upstream::connect(broker.port()).await;
    let sim = ModbusSim::new(&[1, 2, 3]);
    sim.set_fault(3, Some((Fault::Silent, FaultMode::Always)))
        .unwrap();
    let server = sim.serve_tcp().await.unwrap();
    let dir = TempDir::new("modbus-silent");
    let registers =
        "registers = [{ name = \"v\", table = \"holding\", address = 0, type = \"uint16\" }]";
    let config = header("mb2", broker.port(), &dir.0.join("state"))
        + &bus(
            "meters",
            "modbus-tcp",
            &format!("address = \"{}\"", server.addr()),
            "timeout = \"150ms\"\nretries = 1",
        )
        + &unit("m1", 1, "500ms", "", registers)
        + &unit("m2", 2, "500ms", "", registers)
        + &unit(
            "dead",
            3,
            "500ms",
            "intensity = 3\nperiod = \"60s\"\nquarantine_for = \"10m\"",
            registers,
        );
    let _gateway = Gateway::start_in(dir, &config).await;
    online(&upstream, "mb2").await;
    let start = tokio::time::Instant::now();
    let before = (sim.counts(1).replies, sim.counts(2).replies);
    upstream
        .wait("dead quarantined", 20, |_| {
            upstream
                .on("state/meters/dead")
                .iter()
                .any(|m| m.json["state"] == "quarantined")
        })
        .await;
    let crashes = upstream.on("crash/meters/dead");
    assert!(crashes.len() >= 3, "{crashes:?}");
    assert_eq!(crashes[0].json["reason"], "timeout");
    assert_eq!(crashes[0].json["path"], "root/meters/dead");
    assert!(
        crashes[0].json["error"]
            .as_str()
            .unwrap()
            .contains("of unit 3: no reply after 2 tries"),
        "{}",
        crashes[0].json["error"]
    );
    // Over a 10 s window that includes the crashes and the quarantine, the
    // live units are polled every 500 ms within 10 %: 20 polls, 18 to 22.
    tokio::time::sleep_until(start + Duration::from_secs(10)).await;
    let polls = (
        sim.counts(1).replies - before.0,
        sim.counts(2).replies - before.1,
    );
    assert!(
        (18..=22).contains(&polls.0) && (18..=22).contains(&polls.1),
        "polls in 10 s: {polls:?}"
    );
    assert!(upstream.on("crash/meters/m1").is_empty() && upstream.on("crash/meters/m2").is_empty());
}

/// Unit 1 answers 300 ms late to a bus whose timeout is 150 ms; unit 2's
/// holding register 0 is 2 and unit 1's is 1: if a late reply were ever
/// taken as unit 2's answer, unit 2 would report 1. The simulator, like
/// most devices, answers one request after the other, so unit 1's late
/// reply comes just before unit 2's.
async fn late_replies_are_never_answers(transport: &str, gateway_id: &str) {
    let broker = Mosquitto::start().await.unwrap();
    let upstream = Upstream::connect(broker.port()).await;
    let sim = ModbusSim::new(&[1, 2]);
    sim.set_registers(1, Table::Holding, 0, &[1]).unwrap();
    sim.set_registers(2, Table::Holding, 0, &[2]).unwrap();
    let tcp = transport == "modbus-tcp";
    // On RTU one poll in three is late: a unit late on every poll keeps a
    // device that queues requests (as the simulator does) busy for good,
    // and the line never goes quiet for anyone.
    let slow = Fault::Slow(Duration::from_millis(300));
    let mode = if tcp {
        FaultMode::Always
    } else {
        FaultMode::OneIn(3)
    };
    sim.set_fault(1, Some((slow, mode))).unwrap();
    let dir = TempDir::new("modbus-late");
    let (_tcp, _rtu, port_keys);
    if tcp {
        let server = sim.serve_tcp().await.unwrap();
        port_keys = format!("address = \"{}\"", server.addr());
        (_tcp, _rtu) = (Some(server), None);
    } else {
        let server = sim.serve_rtu(None).await.unwrap();
        port_keys = format!("device = \"{}\"", server.path().unwrap().display());
        (_tcp, _rtu) = (None, Some(server));
    }
    // RTU has no transaction id: a late reply that meets unit 2's request
    // is refused as unit 1's and the request tried again (retries = 1).
    let retries = if tcp { 0 } else { 1 };
    let registers =
        "registers = [{ name = \"v\", table = \"holding\", address = 0, type = \"uint16\" }]";
    let window = "intensity = 1000\nperiod = \"1s\"";
    let config = header(gateway_id, broker.port(), &dir.0.join("state"))
        + &bus(
            "bus",
            transport,
            &port_keys,
            &format!("timeout = \"150ms\"\nretries = {retries}"),
        )
        + &unit("slow", 1, "200ms", window, registers)
        + &unit("fast", 2, "200ms", window, registers);
    let _gateway = Gateway::start_in(dir, &config).await;
    online(&upstream, gateway_id).await;
    upstream
        .wait("unit 2 polled through unit 1's late replies", 30, |_| {
            upstream.seqs("bus/fast").len() >= 20 && sim.counts(1).faults >= 5
        })
        .await;
    for m in upstream.on("telemetry/bus/fast") {
        assert_eq!(
            m.json["data"]["values"]["v"], 2,
            "a late reply was taken as an answer: {}",
            m.raw
        );
    }
    for m in upstream.on("crash/bus/fast") {
        let (reason, error) = (
            m.json["reason"].as_str().unwrap(),
            m.json["error"].as_str().unwrap(),
        );
        if tcp {
            // Dropped by transaction id, never an error; unit 2 can only
            // time out behind unit 1's slow answer.
            assert_eq!(reason, "timeout", "{}", m.raw);
        } else {
            assert!(
                reason == "timeout" || error.contains("reply from unit 1"),
                "{}",
                m.raw
            );
        }
    }
    if tcp {
        // Every answer of unit 1 came after its request timed out.
        assert!(upstream.on("telemetry/bus/slow").is_empty());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_tcp_reply_is_dropped_by_its_transaction_id() {
    late_replies_are_never_answers("modbus-tcp", "mb3").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_rtu_reply_is_never_taken_for_the_next_units() {
    late_replies_are_never_answers("modbus-rtu", "mb4").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exception_is_named_and_both_frames_are_the_evidence() {
    let broker = Mosquitto::start().await.unwrap();
    let upstream = Upstream::connect(broker.port()).await;
    let sim = ModbusSim::new(&[1]);
    sim.set_fault(1, Some((Fault::Exception(2), FaultMode::Always)))
        .unwrap();
    let server = sim.serve_rtu(None).await.unwrap();
    let dir = TempDir::new("modbus-exception");
    let registers =
        "registers = [{ name = \"energy\", table = \"holding\", address = 0, type = \"uint32\" }]";
    let config = header("mb5", broker.port(), &dir.0.join("state"))
        + &bus(
            "meters",
            "modbus-rtu",
            &format!("device = \"{}\"", server.path().unwrap().display()),
            "",
        )
        + &unit("meter-1", 1, "1s", "", registers);
    let _gateway = Gateway::start_in(dir, &config).await;
    online(&upstream, "mb5").await;
    upstream
        .wait("a crash report", 10, |_| {
            !upstream.on("crash/meters/meter-1").is_empty()
        })
        .await;
    let report = &upstream.on("crash/meters/meter-1")[0].json;
    assert_eq!(report["reason"], "corrupt_frame");
    assert_eq!(report["sensor"], "meters/meter-1");
    assert_eq!(
        report["error"],
        "read holding registers (function 3) 0..2 of unit 1: exception 2 (illegal data address)"
    );
    // SPEC section 9's own example.
    assert_eq!(report["evidence_hex"], ">010300000002c40b<018302c0f1");
    // An exception is an answer: it is not tried again.
    assert_eq!(sim.counts(1).exceptions, sim.counts(1).requests);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unplugged_rtu_adapter_is_reported_and_polling_resumes_after_replug() {
    let broker = Mosquitto::start().await.unwrap();
    let upstream = Upstream::connect(broker.port()).await;
    let dir = TempDir::new("modbus-unplug");
    let link = dir.0.join("usb-FTDI_RS485-if00-port0");
    let sim = ModbusSim::new(&[7]);
    sim.set_registers(7, Table::Input, 0, &[42]).unwrap();
    let rtu = sim.serve_rtu(Some(&link)).await.unwrap();
    let registers =
        "registers = [{ name = \"v\", table = \"input\", address = 0, type = \"uint16\" }]";
    let config = header("mb6", broker.port(), &dir.0.join("state"))
        + &bus(
            "meters",
            "modbus-rtu",
            &format!("device = \"{}\"", link.display()),
            "timeout = \"200ms\"",
        )
        + &unit(
            "m7",
            7,
            "200ms",
            "intensity = 1000\nperiod = \"1s\"",
            registers,
        );
    let _gateway = Gateway::start_in(dir, &config).await;
    online(&upstream, "mb6").await;
    upstream
        .wait("readings", 10, |_| upstream.seqs("meters/m7").len() >= 3)
        .await;
    rtu.unplug().await;
    upstream
        .wait("a crash report for the unplug", 10, |_| {
            !upstream.on("crash/meters/m7").is_empty()
        })
        .await;
    let report = &upstream.on("crash/meters/m7")[0].json;
    assert!(
        ["io", "timeout"].contains(&report["reason"].as_str().unwrap()),
        "{report}"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = upstream.seqs("meters/m7").len();
    rtu.replug().await.unwrap();
    upstream
        .wait("readings after the replug", 10, |_| {
            upstream.seqs("meters/m7").len() >= before + 3
        })
        .await;
    assert!(support::gap_free(&upstream.seqs("meters/m7")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bus_added_by_a_reload_reports_its_units_as_sensors() {
    let broker = Mosquitto::start().await.unwrap();
    let upstream = Upstream::connect(broker.port()).await;
    let sim = ModbusSim::new(&[1]);
    sim.set_fault(1, Some((Fault::Exception(6), FaultMode::OneIn(3))))
        .unwrap();
    let server = sim.serve_tcp().await.unwrap();
    let dir = TempDir::new("modbus-reload");
    let head = header("mb7", broker.port(), &dir.0.join("state"));
    let gateway = Gateway::start_in(dir, &head).await;
    online(&upstream, "mb7").await;
    let registers =
        "registers = [{ name = \"v\", table = \"holding\", address = 0, type = \"uint16\" }]";
    gateway.rewrite(
        &(head
            + &bus(
                "meters",
                "modbus-tcp",
                &format!("address = \"{}\"", server.addr()),
                "",
            )
            + &unit(
                "m1",
                1,
                "100ms",
                "intensity = 1000\nperiod = \"1s\"",
                registers,
            )),
    );
    gateway.signal(nix::sys::signal::Signal::SIGHUP);
    upstream
        .wait("the new unit's readings, state and crashes", 15, |_| {
            !upstream.seqs("meters/m1").is_empty()
                && !upstream.on("state/meters/m1").is_empty()
                && !upstream.on("crash/meters/m1").is_empty()
        })
        .await;
    let crash = &upstream.on("crash/meters/m1")[0].json;
    assert_eq!(crash["path"], "root/meters/m1");
    assert!(
        crash["error"]
            .as_str()
            .unwrap()
            .contains("slave device busy"),
        "{crash}"
    );
}
