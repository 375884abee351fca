//! Register maps (SPEC section 9): what a unit's registers mean, checked for
//! overlaps and impossible entries, and planned into as few read requests
//! as the protocol allows.
//!
//! Only registers that touch are merged into one request: a gap may be an
//! address the device refuses with "illegal data address", so reading it
//! would fail a poll that asked only for valid registers.

use std::fmt;

/// Most registers one read request may ask for (function 3 or 4).
pub const MAX_REGISTERS_PER_READ: u16 = 125;
/// Most coils or discrete inputs one read request may ask for (function 1 or 2).
pub const MAX_BITS_PER_READ: u16 = 2000;

/// The four Modbus data tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Table {
    /// Read-write bits, function 1.
    Coil,
    /// Read-only bits, function 2.
    Discrete,
    /// Read-only registers, function 4.
    Input,
    /// Read-write registers, function 3.
    Holding,
}

impl Table {
    /// Every table, in the order the config words list them.
    pub const ALL: [Table; 4] = [Table::Coil, Table::Discrete, Table::Input, Table::Holding];

    /// The config word.
    pub fn as_str(self) -> &'static str {
        match self {
            Table::Coil => "coil",
            Table::Discrete => "discrete",
            Table::Input => "input",
            Table::Holding => "holding",
        }
    }

    /// Whether the table holds single bits rather than 16-bit registers.
    pub fn is_bits(self) -> bool {
        matches!(self, Table::Coil | Table::Discrete)
    }

    /// The read function code for this table.
    pub fn read_function(self) -> u8 {
        match self {
            Table::Coil => 1,
            Table::Discrete => 2,
            Table::Holding => 3,
            Table::Input => 4,
        }
    }

    /// The most entries one read of this table may cover.
    pub fn max_per_read(self) -> u16 {
        if self.is_bits() {
            MAX_BITS_PER_READ
        } else {
            MAX_REGISTERS_PER_READ
        }
    }
}

/// How the registers of one value are read (SPEC section 9 `type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ValueType {
    /// One coil or discrete input.
    Bool,
    /// One register, signed.
    Int16,
    /// One register.
    UInt16,
    /// Two registers, signed.
    Int32,
    /// Two registers.
    UInt32,
    /// Four registers, signed.
    Int64,
    /// Four registers.
    UInt64,
    /// Two registers, IEEE 754.
    Float32,
    /// Four registers, IEEE 754.
    Float64,
    /// `length` registers of two ASCII bytes each.
    String,
}

impl ValueType {
    /// Every type, in the order the config words list them.
    pub const ALL: [ValueType; 10] = [
        ValueType::Bool,
        ValueType::Int16,
        ValueType::UInt16,
        ValueType::Int32,
        ValueType::UInt32,
        ValueType::Int64,
        ValueType::UInt64,
        ValueType::Float32,
        ValueType::Float64,
        ValueType::String,
    ];

    /// The config word.
    pub fn as_str(self) -> &'static str {
        match self {
            ValueType::Bool => "bool",
            ValueType::Int16 => "int16",
            ValueType::UInt16 => "uint16",
            ValueType::Int32 => "int32",
            ValueType::UInt32 => "uint32",
            ValueType::Int64 => "int64",
            ValueType::UInt64 => "uint64",
            ValueType::Float32 => "float32",
            ValueType::Float64 => "float64",
            ValueType::String => "string",
        }
    }

    /// Registers (or bits) a value of this type spans; `None` for strings,
    /// whose width is their `length`.
    pub fn fixed_width(self) -> Option<u16> {
        match self {
            ValueType::Bool | ValueType::Int16 | ValueType::UInt16 => Some(1),
            ValueType::Int32 | ValueType::UInt32 | ValueType::Float32 => Some(2),
            ValueType::Int64 | ValueType::UInt64 | ValueType::Float64 => Some(4),
            ValueType::String => None,
        }
    }

    /// Whether `order` means anything for this type (two or four registers).
    pub fn takes_order(self) -> bool {
        matches!(self.fixed_width(), Some(2 | 4))
    }

    /// Whether the value is a number that `scale` and `offset` apply to.
    pub fn is_number(self) -> bool {
        !matches!(self, ValueType::Bool | ValueType::String)
    }
}

/// Byte and register order of a multi-register value, A being the most
/// significant byte (SPEC section 9 `order`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum WordOrder {
    /// Registers most significant first, bytes big-endian (Modbus's own).
    #[default]
    Abcd,
    /// Registers least significant first, bytes big-endian.
    Cdab,
    /// Registers most significant first, bytes swapped in each register.
    Badc,
    /// Fully little-endian.
    Dcba,
}

impl WordOrder {
    /// Every order, in the order the config words list them.
    pub const ALL: [WordOrder; 4] = [
        WordOrder::Abcd,
        WordOrder::Cdab,
        WordOrder::Badc,
        WordOrder::Dcba,
    ];

    /// The config word.
    pub fn as_str(self) -> &'static str {
        match self {
            WordOrder::Abcd => "ABCD",
            WordOrder::Cdab => "CDAB",
            WordOrder::Badc => "BADC",
            WordOrder::Dcba => "DCBA",
        }
    }
}

