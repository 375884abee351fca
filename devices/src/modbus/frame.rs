//! Modbus frames for the read functions 1 to 4: requests built, replies
//! checked against the request they answer (unit, function, length) and
//! decoded. RTU frames end in a CRC-16 (low byte first); TCP frames start
//! with an MBAP header whose transaction id pairs a reply with its request.
//!
//! A reply that does not fit its request is never taken as its answer: it
//! is an error, whatever it carries.

use crc::{Crc, CRC_16_MODBUS};

use super::map::{Read, Table};

const CRC16: Crc<u16> = Crc::<u16>::new(&CRC_16_MODBUS);

/// Length of an MBAP header (transaction, protocol, length, unit).
pub const MBAP_LEN: usize = 7;
/// Longest Modbus PDU (function code and data).
pub const MAX_PDU: usize = 253;

/// One read request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request {
    /// The unit (slave) addressed.
    pub unit: u8,
    /// Which table is read.
    pub table: Table,
    /// First address.
    pub address: u16,
    /// Registers or bits read.
    pub count: u16,
}

impl Request {
    /// The request for one planned read of `unit`.
    pub fn read(unit: u8, read: &Read) -> Self {
        Request {
            unit,
            table: read.table,
            address: read.address,
            count: read.count,
        }
    }

    /// The function code.
    pub fn function(&self) -> u8 {
        self.table.read_function()
    }

    /// Function, address, count.
    pub fn pdu(&self) -> [u8; 5] {
        let [a0, a1] = self.address.to_be_bytes();
        let [c0, c1] = self.count.to_be_bytes();
        [self.function(), a0, a1, c0, c1]
    }

    /// The data bytes a normal reply carries.
    pub fn reply_bytes(&self) -> usize {
        if self.table.is_bits() {
            usize::from(self.count).div_ceil(8)
        } else {
            usize::from(self.count) * 2
        }
    }

    /// The request as an RTU frame: unit, PDU, CRC.
    pub fn rtu(&self) -> Vec<u8> {
        let mut frame = Vec::with_capacity(8);
        frame.push(self.unit);
        frame.extend_from_slice(&self.pdu());
        let crc = CRC16.checksum(&frame);
        frame.extend_from_slice(&crc.to_le_bytes());
        frame
    }

    /// The request as a TCP frame with transaction id `tid`.
    pub fn tcp(&self, tid: u16) -> Vec<u8> {
        let mut frame = Vec::with_capacity(12);
        frame.extend_from_slice(&tid.to_be_bytes());
        frame.extend_from_slice(&[0, 0, 0, 6, self.unit]);
        frame.extend_from_slice(&self.pdu());
        frame
    }

    /// "read holding registers 342..344 of unit 1", for error messages.
    pub fn describe(&self) -> String {
        let what = match self.table {
            Table::Coil => "read coils",
            Table::Discrete => "read discrete inputs",
            Table::Input => "read input registers",
            Table::Holding => "read holding registers",
        };
        let end = u32::from(self.address) + u32::from(self.count);
        format!(
            "{what} (function {}) {}..{end} of unit {}",
            self.function(),
            self.address,
            self.unit
        )
    }
}

/// What a good reply carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// Coils or discrete inputs, exactly as many as asked for.
    Bits(Vec<bool>),
    /// Registers, exactly as many as asked for.
    Words(Vec<u16>),
}

/// Why a reply is not an answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplyError {
    /// The unit answered with an exception.
    #[error("exception {code} ({})", exception_name(*code))]
    Exception {
        /// The exception code.
        code: u8,
    },
    /// The reply is malformed or answers another request.
    #[error("{0}")]
    Corrupt(String),
    /// The bytes are not Modbus TCP at all: the stream lost its framing.
    #[error("{0}")]
    Framing(String),
}

/// The name of an exception code, as the Modbus specification gives it.
pub fn exception_name(code: u8) -> &'static str {
    match code {
        1 => "illegal function",
        2 => "illegal data address",
        3 => "illegal data value",
        4 => "slave device failure",
        5 => "acknowledge",
        6 => "slave device busy",
        7 => "negative acknowledge",
        8 => "memory parity error",
        10 => "gateway path unavailable",
        11 => "gateway target device failed to respond",
        _ => "unknown exception",
    }
}

