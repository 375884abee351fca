//! Sensor codecs, links and simulators: everything of edgevisor that touches
//! the outside world. Knows nothing of supervision (see SPEC section 1).
