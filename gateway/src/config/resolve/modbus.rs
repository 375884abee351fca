//! A Modbus bus (`transport = "modbus-rtu"` or `"modbus-tcp"`, SPEC
//! section 9): its port and timing keys, and each `[[sensor.unit]]` with
//! its register map checked entry by entry, so `edgevisor check` points at
//! the register that overlaps another or cannot be read.

use std::sync::Arc;
use std::time::Duration;

use edgevisor_devices::modbus::{self, BusConfig, Endpoint, Register, Unit, ValueType};
use toml::Spanned;

use super::super::diagnostics::Problem;
use super::super::raw::{RawRegister, RawSensor, RawUnit};
use super::super::values::Transport;
use super::super::{checks, ModbusConfig, Policy, UnitConfig};
use super::{policy, Span};

/// The default time between two polls of a unit.
pub const DEFAULT_POLL: Duration = Duration::from_secs(1);
/// The default per-request timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);
/// The default number of extra tries of a request.
pub const DEFAULT_RETRIES: u32 = 1;

/// Upper bounds: a longer value is a typo (and would hold the bus, or
/// overflow a deadline).
const MAX_TIMEOUT: Duration = Duration::from_secs(60);
const MAX_DELAY_BETWEEN: Duration = Duration::from_secs(10);
const MAX_POLL: Duration = Duration::from_secs(24 * 3600);

fn at_most(key: &str, d: Duration, max: Duration, example: &str) -> Result<(), (String, String)> {
    if d <= max {
        return Ok(());
    }
    Err((
        format!(
            "{key} must be at most {} (got {})",
            humantime::format_duration(max),
            humantime::format_duration(d)
        ),
        format!("e.g. {key} = \"{example}\""),
    ))
}

/// The bus of `s`, whose port settings `endpoint` already resolved; units
/// layer their policy keys over `bus_policy`.
pub(super) fn bus(
    s: &RawSensor,
    endpoint: Endpoint,
    bus_policy: Policy,
    problems: &mut Vec<Problem>,
) -> Option<ModbusConfig> {
    let timeout = s.timeout.as_ref().map_or(DEFAULT_TIMEOUT, |t| {
        let checked = checks::timeout("timeout", t.get_ref().0, "500ms")
            .and_then(|()| at_most("timeout", t.get_ref().0, MAX_TIMEOUT, "500ms"));
        if let Err((m, h)) = checked {
            problems.push(Problem::at(Some(t.span()), m).hint(h));
        }
        t.get_ref().0
    });
    let retries = s.retries.as_ref().map_or(DEFAULT_RETRIES, |r| {
        u32::try_from(*r.get_ref())
            .ok()
            .filter(|n| *n <= 10)
            .unwrap_or_else(|| {
                problems.push(
                    Problem::at(Some(r.span()), format!("invalid retries {}", r.get_ref()))
                        .hint("retries is 0 to 10 extra tries per request, e.g. retries = 1"),
                );
                DEFAULT_RETRIES
            })
    });
    let delay_between = s.delay_between.as_ref().map_or(Duration::ZERO, |d| {
        if let Err((m, h)) = at_most("delay_between", d.get_ref().0, MAX_DELAY_BETWEEN, "10ms") {
            problems.push(Problem::at(Some(d.span()), m).hint(h));
        }
        d.get_ref().0
    });
    if s.unit.is_empty() {
        problems.push(
            Problem::at(
                Some(s.transport.span()),
                format!("Modbus bus {:?} has no units", s.id.get_ref()),
            )
            .hint("add a [[sensor.unit]] table with id, unit_id and registers after this sensor"),
        );
    }
    let tcp = *s.transport.get_ref() == Transport::ModbusTcp;
    let mut ids: Vec<&str> = Vec::new();
    let units = s
        .unit
        .iter()
        .filter_map(|u| {
            let id = u.get_ref().id.get_ref().as_str();
            if ids.contains(&id) {
                problems.push(
                    Problem::at(
                        Some(u.get_ref().id.span()),
                        format!("unit id {id:?} is used twice on this bus"),
                    )
                    .hint("give each [[sensor.unit]] of a bus its own id"),
                );
            }
            ids.push(id);
            let owner = format!("unit {:?} of {:?}", id, s.id.get_ref());
            unit(u.get_ref(), tcp, bus_policy, &owner, problems).map(Arc::new)
        })
        .collect();
    Some(ModbusConfig {
        bus: BusConfig {
            endpoint,
            timeout,
            retries,
            delay_between,
        },
        units,
    })
}

