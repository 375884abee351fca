//! Register contents to values: byte and register order, the integer and
//! float types, strings, then `raw * scale + offset` (SPEC section 9).

use std::fmt::Write as _;

use super::map::{Register, ValueType, WordOrder};

/// One decoded value, ready for the telemetry's `values` object.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A coil or discrete input.
    Bool(bool),
    /// A signed integer with scale 1 and offset 0.
    Int(i64),
    /// An unsigned integer with scale 1 and offset 0.
    UInt(u64),
    /// A float, or an integer that was scaled or offset.
    Float(f64),
    /// A `string`, trailing NULs and spaces removed.
    Text(String),
}

impl Value {
    /// Appends the value as JSON. A float that is not finite (a NaN that
    /// a meter reports for "no reading") becomes `null`: JSON has no NaN.
    pub fn write_json(&self, out: &mut String) {
        // Writing to a String cannot fail.
        let _ = match self {
            Value::Bool(b) => write!(out, "{b}"),
            Value::Int(n) => write!(out, "{n}"),
            Value::UInt(n) => write!(out, "{n}"),
            Value::Float(f) if f.is_finite() => write!(
                out,
                "{}",
                serde_json::Number::from_f64(*f)
                    .map_or_else(|| "null".to_string(), |n| n.to_string())
            ),
            Value::Float(_) => write!(out, "null"),
            Value::Text(t) => write!(out, "{}", serde_json::Value::from(t.as_str())),
        };
    }
}

/// Decodes a register-table value from its registers (`words.len()` is its
/// width) and applies scale and offset.
pub fn from_words(register: &Register, words: &[u16]) -> Value {
    let raw = match register.kind {
        ValueType::String => return Value::Text(text(words)),
        ValueType::Bool => return Value::Bool(words.first().is_some_and(|w| *w != 0)),
        ValueType::Int16 => Raw::Int(i64::from(first(words) as i16)),
        ValueType::UInt16 => Raw::UInt(u64::from(first(words))),
        ValueType::Int32 => Raw::Int(i64::from(be_u32(register.order, words) as i32)),
        ValueType::UInt32 => Raw::UInt(u64::from(be_u32(register.order, words))),
        ValueType::Int64 => Raw::Int(be_u64(register.order, words) as i64),
        ValueType::UInt64 => Raw::UInt(be_u64(register.order, words)),
        ValueType::Float32 => Raw::Float(f32_as_written(f32::from_bits(be_u32(
            register.order,
            words,
        )))),
        ValueType::Float64 => Raw::Float(f64::from_bits(be_u64(register.order, words))),
    };
    scaled(raw, register.scale, register.offset)
}

/// A value before scale and offset.
enum Raw {
    Int(i64),
    UInt(u64),
    Float(f64),
}

/// Integers stay exact when neither scale nor offset is set; anything
/// scaled is a float, rounded to the 15 significant digits an `f64` holds
/// so that `12345 * 0.01` reads `123.45`, not `123.45000000000002`.
fn scaled(raw: Raw, scale: f64, offset: f64) -> Value {
    let plain = scale == 1.0 && offset == 0.0;
    match raw {
        Raw::Int(n) if plain => Value::Int(n),
        Raw::UInt(n) if plain => Value::UInt(n),
        Raw::Float(f) if plain => Value::Float(f),
        Raw::Int(n) => Value::Float(tidy(n as f64 * scale + offset)),
        Raw::UInt(n) => Value::Float(tidy(n as f64 * scale + offset)),
        Raw::Float(f) => Value::Float(tidy(f * scale + offset)),
    }
}

/// `v` rounded to 15 significant digits (what survives decimal round trips).
fn tidy(v: f64) -> f64 {
    if !v.is_finite() {
        return v;
    }
    format!("{v:.14e}").parse().unwrap_or(v)
}

/// An `f32` as the decimal a person would write for it (229.8, not
/// 229.8000030517578): its shortest round-trip text, read as `f64`.
fn f32_as_written(v: f32) -> f64 {
    if !v.is_finite() {
        return f64::from(v);
    }
    v.to_string().parse().unwrap_or(f64::from(v))
}

fn first(words: &[u16]) -> u16 {
    words.first().copied().unwrap_or(0)
}

