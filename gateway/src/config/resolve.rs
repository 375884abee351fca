//! Raw tables to a [`Config`]: cross-table checks (unique ids, group members
//! that exist and belong to one group, the keys each transport needs and
//! takes) and defaults, sensor keys over group keys over `[supervisor]` keys.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use edgevisor_devices::codec::{ChecksumPolicy, CodecKind};
use edgevisor_devices::link::serial::Parity;
use edgevisor_devices::link::DEFAULT_READ_TIMEOUT;
use edgevisor_runtime::{OnExhausted, Restart, Strategy};
use toml::Spanned;

use super::diagnostics::Problem;
use super::parse::RawDocument;
use super::raw::{RawPolicy, RawSensor};
use super::values::{OnCorrupt, Transport};
use super::{
    checks, Config, GatewayConfig, GroupConfig, LinkConfig, Policy, RootChild, SensorConfig,
    UpstreamConfig,
};

/// SPEC section 2 defaults; sensors quarantine by default.
const DEFAULT_POLICY: Policy = Policy {
    intensity: 5,
    period: Duration::from_secs(60),
    backoff_initial: Duration::from_millis(100),
    backoff_max: Duration::from_secs(30),
    backoff_reset: Duration::from_secs(60),
    on_exhausted: OnExhausted::Quarantine,
    quarantine_for: Duration::from_secs(600),
};

/// Checks `doc` and fills in defaults; returns the config when nothing stood
/// in the way of building it, and every problem found.
pub fn resolve(path: &Path, text: &str, doc: RawDocument) -> (Option<Config>, Vec<Problem>) {
    let mut problems = Vec::new();
    for table in &doc.missing {
        problems.push(
            Problem::at(Some(0..0), format!("missing [{table}] table")).hint(format!(
                "add a [{table}] table; SPEC section 3 shows its keys"
            )),
        );
    }
    let gateway = doc.gateway.as_ref().map(|g| {
        if let Err((m, h)) = checks::id("gateway", g.id.get_ref()) {
            problems.push(Problem::at(Some(g.id.span()), m).hint(h));
        }
        GatewayConfig {
            id: g.id.get_ref().clone(),
            state_dir: g
                .state_dir
                .clone()
                .unwrap_or_else(|| PathBuf::from("/var/lib/edgevisor")),
        }
    });
    let upstream = match (&doc.upstream, &gateway) {
        (Some(u), Some(g)) => upstream(u, &g.id, &mut problems),
        _ => None,
    };
    let root_raw = doc
        .supervisor
        .as_ref()
        .map(|s| s.policy())
        .unwrap_or_default(); // no [supervisor] table: every key takes its default
    let root = layer(DEFAULT_POLICY, &root_raw, "[supervisor]", &mut problems);
    let children = tree(&doc, text, root, &mut problems);
    let config = match (gateway, upstream) {
        (Some(gateway), Some(upstream)) => Some(Config {
            path: path.to_path_buf(),
            gateway,
            upstream,
            root: Policy {
                on_exhausted: OnExhausted::Escalate,
                ..root
            },
            children,
        }),
        _ => None,
    };
    (config, problems)
}

fn upstream(
    u: &super::raw::RawUpstream,
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
    let keep_alive = u.keep_alive.map_or(Duration::from_secs(30), |d| d.0);
    if keep_alive < Duration::from_secs(1) {
        problems.push(
            Problem::at(Some(u.url.span()), "keep_alive must be at least 1s")
                .hint("use e.g. keep_alive = \"30s\""),
        );
    }
    Some(UpstreamConfig {
        url: url?,
        client_id: u.client_id.as_ref().map_or_else(
            || format!("edgevisor-{gateway_id}"),
            |c| c.get_ref().clone(),
        ),
        username: u.username.clone(),
        password_file: u.password_file.clone(),
        ca_file: u.ca_file.clone(),
        topic_prefix,
        keep_alive,
        outbox_max_bytes: u.outbox_max_bytes.map_or(64 * 1024 * 1024, |s| s.0),
    })
}

