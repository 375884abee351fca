//! Fuzzes the Modbus reply parsers: arbitrary bytes as the reply to a
//! request also taken from the input, over RTU and TCP. A parser must never
//! panic, and a reply it accepts must carry exactly what was asked for.
#![no_main]

use edgevisor_devices::modbus::frame::{parse_mbap, parse_pdu, parse_rtu, rtu_reply_len, MBAP_LEN};
use edgevisor_devices::modbus::{Reply, Request, Table};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [unit, table, a0, a1, c0, c1, reply @ ..] = data else {
        return;
    };
    let table = Table::ALL[usize::from(*table) % 4];
    let count = u16::from_be_bytes([*c0, *c1]) % table.max_per_read() + 1;
    let request = Request {
        unit: *unit,
        table,
        address: u16::from_be_bytes([*a0, *a1]),
        count,
    };
    let fits = |r: &Reply| match r {
        Reply::Bits(b) => b.len() == usize::from(count),
        Reply::Words(w) => w.len() == usize::from(count),
    };
    if let Ok(r) = parse_rtu(&request, reply) {
        assert!(fits(&r));
        assert_eq!(rtu_reply_len(reply), Some(reply.len()));
    }
    if let Ok(r) = parse_pdu(&request, reply) {
        assert!(fits(&r));
    }
    if let Some(head) = reply.get(..MBAP_LEN) {
        let head: &[u8; MBAP_LEN] = head.try_into().expect("seven bytes");
        if let Ok(m) = parse_mbap(head) {
            assert!(m.pdu_len >= 1 && m.pdu_len <= 253);
        }
    }
});