/// The value's bytes most significant first (A, B, C, ...), whatever order
/// the device sends them in.
fn be_bytes(order: WordOrder, words: &[u16]) -> Vec<u8> {
    let reverse = matches!(order, WordOrder::Cdab | WordOrder::Dcba);
    let swap = matches!(order, WordOrder::Badc | WordOrder::Dcba);
    let mut regs = words.to_vec();
    if reverse {
        regs.reverse();
    }
    regs.iter()
        .flat_map(|w| {
            let w = if swap { w.swap_bytes() } else { *w };
            w.to_be_bytes()
        })
        .collect()
}

fn be_u32(order: WordOrder, words: &[u16]) -> u32 {
    let mut b = [0u8; 4];
    for (d, s) in b.iter_mut().zip(be_bytes(order, words)) {
        *d = s;
    }
    u32::from_be_bytes(b)
}

fn be_u64(order: WordOrder, words: &[u16]) -> u64 {
    let mut b = [0u8; 8];
    for (d, s) in b.iter_mut().zip(be_bytes(order, words)) {
        *d = s;
    }
    u64::from_be_bytes(b)
}

/// Two bytes per register, high first; trailing NULs and spaces removed;
/// bytes that are not ASCII shown as U+FFFD.
fn text(words: &[u16]) -> String {
    let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_be_bytes()).collect();
    let s: String = bytes
        .iter()
        .map(|&b| {
            if b.is_ascii() {
                char::from(b)
            } else {
                '\u{fffd}'
            }
        })
        .collect();
    s.trim_end_matches(['\0', ' ']).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modbus::map::Table;

    fn reg(kind: ValueType, order: WordOrder) -> Register {
        let mut r = Register::new("x", Table::Holding, 0, kind);
        r.order = order;
        r
    }

    #[test]
    fn scaled_integers_read_as_a_person_writes_them() {
        let mut r = reg(ValueType::UInt32, WordOrder::Cdab);
        r.scale = 0.01;
        assert_eq!(from_words(&r, &[12345, 0]), Value::Float(123.45));
        r.offset = -100.0;
        assert_eq!(from_words(&r, &[12345, 0]), Value::Float(23.45));
    }

    /// The same value in every order, worked out by hand from its
    /// big-endian bytes A.. (SPEC section 9).
    #[test]
    fn every_order_of_every_wide_type() {
        let table: [(ValueType, [&[u16]; 4], Value); 4] = [
            (
                ValueType::UInt32,
                [
                    &[0x1234, 0x5678],
                    &[0x5678, 0x1234],
                    &[0x3412, 0x7856],
                    &[0x7856, 0x3412],
                ],
                Value::UInt(0x1234_5678),
            ),
            (
                ValueType::Int64,
                [
                    &[0xFFFF, 0xFEE0, 0x8E04, 0xFB35],
                    &[0xFB35, 0x8E04, 0xFEE0, 0xFFFF],
                    &[0xFFFF, 0xE0FE, 0x048E, 0x35FB],
                    &[0x35FB, 0x048E, 0xE0FE, 0xFFFF],
                ],
                Value::Int(-1_234_567_890_123),
            ),
            (
                ValueType::Float32,
                [
                    &[0x4365, 0xCCCD],
                    &[0xCCCD, 0x4365],
                    &[0x6543, 0xCDCC],
                    &[0xCDCC, 0x6543],
                ],
                Value::Float(229.8),
            ),
            (
                ValueType::Float64,
                [
                    &[0xC093, 0x4A45, 0x6D5C, 0xFAAD],
                    &[0xFAAD, 0x6D5C, 0x4A45, 0xC093],
                    &[0x93C0, 0x454A, 0x5C6D, 0xADFA],
                    &[0xADFA, 0x5C6D, 0x454A, 0x93C0],
                ],
                Value::Float(-1234.5678),
            ),
        ];
        for (kind, words, want) in table {
            for (order, words) in WordOrder::ALL.into_iter().zip(words) {
                assert_eq!(
                    from_words(&reg(kind, order), words),
                    want,
                    "{kind:?} {order:?}"
                );
            }
        }
        let text = reg(ValueType::String, WordOrder::Abcd);
        assert_eq!(
            from_words(&text, &[0x5344, 0x4D31, 0x3230, 0x2000]),
            Value::Text("SDM120".into())
        );
        assert_eq!(
            from_words(&reg(ValueType::Int16, WordOrder::Abcd), &[0xCFC7]),
            Value::Int(-12345)
        );
    }

    #[test]
    fn nan_becomes_null() {
        let mut out = String::new();
        Value::Float(f64::NAN).write_json(&mut out);
        Value::Text("a\"b".into()).write_json(&mut out);
        assert_eq!(out, "null\"a\\\"b\"");
    }
}
