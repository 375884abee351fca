//! The Modbus bus client against the harness's independent slave simulator,
//! over a real pty and a real TCP socket, without the gateway around it.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use edgevisor_devices::codec::CodecKind;
use edgevisor_devices::link::serial::SerialConfig;
use edgevisor_devices::link::EndReason;
use edgevisor_devices::modbus::{Bus, BusConfig, Endpoint, Reply, Request, Table};
use edgevisor_harness::sim::modbus::{Fault, FaultMode, ModbusSim, Table as SimTable};

fn rtu_bus(path: &std::path::Path) -> Bus {
    Bus::new(BusConfig {
        endpoint: Endpoint::Rtu(SerialConfig::new(path, 9600, CodecKind::Frame)),
        timeout: Duration::from_millis(200),
        retries: 0,
        delay_between: Duration::ZERO,
    })
}

fn input(unit: u8) -> Request {
    Request {
        unit,
        table: Table::Input,
        address: 0,
        count: 1,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unplugged_adapter_is_an_io_error_and_the_replugged_one_answers() {
    let dir = std::env::temp_dir().join(format!("ev-modbus-bus-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let link = dir.join("usb-RS485-if00-port0");
    let sim = ModbusSim::new(&[7]);
    sim.set_registers(7, SimTable::Input, 0, &[42]).unwrap();
    let rtu = sim.serve_rtu(Some(&link)).await.unwrap();
    let mut bus = rtu_bus(&link);
    assert_eq!(bus.read(&input(7)).await, Ok(Reply::Words(vec![42])));
    rtu.unplug().await;
    let unplugged = bus.read(&input(7)).await.unwrap_err();
    assert_eq!(unplugged.reason, EndReason::Io, "{unplugged:?}");
    let missing = bus.read(&input(7)).await.unwrap_err();
    assert_eq!(missing.reason, EndReason::Io, "{missing:?}");
    rtu.replug().await.unwrap();
    assert_eq!(bus.read(&input(7)).await, Ok(Reply::Words(vec![42])));
    let _ = std::fs::remove_dir_all(&dir);
}

fn holding(unit: u8) -> Request {
    Request {
        unit,
        table: Table::Holding,
        address: 0,
        count: 1,
    }
}

/// Units 1 and 2 hold 1 and 2 in holding register 0; unit 1 answers
/// `slow` late.
fn two_units(slow: Duration) -> ModbusSim {
    let sim = ModbusSim::new(&[1, 2]);
    sim.set_registers(1, SimTable::Holding, 0, &[1]).unwrap();
    sim.set_registers(2, SimTable::Holding, 0, &[2]).unwrap();
    sim.set_fault(1, Some((Fault::Slow(slow), FaultMode::Always)))
        .unwrap();
    sim
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_tcp_reply_is_dropped_and_counted() {
    // Generous times: CI also runs this under qemu-user, ten times slower.
    let sim = two_units(Duration::from_millis(1000));
    let server = sim.serve_tcp().await.unwrap();
    let mut bus = Bus::new(BusConfig {
        endpoint: Endpoint::Tcp {
            address: server.addr().to_string(),
            connect_timeout: Duration::from_secs(1),
        },
        timeout: Duration::from_millis(700),
        retries: 0,
        delay_between: Duration::ZERO,
    });
    let late = bus.read(&holding(1)).await.unwrap_err();
    assert_eq!(late.reason, EndReason::Timeout);
    // Unit 1's reply comes first on the connection, then unit 2's.
    assert_eq!(bus.read(&holding(2)).await, Ok(Reply::Words(vec![2])));
    assert_eq!(bus.late_replies(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_cut_off_half_way_leaves_no_reply_for_the_next() {
    let sim = two_units(Duration::from_millis(100));
    let rtu = sim.serve_rtu(None).await.unwrap();
    let mut bus = Bus::new(BusConfig {
        endpoint: Endpoint::Rtu(SerialConfig::new(
            rtu.path().unwrap(),
            9600,
            CodecKind::Frame,
        )),
        timeout: Duration::from_millis(500),
        retries: 1,
        delay_between: Duration::ZERO,
    });
    // Dropped while unit 1 is still answering (as a stop or an abort would).
    let cut = tokio::time::timeout(Duration::from_millis(20), bus.read(&holding(1))).await;
    assert!(cut.is_err());
    for _ in 0..3 {
        assert_eq!(bus.read(&holding(2)).await, Ok(Reply::Words(vec![2])));
    }
}
