//! Sensor codecs and links: everything of edgevisor that touches the
//! outside world (the simulators live in the `edgevisor-harness` crate). Knows nothing of supervision (see SPEC section 1).

pub mod codec;
pub mod json_object;
pub mod link;
pub mod modbus;
pub mod reading;

pub use json_object::JsonObject;
pub use reading::Reading;
