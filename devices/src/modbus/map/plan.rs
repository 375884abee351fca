//! A register map checked and planned into reads: overlaps and impossible
//! entries reported one by one (the config points at each), and touching
//! registers of one table merged into as few requests as the protocol
//! allows.
//!
//! Only registers that touch are merged: a gap may be an address the
//! device refuses with "illegal data address", so reading it would fail a
//! poll that asked only for valid registers.

use super::types::{Register, Table, ValueType};

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
