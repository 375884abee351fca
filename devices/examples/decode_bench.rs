//! Decode throughput of every codec, printed as `name value unit` lines.
//!
//! Builds 64 MiB of valid frames per codec (realistic sizes: NMEA GGA/RMC
//! sentences, `key=value` lines, 100-200 byte frame payloads and JSON
//! objects), then feeds them to a fresh decoder in 64 KiB reads, as a link
//! would, turning every frame into a `Reading`. Run with
//! `cargo run --release -p edgevisor-devices --example decode_bench`.

use std::time::Instant;

use bytes::BytesMut;
use edgevisor_devices::codec::{
    CodecConfig, CodecKind, FrameCodec, JsonCodec, LinesCodec, NmeaCodec,
};
use tokio_util::codec::{Decoder, Encoder};

const TOTAL: usize = 64 << 20;
const READ: usize = 64 << 10;

fn input(kind: CodecKind) -> (Vec<u8>, usize) {
    let mut out = BytesMut::with_capacity(TOTAL + 4096);
    let mut n = 0usize;
    let mut rng = fastrand::Rng::with_seed(7);
    while out.len() < TOTAL {
        let ok = match kind {
            CodecKind::Lines => {
                let line = format!(
                    "seq={n} temp={:.2} hum={:.1} pressure={:.1} node=barn-{}",
                    rng.f64() * 40.0,
                    rng.f64() * 100.0,
                    950.0 + rng.f64() * 100.0,
                    n % 17
                );
                LinesCodec::new(4096)
                    .encode(line.as_str(), &mut out)
                    .is_ok()
            }
            CodecKind::Nmea => {
                let s = if n % 2 == 0 {
                    format!(
                        "$GPGGA,{:06}.00,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,",
                        n % 235959
                    )
                } else {
                    format!(
                        "$GPRMC,{:06}.00,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W",
                        n % 235959
                    )
                };
                NmeaCodec::new(256, Default::default())
                    .encode(s.as_str(), &mut out)
                    .is_ok()
            }
            CodecKind::Frame => {
                let len = 100 + rng.usize(0..=100);
                let payload: Vec<u8> = (0..len).map(|_| rng.u8(..)).collect();
                FrameCodec::new(4096)
                    .encode(payload.as_slice(), &mut out)
                    .is_ok()
            }
            CodecKind::Json => {
                let obj = format!(
                    "{{\"seq\":{n},\"device\":\"zigbee-{}\",\"temperature\":{:.2},\"humidity\":{:.1},\"battery\":{},\"linkquality\":{},\"state\":\"ON\",\"tags\":[\"barn\",\"north\"]}}",
                    n % 64, rng.f64() * 40.0, rng.f64() * 100.0, rng.u8(0..=100), rng.u8(..)
                );
                JsonCodec::new(4096).encode(obj.as_str(), &mut out).is_ok()
            }
        };
        if !ok {
            eprintln!("bench: could not encode a {kind} frame");
            std::process::exit(1);
        }
        n += 1;
    }
    (out.to_vec(), n)
}

fn run(kind: CodecKind, data: &[u8]) -> (f64, usize, usize) {
    let mut dec = CodecConfig::new(kind).decoder();
    let mut buf = BytesMut::with_capacity(READ * 2);
    let (mut readings, mut bytes_out) = (0usize, 0usize);
    let start = Instant::now();
    for chunk in data.chunks(READ) {
        buf.extend_from_slice(chunk);
        loop {
            match dec.decode(&mut buf) {
                Ok(Some(r)) => {
                    readings += 1;
                    bytes_out += r.data_json().len();
                }
                Ok(None) => break,
                Err(e) => {
                    eprintln!("bench: {kind} decode error on valid input: {e}");
                    std::process::exit(1);
                }
            }
        }
    }
    (start.elapsed().as_secs_f64(), readings, bytes_out)
}

fn main() {
    let only: Option<String> = std::env::args().nth(1);
    for kind in CodecKind::ALL {
        if only.as_deref().is_some_and(|o| o != kind.as_str()) {
            continue;
        }
        let (data, frames) = input(kind);
        let mut best = f64::MAX;
        for _ in 0..3 {
            let (secs, readings, _) = run(kind, &data);
            if readings != frames {
                eprintln!("bench: {kind} decoded {readings} of {frames} frames");
                std::process::exit(1);
            }
            best = best.min(secs);
        }
        let mbs = data.len() as f64 / best / 1e6;
        println!("decode_{kind} {mbs:.1} MB/s");
        println!(
            "decode_{kind}_readings {:.2} M/s",
            frames as f64 / best / 1e6
        );
    }
}
