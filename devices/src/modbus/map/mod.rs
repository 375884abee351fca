//! Register maps (SPEC section 9): `types` says what a register is, `plan`
//! checks a map and turns it into read requests.

mod plan;
mod types;

pub use plan::{plan, MapError, Read};
pub use types::{Register, Table, ValueType, WordOrder, MAX_BITS_PER_READ, MAX_REGISTERS_PER_READ};
