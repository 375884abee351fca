//! TOML text to raw tables. The document is parsed once (collecting syntax
//! errors), then each table is deserialized on its own so that an unknown key
//! in one `[[sensor]]` does not hide a bad duration in the next.

use serde::de::DeserializeOwned;
use toml::de::{DeTable, DeValue};
use toml::Spanned;

use super::diagnostics::{closest, Problem};
use super::raw::{
    RawGateway, RawGroup, RawHomeAssistant, RawMetrics, RawPolicy, RawSensor, RawSparkplug,
    RawUpstream, TOP_LEVEL,
};

/// What could be read of the file.
#[derive(Debug, Default)]
pub struct RawDocument {
    pub gateway: Option<RawGateway>,
    pub upstream: Option<RawUpstream>,
    pub supervisor: Option<RawPolicy>,
    pub groups: Vec<RawGroup>,
    pub sensors: Vec<RawSensor>,
    pub metrics: Option<RawMetrics>,
    pub homeassistant: Option<RawHomeAssistant>,
    pub sparkplug: Option<RawSparkplug>,
    /// Required tables the file does not have at all.
    pub missing: Vec<&'static str>,
    /// Ids of `[[sensor]]` tables too broken to read (so that a group
    /// listing them does not also report an unknown member).
    pub broken_sensor_ids: Vec<String>,
}

/// The tables read and the problems met reading them.
pub struct Parsed {
    pub document: RawDocument,
    pub problems: Vec<Problem>,
}

/// Parses `text` table by table.
pub fn parse(text: &str) -> Parsed {
    let (table, syntax) = DeTable::parse_recoverable(text);
    let mut problems: Vec<Problem> = syntax.iter().map(|e| from_toml(e, text)).collect();
    let mut document = RawDocument::default();
    let table = table.into_inner();
    for required in ["gateway", "upstream"] {
        if !table.iter().any(|(k, _)| k.get_ref().as_ref() == required) {
            document.missing.push(required);
        }
    }
    if let Some(sensors) = table.iter().find(|(k, _)| k.get_ref().as_ref() == "sensor") {
        if let DeValue::Array(items) = sensors.1.get_ref() {
            document.broken_sensor_ids = items.iter().filter_map(id_of).collect();
        }
    }
    for (key, value) in table {
        let name = key.get_ref().as_ref();
        match name {
            "gateway" => document.gateway = one(value, text, &mut problems),
            "upstream" => document.upstream = one(value, text, &mut problems),
            "supervisor" => document.supervisor = one(value, text, &mut problems),
            "group" => document.groups = many(value, "group", text, &mut problems),
            "sensor" => document.sensors = many(value, "sensor", text, &mut problems),
            "metrics" => document.metrics = one(value, text, &mut problems),
            "homeassistant" => document.homeassistant = one(value, text, &mut problems),
            "sparkplug" => document.sparkplug = one(value, text, &mut problems),
            other => {
                let mut problem = Problem::at(Some(key.span()), format!("unknown table `{other}`"));
                problem = match closest(other, TOP_LEVEL) {
                    Some(near) => problem.hint(format!("did you mean `{near}`?")),
                    None => problem.hint("the file has [gateway], [upstream], [supervisor], [[group]], [[sensor]], [metrics], [homeassistant] and [sparkplug] tables"),
                };
                problems.push(problem);
            }
        }
    }
    let parsed: std::collections::HashSet<&str> = document
        .sensors
        .iter()
        .map(|s| s.id.get_ref().as_str())
        .collect();
    let broken = std::mem::take(&mut document.broken_sensor_ids);
    document.broken_sensor_ids = broken
        .into_iter()
        .filter(|id| !parsed.contains(id.as_str()))
        .collect();
    Parsed { document, problems }
}

/// The `id` string of a table, if it has one.
fn id_of(item: &Spanned<DeValue<'_>>) -> Option<String> {
    match item.get_ref() {
        DeValue::Table(t) => {
            t.iter()
                .find_map(|(k, v)| match (k.get_ref().as_ref(), v.get_ref()) {
                    ("id", DeValue::String(s)) => Some(s.to_string()),
                    _ => None,
                })
        }
        _ => None,
    }
}

/// Deserializes one table. When a key is at fault (unknown, or a bad
/// value), the problem is recorded and the table is tried again without that
/// key, so every bad key of the table is reported in one run. What remains is
/// returned for the cross-table checks, which then report the rest.
fn one<T: DeserializeOwned>(
    mut value: Spanned<DeValue<'_>>,
    text: &str,
    problems: &mut Vec<Problem>,
) -> Option<T> {
    let span = value.span();
    loop {
        match T::deserialize(toml::de::ValueDeserializer::from(value.clone())) {
            Ok(t) => return Some(t),
            Err(e) => {
                let mut p = from_toml(&e, text);
                p.span = p.span.or(Some(span.clone()));
                let at = p.span.as_ref().map_or(usize::MAX, |s| s.start);
                problems.push(p);
                let DeValue::Table(table) = value.get_mut() else {
                    return None;
                };
                let culprit = table
                    .iter()
                    .find(|(k, v)| k.span().contains(&at) || v.span().contains(&at))
                    .map(|(k, _)| k.clone());
                table.remove(&culprit?);
            }
        }
    }
}

fn many<T: DeserializeOwned>(
    value: Spanned<DeValue<'_>>,
    name: &str,
    text: &str,
    problems: &mut Vec<Problem>,
) -> Vec<T> {
    let span = value.span();
    match value.into_inner() {
        DeValue::Array(items) => items
            .into_iter()
            .filter_map(|item| one(item, text, problems))
            .collect(),
        _ => {
            problems.push(
                Problem::at(Some(span), format!("`{name}` must be an array of tables"))
                    .hint(format!("write each one as a [[{name}]] table")),
            );
            Vec::new()
        }
    }
}

/// A toml error as a problem, with a hint for the common kinds.
fn from_toml(error: &toml::de::Error, _text: &str) -> Problem {
    let message = error.message().trim().to_string();
    let hint = hint_for(&message);
    let problem = Problem::at(error.span(), message);
    match hint {
        Some(hint) => problem.hint(hint),
        None => problem,
    }
}

fn hint_for(message: &str) -> Option<String> {
    if let Some(rest) = message.strip_prefix("unknown field `") {
        let (field, expected) = rest.split_once('`')?;
        let known: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
        return Some(match closest(field, &known) {
            Some(near) => format!("did you mean `{near}`?"),
            None => format!("remove `{field}`; this table takes {}", known.join(", ")),
        });
    }
    if let Some(rest) = message.strip_prefix("missing field `") {
        let field = rest.split('`').next()?;
        return Some(format!("add `{field} = ...` to this table"));
    }
    if message.starts_with("unknown variant") {
        return Some("use one of the values listed".into());
    }
    None
}
