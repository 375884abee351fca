//! What a simulated sensor sends: numbered readings in each codec, and the
//! faults it can be told to inject.

use std::time::Duration;

use bytes::BytesMut;
use tokio_util::codec::Encoder;

use edgevisor_devices::codec::{
    ChecksumPolicy, CodecKind, FrameCodec, JsonCodec, LinesCodec, NmeaCodec,
};
use edgevisor_devices::Reading;

/// A fault to inject, sent to a running simulator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// One frame with a bad checksum (NMEA `*HH`, frame CRC); for `lines`
    /// a line of invalid UTF-8, for `json` a line of invalid JSON.
    BadChecksum,
    /// This many garbage bytes (for `frame`, bytes without a sync pair,
    /// which the decoder skips; for the others, one corrupt line).
    Garbage(usize),
    /// One frame longer than `max_frame`.
    Overlong,
    /// Send nothing for this long.
    Silence(Duration),
    /// Drop the connection abruptly (TCP, MQTT; for serial, same as `Remove`).
    Disconnect,
    /// Write the next `readings` readings one byte at a time, `byte_delay` apart.
    SlowDrip {
        /// How many readings to drip.
        readings: u32,
        /// Pause after each byte.
        byte_delay: Duration,
    },
    /// Serial: unplug (close the pty and remove the symlink).
    Remove,
    /// Serial: plug back in (a new pty, the symlink re-pointed at it).
    Replug,
}

/// Encodes numbered readings and corrupt frames for one codec.
#[derive(Debug, Clone, Copy)]
pub struct ReadingGen {
    /// The codec the sensor speaks.
    pub codec: CodecKind,
    /// The limit the receiving side enforces (for `Overlong`).
    pub max_frame: usize,
}

impl ReadingGen {
    /// A generator for `codec` with its SPEC default `max_frame`.
    pub fn new(codec: CodecKind) -> Self {
        ReadingGen {
            codec,
            max_frame: codec.default_max_frame(),
        }
    }

    fn temp(seq: u64) -> f64 {
        15.0 + (seq % 100) as f64 / 10.0
    }

    /// The wire bytes of reading number `seq`; the sequence number is in
    /// its data (see [`seq_of`]).
    pub fn reading(&self, seq: u64) -> Vec<u8> {
        let mut out = BytesMut::new();
        let t = Self::temp(seq);
        // Encoding these fixed shapes cannot fail; an empty frame would show up in tests.
        let _ = match self.codec {
            CodecKind::Lines => LinesCodec::new(usize::MAX)
                .encode(format!("seq={seq} temp={t:.1}").as_str(), &mut out),
            CodecKind::Json => JsonCodec::new(usize::MAX).encode(
                format!("{{\"seq\":{seq},\"temp\":{t:.1}}}").as_str(),
                &mut out,
            ),
            CodecKind::Nmea => NmeaCodec::new(usize::MAX, ChecksumPolicy::Required).encode(
                format!("$GPGGA,{seq},4807.038,N,01131.000,E,1,08,0.9,{t:.1},M,46.9,M,,").as_str(),
                &mut out,
            ),
            CodecKind::Frame => {
                let mut payload = seq.to_be_bytes().to_vec();
                payload.extend((0u8..24).map(|i| 0x10 + i));
                FrameCodec::new(4096).encode(payload.as_slice(), &mut out)
            }
        };
        out.to_vec()
    }

