//! A sensor's transport keys to a [`LinkConfig`]: the keys each transport
//! needs, their values checked, the optional ones defaulted. One function
//! per transport.

use std::path::PathBuf;
use std::time::Duration;

use edgevisor_devices::codec::CodecKind;
use edgevisor_devices::link::serial::{Parity, SerialConfig};
use edgevisor_devices::modbus::Endpoint;
use toml::Spanned;

use super::super::diagnostics::Problem;
use super::super::raw::RawSensor;
use super::super::values::Transport;
use super::super::{checks, LinkConfig, Policy};
use super::{modbus, Span};

/// The link of `s`, or `None` when a required key is absent or unusable.
/// A Modbus bus's units layer their policy over `policy`, the bus's own.
pub(super) fn link(
    s: &RawSensor,
    policy: Policy,
    problems: &mut Vec<Problem>,
) -> Option<LinkConfig> {
    match *s.transport.get_ref() {
        Transport::Serial => serial(s, problems),
        Transport::Tcp => tcp(s, problems),
        Transport::TcpListen => tcp_listen(s, problems),
        Transport::Mqtt => mqtt(s, problems),
        Transport::ModbusRtu => {
            let LinkConfig::Serial {
                device,
                baud,
                data_bits,
                parity,
                stop_bits,
            } = serial(s, problems)?
            else {
                return None;
            };
            let mut port = SerialConfig::new(device, baud, CodecKind::Frame);
            (port.data_bits, port.parity, port.stop_bits) = (data_bits, parity, stop_bits);
            let bus = modbus::bus(s, Endpoint::Rtu(port), policy, problems)?;
            Some(LinkConfig::Modbus(Box::new(bus)))
        }
        Transport::ModbusTcp => {
            let LinkConfig::Tcp {
                address,
                connect_timeout,
            } = tcp(s, problems)?
            else {
                return None;
            };
            let endpoint = Endpoint::Tcp {
                address,
                connect_timeout,
            };
            let bus = modbus::bus(s, endpoint, policy, problems)?;
            Some(LinkConfig::Modbus(Box::new(bus)))
        }
    }
}

/// A required transport key is absent.
fn missing<T>(s: &RawSensor, key: &str, example: &str, problems: &mut Vec<Problem>) -> Option<T> {
    let transport = *s.transport.get_ref();
    problems.push(
        Problem::at(
            Some(s.transport.span()),
            format!("{transport} sensor {:?} needs `{key}`", s.id.get_ref()),
        )
        .hint(format!("add {key} = {example}")),
    );
    None
}

fn bad(problems: &mut Vec<Problem>, span: Span, (message, hint): (String, String)) {
    problems.push(Problem::at(Some(span), message).hint(hint));
}

/// `baud`: 9600 when absent; otherwise a positive number that fits the
/// `u32` the serial port takes. A bad value is reported.
fn baud(s: &RawSensor, problems: &mut Vec<Problem>) -> u32 {
    let Some(b) = &s.baud else { return 9600 };
    match u32::try_from(*b.get_ref()) {
        Ok(n) if n > 0 => n,
        _ => {
            let hint = "use the sensor's line speed, e.g. baud = 115200 (at most 4294967295)";
            bad(
                problems,
                b.span(),
                (format!("invalid baud {}", b.get_ref()), hint.into()),
            );
            9600
        }
    }
}

/// A small integer key: `default` when absent; otherwise one of `ok`. A bad
/// value is reported and replaced by `default`.
fn small_int(
    v: &Option<Spanned<i64>>,
    default: i64,
    ok: &[i64],
    key: &str,
    problems: &mut Vec<Problem>,
) -> i64 {
    let Some(v) = v else { return default };
    if ok.contains(v.get_ref()) {
        *v.get_ref()
    } else {
        problems.push(
            Problem::at(Some(v.span()), format!("invalid {key} {}", v.get_ref()))
                .hint(format!("use one of {ok:?}")),
        );
        default
    }
}