/// Applies the keys of one table over `base` and checks the result.
fn layer(base: Policy, raw: &RawPolicy, owner: &str, problems: &mut Vec<Problem>) -> Policy {
    let mut p = base;
    if let Some(intensity) = &raw.intensity {
        match u32::try_from(*intensity.get_ref()) {
            Ok(n) if n >= 1 => p.intensity = n,
            _ => problems.push(
                Problem::at(
                    Some(intensity.span()),
                    format!("intensity must be at least 1 (got {})", intensity.get_ref()),
                )
                .hint("intensity is how many restarts are allowed within `period`, e.g. 5"),
            ),
        }
    }
    let set = |slot: &mut Duration, value: Option<super::values::Dur>| {
        if let Some(v) = value {
            *slot = v.0;
        }
    };
    set(&mut p.period, raw.period);
    set(&mut p.backoff_initial, raw.backoff_initial);
    set(&mut p.backoff_max, raw.backoff_max);
    set(&mut p.backoff_reset, raw.backoff_reset);
    set(&mut p.quarantine_for, raw.quarantine_for);
    if let Some(on) = &raw.on_exhausted {
        p.on_exhausted = on.get_ref().0;
    }
    let span = raw.intensity.as_ref().map(|s| s.span());
    let mut bad = |m: String, h: &str| {
        problems.push(Problem::at(span.clone(), format!("{owner}: {m}")).hint(h))
    };
    if p.period.is_zero() {
        bad(
            "period must be longer than 0".into(),
            "use e.g. period = \"60s\"",
        );
    }
    if p.backoff_initial > p.backoff_max {
        bad(
            format!(
                "backoff_initial ({:?}) is larger than backoff_max ({:?})",
                p.backoff_initial, p.backoff_max
            ),
            "lower backoff_initial or raise backoff_max",
        );
    }
    if p.quarantine_for.is_zero() {
        bad(
            "quarantine_for must be longer than 0".into(),
            "use e.g. quarantine_for = \"10m\"",
        );
    }
    p
}

