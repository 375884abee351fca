//! One `[[sensor]]`: keys of another transport rejected, codec keys checked,
//! its link resolved (see `link`) and its policy layered over its group's or
//! the root's.

use std::time::Duration;

use edgevisor_devices::codec::{ChecksumPolicy, CodecKind, DEFAULT_MAX_FRAME};
use edgevisor_devices::link::DEFAULT_READ_TIMEOUT;
use edgevisor_runtime::Restart;
use toml::Spanned;

use super::super::diagnostics::Problem;
use super::super::raw::RawSensor;
use super::super::values::{OnCorrupt, Transport};
use super::super::{checks, Codec, Policy, SensorConfig};
use super::{link, policy, Span};

/// The largest `max_frame` a sensor may set.
const MAX_FRAME_LIMIT: u64 = 16 * 1024 * 1024;

/// A transport-specific key that the sensor set.
struct TransportKey {
    name: &'static str,
    span: Span,
    /// The transports that take this key.
    owners: &'static [Transport],
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
        let TransportKey { name, span, owners } = key;
        let words: Vec<&str> = owners.iter().map(|t| t.as_str()).collect();
        let (owner, choices) = match words.as_slice() {
            [one] => (one.to_string(), format!("\"{one}\"")),
            _ => (
                words.join("/"),
                words
                    .iter()
                    .map(|w| format!("\"{w}\""))
                    .collect::<Vec<_>>()
                    .join(" or "),
            ),
        };
        problems.push(
            Problem::at(
                Some(span),
                format!("`{name}` is a {owner} key, but sensor {id:?} uses transport {transport}"),
            )
            .hint(format!("remove `{name}`, or set transport = {choices}")),
        );
    }
    let codec = s.codec.get_ref().0;
    if (codec == Codec::Modbus) != transport.is_modbus() {
        let hint = if transport.is_modbus() {
            "set codec = \"modbus\"".to_string()
        } else {
            format!("codec = \"modbus\" needs transport = \"modbus-rtu\" or \"modbus-tcp\"; {transport} takes lines, nmea, frame or json")
        };
        problems.push(
            Problem::at(
                Some(s.codec.span()),
                format!("transport {transport} cannot use codec {codec}"),
            )
            .hint(hint),
        );
    }
    if let (Some(c), false) = (&s.checksum, codec == Codec::Stream(CodecKind::Nmea)) {
        problems.push(
            Problem::at(Some(c.span()), "`checksum` applies to the nmea codec only")
                .hint("remove it"),
        );
    }
    let policy = policy::layer(base, &s.policy(), &format!("sensor {id:?}"), problems);
    let link = link::link(s, policy, problems)?;
    let max_frame = max_frame(s, codec, problems)?;
    let fields = super::outputs::fields(&id, &s.field, problems);
    Some(SensorConfig {
        fields,
        policy,
        id,
        link,
        codec,
        max_frame,
        checksum: s
            .checksum
            .as_ref()
            .map_or(ChecksumPolicy::Required, |c| c.get_ref().0),
        on_corrupt: s
            .on_corrupt
            .as_ref()
            .map_or(OnCorrupt::Crash, |o| *o.get_ref()),
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
fn max_frame(s: &RawSensor, codec: Codec, problems: &mut Vec<Problem>) -> Option<usize> {
    match &s.max_frame {
        Some(m) if m.get_ref().0 == 0 || m.get_ref().0 > MAX_FRAME_LIMIT => {
            problems.push(
                Problem::at(Some(m.span()), "max_frame must be between 1 byte and 16MiB")
                    .hint("e.g. max_frame = 4096"),
            );
            None
        }
        Some(m) => Some(usize::try_from(m.get_ref().0).unwrap_or(usize::MAX)),
        None => Some(
            codec
                .stream()
                .map_or(DEFAULT_MAX_FRAME, CodecKind::default_max_frame),
        ),
    }
}

/// The keys only some transports take that `s` set although its transport
/// does not take them.
fn misplaced_keys(s: &RawSensor) -> Vec<TransportKey> {
    fn span<T>(v: &Option<Spanned<T>>) -> Option<Span> {
        v.as_ref().map(|v| v.span())
    }
    use Transport::{ModbusRtu, ModbusTcp, Mqtt, Serial, Tcp, TcpListen};
    const SERIAL: &[Transport] = &[Serial, ModbusRtu];
    const TCP: &[Transport] = &[Tcp, ModbusTcp];
    const STREAMS: &[Transport] = &[Serial, Tcp, TcpListen, Mqtt];
    const MODBUS: &[Transport] = &[ModbusRtu, ModbusTcp];
    let keys: [(&str, Option<Span>, &[Transport]); 18] = [
        ("device", span(&s.device), SERIAL),
        ("baud", span(&s.baud), SERIAL),
        ("data_bits", span(&s.data_bits), SERIAL),
        ("parity", span(&s.parity), SERIAL),
        ("stop_bits", span(&s.stop_bits), SERIAL),
        ("address", span(&s.address), TCP),
        ("connect_timeout", span(&s.connect_timeout), TCP),
        ("listen", span(&s.listen), &[TcpListen]),
        ("max_connections", span(&s.max_connections), &[TcpListen]),
        ("url", span(&s.url), &[Mqtt]),
        ("topics", span(&s.topics), &[Mqtt]),
        ("read_timeout", span(&s.read_timeout), STREAMS),
        ("max_frame", span(&s.max_frame), STREAMS),
        ("on_corrupt", span(&s.on_corrupt), STREAMS),
        ("timeout", span(&s.timeout), MODBUS),
        ("retries", span(&s.retries), MODBUS),
        ("delay_between", span(&s.delay_between), MODBUS),
        ("unit", s.unit.first().map(|u| u.span()), MODBUS),
    ];
    keys.into_iter()
        .filter(|(_, _, owners)| !owners.contains(s.transport.get_ref()))
        .filter_map(|(name, span, owners)| {
            Some(TransportKey {
                name,
                span: span?,
                owners,
            })
        })
        .collect()
}
