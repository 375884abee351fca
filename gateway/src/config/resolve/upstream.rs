//! The `[upstream]` table: broker URL and topic prefix checked, keep-alive,
//! client id and outbox size defaulted.

use std::time::Duration;

use super::super::diagnostics::Problem;
use super::super::raw::RawUpstream;
use super::super::{checks, UpstreamConfig};

/// `keep_alive` when the file does not set it.
const DEFAULT_KEEP_ALIVE: Duration = Duration::from_secs(30);

/// The resolved upstream, or `None` when the URL is unusable.
pub(super) fn upstream(
    u: &RawUpstream,
    gateway_id: &str,
    problems: &mut Vec<Problem>,
) -> Option<UpstreamConfig> {
    let url = match checks::broker_url(u.url.get_ref()) {
        Ok(url) => Some(url),
        Err((m, h)) => {
            problems.push(Problem::at(Some(u.url.span()), m).hint(h));
            None
        }
    };
    let topic_prefix = u
        .topic_prefix
        .as_ref()
        .map_or("edgevisor".to_string(), |p| {
            if let Err((m, h)) = checks::topic_prefix(p.get_ref()) {
                problems.push(Problem::at(Some(p.span()), m).hint(h));
            }
            p.get_ref().clone()
        });
    let keep_alive = u.keep_alive.as_ref().map_or(DEFAULT_KEEP_ALIVE, |d| {
        if let Err((m, h)) = checks::keep_alive(d.get_ref().0) {
            problems.push(Problem::at(Some(d.span()), m).hint(h));
        }
        d.get_ref().0
    });
    Some(UpstreamConfig {
        url: url?,
        client_id: u.client_id.as_ref().map_or_else(
            || format!("edgevisor-{gateway_id}"),
            |c| c.get_ref().clone(),
        ),
        username: u.username.clone(),
        password_file: u.password_file.clone(),
        ca_file: u.ca_file.clone(),
        client_cert: client_cert(u, problems),
        topic_prefix,
        keep_alive,
        outbox_max_bytes: u.outbox_max_bytes.map_or(64 * 1024 * 1024, |s| s.0),
        max_message_size: max_message_size(u, problems),
        replay_rate: replay_rate(u, problems),
    })
}

/// `replay_rate`: 1 to 1,000,000 messages a second; unset is unlimited.
fn replay_rate(u: &RawUpstream, problems: &mut Vec<Problem>) -> Option<u32> {
    let r = u.replay_rate.as_ref()?;
    match u32::try_from(*r.get_ref()) {
        Ok(n @ 1..=1_000_000) => Some(n),
        _ => {
            problems.push(
                Problem::at(Some(r.span()), format!("replay_rate must be 1 to 1000000 messages a second (got {})", r.get_ref()))
                    .hint("leave it out for no limit, or set what the broker should take on top of live traffic, e.g. replay_rate = 500"),
            );
            None
        }
    }
}

/// MQTT's own limit on a packet's remaining length (256 MiB - 1).
pub const MQTT_MAX_MESSAGE: u64 = 268_435_455;

/// `max_message_size`: at least 1 KiB (a crash report must fit), at most
/// MQTT's own limit, which is also the default.
fn max_message_size(u: &RawUpstream, problems: &mut Vec<Problem>) -> u64 {
    let Some(m) = &u.max_message_size else {
        return MQTT_MAX_MESSAGE;
    };
    let n = m.get_ref().0;
    if !(1024..=MQTT_MAX_MESSAGE).contains(&n) {
        problems.push(
            Problem::at(Some(m.span()), format!("max_message_size must be 1KiB to 256MiB (got {n} bytes)"))
                .hint("set it to the broker's limit, e.g. max_message_size = \"128KiB\" for AWS IoT Core, or Mosquitto's message_size_limit"),
        );
    }
    n.clamp(1024, MQTT_MAX_MESSAGE)
}

/// `client_cert_file` and `client_key_file`, which go together and only
/// with `mqtts://`.
fn client_cert(u: &RawUpstream, problems: &mut Vec<Problem>) -> Option<super::super::ClientCert> {
    match (&u.client_cert_file, &u.client_key_file) {
        (None, None) => None,
        (Some(cert), Some(key)) => {
            if !u.url.get_ref().starts_with("mqtts://") {
                problems.push(
                    Problem::at(Some(cert.span()), "a client certificate needs a TLS broker")
                        .hint("use url = \"mqtts://host:8883\", or remove client_cert_file and client_key_file"),
                );
            }
            Some(super::super::ClientCert {
                cert_file: cert.get_ref().clone(),
                key_file: key.get_ref().clone(),
            })
        }
        (Some(one), None) | (None, Some(one)) => {
            problems.push(
                Problem::at(
                    Some(one.span()),
                    "client_cert_file and client_key_file go together",
                )
                .hint("set both: the certificate and its private key, as PEM files"),
            );
            None
        }
    }
}
