//! Modbus RTU framing for the simulated slave: unit id, PDU, CRC-16/MODBUS
//! sent low byte first. No I/O: the bus task feeds bytes and quiet gaps.
//!
//! A real slave ends a frame on 3.5 character times of silence; the
//! simulator does better where it can and worse where it must:
//! - a request whose length the function code fixes (1 to 6, or 15 and 16
//!   with their byte count) is taken as soon as it is complete, so several
//!   requests written back to back are all served;
//! - any other function's request is whatever arrived before a quiet gap.
//!
//! Corrupt means a bad CRC, or bytes that end in a quiet gap without making
//! a frame, or more than 256 bytes without one. Like a real slave, the
//! simulator never answers a corrupt frame: it drops everything up to the
//! next quiet gap and starts afresh after it, so the stream always
//! continues.

use crc::{Crc, CRC_16_MODBUS};

const CRC: Crc<u16> = Crc::<u16>::new(&CRC_16_MODBUS);

/// The longest RTU frame the specification allows.
const MAX_FRAME: usize = 256;

/// The RTU frame for `unit` and `pdu`; with `bad_crc` its CRC is wrong
/// (every bit flipped), for fault injection.
pub(crate) fn encode(unit: u8, pdu: &[u8], bad_crc: bool) -> Vec<u8> {
    let mut frame = Vec::with_capacity(pdu.len() + 3);
    frame.push(unit);
    frame.extend_from_slice(pdu);
    let crc = CRC.checksum(&frame);
    let crc = if bad_crc { !crc } else { crc };
    frame.extend_from_slice(&crc.to_le_bytes());
    frame
}

fn crc_ok(frame: &[u8]) -> bool {
    match frame.len().checked_sub(2) {
        Some(n) if n >= 2 => CRC.checksum(&frame[..n]).to_le_bytes() == frame[n..],
        _ => false,
    }
}

/// The whole length of the request starting `buf`, when its function code
/// fixes it and enough of it has arrived to tell.
fn request_len(buf: &[u8]) -> Option<usize> {
    match *buf.get(1)? {
        1..=6 => Some(8),
        15 | 16 => buf.get(6).map(|&n| 9 + usize::from(n)),
        _ => None,
    }
}

/// Cuts the byte stream from the master into request frames.
#[derive(Debug, Default)]
pub(crate) struct RtuFramer {
    buf: Vec<u8>,
    /// Inside a corrupt frame: drop bytes until the line goes quiet.
    skipping: bool,
    discarded: u64,
}

impl RtuFramer {
    /// True when nothing is pending, so no quiet gap needs timing.
    pub(crate) fn is_idle(&self) -> bool {
        self.buf.is_empty() && !self.skipping
    }

    /// Takes bytes from the line; returns the complete requests (unit id
    /// and PDU, CRC checked and removed) they finish.
    pub(crate) fn push(&mut self, bytes: &[u8]) -> Vec<Vec<u8>> {
        let mut frames = Vec::new();
        if self.skipping {
            return frames;
        }
        self.buf.extend_from_slice(bytes);
        while let Some(n) = request_len(&self.buf) {
            if self.buf.len() < n {
                break;
            }
            if !crc_ok(&self.buf[..n]) {
                self.skip();
                return frames;
            }
            frames.push(self.buf[..n - 2].to_vec());
            self.buf.drain(..n);
        }
        if self.buf.len() > MAX_FRAME {
            self.skip();
        }
        frames
    }

    /// The line has been quiet: what is pending is a request of a
    /// function whose length is not fixed, or it is corrupt.
    pub(crate) fn quiet(&mut self) -> Option<Vec<u8>> {
        self.skipping = false;
        let mut pending = std::mem::take(&mut self.buf);
        if crc_ok(&pending) {
            pending.truncate(pending.len() - 2);
            return Some(pending);
        }
        if !pending.is_empty() {
            self.discarded += 1;
        }
        None
    }

    /// Corrupt frames dropped so far.
    pub(crate) fn discarded(&self) -> u64 {
        self.discarded
    }

    fn skip(&mut self) {
        self.buf.clear();
        self.skipping = true;
        self.discarded += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const READ: [u8; 8] = [0x01, 0x03, 0x00, 0x00, 0x00, 0x02, 0xc4, 0x0b];

    #[test]
    fn crc_is_sent_low_byte_first() {
        assert_eq!(encode(1, &READ[1..6], false), READ);
        assert_eq!(&encode(1, &READ[1..6], true)[6..], [!0xc4, !0x0b]);
    }

    #[test]
    fn fixed_length_requests_split_at_every_offset() {
        let stream: Vec<u8> = [READ, READ].concat();
        for cut in 0..=stream.len() {
            let mut f = RtuFramer::default();
            let mut got = f.push(&stream[..cut]);
            got.extend(f.push(&stream[cut..]));
            assert_eq!(got, vec![READ[..6].to_vec(); 2], "cut at {cut}");
            assert!(f.is_idle());
        }
    }

    #[test]
    fn write_multiple_length_comes_from_its_byte_count() {
        let req = encode(7, &[0x10, 0, 1, 0, 1, 2, 0xab, 0xcd], false);
        let mut f = RtuFramer::default();
        assert!(f.push(&req[..6]).is_empty());
        assert_eq!(f.push(&req[6..]), vec![req[..req.len() - 2].to_vec()]);
    }

    #[test]
    fn other_functions_end_at_a_quiet_gap() {
        let req = encode(1, &[0x2b, 0x0e, 0x01, 0x00], false);
        let mut f = RtuFramer::default();
        assert!(f.push(&req).is_empty());
        assert_eq!(f.quiet(), Some(req[..req.len() - 2].to_vec()));
        assert_eq!(f.discarded(), 0);
    }

    #[test]
    fn bad_crc_drops_everything_until_quiet() {
        let mut bad = READ;
        bad[7] ^= 1;
        let mut f = RtuFramer::default();
        assert!(f.push(&bad).is_empty());
        assert!(f.push(&READ).is_empty(), "still inside the corrupt frame");
        assert_eq!(f.quiet(), None);
        assert_eq!(f.push(&READ), vec![READ[..6].to_vec()]);
        assert_eq!(f.discarded(), 1);
    }

    #[test]
    fn garbage_is_dropped_at_the_quiet_gap_or_when_too_long() {
        let mut f = RtuFramer::default();
        assert!(f.push(&[0xff, 0xfe, 0x00]).is_empty());
        assert!(!f.is_idle());
        assert_eq!(f.quiet(), None);
        assert!(f.is_idle());
        assert!(f.push(&[0x01, 0x42]).is_empty());
        assert!(f.push(&[0u8; MAX_FRAME]).is_empty());
        assert_eq!(f.quiet(), None);
        assert_eq!(f.discarded(), 2);
        assert_eq!(f.push(&READ), vec![READ[..6].to_vec()]);
    }
}
