//! Fuzzes the `nmea` decoder: arbitrary bytes in arbitrary reads.
#![no_main]

mod common;

use edgevisor_devices::codec::CodecKind;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| common::check(CodecKind::Nmea, data));
