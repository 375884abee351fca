//! The fleet as text for a terminal, every line cut to 80 columns: a
//! header with the broker link, one line per gateway, the quarantined
//! sensors, crash rates of the last hour per sensor and per reason side by
//! side, and the latest crashes with their evidence. Pure (snapshot in,
//! string out); colour is plain ANSI SGR and only when asked for.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::message::CrashReport;
use crate::snapshot::{FleetSnapshot, GatewaySnapshot};

/// The width every line fits in.
pub const WIDTH: usize = 80;

/// How to draw.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    /// ANSI colours (a terminal), or none (a pipe, a file).
    pub color: bool,
    /// How many of the latest crash reports to show.
    pub crashes: usize,
    /// Rows of the rate tables.
    pub rate_rows: usize,
}

impl Default for Style {
    fn default() -> Self {
        Self {
            color: false,
            crashes: 4,
            rate_rows: 6,
        }
    }
}

/// `snap` as lines of at most [`WIDTH`] visible columns, each ending in `\n`.
pub fn render(snap: &FleetSnapshot, style: Style) -> String {
    let mut out = String::new();
    header(&mut out, snap, style);
    gateways(&mut out, snap, style);
    quarantined(&mut out, snap, style);
    rates(&mut out, snap, style);
    latest(&mut out, snap, style);
    out.lines()
        .map(|line| cut(line.trim_end(), WIDTH) + "\n")
        .collect()
}

fn paint(style: Style, code: &str, text: &str) -> String {
    if style.color {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_string()
    }
}

fn header(out: &mut String, snap: &FleetSnapshot, style: Style) {
    let clock = snap.at.get(11..19).unwrap_or("");
    let _ = writeln!(
        out,
        "{}  {}  {}/+  {clock}Z",
        paint(style, "1", "edgevisor fleet"),
        snap.link.broker,
        snap.prefix
    );
    let link = if snap.link.connected {
        paint(style, "32", "broker connected")
    } else {
        let why = snap.link.last_error.as_deref().unwrap_or("connecting");
        paint(style, "31", &format!("BROKER NOT CONNECTED ({why})"))
    };
    let share = match &snap.link.share {
        Some(group) if snap.link.share_refused.is_empty() => format!("  events via $share/{group}"),
        Some(group) => format!("  $share/{group} refused: events read plainly"),
        None => String::new(),
    };
    let page = snap
        .link
        .page
        .as_deref()
        .map_or(String::new(), |url| format!("  page {url}"));
    let _ = writeln!(
        out,
        "{link}  {} gateways, {} online{page}{share}",
        snap.gateways.len(),
        snap.online()
    );
    if let Some(last) = &snap.link.last_unreadable {
        let note = format!(
            "{} unreadable message(s), last {last}",
            snap.link.unreadable
        );
        let _ = writeln!(out, "{}", paint(style, "33", &note));
    }
    out.push('\n');
}

fn gateways(out: &mut String, snap: &FleetSnapshot, style: Style) {
    let _ = writeln!(
        out,
        "{}",
        paint(
            style,
            "1",
            "GATEWAY              STATE     BOOT VERSION   UPTIME SENSORS QUAR. CRASH/H  DL/H"
        )
    );
    if snap.gateways.is_empty() {
        let _ = writeln!(
            out,
            "(none yet: no gateway has published under {}/)",
            snap.prefix
        );
    }
    for gw in &snap.gateways {
        let state = format!("{:<8}", gw.state);
        let state = match gw.state.as_str() {
            "online" => paint(style, "32", &state),
            "offline" => paint(style, "31;1", &state),
            _ => paint(style, "33", &state),
        };
        let quarantined = format!("{:>5}", gw.quarantined.len());
        let quarantined = if gw.quarantined.is_empty() {
            quarantined
        } else {
            paint(style, "33;1", &quarantined)
        };
        let floor = if gw.crashes_floor { ">=" } else { "" };
        let _ = writeln!(
            out,
            "{:<20} {state} {:>5} {:<8} {:>7} {:>7} {quarantined} {:>7} {:>5}",
            fit(&gw.id, 20),
            gw.boot.map_or("-".into(), |b| b.to_string()),
            fit(gw.version.as_deref().unwrap_or("-"), 8),
            gw.uptime_s.map_or("-".into(), uptime),
            gw.sensors.len(),
            format!("{floor}{}", gw.crashes_hour),
            gw.dead_letters_hour,
        );
    }
}

fn quarantined(out: &mut String, snap: &FleetSnapshot, style: Style) {
    let mut lines = Vec::new();
    for gw in &snap.gateways {
        for sensor in gw.sensors.iter().filter(|s| s.state.state == "quarantined") {
            lines.push(format!(
                "  {:<40} since {:<9} restarts {}",
                fit(&format!("{}/{}", gw.id, sensor.name), 40),
                sensor.state.since.get(11..19).unwrap_or("-"),
                sensor.state.restarts
            ));
        }
    }
    if lines.is_empty() {
        return;
    }
    let _ = writeln!(out, "\n{}", paint(style, "33;1", "QUARANTINED"));
    for line in lines {
        let _ = writeln!(out, "{line}");
    }
}

