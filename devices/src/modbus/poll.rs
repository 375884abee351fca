//! One poll of one unit: every planned read in turn, then the values as the
//! SPEC data object `{"unit": 1, "values": {...}}`, in map order.

use super::error::PollError;
use super::frame::{Reply, Request};
use super::map::{Read, Register};
use super::port::Bus;
use super::value::{self, Value};
use crate::json_object::JsonObject;
use crate::reading::Reading;

/// What a unit's child polls: its address on the bus and its checked map.
#[derive(Debug, Clone, PartialEq)]
pub struct Unit {
    /// 1..=247 on RTU; 0 (or 255) for a TCP device that ignores it.
    pub unit_id: u8,
    /// The register map, in config order.
    pub registers: Vec<Register>,
    /// The map planned into reads (see [`plan`](super::plan)).
    pub reads: Vec<Read>,
}

/// Reads every register of `unit` on `bus`. The first read that fails ends
/// the poll: the unit's other reads would most likely fail the same way,
/// and each would cost the bus another timeout.
pub async fn poll(bus: &mut Bus, unit: &Unit) -> Result<Reading, PollError> {
    let mut values: Vec<Option<Value>> = vec![None; unit.registers.len()];
    for read in &unit.reads {
        let reply = bus.read(&Request::read(unit.unit_id, read)).await?;
        place(&unit.registers, read, &reply, &mut values);
    }
    Ok(Reading::new(JsonObject::from_trusted(render(
        unit, &values,
    ))))
}

/// Cuts one reply into the values of the registers it covers.
fn place(registers: &[Register], read: &Read, reply: &Reply, values: &mut [Option<Value>]) {
    for &index in &read.registers {
        let register = &registers[index];
        let start = usize::from(register.address - read.address);
        let end = start + usize::from(register.width());
        values[index] = match reply {
            Reply::Bits(bits) => bits.get(start).map(|b| Value::Bool(*b)),
            Reply::Words(words) => words
                .get(start..end)
                .map(|w| value::from_words(register, w)),
        };
    }
}

fn render(unit: &Unit, values: &[Option<Value>]) -> String {
    let mut out = format!("{{\"unit\":{},\"values\":{{", unit.unit_id);
    for (i, (register, value)) in unit.registers.iter().zip(values).enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&serde_json::Value::from(register.name.as_str()).to_string());
        out.push(':');
        match value {
            Some(v) => v.write_json(&mut out),
            None => out.push_str("null"),
        }
    }
    out.push_str("}}");
    out
}
