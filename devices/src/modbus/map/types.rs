//! What a unit's registers mean (SPEC section 9): the four tables, the
//! value types and their widths, the byte and register orders, and one
//! named register of a map.

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

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