fn rates(out: &mut String, snap: &FleetSnapshot, style: Style) {
    let mut by_sensor: Vec<(String, u64)> = snap
        .gateways
        .iter()
        .flat_map(|gw| {
            gw.by_sensor
                .iter()
                .map(move |c| (format!("{}/{}", gw.id, c.name), c.count))
        })
        .collect();
    by_sensor.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let mut reasons: BTreeMap<&str, u64> = BTreeMap::new();
    for c in snap.gateways.iter().flat_map(|gw| &gw.by_reason) {
        *reasons.entry(&c.name).or_default() += c.count;
    }
    let mut by_reason: Vec<(&str, u64)> = reasons.into_iter().collect();
    by_reason.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    if by_sensor.is_empty() {
        let _ = writeln!(
            out,
            "\nno crash in the last hour{}",
            watching(snap.watching_s)
        );
        return;
    }
    let _ = writeln!(
        out,
        "\n{}{}",
        paint(
            style,
            "1",
            "CRASHES/HOUR BY SENSOR                  BY REASON, ALL GATEWAYS"
        ),
        watching(snap.watching_s)
    );
    let rows = by_sensor.len().max(by_reason.len()).min(style.rate_rows);
    for i in 0..rows {
        let left = by_sensor.get(i).map_or(String::new(), |(n, c)| {
            format!("  {:<28} {:>6}", fit(n, 28), c)
        });
        let right = by_reason.get(i).map_or(String::new(), |(n, c)| {
            format!("{:<20} {:>6}", fit(n, 20), c)
        });
        let _ = writeln!(out, "{left:<40}{right}");
    }
    if by_sensor.len() > rows {
        let _ = writeln!(out, "  ... {} more sensors", by_sensor.len() - rows);
    }
}

fn latest(out: &mut String, snap: &FleetSnapshot, style: Style) {
    let mut all: Vec<&CrashReport> = snap
        .gateways
        .iter()
        .flat_map(|gw: &GatewaySnapshot| &gw.latest)
        .collect();
    all.sort_by(|a, b| b.ts.cmp(&a.ts));
    if all.is_empty() || style.crashes == 0 {
        return;
    }
    let _ = writeln!(out, "\n{}", paint(style, "1", "LATEST CRASHES"));
    for report in all.into_iter().take(style.crashes) {
        let _ = writeln!(
            out,
            "{} {} {} -> {}",
            report.ts.get(11..23).unwrap_or(&report.ts),
            paint(style, "1", &format!("{}/{}", report.gateway, report.sensor)),
            paint(style, "31", &report.reason),
            report.action,
        );
        let mut detail = format!("  {}", fit(&report.error, 36));
        if !report.evidence_hex.is_empty() {
            detail += &format!("  {}", evidence(&report.evidence_hex, 8));
        }
        let _ = writeln!(out, "{detail}");
    }
}

/// Crash reports are not retained: a view that started less than an hour
/// ago counts only what it saw, and says so.
fn watching(secs: u64) -> String {
    if secs < 3600 {
        format!(" (seen in {})", uptime(secs))
    } else {
        String::new()
    }
}

/// The first `bytes` bytes of hex evidence, then the same bytes as text
/// (`.` for what does not print).
pub fn evidence(hex: &str, bytes: usize) -> String {
    let shown: String = hex.chars().take(bytes * 2).collect();
    let text: String = shown
        .as_bytes()
        .chunks(2)
        .filter_map(|pair| std::str::from_utf8(pair).ok())
        .filter_map(|pair| u8::from_str_radix(pair, 16).ok())
        .map(|b| {
            if b.is_ascii_graphic() || b == b' ' {
                b as char
            } else {
                '.'
            }
        })
        .collect();
    let more = if hex.len() > shown.len() { "..." } else { "" };
    format!("{shown}{more}  {text:?}")
}

/// `12s`, `5m07s`, `1h02m`, `3d04h`.
pub fn uptime(secs: u64) -> String {
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m{:02}s", s / 60, s % 60),
        s if s < 86_400 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        s => format!("{}d{:02}h", s / 86_400, s % 86_400 / 3600),
    }
}

/// `text` cut to `width` characters, with `~` marking a cut.
fn fit(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        text.to_string()
    } else {
        text.chars()
            .take(width.saturating_sub(1))
            .collect::<String>()
            + "~"
    }
}

/// `line` cut to `width` visible columns; ANSI SGR sequences take none
/// and are kept, and a reset ends a cut line that had colour.
fn cut(line: &str, width: usize) -> String {
    let mut out = String::new();
    let mut visible = 0;
    let mut chars = line.chars().peekable();
    let mut cut = false;
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            out.push(c);
            for d in chars.by_ref() {
                out.push(d);
                if d == 'm' {
                    break;
                }
            }
            continue;
        }
        if visible == width {
            cut = true;
            break;
        }
        out.push(c);
        visible += 1;
    }
    if cut && out.contains('\x1b') {
        out.push_str("\x1b[0m");
    }
    out
}

#[cfg(test)]
mod tests;