/// Checks that `pdu` (function code onwards) answers `request` and decodes it.
pub fn parse_pdu(request: &Request, pdu: &[u8]) -> Result<Reply, ReplyError> {
    let corrupt = |m: String| Err(ReplyError::Corrupt(m));
    let Some(&function) = pdu.first() else {
        return corrupt("empty reply".into());
    };
    if function == request.function() | 0x80 {
        return match pdu {
            [_, code] => Err(ReplyError::Exception { code: *code }),
            _ => corrupt(format!("exception reply of {} bytes, want 2", pdu.len())),
        };
    }
    if function != request.function() {
        return corrupt(format!(
            "reply has function {function}, the request function {}",
            request.function()
        ));
    }
    let want = request.reply_bytes();
    let count = pdu.get(1).map(|&n| usize::from(n));
    if count != Some(want) || pdu.len() != want + 2 {
        return corrupt(format!(
            "reply carries {} data bytes, want {want}",
            pdu.len().saturating_sub(2)
        ));
    }
    let data = &pdu[2..];
    Ok(if request.table.is_bits() {
        Reply::Bits(
            (0..usize::from(request.count))
                .map(|i| data[i / 8] & (1 << (i % 8)) != 0)
                .collect(),
        )
    } else {
        Reply::Words(
            data.chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect(),
        )
    })
}

/// The full length of an RTU reply whose first bytes are `head`, once at
/// least three bytes are in: exceptions are 5 bytes, reads 5 plus their
/// byte count. `None` while fewer than three bytes are in.
pub fn rtu_reply_len(head: &[u8]) -> Option<usize> {
    match head {
        [_, function, _, ..] if function & 0x80 != 0 => Some(5),
        [_, _, count, ..] => Some(5 + usize::from(*count)),
        _ => None,
    }
}

/// Checks the first three bytes of an RTU reply against `request` before
/// the rest arrives, so that a reply from another unit, for another
/// function or of another length fails at once instead of at the timeout.
pub fn check_rtu_head(request: &Request, head: &[u8]) -> Result<(), ReplyError> {
    let [unit, function, count, ..] = head else {
        return Ok(());
    };
    if *unit != request.unit {
        return Err(ReplyError::Corrupt(format!(
            "reply from unit {unit}, the request went to unit {}",
            request.unit
        )));
    }
    if *function == request.function() | 0x80 {
        return Ok(());
    }
    if *function != request.function() {
        return Err(ReplyError::Corrupt(format!(
            "reply has function {function}, the request function {}",
            request.function()
        )));
    }
    if usize::from(*count) != request.reply_bytes() {
        return Err(ReplyError::Corrupt(format!(
            "reply carries {count} data bytes, want {}",
            request.reply_bytes()
        )));
    }
    Ok(())
}

/// Checks a complete RTU reply frame (CRC, unit) against `request` and
/// decodes it.
pub fn parse_rtu(request: &Request, frame: &[u8]) -> Result<Reply, ReplyError> {
    if frame.len() < 4 {
        return Err(ReplyError::Corrupt(format!(
            "reply of {} bytes is too short",
            frame.len()
        )));
    }
    let (body, crc) = frame.split_at(frame.len() - 2);
    let want = CRC16.checksum(body);
    let got = u16::from_le_bytes([crc[0], crc[1]]);
    if want != got {
        return Err(ReplyError::Corrupt(format!(
            "bad crc: want {want:04x} got {got:04x}"
        )));
    }
    if body[0] != request.unit {
        return Err(ReplyError::Corrupt(format!(
            "reply from unit {}, the request went to unit {}",
            body[0], request.unit
        )));
    }
    parse_pdu(request, &body[1..])
}

/// The MBAP header of a TCP frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mbap {
    /// Pairs a reply with its request.
    pub transaction: u16,
    /// The unit byte.
    pub unit: u8,
    /// Bytes after the header (the PDU).
    pub pdu_len: usize,
}

