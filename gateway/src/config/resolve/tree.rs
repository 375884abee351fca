//! The root's children: sensor and group ids checked for form and
//! uniqueness, group membership checked (members exist, each in at most one
//! group), then the children placed in file order of the sensors.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use edgevisor_runtime::Strategy;

use super::super::diagnostics::{closest, line_column, Problem};
use super::super::parse::RawDocument;
use super::super::raw::{RawGroup, RawSensor};
use super::super::{checks, GroupConfig, Policy, RootChild};
use super::{policy, sensor, Span};

/// Which group (by index in the document) each grouped sensor belongs to.
type GroupOf<'a> = HashMap<&'a str, usize>;

/// Builds the root's children in file order of the sensors; a group stands
/// where its first listed member would.
pub(super) fn tree(
    doc: &RawDocument,
    text: &str,
    root: Policy,
    problems: &mut Vec<Problem>,
) -> Vec<RootChild> {
    check_ids(doc, text, problems);
    let by_id: HashMap<&str, &RawSensor> = doc
        .sensors
        .iter()
        .map(|s| (s.id.get_ref().as_str(), s))
        .collect();
    let group_of = membership(doc, &by_id, problems);
    let mut children = Vec::new();
    let mut placed = HashSet::new();
    for s in &doc.sensors {
        match group_of.get(s.id.get_ref().as_str()) {
            None => {
                if let Some(sensor) = sensor::sensor(s, root, problems) {
                    children.push(RootChild::Sensor(Arc::new(sensor)));
                }
            }
            Some(&gi) if placed.insert(gi) => {
                let group = group(&doc.groups[gi], gi, &by_id, &group_of, root, problems);
                children.push(RootChild::Group(Box::new(group)));
            }
            Some(_) => {}
        }
    }
    children
}

/// Every sensor and group id well formed and used once.
fn check_ids(doc: &RawDocument, text: &str, problems: &mut Vec<Problem>) {
    let mut ids: HashMap<&str, Span> = HashMap::new();
    let named = doc
        .sensors
        .iter()
        .map(|s| (&s.id, "sensor"))
        .chain(doc.groups.iter().map(|g| (&g.id, "group")));
    for (id, kind) in named {
        if let Err((m, h)) = checks::id(kind, id.get_ref()) {
            problems.push(Problem::at(Some(id.span()), m).hint(h));
        }
        if let Some(first) = ids.get(id.get_ref().as_str()) {
            problems.push(
                Problem::at(Some(id.span()), format!("duplicate id {:?}", id.get_ref()))
                    .hint({
                        let (line, column) = line_column(text, first.start);
                        format!("sensor and group ids must be unique; it is first used at line {line}, column {column}")
                    }),
            );
        } else {
            ids.insert(id.get_ref().as_str(), id.span());
        }
    }
}

/// Maps each listed member to its group; reports empty groups, unknown
/// members and sensors listed in two groups (the first group keeps them).
fn membership<'a>(
    doc: &'a RawDocument,
    by_id: &HashMap<&str, &RawSensor>,
    problems: &mut Vec<Problem>,
) -> GroupOf<'a> {
    let groups = &doc.groups;
    let mut group_of = GroupOf::new();
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
                problems.push(unknown_member(g, name, member.span(), by_id));
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
    group_of
}

/// A group lists a sensor that no `[[sensor]]` defines; the hint offers the
/// closest id.
fn unknown_member(
    g: &RawGroup,
    name: &str,
    span: Span,
    by_id: &HashMap<&str, &RawSensor>,
) -> Problem {
    let near = closest(name, &by_id.keys().copied().collect::<Vec<_>>());
    let hint = match near {
        Some(n) => format!("did you mean {n:?}? otherwise add a [[sensor]] with id = {name:?}"),
        None => format!("add a [[sensor]] with id = {name:?}, or remove it from the group"),
    };
    Problem::at(
        Some(span),
        format!("group {:?} lists unknown sensor {name:?}", g.id.get_ref()),
    )
    .hint(hint)
}

/// One group with its policy layered over the root's and its members in
/// the order the group lists them.
fn group(
    g: &RawGroup,
    gi: usize,
    by_id: &HashMap<&str, &RawSensor>,
    group_of: &GroupOf<'_>,
    root: Policy,
    problems: &mut Vec<Problem>,
) -> GroupConfig {
    let policy = policy::layer(
        root,
        &g.policy(),
        &format!("group {:?}", g.id.get_ref()),
        problems,
    );
    let sensors = g
        .sensors
        .iter()
        .filter(|m| group_of.get(m.get_ref().as_str()) == Some(&gi))
        .filter_map(|m| by_id.get(m.get_ref().as_str()))
        .filter_map(|s| sensor::sensor(s, policy, problems).map(Arc::new))
        .collect();
    GroupConfig {
        id: g.id.get_ref().clone(),
        strategy: g.strategy.map_or(Strategy::OneForOne, |w| w.0),
        policy,
        sensors,
    }
}