fn unit(
    u: &RawUnit,
    tcp: bool,
    bus_policy: Policy,
    owner: &str,
    problems: &mut Vec<Problem>,
) -> Option<UnitConfig> {
    if let Err((m, h)) = checks::id("unit", u.id.get_ref()) {
        problems.push(Problem::at(Some(u.id.span()), m).hint(h));
    }
    // SPEC section 9: 1 to 247, and 0 on TCP for a device that ignores it.
    let range = if tcp { 0..=247 } else { 1..=247 };
    let unit_id = u8::try_from(*u.unit_id.get_ref())
        .ok()
        .filter(|n| range.contains(n));
    if unit_id.is_none() {
        let hint = if tcp {
            "a Modbus TCP unit_id is 1 to 247, or 0 for a device that ignores it"
        } else {
            "an RTU unit_id is 1 to 247 (0 is broadcast, which never answers)"
        };
        problems.push(
            Problem::at(
                Some(u.unit_id.span()),
                format!("invalid unit_id {}", u.unit_id.get_ref()),
            )
            .hint(hint),
        );
    }
    let poll = u.poll.as_ref().map_or(DEFAULT_POLL, |p| {
        let checked = checks::timeout("poll", p.get_ref().0, "5s")
            .and_then(|()| at_most("poll", p.get_ref().0, MAX_POLL, "5s"));
        if let Err((m, h)) = checked {
            problems.push(Problem::at(Some(p.span()), m).hint(h));
        }
        p.get_ref().0
    });
    if u.registers.get_ref().is_empty() {
        problems.push(
            Problem::at(Some(u.registers.span()), "registers is empty")
                .hint("list what to read, e.g. { name = \"voltage\", table = \"input\", address = 0, type = \"float32\" }"),
        );
    }
    let entries: Vec<_> = u
        .registers
        .get_ref()
        .iter()
        .map(|r| register(r, problems))
        .collect();
    let policy = policy::layer(bus_policy, &u.policy(), owner, problems);
    let registers: Vec<Register> = entries.into_iter().collect::<Option<_>>()?;
    let reads = match modbus::plan(&registers) {
        Ok(reads) => reads,
        Err(errors) => {
            for e in errors {
                let span = u.registers.get_ref()[e.index()].span();
                problems.push(Problem::at(Some(span), e.to_string()).hint(e.hint()));
            }
            return None;
        }
    };
    Some(UnitConfig {
        id: u.id.get_ref().clone(),
        unit: Unit {
            unit_id: unit_id?,
            registers,
            reads,
        },
        poll,
        policy,
    })
}

/// One register entry, its keys checked against its type.
fn register(r: &Spanned<RawRegister>, problems: &mut Vec<Problem>) -> Option<Register> {
    let raw = r.get_ref();
    let kind = raw.kind.get_ref().0;
    let mut bad = |span: Span, message: String, hint: &str| {
        problems.push(Problem::at(Some(span), message).hint(hint));
    };
    let address = u16::try_from(*raw.address.get_ref()).ok();
    if address.is_none() {
        bad(
            raw.address.span(),
            format!("invalid address {}", raw.address.get_ref()),
            "addresses are 0 to 65535, 0-based as sent on the wire (register 40001 is holding address 0)",
        );
    }
    if let (Some(o), false) = (&raw.order, kind.takes_order()) {
        bad(
            o.span(),
            format!("`order` does not apply to type {}", kind.as_str()),
            "order is for types of two or four registers; remove it",
        );
    }
    for (key, v) in [("scale", &raw.scale), ("offset", &raw.offset)] {
        if let (Some(v), false) = (v, kind.is_number()) {
            bad(
                v.span(),
                format!("`{key}` does not apply to type {}", kind.as_str()),
                "scale and offset are for numbers; remove it",
            );
        }
    }
    let length = match (&raw.length, kind) {
        (Some(l), ValueType::String) => match u16::try_from(*l.get_ref()) {
            Ok(n) if (1..=125).contains(&n) => n,
            _ => {
                bad(
                    l.span(),
                    format!("invalid length {}", l.get_ref()),
                    "a string is 1 to 125 registers (two characters each)",
                );
                1
            }
        },
        (Some(l), _) => {
            bad(
                l.span(),
                format!("`length` does not apply to type {}", kind.as_str()),
                "length is for strings; remove it",
            );
            0
        }
        (None, _) => 0,
    };
    let mut register = Register::new(
        raw.name.get_ref().clone(),
        raw.table.get_ref().0,
        address?,
        kind,
    );
    register.order = raw
        .order
        .as_ref()
        .map_or_else(Default::default, |o| o.get_ref().0);
    register.scale = raw.scale.as_ref().map_or(1.0, |s| *s.get_ref());
    register.offset = raw.offset.as_ref().map_or(0.0, |o| *o.get_ref());
    register.length = length;
    Some(register)
}
