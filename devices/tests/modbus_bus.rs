//! The Modbus bus client against the harness's independent slave simulator,
//! over a real pty and a real TCP socket, without the gateway around it.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use edgevisor_devices::codec::CodecKind;
use edgevisor_devices::link::serial::SerialConfig;
use edgevisor_devices::link::EndReason;
use edgevisor_devices::modbus::{Bus, BusConfig, Endpoint, Reply, Request, Table};
use edgevisor_harness::sim::modbus::{ModbusSim, Table as SimTable};

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
