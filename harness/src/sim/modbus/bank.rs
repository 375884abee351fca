//! The four Modbus data tables of one simulated unit, the request counter
//! that makes lost replies countable, and the animations the demo uses to
//! make values move. Plain data: no locking, no I/O.

use super::{Animation, ModbusSimError};

/// One of the four Modbus data tables; which requests read it is fixed by
/// the specification (FC 1, 2, 4 and 3/6/16 respectively).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Table {
    /// Read-write bits (FC 1).
    Coils,
    /// Read-only bits (FC 2).
    Discrete,
    /// Read-only registers (FC 4).
    Input,
    /// Read-write registers (FC 3, 6, 16).
    Holding,
}

impl Table {
    /// True for the bit tables, which `set_bits`/`bits` address; the
    /// register tables take `set_registers`/`registers`.
    pub fn holds_bits(self) -> bool {
        matches!(self, Table::Coils | Table::Discrete)
    }
}

/// The tables of one unit, plus where its request counter lives.
#[derive(Debug)]
pub(crate) struct UnitBank {
    coils: Vec<bool>,
    discrete: Vec<bool>,
    input: Vec<u16>,
    holding: Vec<u16>,
    counter: Option<(Table, u16)>,
    animations: Vec<(Table, u16, Animation)>,
}

impl UnitBank {
    /// `size` entries in each table, all zero.
    pub(crate) fn new(size: usize) -> Self {
        UnitBank {
            coils: vec![false; size],
            discrete: vec![false; size],
            input: vec![0; size],
            holding: vec![0; size],
            counter: None,
            animations: Vec::new(),
        }
    }

    /// `count` bits from `address`.
    pub(crate) fn bits(
        &self,
        table: Table,
        address: u16,
        count: usize,
    ) -> Result<&[bool], ModbusSimError> {
        let bits = match table {
            Table::Coils => &self.coils,
            Table::Discrete => &self.discrete,
            _ => return Err(ModbusSimError::NotBits(table)),
        };
        slice(bits, table, address, count)
    }

    /// `count` bits from `address`, for writing.
    pub(crate) fn bits_mut(
        &mut self,
        table: Table,
        address: u16,
        count: usize,
    ) -> Result<&mut [bool], ModbusSimError> {
        let bits = match table {
            Table::Coils => &mut self.coils,
            Table::Discrete => &mut self.discrete,
            _ => return Err(ModbusSimError::NotBits(table)),
        };
        slice_mut(bits, table, address, count)
    }

    /// `count` registers from `address`.
    pub(crate) fn registers(
        &self,
        table: Table,
        address: u16,
        count: usize,
    ) -> Result<&[u16], ModbusSimError> {
        let regs = match table {
            Table::Input => &self.input,
            Table::Holding => &self.holding,
            _ => return Err(ModbusSimError::NotRegisters(table)),
        };
        slice(regs, table, address, count)
    }

    /// `count` registers from `address`, for writing.
    pub(crate) fn registers_mut(
        &mut self,
        table: Table,
        address: u16,
        count: usize,
    ) -> Result<&mut [u16], ModbusSimError> {
        let regs = match table {
            Table::Input => &mut self.input,
            Table::Holding => &mut self.holding,
            _ => return Err(ModbusSimError::NotRegisters(table)),
        };
        slice_mut(regs, table, address, count)
    }

    /// Puts the 32-bit request counter in the two registers at `address`.
    pub(crate) fn set_counter(&mut self, table: Table, address: u16) -> Result<(), ModbusSimError> {
        self.registers(table, address, 2)?;
        self.counter = Some((table, address));
        Ok(())
    }

    /// Called just before a reply reading `count` entries of `table` from
    /// `address` is built: when that range touches the counter, the
    /// counter goes up by one and the new value is returned (it is what
    /// the reply carries).
    pub(crate) fn bump_counter_if_read(
        &mut self,
        table: Table,
        address: u16,
        count: u16,
    ) -> Option<u32> {
        let (t, at) = self.counter?;
        let (start, end) = (u32::from(address), u32::from(address) + u32::from(count));
        if t != table || end <= u32::from(at) || start >= u32::from(at) + 2 {
            return None;
        }
        let regs = self.registers_mut(t, at, 2).ok()?;
        let next = join_u32(regs[0], regs[1]).wrapping_add(1);
        regs.copy_from_slice(&split_u32(next));
        Some(next)
    }