/// One named value of a unit's register map.
#[derive(Debug, Clone, PartialEq)]
pub struct Register {
    /// Its key in the telemetry's `values`.
    pub name: String,
    /// Which table it is read from.
    pub table: Table,
    /// First register (or bit) address, 0-based as on the wire.
    pub address: u16,
    /// How its registers are decoded.
    pub kind: ValueType,
    /// Register and byte order of a two- or four-register value.
    pub order: WordOrder,
    /// `value = raw * scale + offset`.
    pub scale: f64,
    /// See `scale`.
    pub offset: f64,
    /// Registers of a `string`; ignored by other types.
    pub length: u16,
}

impl Register {
    /// A register with the defaults SPEC gives (order ABCD, scale 1, offset 0).
    pub fn new(name: impl Into<String>, table: Table, address: u16, kind: ValueType) -> Self {
        Register {
            name: name.into(),
            table,
            address,
            kind,
            order: WordOrder::Abcd,
            scale: 1.0,
            offset: 0.0,
            length: 0,
        }
    }

    /// Registers (or bits) it spans.
    pub fn width(&self) -> u16 {
        self.kind.fixed_width().unwrap_or(self.length)
    }

    /// One past its last address, as `u32` so that the end of the address
    /// space (65536) is representable.
    pub fn end(&self) -> u32 {
        u32::from(self.address) + u32::from(self.width())
    }
}

/// One read request of a poll and the values it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Read {
    /// The table read.
    pub table: Table,
    /// First address.
    pub address: u16,
    /// Registers (or bits) read.
    pub count: u16,
    /// Indexes into the map of the registers this read covers.
    pub registers: Vec<usize>,
}

/// Why a register map cannot be polled; `index` is the offending entry's
/// position in the map, so the config can point at it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MapError {
    /// Two entries share a name, so one would hide the other in `values`.
    #[error("register name {name:?} is used twice")]
    DuplicateName {
        /// The second entry.
        index: usize,
        /// Its name.
        name: String,
    },
    /// Two entries read the same register.
    #[error("{name:?} overlaps {other:?} in the {table} table")]
    Overlap {
        /// The later entry.
        index: usize,
        /// Its name.
        name: String,
        /// The entry it overlaps.
        other: String,
        /// The table both are in.
        table: &'static str,
    },
    /// A bool in a register table, or a number in a bit table.
    #[error("type {kind} cannot be read from the {table} table")]
    WrongTable {
        /// The entry.
        index: usize,
        /// Its type.
        kind: &'static str,
        /// Its table.
        table: &'static str,
    },
    /// A string of no registers.
    #[error("a string needs `length` (registers, 1 to 125)")]
    NoLength {
        /// The entry.
        index: usize,
    },
    /// A value wider than one request may read.
    #[error("{name:?} spans {width} registers; one request reads at most 125")]
    TooLong {
        /// The entry.
        index: usize,
        /// Its name.
        name: String,
        /// Its width.
        width: u16,
    },
    /// A value that runs past address 65535.
    #[error("{name:?} ends past the last address (65535)")]
    PastEnd {
        /// The entry.
        index: usize,
        /// Its name.
        name: String,
    },
}

impl MapError {
    /// The offending entry's position in the map.
    pub fn index(&self) -> usize {
        match self {
            MapError::DuplicateName { index, .. }
            | MapError::Overlap { index, .. }
            | MapError::WrongTable { index, .. }
            | MapError::NoLength { index }
            | MapError::TooLong { index, .. }
            | MapError::PastEnd { index, .. } => *index,
        }
    }

    /// How to fix it.
    pub fn hint(&self) -> &'static str {
        match self {
            MapError::DuplicateName { .. } => "give each register its own name",
            MapError::Overlap { .. } => {
                "check the addresses against the datasheet: a 32-bit value takes 2 registers, a 64-bit one 4"
            }
            MapError::WrongTable { .. } => {
                "coil and discrete hold bits (type = \"bool\"); input and holding hold registers"
            }
            MapError::NoLength { .. } => "add length = N, the number of registers the text takes",
            MapError::TooLong { .. } => "split it, or shorten `length` to at most 125",
            MapError::PastEnd { .. } => "addresses are 0 to 65535 (0-based, as sent on the wire)",
        }
    }
}

