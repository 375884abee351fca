//! Modbus RTU and Modbus TCP polling (SPEC section 9): register maps, the
//! frames of the read functions, and the port of one bus with its timeouts,
//! retries and drains. Knows nothing of supervision: the gateway runs one
//! child per unit and lends each the bus in turn.
//!
//! - `map`: tables, types, orders; a map checked and planned into reads;
//! - `value`: registers to values (order, scale, offset);
//! - `frame`: requests and replies, RTU and TCP;
//! - `port`: one bus, one request at a time; `rtu` and `tcp`: one
//!   exchange on each kind of line;
//! - `error`: a failed poll with its evidence;
//! - `poll`: one poll of one unit, as a [`Reading`](crate::Reading).
//!
//! The frames are this crate's own rather than tokio-modbus's: a crash
//! report must carry the request and reply bytes (tokio-modbus's client
//! does not expose them), a late TCP reply must be dropped rather than
//! fail the next request, and a timed-out RTU request must not leave its
//! reply in a read buffer for the next one (tokio-modbus #324).

mod error;
pub mod frame;
pub mod map;
mod poll;
mod port;
mod rtu;
mod tcp;
pub mod value;

pub use error::PollError;
pub use frame::{exception_name, Reply, ReplyError, Request};
pub use map::{plan, MapError, Read, Register, Table, ValueType, WordOrder};
pub use poll::{poll, Unit};
pub use port::{Bus, BusConfig, Endpoint};
pub use value::Value;
