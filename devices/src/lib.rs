//! Sensor codecs, links and simulators: everything of edgevisor that touches
//! the outside world. Knows nothing of supervision (see SPEC section 1).

pub mod codec;
pub mod json_object;
pub mod link;
pub mod reading;
pub mod sim;

pub use json_object::JsonObject;
pub use reading::Reading;