/// Checks `map` and plans its reads: one per run of touching registers of
/// one table, each at most as long as the protocol allows. Returns every
/// problem found, not just the first.
pub fn plan(map: &[Register]) -> Result<Vec<Read>, Vec<MapError>> {
    let mut errors = Vec::new();
    let mut usable = Vec::new();
    for (index, r) in map.iter().enumerate() {
        if let Some(first) = map[..index].iter().find(|o| o.name == r.name) {
            errors.push(MapError::DuplicateName {
                index,
                name: first.name.clone(),
            });
        }
        match entry_error(index, r) {
            Some(e) => errors.push(e),
            None => usable.push(index),
        }
    }
    // Overlaps among the entries that are fine on their own: each entry
    // against the one reaching furthest among those before it (a long
    // string may cover several that follow).
    usable.sort_by_key(|&i| (map[i].table, map[i].address));
    let mut furthest: Option<usize> = None;
    for &i in &usable {
        let r = &map[i];
        match furthest {
            Some(f) if map[f].table == r.table && map[f].end() > u32::from(r.address) => {
                let (index, other) = (i.max(f), i.min(f));
                errors.push(MapError::Overlap {
                    index,
                    name: map[index].name.clone(),
                    other: map[other].name.clone(),
                    table: r.table.as_str(),
                });
                if r.end() > map[f].end() {
                    furthest = Some(i);
                }
            }
            _ => furthest = Some(i),
        }
    }
    if !errors.is_empty() {
        errors.sort_by_key(MapError::index);
        return Err(errors);
    }
    Ok(merge(map, &usable))
}

/// What is wrong with one entry on its own, if anything.
fn entry_error(index: usize, r: &Register) -> Option<MapError> {
    if r.table.is_bits() != (r.kind == ValueType::Bool) {
        return Some(MapError::WrongTable {
            index,
            kind: r.kind.as_str(),
            table: r.table.as_str(),
        });
    }
    if r.width() == 0 {
        return Some(MapError::NoLength { index });
    }
    if r.width() > r.table.max_per_read() {
        return Some(MapError::TooLong {
            index,
            name: r.name.clone(),
            width: r.width(),
        });
    }
    if r.end() > 65536 {
        return Some(MapError::PastEnd {
            index,
            name: r.name.clone(),
        });
    }
    None
}

/// Runs of touching registers (already sorted by table and address, and
/// known not to overlap) as reads.
fn merge(map: &[Register], sorted: &[usize]) -> Vec<Read> {
    let mut reads: Vec<Read> = Vec::new();
    for &i in sorted {
        let r = &map[i];
        if let Some(last) = reads.last_mut() {
            let end = u32::from(last.address) + u32::from(last.count);
            if last.table == r.table
                && end == u32::from(r.address)
                && r.end() - u32::from(last.address) <= u32::from(r.table.max_per_read())
            {
                last.count += r.width();
                last.registers.push(i);
                continue;
            }
        }
        reads.push(Read {
            table: r.table,
            address: r.address,
            count: r.width(),
            registers: vec![i],
        });
    }
    reads
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reg(name: &str, table: Table, address: u16, kind: ValueType) -> Register {
        Register::new(name, table, address, kind)
    }

    #[test]
    fn touching_registers_share_a_read_and_gaps_split_them() {
        let map = [
            reg("a", Table::Input, 0, ValueType::Float32),
            reg("b", Table::Input, 2, ValueType::UInt16),
            reg("c", Table::Input, 10, ValueType::Int64),
            reg("d", Table::Holding, 3, ValueType::UInt16),
            reg("e", Table::Coil, 0, ValueType::Bool),
            reg("f", Table::Coil, 1, ValueType::Bool),
        ];
        let reads = plan(&map).unwrap();
        let shape: Vec<_> = reads
            .iter()
            .map(|r| (r.table, r.address, r.count, r.registers.clone()))
            .collect();
        assert_eq!(
            shape,
            vec![
                (Table::Coil, 0, 2, vec![4, 5]),
                (Table::Input, 0, 3, vec![0, 1]),
                (Table::Input, 10, 4, vec![2]),
                (Table::Holding, 3, 1, vec![3]),
            ]
        );
    }

    #[test]
    fn a_read_never_exceeds_the_protocol_limit() {
        let map: Vec<_> = (0..100)
            .map(|i| reg(&format!("r{i}"), Table::Holding, i * 2, ValueType::UInt32))
            .collect();
        let reads = plan(&map).unwrap();
        assert_eq!(reads.len(), 2);
        assert_eq!(
            (reads[0].count, reads[1].address, reads[1].count),
            (124, 124, 76)
        );
    }

    #[test]
    fn overlaps_and_impossible_entries_are_all_reported() {
        let mut s = reg("name", Table::Holding, 0, ValueType::String);
        s.length = 0;
        let mut long = reg("long", Table::Input, 0, ValueType::String);
        long.length = 126;
        let map = [
            reg("a", Table::Input, 0, ValueType::Float32),
            reg("b", Table::Input, 1, ValueType::UInt16),
            reg("flag", Table::Holding, 9, ValueType::Bool),
            s,
            long,
            reg("end", Table::Input, 65535, ValueType::UInt32),
            reg("a", Table::Coil, 0, ValueType::Bool),
        ];
        let errors = plan(&map).unwrap_err();
        let indexes: Vec<_> = errors.iter().map(MapError::index).collect();
        assert_eq!(indexes, vec![1, 2, 3, 4, 5, 6], "{errors:?}");
        let map = [
            reg("a", Table::Input, 0, ValueType::Float32),
            reg("b", Table::Input, 1, ValueType::UInt16),
        ];
        let errors = plan(&map).unwrap_err();
        assert_eq!(
            errors[0].to_string(),
            "\"b\" overlaps \"a\" in the input table"
        );
    }
}
