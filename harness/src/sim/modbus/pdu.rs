//! The Modbus application layer of a simulated unit: one request PDU in,
//! one reply PDU out, written from the Modbus Application Protocol
//! specification (V1.1b3) and not from the gateway's client, so the two
//! check each other. No framing, no I/O.
//!
//! Function codes 1, 2, 3, 4 (reads), 6 and 16 (register writes). Checks
//! follow the specification's order: unsupported function (exception 1),
//! then quantity and request length (3), then the address range (2).

use super::bank::{Table, UnitBank};

/// Exception 1: the function code is not supported.
pub(crate) const ILLEGAL_FUNCTION: u8 = 0x01;
/// Exception 2: the addressed range goes past the end of the table.
pub(crate) const ILLEGAL_DATA_ADDRESS: u8 = 0x02;
/// Exception 3: bad quantity or malformed request.
pub(crate) const ILLEGAL_DATA_VALUE: u8 = 0x03;
/// Exception 11: a gateway found no unit with that id.
pub(crate) const GATEWAY_TARGET_FAILED: u8 = 0x0B;

const MAX_READ_BITS: u16 = 2000;
const MAX_READ_REGISTERS: u16 = 125;
const MAX_WRITE_REGISTERS: u16 = 123;

/// A reply PDU and, when it reads the request counter, the value it carries.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Served {
    pub(crate) pdu: Vec<u8>,
    pub(crate) counter: Option<u32>,
}

/// The exception reply to function `fc`.
pub(crate) fn exception(fc: u8, code: u8) -> Vec<u8> {
    vec![fc | 0x80, code]
}

/// True when `pdu` is an exception reply.
pub(crate) fn is_exception(pdu: &[u8]) -> bool {
    pdu.first().is_some_and(|fc| fc & 0x80 != 0)
}

/// Serves `request` (function code first) from `bank`; `None` for an empty
/// request, which has no function code to answer.
pub(crate) fn serve(bank: &mut UnitBank, request: &[u8]) -> Option<Served> {
    let (&fc, body) = request.split_first()?;
    let reply = match fc {
        0x01 => read(bank, Table::Coils, body),
        0x02 => read(bank, Table::Discrete, body),
        0x03 => read(bank, Table::Holding, body),
        0x04 => read(bank, Table::Input, body),
        0x06 => write_single(bank, body),
        0x10 => write_multiple(bank, body),
        _ => Err(ILLEGAL_FUNCTION),
    };
    Some(match reply {
        Ok((data, counter)) => {
            let mut pdu = Vec::with_capacity(data.len() + 1);
            pdu.push(fc);
            pdu.extend_from_slice(&data);
            Served { pdu, counter }
        }
        Err(code) => Served {
            pdu: exception(fc, code),
            counter: None,
        },
    })
}

/// The reply data after the function code, or an exception code.
type Outcome = Result<(Vec<u8>, Option<u32>), u8>;

