//! The retained `tree` payload (SPEC section 5), serialised straight from
//! the runtime's tree: from a snapshot (`status`), or from the live tables
//! (the retained topic, rendered at each send). It used to go through
//! `serde_json::Value` maps, then through a snapshot: with a thousand sensors
//! those transient copies were the largest allocations of the whole start,
//! and the heap they grew stayed in the RSS.

use std::io;

use edgevisor_runtime::{ChildKind, ChildSnapshot, ChildState, LiveChildren, SupervisorHandle};
use edgevisor_runtime::{ChildView, TreeSnapshot};
use serde::ser::{SerializeStruct, Serializer};
use serde::Serialize;

/// The whole tree: `{"path","strategy","children":[...]}`; each child is
/// `{"id","path","kind","state","restarts","uptime_ms","last_reason","children"}`
/// (`uptime_ms` and `last_reason` are `null` when there is none).
pub struct TreePayload<'a>(pub &'a TreeSnapshot);

impl Serialize for TreePayload<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        tree(
            serializer,
            &self.0.path,
            self.0.strategy,
            &Snapshots(&self.0.children),
        )
    }
}

/// The same payload read from the running tree, in one exactly sized
/// buffer (a first pass counts the bytes).
pub fn render_live(root: &SupervisorHandle) -> Vec<u8> {
    let live = LiveTree(root);
    let mut counter = Counter(0);
    let mut out = Vec::new();
    if serde_json::to_writer(&mut counter, &live).is_ok() {
        out.reserve_exact(counter.0);
    }
    // Writing into a Vec cannot fail, and the tree holds only strings and numbers.
    let _ = serde_json::to_writer(&mut out, &live);
    out
}

/// The running tree, serialised as [`TreePayload`] serialises a snapshot.
pub struct LiveTree<'a>(pub &'a SupervisorHandle);

impl Serialize for LiveTree<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let strategy = self.0.strategy().as_str();
        tree(
            serializer,
            self.0.path(),
            strategy,
            &Live(Some(self.0.live())),
        )
    }
}

fn tree<S: Serializer, C: Serialize>(
    serializer: S,
    path: &str,
    strategy: &str,
    children: &C,
) -> Result<S::Ok, S::Error> {
    let mut tree = serializer.serialize_struct("Tree", 3)?;
    tree.serialize_field("path", path)?;
    tree.serialize_field("strategy", strategy)?;
    tree.serialize_field("children", children)?;
    tree.end()
}

/// One child's fields, wherever they were read from.
struct Fields<'a, P, C> {
    id: &'a str,
    path: P,
    kind: ChildKind,
    state: ChildState,
    restarts: u32,
    uptime: Option<std::time::Duration>,
    last_reason: Option<&'a str>,
    children: C,
}

impl<P: Serialize, C: Serialize> Serialize for Fields<'_, P, C> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let kind = match self.kind {
            ChildKind::Worker => "worker",
            ChildKind::Supervisor => "supervisor",
        };
        let mut child = serializer.serialize_struct("Child", 8)?;
        child.serialize_field("id", self.id)?;
        child.serialize_field("path", &self.path)?;
        child.serialize_field("kind", kind)?;
        child.serialize_field("state", self.state.as_str())?;
        child.serialize_field("restarts", &self.restarts)?;
        child.serialize_field("uptime_ms", &self.uptime.map(|u| u.as_millis() as u64))?;
        child.serialize_field("last_reason", &self.last_reason)?;
        child.serialize_field("children", &self.children)?;
        child.end()
    }
}

/// A snapshot's children, in start order.
struct Snapshots<'a>(&'a [ChildSnapshot]);

impl Serialize for Snapshots<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(|c| Fields {
            id: &c.id,
            path: &c.path,
            kind: c.kind,
            state: c.state,
            restarts: c.restarts,
            uptime: c.uptime,
            last_reason: c.last_reason.as_deref(),
            children: Snapshots(&c.children),
        }))
    }
}

/// A running supervisor's children, in start order; an empty list for a
/// worker or a supervisor that is not running.
struct Live<'a>(Option<LiveChildren<'a>>);

impl Serialize for Live<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match &self.0 {
            Some(live) => live.with(|children| serializer.collect_seq(children.map(live_fields))),
            None => serializer.collect_seq(std::iter::empty::<()>()),
        }
    }
}

fn live_fields(c: ChildView<'_>) -> Fields<'_, JoinedPath<'_>, Live<'_>> {
    Fields {
        id: c.id,
        path: JoinedPath(c.parent, c.id),
        kind: c.kind,
        state: c.state,
        restarts: c.restarts,
        uptime: c.uptime,
        last_reason: c.last_reason,
        children: Live(c.children),
    }
}

/// `{parent}/{id}`, written without building the string.
struct JoinedPath<'a>(&'a str, &'a str);

impl Serialize for JoinedPath<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&format_args!("{}/{}", self.0, self.1))
    }
}

/// Counts what is written, for sizing the buffer of the real pass.
struct Counter(usize);

impl io::Write for Counter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
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

    /// The retained tree is rendered from the live tables, `status` from a
    /// snapshot: both must give the same bytes for the same tree.
    #[tokio::test(start_paused = true)]
    async fn the_live_tree_renders_as_its_snapshot_does() {
        use edgevisor_runtime::{ChildSpec, Crash, Strategy, Supervisor, SupervisorSpec};
        let idle = |id: &str| ChildSpec::worker(id, |_| std::future::pending());
        let failing = ChildSpec::worker("flaky", |_| async { Err(Crash::new("io", "gone")) });
        let group = SupervisorSpec::new(Strategy::RestForOne)
            .child(idle("acceptor"))
            .child(idle("127.0.0.1:5000"));
        let spec = SupervisorSpec::new(Strategy::OneForOne)
            .child(ChildSpec::supervisor("nodes", group))
            .child(idle("weather"))
            .child(failing);
        let root = Supervisor::new("root", spec).unwrap().spawn();
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let from_snapshot = crate::payload::to_vec(&TreePayload(&root.snapshot()));
        let live = render_live(&root);
        assert_eq!(
            String::from_utf8(live.clone()).unwrap(),
            String::from_utf8(from_snapshot).unwrap()
        );
        assert_eq!(live.len(), live.capacity(), "sized by the counting pass");
        let json: serde_json::Value = serde_json::from_slice(&live).unwrap();
        assert_eq!(
            json["children"][0]["children"][1]["path"],
            "root/nodes/127.0.0.1:5000"
        );
        assert_eq!(json["children"][2]["last_reason"], "io");
        root.shutdown().await.unwrap();
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
