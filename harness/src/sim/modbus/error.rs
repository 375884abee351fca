//! The one error a test meets when it misuses the simulator's API.

use super::Table;

/// Why a test's request to the simulator was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModbusSimError {
    /// The unit was not given to [`ModbusSim::new`].
    #[error("unit {0} is not simulated: list it in ModbusSim::new")]
    UnknownUnit(u8),
    /// The range goes past the end of the table.
    #[error(
        "{table:?} {address}..{} is beyond the table's {size} entries: \
         use lower addresses or ModbusSim::with_table_size",
        usize::from(*address) + count
    )]
    OutOfRange {
        /// The table addressed.
        table: Table,
        /// The first entry.
        address: u16,
        /// How many entries.
        count: usize,
        /// The table's size.
        size: usize,
    },
    /// Registers asked of a bit table.
    #[error("{0:?} holds bits: use set_bits/bits, or the Input or Holding table")]
    NotRegisters(Table),
    /// Bits asked of a register table.
    #[error("{0:?} holds registers: use set_registers/registers, or the Coils or Discrete table")]
    NotBits(Table),
}