/// Reads an MBAP header; an error means the stream is not Modbus TCP (or
/// lost its framing) and must be reconnected.
pub fn parse_mbap(head: &[u8; MBAP_LEN]) -> Result<Mbap, ReplyError> {
    let protocol = u16::from_be_bytes([head[2], head[3]]);
    let length = usize::from(u16::from_be_bytes([head[4], head[5]]));
    if protocol != 0 || !(2..=MAX_PDU + 1).contains(&length) {
        return Err(ReplyError::Framing(format!(
            "not a Modbus TCP header (protocol {protocol}, length {length})"
        )));
    }
    Ok(Mbap {
        transaction: u16::from_be_bytes([head[0], head[1]]),
        unit: head[6],
        pdu_len: length - 1,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn holding(unit: u8, address: u16, count: u16) -> Request {
        Request {
            unit,
            table: Table::Holding,
            address,
            count,
        }
    }

    #[test]
    fn requests_match_the_spec_example() {
        assert_eq!(hex::encode(holding(1, 0, 2).rtu()), "010300000002c40b");
        assert_eq!(
            hex::encode(holding(1, 0, 2).tcp(0x0102)),
            "010200000006010300000002"
        );
    }

    #[test]
    fn the_spec_example_exception_is_named() {
        let reply = hex::decode("018302c0f1").unwrap();
        let err = parse_rtu(&holding(1, 0, 2), &reply).unwrap_err();
        assert_eq!(err.to_string(), "exception 2 (illegal data address)");
        assert_eq!(rtu_reply_len(&reply), Some(5));
    }

    #[test]
    fn a_reply_for_another_request_is_refused() {
        let req = holding(1, 0, 2);
        let mut good = vec![1, 3, 4, 0x12, 0x34, 0x56, 0x78];
        let crc = CRC16.checksum(&good);
        good.extend_from_slice(&crc.to_le_bytes());
        assert_eq!(
            parse_rtu(&req, &good),
            Ok(Reply::Words(vec![0x1234, 0x5678]))
        );
        assert!(parse_rtu(&holding(2, 0, 2), &good).is_err(), "wrong unit");
        assert!(parse_rtu(&holding(1, 0, 1), &good).is_err(), "wrong length");
        let mut bad = good.clone();
        bad[3] ^= 1;
        assert!(
            matches!(parse_rtu(&req, &bad), Err(ReplyError::Corrupt(m)) if m.starts_with("bad crc"))
        );
        let input = Request {
            table: Table::Input,
            ..req
        };
        assert!(parse_rtu(&input, &good).is_err(), "wrong function");
    }

    proptest::proptest! {
        /// Whatever comes back, parsing never panics, and a reply taken as
        /// the answer carries exactly what was asked for (the fuzz target
        /// `modbus_reply` digs deeper).
        #[test]
        fn any_bytes_parse_without_panic_and_answers_fit(
            unit in 0u8..=255, t in 0usize..4, count in 1u16..=125,
            reply in proptest::collection::vec(0u8..=255, 0..300),
        ) {
            let request = Request { unit, table: Table::ALL[t], address: 0, count };
            for parsed in [parse_rtu(&request, &reply), parse_pdu(&request, &reply)] {
                if let Ok(Reply::Words(w)) = &parsed { proptest::prop_assert_eq!(w.len(), usize::from(count)); }
                if let Ok(Reply::Bits(b)) = &parsed { proptest::prop_assert_eq!(b.len(), usize::from(count)); }
            }
        }
    }

    #[test]
    fn bits_unpack_low_bit_first() {
        let req = Request {
            unit: 1,
            table: Table::Coil,
            address: 0,
            count: 10,
        };
        let reply = parse_pdu(&req, &[1, 2, 0b1000_0101, 0b10]).unwrap();
        let Reply::Bits(bits) = reply else { panic!() };
        let on: Vec<usize> = (0..10).filter(|&i| bits[i]).collect();
        assert_eq!(on, vec![0, 2, 7, 9]);
    }
}