    /// The wire bytes of a corruption fault; `None` for faults that are not
    /// bytes.
    pub fn corrupt(&self, fault: Fault) -> Option<Vec<u8>> {
        let max = self.max_frame;
        Some(match (fault, self.codec) {
            (Fault::BadChecksum, CodecKind::Lines) => b"seq=bad \xff\xfe\n".to_vec(),
            (Fault::BadChecksum, CodecKind::Json) => b"{\"seq\":\n".to_vec(),
            (Fault::BadChecksum, CodecKind::Nmea) => {
                let mut s = self.reading(0);
                let at = s.len() - 3;
                s[at] = if s[at] == b'0' { b'1' } else { b'0' };
                s
            }
            (Fault::BadChecksum, CodecKind::Frame) => {
                let mut f = self.reading(0);
                let last = f.len() - 1;
                f[last] ^= 0xFF;
                f
            }
            (Fault::Garbage(n), CodecKind::Lines) => [vec![0xFF; n.max(1)], vec![b'\n']].concat(),
            (Fault::Garbage(n), CodecKind::Json) => [vec![b'x'; n.max(1)], vec![b'\n']].concat(),
            (Fault::Garbage(n), CodecKind::Nmea) => {
                [vec![b'#'; n.max(1)], b"\r\n".to_vec()].concat()
            }
            (Fault::Garbage(n), CodecKind::Frame) => {
                (0..n).map(|_| fastrand::u8(0..0xA5)).collect()
            }
            (Fault::Overlong, CodecKind::Lines) => [vec![b'x'; max + 10], vec![b'\n']].concat(),
            (Fault::Overlong, CodecKind::Json) => {
                format!("{{\"pad\":\"{}\"}}\n", "x".repeat(max)).into_bytes()
            }
            (Fault::Overlong, CodecKind::Nmea) => {
                format!("$GPTXT,{}*00\r\n", "x".repeat(max)).into_bytes()
            }
            (Fault::Overlong, CodecKind::Frame) => {
                let len = (max + 1).min(u16::MAX as usize);
                let mut f = vec![0xA5, 0x5A, 0x01];
                f.extend_from_slice(&(len as u16).to_be_bytes());
                f.extend(std::iter::repeat_n(0u8, len + 2));
                f
            }
            _ => return None,
        })
    }
}

/// The sequence number a simulated reading carries, for accounting.
pub fn seq_of(codec: CodecKind, reading: &Reading) -> Option<u64> {
    let v: serde_json::Value = serde_json::from_str(reading.data_json()).ok()?;
    seq_in_data(codec, &v)
}

/// The sequence number in a reading's data object, as it arrives upstream
/// in a telemetry payload's `data`.
pub fn seq_in_data(codec: CodecKind, v: &serde_json::Value) -> Option<u64> {
    match codec {
        CodecKind::Lines => v["text"]
            .as_str()?
            .strip_prefix("seq=")?
            .split(' ')
            .next()?
            .parse()
            .ok(),
        CodecKind::Json => v["seq"].as_u64(),
        CodecKind::Nmea => v["fields"].get(0)?.as_str()?.parse().ok(),
        CodecKind::Frame => {
            use base64::Engine as _;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(v["payload_b64"].as_str()?)
                .ok()?;
            Some(u64::from_be_bytes(bytes.get(..8)?.try_into().ok()?))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use edgevisor_devices::codec::testing::{decode_chunks, Outcome};
    use edgevisor_devices::codec::CodecConfig;

    #[test]
    fn readings_decode_with_their_seq_and_faults_are_corrupt() {
        for kind in CodecKind::ALL {
            let g = ReadingGen::new(kind);
            let mut dec = CodecConfig::new(kind).decoder();
            let mut buf = BytesMut::from(&g.reading(17)[..]);
            let r = tokio_util::codec::Decoder::decode(&mut dec, &mut buf)
                .expect("valid")
                .expect("one reading");
            assert_eq!(seq_of(kind, &r), Some(17), "{kind}");
            for fault in [
                Fault::BadChecksum,
                Fault::Garbage(10),
                Fault::Garbage(5000),
                Fault::Overlong,
            ] {
                let bytes = g.corrupt(fault).expect("bytes");
                let input = [bytes, g.reading(18)].concat();
                let out =
                    decode_chunks(&CodecConfig::new(kind), [input.as_slice()]).expect("contract");
                let corrupt = out
                    .iter()
                    .filter(|o| matches!(o, Outcome::Corrupt(_)))
                    .count();
                let want =
                    usize::from(!(kind == CodecKind::Frame && matches!(fault, Fault::Garbage(_))));
                assert!(corrupt >= want, "{kind} {fault:?}: {out:?}");
                assert!(
                    matches!(out.last(), Some(Outcome::Reading(_))),
                    "{kind} {fault:?} resync: {out:?}"
                );
            }
        }
    }
}