/// Builds the root's children in file order of the sensors; a group stands
/// where its first listed member would.
fn tree(
    doc: &RawDocument,
    text: &str,
    root: Policy,
    problems: &mut Vec<Problem>,
) -> Vec<RootChild> {
    let (groups, sensors) = (&doc.groups, &doc.sensors);
    let mut ids: HashMap<&str, std::ops::Range<usize>> = HashMap::new();
    let named = sensors
        .iter()
        .map(|s| (&s.id, "sensor"))
        .chain(groups.iter().map(|g| (&g.id, "group")));
    for (id, kind) in named {
        if let Err((m, h)) = checks::id(kind, id.get_ref()) {
            problems.push(Problem::at(Some(id.span()), m).hint(h));
        }
        if let Some(first) = ids.get(id.get_ref().as_str()) {
            problems.push(
                Problem::at(Some(id.span()), format!("duplicate id {:?}", id.get_ref()))
                    .hint({
                        let (line, column) = super::diagnostics::line_column(text, first.start);
                        format!("sensor and group ids must be unique; it is first used at line {line}, column {column}")
                    }),
            );
        } else {
            ids.insert(id.get_ref().as_str(), id.span());
        }
    }
    let by_id: HashMap<&str, &RawSensor> = sensors
        .iter()
        .map(|s| (s.id.get_ref().as_str(), s))
        .collect();
    let mut group_of: HashMap<&str, usize> = HashMap::new();
    for (gi, g) in groups.iter().enumerate() {
        if g.sensors.is_empty() {
            problems.push(
                Problem::at(
                    Some(g.id.span()),
                    format!("group {:?} has no sensors", g.id.get_ref()),
                )
                .hint("list its members: sensors = [\"id\", ...], or remove the group"),
            );
        }
        for member in &g.sensors {
            let name = member.get_ref().as_str();
            if doc.broken_sensor_ids.iter().any(|b| b == name) {
                continue;
            } else if !by_id.contains_key(name) {
                let near =
                    super::diagnostics::closest(name, &by_id.keys().copied().collect::<Vec<_>>());
                let hint = match near {
                    Some(n) => {
                        format!("did you mean {n:?}? otherwise add a [[sensor]] with id = {name:?}")
                    }
                    None => {
                        format!("add a [[sensor]] with id = {name:?}, or remove it from the group")
                    }
                };
                problems.push(
                    Problem::at(
                        Some(member.span()),
                        format!("group {:?} lists unknown sensor {name:?}", g.id.get_ref()),
                    )
                    .hint(hint),
                );
            } else if let Some(&other) = group_of.get(name) {
                if other != gi {
                    problems.push(
                        Problem::at(
                            Some(member.span()),
                            format!(
                                "sensor {name:?} is in two groups: {:?} and {:?}",
                                groups[other].id.get_ref(),
                                g.id.get_ref()
                            ),
                        )
                        .hint("a sensor belongs to at most one group; remove it from one of them"),
                    );
                }
            } else {
                group_of.insert(name, gi);
            }
        }
    }
    let mut children = Vec::new();
    let mut placed = HashSet::new();
    for s in sensors {
        let name = s.id.get_ref().as_str();
        match group_of.get(name) {
            None => {
                if let Some(sensor) = sensor(s, root, problems) {
                    children.push(RootChild::Sensor(sensor));
                }
            }
            Some(&gi) if placed.insert(gi) => {
                let g = &groups[gi];
                let policy = layer(
                    root,
                    &g.policy(),
                    &format!("group {:?}", g.id.get_ref()),
                    problems,
                );
                let members = g
                    .sensors
                    .iter()
                    .filter(|m| group_of.get(m.get_ref().as_str()) == Some(&gi))
                    .filter_map(|m| by_id.get(m.get_ref().as_str()))
                    .filter_map(|s| sensor(s, policy, problems))
                    .collect();
                children.push(RootChild::Group(GroupConfig {
                    id: g.id.get_ref().clone(),
                    strategy: g.strategy.map_or(Strategy::OneForOne, |w| w.0),
                    policy,
                    sensors: members,
                }));
            }
            Some(_) => {}
        }
    }
    children
}

/// The keys only some transports take, with the transport that takes them.
fn misplaced_keys(s: &RawSensor) -> Vec<(&'static str, std::ops::Range<usize>, Transport)> {
    let mut keys = Vec::new();
    let mut note = |name, span: Option<std::ops::Range<usize>>, owner| {
        if let Some(span) = span {
            keys.push((name, span, owner));
        }
    };
    note(
        "device",
        s.device.as_ref().map(|v| v.span()),
        Transport::Serial,
    );
    note("baud", s.baud.as_ref().map(|v| v.span()), Transport::Serial);
    note(
        "data_bits",
        s.data_bits.as_ref().map(|v| v.span()),
        Transport::Serial,
    );
    note(
        "parity",
        s.parity.as_ref().map(|v| v.span()),
        Transport::Serial,
    );
    note(
        "stop_bits",
        s.stop_bits.as_ref().map(|v| v.span()),
        Transport::Serial,
    );
    note(
        "address",
        s.address.as_ref().map(|v| v.span()),
        Transport::Tcp,
    );
    note(
        "connect_timeout",
        s.connect_timeout.as_ref().map(|v| v.span()),
        Transport::Tcp,
    );
    note(
        "listen",
        s.listen.as_ref().map(|v| v.span()),
        Transport::TcpListen,
    );
    note(
        "max_connections",
        s.max_connections.as_ref().map(|v| v.span()),
        Transport::TcpListen,
    );
    note("url", s.url.as_ref().map(|v| v.span()), Transport::Mqtt);
    note(
        "topics",
        s.topics.as_ref().map(|v| v.span()),
        Transport::Mqtt,
    );
    keys.retain(|(_, _, owner)| *owner != *s.transport.get_ref());
    keys
}

