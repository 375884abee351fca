//! What `edgevisor check` prints for a valid config: the tree it would
//! build, one line per supervisor and sensor, with the policy that applies.

use std::fmt::Write;

use edgevisor_devices::modbus::Endpoint;

use super::{Config, LinkConfig, Policy, RootChild, SensorConfig, Words};

fn policy(p: &Policy) -> String {
    format!(
        "{} in {}, backoff {}..{}, then {}{}",
        p.intensity,
        humantime::format_duration(p.period),
        humantime::format_duration(p.backoff_initial),
        humantime::format_duration(p.backoff_max),
        p.on_exhausted.word(),
        match p.on_exhausted {
            super::OnExhausted::Quarantine =>
                format!(" {}", humantime::format_duration(p.quarantine_for)),
            super::OnExhausted::Escalate => String::new(),
        }
    )
}

fn link(l: &LinkConfig) -> String {
    match l {
        LinkConfig::Serial { device, baud, .. } => format!("serial {} @{baud}", device.display()),
        LinkConfig::Tcp { address, .. } => format!("tcp {address}"),
        LinkConfig::TcpListen {
            listen,
            max_connections,
        } => {
            format!("tcp-listen {listen} (dynamic, max {max_connections})")
        }
        LinkConfig::Mqtt { url, topics } => format!("mqtt {url} {}", topics.join(",")),
        LinkConfig::Modbus(m) => {
            let port = match &m.bus.endpoint {
                Endpoint::Rtu(serial) => {
                    format!("modbus-rtu {} @{}", serial.path.display(), serial.baud)
                }
                Endpoint::Tcp { address, .. } => format!("modbus-tcp {address}"),
            };
            format!(
                "{port} (timeout {}, retries {})",
                humantime::format_duration(m.bus.timeout),
                m.bus.retries
            )
        }
    }
}

/// A bus's units, one line each, under their bus.
fn units(out: &mut String, s: &SensorConfig, indent: usize) {
    let LinkConfig::Modbus(m) = &s.link else {
        return;
    };
    for u in &m.units {
        let _ = writeln!(
            out,
            "{:indent$}{:<16} unit {}  poll {}  {} register(s) in {} request(s)  [{}]",
            "",
            u.id,
            u.unit.unit_id,
            humantime::format_duration(u.poll),
            u.unit.registers.len(),
            u.unit.reads.len(),
            policy(&u.policy),
            indent = indent + 2
        );
    }
}

fn sensor(out: &mut String, s: &SensorConfig, indent: usize) {
    // A Modbus bus has no stream to find corrupt frames in.
    let on_corrupt = match s.link {
        LinkConfig::Modbus(_) => String::new(),
        _ => format!("  on_corrupt {}", s.on_corrupt),
    };
    let _ = writeln!(
        out,
        "{:indent$}{:<16} {}  codec {}  {}{on_corrupt}  [{}]",
        "",
        s.id,
        link(&s.link),
        s.codec,
        s.restart.word(),
        policy(&s.policy),
        indent = indent
    );
    units(out, s, indent);
}

/// The tree `config` describes, as text.
pub fn summary(config: &Config) -> String {
    let mut out = String::new();
    let sensors = config.sensor_count();
    let _ = writeln!(
        out,
        "{}: valid; gateway {} with {sensors} sensor(s), upstream {} (prefix {}/{}), state in {}",
        config.path.display(),
        config.gateway.id,
        config.upstream.url,
        config.upstream.topic_prefix,
        config.gateway.id,
        config.gateway.state_dir.display()
    );
    let _ = writeln!(
        out,
        "root  one_for_one  [{}; root always escalates]",
        policy(&config.root)
    );
    for child in &config.children {
        match child {
            RootChild::Sensor(s) => sensor(&mut out, s, 2),
            RootChild::Group(g) => {
                let _ = writeln!(
                    out,
                    "  {:<16} group {}  [{}]",
                    g.id,
                    g.strategy.as_str(),
                    policy(&g.policy)
                );
                for s in &g.sensors {
                    sensor(&mut out, s, 4);
                }
            }
        }
    }
    homeassistant(&mut out, config);
    outputs(&mut out, config);
    out
}

/// One line when Home Assistant discovery is on: how many entities it
/// announces (a sensor without declared fields has none).
/// The `[metrics]` and `[sparkplug]` lines, when those tables are there,
/// and the socket unit's lines for the `tcp-listen` sensors.
fn outputs(out: &mut String, config: &Config) {
    let listens = config.listen_addresses();
    if !listens.is_empty() {
        let _ = writeln!(
            out,
            "edgevisor.socket (systemd socket activation) takes, for these tcp-listen sensors:"
        );
        for listen in listens {
            let _ = writeln!(out, "  ListenStream={listen}");
        }
    }
    if let Some(metrics) = &config.metrics {
        let _ = writeln!(
            out,
            "metrics: http://{}/metrics and /healthz",
            metrics.listen
        );
    }
    if let Some(spb) = &config.sparkplug {
        let _ = writeln!(
            out,
            "sparkplug: edge node spBv1.0/{}/+/{} on a second session{}",
            spb.group_id,
            config.gateway.id,
            spb.primary_host
                .as_ref()
                .map(|h| format!(", publishing while primary host {h} is online"))
                .unwrap_or_default()
        );
    }
}

fn homeassistant(out: &mut String, config: &Config) {
    if let Some(ha) = &config.homeassistant {
        let entities = crate::homeassistant::entities(config).len();
        let _ = writeln!(
            out,
            "home assistant discovery: {entities} entity(ies) (declared fields) under {}/sensor/",
            ha.prefix
        );
    }
}