fn serial(s: &RawSensor, problems: &mut Vec<Problem>) -> Option<LinkConfig> {
    let Some(device) = &s.device else {
        return missing(s, "device", "\"/dev/serial/by-id/...\"", problems);
    };
    let baud = baud(s, problems);
    let data_bits = small_int(&s.data_bits, 8, &[5, 6, 7, 8], "data_bits", problems);
    let stop_bits = small_int(&s.stop_bits, 1, &[1, 2], "stop_bits", problems);
    Some(LinkConfig::Serial {
        device: PathBuf::from(device.get_ref()),
        baud,
        // Checked against the lists above, so the devices crate's
        // parser accepts them; the defaults are never reached.
        data_bits: data_bits.to_string().parse().unwrap_or_default(),
        parity: s.parity.as_ref().map_or(Parity::None, |p| p.get_ref().0),
        stop_bits: stop_bits.to_string().parse().unwrap_or_default(),
    })
}

fn tcp(s: &RawSensor, problems: &mut Vec<Problem>) -> Option<LinkConfig> {
    let Some(address) = &s.address else {
        return missing(s, "address", "\"192.168.1.40:4001\"", problems);
    };
    if let Err(e) = checks::host_port(address.get_ref()) {
        bad(problems, address.span(), e);
    }
    let connect_timeout = s
        .connect_timeout
        .as_ref()
        .map_or(Duration::from_secs(10), |t| {
            if let Err(e) = checks::timeout("connect_timeout", t.get_ref().0, "10s") {
                bad(problems, t.span(), e);
            }
            t.get_ref().0
        });
    Some(LinkConfig::Tcp {
        address: address.get_ref().clone(),
        connect_timeout,
    })
}

fn tcp_listen(s: &RawSensor, problems: &mut Vec<Problem>) -> Option<LinkConfig> {
    let Some(listen) = &s.listen else {
        return missing(s, "listen", "\"0.0.0.0:5000\"", problems);
    };
    let addr = listen.get_ref().parse().map_err(|_| {
        bad(
            problems,
            listen.span(),
            (
                format!("invalid listen address {:?}", listen.get_ref()),
                "write an IP and a port, e.g. 0.0.0.0:5000".into(),
            ),
        );
    });
    let max = s.max_connections.as_ref().map_or(Ok(256), |m| {
        usize::try_from(*m.get_ref())
            .ok()
            .filter(|n| *n >= 1)
            .ok_or_else(|| {
                bad(
                    problems,
                    m.span(),
                    (
                        format!("max_connections must be at least 1 (got {})", m.get_ref()),
                        "e.g. max_connections = 256".into(),
                    ),
                );
            })
    });
    Some(LinkConfig::TcpListen {
        listen: addr.ok()?,
        max_connections: max.ok()?,
    })
}

fn mqtt(s: &RawSensor, problems: &mut Vec<Problem>) -> Option<LinkConfig> {
    let Some(url) = &s.url else {
        return missing(s, "url", "\"mqtt://127.0.0.1:1883\"", problems);
    };
    let Some(topics) = &s.topics else {
        return missing(s, "topics", "[\"zigbee2mqtt/+\"]", problems);
    };
    if topics.get_ref().is_empty() {
        bad(
            problems,
            topics.span(),
            (
                "topics is empty".into(),
                "list at least one filter, e.g. [\"zigbee2mqtt/+\"]".into(),
            ),
        );
    }
    for t in topics.get_ref() {
        if let Err(e) = checks::topic_filter(t.get_ref()) {
            bad(problems, t.span(), e);
        }
    }
    let url = checks::sensor_broker_url(url.get_ref())
        .map_err(|e| bad(problems, url.span(), e))
        .ok()?;
    Some(LinkConfig::Mqtt {
        url,
        topics: topics
            .get_ref()
            .iter()
            .map(|t| t.get_ref().clone())
            .collect(),
    })
}
