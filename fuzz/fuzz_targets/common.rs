//! Shared by every fuzz target: turns the fuzzer's bytes into a codec
//! configuration, a split of the input into reads, and the input itself,
//! then checks the decoder contract (no panic, never more than
//! `max_buffered` bytes kept, every reading a JSON object, evidence capped).

use edgevisor_devices::codec::testing::decode_chunks;
use edgevisor_devices::codec::{ChecksumPolicy, CodecConfig, CodecKind};

pub fn check(kind: CodecKind, data: &[u8]) {
    if data.len() < 4 {
        return;
    }
    let (head, input) = data.split_at(4);
    // Small limits reach the over-length paths; 0 would be legal too.
    let max_frame = 1 + (u16::from_le_bytes([head[0], head[1]]) as usize % 600);
    let checksum = if head[2] & 1 == 0 {
        ChecksumPolicy::Required
    } else {
        ChecksumPolicy::Optional
    };
    let config = CodecConfig {
        kind,
        max_frame,
        checksum,
    };
    // Split the input into reads of pseudo-random sizes seeded by head[3].
    let mut chunks = Vec::new();
    let mut rest = input;
    let mut seed = u32::from(head[3]) | 1;
    while !rest.is_empty() {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        let n = 1 + (seed as usize % 97).min(rest.len() - 1);
        let (a, b) = rest.split_at(n);
        chunks.push(a);
        rest = b;
    }
    if let Err(violation) = decode_chunks(&config, chunks.iter().copied()) {
        panic!("{kind} (max_frame {max_frame}): {violation}");
    }
    // The same bytes in one read must not break the contract either.
    if let Err(violation) = decode_chunks(&config, [input]) {
        panic!("{kind} (max_frame {max_frame}, one read): {violation}");
    }
}
