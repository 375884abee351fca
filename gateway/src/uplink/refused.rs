//! Messages the broker will not take are set aside, not resent forever.
//!
//! A broker with a message size limit (Mosquitto's `message_size_limit`)
//! closes the connection over a PUBLISH above it. The outbox would send
//! that message first again after every reconnect, so it would block
//! everything behind it and reconnect every few hundred milliseconds. Two
//! rules stop that:
//!
//! - a message above `upstream.max_message_size` is never sent;
//! - after a lost connection the uplink sends one message at a time until
//!   the first one left unacknowledged is through (the broker's reset also
//!   discards the PUBACKs it sent for the ones before it); a message that
//!   was alone in flight when the broker closed the connection,
//!   [`LOSSES_BEFORE_SET_ASIDE`] times in a row, is taken for one the
//!   broker refuses. A timeout (a frozen broker) or a connection lost with
//!   several in flight never counts: a broker restarted or killed under
//!   load does not lose a reading this way.
//!
//! Either way the message is removed from the outbox and a crash report on
//! `crash/_outbox` says which one and why: set aside and reported, never
//! dropped silently.

use std::sync::Arc;

use crate::outbox::{Class, Cursor, Message, Outbox};

/// Builds the report about a set-aside message (it knows the gateway's id,
/// boot and topics, which the uplink does not).
pub type Reporter = Arc<dyn Fn(&str) -> Message + Send + Sync>;

/// Lost connections in a row with the same first unacknowledged message
/// before it is set aside.
pub const LOSSES_BEFORE_SET_ASIDE: u32 = 3;

/// How many outbox messages are looked through to describe a set-aside one
/// whose caller did not have it at hand.
const DESCRIBE_WITHIN: usize = 4096;

/// What a report says of a message: its topic and size.
pub struct Described<'a> {
    /// Its topic.
    pub topic: &'a str,
    /// Its payload's size.
    pub bytes: usize,
    /// Its class.
    pub class: Class,
}

/// Which message was first unacknowledged at the last lost connections.
#[derive(Debug, Default)]
pub struct Suspect {
    id: Option<u64>,
    losses: u32,
}

impl Suspect {
    /// A connection was lost; `refused` is the message that was alone in
    /// flight when the broker closed it, if that is how it ended. Returns
    /// the message to set aside, if it is the same one for the
    /// [`LOSSES_BEFORE_SET_ASIDE`]th time in a row.
    pub fn lost(&mut self, refused: Option<u64>) -> Option<u64> {
        if refused.is_none() || refused != self.id {
            *self = Suspect {
                id: refused,
                losses: u32::from(refused.is_some()),
            };
            return None;
        }
        self.losses += 1;
        if self.losses < LOSSES_BEFORE_SET_ASIDE {
            return None;
        }
        *self = Suspect::default();
        refused
    }
}

/// Removes message `id` from the outbox and appends a report saying `why`
/// and, from `described` or else from the outbox, its topic and size.
pub fn set_aside(
    outbox: &Outbox,
    reporter: &Reporter,
    id: u64,
    described: Option<Described<'_>>,
    why: &str,
) {
    let (what, class) = match described {
        Some(d) => (format!("to {} ({} bytes)", d.topic, d.bytes), d.class),
        None => outbox
            .read(&mut Cursor::default(), DESCRIBE_WITHIN)
            .into_iter()
            .find(|m| m.id == id)
            .map(|m| {
                (
                    format!("to {} ({} bytes)", m.topic, m.payload.len()),
                    m.class,
                )
            })
            .unwrap_or((String::new(), Class::Telemetry)),
    };
    let error = format!("message {id} {what} set aside, not sent: {why}");
    tracing::error!(id, "{error}");
    outbox.set_aside(id, class);
    outbox.append(vec![reporter(&error)]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_first_message_three_losses_in_a_row_is_the_suspect() {
        let mut s = Suspect::default();
        assert_eq!(s.lost(Some(7)), None);
        assert_eq!(s.lost(Some(7)), None);
        assert_eq!(s.lost(Some(7)), Some(7));
        // Counting starts again after a set-aside, and after any change.
        assert_eq!(s.lost(Some(7)), None);
        assert_eq!(s.lost(Some(8)), None);
        assert_eq!(s.lost(None), None);
        assert_eq!(s.lost(Some(8)), None);
        assert_eq!(s.lost(Some(8)), None);
        assert_eq!(s.lost(Some(8)), Some(8));
    }
}