/// One sensor with its policy layered over `base` (its group's or the root's).
fn sensor(s: &RawSensor, base: Policy, problems: &mut Vec<Problem>) -> Option<SensorConfig> {
    let id = s.id.get_ref().clone();
    let transport = *s.transport.get_ref();
    for (key, span, owner) in misplaced_keys(s) {
        problems.push(
            Problem::at(
                Some(span),
                format!("`{key}` is a {owner} key, but sensor {id:?} uses transport {transport}"),
            )
            .hint(format!("remove `{key}`, or set transport = \"{owner}\"")),
        );
    }
    let codec = s.codec.get_ref().0;
    if let (Some(c), false) = (&s.checksum, codec == CodecKind::Nmea) {
        problems.push(
            Problem::at(Some(c.span()), "`checksum` applies to the nmea codec only")
                .hint("remove it"),
        );
    }
    let link = link(s, problems)?;
    let max_frame = match &s.max_frame {
        Some(m) if m.get_ref().0 == 0 || m.get_ref().0 > 16 * 1024 * 1024 => {
            problems.push(
                Problem::at(Some(m.span()), "max_frame must be between 1 byte and 16MiB")
                    .hint("e.g. max_frame = 4096"),
            );
            return None;
        }
        Some(m) => usize::try_from(m.get_ref().0).unwrap_or(usize::MAX),
        None => codec.default_max_frame(),
    };
    Some(SensorConfig {
        policy: layer(base, &s.policy(), &format!("sensor {id:?}"), problems),
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
        read_timeout: s.read_timeout.map_or(DEFAULT_READ_TIMEOUT, |d| d.0),
    })
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

fn bad(
    problems: &mut Vec<Problem>,
    span: std::ops::Range<usize>,
    (message, hint): (String, String),
) {
    problems.push(Problem::at(Some(span), message).hint(hint));
}

fn link(s: &RawSensor, problems: &mut Vec<Problem>) -> Option<LinkConfig> {
    let transport = *s.transport.get_ref();
    match transport {
        Transport::Serial => {
            let Some(device) = &s.device else {
                return missing(s, "device", "\"/dev/serial/by-id/...\"", problems);
            };
            let small = |v: &Option<Spanned<i64>>,
                         default: i64,
                         ok: &[i64],
                         problems: &mut Vec<Problem>,
                         key: &str| {
                let Some(v) = v else { return default };
                if ok.is_empty() && *v.get_ref() > 0 || ok.contains(v.get_ref()) {
                    *v.get_ref()
                } else {
                    problems.push(
                        Problem::at(Some(v.span()), format!("invalid {key} {}", v.get_ref()))
                            .hint(format!("use one of {ok:?}")),
                    );
                    default
                }
            };
            let baud = small(&s.baud, 9600, &[], problems, "baud");
            let data_bits = small(&s.data_bits, 8, &[5, 6, 7, 8], problems, "data_bits");
            let stop_bits = small(&s.stop_bits, 1, &[1, 2], problems, "stop_bits");
            Some(LinkConfig::Serial {
                device: PathBuf::from(device.get_ref()),
                baud: u32::try_from(baud).unwrap_or(9600),
                // Checked against the lists above, so the devices crate's
                // parser accepts them; the defaults are never reached.
                data_bits: data_bits.to_string().parse().unwrap_or_default(),
                parity: s.parity.as_ref().map_or(Parity::None, |p| p.get_ref().0),
                stop_bits: stop_bits.to_string().parse().unwrap_or_default(),
            })
        }
        Transport::Tcp => {
            let Some(address) = &s.address else {
                return missing(s, "address", "\"192.168.1.40:4001\"", problems);
            };
            if let Err(e) = checks::host_port(address.get_ref()) {
                bad(problems, address.span(), e);
            }
            Some(LinkConfig::Tcp {
                address: address.get_ref().clone(),
                connect_timeout: s
                    .connect_timeout
                    .as_ref()
                    .map_or(Duration::from_secs(10), |d| d.get_ref().0),
            })
        }
        Transport::TcpListen => {
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
        Transport::Mqtt => {
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
            let url = checks::broker_url(url.get_ref())
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
    }
}