fn word(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn read(bank: &mut UnitBank, table: Table, body: &[u8]) -> Outcome {
    if body.len() != 4 {
        return Err(ILLEGAL_DATA_VALUE);
    }
    let (address, quantity) = (word(body, 0), word(body, 2));
    let max = if table.holds_bits() {
        MAX_READ_BITS
    } else {
        MAX_READ_REGISTERS
    };
    if quantity == 0 || quantity > max {
        return Err(ILLEGAL_DATA_VALUE);
    }
    let count = usize::from(quantity);
    let mut data = Vec::new();
    if table.holds_bits() {
        let bits = bank
            .bits(table, address, count)
            .map_err(|_| ILLEGAL_DATA_ADDRESS)?;
        data.push(count.div_ceil(8) as u8);
        data.extend(bits.chunks(8).map(pack_lsb_first));
        return Ok((data, None));
    }
    bank.registers(table, address, count)
        .map_err(|_| ILLEGAL_DATA_ADDRESS)?;
    // The range is valid, so the counter (if read) goes up before the
    // values are copied: the reply carries the new number.
    let counter = bank.bump_counter_if_read(table, address, quantity);
    let regs = bank
        .registers(table, address, count)
        .map_err(|_| ILLEGAL_DATA_ADDRESS)?;
    data.push((count * 2) as u8);
    data.extend(regs.iter().flat_map(|r| r.to_be_bytes()));
    Ok((data, counter))
}

/// First bit in the least significant position, as the specification packs
/// coils and discrete inputs; missing high bits stay zero.
fn pack_lsb_first(bits: &[bool]) -> u8 {
    bits.iter()
        .enumerate()
        .fold(0, |byte, (i, &b)| byte | (u8::from(b) << i))
}

fn write_single(bank: &mut UnitBank, body: &[u8]) -> Outcome {
    if body.len() != 4 {
        return Err(ILLEGAL_DATA_VALUE);
    }
    let slot = bank
        .registers_mut(Table::Holding, word(body, 0), 1)
        .map_err(|_| ILLEGAL_DATA_ADDRESS)?;
    slot[0] = word(body, 2);
    Ok((body.to_vec(), None))
}

fn write_multiple(bank: &mut UnitBank, body: &[u8]) -> Outcome {
    if body.len() < 5 {
        return Err(ILLEGAL_DATA_VALUE);
    }
    let (address, quantity, bytes) = (word(body, 0), word(body, 2), usize::from(body[4]));
    if quantity == 0
        || quantity > MAX_WRITE_REGISTERS
        || bytes != usize::from(quantity) * 2
        || body.len() != 5 + bytes
    {
        return Err(ILLEGAL_DATA_VALUE);
    }
    let slots = bank
        .registers_mut(Table::Holding, address, usize::from(quantity))
        .map_err(|_| ILLEGAL_DATA_ADDRESS)?;
    for (i, slot) in slots.iter_mut().enumerate() {
        *slot = word(body, 5 + 2 * i);
    }
    Ok((body[..4].to_vec(), None))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bank() -> UnitBank {
        let mut b = UnitBank::new(16);
        b.registers_mut(Table::Holding, 0, 2)
            .unwrap()
            .copy_from_slice(&[0x1234, 0x5678]);
        let coils = [true, false, true, true, false, false, false, false, true];
        b.bits_mut(Table::Coils, 0, 9)
            .unwrap()
            .copy_from_slice(&coils);
        b
    }

    fn pdu(b: &mut UnitBank, req: &[u8]) -> Vec<u8> {
        serve(b, req).unwrap().pdu
    }

    #[test]
    fn reads_registers_big_endian_and_bits_lsb_first() {
        let mut b = bank();
        assert_eq!(
            pdu(&mut b, &[3, 0, 0, 0, 2]),
            [3, 4, 0x12, 0x34, 0x56, 0x78]
        );
        assert_eq!(pdu(&mut b, &[4, 0, 15, 0, 1]), [4, 2, 0, 0]);
        assert_eq!(pdu(&mut b, &[1, 0, 0, 0, 9]), [1, 2, 0b0000_1101, 0b1]);
        assert_eq!(pdu(&mut b, &[2, 0, 0, 0, 16]), [2, 2, 0, 0]);
    }

    #[test]
    fn exceptions_in_the_specified_order() {
        let mut b = bank();
        assert_eq!(pdu(&mut b, &[0x2b, 0x0e, 1, 0]), [0xab, 1]);
        assert_eq!(pdu(&mut b, &[3, 0, 0, 0, 0]), [0x83, 3]);
        assert_eq!(pdu(&mut b, &[3, 0, 0, 0, 126]), [0x83, 3]);
        // Too many bits and beyond the table: quantity is checked first.
        assert_eq!(pdu(&mut b, &[1, 0xff, 0, 0x07, 0xd1]), [0x81, 3]);
        assert_eq!(pdu(&mut b, &[1, 0, 0, 0, 17]), [0x81, 2]);
        assert_eq!(pdu(&mut b, &[4, 0, 15, 0, 2]), [0x84, 2]);
        assert_eq!(pdu(&mut b, &[3, 0, 0, 0]), [0x83, 3]);
        assert_eq!(serve(&mut b, &[]), None);
    }

    #[test]
    fn writes_holding_registers() {
        let mut b = bank();
        assert_eq!(pdu(&mut b, &[6, 0, 3, 0xbe, 0xef]), [6, 0, 3, 0xbe, 0xef]);
        assert_eq!(
            pdu(&mut b, &[0x10, 0, 4, 0, 2, 4, 0, 1, 0, 2]),
            [0x10, 0, 4, 0, 2]
        );
        assert_eq!(b.registers(Table::Holding, 3, 3).unwrap(), &[0xbeef, 1, 2]);
        assert_eq!(pdu(&mut b, &[0x10, 0, 4, 0, 2, 3, 0, 1, 0]), [0x90, 3]);
        assert_eq!(pdu(&mut b, &[6, 0, 16, 0, 0]), [0x86, 2]);
    }

    #[test]
    fn the_counter_goes_up_in_good_replies_only() {
        let mut b = bank();
        b.set_counter(Table::Input, 0).unwrap();
        let s = serve(&mut b, &[4, 0, 0, 0, 2]).unwrap();
        assert_eq!(
            s,
            Served {
                pdu: vec![4, 4, 0, 0, 0, 1],
                counter: Some(1)
            }
        );
        assert_eq!(pdu(&mut b, &[4, 0, 0, 0, 17]), [0x84, 2]);
        let s = serve(&mut b, &[4, 0, 1, 0, 1]).unwrap();
        assert_eq!(s.counter, Some(2));
    }
}
