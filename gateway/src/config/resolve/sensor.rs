//! One `[[sensor]]`: keys of another transport rejected, codec keys checked,
//! its link resolved (see `link`) and its policy layered over its group's or
//! the root's.

use std::time::Duration;

use edgevisor_devices::codec::{ChecksumPolicy, CodecKind};
use edgevisor_devices::link::DEFAULT_READ_TIMEOUT;
use edgevisor_runtime::Restart;
use toml::Spanned;

use super::super::diagnostics::Problem;
use super::super::raw::RawSensor;
use super::super::values::{OnCorrupt, Transport};
use super::super::{checks, Policy, SensorConfig};
use super::{link, policy, Span};

/// The largest `max_frame` a sensor may set.
const MAX_FRAME_LIMIT: u64 = 16 * 1024 * 1024;

/// A transport-specific key that the sensor set.
struct TransportKey {
    name: &'static str,
    span: Span,
    /// The transport that takes this key.
    owner: Transport,
}

/// One sensor with its policy layered over `base` (its group's or the root's).
pub(super) fn sensor(
    s: &RawSensor,
    base: Policy,
    problems: &mut Vec<Problem>,
) -> Option<SensorConfig> {
    let id = s.id.get_ref().clone();
    let transport = *s.transport.get_ref();
    for key in misplaced_keys(s) {
        let TransportKey { name, span, owner } = key;
        problems.push(
            Problem::at(
                Some(span),
                format!("`{name}` is a {owner} key, but sensor {id:?} uses transport {transport}"),
            )
            .hint(format!("remove `{name}`, or set transport = \"{owner}\"")),
        );
    }
    let codec = s.codec.get_ref().0;
    if let (Some(c), false) = (&s.checksum, codec == CodecKind::Nmea) {
        problems.push(
            Problem::at(Some(c.span()), "`checksum` applies to the nmea codec only")
                .hint("remove it"),
        );
    }
    let link = link::link(s, problems)?;
    let max_frame = max_frame(s, codec, problems)?;
    Some(SensorConfig {
        policy: policy::layer(base, &s.policy(), &format!("sensor {id:?}"), problems),
        id,
        link,
        codec,
        max_frame,
        checksum: s
            .checksum
            .as_ref()
            .map_or(ChecksumPolicy::Required, |c| c.get_ref().0),
        on_corrupt: s.on_corrupt.unwrap_or(OnCorrupt::Crash),
        restart: s.restart.map_or(Restart::Permanent, |w| w.0),
        read_timeout: read_timeout(s, problems),
    })
}

/// `read_timeout` checked, or the devices crate's default.
fn read_timeout(s: &RawSensor, problems: &mut Vec<Problem>) -> Duration {
    let Some(t) = &s.read_timeout else {
        return DEFAULT_READ_TIMEOUT;
    };
    if let Err((m, h)) = checks::timeout("read_timeout", t.get_ref().0, "30s") {
        problems.push(Problem::at(Some(t.span()), m).hint(h));
    }
    t.get_ref().0
}

/// `max_frame` checked, or the codec's default.
fn max_frame(s: &RawSensor, codec: CodecKind, problems: &mut Vec<Problem>) -> Option<usize> {
    match &s.max_frame {
        Some(m) if m.get_ref().0 == 0 || m.get_ref().0 > MAX_FRAME_LIMIT => {
            problems.push(
                Problem::at(Some(m.span()), "max_frame must be between 1 byte and 16MiB")
                    .hint("e.g. max_frame = 4096"),
            );
            None
        }
        Some(m) => Some(usize::try_from(m.get_ref().0).unwrap_or(usize::MAX)),
        None => Some(codec.default_max_frame()),
    }
}

/// The keys only some transports take that `s` set although its transport
/// does not take them.
fn misplaced_keys(s: &RawSensor) -> Vec<TransportKey> {
    fn span<T>(v: &Option<Spanned<T>>) -> Option<Span> {
        v.as_ref().map(|v| v.span())
    }
    let keys = [
        ("device", span(&s.device), Transport::Serial),
        ("baud", span(&s.baud), Transport::Serial),
        ("data_bits", span(&s.data_bits), Transport::Serial),
        ("parity", span(&s.parity), Transport::Serial),
        ("stop_bits", span(&s.stop_bits), Transport::Serial),
        ("address", span(&s.address), Transport::Tcp),
        ("connect_timeout", span(&s.connect_timeout), Transport::Tcp),
        ("listen", span(&s.listen), Transport::TcpListen),
        (
            "max_connections",
            span(&s.max_connections),
            Transport::TcpListen,
        ),
        ("url", span(&s.url), Transport::Mqtt),
        ("topics", span(&s.topics), Transport::Mqtt),
    ];
    keys.into_iter()
        .filter(|(_, _, owner)| *owner != *s.transport.get_ref())
        .filter_map(|(name, span, owner)| {
            Some(TransportKey {
                name,
                span: span?,
                owner,
            })
        })
        .collect()
}