    /// Starts animating the register(s) at `address`.
    pub(crate) fn animate(
        &mut self,
        table: Table,
        address: u16,
        animation: Animation,
    ) -> Result<(), ModbusSimError> {
        animation.start(self.registers_mut(table, address, animation.width())?);
        self.animations.push((table, address, animation));
        Ok(())
    }

    /// Advances every animation by one step.
    pub(crate) fn tick(&mut self) {
        for (table, address, animation) in self.animations.clone() {
            // Checked when the animation was added; tables never shrink.
            if let Ok(regs) = self.registers_mut(table, address, animation.width()) {
                animation.step(regs);
            }
        }
    }
}

/// High word first, as Modbus devices most often lay out 32-bit values.
pub(crate) fn split_u32(v: u32) -> [u16; 2] {
    [(v >> 16) as u16, v as u16]
}

/// The inverse of [`split_u32`].
pub(crate) fn join_u32(high: u16, low: u16) -> u32 {
    (u32::from(high) << 16) | u32::from(low)
}

fn range(
    len: usize,
    table: Table,
    address: u16,
    count: usize,
) -> Result<std::ops::Range<usize>, ModbusSimError> {
    let start = usize::from(address);
    if start + count > len {
        return Err(ModbusSimError::OutOfRange {
            table,
            address,
            count,
            size: len,
        });
    }
    Ok(start..start + count)
}

fn slice<T>(v: &[T], table: Table, address: u16, count: usize) -> Result<&[T], ModbusSimError> {
    Ok(&v[range(v.len(), table, address, count)?])
}

fn slice_mut<T>(
    v: &mut [T],
    table: Table,
    address: u16,
    count: usize,
) -> Result<&mut [T], ModbusSimError> {
    let r = range(v.len(), table, address, count)?;
    Ok(&mut v[r])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_bumps_only_when_its_registers_are_read() {
        let mut b = UnitBank::new(16);
        b.set_counter(Table::Input, 4).unwrap();
        assert_eq!(b.bump_counter_if_read(Table::Input, 0, 4), None);
        assert_eq!(b.bump_counter_if_read(Table::Input, 6, 2), None);
        assert_eq!(b.bump_counter_if_read(Table::Holding, 4, 2), None);
        assert_eq!(b.bump_counter_if_read(Table::Input, 0, 5), Some(1));
        assert_eq!(b.bump_counter_if_read(Table::Input, 5, 1), Some(2));
        assert_eq!(b.registers(Table::Input, 4, 2).unwrap(), &[0, 2]);
    }

    #[test]
    fn counter_carries_into_the_high_word() {
        let mut b = UnitBank::new(4);
        b.set_counter(Table::Holding, 0).unwrap();
        b.registers_mut(Table::Holding, 0, 2)
            .unwrap()
            .copy_from_slice(&[0, 0xffff]);
        assert_eq!(b.bump_counter_if_read(Table::Holding, 0, 2), Some(0x1_0000));
        assert_eq!(b.registers(Table::Holding, 0, 2).unwrap(), &[1, 0]);
    }

    #[test]
    fn ranges_are_checked_and_tables_typed() {
        let mut b = UnitBank::new(8);
        assert!(b.registers(Table::Input, 7, 1).is_ok());
        assert!(matches!(
            b.registers(Table::Input, 7, 2),
            Err(ModbusSimError::OutOfRange { .. })
        ));
        assert!(matches!(
            b.bits(Table::Holding, 0, 1),
            Err(ModbusSimError::NotBits(Table::Holding))
        ));
        assert!(b.set_counter(Table::Coils, 0).is_err());
        assert!(b.set_counter(Table::Input, 7).is_err());
    }

    #[test]
    fn animations_are_placed_checked_and_ticked() {
        let mut b = UnitBank::new(8);
        b.animate(Table::Input, 0, Animation::Count).unwrap();
        let saw = Animation::Sawtooth {
            min: 0.0,
            max: 1.0,
            step: 0.1,
        };
        assert!(b.animate(Table::Input, 7, saw).is_err());
        assert!(b.animate(Table::Coils, 0, Animation::Count).is_err());
        b.tick();
        b.tick();
        assert_eq!(b.registers(Table::Input, 0, 1).unwrap(), &[2]);
    }
}
