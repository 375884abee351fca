//! What the broker may say to the edge node, read without I/O: an NCMD
//! asking for a rebirth, and the primary host's Sparkplug 3.0 STATE.

use prost::Message;

use super::node::REBIRTH;
use super::proto::{metric, Payload};

/// An NCMD payload with `Node Control/Rebirth` = true.
pub fn rebirth_asked(payload: &[u8]) -> bool {
    Payload::decode(payload).is_ok_and(|p| {
        p.metrics.iter().any(|m| {
            m.name.as_deref() == Some(REBIRTH) && m.value == Some(metric::Value::BooleanValue(true))
        })
    })
}

/// A Sparkplug 3.0 STATE payload (`{"online": true, "timestamp": ..}`)
/// that says online.
pub fn host_online(payload: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(payload)
        .is_ok_and(|v| v.get("online") == Some(&serde_json::Value::Bool(true)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sparkplug::payload::boolean;

    #[test]
    fn only_a_true_rebirth_metric_asks_for_births() {
        let ask = |value| {
            Payload {
                metrics: vec![boolean(REBIRTH, value, 1)],
                ..Payload::default()
            }
            .encode_to_vec()
        };
        assert!(rebirth_asked(&ask(true)));
        assert!(!rebirth_asked(&ask(false)));
        assert!(!rebirth_asked(b"\xff\xff"));
    }

    #[test]
    fn the_host_is_online_only_when_its_state_says_so() {
        assert!(host_online(br#"{"online":true,"timestamp":1}"#));
        assert!(!host_online(br#"{"online":false,"timestamp":1}"#));
        assert!(!host_online(b"ONLINE"));
    }
}
