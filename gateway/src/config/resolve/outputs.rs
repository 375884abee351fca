//! The tables that speak other tools' conventions (SPEC sections 10 and
//! 11): `[metrics]`, `[homeassistant]`, `[sparkplug]`, and each sensor's
//! declared `[[sensor.field]]`s.

use std::collections::HashSet;
use std::net::SocketAddr;

use toml::Spanned;

use super::super::diagnostics::Problem;
use super::super::raw::{RawField, RawHomeAssistant, RawMetrics, RawSparkplug};
use super::super::{checks, FieldConfig, HomeAssistantConfig, MetricsConfig, SparkplugConfig};

/// `[metrics]`: `listen` must be an address and port to bind.
pub(super) fn metrics(raw: &RawMetrics, problems: &mut Vec<Problem>) -> Option<MetricsConfig> {
    match raw.listen.get_ref().parse::<SocketAddr>() {
        Ok(listen) => Some(MetricsConfig { listen }),
        Err(_) => {
            problems.push(
                Problem::at(
                    Some(raw.listen.span()),
                    format!("invalid metrics address {:?}", raw.listen.get_ref()),
                )
                .hint("write an IP address and port, e.g. listen = \"127.0.0.1:9898\" (0.0.0.0:9898 for every interface)"),
            );
            None
        }
    }
}

/// `[homeassistant]`: `None` unless `discovery = true`.
pub(super) fn homeassistant(
    raw: &RawHomeAssistant,
    problems: &mut Vec<Problem>,
) -> Option<HomeAssistantConfig> {
    let prefix = match &raw.prefix {
        Some(p) => {
            if let Err((m, h)) = checks::topic_prefix(p.get_ref()) {
                problems
                    .push(Problem::at(Some(p.span()), m.replace("topic_prefix", "prefix")).hint(h));
            }
            p.get_ref().clone()
        }
        None => "homeassistant".to_string(),
    };
    raw.discovery
        .unwrap_or(false)
        .then_some(HomeAssistantConfig { prefix })
}

/// `[sparkplug]`: ids that are valid Sparkplug topic levels.
pub(super) fn sparkplug(raw: &RawSparkplug, problems: &mut Vec<Problem>) -> SparkplugConfig {
    let mut check = |kind: &str, value: &Spanned<String>| {
        if let Err((m, h)) = checks::id(kind, value.get_ref()) {
            problems.push(Problem::at(Some(value.span()), m).hint(h));
        }
    };
    check("sparkplug group", &raw.group_id);
    if let Some(host) = &raw.primary_host {
        check("sparkplug primary host", host);
    }
    SparkplugConfig {
        group_id: raw.group_id.get_ref().clone(),
        primary_host: raw.primary_host.as_ref().map(|h| h.get_ref().clone()),
    }
}

/// A sensor's `[[sensor.field]]`s: names unique and topic-safe, paths of
/// member names.
pub(super) fn fields(
    sensor: &str,
    raw: &[Spanned<RawField>],
    problems: &mut Vec<Problem>,
) -> Vec<FieldConfig> {
    let mut seen = HashSet::new();
    let mut fields = Vec::with_capacity(raw.len());
    for field in raw {
        let field = field.get_ref();
        let name = field.name.get_ref();
        if let Err((m, h)) = checks::id("field", name) {
            problems.push(Problem::at(Some(field.name.span()), m).hint(h));
        } else if !seen.insert(name.as_str()) {
            problems.push(
                Problem::at(
                    Some(field.name.span()),
                    format!("sensor {sensor:?} declares field {name:?} twice"),
                )
                .hint("give each [[sensor.field]] of a sensor its own name"),
            );
        }
        let Some(json_path) = json_path(field.json_path.get_ref()) else {
            problems.push(
                Problem::at(
                    Some(field.json_path.span()),
                    format!("invalid json_path {:?}", field.json_path.get_ref()),
                )
                .hint("write member names from the reading's data down, e.g. json_path = \"$.env.temp\""),
            );
            continue;
        };
        fields.push(FieldConfig {
            name: name.clone(),
            json_path,
            unit: field.unit.clone(),
            device_class: field.device_class.clone(),
        });
    }
    fields
}

/// `$.a.b` -> `["a", "b"]`; `None` for anything else (no member, an empty
/// member, brackets or wildcards).
fn json_path(text: &str) -> Option<Vec<String>> {
    let members = text.strip_prefix("$.")?;
    members
        .split('.')
        .map(|m| {
            let plain = !m.is_empty() && !m.contains(['[', ']', '*', '\'', '"', ' ']);
            plain.then(|| m.to_string())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::json_path;

    #[test]
    fn json_paths_are_member_names_under_the_data() {
        assert_eq!(json_path("$.temp"), Some(vec!["temp".into()]));
        assert_eq!(
            json_path("$.env.temp_c"),
            Some(vec!["env".into(), "temp_c".into()])
        );
        for bad in ["$", "temp", "$.", "$.a..b", "$.a[0]", "$.*", "$..a"] {
            assert_eq!(json_path(bad), None, "{bad}");
        }
    }
}
