//! The retained `tree` payload (SPEC section 5), serialised straight from
//! the runtime's snapshot. It used to go through `serde_json::Value` maps:
//! with a thousand sensors those transient maps were the largest allocation
//! of the whole start, and the heap they grew stayed in the RSS.

use edgevisor_runtime::{ChildKind, ChildSnapshot, TreeSnapshot};
use serde::ser::{SerializeStruct, Serializer};
use serde::Serialize;

/// The whole tree: `{"path","strategy","children":[...]}`; each child is
/// `{"id","path","kind","state","restarts","uptime_ms","last_reason","children"}`
/// (`uptime_ms` and `last_reason` are `null` when there is none).
pub struct TreePayload<'a>(pub &'a TreeSnapshot);

impl Serialize for TreePayload<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut tree = serializer.serialize_struct("Tree", 3)?;
        tree.serialize_field("path", &self.0.path)?;
        tree.serialize_field("strategy", self.0.strategy)?;
        tree.serialize_field("children", &Children(&self.0.children))?;
        tree.end()
    }
}

/// A supervisor's children, in start order.
struct Children<'a>(&'a [ChildSnapshot]);

impl Serialize for Children<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(Child))
    }
}

/// One child and, for a nested supervisor, its children.
struct Child<'a>(&'a ChildSnapshot);

impl Serialize for Child<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let c = self.0;
        let kind = match c.kind {
            ChildKind::Worker => "worker",
            ChildKind::Supervisor => "supervisor",
        };
        let mut child = serializer.serialize_struct("Child", 8)?;
        child.serialize_field("id", &*c.id)?;
        child.serialize_field("path", &c.path)?;
        child.serialize_field("kind", kind)?;
        child.serialize_field("state", c.state.as_str())?;
        child.serialize_field("restarts", &c.restarts)?;
        child.serialize_field("uptime_ms", &c.uptime.map(|u| u.as_millis() as u64))?;
        child.serialize_field("last_reason", &c.last_reason.as_deref())?;
        child.serialize_field("children", &Children(&c.children))?;
        child.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use edgevisor_runtime::ChildState;
    use std::time::Duration;

    fn leaf(id: &str, path: &str, reason: Option<&'static str>) -> ChildSnapshot {
        ChildSnapshot {
            id: id.into(),
            path: path.into(),
            kind: ChildKind::Worker,
            state: ChildState::Running,
            restarts: 2,
            uptime: reason.is_none().then_some(Duration::from_millis(1500)),
            in_state_for: Duration::ZERO,
            last_reason: reason.map(Into::into),
            children: Vec::new(),
        }
    }

    #[test]
    fn nested_children_render_as_spec_shapes_them() {
        let mut group = leaf("barn", "root/barn", None);
        group.kind = ChildKind::Supervisor;
        group.children = vec![leaf("gps", "root/barn/gps", Some("corrupt_frame"))];
        let tree = TreeSnapshot {
            path: "root".into(),
            strategy: "one_for_one",
            children: vec![group],
        };
        let json: serde_json::Value =
            serde_json::from_slice(&crate::payload::to_vec(&TreePayload(&tree))).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "path": "root", "strategy": "one_for_one",
                "children": [{
                    "id": "barn", "path": "root/barn", "kind": "supervisor", "state": "running",
                    "restarts": 2, "uptime_ms": 1500, "last_reason": null,
                    "children": [{
                        "id": "gps", "path": "root/barn/gps", "kind": "worker", "state": "running",
                        "restarts": 2, "uptime_ms": null, "last_reason": "corrupt_frame",
                        "children": []
                    }]
                }]
            })
        );
    }
}
